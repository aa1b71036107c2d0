package zkref

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestStandalone(t *testing.T) {
	s := Start(t, Options{})
	if s.PID <= 0 {
		t.Fatalf("PID = %d", s.PID)
	}
	out, err := FourLetter(s.Addr, "ruok", 2*time.Second)
	if err != nil || out != "imok" {
		t.Fatalf("ruok = %q, %v", out, err)
	}
	if m, err := s.Mode(); err != nil || m != "standalone" {
		t.Fatalf("Mode = %q, %v", m, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !s.Exited() {
		t.Fatal("process still running after Stop")
	}
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("port still accepting after Stop")
	}
}

func TestEnsemble(t *testing.T) {
	if testing.Short() {
		t.Skip("ensemble start is slow")
	}
	e := StartEnsemble(t, 3)
	modes := map[string]int{}
	for _, s := range e.Servers {
		m, err := s.Mode()
		if err != nil {
			t.Fatal(err)
		}
		modes[m]++
	}
	if modes["leader"] != 1 || modes["follower"] != 2 {
		t.Fatalf("modes = %v", modes)
	}
	if got := strings.Count(e.ConnectString(), ","); got != 2 {
		t.Fatalf("ConnectString = %q", e.ConnectString())
	}
}
