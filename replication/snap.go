package replication

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	snapVersion = 1
	// maxConfStateSize bounds the declared ConfState length in a header.
	maxConfStateSize = 1 << 20
	// snapFixedHeader is magic(8)+version(4)+index(8)+term(8)+cs length(4).
	snapFixedHeader = 32
	// snapHeaderTail is body length(8) + body crc(4) + header crc(4).
	snapHeaderTail = 16
)

var snapMagic = [8]byte{'P', 'D', 'K', 'S', 'N', 'A', 'P', 1}

// snapMeta is the raft position a snapshot captures.
type snapMeta struct {
	Index, Term uint64
	ConfState   *raftpb.ConfState
}

func (m snapMeta) raft() *raftpb.SnapshotMetadata {
	cs := m.ConfState
	if cs == nil {
		cs = &raftpb.ConfState{}
	}
	return &raftpb.SnapshotMetadata{Index: proto.Uint64(m.Index), Term: proto.Uint64(m.Term), ConfState: cs}
}

func snapName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x.snap", term, index)
}

func parseSnapName(name string) (term, index uint64, ok bool) {
	if len(name) != 16+1+16+5 || !strings.HasSuffix(name, ".snap") || name[16] != '-' {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(name, "%016x-%016x.snap", &term, &index); err != nil {
		return 0, 0, false
	}
	return term, index, true
}

// encodeSnapHeader returns the header bytes for meta and a body of the
// given length and checksum.
func encodeSnapHeader(meta snapMeta, bodyLen uint64, bodyCRC uint32) ([]byte, error) {
	cs, err := proto.Marshal(meta.raft().GetConfState())
	if err != nil {
		return nil, err
	}
	h := make([]byte, 0, snapFixedHeader+len(cs)+snapHeaderTail)
	h = append(h, snapMagic[:]...)
	h = binary.LittleEndian.AppendUint32(h, snapVersion)
	h = binary.LittleEndian.AppendUint64(h, meta.Index)
	h = binary.LittleEndian.AppendUint64(h, meta.Term)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(cs)))
	h = append(h, cs...)
	h = binary.LittleEndian.AppendUint64(h, bodyLen)
	h = binary.LittleEndian.AppendUint32(h, bodyCRC)
	h = binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, crcTable))
	return h, nil
}

// snapHeader is a decoded snapshot file header.
type snapHeader struct {
	meta    snapMeta
	bodyLen uint64
	bodyCRC uint32
	size    int // header bytes; the body starts here
}

// decodeSnapHeader reads and checks a snapshot header from r.
func decodeSnapHeader(r io.Reader) (snapHeader, error) {
	var h snapHeader
	fixed := make([]byte, snapFixedHeader)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return h, fmt.Errorf("short header: %w", err)
	}
	if [8]byte(fixed[0:8]) != snapMagic {
		return h, errors.New("bad magic")
	}
	if v := binary.LittleEndian.Uint32(fixed[8:12]); v != snapVersion {
		return h, fmt.Errorf("unsupported snapshot version %d", v)
	}
	csLen := binary.LittleEndian.Uint32(fixed[28:32])
	if csLen > maxConfStateSize {
		return h, fmt.Errorf("conf state length %d too large", csLen)
	}
	rest := make([]byte, int(csLen)+snapHeaderTail)
	if _, err := io.ReadFull(r, rest); err != nil {
		return h, fmt.Errorf("short header: %w", err)
	}
	all := append(fixed, rest...)
	n := len(all)
	if got, want := crc32.Checksum(all[:n-4], crcTable), binary.LittleEndian.Uint32(all[n-4:]); got != want {
		return h, fmt.Errorf("header crc %08x, want %08x", got, want)
	}
	cs := new(raftpb.ConfState)
	if err := proto.Unmarshal(rest[:csLen], cs); err != nil {
		return h, fmt.Errorf("bad conf state: %w", err)
	}
	h.meta = snapMeta{
		Index:     binary.LittleEndian.Uint64(fixed[12:20]),
		Term:      binary.LittleEndian.Uint64(fixed[20:28]),
		ConfState: cs,
	}
	h.bodyLen = binary.LittleEndian.Uint64(rest[csLen : csLen+8])
	h.bodyCRC = binary.LittleEndian.Uint32(rest[csLen+8 : csLen+12])
	h.size = n
	return h, nil
}

// readSnapshot checks a whole snapshot stream: header, body length and body
// checksum, and that nothing follows the body. The body is passed through
// body (which may be io.Discard) as it is read.
func readSnapshot(r io.Reader, body io.Writer) (snapHeader, error) {
	h, err := decodeSnapHeader(r)
	if err != nil {
		return h, err
	}
	crc := crc32.New(crcTable)
	n, err := io.Copy(io.MultiWriter(crc, body), io.LimitReader(r, int64(min(h.bodyLen, 1<<62))))
	if err != nil {
		return h, err
	}
	if uint64(n) != h.bodyLen {
		return h, fmt.Errorf("body is %d bytes, header says %d", n, h.bodyLen)
	}
	if crc.Sum32() != h.bodyCRC {
		return h, fmt.Errorf("body crc %08x, want %08x", crc.Sum32(), h.bodyCRC)
	}
	var one [1]byte
	if k, _ := r.Read(one[:]); k != 0 {
		return h, errors.New("trailing bytes after body")
	}
	return h, nil
}

// snapStore manages Dir/snap.
type snapStore struct {
	dir string
	log *slog.Logger
}

