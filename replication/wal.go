package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Record types of the WAL; see the package documentation for the layout.
const (
	recHeader    byte = 1
	recEntry     byte = 2
	recHardState byte = 3
	recSnapshot  byte = 4
)

const (
	walVersion = 1
	// recordHeaderSize is length(4) + crc(4) + type(1).
	recordHeaderSize = 9
	// maxRecordSize bounds the declared length of a record so that a
	// corrupt length never makes replay allocate or skip gigabytes.
	maxRecordSize = 256 << 20
	// defaultSegmentSize is the size past which a segment is rolled.
	defaultSegmentSize = 64 << 20
	// headerPayloadSize is magic(8) + version(4) + seq(8) + first index(8).
	headerPayloadSize = 28
	// snapMarkerSize is index(8) + term(8) + flags(1).
	snapMarkerSize = 17
	// snapMarkerReset marks a snapshot that replaced the whole log.
	snapMarkerReset = 1
)

var walMagic = [8]byte{'P', 'D', 'K', 'W', 'A', 'L', 0, 1}

// crcTable is the Castagnoli polynomial table, hardware accelerated on
// amd64 and arm64.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

func recordCRC(typ byte, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, crcTable, []byte{typ}), crcTable, payload)
}

// appendRecord appends one framed record to buf.
func appendRecord(buf []byte, typ byte, payload []byte) []byte {
	var h [recordHeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], recordCRC(typ, payload))
	h[8] = typ
	buf = append(buf, h[:]...)
	return append(buf, payload...)
}

// appendProtoRecord marshals m straight into buf behind a record header,
// avoiding a temporary buffer per entry.
func appendProtoRecord(buf []byte, typ byte, m proto.Message) ([]byte, error) {
	start := len(buf)
	buf = append(buf, make([]byte, recordHeaderSize)...)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf[:start], err
	}
	payload := buf[start+recordHeaderSize:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], recordCRC(typ, payload))
	buf[start+8] = typ
	return buf, nil
}

// errTorn reports a record that is incomplete or fails its checksum: what
// an interrupted write leaves behind.
var errTorn = errors.New("torn or corrupt record")

// decodeRecord decodes the record at the start of b and returns its type,
// payload and total size. Any framing or checksum problem is errTorn.
func decodeRecord(b []byte) (typ byte, payload []byte, size int, err error) {
	if len(b) < recordHeaderSize {
		return 0, nil, 0, fmt.Errorf("%w: %d bytes left, need a %d byte header", errTorn, len(b), recordHeaderSize)
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n > maxRecordSize || uint64(n) > uint64(len(b)-recordHeaderSize) {
		return 0, nil, 0, fmt.Errorf("%w: length %d exceeds the %d bytes left", errTorn, n, len(b)-recordHeaderSize)
	}
	typ = b[8]
	payload = b[recordHeaderSize : recordHeaderSize+int(n)]
	if got, want := recordCRC(typ, payload), binary.LittleEndian.Uint32(b[4:8]); got != want {
		return 0, nil, 0, fmt.Errorf("%w: crc %08x, want %08x", errTorn, got, want)
	}
	return typ, payload, recordHeaderSize + int(n), nil
}

// segment names one WAL segment file.
type segment struct {
	seq   uint64 // position in the sequence of segments, from 0, no gaps
	first uint64 // raft index this segment was opened for
	path  string
}

func segmentName(seq, first uint64) string {
	return fmt.Sprintf("%016x-%016x.wal", seq, first)
}

func parseSegmentName(name string) (seq, first uint64, ok bool) {
	if len(name) != 16+1+16+4 || !strings.HasSuffix(name, ".wal") || name[16] != '-' {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(name, "%016x-%016x.wal", &seq, &first); err != nil {
		return 0, 0, false
	}
	return seq, first, true
}

// listSegments returns the segments in dir ordered by seq. Leftover .tmp
// files from an interrupted roll are removed: they were never part of the
// log.
func listSegments(dir string, log *slog.Logger) ([]segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, ".wal.tmp") {
			log.Warn("removing unfinished wal segment", "file", filepath.Join(dir, name))
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, err
			}
			continue
		}
		seq, first, ok := parseSegmentName(name)
		if !ok {
			continue
		}
		segs = append(segs, segment{seq: seq, first: first, path: filepath.Join(dir, name)})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, fmt.Errorf("wal: segment sequence gap between %s and %s", segs[i-1].path, segs[i].path)
		}
	}
	return segs, nil
}

