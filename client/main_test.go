package client_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/paddockhq/paddock/internal/testserver"
)

// servers is the server list the examples connect to: a Paddock server
// started by TestMain.
var servers []string

func TestMain(m *testing.M) {
	srv, err := testserver.StartMain(testserver.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests: cannot start a server for the examples:", err)
		os.Exit(1)
	}
	servers = []string{srv.Addr}
	code := m.Run()
	srv.Stop()
	srv.RemoveAll()
	testserver.CleanupBinary()
	os.Exit(code)
}