type snapFile struct {
	term, index uint64
	path        string
}

// list returns the snapshot files, newest (highest index) first. With
// clean it also removes the leftovers of interrupted saves: only at
// recovery, never while a snapshot may be being written (its .tmp).
func (s *snapStore) list(clean bool) ([]snapFile, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []snapFile
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, ".snap.tmp") {
			if clean {
				_ = os.Remove(filepath.Join(s.dir, name)) // an interrupted save
			}
			continue
		}
		if term, index, ok := parseSnapName(name); ok {
			out = append(out, snapFile{term: term, index: index, path: filepath.Join(s.dir, name)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].index != out[j].index {
			return out[i].index > out[j].index
		}
		return out[i].term > out[j].term
	})
	return out, nil
}

// verify checks the snapshot file at path end to end without restoring it.
func (s *snapStore) verify(sf snapFile) (snapHeader, error) {
	f, err := os.Open(sf.path)
	if err != nil {
		return snapHeader{}, err
	}
	defer f.Close()
	h, err := readSnapshot(bufio.NewReaderSize(f, 1<<20), io.Discard)
	if err != nil {
		return h, err
	}
	if h.meta.Index != sf.index || h.meta.Term != sf.term {
		return h, fmt.Errorf("header says term %d index %d, file name says %d %d", h.meta.Term, h.meta.Index, sf.term, sf.index)
	}
	return h, nil
}

// body returns the body of the snapshot at (term, index), checked end to
// end, for a MsgSnap to a follower: bodies are read from disk when needed
// rather than kept in memory.
func (s *snapStore) body(term, index uint64) ([]byte, error) {
	sf := snapFile{term: term, index: index, path: filepath.Join(s.dir, snapName(term, index))}
	f, err := os.Open(sf.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var body bytes.Buffer
	h, err := readSnapshot(bufio.NewReaderSize(f, 1<<20), &body)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sf.path, err)
	}
	if h.meta.Index != index || h.meta.Term != term {
		return nil, fmt.Errorf("snapshot %s: header says term %d index %d", sf.path, h.meta.Term, h.meta.Index)
	}
	return body.Bytes(), nil
}

// loadNewest finds the newest snapshot that passes every check, skipping
// (and logging) bad ones, and streams its body into restore. The file is
// verified completely before restore sees a byte, so a bad snapshot never
// half-replaces the state machine. If keep is set the body is also returned
// (raft needs it to send the snapshot to followers). ok is false when there
// is no usable snapshot.
func (s *snapStore) loadNewest(restore func(io.Reader) error, keep bool) (meta snapMeta, body []byte, ok bool, err error) {
	files, err := s.list(true)
	if err != nil {
		return meta, nil, false, err
	}
	for _, sf := range files {
		h, err := s.verify(sf)
		if err != nil {
			s.log.Warn("snapshot: skipping bad snapshot", "file", sf.path, "err", err)
			continue
		}
		f, err := os.Open(sf.path)
		if err != nil {
			return meta, nil, false, err
		}
		r := io.Reader(io.NewSectionReader(f, int64(h.size), int64(h.bodyLen)))
		if keep {
			body, err = io.ReadAll(r)
			if err != nil {
				f.Close()
				return meta, nil, false, err
			}
			r = bytes.NewReader(body)
		}
		err = restore(bufio.NewReaderSize(r, 1<<20))
		f.Close()
		if err != nil {
			return meta, nil, false, fmt.Errorf("snapshot: restore %s: %w", sf.path, err)
		}
		s.log.Info("snapshot: restored", "file", sf.path, "index", h.meta.Index, "term", h.meta.Term)
		return h.meta, body, true, nil
	}
	return meta, nil, false, nil
}

// save writes a snapshot: header placeholder, body streamed from write
// (through a CRC), then the real header, fsync, rename, fsync dir. It
// returns the body too if keep is set.
func (s *snapStore) save(meta snapMeta, write func(io.Writer) error, keep bool) (body []byte, err error) {
	final := filepath.Join(s.dir, snapName(meta.Term, meta.Index))
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	hdr, err := encodeSnapHeader(meta, 0, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(hdr); err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(newWriteBehind(f, int64(len(hdr))), 1<<20)
	cw := &countingCRC{crc: crc32.New(crcTable)}
	var out io.Writer = io.MultiWriter(bw, cw)
	var kept *bytes.Buffer
	if keep {
		kept = &bytes.Buffer{}
		out = io.MultiWriter(out, kept)
	}
	if err := write(out); err != nil {
		return nil, fmt.Errorf("snapshot: state machine: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if hdr, err = encodeSnapHeader(meta, cw.n, cw.crc.Sum32()); err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, err
	}
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	if kept != nil {
		body = kept.Bytes()
	}
	return body, nil
}

// purge deletes all but the newest keep snapshots and returns the index of
// the oldest one kept, or 0 if fewer than keep exist (then the whole WAL is
// still needed as the fallback).
func (s *snapStore) purge(keep int) (oldestKept uint64, victims []string, err error) {
	files, err := s.list(false)
	if err != nil {
		return 0, nil, err
	}
	if len(files) < keep {
		return 0, nil, nil
	}
	for _, sf := range files[keep:] {
		victims = append(victims, sf.path)
	}
	return files[keep-1].index, victims, nil
}

type countingCRC struct {
	crc hash.Hash32
	n   uint64
}

func (c *countingCRC) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	return c.crc.Write(p)
}
