package cli

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// WireOptions configures [DialWire].
type WireOptions struct {
	// Servers is a ZooKeeper connect string: "host:port[,host:port...][/chroot]".
	Servers string
	// SessionTimeout is the requested session timeout; 0 means 30s.
	SessionTimeout time.Duration
	// TLS, when set, wraps every connection in TLS.
	TLS *tls.Config
	// ReadOnly allows connecting to a read-only server (zkCli -r).
	ReadOnly bool
}

// Wire is a [Backend] speaking the ZooKeeper wire protocol itself: one
// session over one connection at a time, reconnecting across the server
// list with session resume, auth replay and watch replay (setWatches2), as
// ClientCnxn does.
type Wire struct {
	opts    WireOptions
	servers []string
	chroot  string
	events  chan Event

	mu          sync.Mutex
	state       State
	connected   chan struct{} // closed while connected; replaced on loss
	conn        net.Conn
	sessionID   int64
	passwd      []byte
	timeout     time.Duration
	lastZxid    int64
	xid         int32
	pending     map[int32]*call
	auths       []authInfo
	authWaiters []chan error
	watches     watchSet
	closing     bool
	next        int   // index of the next server to try
	lastErr     error // why the last connection attempt failed

	done   chan struct{}   // closed by Close
	ctx    context.Context // cancelled by Close: ends dials in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type authInfo struct {
	scheme string
	auth   []byte
}

type call struct {
	op    proto.OpCode
	resp  proto.Record
	done  chan error
	onErr func(proto.ErrCode) // runs in the reader, under w.mu, before done
}

type watchSet struct {
	data, exist, child, persistent, recursive map[string]bool
}

func newWatchSet() watchSet {
	return watchSet{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}}
}

// errClosed is returned by calls on a closed backend.
var errClosed = errors.New("client is closed")

// DialWire parses the connect string and starts connecting in the
// background; calls wait for the connection (use WaitConnected to bound
// the wait).
func DialWire(opts WireOptions) (*Wire, error) {
	servers, chroot, err := ParseConnectString(opts.Servers)
	if err != nil {
		return nil, err
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 30 * time.Second
	}
	w := &Wire{
		opts:      opts,
		servers:   servers,
		chroot:    chroot,
		events:    make(chan Event, 1024),
		state:     StateConnecting,
		connected: make(chan struct{}),
		pending:   map[int32]*call{},
		watches:   newWatchSet(),
		timeout:   opts.SessionTimeout,
		done:      make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// ParseConnectString splits "h1:p1,h2:p2/chroot" into host:port pairs
// (port 2181 when absent) and the chroot ("" for none).
func ParseConnectString(s string) (servers []string, chroot string, err error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		chroot = s[i:]
		s = s[:i]
		if chroot == "/" {
			chroot = ""
		} else if err := validatePath(chroot); err != nil {
			return nil, "", fmt.Errorf("bad chroot in connect string: %v", err)
		}
	}
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "2181")
		}
		servers = append(servers, h)
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("no server in connect string %q", s)
	}
	return servers, chroot, nil
}

func (w *Wire) serverPath(p string) string {
	if w.chroot == "" {
		return p
	}
	if p == "/" {
		return w.chroot
	}
	return w.chroot + p
}

func (w *Wire) clientPath(p string) string {
	if w.chroot == "" {
		return p
	}
	if p == w.chroot {
		return "/"
	}
	if strings.HasPrefix(p, w.chroot+"/") {
		return p[len(w.chroot):]
	}
	return p
}

// State implements Backend.
func (w *Wire) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// SessionID implements Backend.
func (w *Wire) SessionID() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sessionID
}

// Events implements Backend.
func (w *Wire) Events() <-chan Event { return w.events }

