package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/paddockhq/paddock/internal/digestmd5"
	"github.com/paddockhq/paddock/internal/testpki"
	"github.com/paddockhq/paddock/internal/zkref"
	"github.com/paddockhq/paddock/proto"
)

// testPKI is a throw-away CA (internal/testpki) with the certificates the
// security tests use, written as PEM files into a temporary directory.
type testPKI struct {
	*testpki.CA
	dir, caFile string

	server, alice, bob, admin, tricky leafCert
}

// leafCert is one issued certificate: PEM files (Both holds the key and
// the certificate, the PEM "key store" ZooKeeper reads) and the pair.
type leafCert struct {
	*testpki.Leaf
	// DN is the subject as Java's X500Principal.getName() prints it.
	DN string
}

var (
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca := testpki.NewNamed(t, pkix.Name{CommonName: "Paddock Test CA", Organization: []string{"Paddock"}})
	p := &testPKI{CA: ca, dir: ca.Dir, caFile: ca.File}
	p.server = p.issue(t, "server", pkix.Name{CommonName: "localhost", Organization: []string{"Paddock"}}, true)
	p.alice = p.issue(t, "alice", pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"Paddock"}}, false)
	p.bob = p.issue(t, "bob", pkix.Name{CommonName: "bob", OrganizationalUnit: []string{"eng"}, Organization: []string{"Paddock"}}, false)
	p.admin = p.issue(t, "admin", pkix.Name{CommonName: "admin", Organization: []string{"Paddock"}}, false)
	// Characters RFC 2253 escapes, blanks at both ends, and attributes
	// Java prints by name (C, O, CN, DC) and by OID (serialNumber,
	// emailAddress).
	p.tricky = p.issue(t, "tricky", pkix.Name{
		Country:      []string{"US"},
		Organization: []string{"Acme, Inc."},
		CommonName:   ` Bob+Jr=<x>#;"\ `,
		SerialNumber: "1234",
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidEmail, Value: "bob@example.com"},
			{Type: oidDC, Value: "example"},
		},
	}, false)
	p.alice.DN = "CN=alice,OU=eng,O=Paddock"
	p.bob.DN = "CN=bob,OU=eng,O=Paddock"
	p.admin.DN = "CN=admin,O=Paddock"
	p.tricky.DN = `DC=example,1.2.840.113549.1.9.1=#0c0f626f62406578616d706c652e636f6d,2.5.4.5=#130431323334,` +
		`CN=\ Bob\+Jr\=\<x\>\#\;\"\\\ ,O=Acme\, Inc.,C=US`
	return p
}

