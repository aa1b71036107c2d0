package console_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/testpki"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

// findChromium returns Debian's chromium (or another Chrome) binary. With
// CI=true a missing browser fails the test; otherwise the test is skipped.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PADDOCK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium); the console's browser test needs it in CI")
	}
	t.Skip("chromium not installed; skipping the browser test")
	return ""
}

// artifactDir is test-artifacts/console at the module root.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	out := filepath.Join(dir, "test-artifacts", "console")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBrowserEndToEnd drives the console in headless Chromium against a
// real `paddock server --console-writes`: walk the tree to a node a
// ZooKeeper client created, create and edit a node in the page, check the
// change through the client, and run into a version conflict.
func TestBrowserEndToEnd(t *testing.T) {
	chromium, arts, admin, srv := browserSetup(t)
	waitHTTP(t, http.DefaultClient, "http://"+admin+"/readyz")

	zc, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	must := func(_ string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	open := zk.WorldACL(zk.PermAll)
	must(zc.Create("/services", nil, 0, open))
	must(zc.Create("/services/payments", []byte(`{"host":"10.0.0.7","port":8080,"tags":["blue","eu"]}`), 0, open))
	must(zc.Create("/services/search", []byte("plain text config"), 0, open))
	must(zc.Create("/services/payments/instance-", []byte{0xca, 0xfe, 0x00, 0x01}, zk.FlagSequence, open))
	must(zc.Create("/locks", nil, 0, open))
	must(zc.Create("/locks/leader", []byte("member-1"), zk.FlagEphemeral, open))

	b := newBrowser(t, chromium, arts)
	step, text, waitText, shot := b.step, b.text, b.waitText, b.shot
	item := treeItem

	base := "http://" + admin
	// 1. Open the console: / redirects, the tree shows the root's children.
	step("open the console",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(item("/services"))),
		chromedp.WaitVisible(chromedp.CSS(`#writes-badge`)),
	)
	waitText("#writes-badge", "writes enabled")
	if c := text(item("/services") + " .count"); c != "2" {
		t.Fatalf("child count of /services = %q, want 2", c)
	}

	// 2. Walk the tree to the node the client created; JSON pretty-printed.
	step("walk to /services/payments",
		chromedp.Click(chromedp.CSS(item("/services")+" a.name")),
		chromedp.WaitVisible(chromedp.CSS(item("/services/payments"))),
		chromedp.Click(chromedp.CSS(item("/services/payments")+" a.name")),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/services/payments"]`)),
	)
	waitText("#data-view", `"port": 8080`)
	waitText(`#stat dd[data-field="numChildren"]`, "1")
	waitText("#acl", "anyone")
	shot("01-tree-json.png")
	// Hex view of binary data.
	step("open the binary child",
		chromedp.WaitVisible(chromedp.CSS(item("/services/payments/instance-0000000000"))),
		chromedp.Click(chromedp.CSS(item("/services/payments/instance-0000000000")+" a.name")),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/services/payments/instance-0000000000"]`)),
	)
	waitText("#data-view", "ca fe 00 01")

	// 3. Jump by path.
	step("jump to /locks/leader",
		chromedp.SetValue(chromedp.CSS("#jump-input"), "/locks/leader"),
		chromedp.Click(chromedp.CSS("#jump button")),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/locks/leader"]`)),
	)
	waitText("#data-view", "member-1")
	waitText(".meta", "ephemeral")

	// 4. Create a node in the page; the client sees it.
	step("create /services/orders",
		chromedp.Navigate(base+"/console/#/tree/services"),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/services"]`)),
		chromedp.Click(chromedp.CSS("#btn-new")),
		chromedp.WaitVisible(chromedp.CSS("#create-name")),
		chromedp.SetValue(chromedp.CSS("#create-name"), "orders"),
		chromedp.SetValue(chromedp.CSS("#create-data"), `{"queue":"orders","partitions":6}`),
		chromedp.Click(chromedp.CSS("#btn-create-ok")),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/services/orders"]`)),
	)
	waitText("#data-view", `"partitions": 6`)
	data, st, err := zc.Get("/services/orders")
	if err != nil || string(data) != `{"queue":"orders","partitions":6}` || st.Version != 0 {
		t.Fatalf("client sees /services/orders = %q %+v %v", data, st, err)
	}
	if c := text(item("/services") + " .count"); c != "3" {
		t.Fatalf("child count of /services after create = %q, want 3", c)
	}
	shot("02-created.png")

	// 5. Edit it; the client sees the new data and version.
	step("edit /services/orders",
		chromedp.Click(chromedp.CSS("#btn-edit")),
		chromedp.WaitVisible(chromedp.CSS("#edit-data")),
		chromedp.SetValue(chromedp.CSS("#edit-data"), `{"queue":"orders","partitions":12}`),
		chromedp.Click(chromedp.CSS("#btn-save")),
		chromedp.WaitVisible(chromedp.CSS("#saved")),
	)
	waitText("#data-view", `"partitions": 12`)
	data, st, err = zc.Get("/services/orders")
	if err != nil || string(data) != `{"queue":"orders","partitions":12}` || st.Version != 1 {
		t.Fatalf("client sees %q %+v %v after the edit", data, st, err)
	}

	// 6. A stale edit: the client changes the node while the page edits
	// version 1. The page shows the conflict and saves nothing.
	step("start a second edit",
		chromedp.Click(chromedp.CSS("#btn-edit")),
		chromedp.WaitVisible(chromedp.CSS("#edit-data")),
	)
	if _, err := zc.Set("/services/orders", []byte(`{"queue":"orders","partitions":24}`), 1); err != nil {
		t.Fatal(err)
	}
	step("save the stale edit",
		chromedp.SetValue(chromedp.CSS("#edit-data"), `{"queue":"orders","partitions":1}`),
		chromedp.Click(chromedp.CSS("#btn-save")),
		chromedp.WaitVisible(chromedp.CSS("#conflict")),
	)
	msg := waitText("#conflict", "Version conflict")
	if !strings.Contains(msg, "You edited version 1") || !strings.Contains(msg, "now at version 2") {
		t.Fatalf("conflict message = %q", msg)
	}
	shot("03-conflict.png")
	if data, _, _ := zc.Get("/services/orders"); string(data) != `{"queue":"orders","partitions":24}` {
		t.Fatalf("the stale edit was saved: %q", data)
	}
	// Overwrite on purpose, at the version the conflict reported.
	step("overwrite",
		chromedp.Click(chromedp.CSS("#btn-overwrite")),
		chromedp.WaitVisible(chromedp.CSS("#saved")),
	)
	if data, st, _ := zc.Get("/services/orders"); string(data) != `{"queue":"orders","partitions":1}` || st.Version != 3 {
		t.Fatalf("after overwrite the client sees %q version %d", data, st.Version)
	}

	// 7. Search by name.
	step("search",
		chromedp.SetValue(chromedp.CSS("#jump-input"), "instance"),
		chromedp.Click(chromedp.CSS("#jump button")),
		chromedp.WaitVisible(chromedp.CSS("#search-results a")),
	)
	waitText("#search-results", "/services/payments/instance-0000000000")

	// 8. Sessions (the client's, with its ephemeral), watches, ensemble.
	sid := fmt.Sprintf("0x%x", zc.SessionID())
	if _, _, _, err := zc.GetW("/services/payments"); err != nil {
		t.Fatal(err)
	}
	step("sessions",
		chromedp.Navigate(base+"/console/#/sessions"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#sessions tr[data-session=%q]`, sid))),
	)
	waitText(fmt.Sprintf(`#sessions tr[data-session=%q]`, sid), "/locks/leader")
	shot("04-sessions.png")
	step("watches",
		chromedp.Navigate(base+"/console/#/watches"),
		chromedp.WaitVisible(chromedp.CSS("#watches-by-path")),
	)
	waitText("#watches-by-path", "/services/payments")
	step("ensemble",
		chromedp.Navigate(base+"/console/#/ensemble"),
		chromedp.WaitVisible(chromedp.CSS(`#members tr[data-member="1"]`)),
	)
	waitText("#members", "standalone")
	shot("05-ensemble.png")

	// 9. Delete the node from the page.
	step("delete /services/search",
		chromedp.Navigate(base+"/console/#/tree/services/search"),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/services/search"]`)),
		chromedp.Click(chromedp.CSS("#btn-delete")),
		chromedp.WaitVisible(chromedp.CSS("#btn-delete-ok")),
		chromedp.Click(chromedp.CSS("#btn-delete-ok")),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/services"]`)),
	)
	if ok, _, _ := zc.Exists("/services/search"); ok {
		t.Fatal("/services/search still exists after the page deleted it")
	}
	// Back to the edited node for a final picture of the node view.
	step("final node view",
		chromedp.Navigate(base+"/console/#/tree/services/payments"),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/services/payments"]`)),
	)
	waitText("#data-view", `"port": 8080`)
	shot("00-console.png")
}

// browser is a headless Chromium for one test, with the helpers the
// console tests drive it by. Every action is bounded, so a missing element
// fails fast with a screenshot and the page's text.
type browser struct {
	t    *testing.T
	arts string
	bctx context.Context // the browser's own context
	ctx  context.Context // bounds the whole test
}

func newBrowser(t *testing.T, chromium, arts string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	// The first action on the browser's own context starts Chromium; the
	// timeouts below are children of it, so ending one does not end the
	// browser.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	t.Cleanup(cancel)
	return &browser{t: t, arts: arts, bctx: bctx, ctx: ctx}
}

// shot saves a screenshot as a test artifact.
func (b *browser) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.arts, name), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// fail records what the page shows (best effort) and stops the test.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	b.t.Errorf(format, args...)
	sctx, scancel := context.WithTimeout(b.bctx, 10*time.Second)
	defer scancel()
	if buf, err := chromedp.Run(sctx, chromedp.CaptureScreenshot()); err == nil {
		os.WriteFile(filepath.Join(b.arts, "failed.png"), buf, 0o644)
		b.t.Logf("screenshot of the failure: %s", filepath.Join(b.arts, "failed.png"))
	}
	if body, err := chromedp.Run(sctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)); err == nil {
		b.t.Logf("page text:\n%s", body)
	}
	b.t.FailNow()
}

