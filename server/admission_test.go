package server

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestAdmissionVerdict: the decision from the peers' answers, case by case.
func TestAdmissionVerdict(t *testing.T) {
	leaderSays := func(place string) statusAnswer {
		return statusAnswer{Data: true, IsLeader: true, Applied: true, Leader: 1, Place: place, Admitted: true}
	}
	followerSays := func(place string) statusAnswer {
		return statusAnswer{Data: true, Leader: 1, Applied: true, Place: place, Admitted: true}
	}
	for _, tc := range []struct {
		name    string
		answers map[uint64]statusAnswer
		join    bool
		want    int32
		reason  string
	}{
		{"no answer", nil, true, admitWait, "no member with data answers"},
		{"everyone empty", map[uint64]statusAnswer{1: {}, 2: {}}, true, admitWait, "if every member lost its data"},
		{"leader: not a member", map[uint64]statusAnswer{1: leaderSays(placeNone), 2: followerSays(placeNone)}, true, admitted, "as none"},
		{"leader: observer", map[uint64]statusAnswer{1: leaderSays(placeObserver)}, false, admitted, "as observer"},
		{"leader: voter", map[uint64]statusAnswer{1: leaderSays(placeVoter), 2: followerSays(placeVoter)}, true, admitDeny, "refusing to vote"},
		{"a follower still lists it", map[uint64]statusAnswer{1: leaderSays(placeNone), 2: followerSays(placeVoter)}, true, admitDeny, "member(s) 2"},
		{"follower only, no leader", map[uint64]statusAnswer{2: followerSays(placeNone)}, true, admitWait, "none of them is a leader"},
		{"leader not applied", map[uint64]statusAnswer{1: {Data: true, IsLeader: true, Place: placeNone}}, true, admitWait, "none of them is a leader"},
		{"founder never seen", map[uint64]statusAnswer{1: func() statusAnswer { a := leaderSays(placeVoter); a.SawFresh = true; return a }()}, true, admitted, "after seeing it empty"},
		{"added while waiting", map[uint64]statusAnswer{
			1: func() statusAnswer { a := leaderSays(placeVoter); a.NewSince = true; return a }(),
			2: followerSays(placeVoter), // did not see it before: the leader did
		}, true, admitted, "after seeing it empty"},
		{"legacy peers, join", map[uint64]statusAnswer{1: {Data: true, Admitted: true}}, true, admitted, "older version"},
		{"legacy peers, no join", map[uint64]statusAnswer{1: {Data: true, Admitted: true}}, false, admitDeny, "refusing to bootstrap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := admissionVerdict(3, tc.answers, tc.join)
			if got != tc.want || !strings.Contains(why, tc.reason) {
				t.Fatalf("verdict %d %q, want %d containing %q", got, why, tc.want, tc.reason)
			}
		})
	}
}

