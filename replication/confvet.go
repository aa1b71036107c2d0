package replication

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/confchange"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// ConfChangeVetter is called by the leader, on the run loop, for every
// membership change about to enter its log (proposed here or forwarded by
// a follower), with raft's status (the leader's view of its followers'
// progress). It returns nil to let the change in, or the data of a normal
// entry to append instead: the change is then refused, and the entry,
// applied on every member like any other, answers whoever proposed it.
// It must not block.
type ConfChangeVetter func(cc *raftpb.ConfChangeV2, st raft.Status) []byte

// ConfChangeRejecter is implemented by a StateMachine that wants to be told
// of a committed membership change that cannot apply to the configuration
// in force (entering a joint configuration while in one, a single change
// of more than one voter, leaving a joint configuration while not in
// one): raft does not apply it, on any member, and RejectConfChange lets
// the state machine answer its proposer. before is the configuration in
// force; reason is raft's verdict.
type ConfChangeRejecter interface {
	RejectConfChange(index, term uint64, cc *raftpb.ConfChangeV2, before *raftpb.ConfState, reason error)
}

// checkConfChange reports whether cc applies to the configuration in force
// (what raft would do with it, without doing it): raft panics on a change
// that does not apply, which can reach the log when conf changes are not
// checked when proposed (Config.CheckConfChangesOnApply), or when the
// check made then ran against a configuration that was not yet the last.
func (n *Node) checkConfChange(index uint64, cc *raftpb.ConfChangeV2) error {
	chg := confchange.Changer{Tracker: tracker.MakeProgressTracker(1, 0), LastIndex: index}
	cfg, prs, err := confchange.Restore(chg, n.confState)
	if err != nil {
		return err
	}
	chg.Tracker.Config, chg.Tracker.Progress = cfg, prs
	if cc.LeaveJoint() {
		_, _, err = chg.LeaveJoint()
	} else if autoLeave, ok := cc.EnterJoint(); ok {
		_, _, err = chg.EnterJoint(autoLeave, cc.GetChanges()...)
	} else {
		_, _, err = chg.Simple(cc.GetChanges()...)
	}
	return err
}

// rejectConfChange tells the state machine that a committed change was
// not applied.
func (n *Node) rejectConfChange(index, term uint64, cc *raftpb.ConfChangeV2, reason error) {
	if r, ok := n.sm.(ConfChangeRejecter); ok {
		r.RejectConfChange(index, term, cc, proto.Clone(n.confState).(*raftpb.ConfState), reason)
	}
}

// vetEntries runs the ConfChangeVetter over the conf change entries of a
// proposal about to be stepped into raft on the leader, replacing refused
// ones by the normal entries the vetter returns. Run loop only.
func (n *Node) vetEntries(ents []*raftpb.Entry) {
	if n.cfg.VetConfChange == nil || !n.leader.Load() {
		return
	}
	var st *raft.Status
	for i, e := range ents {
		var cc raftpb.ConfChangeI
		switch e.GetType() {
		case raftpb.EntryConfChange:
			var v1 raftpb.ConfChange
			if proto.Unmarshal(e.GetData(), &v1) != nil {
				continue
			}
			cc = &v1
		case raftpb.EntryConfChangeV2:
			var v2 raftpb.ConfChangeV2
			if proto.Unmarshal(e.GetData(), &v2) != nil {
				continue
			}
			cc = &v2
		default:
			continue
		}
		if st == nil {
			s := n.rn.Status()
			st = &s
		}
		if repl := n.cfg.VetConfChange(cc.AsV2(), *st); repl != nil {
			n.log.Info("replication: membership change refused before entering the log", "change", raft.DescribeConfChange(cc))
			ents[i] = &raftpb.Entry{Type: raftpb.EntryNormal.Enum(), Data: repl}
		}
	}
}
