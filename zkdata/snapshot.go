package zkdata

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/paddockhq/paddock/proto"
)

// File magics (FileHeader.magic).
const (
	// SnapMagic is "ZKSN", the magic of snapshot files.
	SnapMagic int32 = 0x5A4B534E
	// LogMagic is "ZKLG", the magic of transaction log files.
	LogMagic int32 = 0x5A4B4C47
	// openACLID is ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID: nodes with
	// this ACL id are world:anyone with every permission.
	openACLID int64 = -1
)

// Compression names a snapshot's stream format, chosen by ZooKeeper from
// the file name's extension (SnapStream.getStreamMode).
type Compression int

// The snapshot stream formats.
const (
	Plain Compression = iota
	Gzip
	Snappy
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gz"
	case Snappy:
		return "snappy"
	}
	return "plain"
}

// Session is a session as a snapshot or a createSession txn records it.
type Session struct {
	ID      int64
	Timeout int32
}

// SnapNode is one node record of a snapshot. Path is "/" for the root
// (ZooKeeper writes it as "").
type SnapNode struct {
	Path  string
	Data  []byte
	ACLID int64
	Stat  proto.StatPersisted
}

// ZxidDigest is the digest trailer of a 3.6+ snapshot: the tree digest
// ZooKeeper computed at Zxid.
type ZxidDigest struct {
	Zxid    int64
	Version int32
	Digest  int64
}

// Snapshot is a decoded snapshot file.
type Snapshot struct {
	// File is the path it was read from.
	File string
	// Zxid is the zxid in the file name: every txn up to it is in the
	// snapshot (and possibly some later ones: snapshots are fuzzy).
	Zxid        int64
	Compression Compression
	Header      proto.FileHeader
	Sessions    []Session
	// ACLs is the ACL cache: id → list. Id -1 (open) is implicit.
	ACLs  map[int64][]proto.ACL
	Nodes []SnapNode
	// Digest is the digest trailer, nil when absent or empty.
	Digest *ZxidDigest
	// LastProcessedZxid is the 3.9 trailer, 0 when absent. ZooKeeper
	// restores from the file name's zxid regardless.
	LastProcessedZxid int64
}

// ACL resolves an ACL id of this snapshot.
func (s *Snapshot) ACL(id int64) ([]proto.ACL, bool) {
	if id == openACLID {
		return proto.OpenACLUnsafe, true
	}
	acl, ok := s.ACLs[id]
	return acl, ok
}

// ParseSnapshotName returns the zxid and compression of a snapshot file
// name ("snapshot.<hex>[.gz|.snappy]"), ok false for other names.
func ParseSnapshotName(name string) (zxid int64, c Compression, ok bool) {
	return parseDataName(name, "snapshot")
}

