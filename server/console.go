package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/paddockhq/paddock/console"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine"
)

// The web console (package console) on the admin server: /console/, with
// / redirecting to it. This file adapts the Server to console.Backend and
// gives in-process callers (the console) the client write path: Submit
// proposes a write as a log entry, with the caller's ids, exactly as a
// client connection's write is, and waits for its result.

// ErrNotWrite is returned by Submit for an opcode that is not a client
// write.
var ErrNotWrite = errors.New("server: not a write opcode")

// OpenSession creates a session through the log (as a client's handshake
// does) and returns its id. A timeout of 0 asks for MaxSessionTimeout; it
// is clamped to [MinSessionTimeout, MaxSessionTimeout]. The session lives
// while Submit is called within its timeout, and expires like any other.
func (s *Server) OpenSession(ctx context.Context, timeout time.Duration) (int64, error) {
	if timeout <= 0 || timeout > s.cfg.MaxSessionTimeout {
		timeout = s.cfg.MaxSessionTimeout
	}
	timeout = max(timeout, s.cfg.MinSessionTimeout)
	body := proto.Marshal(&statemachine.SessionBody{Timeout: int32(timeout.Milliseconds()), Passwd: randomPasswd()})
	for attempt := 0; attempt < 10; attempt++ {
		id := s.newSessionID()
		res, err := s.submitEntry(ctx, &statemachine.Entry{Op: proto.OpCreateSession, Session: id, Body: body})
		if err != nil {
			return 0, err
		}
		switch res.Err {
		case proto.ErrOK:
			return id, nil
		case proto.ErrNodeExists:
			continue
		default:
			return 0, fmt.Errorf("server: session not created: %v", res.Err)
		}
	}
	return 0, errors.New("server: no free session id")
}

// Submit proposes a client write (create, create2, createContainer,
// createTTL, delete, setData, setACL, check, multi) for session with the
// given authenticated ids, and waits until it is applied. resp, zxid and
// code are what a client would receive; err is set when the outcome is
// unknown (ctx done, server closing, no leader).
func (s *Server) Submit(ctx context.Context, session int64, op proto.OpCode, req proto.Record, auth []proto.Id) (resp proto.Record, zxid int64, code proto.ErrCode, err error) {
	switch op {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL,
		proto.OpDelete, proto.OpSetData, proto.OpSetACL, proto.OpCheck, proto.OpMulti:
	default:
		return nil, 0, 0, ErrNotWrite
	}
	s.tracker.touch(session)
	e := &statemachine.Entry{Op: op, Session: session, Auth: javaSetOrder(auth), Body: proto.Marshal(req)}
	res, err := s.submitEntry(ctx, e)
	if err != nil {
		return nil, 0, 0, err
	}
	return res.Resp, res.Zxid, res.Err, nil
}

// submitEntry proposes e and waits for its result. The waiting request
// has no connection (c is nil): finish stores the result, as for a
// handshake.
func (s *Server) submitEntry(ctx context.Context, e *statemachine.Entry) (statemachine.Result, error) {
	if err := s.ctx.Err(); err != nil {
		return statemachine.Result{}, errors.New("server: closing")
	}
	r := &request{op: e.Op, handshake: true, done: make(chan struct{}), start: time.Now()}
	e.Seq = s.addPending(r)
	if err := s.propose(e); err != nil {
		s.dropPending(e.Seq)
		return statemachine.Result{}, err
	}
	select {
	case <-r.done:
		return r.result, nil
	case <-ctx.Done():
		s.dropPending(e.Seq)
		return statemachine.Result{}, ctx.Err()
	case <-s.ctx.Done():
		s.dropPending(e.Seq)
		return statemachine.Result{}, errors.New("server: closing")
	}
}

// mountConsole adds the console to the admin server's mux.
func (s *Server) mountConsole(mux *http.ServeMux) {
	b := &consoleBackend{s: s}
	h := console.New(b, console.Options{Writes: s.cfg.ConsoleWrites, Logger: s.log.With("component", "console")})
	b.h = h
	mux.Handle("/console/", h)
	mux.Handle("/{$}", http.RedirectHandler("/console/", http.StatusFound))
	go b.trackLeaders()
}

// consoleBackend is console.Backend over a Server.
type consoleBackend struct {
	s *Server
	h *console.Handler

	lmu     sync.Mutex
	leaders []console.LeaderChange // newest last
}

const maxLeaderChanges = 50

