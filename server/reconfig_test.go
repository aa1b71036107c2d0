package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

// reconfigEnsemble is a 3-member ensemble with reconfig on and the super
// user super:test.
func reconfigEnsemble(t *testing.T) *testEnsemble {
	e := newTestEnsemble(t, 3, 0, func(c *Config) {
		c.ReconfigEnabled = true
		c.SuperDigest = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" // super:test
	})
	e.leader()
	e.waitConfig()
	return e
}

// superRaw is a raw session on addr authenticated as super.
func superRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c := newRaw(t, addr)
	if err := c.call(proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte("super:test")}, nil); err != proto.ErrOK {
		t.Fatalf("auth: %v", err)
	}
	return c
}

// zxidNow reads something and returns the zxid of the reply.
func (c *rawClient) zxidNow() int64 {
	c.t.Helper()
	if err := c.call(proto.OpExists, &proto.ExistsRequest{Path: "/"}, &proto.ExistsResponse{}); err != proto.ErrOK {
		c.t.Fatalf("exists: %v", err)
	}
	return c.lastHdr.Zxid
}

// Refusals found before proposing are logged as error txns: each
// consumes a zxid, as ZooKeeper's do.
func TestReconfigErrorsConsumeZxid(t *testing.T) {
	e := reconfigEnsemble(t)
	for _, id := range []uint64{1, 2, 3} {
		c := superRaw(t, e.addr(id))
		z0 := c.zxidNow()
		err := c.call(proto.OpReconfig, &proto.ReconfigRequest{LeavingServers: "3", CurConfigId: 0x7777}, &proto.GetDataResponse{})
		if err != proto.ErrBadVersion {
			t.Fatalf("member %d: stale version: %v", id, err)
		}
		z1 := c.lastHdr.Zxid
		if z1 <= z0 {
			t.Fatalf("member %d: BADVERSION reply zxid %#x, not after %#x", id, z1, z0)
		}
		err = c.call(proto.OpReconfig, &proto.ReconfigRequest{JoiningServers: "server.9=nonsense", CurConfigId: -1}, &proto.GetDataResponse{})
		if err != proto.ErrBadArguments {
			t.Fatalf("member %d: bad arguments: %v", id, err)
		}
		if z2 := c.lastHdr.Zxid; z2 <= z1 {
			t.Fatalf("member %d: BADARGUMENTS reply zxid %#x, not after %#x", id, z2, z1)
		}
	}
}

// A new configuration whose voters are not synced with the leader in a
// quorum of them is refused with NEWCONFIGNOQUORUM, asked on any member.
func TestReconfigNewConfigNoQuorum(t *testing.T) {
	e := reconfigEnsemble(t)
	lead := e.leader()
	fols := e.followers(lead)
	live, dead := fols[0], fols[1]
	e.stop(dead)
	waitFor(t, "the leader to stop hearing from the stopped member", func() bool {
		return !e.server(lead).ens.heardWithin(dead, e.server(lead).electionTimeout())
	})
	for _, asked := range []uint64{lead, live} {
		c := superRaw(t, e.addr(asked))
		z0 := c.zxidNow()
		// Voters {lead, dead}: one synced of a quorum of two.
		err := c.call(proto.OpReconfig, &proto.ReconfigRequest{LeavingServers: fmt.Sprint(live), CurConfigId: -1}, &proto.GetDataResponse{})
		if err != proto.ErrNewConfigNoQuorum {
			t.Fatalf("asked member %d: %v, want NEWCONFIGNOQUORUM", asked, err)
		}
		if c.lastHdr.Zxid <= z0 {
			t.Errorf("asked member %d: NEWCONFIGNOQUORUM reply zxid %#x, not after %#x", asked, c.lastHdr.Zxid, z0)
		}
	}
	if v, _ := e.server(lead).node.Membership(); len(v) != 3 {
		t.Fatalf("voters changed: %v", v)
	}
	// Removing the stopped member is fine: {lead, live} are synced.
	c := superRaw(t, e.addr(live))
	if err := c.call(proto.OpReconfig, &proto.ReconfigRequest{LeavingServers: fmt.Sprint(dead), CurConfigId: -1}, &proto.GetDataResponse{}); err != proto.ErrOK {
		t.Fatalf("removing the stopped member: %v", err)
	}
	waitFor(t, "two voters", func() bool {
		v, _ := e.server(live).node.Membership()
		return len(v) == 2
	})
}

