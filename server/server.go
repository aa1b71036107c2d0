// Package server is Paddock's ZooKeeper front end: the client listener,
// the connections and their sessions, the per-session request pipeline,
// watches, and the four-letter words.
//
// A request travels like this. A connection's reader goroutine reads
// length-prefixed frames in order. A write (create, delete, setData, setACL,
// check, multi, reconfig, sync, closeSession) becomes a statemachine.Entry
// and is proposed to the replication node at once, so writes of many
// sessions share a batch and an fsync. When the log hands the entry back
// (apply), the state is changed under the server's write lock, watch events
// are queued on the watching connections, and the reply is queued on the
// requesting connection. A read waits until every earlier request of its
// session has completed, then runs against the local state under the read
// lock. Replies leave a connection strictly in request order; watch events
// are queued the moment the change is applied, so a client always sees an
// event before any reply that reflects the change (ZooKeeper's ordering
// guarantee).
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/replication"
	"github.com/paddockhq/paddock/statemachine"
)

// Version is Paddock's version, reported by `paddock version` and the
// four-letter words. The build may override it with -ldflags -X.
var Version = "0.1.0-dev"

// ZooKeeperVersion is the Apache ZooKeeper release whose client protocol
// Paddock speaks. Four-letter words report "<ZooKeeperVersion>-paddock-<Version>"
// because tools (Kazoo's server_version, zkServer.sh) parse the leading
// digits of ZooKeeper's version string.
const ZooKeeperVersion = "3.9.5"

// DefaultFourLetterWhitelist is ZooKeeper's default 4lw.commands.whitelist:
// only srvr, which `zkServer.sh status` needs.
var DefaultFourLetterWhitelist = []string{"srvr"}

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	// ServerID is this server's id (ZooKeeper's myid), 1..254; default 1.
	// It is the top byte of the session ids this server hands out.
	ServerID uint64
	// ListenAddr is the client address; default ":2181".
	ListenAddr string
	// DataDir holds the replicated log and snapshots; default
	// "./paddock-data".
	DataDir string
	// TickTime is ZooKeeper's tickTime, the unit of session timeouts;
	// default 2s.
	TickTime time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the negotiated session
	// timeout; defaults 2 and 20 ticks, as in ZooKeeper.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxBuffer is jute.maxbuffer: the largest frame accepted; default
	// proto.DefaultMaxBuffer (0xfffff).
	MaxBuffer int
	// FourLetterWhitelist lists the enabled four-letter words; "*" enables
	// all. Nil means DefaultFourLetterWhitelist (ZooKeeper's default).
	FourLetterWhitelist []string
	// SuperDigest is DigestAuthenticationProvider.superDigest,
	// "super:<base64 sha1>": a client authenticating with the matching
	// digest credentials gets the super id and bypasses ACLs.
	SuperDigest string
	// SnapshotEvery is the number of applied entries between snapshots;
	// 0 leaves the replication default.
	SnapshotEvery uint64
	// ExtendedTypes enables TTL nodes (zookeeper.extendedTypesEnabled).
	ExtendedTypes bool
	// ContainerCheckInterval is how often container and TTL nodes are
	// collected (znode.container.checkIntervalMs); default 60s.
	ContainerCheckInterval time.Duration
	// ContainerMaxPerMinute bounds collections per minute
	// (znode.container.maxPerMinute); default 10000.
	ContainerMaxPerMinute int
	// Logger receives the server's logs; default slog.Default().
	Logger *slog.Logger
	// TerminationMessagePath is a file that, if it exists, receives the
	// reason this member refuses to take part (admission.go): Kubernetes'
	// terminationMessagePath (/dev/termination-log). Empty: none.
	TerminationMessagePath string
	// SecurityConfig holds TLS, x509, SASL and auth enforcement
	// (security.go, docs/SECURITY.md).
	SecurityConfig
	// EnsembleConfig makes this server a member of a replicated ensemble
	// (ensemble.go); its zero value is a standalone server.
	EnsembleConfig
	// OpsConfig holds the admin server, connection limits and quota
	// enforcement (ops.go, admin.go).
	OpsConfig
}