func writePEMFile(t testing.TB, path string, data ...[]byte) {
	t.Helper()
	var all []byte
	for _, d := range data {
		all = append(all, d...)
	}
	if err := os.WriteFile(path, all, 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue signs a certificate for subject, for client and server use; a
// server certificate is valid for 127.0.0.1 and localhost.
func (p *testPKI) issue(t testing.TB, name string, subject pkix.Name, server bool) leafCert {
	t.Helper()
	return leafCert{Leaf: p.Issue(t, name, testpki.Options{Subject: subject, Localhost: server})}
}

// clientTLS is a client configuration trusting the test CA, presenting
// cert (nil: no certificate).
func (p *testPKI) clientTLS(cert *leafCert) *tls.Config {
	if cert == nil {
		return p.ClientConfig("localhost", nil)
	}
	return p.ClientConfig("localhost", cert.Leaf)
}

// tlsServer starts Paddock with the secure port and returns it.
func tlsServer(t testing.TB, p *testPKI, mod func(*Config)) *Server {
	return startServer(t, func(c *Config) {
		c.SecureListenAddr = "127.0.0.1:0"
		c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = p.server.Cert, p.server.Key, p.caFile
		c.SuperUserX509 = p.admin.DN
		if mod != nil {
			mod(c)
		}
	})
}

// connectZKTLS opens a go-zookeeper session through a TLS dialer.
func connectZKTLS(t testing.TB, addr string, cfg *tls.Config) *zk.Conn {
	t.Helper()
	dial := func(network, address string, timeout time.Duration) (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, network, address, cfg)
	}
	c, ev, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(nopLogger{}), zk.WithDialer(dial))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.After(15 * time.Second)
	for c.State() != zk.StateHasSession {
		select {
		case <-ev:
		case <-deadline:
			t.Fatalf("no session over TLS to %s, state %v", addr, c.State())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return c
}

// rawTLS opens a raw session over TLS.
func rawTLS(t testing.TB, addr string, cfg *tls.Config) *rawClient {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	if resp := c.connect(proto.ConnectRequest{TimeOut: 30000}); resp.SessionId == 0 {
		t.Fatalf("connect over TLS: %+v", resp)
	}
	return c
}

// authUsers returns whoAmI's users of one scheme.
func authUsers(c *rawClient, scheme string) []string {
	c.t.Helper()
	var resp proto.WhoAmIResponse
	if err := c.call(proto.OpWhoAmI, nil, &resp); err != proto.ErrOK {
		c.t.Fatalf("whoAmI: %v", err)
	}
	var out []string
	for _, ci := range resp.ClientInfo {
		if ci.AuthScheme == scheme {
			out = append(out, ci.User)
		}
	}
	return out
}

// x509Scenario is the TLS and x509 behaviour both Paddock and Apache
// ZooKeeper must show: the certificate subject becomes the x509 id, an
// x509 ACL admits exactly that certificate (and the super user), "auth"
// expands to it, and a client without a certificate is refused.
func x509Scenario(t *testing.T, secure, plain string, p *testPKI) {
	alice := connectZKTLS(t, secure, p.clientTLS(&p.alice))
	bob := connectZKTLS(t, secure, p.clientTLS(&p.bob))
	admin := connectZKTLS(t, secure, p.clientTLS(&p.admin))
	anon, _, _ := connectZK(t, plain, 10*time.Second)

	for _, l := range []leafCert{p.alice, p.tricky} {
		if got := authUsers(rawTLS(t, secure, p.clientTLS(&l)), "x509"); len(got) != 1 || got[0] != l.DN {
			t.Errorf("x509 ids of %s = %q, want [%q]", filepath.Base(l.Cert), got, l.DN)
		}
	}
	if got := authUsers(rawTLS(t, secure, p.clientTLS(&p.admin)), "super"); len(got) != 1 {
		t.Errorf("admin: super ids %q, want one", got)
	}

	path := fmt.Sprintf("/x509-%d", time.Now().UnixNano())
	acl := []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: p.alice.DN}}
	if _, err := alice.Create(path, []byte("alice's"), 0, acl); err != nil {
		t.Fatal(err)
	}
	if d, _, err := alice.Get(path); err != nil || string(d) != "alice's" {
		t.Errorf("alice get = %q, %v", d, err)
	}
	if _, _, err := bob.Get(path); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("bob get: %v, want NoAuth", err)
	}
	if _, _, err := anon.Get(path); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("plain-port get: %v, want NoAuth", err)
	}
	if _, _, err := admin.Get(path); err != nil {
		t.Errorf("super get: %v", err)
	}
	if _, err := alice.Create(path+"-auth", nil, 0, zk.AuthACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	got, _, err := alice.GetACL(path + "-auth")
	if err != nil || len(got) != 1 || got[0] != (zk.ACL{Perms: zk.PermAll, Scheme: "x509", ID: p.alice.DN}) {
		t.Errorf("auth ACL = %+v, %v", got, err)
	}

	// A client without a certificate: the server ends the handshake (TLS
	// 1.3 reports it on the first read).
	nc, err := tls.Dial("tcp", secure, p.clientTLS(nil))
	if err == nil {
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		writeFrame(t, nc, proto.Marshal(&proto.ConnectRequest{TimeOut: 30000}))
		if b, err := readFrame(nc); err == nil {
			t.Errorf("client without certificate got a reply: %x", b)
		}
	}
}

func TestTLSx509(t *testing.T) {
	p := newTestPKI(t)
	s := tlsServer(t, p, nil)
	x509Scenario(t, s.SecureAddr().String(), s.Addr().String(), p)
}

