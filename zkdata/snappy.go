package zkdata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/golang/snappy"
)

// snappyMagic opens a stream written by snappy-java's SnappyOutputStream,
// which ZooKeeper uses for snapshot.<zxid>.snappy files.
var snappyMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	// snappyHeaderLen is the magic plus two big-endian ints (stream
	// version and minimum compatible version).
	snappyHeaderLen = 16
	// maxSnappyChunk bounds one compressed chunk. snappy-java writes 32 KiB
	// blocks by default; anything near this limit is corruption.
	maxSnappyChunk = 1 << 28
)

// snappyReader decodes snappy-java's stream framing: a 16-byte header
// (magic "\x82SNAPPY\x00", int version, int compatible version), then
// chunks of {int compressed length; snappy block}, all big-endian. A header
// may appear again between chunks (concatenated streams), as
// SnappyInputStream allows. A stream without the magic is one raw snappy
// block, SnappyInputStream's fallback.
type snappyReader struct {
	r   io.Reader
	off int64 // compressed bytes consumed, for error messages
	buf []byte
	pos int
	raw bool
	eof bool
	err error
}

// NewSnappyReader returns a reader of snappy-java's stream format
// (SnappyInputStream). Errors name the compressed offset.
func NewSnappyReader(r io.Reader) io.Reader { return &snappyReader{r: r} }

func (s *snappyReader) fail(format string, args ...any) error {
	s.err = fmt.Errorf("snappy: compressed offset %d: %s", s.off, fmt.Sprintf(format, args...))
	return s.err
}

func (s *snappyReader) readFull(b []byte) (int, error) {
	n, err := io.ReadFull(s.r, b)
	s.off += int64(n)
	return n, err
}

func (s *snappyReader) Read(p []byte) (int, error) {
	for s.pos >= len(s.buf) {
		if s.err != nil {
			return 0, s.err
		}
		if s.eof {
			return 0, io.EOF
		}
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.pos:])
	s.pos += n
	return n, nil
}

// fill decodes the next chunk into buf.
func (s *snappyReader) fill() error {
	s.buf, s.pos = s.buf[:0], 0
	if s.off == 0 {
		var hdr [snappyHeaderLen]byte
		n, err := s.readFull(hdr[:len(snappyMagic)])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return s.fail("%v", err)
		}
		if n < len(snappyMagic) || !bytes.Equal(hdr[:len(snappyMagic)], snappyMagic) {
			return s.fillRaw(hdr[:n])
		}
		if _, err := s.readFull(hdr[len(snappyMagic):]); err != nil {
			return s.fail("truncated stream header")
		}
		return nil
	}
	var lenBuf [4]byte
	n, err := s.readFull(lenBuf[:])
	if n == 0 && errors.Is(err, io.EOF) {
		s.eof = true
		return nil
	}
	if err != nil {
		return s.fail("truncated chunk length")
	}
	if bytes.Equal(lenBuf[:], snappyMagic[:4]) {
		// A concatenated stream: skip the rest of its header.
		var rest [snappyHeaderLen - 4]byte
		if _, err := s.readFull(rest[:]); err != nil || !bytes.Equal(rest[:4], snappyMagic[4:]) {
			return s.fail("bad header of concatenated stream")
		}
		return nil
	}
	size := int32(binary.BigEndian.Uint32(lenBuf[:]))
	if size < 0 || size > maxSnappyChunk {
		return s.fail("bad chunk length %d", size)
	}
	var chunk bytes.Buffer
	n64, err := io.CopyN(&chunk, s.r, int64(size))
	s.off += n64
	if err != nil {
		return s.fail("truncated chunk of %d bytes", size)
	}
	return s.decode(chunk.Bytes())
}

func (s *snappyReader) decode(chunk []byte) error {
	dlen, err := snappy.DecodedLen(chunk)
	if err != nil {
		return s.fail("%v", err)
	}
	// A snappy block expands at most ~22 times (a 3-byte copy op emits
	// 64 bytes); a larger claim is corruption, refused before allocating.
	if dlen > maxSnappyChunk || dlen > 32*len(chunk)+64 {
		return s.fail("chunk decodes to %d bytes", dlen)
	}
	out, err := snappy.Decode(make([]byte, dlen), chunk)
	if err != nil {
		return s.fail("%v", err)
	}
	s.buf = out
	return nil
}

// fillRaw handles a stream without the snappy-java header: the whole
// input is a single raw snappy block.
func (s *snappyReader) fillRaw(head []byte) error {
	rest, err := io.ReadAll(io.LimitReader(s.r, maxSnappyChunk+1))
	s.off += int64(len(rest))
	if err != nil {
		return s.fail("%v", err)
	}
	if len(rest) > maxSnappyChunk {
		return s.fail("raw snappy stream too large")
	}
	s.raw, s.eof = true, true
	return s.decode(append(append([]byte(nil), head...), rest...))
}