// walReplay is what replaying the WAL recovers.
type walReplay struct {
	hardState *raftpb.HardState // newest HardState, nil if none was written
	entries   []*raftpb.Entry   // contiguous, starting at snapIndex+1
	segments  []segment
	// tailSize is the valid length of the last segment (after any torn tail
	// was cut off); the writer continues there.
	tailSize int64
}

// replayWAL reads every segment in dir and returns the log after snapIndex.
// A bad record in the last segment truncates that segment at the record; a
// bad record anywhere else is an error naming file and offset.
func replayWAL(dir string, snapIndex uint64, log *slog.Logger) (*walReplay, error) {
	segs, err := listSegments(dir, log)
	if err != nil {
		return nil, err
	}
	rp := &walReplay{segments: segs}
	for i, seg := range segs {
		data, err := os.ReadFile(seg.path)
		if err != nil {
			return nil, err
		}
		last := i == len(segs)-1
		end, err := rp.replaySegment(seg, data, snapIndex, last, log)
		if err != nil {
			return nil, err
		}
		if last {
			if end < len(data) {
				log.Warn("wal: truncating torn tail of last segment",
					"file", seg.path, "offset", end, "bytes_dropped", len(data)-end)
				if err := truncateAndSync(seg.path, int64(end)); err != nil {
					return nil, err
				}
			}
			rp.tailSize = int64(end)
		}
	}
	if hs := rp.hardState; hs != nil {
		// raft requires snapIndex <= commit <= lastIndex.
		lastIndex := snapIndex
		if n := len(rp.entries); n > 0 {
			lastIndex = rp.entries[n-1].GetIndex()
		}
		c := hs.GetCommit()
		if c < snapIndex {
			c = snapIndex
		}
		if c > lastIndex {
			log.Warn("wal: commit index beyond recovered log; clamping", "commit", c, "last_index", lastIndex)
			c = lastIndex
		}
		hs.Commit = proto.Uint64(c)
	}
	return rp, nil
}

// replaySegment replays one segment's bytes and returns the offset where
// valid data ends. Only the last segment may end early.
func (rp *walReplay) replaySegment(seg segment, data []byte, snapIndex uint64, last bool, log *slog.Logger) (int, error) {
	fail := func(off int, format string, args ...any) (int, error) {
		return 0, fmt.Errorf("wal: %s: offset %d: %s", seg.path, off, fmt.Sprintf(format, args...))
	}
	off := 0
	for off < len(data) {
		typ, payload, size, err := decodeRecord(data[off:])
		if err != nil {
			// The header record is fsynced before the segment gets its
			// final name, so a bad header is never a torn write.
			if last && off > 0 {
				return off, nil
			}
			return fail(off, "%v", err)
		}
		if off == 0 && typ != recHeader {
			return fail(off, "segment does not start with a header record")
		}
		switch typ {
		case recHeader:
			if off != 0 {
				return fail(off, "header record in the middle of a segment")
			}
			if len(payload) != headerPayloadSize || [8]byte(payload[0:8]) != walMagic {
				return fail(off, "bad segment header")
			}
			if v := binary.LittleEndian.Uint32(payload[8:12]); v != walVersion {
				return fail(off, "unsupported wal version %d", v)
			}
			seq, first := binary.LittleEndian.Uint64(payload[12:20]), binary.LittleEndian.Uint64(payload[20:28])
			if seq != seg.seq || first != seg.first {
				return fail(off, "header says seq %d first index %d, file name says %d %d", seq, first, seg.seq, seg.first)
			}
		case recEntry:
			e := new(raftpb.Entry)
			if err := proto.Unmarshal(payload, e); err != nil {
				return fail(off, "bad entry: %v", err)
			}
			if err := rp.addEntry(e, snapIndex); err != nil {
				return fail(off, "%v", err)
			}
		case recHardState:
			hs := new(raftpb.HardState)
			if err := proto.Unmarshal(payload, hs); err != nil {
				return fail(off, "bad hardstate: %v", err)
			}
			rp.hardState = hs
		case recSnapshot:
			if len(payload) != snapMarkerSize {
				return fail(off, "bad snapshot marker")
			}
			index := binary.LittleEndian.Uint64(payload[0:8])
			if payload[16]&snapMarkerReset != 0 {
				// A snapshot from the leader replaced the log: raft
				// forgot every entry, so replay does too. Replaying from an
				// older snapshot cannot fill the hole it left.
				if index > snapIndex {
					return fail(off, "log was replaced by snapshot %d but the newest usable snapshot is %d", index, snapIndex)
				}
				rp.entries = nil
			}
		default:
			return fail(off, "unknown record type %d", typ)
		}
		off += size
	}
	return off, nil
}