// TestTLSClientAuthModes checks want (a certificate is optional, and
// verified when sent) and none (no certificate asked, no x509 id).
func TestTLSClientAuthModes(t *testing.T) {
	p := newTestPKI(t)
	want := tlsServer(t, p, func(c *Config) { c.TLSClientAuth = ClientAuthWant })
	if got := authUsers(rawTLS(t, want.SecureAddr().String(), p.clientTLS(nil)), "x509"); len(got) != 0 {
		t.Errorf("want, no certificate: x509 ids %q", got)
	}
	if got := authUsers(rawTLS(t, want.SecureAddr().String(), p.clientTLS(&p.bob)), "x509"); len(got) != 1 || got[0] != p.bob.DN {
		t.Errorf("want, bob: x509 ids %q", got)
	}
	// none, with ZooKeeper's one-file PEM key store (key and certificate).
	none := tlsServer(t, p, func(c *Config) {
		c.TLSClientAuth = ClientAuthNone
		c.TLSCAFile = ""
		c.TLSCertFile, c.TLSKeyFile = p.server.Both, ""
	})
	if got := authUsers(rawTLS(t, none.SecureAddr().String(), p.clientTLS(&p.bob)), "x509"); len(got) != 0 {
		t.Errorf("none, bob: x509 ids %q", got)
	}
	// A certificate from another CA is refused in want mode.
	other := newTestPKI(t)
	nc, err := tls.Dial("tcp", want.SecureAddr().String(), &tls.Config{RootCAs: p.clientTLS(nil).RootCAs, ServerName: "localhost", Certificates: []tls.Certificate{other.bob.Pair}})
	if err == nil {
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		writeFrame(t, nc, proto.Marshal(&proto.ConnectRequest{TimeOut: 30000}))
		if _, err := readFrame(nc); err == nil {
			t.Error("certificate of an unknown CA accepted")
		}
		nc.Close()
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.TLSClientAuth = "maybe" },
		func(c *Config) { c.TLSCAFile = "" },
		func(c *Config) { c.TLSKeyFile = p.alice.Key },
	} {
		cfg := Config{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: testLogger()}
		cfg.SecureListenAddr = "127.0.0.1:0"
		cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = p.server.Cert, p.server.Key, p.caFile
		bad(&cfg)
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("bad TLS config accepted: %+v", cfg.SecurityConfig)
		}
	}
}