func (c *Config) setDefaults() {
	if c.ServerID == 0 {
		c.ServerID = 1
	}
	if c.ListenAddr == "" {
		c.ListenAddr = ":2181"
	}
	if c.DataDir == "" {
		c.DataDir = "./paddock-data"
	}
	if c.TickTime <= 0 {
		c.TickTime = 2 * time.Second
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 2 * c.TickTime
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 20 * c.TickTime
	}
	if c.MaxSessionTimeout < c.MinSessionTimeout {
		c.MaxSessionTimeout = c.MinSessionTimeout
	}
	if c.MaxBuffer <= 0 {
		c.MaxBuffer = proto.DefaultMaxBuffer
	}
	if c.FourLetterWhitelist == nil {
		c.FourLetterWhitelist = DefaultFourLetterWhitelist
	}
	if c.ContainerCheckInterval <= 0 {
		c.ContainerCheckInterval = time.Minute
	}
	if c.ContainerMaxPerMinute <= 0 {
		c.ContainerMaxPerMinute = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is one Paddock server: a ZooKeeper client port in front of a
// replicated state machine. A standalone server is a one-voter Raft group.
type Server struct {
	cfg     Config
	log     *slog.Logger
	started time.Time

	// mu guards state: Apply runs under the write lock, reads under the
	// read lock. Watch triggers and replies to writes are queued while the
	// write lock is held, so they are ordered exactly as the log.
	mu    sync.RWMutex
	state *statemachine.State

	node    *replication.Node
	watches *WatchManager
	tracker *sessionTracker
	ln      net.Listener
	sec     *security // TLS listener, SASL users, auth enforcement
	ens     *ensemble // peers, membership, identity (ensemble.go)
	ops     *ops      // limits, throttle, metrics, admin server (ops.go)
	ro      readOnly  // quorum watch and read-only mode (readonly.go)

	// pending maps the Seq of an entry this server proposed to the request
	// waiting for it.
	pmu     sync.Mutex
	pending map[uint64]*request
	seq     atomic.Uint64

	nextSession atomic.Int64

	cmu       sync.Mutex
	conns     map[*conn]struct{}
	bySession map[int64]*conn

	stats serverStats

	applyObs ApplyObserver // in-process observer of applied entries (etcd.go); guarded by mu

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens the data directory (replaying the log into the state), starts
// the replication node and binds the client port. It returns once the
// server could serve; call Serve to accept clients.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.ServerID > 254 {
		return nil, fmt.Errorf("server: server id %d out of range 1..254", cfg.ServerID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		started:   time.Now(),
		state:     statemachine.New(statemachine.Options{ExtendedTypes: cfg.ExtendedTypes, ReconfigEnabled: cfg.ReconfigEnabled, EnforceQuota: cfg.EnforceQuota, SkipACL: cfg.SkipACL}),
		watches:   NewWatchManager(),
		tracker:   newSessionTracker(),
		pending:   map[uint64]*request{},
		conns:     map[*conn]struct{}{},
		bySession: map[int64]*conn{},
		ctx:       ctx,
		cancel:    cancel,
	}
	s.stats.reset()
	s.ops = newOps(s)
	// Entry sequence numbers must not repeat across restarts, or a replayed
	// entry could be mistaken for a new request: start from the clock.
	s.seq.Store(uint64(time.Now().UnixNano()))
	s.nextSession.Store(initialSessionID(cfg.ServerID, time.Now().UnixMilli()))

	// openNode (ensemble.go) checks the data directory's identity stamp
	// and opens a one-voter group, or an ensemble member with its peer
	// transport.
	node, err := s.openNode()
	if err != nil {
		cancel()
		return nil, err
	}
	s.node = node

	// After a restart every session in the state gets a fresh timeout, as
	// ZooKeeper's SessionTrackerImpl does on load, so a client that
	// reconnects in time keeps its session and ephemerals.
	s.mu.RLock()
	for _, si := range s.state.Sessions() {
		s.tracker.add(si.ID, time.Duration(si.Timeout)*time.Millisecond)
	}
	s.mu.RUnlock()

	adminTLS, err := s.adminTLS()
	if err != nil {
		node.Close()
		cancel()
		return nil, fmt.Errorf("server: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		node.Close()
		cancel()
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	s.ln = ln
	if s.sec, err = s.startSecurity(); err != nil {
		ln.Close()
		node.Close()
		cancel()
		return nil, fmt.Errorf("server: %w", err)
	}
	// The session tracker and container GC run from here, not from Serve,
	// so Close can always wait for them.
	if err := s.startAdmin(adminTLS); err != nil {
		// As ZooKeeper does, a server whose admin port is taken still
		// serves clients; the operator is told plainly.
		s.log.Error("admin server not started", "addr", cfg.AdminAddr, "err", err)
	}
	s.wg.Add(2)
	go s.expiryLoop()
	go s.gcLoop()
	s.startEnsemble()
	return s, nil
}

// initialSessionID is SessionTrackerImpl.initializeNextSessionId:
// (serverId << 56) | ((now << 24) >>> 8), never Long.MIN_VALUE (the
// container marker).
func initialSessionID(serverID uint64, nowMillis int64) int64 {
	id := int64(uint64(nowMillis<<24)>>8) | int64(serverID<<56)
	if id == proto.ContainerOwner {
		id++
	}
	return id
}

// newSessionID hands out the next session id.
func (s *Server) newSessionID() int64 {
	for {
		id := s.nextSession.Add(1) - 1
		if id != proto.ContainerOwner && id != 0 {
			return id
		}
	}
}

// Addr returns the address the client port is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Mode is the role reported by srvr/mntr: "standalone" for a one-voter
// group, else leader or follower.
func (s *Server) Mode() string {
	return s.mode()
}

// Serve accepts clients until ctx is cancelled or Close is called (the
// session expiry and container GC loops already run from New). It returns
// nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.ctx.Done():
		case <-s.node.Done():
			s.log.Error("replication node stopped", "err", s.node.Err())
			s.Close()
		}
	}()
	s.serveSecure()
	return s.acceptLoop(s.ln)
}

// acceptLoop accepts clients on ln (the client port or the secure one)
// until the server closes.
func (s *Server) acceptLoop(ln net.Listener) error {
	var tempDelay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if tempDelay == 0 {
					tempDelay = 5 * time.Millisecond
				} else if tempDelay *= 2; tempDelay > time.Second {
					tempDelay = time.Second
				}
				time.Sleep(tempDelay)
				continue
			}
			s.Close()
			return err
		}
		tempDelay = 0
		if !s.ops.admit(nc) {
			nc.Close()
			continue
		}
		c := newConn(s, nc)
		s.cmu.Lock()
		if s.ctx.Err() != nil {
			s.cmu.Unlock()
			nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.cmu.Unlock()
		go c.serve()
	}
}

