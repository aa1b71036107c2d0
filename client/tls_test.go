package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testpki"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

// TestTLS connects over TLS with a client certificate; the server sees
// the certificate's identity (x509 scheme).
func TestTLS(t *testing.T) {
	bin, err := testserver.Binary()
	if err != nil {
		t.Skip(err)
	}
	if out, _ := exec.Command(bin, "server", "--help").CombinedOutput(); !strings.Contains(string(out), "-secure-addr") {
		t.Skip("paddock server has no --secure-addr yet")
	}
	ca := testpki.New(t)
	srv := ca.Issue(t, "server", testpki.Options{Localhost: true, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	cli := ca.Issue(t, "client", testpki.Options{Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	ports, err := zkref.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	secure := fmt.Sprintf("127.0.0.1:%d", ports[0])
	testserver.Start(t, testserver.Options{ExtraArgs: []string{
		"--secure-addr", secure, "--tls-cert", srv.Cert, "--tls-key", srv.Key, "--tls-ca", ca.File,
	}})
	ctx := ctxT(t)
	cfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cli.Pair}}
	c := connect(t, secure, WithTLS(cfg))
	base := unique(t)
	if _, _, err := c.Create(ctx, base, []byte("over tls"), ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	ids, err := c.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, id := range ids {
		found = found || id.AuthScheme == "x509"
	}
	if !found {
		t.Fatalf("whoAmI over TLS: %+v, want an x509 id", ids)
	}
	// Without a client certificate the server (clientAuth=need) refuses.
	short, cancel := contextWithTimeout(2 * time.Second)
	defer cancel()
	if c2, err := Connect(short, []string{secure}, WithTLS(&tls.Config{RootCAs: ca.Pool()})); err == nil {
		c2.Close()
		t.Fatal("connected without a client certificate")
	}
}
