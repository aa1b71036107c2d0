package server

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/internal/digestmd5"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine"
)

var connIDs atomic.Uint64

// conn is one client connection: a reader goroutine (serve) that parses
// requests in order and a writer goroutine (writeLoop) that sends queued
// frames.
type conn struct {
	s      *Server
	nc     net.Conn
	id     uint64
	remote string
	log    *slog.Logger

	sid atomic.Int64 // session id, 0 before the handshake
	// pendingSession is the session a reconnecting client asks for, while
	// the handshake revalidates it (set and read by the reader goroutine).
	pendingSession int64
	timeout        atomic.Int32 // negotiated session timeout, ms
	passwd         []byte
	legacy         bool        // a 3.3 client: no readOnly byte in the handshake
	ro             atomic.Bool // a read-only client of a read-only member (readonly.go)

	authMu sync.Mutex
	auth   []proto.Id        // authenticated ids, starting with ip:<peer>
	sasl   *digestmd5.Server // the SASL exchange, once begun (security.go)

	// outMu guards the outgoing side. order holds the requests whose
	// replies are not yet queued, in request order; out holds frames ready
	// to send (a nil frame means: close after sending what precedes).
	outMu sync.Mutex
	order []*request
	out   [][]byte
	outCh chan struct{}

	// lastWrite is the newest write this connection proposed; reads wait
	// for it (reader goroutine only).
	lastWrite *request

	closed    chan struct{}
	closeOnce sync.Once
	isClosed  atomic.Bool

	established time.Time
	stats       connStats
}

// request is one client request waiting for its reply.
type request struct {
	c     *conn
	xid   int32
	op    proto.OpCode
	path  string // sync: echoed in SyncResponse
	start time.Time
	done  chan struct{}

	// handshake: set for an OpCreateSession entry; finish stores the
	// result for the waiting reader instead of building a reply.
	handshake bool
	result    statemachine.Result

	// guarded by c.outMu
	completed  bool
	frame      []byte
	closeAfter bool
	counted    bool // counted in the global outstanding throttle (ops.go)
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:           s,
		nc:          nc,
		id:          connIDs.Add(1),
		remote:      nc.RemoteAddr().String(),
		outCh:       make(chan struct{}, 1),
		closed:      make(chan struct{}),
		established: time.Now(),
	}
	c.log = s.log.With("remote", c.remote)
	if ip := peerIP(nc.RemoteAddr()); ip != "" {
		// IPAuthenticationProvider: every connection carries ip:<address>.
		c.auth = append(c.auth, proto.Id{Scheme: "ip", Id: ip})
	}
	return c
}

// sessionID makes conn a watcher.
func (c *conn) sessionID() int64 { return c.sid.Load() }

// dead makes conn a watcher: watches are not added to a closed connection.
func (c *conn) dead() bool { return c.isClosed.Load() }

// peerIP formats the peer address as Java's InetAddress.getHostAddress
// does, since that string is the ip auth id ZooKeeper ACLs match.
func peerIP(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	if v4 := ta.IP.To4(); v4 != nil {
		return v4.String()
	}
	ip := ta.IP.To16()
	if ip == nil {
		return ""
	}
	// Java prints all eight groups, without zero compression.
	parts := make([]string, 8)
	for i := range parts {
		parts[i] = strconv.FormatUint(uint64(binary.BigEndian.Uint16(ip[2*i:])), 16)
	}
	return strings.Join(parts, ":")
}

// close tears the connection down at once; queued frames are dropped.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.isClosed.Store(true)
		close(c.closed)
		c.nc.Close()
		c.s.watches.RemoveWatcher(c)
		c.s.removeConn(c)
		c.s.ops.release(c)
		// Requests that will never be answered leave the throttle.
		c.outMu.Lock()
		for _, r := range c.order {
			if r != nil && r.counted {
				r.counted = false
				c.s.ops.throttle.done()
			}
		}
		c.outMu.Unlock()
	})
}

// sendFrame queues a frame that is not a reply to a request (a watch
// event, or the handshake response).
func (c *conn) sendFrame(frame []byte) {
	c.outMu.Lock()
	c.out = append(c.out, frame)
	c.outMu.Unlock()
	c.signal()
}