// WaitConnected implements Backend.
func (w *Wire) WaitConnected(ctx context.Context) error {
	for {
		w.mu.Lock()
		st, ch := w.state, w.connected
		w.mu.Unlock()
		if st == StateConnected || st == StateConnectedRO {
			return nil
		}
		if !st.Alive() {
			return stateErr(st)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", proto.ErrConnectionLoss, ctx.Err())
		case <-w.done:
			return errClosed
		}
	}
}

func stateErr(st State) error {
	switch st {
	case StateAuthFailed:
		return proto.ErrAuthFailed
	case StateClosed:
		return proto.ErrSessionExpired
	}
	return errClosed
}

// LastError reports why the last connection attempt failed (nil if it
// did not), for messages like "Unable to connect ...".
func (w *Wire) LastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Close implements Backend: it sends closeSession (if connected) and stops.
func (w *Wire) Close() error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return nil
	}
	// From here on a broken connection is the end, not a reason to reconnect.
	w.closing = true
	connected := w.state == StateConnected || w.state == StateConnectedRO
	w.mu.Unlock()
	if connected {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = w.do(ctx, proto.OpCloseSession, nil, nil, nil)
		cancel()
	}
	w.mu.Lock()
	w.state = StateClosed
	if w.conn != nil {
		w.conn.Close()
	}
	w.mu.Unlock()
	close(w.done)
	w.cancel()
	w.wg.Wait()
	w.emit(Event{State: KeeperClosed, Type: proto.EventNone})
	close(w.events)
	return nil
}

func (w *Wire) emit(e Event) {
	select {
	case w.events <- e:
	default: // nobody is reading fast enough: drop rather than block the reader
	}
}

// run connects, serves the connection until it breaks, and reconnects.
func (w *Wire) run() {
	defer w.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-w.done:
			return
		default:
		}
		conn, err := w.connect()
		if err != nil {
			w.mu.Lock()
			w.lastErr = err
			expired := errors.Is(err, proto.ErrSessionExpired)
			if expired {
				w.state = StateClosed
			}
			w.mu.Unlock()
			if expired {
				w.emit(Event{State: KeeperExpired, Type: proto.EventNone})
				return
			}
			select {
			case <-w.done:
				return
			case <-time.After(backoff):
			}
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 50 * time.Millisecond
		w.serve(conn)
		w.mu.Lock()
		if w.closing {
			w.mu.Unlock()
			return
		}
		authFailed := w.state == StateAuthFailed
		if !authFailed {
			w.state = StateConnecting
		}
		w.conn = nil
		w.connected = make(chan struct{})
		pend := w.pending
		w.pending = map[int32]*call{}
		waiters := w.authWaiters
		w.authWaiters = nil
		w.mu.Unlock()
		for _, c := range pend {
			c.done <- proto.ErrConnectionLoss
		}
		for _, c := range waiters {
			c <- proto.ErrConnectionLoss
		}
		if authFailed {
			w.emit(Event{State: KeeperAuthFailed, Type: proto.EventNone})
			return
		}
		w.emit(Event{State: KeeperDisconnected, Type: proto.EventNone})
	}
}

func writeFrame(c net.Conn, body []byte) error {
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	_, err := c.Write(append(buf, body...))
	return err
}

