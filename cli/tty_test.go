package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testserver"
)

// tmux drives a terminal session in its own tmux server (socket in the
// test's directory), so paddock cli runs on a real pseudo-terminal.
type tmux struct {
	t    *testing.T
	sock string
}

func (m *tmux) cmd(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", m.sock}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (m *tmux) screen() string { return m.cmd("capture-pane", "-p", "-t", "cli") }

// waitFor polls the screen until it contains want.
func (m *tmux) waitFor(want string) string {
	m.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := m.screen()
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("screen never showed %q:\n%s", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTerminal runs the interactive shell on a pseudo-terminal: the
// prompt, completion of a command and of a path from the live tree, a
// watch event printed while the shell waits at the prompt, and history
// kept across runs.
func TestTerminal(t *testing.T) {
	_, err := exec.LookPath("tmux")
	need(t, "tmux (apt-get install tmux)", err)
	pd := testserver.Start(t, testserver.CompatOptions())
	bin := paddockBin(t)
	if out, code := paddockCli(t, pd.Addr, "create /tty-alpha one\ncreate /tty-beta\nquit\n"); code != 0 {
		t.Fatalf("setup: %s", out)
	}
	dir := t.TempDir()
	hist := filepath.Join(dir, "history")
	m := &tmux{t: t, sock: filepath.Join(dir, "tmux.sock")}
	start := func() {
		m.cmd("new-session", "-d", "-s", "cli", "-x", "150", "-y", "40",
			bin+" cli -server "+pd.Addr+" -history-file "+hist+"; sleep 30")
	}
	start()
	sock1 := m.sock
	t.Cleanup(func() { exec.Command("tmux", "-S", sock1, "kill-server").Run() })

	m.waitFor("[zk: " + pd.Addr + "(CONNECTED) 0]")

	// A command completes from its prefix...
	m.cmd("send-keys", "-t", "cli", "getAllCh", "Tab")
	m.waitFor("] getAllChildrenNumber")
	m.cmd("send-keys", "-t", "cli", "C-u")
	// ...and a path from the children of its parent on the server.
	m.cmd("send-keys", "-t", "cli", "get -w /tty-a", "Tab")
	m.waitFor("get -w /tty-alpha")
	m.cmd("send-keys", "-t", "cli", "Enter")
	m.waitFor("one\n[zk: " + pd.Addr + "(CONNECTED) 1]")

	// A change made elsewhere shows up while the shell waits for input.
	if out, code := paddockCli(t, pd.Addr, "", "set", "/tty-alpha", "two"); code != 0 {
		t.Fatalf("set: %s", out)
	}
	m.waitFor("WATCHER::")
	s := m.waitFor("WatchedEvent state:SyncConnected type:NodeDataChanged path:/tty-alpha")
	// The prompt is drawn again after the event.
	if i := strings.Index(s, "NodeDataChanged path:/tty-alpha"); !strings.Contains(s[i:], "[zk: ") {
		t.Errorf("no prompt after the event:\n%s", s)
	}

	m.cmd("send-keys", "-t", "cli", "ls /", "Enter")
	m.waitFor("[tty-alpha, tty-beta, zookeeper]")
	m.cmd("send-keys", "-t", "cli", "quit", "Enter")
	m.waitFor("WatchedEvent state:Closed type:None path:null")

	b, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "get -w /tty-alpha\n") || !strings.Contains(string(b), "ls /\n") {
		t.Errorf("history file:\n%s", b)
	}

	// A new run finds the history: Up recalls the last command. (A fresh
	// tmux server: the old one may still be on its way out.)
	m.cmd("kill-server")
	m = &tmux{t: t, sock: filepath.Join(dir, "tmux2.sock")}
	t.Cleanup(func() { exec.Command("tmux", "-S", m.sock, "kill-server").Run() })
	start()
	m.waitFor("(CONNECTED) 0]")
	m.cmd("send-keys", "-t", "cli", "Up")
	m.waitFor("(CONNECTED) 0] quit")
}