// TestTLSReload replaces the server certificate on disk: new handshakes
// use the new one.
func TestTLSReload(t *testing.T) {
	p := newTestPKI(t)
	s := tlsServer(t, p, nil)
	served := func() string {
		nc, err := tls.Dial("tcp", s.SecureAddr().String(), p.clientTLS(&p.alice))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		return nc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "localhost" {
		t.Fatalf("served CN %q", cn)
	}
	next := p.issue(t, "server2", pkix.Name{CommonName: "reloaded"}, true)
	for _, f := range [][2]string{{next.Cert, p.server.Cert}, {next.Key, p.server.Key}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for served() != "reloaded" {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeJAAS writes a server JAAS file with users bob (pw "bobpw") and
// admin, and client files for bob and for a wrong password.
func writeJAAS(t testing.TB) (server, clientBob, clientBad string) {
	dir := t.TempDir()
	server = filepath.Join(dir, "server.jaas")
	writePEMFile(t, server, []byte(`/* Paddock test users */
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_bob="bobpw"
       user_admin="adminpw"; // a comment
};
`))
	clientBob = filepath.Join(dir, "bob.jaas")
	writePEMFile(t, clientBob, []byte(`Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="bob"
       password="bobpw";
};
`))
	clientBad = filepath.Join(dir, "bad.jaas")
	writePEMFile(t, clientBad, []byte(`Client {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="bob"
       password="wrong";
};
`))
	return
}

func TestParseJAAS(t *testing.T) {
	secs, err := parseJAAS(`
// comment
Server {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  user_super="adminsecret" user_bob=bare
  debug=true;
  com.example.Other optional user_carol="c\"q";
};
Client { x.Y required username="bob" password="pw"; };`)
	if err != nil {
		t.Fatal(err)
	}
	if len(secs["Server"]) != 2 || secs["Server"][0].Options["user_bob"] != "bare" ||
		secs["Server"][1].Options["user_carol"] != `c"q` || secs["Client"][0].Options["password"] != "pw" {
		t.Errorf("%+v", secs)
	}
	for _, bad := range []string{`Server {`, `Server { a required x=; };`, `Server { a required x="y" }; `, `{ };`, `Server { a required; }`} {
		if _, err := parseJAAS(bad); err == nil {
			t.Errorf("parseJAAS(%q) accepted", bad)
		}
	}
	server, _, _ := writeJAAS(t)
	users, err := loadJAASUsers(server, "Server")
	if err != nil || len(users) != 2 || users["bob"] != "bobpw" || users["admin"] != "adminpw" {
		t.Errorf("users %v, %v", users, err)
	}
	if _, err := loadJAASUsers(server, "Other"); err == nil {
		t.Error("missing section accepted")
	}
}

// saslRaw runs a DIGEST-MD5 exchange over the wire with our own client
// code (the mechanism's arithmetic is checked against RFC 2831; this
// checks the framing), returning the final error code.
func saslRaw(c *rawClient, user, password string) proto.ErrCode {
	c.t.Helper()
	var resp proto.SetSASLResponse
	if err := c.call(proto.OpSasl, &proto.GetSASLRequest{Token: []byte{}}, &resp); err != proto.ErrOK {
		return err
	}
	ch, err := digestmd5.Parse(string(resp.Token))
	if err != nil {
		c.t.Fatalf("challenge %q: %v", resp.Token, err)
	}
	if ch["realm"] != "zk-sasl-md5" || (ch["qop"] != "" && ch["qop"] != "auth") || ch["algorithm"] != "md5-sess" {
		c.t.Errorf("challenge %q", resp.Token)
	}
	uri := "zookeeper/zk-sasl-md5"
	r := digestmd5.Response(user, ch["realm"], password, ch["nonce"], "cn0nce", "00000001", "auth", uri, "", true)
	msg := fmt.Sprintf(`charset=utf-8,username="%s",realm="%s",nonce="%s",nc=00000001,cnonce="cn0nce",digest-uri="%s",maxbuf=65536,response=%s,qop=auth`,
		user, ch["realm"], ch["nonce"], uri, r)
	xid := c.send(proto.OpSasl, &proto.GetSASLRequest{Token: []byte(msg)})
	b, rerr := readFrame(c.r)
	if rerr != nil {
		c.t.Fatalf("sasl reply: %v", rerr)
	}
	d := proto.NewDecoder(b)
	var h proto.ReplyHeader
	h.Decode(d)
	resp = proto.SetSASLResponse{}
	resp.Decode(d)
	if h.Xid != xid || h.Zxid != 0 || d.Err() != nil {
		c.t.Fatalf("sasl reply header %+v, %v", h, d.Err())
	}
	if h.Err == 0 {
		want := "rspauth=" + digestmd5.RspAuth(user, ch["realm"], password, ch["nonce"], "cn0nce", "00000001", "auth", uri, "", true)
		if string(resp.Token) != want {
			c.t.Errorf("final token %q, want %q", resp.Token, want)
		}
	} else if resp.Token != nil {
		c.t.Errorf("error reply with token %q", resp.Token)
	}
	return proto.ErrCode(h.Err)
}

// saslScenario is the SASL behaviour of both servers: users from the JAAS
// file authenticate, get sasl:<user> (super for the configured super
// user), a wrong password is AUTHFAILED and closes the connection.
func saslScenario(t *testing.T, addr string) {
	c := newRaw(t, addr)
	if err := saslRaw(c, "bob", "bobpw"); err != proto.ErrOK {
		t.Fatalf("bob: %v", err)
	}
	if got := authUsers(c, "sasl"); len(got) != 1 || got[0] != "bob" {
		t.Errorf("sasl ids %q", got)
	}
	if got := authUsers(c, "super"); len(got) != 0 {
		t.Errorf("bob is super: %q", got)
	}
	path := fmt.Sprintf("/sasl-%d", time.Now().UnixNano())
	var cr proto.CreateResponse
	acl := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "sasl", Id: "bob"}}}
	if err := c.call(proto.OpCreate, &proto.CreateRequest{Path: path, Data: []byte("x"), Acl: acl}, &cr); err != proto.ErrOK {
		t.Fatalf("create: %v", err)
	}
	other := newRaw(t, addr)
	var gr proto.GetDataResponse
	if err := other.call(proto.OpGetData, &proto.GetDataRequest{Path: path}, &gr); err != proto.ErrNoAuth {
		t.Errorf("unauthenticated get: %v", err)
	}
	admin := newRaw(t, addr)
	if err := saslRaw(admin, "admin", "adminpw"); err != proto.ErrOK {
		t.Fatalf("admin: %v", err)
	}
	if err := admin.call(proto.OpGetData, &proto.GetDataRequest{Path: path}, &gr); err != proto.ErrOK {
		t.Errorf("super get: %v", err)
	}

	for _, bad := range [][2]string{{"bob", "wrong"}, {"mallory", "x"}} {
		c := newRaw(t, addr)
		if err := saslRaw(c, bad[0], bad[1]); err != proto.ErrAuthFailed {
			t.Errorf("%s/%s: %v, want AUTHFAILED", bad[0], bad[1], err)
		}
		expectClosed(t, c.nc)
	}
}

func TestSASL(t *testing.T) {
	jaas, _, _ := writeJAAS(t)
	s := startServer(t, func(c *Config) { c.JAASFile = jaas; c.SaslSuperUser = "admin" })
	saslScenario(t, s.Addr().String())
}

// TestSASLUnconfigured: without a JAAS file ZooKeeper answers a sasl
// request OK with no token.
func TestSASLUnconfigured(t *testing.T) { saslUnconfigured(t, startServer(t, nil).Addr().String()) }

func saslUnconfigured(t *testing.T, addr string) {
	c := newRaw(t, addr)
	var resp proto.SetSASLResponse
	if err := c.call(proto.OpSasl, &proto.GetSASLRequest{Token: []byte{}}, &resp); err != proto.ErrOK || resp.Token != nil {
		t.Errorf("sasl without JAAS: %v %q", err, resp.Token)
	}
}

// enforceScenario: with sessionRequireClientSASLAuth, a request from a
// session that did not authenticate with SASL is answered
// SESSIONCLOSEDREQUIRESASLAUTH and the connection closed; after SASL the
// session works, and a failed SASL exchange answers the same code.
func enforceScenario(t *testing.T, addr string) {
	c := newRaw(t, addr)
	var er proto.ExistsResponse
	if err := c.call(proto.OpExists, &proto.ExistsRequest{Path: "/"}, &er); err != proto.ErrSessionClosedRequireSASL {
		t.Errorf("exists without SASL: %v", err)
	}
	expectClosed(t, c.nc)
	c = newRaw(t, addr)
	if err := saslRaw(c, "bob", "bobpw"); err != proto.ErrOK {
		t.Fatalf("sasl: %v", err)
	}
	if err := c.call(proto.OpExists, &proto.ExistsRequest{Path: "/"}, &er); err != proto.ErrOK {
		t.Errorf("exists after SASL: %v", err)
	}
	c = newRaw(t, addr)
	if err := saslRaw(c, "bob", "wrong"); err != proto.ErrSessionClosedRequireSASL {
		t.Errorf("failed SASL while required: %v", err)
	}
	expectClosed(t, c.nc)
}

func TestEnforceAuth(t *testing.T) {
	jaas, _, _ := writeJAAS(t)
	s := startServer(t, func(c *Config) { c.JAASFile = jaas; c.SessionRequireClientSASLAuth = true })
	enforceScenario(t, s.Addr().String())

	// enforce.auth.schemes=digest: addauth digest passes.
	s2 := startServer(t, func(c *Config) { c.EnforceAuth = true; c.EnforceAuthSchemes = []string{"digest"} })
	c := newRaw(t, s2.Addr().String())
	if err := c.call(proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte("u:p")}, nil); err != proto.ErrOK {
		t.Fatal(err)
	}
	var er proto.ExistsResponse
	if err := c.call(proto.OpExists, &proto.ExistsRequest{Path: "/"}, &er); err != proto.ErrOK {
		t.Errorf("exists after digest auth: %v", err)
	}
	for _, bad := range []SecurityConfig{{EnforceAuth: true}, {EnforceAuth: true, EnforceAuthSchemes: []string{"kerberos"}}, {JAASFile: "/nonexistent"}} {
		cfg := Config{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: testLogger(), SecurityConfig: bad}
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("bad config accepted: %+v", bad)
		}
	}
}