func readFrame(c net.Conn) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("frame of %d bytes is too large", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

// connect dials the next server and performs the session handshake.
func (w *Wire) connect() (net.Conn, error) {
	w.mu.Lock()
	addr := w.servers[w.next%len(w.servers)]
	w.next++
	req := proto.ConnectRequest{
		LastZxidSeen: w.lastZxid,
		TimeOut:      int32(w.opts.SessionTimeout / time.Millisecond),
		SessionId:    w.sessionID,
		Passwd:       w.passwd,
		ReadOnly:     w.opts.ReadOnly,
	}
	w.mu.Unlock()
	if req.Passwd == nil {
		req.Passwd = make([]byte, 16)
	}
	dialTimeout := w.opts.SessionTimeout / time.Duration(len(w.servers))
	if dialTimeout > 10*time.Second || dialTimeout <= 0 {
		dialTimeout = 10 * time.Second
	}
	d := net.Dialer{Timeout: dialTimeout}
	var c net.Conn
	var err error
	if w.opts.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: w.opts.TLS}
		c, err = td.DialContext(w.ctx, "tcp", addr)
	} else {
		c, err = d.DialContext(w.ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(dialTimeout))
	if err := writeFrame(c, proto.Marshal(&req)); err != nil {
		c.Close()
		return nil, err
	}
	b, err := readFrame(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	dec := proto.NewDecoder(b)
	var resp proto.ConnectResponse
	resp.ProtocolVersion = dec.Int()
	resp.TimeOut = dec.Int()
	resp.SessionId = dec.Long()
	resp.Passwd = dec.Buffer()
	if dec.Remaining() > 0 {
		resp.ReadOnly = dec.Bool()
	}
	if dec.Err() != nil {
		c.Close()
		return nil, dec.Err()
	}
	if resp.TimeOut <= 0 {
		c.Close()
		return nil, proto.ErrSessionExpired
	}
	c.SetDeadline(time.Time{})

	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		c.Close()
		return nil, errClosed
	}
	w.sessionID = resp.SessionId
	w.passwd = resp.Passwd
	w.timeout = time.Duration(resp.TimeOut) * time.Millisecond
	w.conn = c
	// Replay auth, then watches, before any new request (ClientCnxn.primeConnection).
	var frames [][]byte
	for _, a := range w.auths {
		frames = append(frames, encodeRequest(proto.XidAuth, proto.OpAuth, &proto.AuthPacket{Scheme: a.scheme, Auth: a.auth}))
		w.authWaiters = append(w.authWaiters, make(chan error, 1))
	}
	if sw := w.setWatches(); sw != nil {
		frames = append(frames, encodeRequest(proto.XidSetWatches, proto.OpSetWatches2, sw))
	}
	for _, f := range frames {
		if err := writeFrame(c, f); err != nil {
			w.conn = nil
			w.mu.Unlock()
			c.Close()
			return nil, err
		}
	}
	ks := KeeperSyncConnected
	w.state = StateConnected
	if resp.ReadOnly {
		w.state, ks = StateConnectedRO, KeeperConnectedReadOnly
	}
	// The event goes out before any caller can see the connection, so it
	// precedes every reply in the event stream.
	w.emit(Event{State: ks, Type: proto.EventNone})
	close(w.connected)
	w.mu.Unlock()
	return c, nil
}

// setWatches builds the setWatches2 record from the registered watches, or
// nil if there are none. Called with w.mu held.
func (w *Wire) setWatches() *proto.SetWatches2 {
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, w.serverPath(k))
		}
		sort.Strings(out)
		return out
	}
	sw := &proto.SetWatches2{
		RelativeZxid:               w.lastZxid,
		DataWatches:                keys(w.watches.data),
		ExistWatches:               keys(w.watches.exist),
		ChildWatches:               keys(w.watches.child),
		PersistentWatches:          keys(w.watches.persistent),
		PersistentRecursiveWatches: keys(w.watches.recursive),
	}
	if len(sw.DataWatches)+len(sw.ExistWatches)+len(sw.ChildWatches)+len(sw.PersistentWatches)+len(sw.PersistentRecursiveWatches) == 0 {
		return nil
	}
	return sw
}

func encodeRequest(xid int32, op proto.OpCode, req proto.Record) []byte {
	e := proto.NewEncoder(nil)
	h := proto.RequestHeader{Xid: xid, Type: int32(op)}
	h.Encode(e)
	if req != nil {
		req.Encode(e)
	}
	return e.Bytes()
}

