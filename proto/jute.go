// Package proto is the ZooKeeper client wire format: jute binary encoding,
// the records of zookeeper.jute, opcodes, error codes, watch event types,
// create modes and ACL constants.
//
// It knows nothing of sockets, goroutines, files or clocks: it turns bytes
// into records and records into bytes, and reports malformed input as an
// error instead of panicking, because every byte it decodes came from an
// untrusted peer.
package proto

//go:generate go run ../internal/jutegen -in zookeeper.jute -out records_gen.go

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Record is a jute record: a fixed sequence of fields with no tags or padding.
type Record interface {
	Encode(e *Encoder)
	Decode(d *Decoder)
}

// Encoder appends jute-encoded values to a growing byte slice.
// The zero value is ready to use.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an Encoder that appends to buf (which may be nil),
// letting callers reuse a buffer or reserve room for a length prefix.
func NewEncoder(buf []byte) *Encoder { return &Encoder{buf: buf} }

// Bytes returns the encoded bytes.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of bytes encoded so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Reset empties the encoder, keeping its buffer.
func (e *Encoder) Reset() { e.buf = e.buf[:0] }

// Int appends a 4-byte big-endian integer.
func (e *Encoder) Int(v int32) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)) }

// Long appends an 8-byte big-endian integer.
func (e *Encoder) Long(v int64) { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }

// Bool appends one byte, 1 for true.
func (e *Encoder) Bool(v bool) {
	if v {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// Buffer appends a length-prefixed byte string; nil is written as length -1
// (Java null), an empty non-nil slice as length 0, as ZooKeeper does.
func (e *Encoder) Buffer(b []byte) {
	if b == nil {
		e.Int(-1)
		return
	}
	e.Int(int32(len(b)))
	e.buf = append(e.buf, b...)
}

// String appends a length-prefixed UTF-8 string (jute ustring).
func (e *Encoder) String(s string) {
	e.Int(int32(len(s)))
	e.buf = append(e.buf, s...)
}

// Strings appends a vector of ustrings. A nil slice is written as an empty
// vector: ZooKeeper servers never send null vectors in replies.
func (e *Encoder) Strings(v []string) {
	e.Int(int32(len(v)))
	for _, s := range v {
		e.String(s)
	}
}

// Record appends a record.
func (e *Encoder) Record(r Record) { r.Encode(e) }

// Raw appends bytes as they are.
func (e *Encoder) Raw(b []byte) { e.buf = append(e.buf, b...) }

// ErrShort reports input that ends in the middle of a value.
var ErrShort = errors.New("jute: record truncated")

// Decoder reads jute values from a byte slice. The first error sticks: later
// reads return zero values, so a record can be decoded field by field and the
// error checked once at the end.
type Decoder struct {
	buf []byte
	off int
	err error
}

// NewDecoder returns a Decoder reading buf.
func NewDecoder(buf []byte) *Decoder { return &Decoder{buf: buf} }

// Err returns the first error met, if any.
func (d *Decoder) Err() error { return d.err }

// Remaining returns the number of bytes not yet read.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Offset returns the number of bytes read so far.
func (d *Decoder) Offset() int { return d.off }

// Rest returns the unread bytes and consumes them.
func (d *Decoder) Rest() []byte {
	b := d.buf[d.off:]
	d.off = len(d.buf)
	return b
}

// Fail records err unless an earlier error is already recorded.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || d.Remaining() < n {
		d.err = ErrShort
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

// Int reads a 4-byte big-endian integer.
func (d *Decoder) Int() int32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

// Long reads an 8-byte big-endian integer.
func (d *Decoder) Long() int64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// Bool reads one byte; any non-zero value is true, as in Java's readBoolean.
func (d *Decoder) Bool() bool {
	b := d.take(1)
	return b != nil && b[0] != 0
}

// Buffer reads a length-prefixed byte string; length -1 gives nil. The
// result is a copy, so it stays valid after the frame buffer is reused.
func (d *Decoder) Buffer() []byte {
	n := d.Int()
	if d.err != nil || n == -1 {
		return nil
	}
	if n < -1 {
		d.Fail(fmt.Errorf("jute: negative buffer length %d", n))
		return nil
	}
	b := d.take(int(n))
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// String reads a length-prefixed string; length -1 (null) gives "".
// Invalid UTF-8 is an error, as Java's decoder would mangle it.
func (d *Decoder) String() string {
	n := d.Int()
	if d.err != nil || n == -1 {
		return ""
	}
	if n < -1 {
		d.Fail(fmt.Errorf("jute: negative string length %d", n))
		return ""
	}
	b := d.take(int(n))
	if b == nil {
		return ""
	}
	if !utf8.Valid(b) {
		d.Fail(errors.New("jute: string is not valid UTF-8"))
		return ""
	}
	return string(b)
}

// VectorLen reads a vector's element count; -1 means null. A count that
// could not possibly fit in the remaining bytes (every element takes at least
// one byte) is an error, so a hostile count never makes us allocate.
func (d *Decoder) VectorLen() int {
	n := d.Int()
	if d.err != nil {
		return -1
	}
	if n < -1 || int(n) > d.Remaining() {
		d.Fail(fmt.Errorf("jute: bad vector length %d", n))
		return -1
	}
	return int(n)
}

// Strings reads a vector of ustrings; null gives nil.
func (d *Decoder) Strings() []string {
	n := d.VectorLen()
	if n < 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.String()
	}
	if d.err != nil {
		return nil
	}
	return v
}

// Marshal encodes r into a new byte slice.
func Marshal(r Record) []byte {
	var e Encoder
	r.Encode(&e)
	return e.buf
}

// Unmarshal decodes r from b. Trailing bytes are allowed, as in ZooKeeper,
// which reads records from a stream and ignores what follows.
func Unmarshal(b []byte, r Record) error {
	d := NewDecoder(b)
	r.Decode(d)
	return d.err
}
