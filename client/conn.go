package client

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// maxFrame bounds the size of a reply frame the client accepts. It is far
// above jute.maxbuffer because a reply (a wide getChildren) may be larger
// than any request; the bound only protects against garbage.
const maxFrame = 64 << 20

// setWatchesMaxLength is ClientCnxn's SET_WATCHES_MAX_LENGTH: the total
// length of the paths in one SetWatches packet.
const setWatchesMaxLength = 128 * 1024

// maxPingInterval is ClientCnxn's MAX_SEND_PING_INTERVAL.
const maxPingInterval = 10 * time.Second

// request is one call in flight: what to send, where to decode the reply,
// and how to complete it.
type request struct {
	xid  int32 // 0: assigned by the writer; special xids are preset
	op   proto.OpCode
	body proto.Record // nil for header-only requests
	resp proto.Record // nil when the reply has no body to decode
	// onReply, if set, runs in the reader goroutine with the reply's error
	// code before the request completes, and before any later reply or
	// notification is read: watch registration happens here, so an event
	// never overtakes the registration of its watch.
	onReply func(code int32)

	done chan struct{}
	err  error
	zxid int64
}

func newRequest(op proto.OpCode, body, resp proto.Record) *request {
	return &request{op: op, body: body, resp: resp, done: make(chan struct{})}
}

func (r *request) complete(err error) {
	r.err = err
	close(r.done)
}

// conn is one TCP (or TLS) connection carrying the session. It has a
// reader and a writer goroutine; the client makes a new conn for every
// reconnect.
type conn struct {
	c    *Client
	nc   net.Conn
	addr string

	readTimeout  time.Duration
	pingInterval time.Duration

	out        chan *request
	dead       chan struct{}
	readerDone chan struct{}
	killOnce   sync.Once
	killErr    error // why the conn died, set before dead is closed

	pendMu  sync.Mutex
	pending []*request // sent, awaiting a reply, in xid order
	authQ   []*request // auth packets awaiting their xid -4 reply
	closed  bool       // no more requests may be added to pending
}

// kill closes the connection once, recording why. Requests waiting on it
// fail with err (see Client.do).
func (cn *conn) kill(err error) {
	cn.killOnce.Do(func() {
		cn.killErr = err
		close(cn.dead)
		cn.nc.Close()
	})
}

// lossErr is the error callers see for a request the conn could not
// finish.
func (cn *conn) lossErr() error {
	<-cn.dead
	return cn.killErr
}

// dial opens a connection to addr and performs the session handshake,
// then primes it (auth, setWatches) without starting its goroutines.
func (c *Client) dial(ctx context.Context, addr string) (*conn, *proto.ConnectResponse, error) {
	c.mu.Lock()
	timeout := c.negotiated
	if timeout == 0 {
		timeout = c.cfg.sessionTimeout
	}
	sessionID, passwd := c.sessionID, c.passwd
	c.mu.Unlock()

	connectTimeout := timeout / time.Duration(len(c.servers))
	if connectTimeout < 500*time.Millisecond {
		connectTimeout = 500 * time.Millisecond
	}
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	nc, err := c.cfg.dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if c.cfg.tls != nil {
		cfg := c.cfg.tls.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("tls handshake: %w", err)
		}
		nc = tc
	}
	deadline, _ := dctx.Deadline()
	nc.SetDeadline(deadline)

	if passwd == nil {
		passwd = make([]byte, 16)
	}
	req := proto.ConnectRequest{
		ProtocolVersion: 0,
		LastZxidSeen:    c.lastZxid.Load(),
		TimeOut:         int32(timeout.Milliseconds()),
		SessionId:       sessionID,
		Passwd:          passwd,
		ReadOnly:        c.cfg.readOnly,
	}
	if _, err := nc.Write(frame(nil, nil, &req)); err != nil {
		nc.Close()
		return nil, nil, err
	}
	body, err := readFrame(nc, nil)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	resp, err := decodeConnectResponse(body)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if resp.TimeOut <= 0 {
		nc.Close()
		return nil, nil, ErrSessionExpired
	}
	nc.SetDeadline(time.Time{})

	negotiated := time.Duration(resp.TimeOut) * time.Millisecond
	readTimeout := negotiated * 2 / 3
	ping := readTimeout / 2
	if ping > maxPingInterval {
		ping = maxPingInterval
	}
	cn := &conn{
		c: c, nc: nc, addr: addr,
		readTimeout: readTimeout, pingInterval: ping,
		out:        make(chan *request, 256),
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	return cn, &resp, nil
}