// serve reads replies and events until the connection breaks; a ticker
// pings the server at a third of the session timeout.
func (w *Wire) serve(c net.Conn) {
	w.mu.Lock()
	timeout := w.timeout
	w.mu.Unlock()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(timeout / 3)
		defer t.Stop()
		ping := encodeRequest(proto.XidPing, proto.OpPing, nil)
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				w.mu.Lock()
				if w.conn == c {
					c.SetWriteDeadline(time.Now().Add(timeout / 3))
					writeFrame(c, ping)
				}
				w.mu.Unlock()
			}
		}
	}()
	for {
		c.SetReadDeadline(time.Now().Add(timeout * 2 / 3))
		b, err := readFrame(c)
		if err != nil {
			c.Close()
			return
		}
		if !w.dispatch(b) {
			c.Close()
			return
		}
	}
}

// dispatch handles one frame from the server; false ends the connection.
func (w *Wire) dispatch(b []byte) bool {
	d := proto.NewDecoder(b)
	var h proto.ReplyHeader
	h.Decode(d)
	if d.Err() != nil {
		return false
	}
	switch h.Xid {
	case proto.XidNotification:
		var ev proto.WatcherEvent
		ev.Decode(d)
		if d.Err() != nil {
			return false
		}
		w.onEvent(ev)
		return true
	case proto.XidPing, proto.XidSetWatches:
		return true
	case proto.XidAuth:
		w.mu.Lock()
		var waiter chan error
		if len(w.authWaiters) > 0 {
			waiter = w.authWaiters[0]
			w.authWaiters = w.authWaiters[1:]
		}
		if h.Err != 0 {
			w.state = StateAuthFailed
		}
		w.mu.Unlock()
		if waiter != nil {
			if h.Err != 0 {
				waiter <- proto.ErrCode(h.Err)
			} else {
				waiter <- nil
			}
		}
		return h.Err == 0
	}
	w.mu.Lock()
	c := w.pending[h.Xid]
	delete(w.pending, h.Xid)
	if h.Zxid > 0 {
		w.lastZxid = h.Zxid
	}
	var err error
	if h.Err != 0 {
		err = proto.ErrCode(h.Err)
	} else if c != nil && c.resp != nil {
		c.resp.Decode(d)
		err = d.Err()
	}
	if c != nil && c.onErr != nil {
		c.onErr(proto.ErrCode(h.Err))
	}
	w.mu.Unlock()
	if c != nil {
		c.done <- err
	}
	return true
}

// onEvent updates the watch registry as ZKWatchManager.materialize does
// and emits the event if some watch of ours asked for it.
func (w *Wire) onEvent(ev proto.WatcherEvent) {
	path := w.clientPath(ev.Path)
	t := proto.EventType(ev.Type)
	w.mu.Lock()
	ws := &w.watches
	hit := false
	take := func(m map[string]bool) {
		if m[path] {
			hit = true
			delete(m, path)
		}
	}
	switch t {
	case proto.EventNone:
		hit = true
	case proto.EventNodeDataChanged, proto.EventNodeCreated:
		take(ws.data)
		take(ws.exist)
	case proto.EventNodeChildrenChanged:
		take(ws.child)
	case proto.EventNodeDeleted:
		take(ws.data)
		take(ws.exist)
		take(ws.child)
	}
	if t != proto.EventNone {
		if ws.persistent[path] {
			hit = true
		}
		if t != proto.EventNodeChildrenChanged {
			for p := path; ; p = parentPath(p) {
				if ws.recursive[p] {
					hit = true
					break
				}
				if p == "/" {
					break
				}
			}
		}
	}
	w.mu.Unlock()
	if hit {
		w.emit(Event{State: keeperStateName(ev.State), Type: t, Path: path})
	}
}

func keeperStateName(s int32) string {
	switch s {
	case proto.StateDisconnected:
		return KeeperDisconnected
	case proto.StateSyncConnected:
		return KeeperSyncConnected
	case proto.StateAuthFailed:
		return KeeperAuthFailed
	case proto.StateConnectedReadOnly:
		return KeeperConnectedReadOnly
	case proto.StateExpired:
		return KeeperExpired
	}
	return fmt.Sprintf("Unknown(%d)", s)
}

