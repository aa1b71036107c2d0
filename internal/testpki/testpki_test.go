package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"testing"
)

// TestIssue: leaves chain to their CA for the names and usages asked,
// the files hold what a server loads, and a TLS handshake with the
// generated configurations succeeds (and fails against another CA).
func TestIssue(t *testing.T) {
	ca := New(t)
	for _, tc := range []struct {
		name  string
		o     Options
		host  string
		usage x509.ExtKeyUsage
	}{
		{"server", Server, "localhost", x509.ExtKeyUsageServerAuth},
		{"ip", Server, "127.0.0.1", x509.ExtKeyUsageClientAuth},
		{"wild", Options{DNSNames: []string{"*.zk-hs.ns.svc.cluster.local"}}, "zk-1.zk-hs.ns.svc.cluster.local", x509.ExtKeyUsageServerAuth},
		{"client", Options{Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, "", x509.ExtKeyUsageClientAuth},
	} {
		l := ca.Issue(t, tc.name, tc.o)
		if _, err := l.X509.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if l.X509.Subject.CommonName != tc.name {
			t.Errorf("%s: subject %s", tc.name, l.X509.Subject)
		}
		for _, f := range []string{l.Cert, l.Key, l.Both, ca.File} {
			if b, err := os.ReadFile(f); err != nil || len(b) == 0 {
				t.Errorf("%s: %s: %v", tc.name, f, err)
			}
		}
		if _, err := tls.LoadX509KeyPair(l.Both, l.Both); err != nil {
			t.Errorf("%s: key store file: %v", tc.name, err)
		}
	}
	if _, err := ca.Issue(t, "c", Options{Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).X509.Verify(
		x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client-only certificate verifies for server use")
	}

	// Mutual TLS over loopback with the generated configurations.
	srv, cli := ca.Issue(t, "s", Server), ca.Issue(t, "c", Options{})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerConfig(srv, tls.RequireAndVerifyClientCert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	dial := func(cfg *tls.Config) error {
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			// The server closes after its handshake: EOF. Under TLS 1.3 a
			// refused client certificate shows here, as an alert.
			_, err = c.Read(make([]byte, 1))
			c.Close()
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		return err
	}
	if err := dial(ca.ClientConfig("localhost", cli)); err != nil {
		t.Errorf("mutual TLS: %v", err)
	}
	if err := dial(New(t).ClientConfig("localhost", cli)); err == nil {
		t.Error("a client trusting another CA accepted the server")
	}
	if err := dial(ca.ClientConfig("localhost", nil)); err == nil {
		t.Error("a client without a certificate was accepted")
	}

	// A self-signed certificate verifies against itself.
	ss := SelfSigned(t, "console", Options{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if _, err := ss.X509.Verify(x509.VerifyOptions{Roots: ss.Pool()}); err != nil {
		t.Errorf("self-signed: %v", err)
	}
}