// closeAfterFlush asks the writer to close once everything queued so far
// is sent.
func (c *conn) closeAfterFlush() { c.sendFrame(nil) }

func (c *conn) signal() {
	select {
	case c.outCh <- struct{}{}:
	default:
	}
}

// enqueue reserves r's place in the reply order.
func (c *conn) enqueue(r *request) {
	c.outMu.Lock()
	c.order = append(c.order, r)
	if !c.isClosed.Load() {
		r.counted = true
		c.s.ops.throttle.add()
	}
	c.outMu.Unlock()
}

// complete stores r's reply and moves every completed reply at the head of
// the order to the outgoing queue, so replies leave in request order.
func (c *conn) complete(r *request, frame []byte, closeAfter bool) {
	c.outMu.Lock()
	r.frame, r.closeAfter, r.completed = frame, closeAfter, true
	if r.counted {
		r.counted = false
		c.s.ops.throttle.done()
	}
	for len(c.order) > 0 && c.order[0].completed {
		h := c.order[0]
		c.order[0] = nil
		c.order = c.order[1:]
		c.out = append(c.out, h.frame)
		if h.closeAfter {
			c.out = append(c.out, nil)
		}
		c.stats.replied(h.start)
		c.s.stats.replied(h.start)
		c.s.ops.observe(h.op, h.start)
	}
	c.outMu.Unlock()
	close(r.done)
	c.signal()
}

// finish completes a write whose entry was applied. Called from apply with
// the state's write lock held.
func (r *request) finish(res *statemachine.Result) {
	if r.handshake {
		r.result = *res
		close(r.done)
		return
	}
	var body proto.Record
	if res.Resp != nil {
		body = res.Resp
	}
	if r.op == proto.OpSync {
		body = &proto.SyncResponse{Path: r.path}
	}
	r.c.stats.lastZxid.Store(res.Zxid)
	r.c.complete(r, encodeReply(r.xid, res.Zxid, res.Err, body), r.op == proto.OpCloseSession)
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		select {
		case <-c.outCh:
		case <-c.closed:
			return
		}
		c.outMu.Lock()
		frames := c.out
		c.out = nil
		c.outMu.Unlock()
		for _, f := range frames {
			if f == nil {
				w.Flush()
				c.close()
				return
			}
			if _, err := w.Write(f); err != nil {
				c.close()
				return
			}
			c.stats.sent.Add(1)
			c.s.stats.sent.Add(1)
		}
		if err := w.Flush(); err != nil {
			c.close()
			return
		}
	}
}

// errFrame reports a frame that must close the connection.
var errFrame = errors.New("bad frame")

// readFrame reads one length-prefixed frame, rejecting lengths ZooKeeper
// rejects ("Len error").
func (c *conn) readFrame(r *bufio.Reader, lenBuf []byte) ([]byte, error) {
	if lenBuf == nil {
		lenBuf = make([]byte, 4)
		if _, err := io.ReadFull(r, lenBuf); err != nil {
			return nil, err
		}
	}
	n := int32(binary.BigEndian.Uint32(lenBuf))
	if n < 0 || int(n) > c.s.cfg.MaxBuffer {
		c.log.Warn("closing connection: Len error", "len", n, "max", c.s.cfg.MaxBuffer)
		return nil, errFrame
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	c.stats.received.Add(1)
	c.s.stats.received.Add(1)
	return b, nil
}

// serve is the reader goroutine.
func (c *conn) serve() {
	defer func() {
		// A graceful stop (close after the queued replies) leaves the
		// closing to the writer; wait for it, bounded.
		select {
		case <-c.closed:
		case <-time.After(5 * time.Second):
		}
		c.close()
	}()
	if !c.tlsHandshake() {
		c.close()
		return
	}
	go c.writeLoop()
	r := bufio.NewReaderSize(c.nc, 64<<10)

	// The first 4 bytes of a new connection may be a four-letter word
	// (NIOServerCnxn.checkFourLetterWord).
	handshakeTimeout := c.s.cfg.HandshakeTimeout
	if handshakeTimeout <= 0 {
		handshakeTimeout = DefaultHandshakeTimeout
	}
	c.nc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	first := make([]byte, 4)
	if _, err := io.ReadFull(r, first); err != nil {
		if isTimeout(err) {
			c.log.Info("closing connection: no handshake within the handshake timeout", "timeout", handshakeTimeout)
		}
		c.close()
		return
	}
	if cmd, ok := fourLetterWords[string(first)]; ok {
		c.fourLetter(cmd)
		return
	}
	frame, err := c.readFrame(r, first)
	if err != nil {
		if isTimeout(err) {
			c.log.Info("closing connection: no handshake within the handshake timeout", "timeout", handshakeTimeout)
		}
		c.close()
		return
	}
	if !c.handshake(frame) {
		return
	}
	for {
		// Backpressure: at globalOutstandingLimit, stop reading (ops.go).
		if !c.s.ops.throttle.wait(c.closed) {
			return
		}
		// A client silent for its whole session timeout is gone (or
		// half-open): ZooKeeper expires such a connection.
		idle := time.Duration(c.timeout.Load()) * time.Millisecond
		c.nc.SetReadDeadline(time.Now().Add(idle))
		frame, err := c.readFrame(r, nil)
		if err != nil {
			if isTimeout(err) && !c.isClosed.Load() {
				c.log.Info("closing connection: nothing received within the session timeout", "timeout", idle)
			} else if !errors.Is(err, io.EOF) && !c.isClosed.Load() && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("closing connection", "err", err)
			}
			c.close()
			return
		}
		c.s.tracker.touch(c.sessionID())
		if !c.handle(frame) {
			return
		}
	}
}