func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// do sends one request and waits for its reply.
func (w *Wire) do(ctx context.Context, op proto.OpCode, req, resp proto.Record, onErr func(proto.ErrCode)) error {
	for {
		if err := w.WaitConnected(ctx); err != nil {
			return err
		}
		w.mu.Lock()
		if w.conn == nil || !(w.state == StateConnected || w.state == StateConnectedRO) {
			w.mu.Unlock()
			continue
		}
		w.xid++
		if w.xid <= 0 {
			w.xid = 1
		}
		c := &call{op: op, resp: resp, done: make(chan error, 1), onErr: onErr}
		w.pending[w.xid] = c
		conn := w.conn
		conn.SetWriteDeadline(time.Now().Add(w.timeout))
		err := writeFrame(conn, encodeRequest(w.xid, op, req))
		w.mu.Unlock()
		if err != nil {
			conn.Close() // the reader notices and fails the pending calls
		}
		select {
		case err := <-c.done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", proto.ErrConnectionLoss, ctx.Err())
		}
	}
}

// Create implements Backend.
func (w *Wire) Create(ctx context.Context, path string, data []byte, acl []proto.ACL, mode int32, ttl int64) (string, error) {
	var resp proto.Create2Response
	var err error
	switch {
	case mode == proto.ModeContainer:
		err = w.do(ctx, proto.OpCreateContainer, &proto.CreateRequest{Path: w.serverPath(path), Data: data, Acl: acl, Flags: mode}, &resp, nil)
	case mode == proto.ModePersistentWithTTL || mode == proto.ModePersistentSequentialTTL:
		err = w.do(ctx, proto.OpCreateTTL, &proto.CreateTTLRequest{Path: w.serverPath(path), Data: data, Acl: acl, Flags: mode, Ttl: ttl}, &resp, nil)
	default:
		err = w.do(ctx, proto.OpCreate2, &proto.CreateRequest{Path: w.serverPath(path), Data: data, Acl: acl, Flags: mode}, &resp, nil)
	}
	if err != nil {
		return "", err
	}
	return w.clientPath(resp.Path), nil
}

// Delete implements Backend.
func (w *Wire) Delete(ctx context.Context, path string, version int32) error {
	return w.do(ctx, proto.OpDelete, &proto.DeleteRequest{Path: w.serverPath(path), Version: version}, nil, nil)
}