// trackLeaders records the leader changes this member sees, until the
// server closes.
func (b *consoleBackend) trackLeaders() {
	s := b.s
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last uint64
	first := true
	for {
		lead := s.node.Leader()
		if first || lead != last {
			b.lmu.Lock()
			b.leaders = append(b.leaders, console.LeaderChange{At: time.Now().UTC(), Leader: lead, Term: s.node.Term()})
			if len(b.leaders) > maxLeaderChanges {
				b.leaders = b.leaders[len(b.leaders)-maxLeaderChanges:]
			}
			b.lmu.Unlock()
			last, first = lead, false
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.node.Done():
			return
		case <-t.C:
		}
	}
}

func (b *consoleBackend) Read(auth []proto.Id, op proto.OpCode, req proto.Record) (proto.Record, int64, proto.ErrCode) {
	s := b.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	resp, code := s.state.Read(0, auth, op, req)
	return resp, s.state.LastZxid(), code
}

func (b *consoleBackend) OpenSession(ctx context.Context, timeout time.Duration) (int64, error) {
	return b.s.OpenSession(ctx, timeout)
}

func (b *consoleBackend) Submit(ctx context.Context, session int64, op proto.OpCode, req proto.Record, auth []proto.Id) (proto.Record, int64, proto.ErrCode, error) {
	return b.s.Submit(ctx, session, op, req, auth)
}

// Identify maps an HTTP caller to ids as a client connection would hold
// them: ip:<peer> always, x509:<subject> for a verified client
// certificate (X509AuthenticationProvider, super for --x509-super-user),
// digest:<user>:<hash> for basic credentials (the digest provider's
// addauth), super when they match --super-digest.
func (b *consoleBackend) Identify(remoteAddr string, peer *x509.Certificate, user, password string, hasCreds bool) ([]proto.Id, error) {
	s := b.s
	var ids []proto.Id
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil {
			if id := peerIP(&net.TCPAddr{IP: ip}); id != "" {
				ids = append(ids, proto.Id{Scheme: "ip", Id: id})
			}
		}
	}
	if peer != nil {
		ids = append(ids, s.x509IDs(peer)...)
	}
	if hasCreds {
		if user == "" || strings.Contains(user, ":") {
			return nil, errors.New("bad credentials: the user name must be non-empty and must not contain ':'")
		}
		id := digestID(user + ":" + password)
		if s.cfg.SuperDigest != "" && id == s.cfg.SuperDigest {
			ids = append(ids, proto.Id{Scheme: "super", Id: ""})
		}
		ids = append(ids, proto.Id{Scheme: "digest", Id: id})
	}
	if sec := s.sec; sec != nil && sec.enforce != nil {
		if !slices.ContainsFunc(ids, func(id proto.Id) bool { return sec.enforce[id.Scheme] }) {
			return nil, errors.New("this server enforces authentication; sign in (digest user and password)")
		}
	}
	return javaSetOrder(ids), nil
}

func (b *consoleBackend) Overview() console.Overview {
	s := b.s
	s.mu.RLock()
	zxid := s.state.LastZxid()
	nodes := s.state.NodeCount()
	sessions := len(s.state.Sessions())
	s.mu.RUnlock()
	ready, why := s.Ready()
	return console.Overview{
		ServerID: s.cfg.ServerID, Mode: s.Mode(), Version: versionString(),
		ZxidHex: hexID(zxid), Zxid: zxid, Nodes: nodes, Sessions: sessions,
		Connections: len(s.connList()), Watches: s.watches.Count(),
		Ready: ready, NotReady: why, Uptime: time.Since(s.started).Round(time.Second).String(),
		ExtendedTypes: s.cfg.ExtendedTypes,
	}
}

func (b *consoleBackend) Sessions() []console.Session {
	s := b.s
	s.mu.RLock()
	infos := s.state.Sessions()
	out := make([]console.Session, 0, len(infos))
	for _, si := range infos {
		out = append(out, console.Session{ID: hexID(si.ID), TimeoutMs: si.Timeout, Ephemerals: s.state.Ephemerals(si.ID), ExpiresInMs: -1})
	}
	s.mu.RUnlock()
	watches := s.watches.BySession()
	now := time.Now()
	s.tracker.mu.Lock()
	for i, si := range infos {
		if ts, ok := s.tracker.sessions[si.ID]; ok && s.node.IsLeader() {
			out[i].ExpiresInMs = max(ts.deadline.Sub(now).Milliseconds(), 0)
		}
	}
	s.tracker.mu.Unlock()
	for i, si := range infos {
		if c := s.connOf(si.ID); c != nil {
			out[i].Connected = c.remote
		}
		out[i].Watches = len(watches[si.ID])
	}
	return out
}