// requireTool skips (or fails in CI) when a client program is missing.
func requireTool(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", what, err)
		}
		t.Skipf("%s not available: %v", what, err)
	}
}

const python = "/usr/bin/python3"

func requireKazoo(t *testing.T, sasl bool) {
	t.Helper()
	requireTool(t, exec.Command(python, "-c", "import kazoo").Run(), "python3-kazoo")
	if sasl {
		requireTool(t, exec.Command(python, "-c", "import puresasl").Run(), "python3-pure-sasl")
	}
}

// kazoo runs testdata/kazoo_security.py.
func kazoo(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, append([]string{"testdata/kazoo_security.py"}, args...)...).CombinedOutput()
	return string(out), err
}

// zkCli runs Apache's zkCli.sh with a client JAAS file, commands on stdin.
func zkCli(t *testing.T, addr, jaas, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zkref.ZkCli, "-server", addr)
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "ZOO_LOG_DIR="+t.TempDir(),
		"CLIENT_JVMFLAGS=-Xmx128m -XX:TieredStopAtLevel=1 -Djava.security.auth.login.config="+jaas+" -Dzookeeper.sasl.client=true")
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("zkCli timed out:\n%s", out)
	}
	return string(out)
}

func requireZkCli(t *testing.T) {
	t.Helper()
	zkref.Require(t)
	_, err := os.Stat(zkref.ZkCli)
	requireTool(t, err, "zkCli.sh")
}

