package statemachine

import (
	"errors"
	"fmt"

	"github.com/paddockhq/paddock/proto"
)

// Entry is one replicated log entry: a client write (or an internal
// session/GC operation) with everything apply needs to be deterministic.
// The proposing server stamps Time and Auth; apply never reads a clock or
// a connection.
type Entry struct {
	// Op is a write opcode (create, create2, createContainer, createTTL,
	// delete, setData, setACL, check, multi, reconfig), OpSync (a no-op
	// barrier), OpCreateSession, OpCloseSession (client close or expiry),
	// or OpDeleteContainer (container/TTL garbage collection).
	Op proto.OpCode
	// Session is the session the request belongs to (0 for GC).
	Session int64
	// Cxid is the client's xid, kept for logs and exports.
	Cxid int32
	// Time is the proposer's wall clock in milliseconds; it becomes
	// ctime/mtime and is the "now" of TTL checks.
	Time int64
	// Auth is the connection's authenticated ids at the time of the
	// request, e.g. ip:127.0.0.1, digest:bob:<hash>, super:.
	Auth []proto.Id
	// Origin and Seq identify the request on the server that proposed it,
	// so that server can hand the result back to the waiting connection.
	Origin uint64
	Seq    uint64
	// Body is the jute request record (CreateRequest, MultiRequest, ...),
	// a SessionBody for OpCreateSession, the path for OpDeleteContainer.
	Body []byte
}

// entryVersion is the first byte of every encoded entry, so the format can
// change without ambiguity.
const entryVersion = 1

// Encode returns the entry in its log form.
func (e *Entry) Encode() []byte {
	enc := proto.NewEncoder(make([]byte, 0, 64+len(e.Body)))
	enc.Raw([]byte{entryVersion})
	enc.Int(int32(e.Op))
	enc.Long(e.Session)
	enc.Int(e.Cxid)
	enc.Long(e.Time)
	enc.Int(int32(len(e.Auth)))
	for i := range e.Auth {
		e.Auth[i].Encode(enc)
	}
	enc.Long(int64(e.Origin))
	enc.Long(int64(e.Seq))
	enc.Buffer(e.Body)
	return enc.Bytes()
}

// DecodeEntry parses an entry written by Encode.
func DecodeEntry(b []byte) (*Entry, error) {
	if len(b) == 0 || b[0] != entryVersion {
		return nil, errors.New("statemachine: unknown entry version")
	}
	d := proto.NewDecoder(b[1:])
	e := &Entry{}
	e.Op = proto.OpCode(d.Int())
	e.Session = d.Long()
	e.Cxid = d.Int()
	e.Time = d.Long()
	if n := d.VectorLen(); n > 0 {
		e.Auth = make([]proto.Id, n)
		for i := range e.Auth {
			e.Auth[i].Decode(d)
		}
	}
	e.Origin = uint64(d.Long())
	e.Seq = uint64(d.Long())
	e.Body = d.Buffer()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("statemachine: bad entry: %w", err)
	}
	return e, nil
}

// SessionBody is the body of an OpCreateSession entry. The password is
// chosen by the proposing server and replicated, so any member can check a
// reconnecting client's password.
type SessionBody struct {
	Timeout int32
	Passwd  []byte
}

// Encode appends the record.
func (s *SessionBody) Encode(e *proto.Encoder) {
	e.Int(s.Timeout)
	e.Buffer(s.Passwd)
}

// Decode reads the record.
func (s *SessionBody) Decode(d *proto.Decoder) {
	s.Timeout = d.Int()
	s.Passwd = d.Buffer()
}
