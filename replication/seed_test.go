package replication

import (
	"strings"
	"testing"
)

// TestSeed seeds a directory at a high index (as an import at a ZooKeeper
// zxid does), opens it, writes after it, and reads it back read-only.
func TestSeed(t *testing.T) {
	dir := t.TempDir()
	const index = 0x500000123
	seeded := &listSM{recs: []record{{Index: index, Term: 1, Data: "imported"}}}
	if err := Seed(dir, SeedConfig{Index: index}, seeded.Snapshot); err != nil {
		t.Fatal(err)
	}
	if err := Seed(dir, SeedConfig{Index: index}, seeded.Snapshot); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second Seed: %v", err)
	}

	sm := &listSM{}
	n := mustOpen(t, testConfig(dir), sm)
	if got := n.AppliedIndex(); got < index {
		t.Fatalf("applied %d, want >= %d", got, index)
	}
	if sm.restored != 1 || sm.len() != 1 {
		t.Fatalf("restored %d times, %d records", sm.restored, sm.len())
	}
	proposeAll(t, n, sm, []string{"a", "b"}, 3)
	recs := sm.snapshot()
	if recs[1].Index <= index || recs[2].Index != recs[1].Index+1 {
		t.Fatalf("entries after the seed: %+v", recs)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Read-only: the same entries, and nothing in the directory changes.
	before := append(walFiles(t, dir), snapFiles(t, dir)...)
	ro := &listSM{}
	last, err := LoadReadOnly(dir, ro)
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, ro.snapshot(), recs)
	if last != recs[2].Index {
		t.Fatalf("LoadReadOnly returned %d, want %d", last, recs[2].Index)
	}
	after := append(walFiles(t, dir), snapFiles(t, dir)...)
	if strings.Join(before, ",") != strings.Join(after, ",") {
		t.Fatalf("files changed: %v -> %v", before, after)
	}

	// Reopened, it carries on.
	sm2 := &listSM{}
	n2 := mustOpen(t, testConfig(dir), sm2)
	defer n2.Close()
	equalRecords(t, sm2.snapshot(), recs)
}