// decodeConnectResponse reads a ConnectResponse, accepting servers that
// leave out the trailing readOnly byte.
func decodeConnectResponse(b []byte) (proto.ConnectResponse, error) {
	var r proto.ConnectResponse
	d := proto.NewDecoder(b)
	r.ProtocolVersion = d.Int()
	r.TimeOut = d.Int()
	r.SessionId = d.Long()
	r.Passwd = d.Buffer()
	if d.Err() == nil && d.Remaining() > 0 {
		r.ReadOnly = d.Bool()
	}
	if d.Err() != nil {
		return r, fmt.Errorf("handshake: bad ConnectResponse: %w", d.Err())
	}
	return r, nil
}

// prime sends the packets ZooKeeper's client sends first on a new
// connection: the credentials, then the watches to re-arm (SetWatches or
// SetWatches2, in batches of at most 128 KB of paths). They are queued like
// any request, so their replies are matched in order.
func (cn *conn) prime(auth []authInfo, sw []proto.Record) error {
	var buf []byte
	for _, a := range auth {
		r := newRequest(proto.OpAuth, &proto.AuthPacket{Type: 0, Scheme: a.scheme, Auth: a.auth}, nil)
		r.xid = proto.XidAuth
		cn.authQ = append(cn.authQ, r)
		buf = frame(buf, &proto.RequestHeader{Xid: proto.XidAuth, Type: int32(proto.OpAuth)}, r.body)
	}
	for _, body := range sw {
		op := proto.OpSetWatches
		if _, ok := body.(*proto.SetWatches2); ok {
			op = proto.OpSetWatches2
		}
		r := newRequest(op, body, nil)
		r.xid = proto.XidSetWatches
		cn.pending = append(cn.pending, r)
		buf = frame(buf, &proto.RequestHeader{Xid: proto.XidSetWatches, Type: int32(op)}, body)
	}
	if len(buf) == 0 {
		return nil
	}
	cn.nc.SetWriteDeadline(time.Now().Add(cn.readTimeout))
	_, err := cn.nc.Write(buf)
	return err
}