// handshake answers the ConnectRequest (ZooKeeperServer.processConnectRequest).
// It reports whether the connection goes on serving requests.
func (c *conn) handshake(frame []byte) bool {
	s := c.s
	req, legacy, err := proto.DecodeConnectRequest(frame)
	if err != nil {
		c.log.Warn("closing connection: malformed connect request", "err", err)
		c.close()
		return false
	}
	c.legacy = legacy
	s.mu.RLock()
	last := s.state.LastZxid()
	s.mu.RUnlock()
	if req.LastZxidSeen > last {
		// The client has seen a newer state than ours: it must try
		// another server (single system image).
		c.log.Info("refusing session: client has seen a newer zxid, client must try another server",
			"client_zxid", hexID(req.LastZxidSeen), "our_zxid", hexID(last))
		c.close()
		return false
	}
	timeout := req.TimeOut
	if min := int32(s.cfg.MinSessionTimeout.Milliseconds()); timeout < min {
		timeout = min
	}
	if max := int32(s.cfg.MaxSessionTimeout.Milliseconds()); timeout > max {
		timeout = max
	}
	c.timeout.Store(timeout)

	// A member without a quorum (readonly.go) serves read-only clients,
	// or nobody.
	if s.readOnlyActive() {
		return c.readOnlySession(&req, timeout)
	}
	if c.refuseWithoutQuorum() {
		return false
	}
	if req.SessionId == 0 {
		return c.createSession(timeout)
	}
	return c.reopenSession(req.SessionId, req.Passwd, timeout)
}

func (c *conn) createSession(timeout int32) bool {
	s := c.s
	passwd := randomPasswd()
	body := proto.Marshal(&statemachine.SessionBody{Timeout: timeout, Passwd: passwd})
	for attempt := 0; attempt < 10; attempt++ {
		id := s.newSessionID()
		r := &request{c: c, op: proto.OpCreateSession, handshake: true, done: make(chan struct{}), start: time.Now()}
		seq := s.addPending(r)
		e := &statemachine.Entry{Op: proto.OpCreateSession, Session: id, Seq: seq, Body: body}
		if err := s.propose(e); err != nil {
			s.dropPending(seq)
			c.log.Warn("closing connection: could not propose session", "err", err)
			c.close()
			return false
		}
		select {
		case <-r.done:
		case <-c.closed:
			s.dropPending(seq)
			return false
		}
		switch r.result.Err {
		case proto.ErrOK:
			c.sid.Store(id)
			c.passwd = passwd
			c.log = c.log.With("session", hexID(id))
			s.attach(c, id)
			c.log.Info("session established", "timeout_ms", timeout)
			c.sendConnectResponse(timeout, id, passwd)
			return true
		case proto.ErrNodeExists:
			continue // the id is taken (clock went back?): take the next
		default:
			c.log.Warn("closing connection: session not created", "err", r.result.Err)
			c.close()
			return false
		}
	}
	c.close()
	return false
}