// Close stops accepting, closes every connection and the replication node.
// Sessions are not closed: they live in the log, and their clients can
// reconnect to this server after a restart (or to another member).
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.ln.Close()
		s.closeSecurity()
		s.closeAdmin()
		s.cmu.Lock()
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.cmu.Unlock()
		for _, c := range conns {
			c.close()
		}
		s.wg.Wait()
		s.closeErr = s.node.Close()
		s.closeEnsemble()
	})
	return s.closeErr
}

// fsm adapts the Server to replication.StateMachine without exporting the
// methods on Server.
type fsm struct{ s *Server }

// Apply applies one committed entry: the state changes, watches fire and
// the waiting request (if this server proposed the entry) gets its reply,
// all under the write lock.
func (f fsm) Apply(index, term uint64, data []byte) {
	f.s.apply(index, data)
}

// Snapshot writes the state under the read lock.
func (f fsm) Snapshot(w io.Writer) error {
	f.s.mu.RLock()
	defer f.s.mu.RUnlock()
	f.s.ops.snapshotTaken(f.s.state.LastZxid())
	return f.s.state.Snapshot(w)
}

// CaptureSnapshot freezes the state under the write lock (no read runs
// while the copy-on-write view is taken) and returns the writer the
// replication node runs off its loop, so apply and reads go on while the
// snapshot is written (replication.SnapshotCapturer).
func (f fsm) CaptureSnapshot() func(io.Writer) error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	zxid := f.s.state.LastZxid()
	c := f.s.state.Capture()
	return func(w io.Writer) error {
		defer func() {
			f.s.mu.Lock()
			c.Release()
			f.s.mu.Unlock()
		}()
		if err := c.Write(w); err != nil {
			return err
		}
		// lsnp names a snapshot once it is written, as ZooKeeper's does.
		f.s.ops.snapshotTaken(zxid)
		return nil
	}
}

// SnapshotCost spaces snapshots at least half a tree apart (see
// replication.SnapshotSizer): serialising N nodes pauses apply for O(N), so
// this keeps that pause below a constant per applied entry.
func (f fsm) SnapshotCost() uint64 {
	f.s.mu.RLock()
	defer f.s.mu.RUnlock()
	// etcd keyspace versions count like znodes (etcd.go).
	return uint64(f.s.state.NodeCount()/2) + uint64(f.s.state.Etcd().Versions()/2)
}

