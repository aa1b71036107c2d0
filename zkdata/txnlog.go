package zkdata

import (
	"bufio"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"os"
	"path/filepath"

	"github.com/paddockhq/paddock/proto"
)

// maxTxnLen bounds one logged txn. ZooKeeper refuses anything above
// jute.maxbuffer plus 1 KiB (1 MiB by default); operators raise that limit,
// so only lengths that cannot be real are refused here.
const maxTxnLen = 256 << 20

// Txn is one record of a transaction log.
type Txn struct {
	// Offset is where the record starts in its file.
	Offset int64
	Header proto.TxnHeader
	// Record is the type's record (*proto.CreateTxn, *proto.DeleteTxn, ...;
	// for multi, *proto.MultiTxn), nil for a pre-3.6 closeSession, which
	// carries no body.
	Record proto.Record
	// Sub holds a multi's decoded sub-txns, in order.
	Sub []SubTxn
	// Digest is the 3.6+ tree digest after the txn, nil when absent.
	Digest *proto.TxnDigest
}

// SubTxn is one op of a multi txn.
type SubTxn struct {
	Type   proto.OpCode
	Record proto.Record
}

// Type returns the txn's opcode.
func (t *Txn) Type() proto.OpCode { return proto.OpCode(t.Header.Type) }

// ParseLogName returns the zxid of a log file name ("log.<hex>"): the zxid
// of the first txn it holds.
func ParseLogName(name string) (zxid int64, ok bool) {
	z, _, ok := parseDataName(name, "log")
	return z, ok
}

// LogReader reads one transaction log file, record by record.
type LogReader struct {
	name   string
	r      *bufio.Reader
	size   int64 // file size, or -1 when unknown
	off    int64
	header proto.FileHeader
	done   bool
	closer io.Closer
	// AllowTornTail accepts a record cut short at the end of the file, or
	// followed only by zeros, as the end of the log (ZooKeeper's own
	// reading); by default it is an error.
	AllowTornTail bool
	// Torn reports whether the log ended in such a record (only with
	// AllowTornTail).
	Torn bool
}

