package server

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// Read-only mode (ZooKeeper's readonlymode.enabled, ZOOKEEPER-784).
//
// A member that no longer has a quorum — no leader known, or none heard
// from, for an election timeout and then a grace period of two more (two
// seconds with the default Raft timing, ZooKeeper's own grace) — first
// closes its established client connections, as a ZooKeeper follower that
// loses its leader shuts its connections down: their sessions live in the
// log, the leader on the majority side keeps or expires them, and their
// clients reconnect to a member that has a quorum. While it has no quorum
// it refuses new clients outright, unless read-only mode is on: then it
// becomes a read-only server (ReadOnlyZooKeeperServer):
//
//   - it accepts only clients whose ConnectRequest has readOnly=true, and
//     answers them with readOnly=true (the client state is
//     ConnectedReadOnly); others are closed (NOT_READ_ONLY_CLIENT);
//   - a new session is local to the member (ZooKeeper's local sessions):
//     its id comes from this member's id space, nothing is logged, and it
//     lives only as long as its connection plus its timeout; a client
//     reconnecting with a session known to the log is refused
//     (RENEW_GLOBAL_SESSION_IN_RO_MODE);
//   - reads are served from the local state, possibly stale; writes (and
//     sync, reconfig, check, multi) are answered NOTREADONLY
//     (ReadOnlyRequestProcessor); closeSession ends the local session;
//   - isro answers "ro", srvr/stat say "Mode: read-only" and "READ-ONLY
//     mode; serving only read-only clients", mntr zk_server_state
//     read-only.
//
// When a leader is heard from again, the member leaves read-only mode and
// closes its read-only connections: clients (which keep looking for a
// read-write server in the background) reconnect and get a real session.

// readOnly is the quorum watch and the read-only mode's state. Its zero
// value is ready: on = false, no local sessions.
type readOnly struct {
	active atomic.Bool  // serving read-only clients
	lost   atomic.Bool  // the member has no quorum (past the grace period)
	since  atomic.Int64 // unix nanos since when no leader was heard from; 0 when one was
	mu     sync.Mutex
	local  map[int64]*localSession // sessions created in read-only mode
}

// localSession is a session created while read-only: never logged.
type localSession struct {
	passwd   []byte
	timeout  time.Duration
	conn     *conn
	lastSeen time.Time
}

// readOnlyActive reports whether this member serves read-only clients.
func (s *Server) readOnlyActive() bool { return s.ro.active.Load() }

// readOnlyGrace is how long a member waits, once no leader is heard from
// for an election timeout, before it decides it lost the quorum:
// ZooKeeper waits max(2s, tickTime) after it starts looking.
func (s *Server) readOnlyGrace() time.Duration { return 2 * s.electionTimeout() }

// hasQuorum is the member's view: it leads, or it heard from the leader it
// knows within an election timeout.
func (s *Server) hasQuorum() bool {
	if s.node.IsLeader() {
		return true
	}
	lead := s.node.Leader()
	return lead != 0 && s.ens.heardWithin(lead, s.electionTimeout())
}

// watchQuorum runs on every tick of the ensemble loop.
func (s *Server) watchQuorum(now time.Time) {
	if s.node.SingleVoter() || s.ens.removed.Load() || s.ens.gated() || s.mode() == "joining" {
		return
	}
	if s.hasQuorum() {
		s.ro.since.Store(0)
		if s.ro.lost.Swap(false) {
			s.log.Info("quorum regained: serving clients again")
		}
		if s.ro.active.Swap(false) {
			s.leaveReadOnly()
		}
		return
	}
	since := s.ro.since.Load()
	if since == 0 {
		s.ro.since.Store(now.UnixNano())
		return
	}
	if now.Sub(time.Unix(0, since)) < s.readOnlyGrace() {
		return
	}
	if !s.ro.lost.Swap(true) {
		s.log.Warn("lost the quorum: closing client connections so that their clients move to a member that has one",
			"leader", s.node.Leader(), "read_only_mode", s.cfg.ReadOnlyMode)
	}
	// Sessions established before (or whose handshake raced the loss)
	// are the log's: they go elsewhere.
	for _, c := range s.connList() {
		if c.sessionID() != 0 && !c.ro.Load() {
			c.log.Info("closing connection: this member has no quorum")
			c.close()
		}
	}
	if s.cfg.ReadOnlyMode && !s.ro.active.Swap(true) {
		s.log.Warn("read-only mode: serving read-only clients from the local state until the quorum is back")
	}
	if s.ro.active.Load() {
		s.pruneLocalSessions(now)
	}
}

// leaveReadOnly closes the read-only connections and forgets the local
// sessions: their clients look for a read-write server.
func (s *Server) leaveReadOnly() {
	s.ro.mu.Lock()
	n := len(s.ro.local)
	s.ro.local = nil
	s.ro.mu.Unlock()
	closed := 0
	for _, c := range s.connList() {
		if c.ro.Load() {
			c.close()
			closed++
		}
	}
	s.log.Info("leaving read-only mode: quorum regained; read-only connections closed", "connections", closed, "local_sessions", n)
}

