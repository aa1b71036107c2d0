package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// testLogger is quiet unless PADDOCK_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("PADDOCK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs a server on a loopback port with a short tick.
func startServer(t testing.TB, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		ListenAddr:             "127.0.0.1:0",
		DataDir:                t.TempDir(),
		TickTime:               100 * time.Millisecond,
		ExtendedTypes:          true,
		FourLetterWhitelist:    []string{"*"},
		ContainerCheckInterval: 100 * time.Millisecond,
		Logger:                 testLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(context.Background()); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return s
}

// rawClient speaks the wire protocol directly, for checks a client
// library hides: exact bytes, reply headers, ops go-zookeeper lacks.
type rawClient struct {
	t       testing.TB
	nc      net.Conn
	r       *bufio.Reader
	xid     int32
	sid     int64
	passwd  []byte
	timeout int32
	events  []proto.WatcherEvent
	lastHdr proto.ReplyHeader
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return nc
}

func writeFrame(t testing.TB, w io.Writer, b []byte) {
	t.Helper()
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	if _, err := w.Write(append(buf, b...)); err != nil {
		t.Fatal(err)
	}
}

func readFrame(r io.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(l[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

// newRaw connects and opens a new session.
func newRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c := &rawClient{t: t, nc: dial(t, addr)}
	c.r = bufio.NewReader(c.nc)
	resp := c.connect(proto.ConnectRequest{TimeOut: 30000})
	if resp.TimeOut <= 0 || resp.SessionId == 0 {
		t.Fatalf("connect: %+v", resp)
	}
	return c
}

// connect sends a ConnectRequest and returns the response.
func (c *rawClient) connect(req proto.ConnectRequest) proto.ConnectResponse {
	c.t.Helper()
	writeFrame(c.t, c.nc, proto.Marshal(&req))
	b, err := readFrame(c.r)
	if err != nil {
		c.t.Fatalf("connect response: %v", err)
	}
	var resp proto.ConnectResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		c.t.Fatal(err)
	}
	c.sid, c.passwd, c.timeout = resp.SessionId, resp.Passwd, resp.TimeOut
	return resp
}

// send writes a request without waiting; it returns the xid used.
func (c *rawClient) send(op proto.OpCode, req proto.Record) int32 {
	c.t.Helper()
	c.xid++
	xid := c.xid
	switch op {
	case proto.OpPing:
		xid = proto.XidPing
	case proto.OpAuth:
		xid = proto.XidAuth
	case proto.OpSetWatches, proto.OpSetWatches2:
		xid = proto.XidSetWatches
	}
	e := proto.NewEncoder(nil)
	h := proto.RequestHeader{Xid: xid, Type: int32(op)}
	h.Encode(e)
	if req != nil {
		req.Encode(e)
	}
	writeFrame(c.t, c.nc, e.Bytes())
	return xid
}

// recv reads the reply to xid, collecting notifications that come first
// in c.events. It fails the test if another reply comes first.
func (c *rawClient) recv(xid int32, resp proto.Record) proto.ErrCode {
	c.t.Helper()
	for {
		b, err := readFrame(c.r)
		if err != nil {
			c.t.Fatalf("read reply to %d: %v", xid, err)
		}
		d := proto.NewDecoder(b)
		var h proto.ReplyHeader
		h.Decode(d)
		if h.Xid == proto.XidNotification {
			var ev proto.WatcherEvent
			ev.Decode(d)
			c.events = append(c.events, ev)
			continue
		}
		if h.Xid != xid {
			c.t.Fatalf("reply xid %d, want %d", h.Xid, xid)
		}
		c.lastHdr = h
		if h.Err == 0 && resp != nil {
			resp.Decode(d)
			if d.Err() != nil {
				c.t.Fatalf("decode %T: %v", resp, d.Err())
			}
		}
		if h.Err != 0 && d.Remaining() != 0 {
			c.t.Fatalf("error reply %d carries a %d-byte body", h.Err, d.Remaining())
		}
		return proto.ErrCode(h.Err)
	}
}

// call sends a request and waits for its reply.
func (c *rawClient) call(op proto.OpCode, req, resp proto.Record) proto.ErrCode {
	c.t.Helper()
	return c.recv(c.send(op, req), resp)
}

// takeEvents returns and clears the collected notifications.
func (c *rawClient) takeEvents() []proto.WatcherEvent {
	ev := c.events
	c.events = nil
	return ev
}

// waitEvent reads frames until a notification arrives.
func (c *rawClient) waitEvent() proto.WatcherEvent {
	c.t.Helper()
	if len(c.events) > 0 {
		ev := c.events[0]
		c.events = c.events[1:]
		return ev
	}
	b, err := readFrame(c.r)
	if err != nil {
		c.t.Fatalf("wait event: %v", err)
	}
	d := proto.NewDecoder(b)
	var h proto.ReplyHeader
	h.Decode(d)
	if h.Xid != proto.XidNotification {
		c.t.Fatalf("got reply xid %d while waiting for an event", h.Xid)
	}
	var ev proto.WatcherEvent
	ev.Decode(d)
	return ev
}

// expectClosed asserts the server closes the connection (EOF) without
// sending anything more than skip frames.
func expectClosed(t testing.TB, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(nc)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection not closed by server (got %d bytes)", len(b))
		}
	}
	if len(b) != 0 {
		t.Fatalf("expected close, got %d more bytes: %q", len(b), b)
	}
}

var openACL = proto.OpenACLUnsafe

func (c *rawClient) create(path string, data []byte, flags int32) (string, proto.ErrCode) {
	c.t.Helper()
	var resp proto.CreateResponse
	err := c.call(proto.OpCreate, &proto.CreateRequest{Path: path, Data: data, Acl: openACL, Flags: flags}, &resp)
	return resp.Path, err
}

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// netTCPAddr builds a *net.TCPAddr for peerIP tests.
type netTCPAddr struct{ IP net.IP }

func (a *netTCPAddr) tcp() net.Addr { return &net.TCPAddr{IP: a.IP} }