// Restore replaces the state (a snapshot from disk or from the leader).
func (f fsm) Restore(r io.Reader) error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if err := f.s.state.Restore(r); err != nil {
		return err
	}
	f.s.afterRestore()
	if f.s.applyObs != nil {
		f.s.applyObs.Restored(f.s.state)
	}
	return nil
}

func (s *Server) apply(index uint64, data []byte) {
	e, err := statemachine.DecodeEntry(data)
	if err != nil {
		s.log.Error("skipping undecodable log entry", "index", index, "err", err)
		return
	}
	s.applyEntry(index, e)
}

// applyEntry applies one decoded entry (a normal entry, or the context of
// a membership change) and answers the request waiting for it here.
func (s *Server) applyEntry(index uint64, e *statemachine.Entry) statemachine.Result {
	var req *request
	if e.Origin == s.cfg.ServerID && e.Seq != 0 {
		req = s.takePending(e.Seq)
	}
	s.mu.Lock()
	res := s.state.Apply(int64(index), e)
	s.ops.warn(res.Warnings)
	s.applyEnsembleEntry(e, &res)
	s.observeApplied(index, e, &res)
	for _, ch := range res.Changes {
		s.fire(ch, res.Zxid)
	}
	if e.Op == proto.OpCreateSession && res.Err == proto.ErrOK {
		var body statemachine.SessionBody
		if proto.Unmarshal(e.Body, &body) == nil {
			s.tracker.add(e.Session, time.Duration(body.Timeout)*time.Millisecond)
		}
	}
	if res.ClosedSession != 0 {
		s.tracker.remove(res.ClosedSession)
	}
	if req != nil {
		req.finish(&res)
	}
	s.mu.Unlock()

	// Ending a session closes the connection that holds it (expiry, or a
	// close from elsewhere), as FinalRequestProcessor does for a
	// closeSession without a connection. A client's own closeSession
	// closes its connection after the reply instead.
	if res.ClosedSession != 0 && (req == nil || req.c.sessionID() != res.ClosedSession) {
		if c := s.connOf(res.ClosedSession); c != nil {
			c.log.Info("session closed, closing its connection", "session", hexID(res.ClosedSession))
			c.close()
		}
	}
	return res
}

// fire queues the notifications for one change. Called with mu held.
func (s *Server) fire(ch statemachine.Change, zxid int64) {
	ws := s.watches.Trigger(ch.Type, ch.Path)
	if len(ws) == 0 {
		return
	}
	frame := encodeNotification(zxid, ch.Type, ch.Path)
	for _, w := range ws {
		c, ok := w.(*conn)
		// The watch is used up either way, but the event only goes to a
		// connection that may read the node (ServerCnxn.process in
		// ZooKeeper 3.8.4+/3.9.2+).
		if ok && s.state.CheckACL(ch.ACL, proto.PermRead, c.authForCheck()) == proto.ErrOK {
			c.sendFrame(frame)
		}
	}
}

func encodeNotification(zxid int64, typ proto.EventType, path string) []byte {
	e := proto.NewEncoder(make([]byte, 4, 32+len(path)))
	hdr := proto.ReplyHeader{Xid: proto.XidNotification, Zxid: zxid, Err: 0}
	hdr.Encode(e)
	ev := proto.WatcherEvent{Type: int32(typ), State: proto.StateSyncConnected, Path: path}
	ev.Encode(e)
	return finishFrame(e)
}

