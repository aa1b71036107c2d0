package zkdata

import (
	"bufio"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"io"
	"unicode/utf8"
)

// errEOF marks a read that found the stream cleanly at its end (no byte of
// the value read); a value cut in the middle is errTruncated.
var (
	errEOF       = errors.New("end of stream")
	errTruncated = errors.New("unexpected end of data")
)

// maxJuteBuffer bounds one jute buffer or string in a snapshot. ZooKeeper's
// own limit is jute.maxbuffer (1 MiB by default, often raised); 256 MiB
// only keeps a corrupt length from exhausting memory.
const maxJuteBuffer = 256 << 20

// streamReader reads jute values from a stream while keeping ZooKeeper's
// running Adler32 of every byte read and the offset.
type streamReader struct {
	r   *bufio.Reader
	sum hash.Hash32
	off int64
	err error
	tmp [8]byte
}

func newStreamReader(r io.Reader) *streamReader {
	return &streamReader{r: bufio.NewReaderSize(r, 1<<16), sum: adler32.New()}
}

// full reads len(b) bytes. At a clean end of stream (no byte read) the
// error is errEOF, otherwise errTruncated.
func (s *streamReader) full(b []byte) error {
	if s.err != nil {
		return s.err
	}
	n, err := io.ReadFull(s.r, b)
	s.sum.Write(b[:n])
	s.off += int64(n)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) && n == 0:
		s.err = errEOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		s.err = errTruncated
	default:
		s.err = err
	}
	return s.err
}

func (s *streamReader) int() int32 {
	if s.full(s.tmp[:4]) != nil {
		return 0
	}
	return int32(uint32(s.tmp[0])<<24 | uint32(s.tmp[1])<<16 | uint32(s.tmp[2])<<8 | uint32(s.tmp[3]))
}

func (s *streamReader) long() int64 {
	if s.full(s.tmp[:8]) != nil {
		return 0
	}
	var v uint64
	for _, b := range s.tmp[:8] {
		v = v<<8 | uint64(b)
	}
	return int64(v)
}

// buffer reads a jute buffer; length -1 is null (nil).
func (s *streamReader) buffer() []byte {
	n := s.int()
	if s.err != nil || n == -1 {
		return nil
	}
	if n < -1 || n > maxJuteBuffer {
		s.err = fmt.Errorf("bad buffer length %d", n)
		return nil
	}
	b := s.bytes(int(n))
	if s.err != nil {
		return nil
	}
	return b
}

// bytes reads n bytes, growing the result as data arrives so that a
// corrupt length costs no more memory than the stream really holds.
func (s *streamReader) bytes(n int) []byte {
	const step = 1 << 20
	b := make([]byte, 0, min(n, step))
	for len(b) < n && s.err == nil {
		k := min(n-len(b), step)
		b = append(b, make([]byte, k)...)
		if s.full(b[len(b)-k:]) == errEOF {
			s.err = errTruncated
		}
	}
	return b
}

// string reads a jute ustring; null reads as "" with ok false.
func (s *streamReader) string() (string, bool) {
	n := s.int()
	if s.err != nil || n == -1 {
		return "", false
	}
	b := s.bufferOf(n)
	if s.err != nil {
		return "", false
	}
	if !utf8.Valid(b) {
		s.err = errors.New("string is not valid UTF-8")
		return "", false
	}
	return string(b), true
}

func (s *streamReader) bufferOf(n int32) []byte {
	if n < 0 || n > maxJuteBuffer {
		s.err = fmt.Errorf("bad string length %d", n)
		return nil
	}
	return s.bytes(int(n))
}

// mid turns a clean end of stream met after the first field of a value
// into a truncation: only the start of a value may end the stream.
func (s *streamReader) mid() {
	if s.err == errEOF {
		s.err = errTruncated
	}
}
