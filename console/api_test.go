package console_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/console"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/server"
)

func testLogger() *slog.Logger {
	if os.Getenv("PADDOCK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs an in-process server with the admin server (and so
// the console) on a loopback port, and returns it with the console's base
// URL.
func startServer(t *testing.T, mod func(*server.Config)) (*server.Server, string) {
	t.Helper()
	cfg := server.Config{
		ListenAddr:    "127.0.0.1:0",
		DataDir:       t.TempDir(),
		TickTime:      100 * time.Millisecond,
		ExtendedTypes: true,
		Logger:        testLogger(),
	}
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.ConsoleWrites = true
	if mod != nil {
		mod(&cfg)
	}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(context.Background())
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return s, "http://" + s.AdminAddr().String()
}

func connect(t *testing.T, s *server.Server) *zk.Conn {
	t.Helper()
	c, ev, err := zk.Connect([]string{s.Addr().String()}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				go func() {
					for range ev {
					}
				}()
				return c
			}
		case <-deadline:
			t.Fatal("no session")
		}
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// call makes one API request; user "" sends no credentials.
type call struct {
	method, path string
	body         any
	user, pass   string
	noHeader     bool
}

func do(t *testing.T, base string, c call) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if c.body != nil {
		b, _ := json.Marshal(c.body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(c.method, base+c.path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if c.method != http.MethodGet && !c.noHeader {
		req.Header.Set("X-Paddock-Console", "1")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: not JSON (%d): %s", c.method, c.path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func digest(user, pass string) string {
	sum := sha1.Sum([]byte(user + ":" + pass))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

func TestStaticAndRedirect(t *testing.T) {
	_, base := startServer(t, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("GET / = %d %q, want 302 to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, want := range map[string]string{
		"/console/":            "text/html",
		"/console/app.js":      "javascript",
		"/console/app.css":     "text/css",
		"/console/favicon.svg": "image/svg+xml",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), want) || len(body) == 0 {
			t.Errorf("GET %s = %d %q (%d bytes), want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), want)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", path)
		}
		// No asset may load anything from another origin.
		text := strings.ReplaceAll(string(body), `xmlns="http://www.w3.org/2000/svg"`, "")
		if strings.Contains(text, "http://") || strings.Contains(text, "https://") {
			t.Errorf("%s refers to an external URL", path)
		}
	}
	// The admin commands still answer next to the console.
	resp, err = http.Get(base + "/commands/ruok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/commands/ruok = %d", resp.StatusCode)
	}
	if code, out := do(t, base, call{method: "GET", path: "/console/api/nope"}); code != 404 || out["error"] != "NotFound" {
		t.Fatalf("unknown API = %d %v", code, out)
	}
}

func TestReadOnlyByDefault(t *testing.T) {
	_, base := startServer(t, func(c *server.Config) { c.ConsoleWrites = false })
	code, out := do(t, base, call{method: "GET", path: "/console/api/info"})
	if code != 200 || out["writes"] != false {
		t.Fatalf("info = %d %v", code, out)
	}
	code, out = do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/x"}})
	if code != http.StatusForbidden || out["error"] != "ReadOnly" {
		t.Fatalf("create on read-only console = %d %v", code, out)
	}
	code, out = do(t, base, call{method: "DELETE", path: "/console/api/node?path=/zookeeper&version=-1"})
	if code != http.StatusForbidden || out["error"] != "ReadOnly" {
		t.Fatalf("delete on read-only console = %d %v", code, out)
	}
}

func TestWritesNeedHeader(t *testing.T) {
	_, base := startServer(t, nil)
	code, out := do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/x"}, noHeader: true})
	if code != http.StatusForbidden || out["error"] != "MissingHeader" {
		t.Fatalf("write without header = %d %v", code, out)
	}
}

func TestCreateEditDeleteWithVersions(t *testing.T) {
	s, base := startServer(t, nil)
	zc := connect(t, s)

	code, out := do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/app", "data": `{"replicas":3}`}})
	if code != http.StatusCreated || out["path"] != "/app" {
		t.Fatalf("create = %d %v", code, out)
	}
	data, st, err := zc.Get("/app")
	if err != nil || string(data) != `{"replicas":3}` || st.Version != 0 {
		t.Fatalf("zk get after console create = %q %+v %v", data, st, err)
	}
	if code, out = do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/app"}}); code != http.StatusConflict || out["error"] != "NodeExists" {
		t.Fatalf("create twice = %d %v", code, out)
	}
	// Sequential and binary data.
	code, out = do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{
		"path": "/app/job-", "mode": "persistent_sequential", "data": base64.StdEncoding.EncodeToString([]byte{0, 1, 0xff}), "encoding": "base64"}})
	if code != http.StatusCreated || out["path"] != "/app/job-0000000000" {
		t.Fatalf("sequential create = %d %v", code, out)
	}
	if data, _, _ := zc.Get("/app/job-0000000000"); !bytes.Equal(data, []byte{0, 1, 0xff}) {
		t.Fatalf("binary data = %x", data)
	}

	// Edit at the version read.
	code, out = do(t, base, call{method: "PUT", path: "/console/api/node", body: map[string]any{"path": "/app", "data": `{"replicas":5}`, "version": 0}})
	if code != 200 || out["stat"].(map[string]any)["version"] != 1.0 {
		t.Fatalf("setData = %d %v", code, out)
	}
	if data, _, _ := zc.Get("/app"); string(data) != `{"replicas":5}` {
		t.Fatalf("zk sees %q after console edit", data)
	}
	// A client changes it; the console's stale edit conflicts and says
	// what the node is now.
	if _, err := zc.Set("/app", []byte("client"), 1); err != nil {
		t.Fatal(err)
	}
	code, out = do(t, base, call{method: "PUT", path: "/console/api/node", body: map[string]any{"path": "/app", "data": "stale", "version": 1}})
	if code != http.StatusConflict || out["error"] != "BadVersion" || out["code"] != float64(proto.ErrBadVersion) {
		t.Fatalf("stale edit = %d %v", code, out)
	}
	if cur := out["current"].(map[string]any); cur["version"] != 2.0 {
		t.Fatalf("conflict current = %v", cur)
	}
	if data, _, _ := zc.Get("/app"); string(data) != "client" {
		t.Fatalf("stale edit was applied: %q", data)
	}
	if code, out = do(t, base, call{method: "PUT", path: "/console/api/node", body: map[string]any{"path": "/app", "data": "x"}}); code != 400 {
		t.Fatalf("setData without version = %d %v", code, out)
	}

	// Delete: not empty, wrong version, then right.
	if code, out = do(t, base, call{method: "DELETE", path: "/console/api/node?path=/app&version=2"}); code != http.StatusConflict || out["error"] != "NotEmpty" {
		t.Fatalf("delete non-empty = %d %v", code, out)
	}
	if code, out = do(t, base, call{method: "DELETE", path: "/console/api/node?path=/app/job-0000000000&version=7"}); code != http.StatusConflict || out["error"] != "BadVersion" {
		t.Fatalf("delete stale = %d %v", code, out)
	}
	if code, out = do(t, base, call{method: "DELETE", path: "/console/api/node?path=/app/job-0000000000&version=0"}); code != 200 {
		t.Fatalf("delete = %d %v", code, out)
	}
	if ok, _, _ := zc.Exists("/app/job-0000000000"); ok {
		t.Fatal("deleted node still exists for the client")
	}
	if code, out = do(t, base, call{method: "GET", path: "/console/api/node?path=/nope"}); code != 404 || out["error"] != "NoNode" {
		t.Fatalf("get missing = %d %v", code, out)
	}
	// Container and TTL nodes.
	if code, out = do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/c", "mode": "container"}}); code != 201 {
		t.Fatalf("container = %d %v", code, out)
	}
	if code, out = do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/ttl", "mode": "persistent_ttl", "ttl": 60000}}); code != 201 {
		t.Fatalf("ttl = %d %v", code, out)
	}
	if code, out = do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/e", "mode": "ephemeral"}}); code != 400 {
		t.Fatalf("ephemeral = %d %v", code, out)
	}

	// The node view: data, stat with ZooKeeper's names, ACL.
	code, out = do(t, base, call{method: "GET", path: "/console/api/node?path=/app"})
	if code != 200 || out["data"] != base64.StdEncoding.EncodeToString([]byte("client")) {
		t.Fatalf("node = %d %v", code, out)
	}
	st2 := out["stat"].(map[string]any)
	for _, k := range []string{"czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner", "dataLength", "numChildren", "pzxid"} {
		if _, ok := st2[k]; !ok {
			t.Errorf("stat lacks %s: %v", k, st2)
		}
	}
	acl := out["acl"].([]any)[0].(map[string]any)
	if acl["scheme"] != "world" || acl["id"] != "anyone" || acl["perms"] != "cdrwa" {
		t.Fatalf("acl = %v", acl)
	}
}

