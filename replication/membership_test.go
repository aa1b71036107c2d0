package replication

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestLearnersBootstrapAndPropose bootstraps two voters and a learner:
// the learner never leads, applies everything, and its proposals are
// forwarded to the leader. The configuration survives a restart.
func TestLearnersBootstrapAndPropose(t *testing.T) {
	net := &memNet{nodes: map[uint64]*Node{}}
	sms := map[uint64]*listSM{}
	cfgs := map[uint64]Config{}
	for id := uint64(1); id <= 3; id++ {
		cfg := testConfig(t.TempDir())
		cfg.ID, cfg.Peers, cfg.Learners, cfg.Transport = id, []uint64{1, 2}, []uint64{3}, memTransport{net}
		cfgs[id] = cfg
		sms[id] = &listSM{}
		n := mustOpen(t, cfg, sms[id])
		net.mu.Lock()
		net.nodes[id] = n
		net.mu.Unlock()
	}
	defer func() {
		for _, n := range net.nodes {
			n.Close()
		}
	}()
	learner := net.nodes[3]
	v, l := learner.Membership()
	if !slices.Equal(v, []uint64{1, 2}) || !slices.Equal(l, []uint64{3}) {
		t.Fatalf("membership voters %v learners %v", v, l)
	}
	deadline := time.Now().Add(20 * time.Second)
	for learner.Leader() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if learner.IsLeader() {
		t.Fatal("a learner leads")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, d := range datas("l", 10) {
		if err := learner.Propose(ctx, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	for id := range sms {
		waitLen(t, sms[id], 10)
	}
	if ri, err := learner.ReadIndex(ctx); err != nil || ri == 0 {
		t.Fatalf("learner ReadIndex = %d, %v", ri, err)
	}
	if learner.SingleVoter() {
		t.Fatal("SingleVoter on a learner")
	}

	// The bootstrapped configuration is durable.
	learner.Close()
	net.mu.Lock()
	delete(net.nodes, 3)
	net.mu.Unlock()
	n := mustOpen(t, cfgs[3], &listSM{})
	defer n.Close()
	if v, l := n.Membership(); !slices.Equal(v, []uint64{1, 2}) || !slices.Equal(l, []uint64{3}) {
		t.Fatalf("after restart: voters %v learners %v", v, l)
	}
}
