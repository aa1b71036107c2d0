package replication

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// validSegment returns the bytes of a small well-formed segment 0 opened for
// index 1, for seeds.
func validSegment(t testing.TB, n int) []byte {
	dir := t.TempDir()
	writeEntries(t, dir, n, 2, defaultSegmentSize)
	b, err := os.ReadFile(filepath.Join(dir, segmentName(0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func validSnapshot(t testing.TB, body string) []byte {
	dir := t.TempDir()
	s := &snapStore{dir: dir, log: quietLogger()}
	meta := snapMeta{Index: 7, Term: 2, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}}
	if _, err := s.save(meta, func(w io.Writer) error { _, err := io.WriteString(w, body); return err }, false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, snapName(2, 7)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzWALReader replays arbitrary bytes as the only (hence last) segment
// with the same code recovery runs on every segment file: it must not
// panic, must either fail or yield a contiguous log, and the part it keeps
// must replay again to the same log with nothing cut.
func FuzzWALReader(f *testing.F) {
	seg := validSegment(f, 5)
	f.Add(seg)
	f.Add(seg[:len(seg)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := segment{seq: 0, first: 1, path: "fuzz.wal"}
		rp := &walReplay{}
		end, err := rp.replaySegment(s, data, 0, true, quietLogger())
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.wal: offset ") {
				t.Fatalf("error does not name file and offset: %v", err)
			}
			return
		}
		if end < 0 || end > len(data) {
			t.Fatalf("valid end %d outside input of %d bytes", end, len(data))
		}
		for i, e := range rp.entries {
			if e.GetIndex() != uint64(i+1) {
				t.Fatalf("entry %d has index %d", i, e.GetIndex())
			}
		}
		rp2 := &walReplay{}
		end2, err := rp2.replaySegment(s, data[:end], 0, true, quietLogger())
		if err != nil || end2 != end || len(rp2.entries) != len(rp.entries) {
			t.Fatalf("replaying the kept prefix differs: end %d/%d, %d/%d entries, err %v",
				end2, end, len(rp2.entries), len(rp.entries), err)
		}
	})
}

// TestFuzzWALReaderFile runs the seed corpus through full file recovery
// (read, truncate, reopen), which the fuzz target skips for speed.
func TestFuzzWALReaderFile(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzWALReader", "*"))
	if len(files) == 0 {
		t.Fatal("no seed corpus")
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		var data []byte
		// Seed files are "go test fuzz v1\n[]byte(<quoted>)\n".
		q := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(string(raw), "\n", 2)[1], "[]byte("), ")\n")
		if _, err := fmt.Sscanf(q, "%q", &data); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		dir := t.TempDir()
		path := filepath.Join(dir, segmentName(0, 1))
		os.WriteFile(path, data, 0o644)
		rp, err := replayWAL(dir, 0, quietLogger())
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("%s: error does not name the file: %v", f, err)
			}
			continue
		}
		if fi, _ := os.Stat(path); fi.Size() != rp.tailSize {
			t.Fatalf("%s: file %d bytes, valid %d", f, fi.Size(), rp.tailSize)
		}
	}
}

// FuzzSnapshotReader checks arbitrary bytes as a snapshot stream: no
// panic; success only for a self-consistent header and body.
func FuzzSnapshotReader(f *testing.F) {
	snap := validSnapshot(f, "hello snapshot")
	f.Add(snap)
	f.Add(snap[:40])
	f.Add(validSnapshot(f, ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		var body bytes.Buffer
		h, err := readSnapshot(bytes.NewReader(data), &body)
		if err != nil {
			return
		}
		if uint64(body.Len()) != h.bodyLen || h.size+body.Len() != len(data) {
			t.Fatalf("accepted snapshot: header %d + body %d != %d bytes", h.size, body.Len(), len(data))
		}
		// Re-encoding the accepted header reproduces the input.
		hdr, err := encodeSnapHeader(h.meta, h.bodyLen, h.bodyCRC)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hdr, data[:h.size]) && proto.Equal(h.meta.ConfState, h.meta.raft().GetConfState()) {
			// Protobuf encoding of the ConfState need not be canonical, so
			// only the decoded values are compared.
			dec, err := decodeSnapHeader(bytes.NewReader(hdr))
			if err != nil || dec.meta.Index != h.meta.Index || dec.meta.Term != h.meta.Term || !proto.Equal(dec.meta.ConfState, h.meta.ConfState) {
				t.Fatalf("re-encoded header differs: %v", err)
			}
		}
	})
}

func TestSnapshotRoundTripAndDamage(t *testing.T) {
	good := validSnapshot(t, strings.Repeat("state ", 100))
	h, err := readSnapshot(bytes.NewReader(good), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if h.meta.Index != 7 || h.meta.Term != 2 || fmt.Sprint(h.meta.ConfState.GetVoters()) != "[1 2 3]" {
		t.Fatalf("meta %+v", h.meta)
	}
	for off := 0; off < len(good); off++ {
		b := append([]byte(nil), good...)
		b[off] ^= 0x10
		if _, err := readSnapshot(bytes.NewReader(b), io.Discard); err == nil {
			t.Fatalf("flipped byte %d accepted", off)
		}
		if _, err := readSnapshot(bytes.NewReader(good[:off]), io.Discard); err == nil {
			t.Fatalf("truncation at %d accepted", off)
		}
	}
	if _, err := readSnapshot(bytes.NewReader(append(good, 0)), io.Discard); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// TestWriteFuzzSeeds regenerates testdata/fuzz seed files when
// PADDOCK_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("PADDOCK_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PADDOCK_WRITE_FUZZ_SEEDS=1 to regenerate the seed corpus")
	}
	seg := validSegment(t, 6)
	snap := validSnapshot(t, "seed body")
	torn := append([]byte(nil), seg...)
	torn[len(torn)-2] ^= 0xff
	seeds := map[string]map[string][]byte{
		"FuzzWALReader": {
			"valid":        seg,
			"torn-tail":    seg[:len(seg)-5],
			"crc-bad-tail": torn,
			"header-only":  seg[:recordHeaderSize+headerPayloadSize],
			"huge-length":  append(append([]byte(nil), seg[:recordHeaderSize+headerPayloadSize]...), 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 2),
		},
		"FuzzSnapshotReader": {
			"valid":       snap,
			"short":       snap[:20],
			"body-cut":    snap[:len(snap)-3],
			"empty-body":  validSnapshot(t, ""),
			"wrong-magic": append([]byte("XXXXXXXX"), snap[8:]...),
		},
	}
	for fuzz, files := range seeds {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
