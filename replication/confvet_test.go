package replication

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestCheckConfChange(t *testing.T) {
	single := func(typ raftpb.ConfChangeType, id uint64) *raftpb.ConfChangeSingle {
		return &raftpb.ConfChangeSingle{Type: typ.Enum(), NodeId: proto.Uint64(id)}
	}
	simple := func(cs ...*raftpb.ConfChangeSingle) *raftpb.ConfChangeV2 { return &raftpb.ConfChangeV2{Changes: cs} }
	joint := func(cs ...*raftpb.ConfChangeSingle) *raftpb.ConfChangeV2 {
		return &raftpb.ConfChangeV2{Transition: raftpb.ConfChangeTransitionJointImplicit.Enum(), Changes: cs}
	}
	leave := &raftpb.ConfChangeV2{}
	plain := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	inJoint := &raftpb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}, AutoLeave: proto.Bool(true)}
	for _, tc := range []struct {
		name string
		cs   *raftpb.ConfState
		cc   *raftpb.ConfChangeV2
		ok   bool
	}{
		{"add a voter", plain, simple(single(raftpb.ConfChangeAddNode, 4)), true},
		{"add a learner", plain, simple(single(raftpb.ConfChangeAddLearnerNode, 4)), true},
		{"two voters, auto transition (joint)", plain, simple(single(raftpb.ConfChangeAddNode, 4), single(raftpb.ConfChangeAddNode, 5)), true},
		{"two voters through joint", plain, joint(single(raftpb.ConfChangeAddNode, 4), single(raftpb.ConfChangeAddNode, 5)), true},
		{"leave joint when not joint", plain, leave, false},
		{"simple change while joint", inJoint, simple(single(raftpb.ConfChangeAddLearnerNode, 5)), false},
		{"enter joint while joint", inJoint, joint(single(raftpb.ConfChangeAddNode, 5), single(raftpb.ConfChangeAddNode, 6)), false},
		{"leave joint", inJoint, leave, true},
		{"remove every voter", &raftpb.ConfState{Voters: []uint64{1}}, simple(single(raftpb.ConfChangeRemoveNode, 1)), false},
	} {
		n := &Node{confState: tc.cs}
		err := n.checkConfChange(100, tc.cc)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
