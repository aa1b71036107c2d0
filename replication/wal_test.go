package replication

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Data: []byte(data)}
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

// newTestWAL opens a WAL in an empty directory.
func newTestWAL(t testing.TB, dir string, segSize int64) *wal {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rp, err := replayWAL(dir, 0, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	w, err := openWAL(dir, rp, 0, segSize, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// writeEntries saves entries 1..n in batches of batch, each batch with a
// HardState, and closes the WAL.
func writeEntries(t testing.TB, dir string, n, batch int, segSize int64) {
	t.Helper()
	w := newTestWAL(t, dir, segSize)
	for i := 1; i <= n; i += batch {
		var ents []*raftpb.Entry
		for j := i; j < i+batch && j <= n; j++ {
			ents = append(ents, ent(uint64(j), 1, strings.Repeat("x", j%7)+fmt.Sprint(j)))
		}
		last := ents[len(ents)-1].GetIndex()
		if err := w.save(hardState(1, 1, last), ents, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
}

// recordEnds returns the end offset of every record in a segment, and the
// number of entries that are complete at each of those ends.
func recordEnds(t testing.TB, data []byte) (ends []int, entsAt []int) {
	t.Helper()
	off, ents := 0, 0
	for off < len(data) {
		typ, _, size, err := decodeRecord(data[off:])
		if err != nil {
			t.Fatalf("intact segment does not decode at %d: %v", off, err)
		}
		off += size
		if typ == recEntry {
			ents++
		}
		ends = append(ends, off)
		entsAt = append(entsAt, ents)
	}
	return ends, entsAt
}

func checkPrefix(t testing.TB, got []*raftpb.Entry, want int) {
	t.Helper()
	if len(got) != want {
		t.Fatalf("recovered %d entries, want %d", len(got), want)
	}
	for i, e := range got {
		if e.GetIndex() != uint64(i+1) || string(e.GetData()) != strings.Repeat("x", (i+1)%7)+fmt.Sprint(i+1) {
			t.Fatalf("entry %d is %v", i, e)
		}
	}
}

// TestWALTornTail cuts or corrupts the last segment at every offset: replay
// must keep exactly the records before the damage, truncate the file there,
// never error, and accept appends afterwards.
func TestWALTornTail(t *testing.T) {
	src := t.TempDir()
	writeEntries(t, src, 24, 3, defaultSegmentSize)
	segs, _ := filepath.Glob(filepath.Join(src, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("want one segment, got %v", segs)
	}
	orig, _ := os.ReadFile(segs[0])
	ends, entsAt := recordEnds(t, orig)
	headerEnd := ends[0]
	// expect returns the valid length and entry count when the first
	// damaged byte is at off.
	expect := func(off int) (valid, ents int) {
		for i, end := range ends {
			if end > off {
				return valid, ents
			}
			valid, ents = end, entsAt[i]
		}
		return valid, ents
	}

	type damage struct {
		name  string
		apply func(b []byte, off int) []byte
	}
	for _, d := range []damage{
		{"truncate", func(b []byte, off int) []byte { return b[:off] }},
		{"flip", func(b []byte, off int) []byte { b[off] ^= 0x5a; return b }},
		{"zero-tail", func(b []byte, off int) []byte {
			for i := off; i < len(b); i++ {
				b[i] = 0
			}
			return b
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			for off := headerEnd; off < len(orig); off++ {
				b := d.apply(append([]byte(nil), orig...), off)
				// The first byte that actually changed (zeroing a zero
				// byte changes nothing).
				damaged := off
				for len(b) == len(orig) && damaged < len(b) && b[damaged] == orig[damaged] {
					damaged++
				}
				dir := t.TempDir()
				path := filepath.Join(dir, filepath.Base(segs[0]))
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				rp, err := replayWAL(dir, 0, quietLogger())
				if err != nil {
					t.Fatalf("offset %d: replay error: %v", off, err)
				}
				valid, ents := expect(damaged)
				checkPrefix(t, rp.entries, ents)
				if fi, _ := os.Stat(path); fi.Size() != int64(valid) {
					t.Fatalf("offset %d: file is %d bytes after recovery, want %d", off, fi.Size(), valid)
				}
				// The log continues cleanly after the cut.
				last := uint64(ents)
				w, err := openWAL(dir, rp, last, defaultSegmentSize, quietLogger())
				if err != nil {
					t.Fatal(err)
				}
				next := ent(last+1, 1, strings.Repeat("x", int(last+1)%7)+fmt.Sprint(last+1))
				if err := w.save(nil, []*raftpb.Entry{next}, true); err != nil {
					t.Fatal(err)
				}
				w.close()
				rp, err = replayWAL(dir, 0, quietLogger())
				if err != nil {
					t.Fatalf("offset %d: replay after append: %v", off, err)
				}
				checkPrefix(t, rp.entries, ents+1)
			}
		})
	}
}

func TestWALTornTailIsLogged(t *testing.T) {
	dir := t.TempDir()
	writeEntries(t, dir, 5, 1, defaultSegmentSize)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	fi, _ := os.Stat(segs[0])
	os.Truncate(segs[0], fi.Size()-3)
	logs := &logBuf{}
	if _, err := replayWAL(dir, 0, slogTo(logs)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"torn tail", filepath.Base(segs[0]), "offset=", "bytes_dropped="} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log %q lacks %q", logs, want)
		}
	}
}

// TestWALCorruptionInEarlierSegment: damage outside the last segment is a
// hard error that names the file and the offset.
func TestWALCorruptionInEarlierSegment(t *testing.T) {
	src := t.TempDir()
	writeEntries(t, src, 300, 5, 1<<10)
	segs, _ := filepath.Glob(filepath.Join(src, "*.wal"))
	if len(segs) < 4 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	for _, tc := range []struct {
		name string
		seg  int
		mut  func(b []byte) []byte
	}{
		{"flip-first-segment-middle", 0, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"flip-second-segment-last-byte", 1, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"truncate-second-segment", 1, func(b []byte) []byte { return b[:len(b)-4] }},
		{"flip-header", 2, func(b []byte) []byte { b[12] ^= 1; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			path := filepath.Join(dir, filepath.Base(segs[tc.seg]))
			b, _ := os.ReadFile(path)
			os.WriteFile(path, tc.mut(b), 0o644)
			_, err := replayWAL(dir, 0, quietLogger())
			if err == nil {
				t.Fatal("replay succeeded over a corrupt segment")
			}
			if !strings.Contains(err.Error(), filepath.Base(path)) || !strings.Contains(err.Error(), "offset ") {
				t.Fatalf("error does not name file and offset: %v", err)
			}
		})
	}
	t.Run("intact", func(t *testing.T) {
		rp, err := replayWAL(src, 0, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		checkPrefix(t, rp.entries, 300)
		if got := rp.hardState.GetCommit(); got != 300 {
			t.Fatalf("commit %d", got)
		}
	})
}

// TestWALReplaySemantics covers raft's log truncation and snapshot markers.
func TestWALReplaySemantics(t *testing.T) {
	type step struct {
		ents   []*raftpb.Entry
		marker *[3]uint64 // index, term, reset
	}
	for _, tc := range []struct {
		name      string
		snapIndex uint64
		steps     []step
		want      []string // index:term:data of the result
		wantErr   string
	}{
		{
			name:  "conflict overwrites suffix",
			steps: []step{{ents: []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c"), ent(4, 1, "d")}}, {ents: []*raftpb.Entry{ent(3, 2, "C")}}},
			want:  []string{"1:1:a", "2:1:b", "3:2:C"},
		},
		{
			name:  "overwrite from first then extend",
			steps: []step{{ents: []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b")}}, {ents: []*raftpb.Entry{ent(1, 2, "A")}}, {ents: []*raftpb.Entry{ent(2, 2, "B"), ent(3, 2, "C")}}},
			want:  []string{"1:2:A", "2:2:B", "3:2:C"},
		},
		{
			name:      "entries before snapshot skipped",
			snapIndex: 2,
			steps:     []step{{ents: []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c")}}},
			want:      []string{"3:1:c"},
		},
		{
			name:      "received snapshot resets log",
			snapIndex: 5,
			steps:     []step{{ents: []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 1, "c")}}, {marker: &[3]uint64{5, 2, 1}}, {ents: []*raftpb.Entry{ent(6, 2, "f")}}},
			want:      []string{"6:2:f"},
		},
		{
			name:      "reset snapshot newer than the loaded one",
			snapIndex: 0,
			steps:     []step{{ents: []*raftpb.Entry{ent(1, 1, "a")}}, {marker: &[3]uint64{5, 2, 1}}, {ents: []*raftpb.Entry{ent(6, 2, "f")}}},
			wantErr:   "replaced by snapshot 5",
		},
		{
			name:      "local snapshot marker keeps log",
			snapIndex: 0,
			steps:     []step{{ents: []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b")}}, {marker: &[3]uint64{1, 1, 0}}, {ents: []*raftpb.Entry{ent(3, 1, "c")}}},
			want:      []string{"1:1:a", "2:1:b", "3:1:c"},
		},
		{
			name:    "gap",
			steps:   []step{{ents: []*raftpb.Entry{ent(1, 1, "a")}}, {ents: []*raftpb.Entry{ent(3, 1, "c")}}},
			wantErr: "gap",
		},
		{
			name:      "gap after snapshot",
			snapIndex: 3,
			steps:     []step{{ents: []*raftpb.Entry{ent(5, 1, "e")}}},
			wantErr:   "gap",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := newTestWAL(t, dir, defaultSegmentSize)
			for _, s := range tc.steps {
				if s.marker != nil {
					if err := w.saveSnapshotMarker(s.marker[0], s.marker[1], s.marker[2] == 1); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := w.save(nil, s.ents, true); err != nil {
					t.Fatal(err)
				}
			}
			w.close()
			rp, err := replayWAL(dir, tc.snapIndex, quietLogger())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range rp.entries {
				got = append(got, fmt.Sprintf("%d:%d:%s", e.GetIndex(), e.GetTerm(), e.GetData()))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWALRollAndRelease checks segment rolling, the HardState carried into
// new segments, and deletion of covered segments.
func TestWALRollAndRelease(t *testing.T) {
	dir := t.TempDir()
	writeEntries(t, dir, 200, 4, 1<<10)
	rp, err := replayWAL(dir, 0, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.segments) < 5 {
		t.Fatalf("only %d segments", len(rp.segments))
	}
	w, err := openWAL(dir, rp, 200, 1<<10, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	snapAt := rp.segments[3].first + 2
	for _, p := range w.releaseTo(snapAt) {
		if err := removeFile(p); err != nil {
			t.Fatal(err)
		}
	}
	w.close()
	rp2, err := replayWAL(dir, snapAt, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if rp2.segments[0].seq != 3 {
		t.Fatalf("oldest kept segment is seq %d, want 3", rp2.segments[0].seq)
	}
	if rp2.hardState.GetCommit() != 200 {
		t.Fatalf("hardstate lost with old segments: %v", rp2.hardState)
	}
	if n := len(rp2.entries); n != int(200-snapAt) || rp2.entries[0].GetIndex() != snapAt+1 {
		t.Fatalf("recovered %d entries from %d", n, rp2.entries[0].GetIndex())
	}
}