// addEntry appends e to the replayed log, overwriting any suffix it
// conflicts with, exactly as raft's own log would have.
func (rp *walReplay) addEntry(e *raftpb.Entry, snapIndex uint64) error {
	idx := e.GetIndex()
	if idx <= snapIndex {
		if len(rp.entries) > 0 {
			return fmt.Errorf("entry %d overwrites the log below snapshot index %d", idx, snapIndex)
		}
		return nil // covered by the snapshot
	}
	if len(rp.entries) == 0 {
		if idx != snapIndex+1 {
			return fmt.Errorf("entry %d leaves a gap after snapshot index %d", idx, snapIndex)
		}
		rp.entries = append(rp.entries, e)
		return nil
	}
	first, last := rp.entries[0].GetIndex(), rp.entries[len(rp.entries)-1].GetIndex()
	if idx > last+1 {
		return fmt.Errorf("entry %d leaves a gap after %d", idx, last)
	}
	// Cut the conflicting suffix (idx <= last) and append. The full slice
	// expression forces a copy so earlier slices are never written through.
	k := idx - first
	rp.entries = append(rp.entries[:k:k], e)
	return nil
}

func truncateAndSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs a directory so that creates, renames and removes in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// wal appends records to the newest segment. It is used only by the node's
// run loop (and Open/Close), so it needs no lock.
type wal struct {
	dir     string
	log     *slog.Logger
	segSize int64

	segs []segment // live segments, the last one is f
	f    *os.File
	size int64 // bytes in f

	lastIndex uint64            // index of the newest entry written
	hs        *raftpb.HardState // newest HardState written, repeated in new segments
	buf       []byte

	fsyncs, entries, bytes uint64 // statistics
}

// openWAL opens the WAL for appending after replay. An empty directory gets
// its first segment, opened for index lastIndex+1.
func openWAL(dir string, rp *walReplay, lastIndex uint64, segSize int64, log *slog.Logger) (*wal, error) {
	w := &wal{dir: dir, log: log, segSize: segSize, segs: rp.segments, lastIndex: lastIndex, hs: rp.hardState}
	if len(w.segs) == 0 {
		if err := w.createSegment(0, lastIndex+1); err != nil {
			return nil, err
		}
		return w, nil
	}
	tail := w.segs[len(w.segs)-1]
	f, err := os.OpenFile(tail.path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(rp.tailSize, 0); err != nil {
		f.Close()
		return nil, err
	}
	w.f, w.size = f, rp.tailSize
	return w, nil
}

// createSegment writes a new segment under a temporary name (header plus
// the current HardState), fsyncs it, renames it into place and fsyncs the
// directory, then makes it the segment being appended to.
func (w *wal) createSegment(seq, first uint64) error {
	name := segmentName(seq, first)
	final := filepath.Join(w.dir, name)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	var hdr [headerPayloadSize]byte
	copy(hdr[0:8], walMagic[:])
	binary.LittleEndian.PutUint32(hdr[8:12], walVersion)
	binary.LittleEndian.PutUint64(hdr[12:20], seq)
	binary.LittleEndian.PutUint64(hdr[20:28], first)
	buf := appendRecord(nil, recHeader, hdr[:])
	if w.hs != nil {
		if buf, err = appendProtoRecord(buf, recHardState, w.hs); err != nil {
			f.Close()
			return err
		}
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(w.dir); err != nil {
		f.Close()
		return err
	}
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			f.Close()
			return err
		}
	}
	w.f, w.size = f, int64(len(buf))
	w.segs = append(w.segs, segment{seq: seq, first: first, path: final})
	return nil
}

