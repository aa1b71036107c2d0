package recipes_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paddockhq/paddock/client"
	"github.com/paddockhq/paddock/internal/testserver"
)

// servers is the server list the examples and the standalone tests use:
// a Paddock server started by TestMain.
var servers []string

func TestMain(m *testing.M) {
	srv, err := testserver.StartMain(testserver.Options{TickTime: 200 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "recipes tests: cannot start a server:", err)
		os.Exit(1)
	}
	servers = []string{srv.Addr}
	code := m.Run()
	srv.Stop()
	srv.RemoveAll()
	testserver.CleanupBinary()
	os.Exit(code)
}

var dirSeq atomic.Int64

// dir returns a fresh path for one test.
func dir(t *testing.T) string {
	return fmt.Sprintf("/recipes-test/%s-%d", t.Name(), dirSeq.Add(1))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect returns a client for the test, closed at cleanup.
func connect(t *testing.T, addrs []string, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithSessionTimeout(4 * time.Second)}, opts...)
	if os.Getenv("ZK_CLIENT_DEBUG") != "" {
		opts = append(opts, client.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	c, err := client.Connect(ctxT(t), addrs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