// finishFrame writes the length prefix into the 4 bytes reserved at the
// start of e.
func finishFrame(e *proto.Encoder) []byte {
	b := e.Bytes()
	n := len(b) - 4
	b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

// encodeReply builds a reply frame: header plus body (no body when err != 0
// or body is nil; the Java client reads a body only when err == 0).
func encodeReply(xid int32, zxid int64, err proto.ErrCode, body proto.Record) []byte {
	e := proto.NewEncoder(make([]byte, 4, 64))
	hdr := proto.ReplyHeader{Xid: xid, Zxid: zxid, Err: int32(err)}
	hdr.Encode(e)
	if err == proto.ErrOK && body != nil {
		body.Encode(e)
	}
	return finishFrame(e)
}

func (s *Server) addPending(r *request) uint64 {
	seq := s.seq.Add(1)
	s.pmu.Lock()
	s.pending[seq] = r
	s.pmu.Unlock()
	return seq
}

func (s *Server) takePending(seq uint64) *request {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	r := s.pending[seq]
	delete(s.pending, seq)
	return r
}

func (s *Server) dropPending(seq uint64) {
	s.pmu.Lock()
	delete(s.pending, seq)
	s.pmu.Unlock()
}

// propose stamps and proposes an entry. Propose only hands the entry to
// raft; completion comes through apply.
func (s *Server) propose(e *statemachine.Entry) error {
	e.Origin = s.cfg.ServerID
	if e.Time == 0 {
		e.Time = time.Now().UnixMilli()
	}
	return s.node.Propose(s.ctx, e.Encode())
}

// attach makes c the connection of session id, closing any other
// connection holding it (ZooKeeper closes it with CLIENT_RECONNECT).
func (s *Server) attach(c *conn, id int64) {
	s.cmu.Lock()
	old := s.bySession[id]
	s.bySession[id] = c
	s.cmu.Unlock()
	if old != nil && old != c {
		old.log.Info("session reconnected elsewhere, closing old connection", "session", hexID(id))
		old.close()
	}
}

func (s *Server) connOf(id int64) *conn {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.bySession[id]
}

func (s *Server) removeConn(c *conn) {
	s.cmu.Lock()
	delete(s.conns, c)
	if id := c.sessionID(); id != 0 && s.bySession[id] == c {
		delete(s.bySession, id)
	}
	s.cmu.Unlock()
}

func (s *Server) connList() []*conn {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// expiryLoop is the leader's session tracker: a session whose connection
// has not been heard from within its timeout is ended by proposing a
// closeSession entry, which deletes its ephemerals on every replica.
func (s *Server) expiryLoop() {
	defer s.wg.Done()
	tick := s.cfg.TickTime / 2
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	wasLeader := false
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if !s.node.IsLeader() {
				wasLeader = false
				continue
			}
			if !wasLeader {
				// A new leader does not know when sessions were last
				// heard from: every session starts a full timeout now.
				wasLeader = true
				s.tracker.refreshAll()
				continue
			}
			for _, id := range s.tracker.expired(now) {
				s.log.Info("expiring session", "session", hexID(id))
				e := &statemachine.Entry{Op: proto.OpCloseSession, Session: id}
				if err := s.propose(e); err != nil {
					s.log.Warn("could not propose session expiry", "session", hexID(id), "err", err)
					s.tracker.unmarkClosing(id)
				}
			}
		}
	}
}

// gcLoop is ZooKeeper's ContainerManager: on the leader, every
// ContainerCheckInterval it proposes the deletion of empty containers and
// expired TTL nodes, at most ContainerMaxPerMinute per minute. The entry
// re-checks the conditions when applied.
func (s *Server) gcLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ContainerCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if !s.node.IsLeader() {
				continue
			}
			max := int(int64(s.cfg.ContainerMaxPerMinute) * int64(s.cfg.ContainerCheckInterval) / int64(time.Minute))
			if max < 1 {
				max = 1
			}
			now := time.Now().UnixMilli()
			s.mu.RLock()
			paths := s.state.GCCandidates(now, max)
			s.mu.RUnlock()
			for _, p := range paths {
				e := &statemachine.Entry{Op: proto.OpDeleteContainer, Time: now, Body: []byte(p)}
				if err := s.propose(e); err != nil {
					s.log.Warn("could not propose container deletion", "path", p, "err", err)
					break
				}
			}
		}
	}
}

// randomPasswd returns a fresh 16-byte session password. ZooKeeper derives
// it from the session id and a server secret; clients treat it as opaque,
// and Paddock replicates it in the createSession entry instead.
func randomPasswd() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func hexID(id int64) string { return fmt.Sprintf("0x%x", uint64(id)) }

// whitelisted reports whether a four-letter word may run.
func (s *Server) whitelisted(cmd string) bool {
	// ZooKeeper always allows isro when readonlymode.enabled (its
	// clients ask it to find a read-write server).
	if cmd == "isro" && s.cfg.ReadOnlyMode {
		return true
	}
	for _, w := range s.cfg.FourLetterWhitelist {
		w = strings.TrimSpace(w)
		if w == "*" || w == cmd {
			return true
		}
	}
	return false
}
