package server

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/paddockhq/paddock/statemachine"
)

// Hooks for in-process front ends that are not ZooKeeper connections, such
// as the etcd v3 API (package etcdapi): submit an entry and wait for its
// result, read the state under the read lock, take a linearizable read
// barrier, and observe every applied entry.

// ApplyObserver sees every entry this server applies, in log order, under
// the server's write lock (so it must not block: record and signal). Restored
// is called, under the same lock, with the state after it was replaced by
// a snapshot.
type ApplyObserver interface {
	Applied(index uint64, e *statemachine.Entry, res *statemachine.Result)
	Restored(st *statemachine.State)
}

// SetApplyObserver installs o (nil removes it). o.Restored is called
// first, with the current state, under the same lock, so o starts exactly
// where the entries it will see continue.
func (s *Server) SetApplyObserver(o ApplyObserver) {
	s.mu.Lock()
	s.applyObs = o
	if o != nil {
		o.Restored(s.state)
	}
	s.mu.Unlock()
}

// observeApplied is called by applyEntry with mu held.
func (s *Server) observeApplied(index uint64, e *statemachine.Entry, res *statemachine.Result) {
	if s.applyObs != nil {
		s.applyObs.Applied(index, e, res)
	}
}

// SubmitEntry proposes an entry (stamped with this server's Origin and a
// fresh Seq) and waits until it is applied, returning its result. err is
// set when the outcome is unknown: ctx done, server closing, no leader.
// Callers should bound ctx: a proposal lost in a leader change never
// completes.
func (s *Server) SubmitEntry(ctx context.Context, e *statemachine.Entry) (statemachine.Result, error) {
	return s.submitEntry(ctx, e)
}

// ReadState runs f with the state under the read lock.
func (s *Server) ReadState(f func(st *statemachine.State)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f(s.state)
}

// ErrNoLeader is returned when no leader answered a barrier in time.
var ErrNoLeader = errors.New("server: no leader")

// Barrier returns once this server has applied every entry committed
// before Barrier was called (Raft ReadIndex: the leader confirms its
// leadership with a quorum; no log entry is written). A read served after
// it is linearizable.
func (s *Server) Barrier(ctx context.Context) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*s.electionTimeout())
		idx, err := s.node.ReadIndex(rctx)
		if err == nil {
			err = s.node.WaitApplied(rctx, idx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.ctx.Err() != nil {
			return errors.New("server: closing")
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// RaftState is this member's view of the replication group.
type RaftState struct {
	ID, Leader, Term, Applied, Committed uint64
	IsLeader                             bool
	Standalone                           bool
}

// Raft returns this member's view of the replication group.
func (s *Server) Raft() RaftState {
	return RaftState{
		ID: s.cfg.ServerID, Leader: s.node.Leader(), Term: s.node.Term(),
		Applied: s.node.AppliedIndex(), Committed: s.node.CommittedIndex(),
		IsLeader: s.node.IsLeader(), Standalone: s.node.SingleVoter() && !s.ens.on,
	}
}

// MemberInfo describes one member of the ensemble.
type MemberInfo struct {
	ID         uint64
	PeerAddr   string // Raft peer address, "" for a standalone server
	ClientAddr string // ZooKeeper client address if known
	Observer   bool
}

// Members lists the members this server knows (itself at least), by id.
func (s *Server) Members() []MemberInfo {
	known := s.ens.current()
	if known == nil {
		known = s.ens.static
	}
	var out []MemberInfo
	seen := map[uint64]bool{}
	for id, m := range known {
		out = append(out, MemberInfo{ID: id, PeerAddr: m.PeerAddr(), ClientAddr: m.ClientAddr, Observer: m.Observer})
		seen[id] = true
	}
	if !seen[s.cfg.ServerID] {
		out = append(out, MemberInfo{ID: s.cfg.ServerID, ClientAddr: s.Addr().String()})
	}
	for i := range out {
		if out[i].ID == s.cfg.ServerID && out[i].ClientAddr == "" {
			out[i].ClientAddr = s.Addr().String()
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ClusterID is the --cluster-id of an ensemble ("" when standalone).
func (s *Server) ClusterID() string { return s.cfg.ClusterID }