func TestChildrenPagedAndSearch(t *testing.T) {
	s, base := startServer(t, nil)
	zc := connect(t, s)
	zc.Create("/wide", nil, 0, zk.WorldACL(zk.PermAll))
	for i := 0; i < 250; i++ {
		if _, err := zc.Create(fmt.Sprintf("/wide/n%03d", i), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	zc.Create("/wide/n007/deep", nil, 0, zk.WorldACL(zk.PermAll))
	code, out := do(t, base, call{method: "GET", path: "/console/api/children?path=/wide&offset=200&limit=100"})
	if code != 200 || out["total"] != 250.0 || len(out["children"].([]any)) != 50 {
		t.Fatalf("page = %d total %v len %d", code, out["total"], len(out["children"].([]any)))
	}
	first := out["children"].([]any)[0].(map[string]any)
	if first["name"] != "n200" || first["path"] != "/wide/n200" {
		t.Fatalf("first of page = %v", first)
	}
	code, out = do(t, base, call{method: "GET", path: "/console/api/children?path=/wide&filter=n00"})
	if code != 200 || out["total"] != 10.0 {
		t.Fatalf("filter = %d %v", code, out["total"])
	}
	if c := out["children"].([]any)[7].(map[string]any); c["name"] != "n007" || c["numChildren"] != 1.0 {
		t.Fatalf("child count = %v", c)
	}
	code, out = do(t, base, call{method: "GET", path: "/console/api/search?q=deep"})
	if code != 200 || len(out["paths"].([]any)) != 1 || out["paths"].([]any)[0] != "/wide/n007/deep" {
		t.Fatalf("search = %d %v", code, out)
	}
	code, out = do(t, base, call{method: "GET", path: "/console/api/search?q=n&limit=5"})
	if code != 200 || len(out["paths"].([]any)) != 5 || out["more"] != true {
		t.Fatalf("search limit = %d %v", code, out)
	}
}

func TestACLsApplyToConsoleUser(t *testing.T) {
	s, base := startServer(t, func(c *server.Config) { c.SuperDigest = digest("super", "test") })
	zc := connect(t, s)
	bob := digest("bob", "secret")
	if _, err := zc.Create("/private", []byte("mine"), 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "digest", ID: bob}}); err != nil {
		t.Fatal(err)
	}
	zc.Create("/private2", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "digest", ID: bob}})

	// Anonymous: the stat is visible (exists needs no permission), the
	// data is not, writes are refused with NoAuth.
	code, out := do(t, base, call{method: "GET", path: "/console/api/node?path=/private"})
	if code != 200 || out["readable"] != false || out["data"] != nil {
		t.Fatalf("anonymous read = %d %v", code, out)
	}
	code, out = do(t, base, call{method: "PUT", path: "/console/api/node", body: map[string]any{"path": "/private", "data": "x", "version": -1}})
	if code != http.StatusForbidden || out["error"] != "NoAuth" {
		t.Fatalf("anonymous write = %d %v", code, out)
	}
	// Wrong password: another digest id, still refused.
	code, _ = do(t, base, call{method: "PUT", path: "/console/api/node", body: map[string]any{"path": "/private", "data": "x", "version": -1}, user: "bob", pass: "wrong"})
	if code != http.StatusForbidden {
		t.Fatalf("wrong password write = %d", code)
	}
	// bob.
	code, out = do(t, base, call{method: "GET", path: "/console/api/node?path=/private", user: "bob", pass: "secret"})
	if code != 200 || out["readable"] != true {
		t.Fatalf("bob read = %d %v", code, out)
	}
	code, out = do(t, base, call{method: "PUT", path: "/console/api/node", body: map[string]any{"path": "/private", "data": "bob", "version": 0}, user: "bob", pass: "secret"})
	if code != 200 {
		t.Fatalf("bob write = %d %v", code, out)
	}
	// Nodes bob creates with the auth ACL are his (CREATOR_ALL_ACL).
	code, out = do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/private/child", "acl": "auth::cdrwa"}, user: "bob", pass: "secret"})
	if code != 201 {
		t.Fatalf("bob create = %d %v", code, out)
	}
	if err := zc.AddAuth("digest", []byte("bob:secret")); err != nil {
		t.Fatal(err)
	}
	acls, _, err := zc.GetACL("/private/child")
	if err != nil || len(acls) != 1 || acls[0].Scheme != "digest" || acls[0].ID != bob {
		t.Fatalf("ACL of bob's node = %v %v", acls, err)
	}
	// Search hides the names under a node the caller may not list.
	if _, out = do(t, base, call{method: "GET", path: "/console/api/search?q=child"}); len(out["paths"].([]any)) != 0 {
		t.Fatalf("anonymous search sees %v", out["paths"])
	}
	if _, out = do(t, base, call{method: "GET", path: "/console/api/search?q=child", user: "bob", pass: "secret"}); len(out["paths"].([]any)) != 1 {
		t.Fatalf("bob's search sees %v", out["paths"])
	}
	// The super user reads and writes anything.
	code, out = do(t, base, call{method: "DELETE", path: "/console/api/node?path=/private2&version=-1", user: "super", pass: "test"})
	if code != 200 {
		t.Fatalf("super delete = %d %v", code, out)
	}
	_, out = do(t, base, call{method: "GET", path: "/console/api/info", user: "super", pass: "test"})
	if !strings.Contains(fmt.Sprint(out["identity"]), "super") {
		t.Fatalf("super identity = %v", out["identity"])
	}
	// setACL with aversion.
	code, out = do(t, base, call{method: "PUT", path: "/console/api/acl", body: map[string]any{"path": "/private", "acl": "world:anyone:r", "version": 0}, user: "bob", pass: "secret"})
	if code != 200 {
		t.Fatalf("setACL = %d %v", code, out)
	}
	if code, out = do(t, base, call{method: "GET", path: "/console/api/node?path=/private"}); out["readable"] != true {
		t.Fatalf("after setACL anonymous read = %d %v", code, out)
	}
	if code, out = do(t, base, call{method: "PUT", path: "/console/api/acl", body: map[string]any{"path": "/private", "acl": "world:anyone:rx", "version": -1}, user: "super", pass: "test"}); code != 400 {
		t.Fatalf("bad ACL = %d %v", code, out)
	}
}

