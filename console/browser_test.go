package console_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-zookeeper/zk"

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
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	chromium := findChromium(t)
	arts := artifactDir(t)
	ports, err := zkref.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", ports[0])
	srv := testserver.Start(t, testserver.Options{AdminAddr: admin, ExtraArgs: []string{"--console-writes"}})
	waitHTTP(t, "http://"+admin+"/readyz")

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

	opts := []chromedp.ExecAllocatorOption{
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
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	// The first action on the browser's own context starts Chromium; the
	// timeouts below are children of it, so ending one does not end the
	// browser.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	defer cancel()

	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(arts, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// fail records what the page shows (best effort) and stops the test.
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		sctx, scancel := context.WithTimeout(bctx, 10*time.Second)
		defer scancel()
		if buf, err := chromedp.Run(sctx, chromedp.CaptureScreenshot()); err == nil {
			os.WriteFile(filepath.Join(arts, "failed.png"), buf, 0o644)
			t.Logf("screenshot of the failure: %s", filepath.Join(arts, "failed.png"))
		}
		if body, err := chromedp.Run(sctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)); err == nil {
			t.Logf("page text:\n%s", body)
		}
		t.FailNow()
	}
	// step runs actions, each bounded so a missing element fails fast.
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, a := range actions {
			sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
			err := chromedp.Do(sctx, a)
			scancel()
			if err != nil {
				fail("%s (action %d): %v", what, i+1, err)
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
		defer scancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail("text of %s: %v", sel, err)
		}
		return s
	}
	// waitText polls until the element's text contains want.
	waitText := func(sel, want string) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		var got string
		for time.Now().Before(deadline) {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
				`(document.querySelector(%q) || {}).textContent || ""`, sel)))
			if err == nil && strings.Contains(s, want) {
				return s
			}
			got = s
			time.Sleep(100 * time.Millisecond)
		}
		fail("%s: want text containing %q, have %q", sel, want, got)
		return ""
	}
	item := func(path string) string { return fmt.Sprintf(`#tree li[data-path=%q] > .row`, path) }

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

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		resp, err := httpGet(url)
		if err == nil && resp == 200 {
			return
		}
		if err == nil {
			err = errors.New("status " + fmt.Sprint(resp))
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready: %v", url, last)
}