// TestEnsembleWipedVoter: a voter restarted on an empty data directory
// (with --join, as the operator starts every member once the cluster holds
// data) while it is still a voter is refused: it says so everywhere, drops
// every vote request and append, and never writes a raft state; with it
// refused and another member down, nothing can be committed. Removed by
// reconfig, it is admitted by itself; added back as an observer it
// catches up, and promoted it is a voter that counts in a quorum again.
func TestEnsembleWipedVoter(t *testing.T) {
	const super = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" // super:test
	e := newTestEnsemble(t, 3, 0, func(c *Config) {
		c.ReconfigEnabled = true
		c.SuperDigest = super
	})
	lead := e.leader()
	e.waitConfig()
	c, _ := connectAll(t, e.addrs(), 10*time.Second)
	if err := c.AddAuth("digest", []byte("super:test")); err != nil {
		t.Fatal(err)
	}
	retry(t, "first write", func() error {
		_, err := c.Create("/acked", []byte("1"), 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	})
	fols := e.followers(lead)
	f, g := fols[0], fols[1]

	// The volume vanishes under f; it comes back with --join.
	e.stop(f)
	if err := os.RemoveAll(e.members[f].cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	e.members[f].cfg.Join = true
	if err := e.start(e.members[f]); err != nil {
		t.Fatal(err)
	}
	wf := e.server(f)
	if ok, why := wf.Ready(); wf.Mode() != "refused" || ok || !strings.Contains(why, "refusing to vote") {
		t.Fatalf("wiped voter: mode %s, ready %v %q", wf.Mode(), ok, why)
	}
	if out := wf.runFourLetter("srvr"); !strings.Contains(out, "Mode: refused\n") {
		t.Errorf("srvr:\n%s", out)
	}
	if out := wf.runFourLetter("mntr"); !strings.Contains(out, "zk_server_state\trefused\n") {
		t.Errorf("mntr:\n%s", out)
	}
	b, _ := json.Marshal(wf.adminServerStats())
	if !strings.Contains(string(b), `"refusal":"refusing to vote`) {
		t.Errorf("admin srvr: %s", b)
	}
	id, _, _ := readIdentity(e.members[f].cfg.DataDir)
	if !id.PendingAdmission {
		t.Errorf("stamp of the refused member: %+v", id)
	}
	// Its client port sends clients elsewhere at once.
	if conn, _, err := zk.Connect([]string{e.addr(f)}, 2*time.Second, zk.WithLogger(nopLogger{})); err == nil {
		time.Sleep(300 * time.Millisecond)
		if conn.State() == zk.StateHasSession {
			t.Errorf("a client got a session on the refused member")
		}
		conn.Close()
	}

	// With g down too, the leader has only f: it steps down and
	// campaigns; f drops the appends and the vote requests, and never
	// stores a term or a vote.
	e.stop(g)
	waitFor(t, "the wiped voter to drop appends and vote requests", func() bool {
		return wf.ens.adm.refusedAppends.Load() > 0 && wf.ens.adm.refusedVotes.Load() > 0
	})
	if st := wf.node.Status(); st.GetTerm() != 0 || st.GetVote() != 0 || st.GetCommit() != 0 || wf.node.AppliedIndex() != 0 {
		t.Fatalf("the refused member took part in raft: term %d vote %d commit %d applied %d", st.GetTerm(), st.GetVote(), st.GetCommit(), wf.node.AppliedIndex())
	}
	if e.server(lead).node.IsLeader() {
		// It must lose leadership (CheckQuorum): f does not count.
		waitFor(t, "the lone leader to step down", func() bool { return !e.server(lead).node.IsLeader() })
	}
	if err := e.start(e.members[g]); err != nil {
		t.Fatal(err)
	}
	lead = e.leader()
	if lead == f {
		t.Fatal("the refused member leads")
	}

	// Rebuild: remove it (it is admitted by itself), add it back as an
	// observer, promote it once it has caught up.
	peers := e.members[lead].cfg.Peers
	retry(t, "remove the wiped voter", func() error {
		_, err := c.IncrementalReconfig(nil, []string{strconv.FormatUint(f, 10)}, -1)
		return err
	})
	waitFor(t, "the wiped member to be admitted", func() bool { return wf.Mode() == "joining" && !wf.ens.gated() })
	if id, _, _ := readIdentity(e.members[f].cfg.DataDir); id.PendingAdmission {
		t.Errorf("stamp still pending after admission: %+v", id)
	}
	m, _ := ParseMemberSpec(f, peers[f], true)
	retry(t, "add it back as an observer", func() error {
		_, err := c.IncrementalReconfig([]string{m.String()}, nil, -1)
		return err
	})
	waitFor(t, "the observer to catch up", func() bool {
		wf.mu.RLock()
		ok, _, _ := wf.state.NodeState("/acked")
		wf.mu.RUnlock()
		return ok && wf.Mode() == "observer"
	})
	m.Observer = false
	retry(t, "promote it", func() error {
		_, err := c.IncrementalReconfig([]string{m.String()}, nil, -1)
		return err
	})
	waitFor(t, "the rebuilt member to follow", func() bool { return wf.Mode() == "follower" || wf.Mode() == "leader" })
	// It counts: with the other follower down, the quorum holds.
	other := g
	if other == lead {
		other = f // g leads: stop nobody else
	}
	if other != f {
		e.stop(other)
	}
	retry(t, "write with the rebuilt voter in the quorum", func() error {
		_, err := c.Create("/after-rebuild", nil, 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	})
}
