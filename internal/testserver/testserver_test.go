package testserver

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	CleanupBinary()
	os.Exit(code)
}

func TestArgs(t *testing.T) {
	s := &Server{Addr: "127.0.0.1:1234", DataDir: "/d", opts: Options{
		TickTime:          500 * time.Millisecond,
		MinSessionTimeout: time.Second,
		MaxSessionTimeout: 40 * time.Second,
		AdminAddr:         "127.0.0.1:0",
		ExtendedTypes:     true,
		ExtraArgs:         []string{"--4lw-whitelist", "*"},
	}}
	got := strings.Join(s.Args(), " ")
	want := "server --addr 127.0.0.1:1234 --data-dir /d --tick-time 500 --min-session-timeout 1000 --max-session-timeout 40000 --admin-addr 127.0.0.1:0 --extended-types --4lw-whitelist *"
	if got != want {
		t.Fatalf("Args:\n got %s\nwant %s", got, want)
	}
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func TestLifecycle(t *testing.T) {
	s := Start(t, Options{TickTime: 200 * time.Millisecond})
	if s.PID() <= 0 || !s.Running() {
		t.Fatalf("PID %d running %v", s.PID(), s.Running())
	}
	if err := dial(s.Addr); err != nil {
		t.Fatal(err)
	}
	pid := s.PID()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.Running() || dial(s.Addr) == nil {
		t.Fatal("server still up after Kill")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.PID() == pid || dial(s.Addr) != nil {
		t.Fatalf("restart: pid %d -> %d, dial %v", pid, s.PID(), dial(s.Addr))
	}
	if _, err := os.Stat(filepath.Join(s.DataDir)); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("running after Stop")
	}
}
