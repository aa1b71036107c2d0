package replication

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStandaloneOpenIsLeader(t *testing.T) {
	dir := t.TempDir()
	sm := &listSM{}
	n := mustOpen(t, testConfig(dir), sm)
	defer n.Close()
	if !n.IsLeader() || n.Leader() != 1 {
		t.Fatalf("standalone node not leader after Open: leader=%d", n.Leader())
	}
	if n.Term() == 0 {
		t.Fatal("term 0 after election")
	}
	st := n.Status()
	if st.ID != 1 || st.Lead != 1 {
		t.Fatalf("status: %+v", st.BasicStatus)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	proposeAll(t, n, sm, []string{"a", "b"}, 2)
	ri, err := n.ReadIndex(ctx)
	if err != nil {
		t.Fatalf("ReadIndex: %v", err)
	}
	if ri < sm.snapshot()[1].Index {
		t.Fatalf("ReadIndex %d below applied entry %d", ri, sm.snapshot()[1].Index)
	}
	if err := n.WaitApplied(ctx, ri); err != nil {
		t.Fatal(err)
	}
	if n.AppliedIndex() < ri || n.CommittedIndex() < ri {
		t.Fatalf("applied %d committed %d < read index %d", n.AppliedIndex(), n.CommittedIndex(), ri)
	}
}

func TestProposeCloseReopen(t *testing.T) {
	for _, tc := range []struct {
		name      string
		entries   int
		parallel  int
		snapEvery uint64
	}{
		{"one", 1, 1, 0},
		{"sequential-200", 200, 1, 0},
		{"parallel-2000", 2000, 16, 0},
		{"parallel-2000-snapshots", 2000, 16, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			cfg.SnapshotEvery = tc.snapEvery
			sm := &listSM{}
			n := mustOpen(t, cfg, sm)
			var wg sync.WaitGroup
			per := tc.entries / tc.parallel
			for g := 0; g < tc.parallel; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, d := range datas(fmt.Sprintf("g%d", g), per) {
						if err := n.Propose(context.Background(), []byte(d)); err != nil {
							t.Errorf("Propose: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			waitLen(t, sm, per*tc.parallel)
			before := sm.snapshot()
			applied := n.AppliedIndex()
			if err := n.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := n.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if err := n.Propose(context.Background(), []byte("x")); !errors.Is(err, ErrStopped) {
				t.Fatalf("Propose after Close: %v, want ErrStopped", err)
			}

			sm2 := &listSM{}
			n2 := mustOpen(t, cfg, sm2)
			defer n2.Close()
			// Open applies every durable committed entry before returning.
			equalRecords(t, sm2.snapshot(), before)
			if n2.AppliedIndex() <= applied {
				t.Fatalf("applied index %d after reopen, want > %d (new term's empty entry)", n2.AppliedIndex(), applied)
			}
			proposeAll(t, n2, sm2, []string{"after"}, len(before)+1)
			got := sm2.snapshot()
			if last := got[len(got)-1]; last.Data != "after" || last.Index <= applied {
				t.Fatalf("entry after reopen: %+v", last)
			}
		})
	}
}

func TestSnapshotCompactionRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SnapshotEvery = 100
	cfg.segmentSize = 2 << 10
	sm := &listSM{}
	n := mustOpen(t, cfg, sm)
	// In waves, so that snapshots (taken at most once per Ready) are due
	// many times.
	for w := 0; w < 10; w++ {
		proposeAll(t, n, sm, datas(fmt.Sprintf("w%d", w), 100), 100*(w+1))
	}
	st := n.Stats()
	if st.Snapshots < 9 {
		n.Close()
		t.Fatalf("took %d snapshots, want >= 9", st.Snapshots)
	}
	before := sm.snapshot()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	snaps := snapFiles(t, dir)
	if len(snaps) != 2 {
		t.Fatalf("want 2 snapshot files kept, got %v", snaps)
	}
	segs := walFiles(t, dir)
	if strings.HasPrefix(filepath.Base(segs[0]), "0000000000000000-") {
		t.Fatalf("first wal segment was not deleted: %v", segs)
	}
	// The oldest remaining segment must reach back to the older snapshot,
	// so that falling back to it still finds every later entry.
	olderSnap := snaps[0] // Glob sorts names; same term, so by index
	var term, oldIdx uint64
	fmt.Sscanf(filepath.Base(olderSnap), "%016x-%016x.snap", &term, &oldIdx)
	if _, first, _ := parseSegmentName(filepath.Base(segs[0])); first > oldIdx+1 {
		t.Fatalf("segment %s starts after older snapshot %d: entries needed for fallback are gone", segs[0], oldIdx)
	}
	if len(segs) > 1 {
		if _, first, _ := parseSegmentName(filepath.Base(segs[1])); first <= oldIdx+1 {
			t.Fatalf("segment %s is fully covered by snapshot %d but was kept", segs[0], oldIdx)
		}
	}

	t.Run("restart", func(t *testing.T) { reopenFromSnapshot(t, cfg, before) })

	t.Run("newest-snapshot-corrupt", func(t *testing.T) {
		dir2 := t.TempDir()
		copyDir(t, dir, dir2)
		snaps := snapFiles(t, dir2)
		newest := snaps[len(snaps)-1]
		b, _ := os.ReadFile(newest)
		b[len(b)-3] ^= 0xff
		os.WriteFile(newest, b, 0o644)
		logs := &logBuf{}
		cfg2 := cfg
		cfg2.Dir = dir2
		cfg2.Logger = slogTo(logs)
		sm2 := &listSM{}
		n2 := mustOpen(t, cfg2, sm2)
		defer n2.Close()
		equalRecords(t, sm2.snapshot(), before)
		if !strings.Contains(logs.String(), "skipping bad snapshot") || !strings.Contains(logs.String(), filepath.Base(newest)) {
			t.Fatalf("no log line naming the bad snapshot:\n%s", logs)
		}
	})
}

// TestWriteFailureStopsNode closes the WAL file under the run loop, so the
// next write fails: the proposal must never be applied, the node must stop
// and say why.
func TestWriteFailureStopsNode(t *testing.T) {
	dir := t.TempDir()
	sm := &listSM{}
	n := mustOpen(t, testConfig(dir), sm)
	proposeAll(t, n, sm, []string{"ok"}, 1)
	if err := n.do(context.Background(), func() { n.wal.f.Close() }); err != nil {
		t.Fatal(err)
	}
	_ = n.Propose(context.Background(), []byte("doomed"))
	select {
	case <-n.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("node did not stop after a failed write")
	}
	if n.Err() == nil || !strings.Contains(n.Err().Error(), "wal: write") {
		t.Fatalf("Err() = %v, want the write error", n.Err())
	}
	if err := n.Propose(context.Background(), []byte("later")); !errors.Is(err, ErrStopped) {
		t.Fatalf("Propose on failed node: %v", err)
	}
	if err := n.WaitApplied(context.Background(), n.AppliedIndex()+1); !errors.Is(err, ErrStopped) {
		t.Fatalf("WaitApplied on failed node: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	for _, r := range sm.snapshot() {
		if r.Data != "ok" {
			t.Fatalf("entry %+v applied although its write failed", r)
		}
	}
	if err := n.Close(); err == nil {
		t.Fatal("Close returned nil after a fatal error")
	}
}

func TestProposeContext(t *testing.T) {
	n := mustOpen(t, testConfig(t.TempDir()), &listSM{})
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Propose(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose with canceled ctx: %v", err)
	}
	if err := n.WaitApplied(ctx, 1<<40); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitApplied with canceled ctx: %v", err)
	}
}

// TestJoinWaitsForLeader: a joining member has no leader and refuses
// proposals rather than hanging.
func TestJoinWaitsForLeader(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ID = 2
	cfg.Join = true
	n := mustOpen(t, cfg, &listSM{})
	defer n.Close()
	if err := n.Propose(context.Background(), []byte("x")); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Propose without leader: %v", err)
	}
	if _, err := n.ReadIndex(context.Background()); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("ReadIndex without leader: %v", err)
	}
}

func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	sm := &listSM{}
	n := mustOpen(t, testConfig(dir), sm)
	defer n.Close()
	start := n.Stats()
	var wg sync.WaitGroup
	const g, per = 32, 100
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < per; j++ {
				if err := n.Propose(context.Background(), []byte("0123456789")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitLen(t, sm, g*per)
	st := n.Stats()
	fsyncs := st.Fsyncs - start.Fsyncs
	ents := st.EntriesWritten - start.EntriesWritten
	t.Logf("group commit: %d entries, %d fsyncs, %.1f entries/fsync, %d proposal batches",
		ents, fsyncs, float64(ents)/float64(fsyncs), st.ProposalBatches-start.ProposalBatches)
	if fsyncs*4 > ents {
		t.Fatalf("%d fsyncs for %d entries: group commit is not batching", fsyncs, ents)
	}
}
