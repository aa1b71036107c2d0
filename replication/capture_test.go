package replication

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// gatedSM is a listSM that snapshots through SnapshotCapturer: the capture
// copies the list, and the write waits for gate to close, standing in for
// a snapshot of a large state that takes long to write.
type gatedSM struct {
	listSM
	gate     chan struct{}
	captures atomic.Int32
}

func (s *gatedSM) CaptureSnapshot() func(io.Writer) error {
	s.captures.Add(1)
	recs := s.snapshot()
	return func(w io.Writer) error {
		<-s.gate
		return json.NewEncoder(w).Encode(recs)
	}
}

// openGated opens a fresh node snapshotting every 50 entries through a
// gatedSM, and applies 60 entries so that a snapshot is being written.
func openGated(t *testing.T) (string, Config, *gatedSM, *Node) {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SnapshotEvery = 50
	sm := &gatedSM{gate: make(chan struct{})}
	n := mustOpen(t, cfg, sm)
	proposeAll(t, n, &sm.listSM, datas("a", 60), 60)
	return dir, cfg, sm, n
}

func waitSnapshots(t *testing.T, n *Node, want uint64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); n.Stats().Snapshots < want; {
		if time.Now().After(deadline) {
			t.Fatalf("%d snapshots recorded, want %d", n.Stats().Snapshots, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A snapshot that takes long to write does not stop apply: entries
// proposed while it is being written apply, no second snapshot starts
// before it is durable, and once it is, it is recorded and a restart
// recovers from it plus the WAL after it.
func TestSnapshotWrittenOffTheRunLoop(t *testing.T) {
	dir, cfg, sm, n := openGated(t)
	// The capture happened on the run loop after these applied; its write
	// is blocked. Everything proposed now applies all the same.
	proposeAll(t, n, &sm.listSM, datas("b", 300), 360)
	if got := sm.captures.Load(); got != 1 {
		t.Fatalf("%d snapshots started while the first was being written, want 1", got)
	}
	if got := n.Stats().Snapshots; got != 0 {
		t.Fatalf("snapshot recorded before it was written: %d", got)
	}
	if files := snapFiles(t, dir); len(files) != 0 {
		t.Fatalf("snapshot file visible before it was durable: %v", files)
	}
	close(sm.gate)
	waitSnapshots(t, n, 1)
	// The next one starts on a later Ready, at a later index.
	proposeAll(t, n, &sm.listSM, datas("c", 60), 420)
	waitSnapshots(t, n, 2)
	before := sm.snapshot()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if files := snapFiles(t, dir); len(files) != 2 {
		t.Fatalf("want 2 snapshot files, got %v", files)
	}
	reopenFromSnapshot(t, cfg, before)
}

// Close while a snapshot is being written waits for it: the file is
// durable and complete, and a restart recovers from it.
func TestCloseWaitsForSnapshotBeingWritten(t *testing.T) {
	dir, cfg, sm, n := openGated(t)
	for sm.captures.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	close(sm.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	files := snapFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("want the snapshot written before Close returned, got %v", files)
	}
	var term, index uint64
	if _, err := fmt.Sscanf(filepath.Base(files[0]), "%016x-%016x.snap", &term, &index); err != nil || index < 50 {
		t.Fatalf("snapshot %s: index %d (%v)", files[0], index, err)
	}
	sm2 := &listSM{}
	n2 := mustOpen(t, cfg, sm2)
	defer n2.Close()
	if sm2.restored != 1 || sm2.len() != 60 {
		t.Fatalf("restart: restored %d times, %d records", sm2.restored, sm2.len())
	}
}

// removeFile deletes a file larger than a removal step (shrinking it
// first) and accepts a file that is already gone.
func TestRemoveFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(3*removeStep + 5); err != nil { // sparse: cheap
		t.Fatal(err)
	}
	f.Close()
	if err := removeFile(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("file still there: %v", err)
	}
	if err := removeFile(p); err != nil {
		t.Fatalf("removing a file already gone: %v", err)
	}
}

// The leftover of a save interrupted by a crash (a .snap.tmp) is removed
// when the node opens, and is not taken for a snapshot.
func TestInterruptedSaveRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	sm := &listSM{}
	n := mustOpen(t, cfg, sm)
	proposeAll(t, n, sm, datas("a", 3), 3)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "snap", snapName(9, 99)+".tmp")
	if err := os.WriteFile(tmp, []byte("half a snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	sm2 := &listSM{}
	n2 := mustOpen(t, cfg, sm2)
	defer n2.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("interrupted save still there: %v", err)
	}
	if sm2.restored != 0 || sm2.len() != 3 {
		t.Fatalf("restored %d times, %d records", sm2.restored, sm2.len())
	}
}
