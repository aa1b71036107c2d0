package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// httpsClient is a real HTTPS client trusting the test CA and presenting
// cert (nil: none).
func httpsClient(p *testPKI, cert *leafCert) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: p.clientTLS(cert), DisableKeepAlives: true},
	}
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// adminTLSServer starts Paddock with HTTPS on the admin port; the
// certificate file holds the key too (ZooKeeper's PEM key store).
func adminTLSServer(t *testing.T, p *testPKI, mod func(*Config)) *Server {
	t.Helper()
	s := startServer(t, func(c *Config) {
		c.AdminAddr = "127.0.0.1:0"
		c.AdminTLSCertFile = p.server.Both
		c.SuperUserX509 = p.admin.DN
		if mod != nil {
			mod(c)
		}
	})
	if !strings.HasPrefix(s.AdminURL(), "https://") {
		t.Fatalf("admin URL %q", s.AdminURL())
	}
	return s
}

// TestAdminHTTPS: with a certificate the admin port serves its commands,
// metrics, probes and console over HTTPS only (admin.forceHttps), and a
// plain HTTP request gets a clear 400.
func TestAdminHTTPS(t *testing.T) {
	p := newTestPKI(t)
	s := adminTLSServer(t, p, nil)
	c := httpsClient(p, nil)
	for _, path := range []string{"/commands/ruok", "/commands/srvr", "/metrics", "/livez", "/readyz", "/console/", "/console/api/info"} {
		code, body, err := get(c, s.AdminURL()+path)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s over HTTPS: %d %v\n%s", path, code, err, body)
		}
	}
	code, body, err := get(c, s.AdminURL()+"/commands/ruok")
	var m map[string]any
	if err != nil || json.Unmarshal([]byte(body), &m) != nil || m["command"] != "ruok" || m["error"] != nil {
		t.Fatalf("ruok over HTTPS: %d %v %q", code, err, body)
	}
	plain := "http://" + s.AdminAddr().String() + "/commands/ruok"
	code, body, err = get(http.DefaultClient, plain)
	if err != nil || code != http.StatusBadRequest || !strings.Contains(body, "HTTPS") {
		t.Fatalf("plain HTTP to the HTTPS admin port: %d %v %q, want 400", code, err, body)
	}
	// A client that does not trust the server's CA is refused.
	if _, _, err := get(&http.Client{Timeout: 10 * time.Second}, s.AdminURL()+"/livez"); err == nil {
		t.Fatal("an HTTPS client without the CA accepted the admin certificate")
	}
}

// TestAdminHTTPSClientAuth: with client auth need (admin.needClientAuth)
// only clients with a certificate from the CA get in, and the console
// reads with the certificate's x509 id, so ACLs apply to it.
func TestAdminHTTPSClientAuth(t *testing.T) {
	p := newTestPKI(t)
	s := adminTLSServer(t, p, func(c *Config) {
		c.AdminTLSCAFile, c.AdminTLSClientAuth = p.caFile, ClientAuthNeed
	})
	if _, _, err := get(httpsClient(p, nil), s.AdminURL()+"/livez"); err == nil {
		t.Fatal("admin request without a client certificate accepted")
	}
	alice, bob := httpsClient(p, &p.alice), httpsClient(p, &p.bob)
	if code, body, err := get(alice, s.AdminURL()+"/commands/ruok"); err != nil || code != 200 {
		t.Fatalf("ruok with a client certificate: %d %v %s", code, err, body)
	}

	zc, _, _ := connectZK(t, s.Addr().String(), 10*time.Second)
	acl := []zk.ACL{{Perms: zk.PermRead, Scheme: "x509", ID: p.alice.DN}}
	if _, err := zc.Create("/only-alice", []byte("secret"), 0, acl); err != nil {
		t.Fatal(err)
	}
	url := s.AdminURL() + "/console/api/node?path=/only-alice"
	code, body, err := get(alice, url)
	if err != nil || code != 200 || !strings.Contains(body, `"data":"c2VjcmV0"`) { // base64 of "secret"
		t.Fatalf("alice reads her node through the console: %d %v %s", code, err, body)
	}
	// The console shows bob the node's stat, as exists would, not its data.
	code, body, err = get(bob, url)
	if err != nil || code != 200 || !strings.Contains(body, `"readable":false`) || strings.Contains(body, "c2VjcmV0") {
		t.Fatalf("bob reads alice's node through the console: %d %v %s, want it unreadable", code, err, body)
	}
	// The x509 super user reads everything.
	code, body, err = get(httpsClient(p, &p.admin), url)
	if err != nil || code != 200 || !strings.Contains(body, `"data":"c2VjcmV0"`) {
		t.Fatalf("x509 super user: %d %v %s", code, err, body)
	}
}

// TestAdminPortUnification: admin.portUnification serves HTTPS and plain
// HTTP on one port, and a connection that sends nothing does not hold up
// the others.
func TestAdminPortUnification(t *testing.T) {
	p := newTestPKI(t)
	s := adminTLSServer(t, p, func(c *Config) { c.AdminPortUnification = true })
	silent, err := net.Dial("tcp", s.AdminAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if code, _, err := get(httpsClient(p, nil), s.AdminURL()+"/commands/ruok"); err != nil || code != 200 {
		t.Fatalf("HTTPS on the unified port: %d %v", code, err)
	}
	if code, _, err := get(http.DefaultClient, "http://"+s.AdminAddr().String()+"/commands/ruok"); err != nil || code != 200 {
		t.Fatalf("HTTP on the unified port: %d %v", code, err)
	}
}

// TestAdminTLSBadConfig: a misconfigured admin TLS fails the start with a
// clear error instead of serving plain HTTP.
func TestAdminTLSBadConfig(t *testing.T) {
	p := newTestPKI(t)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"missing file", func(c *Config) { c.AdminTLSCertFile = p.dir + "/nope.pem" }, "admin server TLS"},
		{"need without CA", func(c *Config) { c.AdminTLSCertFile, c.AdminTLSClientAuth = p.server.Both, "need" }, "needs a CA file"},
		{"bad client auth", func(c *Config) { c.AdminTLSCertFile, c.AdminTLSClientAuth = p.server.Both, "maybe" }, "bad TLS client auth"},
		{"unification without cert", func(c *Config) { c.AdminPortUnification = true }, "needs a certificate"},
		{"client auth without cert", func(c *Config) { c.AdminTLSClientAuth = "need" }, "need admin server TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}
			cfg.AdminAddr = "127.0.0.1:0"
			tc.mod(&cfg)
			s, err := New(cfg)
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
			var ne *net.OpError
			if errors.As(err, &ne) {
				t.Fatalf("a network error, not a configuration error: %v", err)
			}
		})
	}
}