// step runs actions, each bounded so a missing element fails fast.
func (b *browser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for i, a := range actions {
		sctx, scancel := context.WithTimeout(b.ctx, 15*time.Second)
		err := chromedp.Do(sctx, a)
		scancel()
		if err != nil {
			b.fail("%s (action %d): %v", what, i+1, err)
		}
	}
}

// text returns the text of the element sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	sctx, scancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer scancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("text of %s: %v", sel, err)
	}
	return s
}

// waitText polls until the element's text contains want.
func (b *browser) waitText(sel, want string) string {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`(document.querySelector(%q) || {}).textContent || ""`, sel)))
		if err == nil && strings.Contains(s, want) {
			return s
		}
		got = s
		time.Sleep(100 * time.Millisecond)
	}
	b.fail("%s: want text containing %q, have %q", sel, want, got)
	return ""
}

// treeItem selects the tree row of path.
func treeItem(path string) string { return fmt.Sprintf(`#tree li[data-path=%q] > .row`, path) }

// browserSetup skips the test in -short mode, finds Chromium and the
// artifact directory, and starts `paddock server --console-writes` (plus
// extra flags) with its admin server on a free port.
func browserSetup(t *testing.T, extra ...string) (chromium, arts, admin string, srv *testserver.Server) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	chromium = findChromium(t)
	arts = artifactDir(t)
	ports, err := zkref.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	admin = fmt.Sprintf("127.0.0.1:%d", ports[0])
	srv = testserver.Start(t, testserver.Options{AdminAddr: admin, ExtraArgs: append([]string{"--console-writes"}, extra...)})
	return chromium, arts, admin, srv
}