// reopenSession re-attaches a session (ZooKeeperServer.reopenSession). An
// unknown or expired session, or a wrong password, is answered with
// timeout 0, session 0 and a zero password, and the connection closed: the
// client turns that into SessionExpired.
func (c *conn) reopenSession(id int64, passwd []byte, timeout int32) bool {
	s := c.s
	c.pendingSession = id
	if !s.catchUpWithLeader(c) {
		c.close()
		return false
	}
	s.mu.RLock()
	info, ok := s.state.Session(id)
	s.mu.RUnlock()
	if !ok || !bytes.Equal(info.Passwd, passwd) || !s.tracker.revalidate(id, time.Duration(timeout)*time.Millisecond) {
		c.log.Info("invalid session, answering expired", "session", hexID(id), "known", ok)
		c.sendConnectResponse(0, 0, make([]byte, 16))
		c.closeAfterFlush()
		return false
	}
	c.sid.Store(id)
	c.passwd = info.Passwd
	c.log = c.log.With("session", hexID(id))
	s.attach(c, id)
	c.log.Info("session reconnected", "timeout_ms", timeout)
	c.sendConnectResponse(timeout, id, info.Passwd)
	return true
}

func (c *conn) sendConnectResponse(timeout int32, id int64, passwd []byte) {
	e := proto.NewEncoder(make([]byte, 4, 48))
	proto.EncodeConnectResponse(e, &proto.ConnectResponse{
		ProtocolVersion: 0, TimeOut: timeout, SessionId: id, Passwd: passwd,
		ReadOnly: c.ro.Load(),
	}, c.legacy)
	c.sendFrame(finishFrame(e))
}

// authIDs returns a copy of the connection's authenticated ids.
func (c *conn) authIDs() []proto.Id {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	return javaSetOrder(c.auth)
}

// authForCheck returns the connection's ids for an ACL check, where their
// order does not matter: it skips authIDs' Java set ordering, since it runs
// for every watcher of every change inside the apply critical section.
func (c *conn) authForCheck() []proto.Id {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	return append([]proto.Id(nil), c.auth...)
}

func (c *conn) addAuth(id proto.Id) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	for _, a := range c.auth {
		if a == id {
			return
		}
	}
	c.auth = append(c.auth, id)
}

