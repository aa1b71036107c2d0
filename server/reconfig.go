package server

import (
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine"
)

// How a reconfig is answered (ZooKeeper's PrepRequestProcessor reconfig
// branch), whichever member the client is connected to:
//
//   - Checks the member can make alone (the initial configuration not yet
//     written, a joint configuration in force, a stale curConfigId, bad
//     arguments) are answered with an error txn (statemachine.OpErrorTxn),
//     which consumes a zxid as ZooKeeper's error txns do.
//   - NEWCONFIGNOQUORUM is decided by the leader when the change is about
//     to enter its log (vetConfChange): the voters of the new
//     configuration that are synced with it must make a quorum of it.
//   - RECONFIGINPROGRESS for a change that raced another one is decided
//     when it is applied, on every member alike: raft's checks at
//     proposal time are off (replication.Config.CheckConfChangesOnApply),
//     so the change always reaches the log; there it is refused if it no
//     longer applies to the configuration in force (RejectConfChange), or
//     if another configuration was applied since it was computed (the
//     OpSetConfig entry's version check).

// errorTxn is the error txn answering the request that proposed e.
func errorTxn(e *statemachine.Entry, code proto.ErrCode) *statemachine.Entry {
	return &statemachine.Entry{
		Op:      statemachine.OpErrorTxn,
		Session: e.Session,
		Cxid:    e.Cxid,
		Auth:    e.Auth,
		Origin:  e.Origin,
		Seq:     e.Seq,
		Time:    e.Time,
		Body:    proto.Marshal(&statemachine.ErrorBody{Err: code}),
	}
}

// reconfigError answers r (a reconfig, already enqueued) with code
// through an error txn.
func (c *conn) reconfigError(r *request, code proto.ErrCode) bool {
	s := c.s
	e := errorTxn(&statemachine.Entry{Session: c.sessionID(), Cxid: r.xid, Auth: c.authIDs()}, code)
	e.Seq = s.addPending(r)
	c.lastWrite = r
	if err := s.propose(e); err != nil {
		// Nothing can be logged without a leader: answered at once.
		s.dropPending(e.Seq)
		c.complete(r, encodeReply(r.xid, c.lastZxid(), code, nil), false)
	}
	return true
}

// heard notes a raft message from a peer (the transport's handler).
func (e *ensemble) heard(id uint64) {
	e.lastHeard.Store(id, time.Now().UnixNano())
}

// heardWithin reports whether a raft message came from id within d.
func (e *ensemble) heardWithin(id uint64, d time.Duration) bool {
	v, ok := e.lastHeard.Load(id)
	return ok && time.Since(time.Unix(0, v.(int64))) <= d
}

// vetConfChange is the leader's replication.ConfChangeVetter: a client's
// reconfig whose new voters are not synced with the leader in a quorum of
// them is replaced by an error txn answering NEWCONFIGNOQUORUM
// (Leader.isQuorumSynced). A voter counts as synced when raft replicates
// to it (Progress in StateReplicate) and it was heard from within an
// election timeout; the leader counts itself. A voter new to the ensemble
// has no progress yet (a member started with --join is not known to the
// leader before it is added, unlike ZooKeeper's joiners, which connect as
// non-voting followers first): it is counted, and raft brings it up to
// date once added. Called on the raft loop: it must not block.
func (s *Server) vetConfChange(cc *raftpb.ConfChangeV2, st raft.Status) []byte {
	if len(cc.GetContext()) == 0 || s.ens == nil {
		return nil
	}
	e, err := statemachine.DecodeEntry(cc.GetContext())
	if err != nil || e.Op != statemachine.OpSetConfig || e.Session == 0 {
		return nil
	}
	var body statemachine.ConfigBody
	if proto.Unmarshal(e.Body, &body) != nil {
		return nil
	}
	next, err := parseConfigText(body.Config)
	if err != nil {
		return nil
	}
	var voters, synced []uint64
	within := s.electionTimeout()
	for id, m := range next {
		if m.Observer {
			continue
		}
		voters = append(voters, id)
		pr, known := st.Progress[id]
		switch {
		case id == st.ID, !known:
			synced = append(synced, id)
		case pr.State == tracker.StateReplicate && s.ens.heardWithin(id, within):
			synced = append(synced, id)
		}
	}
	if len(synced) >= len(voters)/2+1 {
		return nil
	}
	s.log.Warn("reconfig refused: there must be a connected and synced quorum in the new configuration",
		"new_voters", len(voters), "synced", synced)
	return errorTxn(e, proto.ErrNewConfigNoQuorum).Encode()
}

// RejectConfChange answers the proposer of a committed membership change
// that does not apply to the configuration in force (see
// replication.ConfChangeRejecter): RECONFIGINPROGRESS when a joint
// configuration is in force (another reconfig is half way) or the change
// was computed while one was, BADARGUMENTS otherwise. The answer is an
// error txn at the change's index, so it consumes that zxid on every
// member.
func (f fsm) RejectConfChange(index, term uint64, cc *raftpb.ConfChangeV2, before *raftpb.ConfState, reason error) {
	s := f.s
	if len(cc.GetContext()) == 0 {
		return // raft's own (leaving a joint configuration): nobody waits
	}
	e, err := statemachine.DecodeEntry(cc.GetContext())
	if err != nil {
		return
	}
	code := proto.ErrBadArguments
	if len(before.GetVotersOutgoing()) > 0 || cc.LeaveJoint() {
		code = proto.ErrReconfigInProgress
	}
	s.log.Info("reconfig refused when applied", "index", index, "err", code.String(), "reason", reason)
	s.applyEntry(index, errorTxn(e, code))
}
