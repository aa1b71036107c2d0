package replication

import (
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ConfChangeFilter is implemented by a StateMachine that wants to see, and
// possibly refuse, membership changes as they are applied. ApplyConfChange
// is called on the run loop (or inside Open, while replaying) for every
// committed conf change entry, in log order, before raft applies it;
// cc.Context is what the proposer put there and before is the
// configuration the change applies to.
// Returning false refuses the change: it is not given to raft, so the
// configuration stays as it was (raft's way of vetoing a committed conf
// change). A change that could not apply anyway never gets here (see
// ConfChangeRejecter). The
// decision must be a deterministic function of the state machine's state
// and the entry, because every member makes it independently. Entries
// raft generates itself (leaving a joint configuration) have an empty
// Context and must be admitted.
type ConfChangeFilter interface {
	ApplyConfChange(index, term uint64, cc *raftpb.ConfChangeV2, before *raftpb.ConfState) bool
}

// admitConfChange asks the state machine, if it filters conf changes.
func (n *Node) admitConfChange(index, term uint64, cc *raftpb.ConfChangeV2) bool {
	f, ok := n.sm.(ConfChangeFilter)
	if !ok {
		return true
	}
	return f.ApplyConfChange(index, term, cc, proto.Clone(n.confState).(*raftpb.ConfState))
}

// publishConfState makes the run loop's configuration visible to
// Membership. Called on the run loop whenever confState changes.
func (n *Node) publishConfState() {
	n.memb.Store(proto.Clone(n.confState).(*raftpb.ConfState))
}

// Membership is the configuration as of the last applied entry: the
// voters (the incoming and outgoing sets of a joint configuration merged)
// and the learners. Safe for concurrent use.
func (n *Node) Membership() (voters, learners []uint64) {
	cs := n.memb.Load()
	if cs == nil {
		return nil, nil
	}
	voters = append(slices.Clone(cs.GetVoters()), cs.GetVotersOutgoing()...)
	slices.Sort(voters)
	voters = slices.Compact(voters)
	learners = append(slices.Clone(cs.GetLearners()), cs.GetLearnersNext()...)
	slices.Sort(learners)
	learners = slices.Compact(learners)
	return voters, learners
}

// Joint reports whether the group is in a joint configuration (a change of
// more than one voter is half way).
func (n *Node) Joint() bool {
	cs := n.memb.Load()
	return cs != nil && len(cs.GetVotersOutgoing()) > 0
}

// SingleVoter reports whether this member is the group's only voter and
// there are no learners: then it is a standalone server, whose ReadIndex
// needs no network and whose log needs no one else.
func (n *Node) SingleVoter() bool {
	v, l := n.Membership()
	return len(v) == 1 && v[0] == n.cfg.ID && len(l) == 0
}

// ID is this member's raft id.
func (n *Node) ID() uint64 { return n.cfg.ID }

// bootstrapWithLearners writes the initial configuration of a new group
// that has learners. raft's Bootstrap only adds voters, so the same
// thing is done by hand: one committed ConfChange entry per member at term
// 1 (voters first, then learners, each list in the order given), written
// to the WAL and storage before raft starts, so raft applies them through
// the normal Ready path. Every member of the initial configuration writes
// the same entries.
func (n *Node) bootstrapWithLearners() error {
	var ents []*raftpb.Entry
	add := func(id uint64, typ raftpb.ConfChangeType) error {
		cc := &raftpb.ConfChange{Type: typ.Enum(), NodeId: proto.Uint64(id)}
		data, err := proto.Marshal(cc)
		if err != nil {
			return err
		}
		idx := uint64(len(ents) + 1)
		ents = append(ents, &raftpb.Entry{
			Type: raftpb.EntryConfChange.Enum(), Term: proto.Uint64(1), Index: proto.Uint64(idx), Data: data,
		})
		return nil
	}
	for _, id := range n.cfg.Peers {
		if err := add(id, raftpb.ConfChangeAddNode); err != nil {
			return err
		}
	}
	for _, id := range n.cfg.Learners {
		if slices.Contains(n.cfg.Peers, id) {
			return fmt.Errorf("replication: member %d is both a voter and a learner", id)
		}
		if err := add(id, raftpb.ConfChangeAddLearnerNode); err != nil {
			return err
		}
	}
	hs := &raftpb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(raft.None), Commit: proto.Uint64(uint64(len(ents)))}
	if err := n.wal.save(hs, ents, true); err != nil {
		return err
	}
	if err := n.storage.Append(ents); err != nil {
		return err
	}
	if err := n.storage.SetHardState(hs); err != nil {
		return err
	}
	n.lastIndex = uint64(len(ents))
	n.term.Store(1)
	n.log.Debug("replication: bootstrapped new group", "peers", n.cfg.Peers, "learners", n.cfg.Learners)
	return nil
}