// parseDataName follows Util.getZxidFromName: prefix "." hex zxid, with
// SnapStream's rule that the last extension picks the compression.
func parseDataName(name, prefix string) (int64, Compression, bool) {
	rest, ok := cutPrefix(name, prefix+".")
	if !ok {
		return 0, Plain, false
	}
	hex, ext, hasExt := cut(rest, '.')
	z, err := strconv.ParseUint(hex, 16, 64)
	if err != nil || hex == "" {
		return 0, Plain, false
	}
	c := Plain
	if hasExt {
		if prefix != "snapshot" {
			return 0, Plain, false
		}
		switch ext {
		case "gz":
			c = Gzip
		case "snappy":
			c = Snappy
		default:
			// ZooKeeper reads an unknown extension as a plain
			// snapshot; so do we, but only for names it writes.
			return 0, Plain, false
		}
	}
	return int64(z), c, true
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return s, false
	}
	return s[len(p):], true
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// ReadSnapshotFile reads and fully verifies one snapshot file.
func ReadSnapshotFile(path string) (*Snapshot, error) {
	zxid, c, ok := ParseSnapshotName(filepath.Base(path))
	if !ok {
		return nil, fmt.Errorf("zkdata: %s: not a snapshot file name (snapshot.<hex zxid>[.gz|.snappy])", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("zkdata: %w", err)
	}
	defer f.Close()
	snap, err := DecodeSnapshot(f, c)
	if err != nil {
		return nil, fmt.Errorf("zkdata: snapshot %s: %w", path, err)
	}
	snap.File, snap.Zxid = path, zxid
	return snap, nil
}

// OffsetError locates a problem in a file: Offset counts bytes of the
// uncompressed stream (for a plain file, the file offset).
type OffsetError struct {
	Offset     int64
	Compressed bool
	Err        error
}

func (e *OffsetError) Error() string {
	where := "offset"
	if e.Compressed {
		where = "uncompressed offset"
	}
	return fmt.Sprintf("%s %d: %v", where, e.Offset, e.Err)
}

func (e *OffsetError) Unwrap() error { return e.Err }

// DecodeSnapshot reads a snapshot stream in the given format and checks
// its magic, structure and every Adler32 seal. Zxid and File are left for
// the caller (they come from the file name).
func DecodeSnapshot(r io.Reader, c Compression) (*Snapshot, error) {
	var in io.Reader
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, &OffsetError{Offset: 0, Err: fmt.Errorf("gzip: %w", err), Compressed: true}
		}
		defer zr.Close()
		in = zr
	case Snappy:
		in = NewSnappyReader(r)
	default:
		in = r
	}
	s := newStreamReader(in)
	snap, start, err := decodeSnapshot(s)
	if err != nil {
		if errors.Is(err, errEOF) {
			err = errTruncated
		}
		off := s.off
		if start >= 0 {
			off = start
		}
		return nil, &OffsetError{Offset: off, Err: err, Compressed: c != Plain}
	}
	snap.Compression = c
	return snap, nil
}