// digestID is DigestAuthenticationProvider.generateDigest:
// "user:password" → "user:" + base64(sha1("user:password")).
func digestID(idPassword string) string {
	user, _, _ := strings.Cut(idPassword, ":")
	sum := sha1.Sum([]byte(idPassword))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

// writeOps maps the write opcodes to their request records.
func newWriteRecord(op proto.OpCode) proto.Record {
	switch op {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer:
		return &proto.CreateRequest{}
	case proto.OpCreateTTL:
		return &proto.CreateTTLRequest{}
	case proto.OpDelete:
		return &proto.DeleteRequest{}
	case proto.OpSetData:
		return &proto.SetDataRequest{}
	case proto.OpSetACL:
		return &proto.SetACLRequest{}
	case proto.OpCheck:
		return &proto.CheckVersionRequest{}
	case proto.OpMulti:
		return &proto.MultiRequest{}
	case proto.OpReconfig:
		return &proto.ReconfigRequest{}
	case proto.OpSync:
		return &proto.SyncRequest{}
	}
	return nil
}

// newReadRecord maps the opcodes answered locally to their request
// records (nil record, true: no body).
func newReadRecord(op proto.OpCode) (proto.Record, bool) {
	switch op {
	case proto.OpExists:
		return &proto.ExistsRequest{}, true
	case proto.OpGetData:
		return &proto.GetDataRequest{}, true
	case proto.OpGetChildren:
		return &proto.GetChildrenRequest{}, true
	case proto.OpGetChildren2:
		return &proto.GetChildren2Request{}, true
	case proto.OpGetACL:
		return &proto.GetACLRequest{}, true
	case proto.OpGetAllChildrenNumber:
		return &proto.GetAllChildrenNumberRequest{}, true
	case proto.OpGetEphemerals:
		return &proto.GetEphemeralsRequest{}, true
	case proto.OpMultiRead:
		return &proto.MultiRequest{}, true
	case proto.OpCheckWatches:
		return &proto.CheckWatchesRequest{}, true
	case proto.OpRemoveWatches:
		return &proto.RemoveWatchesRequest{}, true
	case proto.OpSetWatches:
		return &proto.SetWatches{}, true
	case proto.OpSetWatches2:
		return &proto.SetWatches2{}, true
	case proto.OpAddWatch:
		return &proto.AddWatchRequest{}, true
	case proto.OpWhoAmI, proto.OpPing:
		return nil, true
	}
	return nil, false
}

// handle processes one request frame. It reports whether the reader
// should go on reading.
func (c *conn) handle(frame []byte) bool {
	d := proto.NewDecoder(frame)
	var h proto.RequestHeader
	h.Decode(d)
	if d.Err() != nil {
		c.log.Warn("closing connection: malformed request header", "err", d.Err())
		c.close()
		return false
	}
	op := proto.OpCode(h.Type)
	body := d.Rest()
	c.stats.lastOp.Store(int32(op))
	c.stats.lastCxid.Store(h.Xid)

	if op == proto.OpAuth {
		return c.handleAuth(h.Xid, body)
	}
	if op == proto.OpSasl {
		return c.handleSasl(h.Xid, body)
	}
	if !c.enforceAuth(h.Xid, op) {
		return false
	}
	if rec := newWriteRecord(op); rec != nil || op == proto.OpCloseSession {
		return c.handleWrite(h.Xid, op, rec, body)
	}
	rec, ok := newReadRecord(op)
	if !ok {
		// ZooKeeper answers an unknown type with UNIMPLEMENTED and closes
		// the connection (UnimplementedRequestProcessor).
		c.log.Warn("unsupported request type, closing connection", "type", int32(op))
		r := c.newRequest(h.Xid, op)
		c.enqueue(r)
		c.waitPrior()
		c.complete(r, encodeReply(h.Xid, c.lastZxid(), proto.ErrUnimplemented, nil), true)
		return false
	}
	if rec != nil {
		if err := proto.Unmarshal(body, rec); err != nil {
			c.log.Warn("closing connection: malformed request", "op", op, "err", err)
			c.close()
			return false
		}
	}
	r := c.newRequest(h.Xid, op)
	c.enqueue(r)
	if !c.waitPrior() {
		return false
	}
	c.handleRead(r, rec)
	return true
}

func (c *conn) newRequest(xid int32, op proto.OpCode) *request {
	return &request{c: c, xid: xid, op: op, start: time.Now(), done: make(chan struct{})}
}

func (c *conn) lastZxid() int64 {
	c.s.mu.RLock()
	defer c.s.mu.RUnlock()
	return c.s.state.LastZxid()
}

// waitPrior blocks until every earlier request of this session completed,
// so a read sees the session's own writes (ZooKeeper's CommitProcessor
// holds a session's reads behind its pending writes). Writes complete in
// log order, so waiting for the newest one is enough.
func (c *conn) waitPrior() bool {
	if c.lastWrite == nil {
		return true
	}
	select {
	case <-c.lastWrite.done:
		c.lastWrite = nil
		return true
	case <-c.closed:
		return false
	}
}

// handleAuth is the auth packet (ZooKeeperServer.processPacket): digest
// and ip are supported. Failure answers AUTHFAILED and closes.
func (c *conn) handleAuth(xid int32, body []byte) bool {
	var ap proto.AuthPacket
	if err := proto.Unmarshal(body, &ap); err != nil {
		c.log.Warn("closing connection: malformed auth packet", "err", err)
		c.close()
		return false
	}
	r := c.newRequest(xid, proto.OpAuth)
	c.enqueue(r)
	switch ap.Scheme {
	case "digest":
		id := digestID(string(ap.Auth))
		if c.s.cfg.SuperDigest != "" && id == c.s.cfg.SuperDigest {
			c.addAuth(proto.Id{Scheme: "super", Id: ""})
		}
		c.addAuth(proto.Id{Scheme: "digest", Id: id})
	case "ip":
		if ip := peerIP(c.nc.RemoteAddr()); ip != "" {
			c.addAuth(proto.Id{Scheme: "ip", Id: ip})
		}
	default:
		c.log.Warn("authentication failed: no provider for scheme", "scheme", ap.Scheme)
		c.s.stats.authFailed.Add(1)
		c.complete(r, encodeReply(xid, 0, proto.ErrAuthFailed, nil), true)
		return false
	}
	// The auth reply carries zxid 0, as ZooKeeper's does.
	c.complete(r, encodeReply(xid, 0, proto.ErrOK, nil), false)
	return true
}

// handleWrite turns a write into a log entry and proposes it.
func (c *conn) handleWrite(xid int32, op proto.OpCode, rec proto.Record, body []byte) bool {
	s := c.s
	if c.ro.Load() {
		return c.readOnlyWrite(xid, op) // readonly.go
	}
	if handled, ok := c.ensembleWrite(xid, op, body); handled {
		return ok
	}
	var data []byte
	r := c.newRequest(xid, op)
	if rec != nil {
		if err := proto.Unmarshal(body, rec); err != nil {
			c.log.Warn("closing connection: malformed request", "op", op, "err", err)
			c.close()
			return false
		}
		data = proto.Marshal(rec)
		if sr, ok := rec.(*proto.SyncRequest); ok {
			r.path = sr.Path
		}
	}
	e := &statemachine.Entry{
		Op:      op,
		Session: c.sessionID(),
		Cxid:    xid,
		Auth:    c.authIDs(),
		Body:    data,
	}
	if op == proto.OpCloseSession {
		s.tracker.markClosing(c.sessionID())
	}
	e.Seq = s.addPending(r)
	c.enqueue(r)
	if err := s.propose(e); err != nil {
		s.dropPending(e.Seq)
		c.log.Warn("closing connection: proposal failed", "op", op, "err", err)
		if op == proto.OpCloseSession {
			s.tracker.unmarkClosing(c.sessionID())
		}
		c.close()
		return false
	}
	c.lastWrite = r
	// After closeSession the client sends nothing more; the connection
	// closes once the reply is out.
	return op != proto.OpCloseSession
}

// handleRead answers a request served from the local state. It runs
// under the state's read lock, registering watches and queueing the reply
// (and any setWatches events) before any later change can be applied, so
// an event for a watch set here always follows this reply.
func (c *conn) handleRead(r *request, rec proto.Record) {
	s := c.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	zxid := s.state.LastZxid()
	reply := func(err proto.ErrCode, body proto.Record) {
		c.stats.lastZxid.Store(zxid)
		c.complete(r, encodeReply(r.xid, zxid, err, body), false)
	}
	sid := c.sessionID()
	switch req := rec.(type) {
	case nil:
		switch r.op {
		case proto.OpPing:
			c.complete(r, encodeReply(proto.XidPing, zxid, proto.ErrOK, nil), false)
		case proto.OpWhoAmI:
			reply(proto.ErrOK, &proto.WhoAmIResponse{ClientInfo: clientInfos(c.authIDs())})
		}
	case *proto.ExistsRequest:
		resp, err := s.state.Read(sid, c.authIDs(), r.op, req)
		// An exists watch is set even when the node is missing.
		if req.Watch && (err == proto.ErrOK || err == proto.ErrNoNode) {
			s.watches.AddData(req.Path, c)
		}
		reply(err, resp)
	case *proto.GetDataRequest:
		resp, err := s.state.Read(sid, c.authIDs(), r.op, req)
		if req.Watch && err == proto.ErrOK {
			s.watches.AddData(req.Path, c)
		}
		reply(err, resp)
	case *proto.GetChildrenRequest:
		resp, err := s.state.Read(sid, c.authIDs(), r.op, req)
		if req.Watch && err == proto.ErrOK {
			s.watches.AddChild(req.Path, c)
		}
		reply(err, resp)
	case *proto.GetChildren2Request:
		resp, err := s.state.Read(sid, c.authIDs(), r.op, req)
		if req.Watch && err == proto.ErrOK {
			s.watches.AddChild(req.Path, c)
		}
		reply(err, resp)
	case *proto.GetACLRequest, *proto.GetAllChildrenNumberRequest, *proto.GetEphemeralsRequest, *proto.MultiRequest:
		resp, err := s.state.Read(sid, c.authIDs(), r.op, rec)
		reply(err, resp)
	case *proto.AddWatchRequest:
		switch req.Mode {
		case proto.AddWatchPersistent:
			s.watches.AddPersistent(req.Path, c, false)
		case proto.AddWatchPersistentRecursive:
			s.watches.AddPersistent(req.Path, c, true)
		default:
			// WatcherMode.fromZooDef throws; FinalRequestProcessor turns
			// that into MARSHALLINGERROR.
			reply(proto.ErrMarshallingError, nil)
			return
		}
		reply(proto.ErrOK, &proto.ErrorResponse{Err: 0})
	case *proto.CheckWatchesRequest:
		if !validWatcherType(req.Type) {
			reply(proto.ErrMarshallingError, nil)
			return
		}
		if !s.watches.Contains(req.Path, c, req.Type) {
			reply(proto.ErrNoWatcher, nil)
			return
		}
		reply(proto.ErrOK, nil)
	case *proto.RemoveWatchesRequest:
		if !validWatcherType(req.Type) {
			reply(proto.ErrMarshallingError, nil)
			return
		}
		if !s.watches.Remove(req.Path, c, req.Type) {
			reply(proto.ErrNoWatcher, nil)
			return
		}
		reply(proto.ErrOK, nil)
	case *proto.SetWatches:
		c.setWatches(zxid, req.RelativeZxid, req.DataWatches, req.ExistWatches, req.ChildWatches, nil, nil)
		reply(proto.ErrOK, nil)
	case *proto.SetWatches2:
		c.setWatches(zxid, req.RelativeZxid, req.DataWatches, req.ExistWatches, req.ChildWatches,
			req.PersistentWatches, req.PersistentRecursiveWatches)
		reply(proto.ErrOK, nil)
	}
}

// validWatcherType reports whether WatcherType.fromInt accepts t (3.9:
// Children, Data, Any, Persistent, PersistentRecursive). Anything else
// throws in ZooKeeper, which FinalRequestProcessor answers with
// MARSHALLINGERROR.
func validWatcherType(t int32) bool {
	return t >= proto.WatcherChildren && t <= proto.WatcherPersistentRecursive
}

// setWatches re-arms watches after a reconnect and fires the ones whose
// change the client missed (DataTree.setWatches). Called under the read
// lock. The replayed events carry the current zxid.
func (c *conn) setWatches(zxid, rel int64, data, exist, child, persistent, recursive []string) {
	s := c.s
	event := func(t proto.EventType, p string) { c.sendFrame(encodeNotification(zxid, t, p)) }
	for _, p := range data {
		exists, mzxid, _ := s.state.NodeState(p)
		switch {
		case !exists:
			event(proto.EventNodeDeleted, p)
		case mzxid > rel:
			event(proto.EventNodeDataChanged, p)
		default:
			s.watches.AddData(p, c)
		}
	}
	for _, p := range exist {
		if exists, _, _ := s.state.NodeState(p); exists {
			event(proto.EventNodeCreated, p)
		} else {
			s.watches.AddData(p, c)
		}
	}
	for _, p := range child {
		exists, _, pzxid := s.state.NodeState(p)
		switch {
		case !exists:
			event(proto.EventNodeDeleted, p)
		case pzxid > rel:
			event(proto.EventNodeChildrenChanged, p)
		default:
			s.watches.AddChild(p, c)
		}
	}
	for _, p := range persistent {
		s.watches.AddPersistent(p, c, false)
	}
	for _, p := range recursive {
		s.watches.AddPersistent(p, c, true)
	}
}

// clientInfos is AuthUtil.getClientInfos: scheme plus user name, where a
// digest user is the part before the colon, an ip, x509 or sasl user is
// the id itself, and schemes without a provider (super) have an empty
// user.
func clientInfos(ids []proto.Id) []proto.ClientInfo {
	out := make([]proto.ClientInfo, 0, len(ids))
	for _, id := range ids {
		user := ""
		switch id.Scheme {
		case "digest":
			user, _, _ = strings.Cut(id.Id, ":")
		case "ip", "x509", "sasl":
			user = id.Id
		}
		out = append(out, proto.ClientInfo{AuthScheme: id.Scheme, User: user})
	}
	return out
}

// isTimeout reports a read deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