func TestEnforcedAuth(t *testing.T) {
	_, base := startServer(t, func(c *server.Config) {
		c.EnforceAuth = true
		c.EnforceAuthSchemes = []string{"digest"}
	})
	if code, out := do(t, base, call{method: "GET", path: "/console/api/node?path=/"}); code != http.StatusUnauthorized || out["error"] != "AuthRequired" {
		t.Fatalf("unauthenticated = %d %v", code, out)
	}
	if code, out := do(t, base, call{method: "GET", path: "/console/api/node?path=/", user: "alice", pass: "pw"}); code != 200 {
		t.Fatalf("authenticated = %d %v", code, out)
	}
}

func TestSessionsWatchesEnsemble(t *testing.T) {
	s, base := startServer(t, nil)
	zc := connect(t, s)
	if _, err := zc.Create("/lock", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := zc.GetW("/lock"); err != nil {
		t.Fatal(err)
	}
	sid := fmt.Sprintf("0x%x", zc.SessionID())
	_, out := do(t, base, call{method: "GET", path: "/console/api/sessions"})
	var found bool
	for _, x := range out["sessions"].([]any) {
		ss := x.(map[string]any)
		if ss["id"] == sid {
			found = true
			if fmt.Sprint(ss["ephemerals"]) != "[/lock]" || ss["connected"] == "" || ss["watches"] != 1.0 {
				t.Fatalf("session = %v", ss)
			}
		}
	}
	if !found {
		t.Fatalf("session %s not listed: %v", sid, out)
	}
	_, out = do(t, base, call{method: "GET", path: "/console/api/watches"})
	bp := out["byPath"].([]any)
	if len(bp) != 1 || bp[0].(map[string]any)["path"] != "/lock" || fmt.Sprint(bp[0].(map[string]any)["sessions"]) != "["+sid+"]" {
		t.Fatalf("watches = %v", out)
	}
	_, out = do(t, base, call{method: "GET", path: "/console/api/ensemble"})
	ms := out["members"].([]any)
	if out["standalone"] != true || len(ms) != 1 || ms[0].(map[string]any)["state"] != "standalone" || ms[0].(map[string]any)["health"] != "ok" {
		t.Fatalf("ensemble = %v", out)
	}
	if len(out["leaderChanges"].([]any)) == 0 {
		t.Fatalf("no leader change recorded: %v", out)
	}
	// The console's own write session is marked once it exists.
	do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/x"}})
	_, out = do(t, base, call{method: "GET", path: "/console/api/sessions"})
	consoles := 0
	for _, x := range out["sessions"].([]any) {
		if x.(map[string]any)["console"] == true {
			consoles++
		}
	}
	if consoles != 1 {
		t.Fatalf("console sessions = %d: %v", consoles, out)
	}
}

// The console reopens its session when the old one expired.
func TestConsoleSessionRenewed(t *testing.T) {
	s, base := startServer(t, func(c *server.Config) {
		c.MinSessionTimeout = 200 * time.Millisecond
		c.MaxSessionTimeout = 200 * time.Millisecond
	})
	if code, out := do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/a"}}); code != 201 {
		t.Fatalf("create = %d %v", code, out)
	}
	_, out := do(t, base, call{method: "GET", path: "/console/api/info"})
	first := out["session"]
	time.Sleep(800 * time.Millisecond)
	if code, out := do(t, base, call{method: "POST", path: "/console/api/node", body: map[string]any{"path": "/b"}}); code != 201 {
		t.Fatalf("create after expiry = %d %v", code, out)
	}
	_, out = do(t, base, call{method: "GET", path: "/console/api/info"})
	if out["session"] == first {
		t.Fatalf("session not renewed: %v", out["session"])
	}
	_ = s
}

func TestParseACL(t *testing.T) {
	acl, err := console.ParseACL("digest:bob:abc=:rw, ip:10.0.0.0/8:cdrwa")
	if err != nil || len(acl) != 2 || acl[0].Id.Id != "bob:abc=" || acl[0].Perms != proto.PermRead|proto.PermWrite || acl[1].Perms != proto.PermAll {
		t.Fatalf("ParseACL = %v %v", acl, err)
	}
	if _, err := console.ParseACL("world:anyone"); err == nil {
		t.Fatal("ParseACL accepted a missing perms field")
	}
	if acl, _ := console.ParseACL(""); acl[0].Id.Scheme != "world" {
		t.Fatalf("default ACL = %v", acl)
	}
}