// save appends entries and then the HardState (if any) as one write, and
// fsyncs once if sync is set. Entries must be durable before raft may count
// them, so an error here is fatal for the node.
func (w *wal) save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	if hs == nil && len(ents) == 0 && !sync {
		return nil
	}
	buf := w.buf[:0]
	var err error
	for _, e := range ents {
		if buf, err = appendProtoRecord(buf, recEntry, e); err != nil {
			return err
		}
	}
	if hs != nil {
		if buf, err = appendProtoRecord(buf, recHardState, hs); err != nil {
			return err
		}
	}
	if err := w.write(buf, sync); err != nil {
		return err
	}
	if cap(buf) <= 4<<20 {
		w.buf = buf // keep a moderately sized buffer for the next batch
	}
	if len(ents) > 0 {
		w.lastIndex = ents[len(ents)-1].GetIndex()
		w.entries += uint64(len(ents))
	}
	if hs != nil {
		w.hs = hs
	}
	return w.maybeRoll()
}

// saveSnapshotMarker records that a snapshot at index exists; reset means
// the snapshot replaced the log (received from the leader).
func (w *wal) saveSnapshotMarker(index, term uint64, reset bool) error {
	var p [snapMarkerSize]byte
	binary.LittleEndian.PutUint64(p[0:8], index)
	binary.LittleEndian.PutUint64(p[8:16], term)
	if reset {
		p[16] = snapMarkerReset
		w.lastIndex = index
	}
	return w.write(appendRecord(nil, recSnapshot, p[:]), false)
}

func (w *wal) write(buf []byte, sync bool) error {
	if len(buf) > 0 {
		n, err := w.f.Write(buf)
		w.size += int64(n)
		w.bytes += uint64(n)
		if err != nil {
			return fmt.Errorf("wal: write %s: %w", w.f.Name(), err)
		}
	}
	if sync {
		if err := fdatasync(w.f); err != nil {
			return fmt.Errorf("wal: fsync %s: %w", w.f.Name(), err)
		}
		w.fsyncs++
	}
	return nil
}

// maybeRoll starts a new segment once the current one is big enough. The
// old segment is fsynced first so that only the last segment can ever have
// a torn tail.
func (w *wal) maybeRoll() error {
	if w.size < w.segSize {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("wal: fsync %s: %w", w.f.Name(), err)
	}
	cur := w.segs[len(w.segs)-1]
	return w.createSegment(cur.seq+1, w.lastIndex+1)
}

// releaseTo deletes segments holding only entries at or below index; the
// segment being written is always kept. Entries in a segment are all below
// the next segment's first index, which is what makes this test sufficient.
func (w *wal) releaseTo(index uint64) (victims []string) {
	n := 0
	for n < len(w.segs)-1 && w.segs[n+1].first <= index+1 {
		n++
	}
	for _, s := range w.segs[:n] {
		victims = append(victims, s.path)
		w.log.Debug("wal: segment covered by snapshot", "file", s.path, "snapshot_index", index)
	}
	w.segs = append([]segment(nil), w.segs[n:]...)
	return victims
}

// close fsyncs and closes the segment being written.
func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	return err
}