// frame appends one length-prefixed frame (header, then body) to buf.
func frame(buf []byte, hdr *proto.RequestHeader, body proto.Record) []byte {
	start := len(buf)
	e := proto.NewEncoder(append(buf, 0, 0, 0, 0))
	if hdr != nil {
		hdr.Encode(e)
	}
	if body != nil {
		body.Encode(e)
	}
	b := e.Bytes()
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// readFrame reads one length-prefixed frame, reusing buf when it is large
// enough.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(hdr[:]))
	if n < 0 || n > maxFrame {
		return nil, fmt.Errorf("zk: bad frame length %d", n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// writeLoop sends queued requests, batching whatever is ready into one
// write, and pings when nothing was sent for pingInterval.
func (cn *conn) writeLoop() {
	timer := time.NewTimer(cn.pingInterval)
	defer timer.Stop()
	var buf []byte
	for {
		var batch []*request
		select {
		case <-cn.dead:
			return
		case <-timer.C:
			buf = frame(buf[:0], &proto.RequestHeader{Xid: proto.XidPing, Type: int32(proto.OpPing)}, nil)
			if err := cn.write(buf); err != nil {
				cn.kill(ErrConnectionLoss)
				return
			}
			timer.Reset(cn.pingInterval)
			continue
		case r := <-cn.out:
			batch = append(batch, r)
		}
	more:
		for len(batch) < 128 {
			select {
			case r := <-cn.out:
				batch = append(batch, r)
			default:
				break more
			}
		}
		buf = buf[:0]
		cn.pendMu.Lock()
		if cn.closed {
			cn.pendMu.Unlock()
			return
		}
		for _, r := range batch {
			if r.xid == 0 {
				r.xid = cn.c.nextXid()
			}
			if r.xid == proto.XidAuth {
				cn.authQ = append(cn.authQ, r)
			} else {
				cn.pending = append(cn.pending, r)
			}
			buf = frame(buf, &proto.RequestHeader{Xid: r.xid, Type: int32(r.op)}, r.body)
		}
		cn.pendMu.Unlock()
		if err := cn.write(buf); err != nil {
			cn.kill(ErrConnectionLoss)
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(cn.pingInterval)
	}
}

func (cn *conn) write(b []byte) error {
	cn.nc.SetWriteDeadline(time.Now().Add(cn.readTimeout))
	_, err := cn.nc.Write(b)
	return err
}

// readLoop reads replies and notifications until the connection fails,
// then fails every request still waiting on it.
func (cn *conn) readLoop() {
	defer close(cn.readerDone)
	c := cn.c
	var buf []byte
	for {
		cn.nc.SetReadDeadline(time.Now().Add(cn.readTimeout))
		b, err := readFrame(cn.nc, buf)
		if err != nil {
			select {
			case <-cn.dead: // killed on purpose; keep its reason
			default:
				c.cfg.logger.Info("zk: connection lost", "server", cn.addr, "err", err)
			}
			cn.kill(ErrConnectionLoss)
			break
		}
		buf = b
		if err := cn.handle(b); err != nil {
			c.cfg.logger.Warn("zk: protocol error, dropping connection", "server", cn.addr, "err", err)
			cn.kill(ErrConnectionLoss)
			break
		}
	}
	cn.pendMu.Lock()
	cn.closed = true
	pending, authQ := cn.pending, cn.authQ
	cn.pending, cn.authQ = nil, nil
	cn.pendMu.Unlock()
	for _, r := range append(pending, authQ...) {
		r.complete(cn.killErr)
	}
}

// handle processes one frame from the server.
func (cn *conn) handle(b []byte) error {
	c := cn.c
	d := proto.NewDecoder(b)
	var h proto.ReplyHeader
	h.Decode(d)
	if d.Err() != nil {
		return d.Err()
	}
	switch h.Xid {
	case proto.XidPing:
		return nil
	case proto.XidNotification:
		var ev proto.WatcherEvent
		ev.Decode(d)
		if d.Err() != nil {
			return fmt.Errorf("bad notification: %w", d.Err())
		}
		c.watches.dispatch(ev, h.Zxid)
		return nil
	case proto.XidAuth:
		cn.pendMu.Lock()
		var r *request
		if len(cn.authQ) > 0 {
			r, cn.authQ = cn.authQ[0], cn.authQ[1:]
		}
		cn.pendMu.Unlock()
		if h.Err == int32(proto.ErrAuthFailed) {
			c.authFailed.Store(true)
			if r != nil {
				r.complete(ErrAuthFailed)
			}
			cn.kill(ErrAuthFailed)
			return nil
		}
		if r != nil {
			r.complete(codeErr(h.Err))
		}
		return nil
	}
	cn.pendMu.Lock()
	if len(cn.pending) == 0 {
		cn.pendMu.Unlock()
		return fmt.Errorf("reply with xid %d but nothing pending", h.Xid)
	}
	r := cn.pending[0]
	if r.xid != h.Xid {
		cn.pendMu.Unlock()
		return fmt.Errorf("xid out of order: got %d, want %d", h.Xid, r.xid)
	}
	cn.pending = cn.pending[1:]
	cn.pendMu.Unlock()
	if h.Zxid > 0 {
		c.lastZxid.Store(h.Zxid)
	}
	r.zxid = h.Zxid
	if h.Err == 0 && r.resp != nil {
		r.resp.Decode(d)
		if d.Err() != nil {
			r.complete(ErrMarshallingError)
			return fmt.Errorf("bad %v reply: %w", r.op, d.Err())
		}
	}
	if r.onReply != nil {
		r.onReply(h.Err)
	}
	r.complete(codeErr(h.Err))
	return nil
}

// do sends r on the current connection and waits for its reply. It fails
// fast with ErrConnectionLoss when the client is between connections, as
// ZooKeeper's client does, rather than queueing the request for a later
// connection. Cancelling ctx stops the wait, not the request: it may still
// be carried out by the server.
func (c *Client) do(ctx context.Context, r *request) error {
	c.mu.Lock()
	if c.termErr != nil {
		c.mu.Unlock()
		return c.termErr
	}
	cn := c.cn
	c.mu.Unlock()
	if cn == nil {
		return ErrConnectionLoss
	}
	select {
	case cn.out <- r:
	case <-cn.dead:
		return cn.lossErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return r.err
	case <-cn.dead:
		select {
		case <-r.done:
			return r.err
		default:
		}
		// The reader fails pending requests after it exits; wait for it so a
		// reply that was already read is not reported as lost.
		select {
		case <-cn.readerDone:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-r.done:
			return r.err
		default:
			return cn.lossErr()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errNoServer = errors.New("zk: no server reachable")