// pruneLocalSessions forgets local sessions whose connection has been
// gone for longer than their timeout.
func (s *Server) pruneLocalSessions(now time.Time) {
	s.ro.mu.Lock()
	defer s.ro.mu.Unlock()
	for id, ls := range s.ro.local {
		if ls.conn != nil && !ls.conn.dead() {
			ls.lastSeen = now
			continue
		}
		if now.Sub(ls.lastSeen) > ls.timeout {
			delete(s.ro.local, id)
		}
	}
}

// localSessions is zk_local_sessions.
func (s *Server) localSessions() int {
	s.ro.mu.Lock()
	defer s.ro.mu.Unlock()
	return len(s.ro.local)
}

// refuseWithoutQuorum closes a new client connection on a member that has
// no quorum and does not serve read-only clients (ZooKeeper's looking
// server does not serve at all), so the client tries another member at
// once. It reports whether the connection was refused.
func (c *conn) refuseWithoutQuorum() bool {
	s := c.s
	if s.ens != nil && s.ens.on && s.ens.gated() {
		// An empty member not yet admitted has nothing to serve
		// (admission.go).
		c.log.Info("refusing session: this member has not been admitted into the ensemble", "why", s.ens.adm.why())
		c.close()
		return true
	}
	if s.ens == nil || !s.ens.on || !s.ro.lost.Load() || s.ro.active.Load() {
		return false
	}
	c.log.Info("refusing session: this member has no quorum")
	c.close()
	return true
}

// readOnlySession is the handshake of a read-only member
// (ZooKeeperServer.processConnectRequest on a ReadOnlyZooKeeperServer),
// after the zxid check and timeout negotiation. It reports whether the
// connection goes on serving requests.
func (c *conn) readOnlySession(req *proto.ConnectRequest, timeout int32) bool {
	s := c.s
	if !req.ReadOnly || c.legacy {
		c.log.Info("Refusing session request for not-read-only client (this member is read-only)")
		c.close()
		return false
	}
	c.ro.Store(true)
	if !s.ro.active.Load() {
		// Left read-only mode meanwhile (leaveReadOnly may not have
		// seen this connection): the client reconnects.
		c.close()
		return false
	}
	id, passwd := req.SessionId, req.Passwd
	s.ro.mu.Lock()
	if id == 0 {
		id, passwd = s.newSessionID(), randomPasswd()
		if s.ro.local == nil {
			s.ro.local = map[int64]*localSession{}
		}
		s.ro.local[id] = &localSession{passwd: passwd, timeout: time.Duration(timeout) * time.Millisecond, conn: c, lastSeen: time.Now()}
	} else {
		ls := s.ro.local[id]
		if ls == nil {
			s.ro.mu.Unlock()
			s.mu.RLock()
			_, global := s.state.Session(id)
			s.mu.RUnlock()
			if global {
				c.log.Info("Refusing global session reconnection in RO mode", "session", hexID(id))
				c.close()
				return false
			}
			c.log.Info("invalid session, answering expired", "session", hexID(id))
			c.sendConnectResponse(0, 0, make([]byte, 16))
			c.closeAfterFlush()
			return false
		}
		if !bytes.Equal(ls.passwd, passwd) {
			s.ro.mu.Unlock()
			c.log.Info("invalid session password, answering expired", "session", hexID(id))
			c.sendConnectResponse(0, 0, make([]byte, 16))
			c.closeAfterFlush()
			return false
		}
		ls.conn, ls.lastSeen = c, time.Now()
		ls.timeout = time.Duration(timeout) * time.Millisecond
	}
	s.ro.mu.Unlock()
	c.sid.Store(id)
	c.passwd = passwd
	c.log = c.log.With("session", hexID(id))
	s.attach(c, id)
	c.log.Info("read-only session established (local to this member)", "timeout_ms", timeout)
	c.sendConnectResponse(timeout, id, passwd)
	return true
}

// readOnlyWrite answers a write on a read-only connection
// (ReadOnlyRequestProcessor): NOTREADONLY, or, for closeSession, the end
// of the local session. It reports whether the reader goes on.
func (c *conn) readOnlyWrite(xid int32, op proto.OpCode) bool {
	s := c.s
	r := c.newRequest(xid, op)
	c.enqueue(r)
	if !c.waitPrior() {
		return false
	}
	if op == proto.OpCloseSession {
		s.ro.mu.Lock()
		delete(s.ro.local, c.sessionID())
		s.ro.mu.Unlock()
		c.complete(r, encodeReply(xid, c.lastZxid(), proto.ErrOK, nil), true)
		return false
	}
	c.complete(r, encodeReply(xid, c.lastZxid(), proto.ErrNotReadOnly, nil), false)
	return true
}