// waitHTTP waits until url answers 200 through c.
func waitHTTP(t *testing.T, c *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			err = errors.New("status " + resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready: %v", url, last)
}

// TestBrowserHTTPS opens the console over HTTPS: `paddock server
// --admin-tls-cert` with a certificate of a test CA, Chromium told to
// accept it. The page loads, walks the tree and creates a node, which a
// ZooKeeper client then reads.
func TestBrowserHTTPS(t *testing.T) {
	certFile, pool := selfSigned(t)
	chromium, arts, admin, srv := browserSetup(t, "--admin-tls-cert", certFile)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + admin
	waitHTTP(t, hc, base+"/readyz")
	zc, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	if _, err := zc.Create("/tls", []byte("over https"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, chromium, arts, chromedp.Flag("ignore-certificate-errors", true))
	b.step("open the console over HTTPS",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(treeItem("/tls"))),
		chromedp.Click(chromedp.CSS(treeItem("/tls")+" a.name")),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/tls"]`)),
	)
	b.waitText("#data-view", "over https")
	b.step("create /tls/child",
		chromedp.Click(chromedp.CSS("#btn-new")),
		chromedp.WaitVisible(chromedp.CSS("#create-name")),
		chromedp.SetValue(chromedp.CSS("#create-name"), "child"),
		chromedp.SetValue(chromedp.CSS("#create-data"), "made over https"),
		chromedp.Click(chromedp.CSS("#btn-create-ok")),
		chromedp.WaitVisible(chromedp.CSS(`#node-path[data-path="/tls/child"]`)),
	)
	b.shot("06-https.png")
	if data, _, err := zc.Get("/tls/child"); err != nil || string(data) != "made over https" {
		t.Fatalf("client sees /tls/child = %q %v", data, err)
	}
}

// selfSigned writes a self-signed certificate and key for 127.0.0.1 into
// one PEM file (the key store form --admin-tls-cert reads) and returns it
// with a pool trusting it.
func selfSigned(t *testing.T) (string, *x509.CertPool) {
	t.Helper()
	l := testpki.SelfSigned(t, "admin", testpki.Options{
		Subject: pkix.Name{CommonName: "paddock console test"},
		IPs:     []net.IP{net.IPv4(127, 0, 0, 1)},
		Usage:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return l.Both, l.Pool()
}
