package replication

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "PADDOCK_REPLICATION_CRASH_CHILD"

// crashConfig is shared by the child and the parent's verification so the
// child's small segments and frequent snapshots are exercised by crashes.
func crashConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.SnapshotEvery = 1500
	cfg.segmentSize = 32 << 10
	return cfg
}

// TestCrashChild is the child process of TestCrashRecovery: it proposes in
// a loop from several goroutines and prints "index data" for every entry
// as soon as Apply sees it (that is, once it is durable and committed),
// until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	round := os.Getenv("PADDOCK_CRASH_ROUND")
	var outMu sync.Mutex
	sm := &listSM{onApply: func(index uint64, data []byte) {
		outMu.Lock()
		// Unbuffered: the line is in the pipe before Apply returns.
		fmt.Fprintf(os.Stdout, "%d %s\n", index, data)
		outMu.Unlock()
	}}
	n, err := Open(crashConfig(dir), sm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	// Entries replayed by Open are not this round's acknowledgements.
	fmt.Fprintln(os.Stdout, "READY")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if err := n.Propose(context.Background(), []byte(fmt.Sprintf("r%s-g%d-%d", round, g, i))); err != nil {
					fmt.Fprintln(os.Stderr, "propose:", err)
					os.Exit(4)
				}
			}
		}()
	}
	wg.Wait()
}

// TestCrashRecovery SIGKILLs a proposing child at random moments and checks
// after each crash that every acknowledged entry survived, at its index and
// in order, and that nothing else odd appeared.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test is slow")
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	if s := os.Getenv("PADDOCK_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d (set PADDOCK_CRASH_SEED to replay)", seed)

	acked := map[uint64]string{} // every acknowledgement over all rounds
	deadline := time.Now().Add(18 * time.Second)
	rounds := 0
	for round := 0; round < 20 && time.Now().Before(deadline); round++ {
		rounds++
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("PADDOCK_CRASH_ROUND=%d", round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan []string, 1)
		readyc := make(chan struct{})
		go func() {
			var out []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "READY" {
					close(readyc)
				}
				out = append(out, sc.Text())
			}
			lines <- out
		}()
		// Kill at a random moment: one round in four anywhere from process
		// start (often inside recovery), otherwise while proposing.
		if rng.Intn(4) > 0 {
			select {
			case <-readyc:
			case <-time.After(10 * time.Second):
				t.Fatalf("round %d: child never became ready: %s", round, stderr.String())
			}
		}
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		out := <-lines
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child exited on its own (%v): %s", round, werr, stderr.String())
		}
		ready, newAcks := false, 0
		for _, l := range out {
			if l == "READY" {
				ready = true
				continue
			}
			if !ready {
				continue
			}
			idxs, data, ok := strings.Cut(l, " ")
			if !ok {
				continue // a line cut by the kill: not an acknowledgement
			}
			idx, err := strconv.ParseUint(idxs, 10, 64)
			if err != nil || !strings.HasPrefix(data, "r") {
				continue
			}
			if prev, dup := acked[idx]; dup && prev != data {
				t.Fatalf("round %d: index %d acknowledged as %q and earlier as %q", round, idx, data, prev)
			}
			acked[idx] = data
			newAcks++
		}

		// Recover in this process and check.
		sm := &listSM{}
		n, err := Open(crashConfig(dir), sm)
		if err != nil {
			t.Fatalf("round %d: recovery failed: %v", round, err)
		}
		recs := sm.snapshot()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		at := map[uint64]string{}
		for i, r := range recs {
			if i > 0 && r.Index <= recs[i-1].Index {
				t.Fatalf("round %d: indexes out of order: %d after %d", round, r.Index, recs[i-1].Index)
			}
			if seen[r.Data] {
				t.Fatalf("round %d: %q applied twice", round, r.Data)
			}
			if !strings.HasPrefix(r.Data, "r") {
				t.Fatalf("round %d: garbage entry %+v", round, r)
			}
			seen[r.Data] = true
			at[r.Index] = r.Data
		}
		for idx, data := range acked {
			if got, ok := at[idx]; !ok || got != data {
				t.Fatalf("round %d: acknowledged entry %d %q lost (recovered %q, present=%v)", round, idx, data, got, ok)
			}
		}
		t.Logf("round %d: %d new acknowledgements, %d entries recovered, all %d acknowledgements present",
			round, newAcks, len(recs), len(acked))
	}
	if len(acked) == 0 {
		t.Fatal("no entry was ever acknowledged")
	}
	t.Logf("%d rounds, %d acknowledged entries, wal segments %d, snapshots %d",
		rounds, len(acked), len(walFiles(t, dir)), len(snapFiles(t, dir)))
}