// clientsScenario runs the real clients: Kazoo over TLS with x509 ACLs,
// Kazoo with SASL DIGEST-MD5 (pure-sasl), and Apache's zkCli with SASL.
func kazooTLSScenario(t *testing.T, secure, plain string, p *testPKI) {
	requireKazoo(t, false)
	alice := connectZKTLS(t, secure, p.clientTLS(&p.alice))
	base := fmt.Sprintf("/kz-x509-%d", time.Now().UnixNano())
	if _, err := alice.Create(base+"-bob", []byte("bob's"), 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: p.bob.DN}}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Create(base+"-alice", []byte("alice's"), 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: p.alice.DN}}); err != nil {
		t.Fatal(err)
	}
	out, err := kazoo(t, "tls", secure, p.caFile, p.bob.Cert, p.bob.Key, base+"-bob", base+"-alice")
	if err != nil || !strings.Contains(out, "OK readable") || !strings.Contains(out, "OK noauth") {
		t.Fatalf("kazoo tls: %v\n%s", err, out)
	}
}

func kazooSASLScenario(t *testing.T, addr string) {
	requireKazoo(t, true)
	path := fmt.Sprintf("/kz-sasl-%d", time.Now().UnixNano())
	out, err := kazoo(t, "sasl", addr, "bob", "bobpw", path)
	if err != nil || !strings.Contains(out, "OK acl sasl:bob:31") {
		t.Fatalf("kazoo sasl: %v\n%s", err, out)
	}
	if out, err := kazoo(t, "sasl-read", addr, "admin", "adminpw", path); err != nil || !strings.Contains(out, "OK") {
		t.Errorf("kazoo sasl super read: %v\n%s", err, out)
	}
	if out, err := kazoo(t, "sasl-bad", addr, "bob", "wrong"); err != nil || !strings.Contains(out, "OK failed") {
		t.Errorf("kazoo sasl wrong password: %v\n%s", err, out)
	}
}

func zkCliSASLScenario(t *testing.T, addr string) {
	requireZkCli(t)
	_, bob, bad := writeJAAS(t)
	path := fmt.Sprintf("/cli-sasl-%d", time.Now().UnixNano())
	out := zkCli(t, addr, bob, "create "+path+" hello sasl:bob:cdrwa\ngetAcl "+path+"\nget "+path+"\nwhoami\nquit\n")
	for _, want := range []string{"SaslAuthenticated", "Created " + path, "'sasl,'bob", "hello", "sasl: bob"} {
		if !strings.Contains(out, want) {
			t.Errorf("zkCli with SASL: %q missing in output:\n%s", want, out)
		}
	}
	out = zkCli(t, addr, bad, "get "+path+"\nquit\n")
	if !strings.Contains(out, "AuthFailed") || strings.Contains(out, "hello") {
		t.Errorf("zkCli with a wrong password:\n%s", out)
	}
}

