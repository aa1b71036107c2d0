// Package zktop runs Debian's zktop, a curses monitor that polls the
// "stat" four-letter word and parses its reply, against a server.
//
// zktop swallows every parse error and shows the server as "Unavailable"
// (mode U), so the tests look at what it parsed rather than only at its
// exit: TestZktopParse imports zktop's own module and prints the fields its
// ZKServer parsed from "stat", and TestZktopScreen runs /usr/bin/zktop on a
// pseudo-terminal (util-linux script), renders the screen and reads the
// server's row the way a person would.
//
// The server is chosen by PADDOCK_TEST_TARGET (see internal/testserver).
// Without zktop or script the tests skip, or fail when CI=true.
package zktop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/testserver"
)

const (
	// Python is Debian's interpreter, which finds zktop's module.
	Python = "/usr/bin/python3"
	// Zktop is the program from Debian's zktop package.
	Zktop = "/usr/bin/zktop"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}

func require(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not available (apt-get install zktop python3 bsdutils): %v", tool, err)
			if os.Getenv("CI") == "true" {
				t.Fatal("required in CI: " + msg)
			}
			t.Skip(msg)
		}
	}
}

// target starts (or names) the server and keeps one client session open
// on it with a few requests done, so that "stat" lists a client.
func target(t *testing.T) string {
	t.Helper()
	addr, kind := testserver.Target(t)
	t.Logf("zktop against %s (%s)", addr, kind)
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	path := fmt.Sprintf("/zktop-%d", time.Now().UnixNano())
	if _, err := conn.Create(path, []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	for i := 0; i < 5; i++ {
		if _, _, err := conn.Get(path); err != nil {
			t.Fatal(err)
		}
	}
	return addr
}

// parseScript imports zktop's module (its options come from sys.argv at
// import) and prints, as JSON, what its ZKServer parsed from "stat", the
// raw reply, and for an unparsable reply the first line zktop chokes on.
const parseScript = `
import json, sys
addr = sys.argv[1]
sys.argv = ["zktop", "--servers", addr, "--timeout", "10"]
import zktop
host, port = addr.rsplit(":", 1)
raw = zktop.send_cmd(host, int(port), b"stat\n")
s = zktop.ZKServer(addr, 0)
out = {k: v for k, v in vars(s).items() if k != "sessions"}
out["sessions"] = [vars(x) for x in s.sessions]
out["raw"] = raw
problems = []
if s.unavailable:
    lines = raw.split("\n")
    for line in lines[2:]:
        if not line.strip():
            continue
        if line.startswith(" /"):
            try:
                zktop.Session(line.strip(), 0)
            except Exception as e:
                problems.append("session line %r: %r" % (line, e))
        elif len(line.split(":")) != 2:
            problems.append("attribute line %r has not exactly one colon" % line)
out["problems"] = problems
print(json.dumps(out))
`

func TestZktopParse(t *testing.T) {
	require(t, Python, Zktop)
	addr := target(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, Python, "-c", parseScript, addr).CombinedOutput()
	if err != nil {
		t.Fatalf("zktop parse harness: %v\n%s", err, out)
	}
	var got struct {
		Unavailable                 bool
		Mode, Version, Zxid         string
		Received, Sent, Outstanding string
		Connections                 string
		NodeCount                   string `json:"node_count"`
		MinLatency                  string `json:"min_latency"`
		AvgLatency                  string `json:"avg_latency"`
		MaxLatency                  string `json:"max_latency"`
		Sessions                    []map[string]any
		Raw                         string
		Problems                    []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("harness output: %v\n%s", err, out)
	}
	t.Logf("stat reply:\n%s", got.Raw)
	if got.Unavailable {
		t.Fatalf("zktop could not parse the stat reply (it would show the server as Unavailable): %v", got.Problems)
	}
	if got.Mode != "standalone" {
		t.Errorf("Mode = %q, want standalone", got.Mode)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(got.Version) {
		t.Errorf("version = %q, want x.y.z", got.Version)
	}
	for name, v := range map[string]string{"min latency": got.MinLatency, "avg latency": got.AvgLatency, "max latency": got.MaxLatency} {
		if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 {
			t.Errorf("%s = %q, want a number >= 0", name, v)
		}
	}
	for name, v := range map[string]string{"received": got.Received, "sent": got.Sent, "outstanding": got.Outstanding, "connections": got.Connections, "node count": got.NodeCount} {
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			t.Errorf("%s = %q, want an integer", name, v)
		}
	}
	// ZooKeeper rounds the average to 4 decimals (AvgMinMaxCounter.getAvg,
	// HALF_UP) and prints it as a Java double; zktop's AVGLAT column is 6
	// characters wide.
	if !regexp.MustCompile(`^\d+\.\d{1,4}$`).MatchString(got.AvgLatency) {
		t.Errorf("avg latency = %q, want ZooKeeper's form: a double rounded to 4 decimals (e.g. 0.0, 2.1429)", got.AvgLatency)
	}
	if n, _ := strconv.Atoi(got.NodeCount); n < 5 {
		t.Errorf("node count = %s, want at least 5 (/, /zookeeper and its children, our node)", got.NodeCount)
	}
	if r, _ := strconv.Atoi(got.Received); r < 6 {
		t.Errorf("received = %s, want at least the 6 requests this test sent", got.Received)
	}
	if z, err := strconv.ParseUint(strings.TrimPrefix(got.Zxid, "0x"), 16, 64); err != nil || z == 0 {
		t.Errorf("zxid = %q, want a non-zero hex number", got.Zxid)
	}
	// Our session (at least 6 requests received) must be among the
	// clients, with the counters zktop's session pane shows.
	found := false
	for _, s := range got.Sessions {
		for _, k := range []string{"queued", "recved", "sent"} {
			if _, err := strconv.ParseUint(fmt.Sprint(s[k]), 10, 64); err != nil {
				t.Errorf("session %v: %s = %v, want an integer", s, k, s[k])
			}
		}
		if n, _ := strconv.Atoi(fmt.Sprint(s["recved"])); n >= 6 {
			found = true
		}
	}
	if !found {
		t.Errorf("no client with recved >= 6 among %v", got.Sessions)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

func TestZktopScreen(t *testing.T) {
	require(t, Zktop, "script")
	addr := target(t)
	_, port, _ := strings.Cut(addr, ":")
	const rows, cols = 30, 120

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// script gives zktop a pseudo-terminal; its size comes from LINES and
	// COLUMNS, since script's own stdin is not a terminal.
	cmd := exec.CommandContext(ctx, "script", "-qfec", Zktop+" --servers "+addr, "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=xterm", fmt.Sprintf("LINES=%d", rows), fmt.Sprintf("COLUMNS=%d", cols))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	keys, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// The server's row: id, host, port, mode, outstanding, received, sent,
	// connections, min/avg/max latency.
	rowRE := regexp.MustCompile(`^0\s+127\.0\.0\.1\s+` + port + `\s+(\S)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)$`)
	var shown []string
	var row []string
	deadline := time.Now().Add(30 * time.Second)
	for row == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		scr := newScreen(rows, cols)
		scr.Write(out.Bytes())
		shown = scr.Lines()
		for _, l := range shown {
			if m := rowRE.FindStringSubmatch(l); m != nil {
				row = m
			}
		}
		select {
		case err := <-done:
			t.Fatalf("zktop exited early (%v):\n%s\nraw output:\n%q", err, scr, out.Bytes())
		default:
		}
	}
	io.WriteString(keys, "q")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("zktop exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("zktop did not quit on q")
		cmd.Process.Kill()
		<-done
	}
	screenText := strings.TrimRight(strings.Join(shown, "\n"), "\n")
	t.Logf("zktop screen:\n%s", screenText)
	if bytes.Contains(out.Bytes(), []byte("Traceback")) {
		t.Fatalf("zktop printed a traceback:\n%s", out.Bytes())
	}
	if row == nil {
		t.Fatalf("no row for server 127.0.0.1:%s on zktop's screen", port)
	}
	if row[1] != "S" {
		t.Errorf("mode column = %q, want S (standalone; U means zktop could not parse stat)", row[1])
	}
	for i, name := range []string{"min", "avg", "max"} {
		if _, err := strconv.ParseFloat(row[6+i], 64); err != nil {
			t.Errorf("%s latency column = %q, want a number", name, row[6+i])
		}
	}
	if !regexp.MustCompile(`(?m)^Ensemble -- nodecount:[1-9]\d* zxid:0x[0-9a-f]+ sessions:\d+$`).MatchString(screenText) {
		t.Errorf("no ensemble summary line on the screen")
	}
}