// Exists implements Backend.
func (w *Wire) Exists(ctx context.Context, path string, watch bool) (*proto.Stat, error) {
	var resp proto.ExistsResponse
	var onErr func(proto.ErrCode)
	if watch {
		onErr = func(c proto.ErrCode) {
			switch c {
			case proto.ErrOK:
				w.watches.data[path] = true
			case proto.ErrNoNode:
				w.watches.exist[path] = true
			}
		}
	}
	err := w.do(ctx, proto.OpExists, &proto.ExistsRequest{Path: w.serverPath(path), Watch: watch}, &resp, onErr)
	if c, ok := errCode(err); ok && c == proto.ErrNoNode {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &resp.Stat, nil
}

func (w *Wire) registerOnOK(watch bool, m map[string]bool, path string) func(proto.ErrCode) {
	if !watch {
		return nil
	}
	return func(c proto.ErrCode) {
		if c == proto.ErrOK {
			m[path] = true
		}
	}
}

// Get implements Backend.
func (w *Wire) Get(ctx context.Context, path string, watch bool) ([]byte, proto.Stat, error) {
	var resp proto.GetDataResponse
	err := w.do(ctx, proto.OpGetData, &proto.GetDataRequest{Path: w.serverPath(path), Watch: watch}, &resp, w.registerOnOK(watch, w.watches.data, path))
	return resp.Data, resp.Stat, err
}

// Set implements Backend.
func (w *Wire) Set(ctx context.Context, path string, data []byte, version int32) (proto.Stat, error) {
	var resp proto.SetDataResponse
	err := w.do(ctx, proto.OpSetData, &proto.SetDataRequest{Path: w.serverPath(path), Data: data, Version: version}, &resp, nil)
	return resp.Stat, err
}

// Children implements Backend.
func (w *Wire) Children(ctx context.Context, path string, watch bool) ([]string, proto.Stat, error) {
	var resp proto.GetChildren2Response
	err := w.do(ctx, proto.OpGetChildren2, &proto.GetChildren2Request{Path: w.serverPath(path), Watch: watch}, &resp, w.registerOnOK(watch, w.watches.child, path))
	return resp.Children, resp.Stat, err
}

// GetACL implements Backend.
func (w *Wire) GetACL(ctx context.Context, path string) ([]proto.ACL, proto.Stat, error) {
	var resp proto.GetACLResponse
	err := w.do(ctx, proto.OpGetACL, &proto.GetACLRequest{Path: w.serverPath(path)}, &resp, nil)
	return resp.Acl, resp.Stat, err
}

// SetACL implements Backend.
func (w *Wire) SetACL(ctx context.Context, path string, acl []proto.ACL, version int32) (proto.Stat, error) {
	var resp proto.SetACLResponse
	err := w.do(ctx, proto.OpSetACL, &proto.SetACLRequest{Path: w.serverPath(path), Acl: acl, Version: version}, &resp, nil)
	return resp.Stat, err
}

// Sync implements Backend.
func (w *Wire) Sync(ctx context.Context, path string) error {
	var resp proto.SyncResponse
	return w.do(ctx, proto.OpSync, &proto.SyncRequest{Path: w.serverPath(path)}, &resp, nil)
}

// AddAuth implements Backend: the credentials are remembered and replayed
// on every reconnect.
func (w *Wire) AddAuth(ctx context.Context, scheme string, auth []byte) error {
	if err := w.WaitConnected(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	w.auths = append(w.auths, authInfo{scheme, auth})
	if w.conn == nil {
		w.mu.Unlock()
		return nil // sent on reconnect
	}
	ch := make(chan error, 1)
	w.authWaiters = append(w.authWaiters, ch)
	err := writeFrame(w.conn, encodeRequest(proto.XidAuth, proto.OpAuth, &proto.AuthPacket{Scheme: scheme, Auth: auth}))
	w.mu.Unlock()
	if err != nil {
		return proto.ErrConnectionLoss
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", proto.ErrConnectionLoss, ctx.Err())
	}
}

// GetConfig implements Backend.
func (w *Wire) GetConfig(ctx context.Context, watch bool) ([]byte, proto.Stat, error) {
	var resp proto.GetDataResponse
	// The config node is outside any chroot.
	err := w.do(ctx, proto.OpGetData, &proto.GetDataRequest{Path: proto.ConfigPath, Watch: watch}, &resp, nil)
	return resp.Data, resp.Stat, err
}

// Reconfig implements Backend.
func (w *Wire) Reconfig(ctx context.Context, joining, leaving, members string, version int64) ([]byte, proto.Stat, error) {
	var resp proto.GetDataResponse
	err := w.do(ctx, proto.OpReconfig, &proto.ReconfigRequest{JoiningServers: joining, LeavingServers: leaving, NewMembers: members, CurConfigId: version}, &resp, nil)
	return resp.Data, resp.Stat, err
}

// AddWatch implements Backend.
func (w *Wire) AddWatch(ctx context.Context, path string, mode int32) error {
	m := w.watches.persistent
	if mode == proto.AddWatchPersistentRecursive {
		m = w.watches.recursive
	}
	var resp proto.ErrorResponse
	return w.do(ctx, proto.OpAddWatch, &proto.AddWatchRequest{Path: w.serverPath(path), Mode: mode}, &resp, w.registerOnOK(true, m, path))
}

// RemoveWatches implements Backend, as ZKWatchManager.removeWatcher: the
// watch must exist here (else NoWatcher), the server removes its side
// (unless local and disconnected), and every removed kind of watch is
// reported with a *WatchRemoved event.
func (w *Wire) RemoveWatches(ctx context.Context, path string, watcherType int32, local bool) error {
	w.mu.Lock()
	ws := &w.watches
	var has bool
	switch watcherType {
	case proto.WatcherChildren:
		has = ws.child[path] || ws.persistent[path] || ws.recursive[path]
	case proto.WatcherData:
		has = ws.data[path] || ws.exist[path] || ws.persistent[path] || ws.recursive[path]
	default:
		has = ws.child[path] || ws.data[path] || ws.exist[path] || ws.persistent[path] || ws.recursive[path]
	}
	connected := w.state == StateConnected || w.state == StateConnectedRO
	w.mu.Unlock()
	if !has {
		return proto.ErrNoWatcher
	}
	if !(local && !connected) {
		err := w.do(ctx, proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: w.serverPath(path), Type: watcherType}, nil, nil)
		if err != nil && !local {
			return err
		}
	}
	w.mu.Lock()
	var child, data, pers bool
	rm := func(m map[string]bool) bool {
		if m[path] {
			delete(m, path)
			return true
		}
		return false
	}
	switch watcherType {
	case proto.WatcherChildren:
		child = rm(ws.child)
	case proto.WatcherData:
		data = rm(ws.data)
		data = rm(ws.exist) || data
	default:
		child = rm(ws.child)
		data = rm(ws.data)
		data = rm(ws.exist) || data
		pers = rm(ws.persistent)
		pers = rm(ws.recursive) || pers
	}
	w.mu.Unlock()
	for _, r := range []struct {
		ok bool
		t  proto.EventType
	}{{child, proto.EventChildWatchRemoved}, {data, proto.EventDataWatchRemoved}, {pers, proto.EventPersistentWatchRemoved}} {
		if r.ok {
			w.emit(Event{State: KeeperSyncConnected, Type: r.t, Path: path})
		}
	}
	return nil
}

// GetEphemerals implements Backend.
func (w *Wire) GetEphemerals(ctx context.Context, prefix string) ([]string, error) {
	var resp proto.GetEphemeralsResponse
	err := w.do(ctx, proto.OpGetEphemerals, &proto.GetEphemeralsRequest{PrefixPath: w.serverPath(prefix)}, &resp, nil)
	out := make([]string, len(resp.Ephemerals))
	for i, p := range resp.Ephemerals {
		out[i] = w.clientPath(p)
	}
	return out, err
}

// GetAllChildrenNumber implements Backend.
func (w *Wire) GetAllChildrenNumber(ctx context.Context, path string) (int, error) {
	var resp proto.GetAllChildrenNumberResponse
	err := w.do(ctx, proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: w.serverPath(path)}, &resp, nil)
	return int(resp.TotalNumber), err
}

// WhoAmI implements Backend.
func (w *Wire) WhoAmI(ctx context.Context) ([]proto.ClientInfo, error) {
	var resp proto.WhoAmIResponse
	err := w.do(ctx, proto.OpWhoAmI, nil, &resp, nil)
	return resp.ClientInfo, err
}

// DeleteMulti implements Backend.
func (w *Wire) DeleteMulti(ctx context.Context, paths []string) error {
	req := &proto.MultiRequest{}
	for _, p := range paths {
		req.Ops = append(req.Ops, proto.MultiOp{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: w.serverPath(p), Version: -1}})
	}
	var resp proto.MultiResponse
	if err := w.do(ctx, proto.OpMulti, req, &resp, nil); err != nil {
		return err
	}
	for _, r := range resp.Results {
		if r.Type == proto.OpError && r.Err != proto.ErrOK && r.Err != proto.ErrRuntimeInconsistency {
			return r.Err
		}
	}
	for _, r := range resp.Results {
		if r.Type == proto.OpError && r.Err != proto.ErrOK {
			return r.Err
		}
	}
	return nil
}