// TestSecurityClients runs the real clients against Paddock.
func TestSecurityClients(t *testing.T) {
	p := newTestPKI(t)
	jaas, _, _ := writeJAAS(t)
	s := tlsServer(t, p, func(c *Config) { c.JAASFile = jaas; c.SaslSuperUser = "admin" })
	secure, plain := s.SecureAddr().String(), s.Addr().String()
	t.Run("KazooTLS", func(t *testing.T) { kazooTLSScenario(t, secure, plain, p) })
	t.Run("KazooSASL", func(t *testing.T) { kazooSASLScenario(t, plain) })
	t.Run("ZkCliSASL", func(t *testing.T) { zkCliSASLScenario(t, plain) })
}

// Debian's zookeeper.jar manifest leaves netty-codec and netty-resolver
// off its Class-Path, so Apache ZooKeeper's Netty connection factory (the
// one with TLS) cannot load without them; add them to the reference
// server's class path when present.
func init() {
	for _, j := range []string{"/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar"} {
		if _, err := os.Stat(j); err == nil {
			zkref.LogJars = append(zkref.LogJars, j)
		}
	}
}

// startSecureZooKeeper runs Apache ZooKeeper with a Netty TLS port using
// the same PEM files, the x509 and sasl providers, the same JAAS file and
// super users, plus extra JVM flags.
func startSecureZooKeeper(t *testing.T, p *testPKI, jaas string, jvm ...string) (secure, plain string) {
	t.Helper()
	zkref.Require(t)
	ports, err := zkref.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	zs := zkref.Start(t, zkref.Options{
		TickTime: 200 * time.Millisecond,
		ExtraConfig: []string{
			fmt.Sprintf("secureClientPort=%d", ports[0]),
			"secureClientPortAddress=127.0.0.1",
			"serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
			"ssl.keyStore.location=" + p.server.Both,
			"ssl.keyStore.type=PEM",
			"ssl.trustStore.location=" + p.caFile,
			"ssl.trustStore.type=PEM",
			"authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
			"authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
		},
		JVMFlags: append([]string{
			"-Djava.security.auth.login.config=" + jaas,
			"-Dzookeeper.X509AuthenticationProvider.superUser=" + p.admin.DN,
			"-Dzookeeper.superUser=admin",
		}, jvm...),
	})
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(zs.LogFile); err == nil {
				lines := strings.Split(string(b), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("ZooKeeper log:\n%s", strings.Join(lines, "\n"))
			}
		}
	})
	return fmt.Sprintf("127.0.0.1:%d", ports[0]), zs.Addr
}

// TestSecurityAgainstZooKeeper runs the same scenarios against Apache
// ZooKeeper 3.8, so their expectations are ZooKeeper's.
func TestSecurityAgainstZooKeeper(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	p := newTestPKI(t)
	jaas, _, _ := writeJAAS(t)
	secure, plain := startSecureZooKeeper(t, p, jaas)
	t.Run("x509", func(t *testing.T) { x509Scenario(t, secure, plain, p) })
	t.Run("SASL", func(t *testing.T) { saslScenario(t, plain) })
	t.Run("KazooTLS", func(t *testing.T) { kazooTLSScenario(t, secure, plain, p) })
	t.Run("KazooSASL", func(t *testing.T) { kazooSASLScenario(t, plain) })
	t.Run("ZkCliSASL", func(t *testing.T) { zkCliSASLScenario(t, plain) })
	t.Run("SASLUnconfigured", func(t *testing.T) {
		saslUnconfigured(t, zkref.Start(t, zkref.Options{TickTime: 200 * time.Millisecond}).Addr)
	})
	t.Run("Enforce", func(t *testing.T) {
		_, plain := startSecureZooKeeper(t, p, jaas, "-Dzookeeper.sessionRequireClientSASLAuth=true")
		enforceScenario(t, plain)
	})
}