// decodeSnapshot returns, on error, the offset of the value being read when
// it is more telling than the stream position (or -1).
func decodeSnapshot(s *streamReader) (*Snapshot, int64, error) {
	snap := &Snapshot{ACLs: make(map[int64][]proto.ACL)}
	h := &snap.Header
	h.Magic, h.Version, h.Dbid = s.int(), s.int(), s.long()
	s.mid()
	if s.err != nil {
		return nil, -1, fmt.Errorf("file header: %w", s.err)
	}
	if h.Magic != SnapMagic {
		return nil, 0, fmt.Errorf("bad magic 0x%08x, want 0x%08x (ZKSN)", uint32(h.Magic), uint32(SnapMagic))
	}
	// Sessions.
	start := s.off
	n := s.int()
	s.mid()
	if s.err == nil && n < 0 {
		return nil, start, fmt.Errorf("bad session count %d", n)
	}
	for i := int32(0); i < n && s.err == nil; i++ {
		id, to := s.long(), s.int()
		s.mid()
		snap.Sessions = append(snap.Sessions, Session{ID: id, Timeout: to})
	}
	// ACL cache.
	start = s.off
	n = s.int()
	s.mid()
	if s.err == nil && n < 0 {
		return nil, start, fmt.Errorf("bad ACL map size %d", n)
	}
	for i := int32(0); i < n && s.err == nil; i++ {
		start = s.off
		id := s.long()
		cnt := s.int()
		s.mid()
		if s.err != nil {
			break
		}
		if cnt < 0 {
			return nil, start, fmt.Errorf("ACL list %d is null", id)
		}
		var acl []proto.ACL
		for j := int32(0); j < cnt && s.err == nil; j++ {
			var a proto.ACL
			a.Perms = s.int()
			a.Id.Scheme, _ = s.string()
			a.Id.Id, _ = s.string()
			s.mid()
			acl = append(acl, a)
		}
		if _, dup := snap.ACLs[id]; dup && s.err == nil {
			return nil, start, fmt.Errorf("ACL id %d appears twice", id)
		}
		snap.ACLs[id] = acl
	}
	if s.err != nil {
		return nil, -1, fmt.Errorf("ACL cache: %w", s.err)
	}
	// Nodes, pre-order, until the "/" sentinel.
	seen := make(map[string]struct{})
	for {
		start = s.off
		path, ok := s.string()
		s.mid()
		if s.err != nil {
			return nil, -1, fmt.Errorf("node path: %w", s.err)
		}
		if !ok {
			return nil, start, errors.New("null node path")
		}
		if path == "/" {
			break
		}
		nd := SnapNode{Path: path}
		nd.Data = s.buffer()
		nd.ACLID = s.long()
		st := &nd.Stat
		st.Czxid, st.Mzxid, st.Ctime, st.Mtime = s.long(), s.long(), s.long(), s.long()
		st.Version, st.Cversion, st.Aversion = s.int(), s.int(), s.int()
		st.EphemeralOwner, st.Pzxid = s.long(), s.long()
		s.mid()
		if s.err != nil {
			return nil, -1, fmt.Errorf("node %q: %w", path, s.err)
		}
		if err := checkSnapPath(path, seen, len(snap.Nodes) == 0); err != nil {
			return nil, start, err
		}
		if nd.ACLID != openACLID {
			if _, ok := snap.ACLs[nd.ACLID]; !ok {
				return nil, start, fmt.Errorf("node %q uses ACL id %d, which is not in the ACL cache", path, nd.ACLID)
			}
		}
		if path == "" {
			nd.Path = "/"
		}
		snap.Nodes = append(snap.Nodes, nd)
	}
	// The seal over everything so far.
	if err := checkSeal(s); err != nil {
		return nil, -1, err
	}
	// Digest trailer (3.6+), then lastProcessedZxid (3.9+), each with its
	// own seal. Either may be absent: the stream then ends cleanly.
	start = s.off
	d := ZxidDigest{Zxid: s.long()}
	if s.err == errEOF {
		return snap, -1, nil
	}
	d.Version = s.int()
	s.mid()
	if d.Version < 2 {
		hex, ok := s.string()
		if ok && hex != "" && s.err == nil {
			v, err := strconv.ParseUint(hex, 16, 64)
			if err != nil {
				return nil, start, fmt.Errorf("digest trailer: bad hex digest %q", hex)
			}
			d.Digest = int64(v)
		}
	} else {
		d.Digest = s.long()
	}
	s.mid()
	if s.err != nil {
		return nil, -1, fmt.Errorf("digest trailer: %w", s.err)
	}
	if err := checkSeal(s); err != nil {
		return nil, -1, fmt.Errorf("digest trailer: %w", err)
	}
	if d.Zxid > 0 {
		snap.Digest = &d
	}
	last := s.long()
	if s.err == errEOF {
		return snap, -1, nil
	}
	if s.err != nil {
		return nil, -1, fmt.Errorf("lastProcessedZxid trailer: %w", s.err)
	}
	if err := checkSeal(s); err != nil {
		return nil, -1, fmt.Errorf("lastProcessedZxid trailer: %w", err)
	}
	snap.LastProcessedZxid = last
	return snap, -1, nil
}

// checkSeal reads {long adler32; ustring "/"} and compares the checksum
// with the running Adler32 of everything before it
// (SnapStream.checkSealIntegrity).
func checkSeal(s *streamReader) error {
	want := int64(s.sum.Sum32())
	got := s.long()
	s.mid()
	_, _ = s.string()
	s.mid()
	if s.err != nil {
		return fmt.Errorf("seal: %w", s.err)
	}
	if got != want {
		return fmt.Errorf("checksum mismatch: stored adler32 0x%x, computed 0x%x", got, want)
	}
	return nil
}

// checkSnapPath checks a node path of a snapshot: the root ("") first, then
// absolute paths whose parent came before them, each once.
func checkSnapPath(path string, seen map[string]struct{}, first bool) error {
	if first != (path == "") {
		if first {
			return fmt.Errorf("first node is %q, not the root", path)
		}
		return errors.New("root node appears twice")
	}
	if _, dup := seen[path]; dup {
		return fmt.Errorf("node %q appears twice", path)
	}
	if !first {
		i := bytes.LastIndexByte([]byte(path), '/')
		if i < 0 || i == len(path)-1 {
			return fmt.Errorf("bad node path %q", path)
		}
		if _, ok := seen[path[:i]]; !ok {
			return fmt.Errorf("node %q comes before its parent", path)
		}
	}
	seen[path] = struct{}{}
	return nil
}