// OpenLog opens a transaction log file and checks its header.
func OpenLog(path string) (*LogReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("zkdata: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("zkdata: %w", err)
	}
	lr, err := NewLogReader(f, path, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	lr.closer = f
	return lr, nil
}

// NewLogReader reads a transaction log from r; name is used in errors and
// size (or -1) bounds record lengths.
func NewLogReader(r io.Reader, name string, size int64) (*LogReader, error) {
	lr := &LogReader{name: name, r: bufio.NewReaderSize(r, 1<<16), size: size}
	var b [16]byte
	n, err := io.ReadFull(lr.r, b[:])
	if err != nil {
		return nil, lr.errorf(0, "file header: truncated (%d of 16 bytes)", n)
	}
	lr.off = 16
	d := proto.NewDecoder(b[:])
	lr.header.Decode(d)
	if lr.header.Magic != LogMagic {
		return nil, lr.errorf(0, "bad magic 0x%08x, want 0x%08x (ZKLG)", uint32(lr.header.Magic), uint32(LogMagic))
	}
	return lr, nil
}

// Header returns the file header.
func (lr *LogReader) Header() proto.FileHeader { return lr.header }

// Close closes the file.
func (lr *LogReader) Close() error {
	if lr.closer != nil {
		return lr.closer.Close()
	}
	return nil
}

// LogError is a problem at an offset of a transaction log.
type LogError struct {
	File   string
	Offset int64
	Err    error
}

func (e *LogError) Error() string {
	return fmt.Sprintf("zkdata: txn log %s: offset %d: %v", e.File, e.Offset, e.Err)
}

func (e *LogError) Unwrap() error { return e.Err }

func (lr *LogReader) errorf(off int64, format string, args ...any) error {
	return &LogError{File: lr.name, Offset: off, Err: fmt.Errorf(format, args...)}
}

// errTorn is the cause of a LogError for a record cut short.
var errTorn = errors.New("torn record")

// Next returns the next txn, or io.EOF at the end of the log: the end of
// the file, or the zero-filled preallocated area (a record length of 0).
func (lr *LogReader) Next() (*Txn, error) {
	if lr.done {
		return nil, io.EOF
	}
	start := lr.off
	var hdr [12]byte
	n, err := io.ReadFull(lr.r, hdr[:])
	lr.off += int64(n)
	if n == 0 && errors.Is(err, io.EOF) {
		lr.done = true
		return nil, io.EOF
	}
	if err != nil {
		if n >= 8 && allZero(hdr[8:n]) || allZero(hdr[:n]) {
			// Zeros up to the end of the file: the padding, cut short.
			lr.done = true
			return nil, io.EOF
		}
		return nil, lr.torn(start, true, "record header cut short after %d bytes", n)
	}
	d := proto.NewDecoder(hdr[:])
	crc, length := d.Long(), d.Int()
	if length == 0 {
		// The preallocated zero area (ZooKeeper reads a 0 length as EOF).
		lr.done = true
		return nil, io.EOF
	}
	if length < 0 || length > maxTxnLen {
		return nil, lr.errorf(start, "bad record length %d", length)
	}
	if lr.size >= 0 && start+12+int64(length)+1 > lr.size {
		return nil, lr.torn(start, true, "record of %d bytes runs past the end of the file (%d bytes)", length, lr.size)
	}
	body := make([]byte, int(length)+1)
	n, err = io.ReadFull(lr.r, body)
	lr.off += int64(n)
	if err != nil {
		return nil, lr.torn(start, true, "record of %d bytes cut short", length)
	}
	if body[length] != 'B' {
		if allZero(body) {
			return nil, lr.torn(start, false, "record of %d bytes is zeros (an unfinished write)", length)
		}
		return nil, lr.torn(start, false, "record does not end with 0x42 (found 0x%02x)", body[length])
	}
	body = body[:length]
	if sum := adler32.Checksum(body); int64(sum) != crc {
		return nil, lr.errorf(start, "checksum mismatch: stored adler32 0x%x, computed 0x%x", crc, sum)
	}
	t, err := DecodeTxn(body)
	if err != nil {
		return nil, lr.errorf(start, "%v", err)
	}
	t.Offset = start
	return t, nil
}

// torn reports a record cut short: an error, unless AllowTornTail is set
// and the record is the last thing in the file (cut by the end of the
// file, or followed only by zeros), which is how ZooKeeper itself reads a
// write a crash interrupted.
func (lr *LogReader) torn(off int64, cutByEOF bool, format string, args ...any) (err error) {
	if lr.AllowTornTail && (cutByEOF || lr.restIsZero()) {
		lr.done, lr.Torn = true, true
		return io.EOF
	}
	return &LogError{File: lr.name, Offset: off, Err: fmt.Errorf("%w: %s", errTorn, fmt.Sprintf(format, args...))}
}

func (lr *LogReader) restIsZero() bool {
	buf := make([]byte, 1<<16)
	for {
		n, err := lr.r.Read(buf)
		if !allZero(buf[:n]) {
			return false
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// DecodeTxn decodes one logged txn (SerializeUtils.deserializeTxn): the
// header, the type's record, and an optional digest. A create whose record
// is too short is a pre-3.3 CreateTxnV0 (parentCVersion -1), a closeSession
// without a body is the pre-3.6 form. Bytes after the digest are ignored,
// as ZooKeeper ignores them.
func DecodeTxn(b []byte) (*Txn, error) {
	d := proto.NewDecoder(b)
	t := &Txn{}
	t.Header.Decode(d)
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("txn header: %w", err)
	}
	bodyStart := d.Offset()
	op := t.Type()
	switch op {
	case proto.OpCreateSession:
		t.Record = &proto.CreateSessionTxn{}
	case proto.OpCloseSession:
		t.Record = &proto.CloseSessionTxn{}
	case proto.OpCreate, proto.OpCreate2:
		t.Record = &proto.CreateTxn{}
	case proto.OpCreateTTL:
		t.Record = &proto.CreateTTLTxn{}
	case proto.OpCreateContainer:
		t.Record = &proto.CreateContainerTxn{}
	case proto.OpDelete, proto.OpDeleteContainer:
		t.Record = &proto.DeleteTxn{}
	case proto.OpSetData, proto.OpReconfig:
		t.Record = &proto.SetDataTxn{}
	case proto.OpSetACL:
		t.Record = &proto.SetACLTxn{}
	case proto.OpError:
		t.Record = &proto.ErrorTxn{}
	case proto.OpMulti:
		t.Record = &proto.MultiTxn{}
	case proto.OpCheck:
		// A check outside a multi is logged by ZooKeeper 3.8 but refused
		// by its own reader; it changes nothing, so it is read and skipped.
		t.Record = &proto.CheckVersionTxn{}
	default:
		return nil, fmt.Errorf("zxid 0x%x: unsupported txn type %d", t.Header.Zxid, t.Header.Type)
	}
	t.Record.Decode(d)
	if err := d.Err(); err != nil {
		switch {
		case errors.Is(err, proto.ErrShort) && op == proto.OpCreate:
			d = proto.NewDecoder(b[bodyStart:])
			var v0 proto.CreateTxnV0
			v0.Decode(d)
			if d.Err() != nil {
				return nil, fmt.Errorf("zxid 0x%x: create record: %w", t.Header.Zxid, err)
			}
			t.Record = &proto.CreateTxn{Path: v0.Path, Data: v0.Data, Acl: v0.Acl, Ephemeral: v0.Ephemeral, ParentCVersion: -1}
		case errors.Is(err, proto.ErrShort) && op == proto.OpCloseSession:
			t.Record = nil
			d = proto.NewDecoder(nil)
		default:
			return nil, fmt.Errorf("zxid 0x%x: %s record: %w", t.Header.Zxid, op, err)
		}
	}
	if d.Remaining() >= 12 {
		t.Digest = &proto.TxnDigest{}
		t.Digest.Decode(d)
	}
	if m, ok := t.Record.(*proto.MultiTxn); ok {
		for i, st := range m.Txns {
			sub, err := decodeSubTxn(st)
			if err != nil {
				return nil, fmt.Errorf("zxid 0x%x: multi op %d: %w", t.Header.Zxid, i, err)
			}
			t.Sub = append(t.Sub, sub)
		}
	}
	return t, nil
}

// decodeSubTxn decodes a multi's sub-record from its own buffer. Only the
// record's fields are read: ZooKeeper has written sub-records longer than
// their contents (an ErrorTxn of 550 bytes), and reads them the same way.
func decodeSubTxn(st proto.Txn) (SubTxn, error) {
	op := proto.OpCode(st.Type)
	var r proto.Record
	switch op {
	case proto.OpCreate, proto.OpCreate2:
		r = &proto.CreateTxn{}
	case proto.OpCreateTTL:
		r = &proto.CreateTTLTxn{}
	case proto.OpCreateContainer:
		r = &proto.CreateContainerTxn{}
	case proto.OpDelete, proto.OpDeleteContainer:
		r = &proto.DeleteTxn{}
	case proto.OpSetData:
		r = &proto.SetDataTxn{}
	case proto.OpError:
		r = &proto.ErrorTxn{}
	case proto.OpCheck:
		r = &proto.CheckVersionTxn{}
	default:
		return SubTxn{}, fmt.Errorf("invalid op type %d in a multi", st.Type)
	}
	d := proto.NewDecoder(st.Data)
	r.Decode(d)
	if err := d.Err(); err != nil {
		return SubTxn{}, fmt.Errorf("%s record: %w", op, err)
	}
	return SubTxn{Type: op, Record: r}, nil
}

// LogFile is a transaction log in a directory.
type LogFile struct {
	Path string
	// Zxid is the zxid of its first txn (from the name).
	Zxid int64
}

// listLogs returns the log files of dir sorted by zxid.
func listLogs(dir string) ([]LogFile, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []LogFile
	for _, de := range des {
		if z, ok := ParseLogName(de.Name()); ok && de.Type().IsRegular() {
			out = append(out, LogFile{Path: filepath.Join(dir, de.Name()), Zxid: z})
		}
	}
	sortLogs(out)
	return out, nil
}