func (b *consoleBackend) Watches() console.Watches {
	s := b.s
	var w console.Watches
	byPath := s.watches.ByPath()
	for p, ids := range byPath {
		pw := console.PathWatches{Path: p}
		for _, id := range ids {
			pw.Sessions = append(pw.Sessions, hexID(id))
		}
		w.ByPath = append(w.ByPath, pw)
	}
	sort.Slice(w.ByPath, func(i, j int) bool { return w.ByPath[i].Path < w.ByPath[j].Path })
	bySession := s.watches.BySession()
	for id, paths := range bySession {
		w.BySession = append(w.BySession, console.SessionWatches{Session: hexID(id), Paths: paths})
		w.Total += len(paths)
	}
	sort.Slice(w.BySession, func(i, j int) bool { return w.BySession[i].Session < w.BySession[j].Session })
	if w.ByPath == nil {
		w.ByPath = []console.PathWatches{}
	}
	if w.BySession == nil {
		w.BySession = []console.SessionWatches{}
	}
	return w
}

func (b *consoleBackend) Ensemble() console.Ensemble {
	s := b.s
	mode := s.Mode()
	e := console.Ensemble{
		Self: s.cfg.ServerID, Mode: mode, Standalone: mode == "standalone",
		Leader: s.node.Leader(), Term: s.node.Term(),
		Applied: s.node.AppliedIndex(), Committed: s.node.CommittedIndex(),
	}
	s.mu.RLock()
	e.ConfigText, _ = s.state.Config()
	s.mu.RUnlock()

	known := s.ens.current()
	if known == nil {
		known = s.ens.static
	}
	voters, learners := s.node.Membership()
	ids := map[uint64]bool{s.cfg.ServerID: true}
	for id := range known {
		ids[id] = true
	}
	for _, id := range voters {
		ids[id] = true
	}
	for _, id := range learners {
		ids[id] = true
	}
	var progress map[uint64]string
	var match map[uint64]uint64
	var active map[uint64]bool
	var last uint64
	if s.node.IsLeader() {
		st := s.node.Status()
		e.Authoritative = true
		progress, match, active = map[uint64]string{}, map[uint64]uint64{}, map[uint64]bool{}
		for id, pr := range st.Progress {
			progress[id] = strings.TrimPrefix(pr.State.String(), "State")
			match[id] = pr.Match
			active[id] = pr.RecentActive || id == s.cfg.ServerID
		}
		last = match[s.cfg.ServerID]
	}
	sorted := make([]uint64, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	for _, id := range sorted {
		m := console.Member{ID: id, Self: id == s.cfg.ServerID, Role: "participant", Health: "unknown"}
		if km, ok := known[id]; ok {
			m.Role, m.PeerAddr, m.ClientAddr = km.Role(), km.PeerAddr(), km.ClientAddr
		} else if slices.Contains(learners, id) {
			m.Role = "observer"
		}
		if m.Self && m.ClientAddr == "" {
			m.ClientAddr = s.Addr().String()
		}
		switch {
		case e.Standalone:
			m.State = "standalone"
		case m.Role == "observer":
			m.State = "observer"
		case id == e.Leader:
			m.State = "leader"
		case slices.Contains(voters, id):
			m.State = "follower"
		default:
			m.State = "not a voter"
		}
		switch {
		case progress != nil:
			if _, ok := match[id]; ok {
				m.Progress = progress[id]
				// A new leader knows nothing of a member that has not
				// answered yet (match 0): its lag is unknown, not the log.
				if active[id] || match[id] > 0 {
					m.Match, m.MatchOK = match[id], true
					m.Lag = last - min(last, match[id])
				}
				switch {
				case !active[id]:
					m.Health = "unreachable"
				case m.Lag > 1000:
					m.Health = "lagging"
				default:
					m.Health = "ok"
				}
			}
		case m.Self:
			m.Match, m.MatchOK = e.Applied, true
			m.Lag = e.Committed - min(e.Committed, e.Applied)
			if ok, _ := s.Ready(); ok {
				m.Health = "ok"
			} else {
				m.Health = "not ready"
			}
		case id == e.Leader:
			m.Health = "ok" // this member hears from it
		}
		e.Members = append(e.Members, m)
	}
	b.lmu.Lock()
	for i := len(b.leaders) - 1; i >= 0; i-- {
		e.LeaderChanges = append(e.LeaderChanges, b.leaders[i])
	}
	b.lmu.Unlock()
	if e.LeaderChanges == nil {
		e.LeaderChanges = []console.LeaderChange{}
	}
	return e
}
