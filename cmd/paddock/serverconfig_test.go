package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paddockhq/paddock/config"
)

func writeZooCfg(t *testing.T, lines ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	path := filepath.Join(dir, "zoo.cfg")
	text := "tickTime=1000\ndataDir=" + data + "\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func printConfig(t *testing.T, env map[string]string, args ...string) (map[string]string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	if code := run(append([]string{"server", "--print-config"}, args...), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	props, err := config.ParseProperties(out.String())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range props {
		m[p.Key] = p.Value
	}
	return m, errOut.String()
}

func TestPrintConfigDefaults(t *testing.T) {
	m, _ := printConfig(t, nil)
	want := map[string]string{"clientPort": "2181", "tickTime": "2000", "extendedTypesEnabled": "true",
		"admin.enableServer": "false", "maxClientCnxns": "0", "4lw.commands.whitelist": defaultWhitelist,
		"globalOutstandingLimit": "1000", "serverId": "1"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s=%q, want %q", k, m[k], v)
		}
	}
	if abs, _ := filepath.Abs("./paddock-data"); m["dataDir"] != abs {
		t.Errorf("dataDir=%q", m["dataDir"])
	}
}

func TestPrintConfigFromZooCfgWithOverrides(t *testing.T) {
	cfg, data := writeZooCfg(t,
		"clientPort=2999", "clientPortAddress=127.0.0.1", "maxClientCnxns=7", "4lw.commands.whitelist=ruok,mntr",
		"admin.serverPort=9999", "zookeeper.extendedTypesEnabled=false", "enforceQuota=true",
		"jute.maxbuffer=2000000", "initLimit=5", "autopurge.purgeInterval=1", "bogusKey=1",
		"secureClientPort=2998", "ssl.keyStore.location=/k.pem", "ssl.trustStore.location=/ca.pem", "ssl.clientAuth=want")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "myid"), []byte("3\n"), 0o644)

	// The argument form, as zkServer.sh passes it.
	m, logs := printConfig(t, nil, cfg)
	want := map[string]string{"clientPort": "2999", "clientPortAddress": "127.0.0.1", "tickTime": "1000",
		"minSessionTimeout": "2000", "maxSessionTimeout": "20000", "maxClientCnxns": "7",
		"4lw.commands.whitelist": "ruok,mntr", "admin.enableServer": "true", "admin.serverPort": "9999",
		"admin.serverAddress": "0.0.0.0", "extendedTypesEnabled": "false", "enforceQuota": "true",
		"jute.maxbuffer": "2000000", "dataDir": data, "serverId": "3", "secureClientPort": "2998",
		"ssl.keyStore.location": "/k.pem", "ssl.trustStore.location": "/ca.pem", "ssl.clientAuth": "want"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s=%q, want %q", k, m[k], v)
		}
	}
	// Each key not honoured is named once, with its line.
	for _, k := range []string{"key=initLimit", "key=autopurge.purgeInterval", "key=bogusKey"} {
		if n := strings.Count(logs, k+" "); n != 1 {
			t.Errorf("%s logged %d times:\n%s", k, n, logs)
		}
	}
	if strings.Contains(logs, "key=clientPort ") || strings.Contains(logs, "key=ssl.clientAuth ") {
		t.Errorf("an honoured key was reported:\n%s", logs)
	}

	// Environment beats the file, flags beat the environment.
	m, _ = printConfig(t, map[string]string{"PADDOCK_MAX_CLIENT_CNXNS": "9", "PADDOCK_TICK_TIME": "500"},
		"--config", cfg, "--tick-time", "250", "--admin-addr", "off")
	if m["maxClientCnxns"] != "9" || m["tickTime"] != "250" || m["admin.enableServer"] != "false" {
		t.Errorf("overrides: %v", m)
	}
	// The file's session timeouts follow its tickTime, not the flag's.
	if m["minSessionTimeout"] != "2000" {
		t.Errorf("minSessionTimeout=%s", m["minSessionTimeout"])
	}
}

