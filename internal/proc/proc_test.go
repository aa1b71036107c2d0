package proc

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartSignalRestart(t *testing.T) {
	var p Proc
	if p.Running() || p.PID() != 0 || !p.Wait(0) {
		t.Fatal("a never-started Proc must report not running")
	}
	log := filepath.Join(t.TempDir(), "log")
	for run := 1; run <= 2; run++ {
		if err := p.Start(log, "/bin/sh", []string{"-c", "echo run; exec sleep 60"}); err != nil {
			t.Fatal(err)
		}
		if !p.Running() || p.Starts() != run {
			t.Fatalf("run %d: running=%v starts=%d", run, p.Running(), p.Starts())
		}
		// Signal only once the child has written: a SIGTERM that lands
		// before the shell's echo would leave nothing to find in the log.
		for deadline := time.Now().Add(time.Minute); strings.Count(TailFile(log, 10), "\nrun") < run; {
			if time.Now().After(deadline) {
				t.Fatalf("run %d: no output from the child:\n%s", run, TailFile(log, 10))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := p.SignalAndWait(syscall.SIGTERM, time.Minute); err != nil {
			t.Fatal(err)
		}
		if p.Running() || p.ExitError() == nil {
			t.Fatalf("run %d: after SIGTERM running=%v exit=%v", run, p.Running(), p.ExitError())
		}
		// Signalling an exited process is not an error.
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	tail := TailFile(log, 4)
	if strings.Count(tail, "\nrun") != 2 || strings.Count(tail, "=== ") != 2 {
		t.Fatalf("log should hold both runs with their headers:\n%s", tail)
	}
}

func TestTailFile(t *testing.T) {
	if got := TailFile(filepath.Join(t.TempDir(), "missing"), 3); !strings.Contains(got, "no such file") {
		t.Fatalf("missing file: %q", got)
	}
}