// Two reconfigs computed from the same configuration on two members: the
// one applied second is answered RECONFIGINPROGRESS (with a zxid of its
// own), and every member ends with the same configuration, text and
// membership alike.
func TestReconfigInProgressOnEveryMember(t *testing.T) {
	e := reconfigEnsemble(t)
	lead := e.leader()
	fols := e.followers(lead)
	a, b := superRaw(t, e.addr(fols[0])), superRaw(t, e.addr(fols[1]))
	a.zxidNow()
	b.zxidNow()
	observer := func(id int) string {
		return fmt.Sprintf("server.%d=%s:0:observer;%s", id, freePort(t), freePort(t))
	}
	inProgress := 0
	for round := 0; round < 5 && inProgress == 0; round++ {
		// Both requests leave before either member can have applied the
		// other's change.
		xa := a.send(proto.OpReconfig, &proto.ReconfigRequest{JoiningServers: observer(10 + 2*round), CurConfigId: -1})
		xb := b.send(proto.OpReconfig, &proto.ReconfigRequest{JoiningServers: observer(11 + 2*round), CurConfigId: -1})
		ea := a.recv(xa, &proto.GetDataResponse{})
		za := a.lastHdr.Zxid
		eb := b.recv(xb, &proto.GetDataResponse{})
		zb := b.lastHdr.Zxid
		t.Logf("round %d: %v at %#x, %v at %#x", round, ea, za, eb, zb)
		for _, r := range []proto.ErrCode{ea, eb} {
			switch r {
			case proto.ErrOK:
			case proto.ErrReconfigInProgress:
				inProgress++
			default:
				t.Fatalf("unexpected answer %v", r)
			}
		}
		if za == zb {
			t.Fatalf("both answers carry zxid %#x", za)
		}
	}
	if inProgress == 0 {
		t.Skip("the two reconfigs never raced in 5 rounds")
	}
	// Same configuration everywhere, and raft agrees with the text.
	waitFor(t, "every member to converge", func() bool {
		var text string
		for id := uint64(1); id <= 3; id++ {
			s := e.server(id)
			cur, _ := s.configNow()
			if id == 1 {
				text = cur
			} else if cur != text {
				return false
			}
			_, learners := s.node.Membership()
			if n := strings.Count(cur, ":observer"); n != len(learners) {
				return false
			}
		}
		return true
	})
}

// With raft's proposal-time checks off, a change of two voters still goes
// through a joint configuration and leaves it on its own.
func TestReconfigJointChangeSettles(t *testing.T) {
	e := reconfigEnsemble(t)
	c := superRaw(t, e.addr(e.leader()))
	// A change of two voters at once goes through a joint configuration
	// and leaves it again on its own.
	var lines []string
	for id := uint64(1); id <= 3; id++ {
		s := e.members[id].cfg.Peers[id]
		m, _ := ParseMemberSpec(id, s, false)
		lines = append(lines, m.String())
	}
	lines = append(lines, fmt.Sprintf("server.7=%s:0:participant;%s", freePort(t), freePort(t)),
		fmt.Sprintf("server.8=%s:0:participant;%s", freePort(t), freePort(t)))
	err := c.call(proto.OpReconfig, &proto.ReconfigRequest{NewMembers: strings.Join(lines, ","), CurConfigId: -1}, &proto.GetDataResponse{})
	if err != proto.ErrOK {
		t.Fatalf("two voters at once: %v", err)
	}
	waitFor(t, "the joint configuration to be left", func() bool {
		for id := uint64(1); id <= 3; id++ {
			if e.server(id).node.Joint() {
				return false
			}
		}
		return true
	})
	if v, _ := e.server(1).node.Membership(); len(v) != 5 {
		t.Fatalf("voters: %v", v)
	}
}