// TestPrintConfigAdminTLS maps ZooKeeper's admin server HTTPS keys:
// admin.forceHttps or admin.portUnification with the ssl.quorum.* stores,
// admin.needClientAuth; the flags override them, and HTTPS without a key
// store is refused.
func TestPrintConfigAdminTLS(t *testing.T) {
	cfg, _ := writeZooCfg(t, "clientPort=2181", "admin.forceHttps=true", "admin.portUnification=true",
		"ssl.quorum.keyStore.location=/admin.pem", "ssl.quorum.trustStore.location=/admin-ca.pem", "admin.needClientAuth=true")
	m, logs := printConfig(t, nil, cfg)
	for k, v := range map[string]string{"admin.forceHttps": "true", "ssl.quorum.keyStore.location": "/admin.pem",
		"ssl.quorum.trustStore.location": "/admin-ca.pem", "admin.needClientAuth": "true"} {
		if m[k] != v {
			t.Errorf("%s=%q, want %q", k, m[k], v)
		}
	}
	if _, ok := m["admin.portUnification"]; ok {
		t.Error("admin.forceHttps must override admin.portUnification")
	}
	for _, k := range []string{"admin.forceHttps", "admin.needClientAuth", "ssl.quorum.keyStore.location"} {
		if strings.Contains(logs, "key="+k+" ") {
			t.Errorf("%s reported as not honoured:\n%s", k, logs)
		}
	}

	cfg, _ = writeZooCfg(t, "clientPort=2181", "admin.portUnification=true", "ssl.quorum.keyStore.location=/admin.pem")
	if m, _ = printConfig(t, nil, cfg); m["admin.portUnification"] != "true" || m["admin.forceHttps"] != "" {
		t.Errorf("port unification: %v", m)
	}
	m, _ = printConfig(t, nil, "--config", cfg, "--admin-tls-cert", "/flag.pem", "--admin-tls-client-auth", "need", "--admin-tls-ca", "/ca.pem")
	if m["ssl.quorum.keyStore.location"] != "/flag.pem" || m["admin.needClientAuth"] != "true" || m["ssl.quorum.trustStore.location"] != "/ca.pem" {
		t.Errorf("flags over the file: %v", m)
	}

	for _, tc := range []struct{ line, want string }{
		{"admin.forceHttps=true", "need ssl.quorum.keyStore.location"},
		{"ssl.quorum.keyStore.type=JKS", "ssl.quorum.keyStore.type"},
	} {
		cfg, _ = writeZooCfg(t, "clientPort=2181", tc.line)
		var out, errOut bytes.Buffer
		if code := run([]string{"server", "--print-config", cfg}, &out, &errOut); code == 0 {
			t.Errorf("%s accepted", tc.line)
		} else if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%s: error %q lacks %q", tc.line, errOut.String(), tc.want)
		}
	}
}

func TestPrintConfigIsAZooCfg(t *testing.T) {
	cfg, _ := writeZooCfg(t, "clientPort=2181")
	var out, errOut bytes.Buffer
	if code := run([]string{"server", "--print-config", cfg}, &out, &errOut); code != 0 {
		t.Fatal(errOut.String())
	}
	again := filepath.Join(t.TempDir(), "zoo.cfg")
	os.WriteFile(again, out.Bytes(), 0o644)
	var out2 bytes.Buffer
	if code := run([]string{"server", "--print-config", again}, &out2, &errOut); code != 0 {
		t.Fatal(errOut.String())
	}
	if out.String() != out2.String() {
		t.Errorf("printed config does not read back the same:\n%s\n---\n%s", out.String(), out2.String())
	}
}

func TestBadZooCfgFailsWithLine(t *testing.T) {
	cfg, _ := writeZooCfg(t, "clientPort=2181", "maxClientCnxns=lots")
	var out, errOut bytes.Buffer
	if code := run([]string{"server", cfg}, &out, &errOut); code == 0 {
		t.Fatal("started with a bad zoo.cfg")
	}
	if want := cfg + ":4: maxClientCnxns"; !strings.Contains(errOut.String(), want) {
		t.Errorf("error %q lacks %q", errOut.String(), want)
	}
}

// TestServerFromZooCfg starts the real binary with a zoo.cfg and talks to
// its client port and admin server.
func TestServerFromZooCfg(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ports := freePorts(t, 2)
	cfg, _ := writeZooCfg(t, fmt.Sprintf("clientPort=%d", ports[0]), "clientPortAddress=127.0.0.1",
		"admin.serverAddress=127.0.0.1", fmt.Sprintf("admin.serverPort=%d", ports[1]), "4lw.commands.whitelist=*")
	bin := filepath.Join(t.TempDir(), "paddock")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "server", cfg)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("conf"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	conf, _ := io.ReadAll(nc)
	nc.Close()
	if !strings.Contains(string(conf), "tickTime=1000\n") || !strings.Contains(string(conf), "maxClientCnxns=60\n") {
		t.Errorf("conf:\n%s", conf)
	}
	resp, err := http.Get(admin + "/commands/initial_configuration")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "admin.serverPort=") {
		t.Errorf("icfg: %s", b)
	}
	if n := strings.Count(logs.String(), "listening on"); n < 1 {
		t.Errorf("no ready line:\n%s", logs.String())
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// lockedBuffer collects a child process's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
