package replication

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// memNet delivers raft messages between in-process nodes, in order per
// destination, dropping them when a destination is not registered.
type memNet struct {
	mu    sync.Mutex
	nodes map[uint64]*Node
}

type memTransport struct {
	net *memNet
}

func (t memTransport) Send(msgs []*raftpb.Message) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	for _, m := range msgs {
		if dst := t.net.nodes[m.GetTo()]; dst != nil {
			// Clone: the receiver must not share memory with the sender.
			c := proto.Clone(m).(*raftpb.Message)
			go dst.Step(context.Background(), c)
		}
	}
}

// TestThreeMemberGroup runs the same code as standalone with three voters
// and an in-memory transport: election, replication to every state
// machine, ReadIndex from a follower, and a follower catching up from a
// snapshot after missing the log.
func TestThreeMemberGroup(t *testing.T) {
	net := &memNet{nodes: map[uint64]*Node{}}
	sms := map[uint64]*listSM{}
	cfgs := map[uint64]Config{}
	open := func(id uint64) {
		cfg := cfgs[id]
		sm := &listSM{}
		n := mustOpen(t, cfg, sm)
		net.mu.Lock()
		net.nodes[id], sms[id] = n, sm
		net.mu.Unlock()
	}
	for id := uint64(1); id <= 3; id++ {
		cfg := testConfig(t.TempDir())
		cfg.ID, cfg.Peers, cfg.Transport = id, []uint64{1, 2, 3}, memTransport{net}
		cfg.SnapshotEvery = 50
		cfgs[id] = cfg
		open(id)
	}
	defer func() {
		for _, n := range net.nodes {
			n.Close()
		}
	}()
	leader := func() *Node {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			net.mu.Lock()
			for _, n := range net.nodes {
				if n.IsLeader() {
					net.mu.Unlock()
					return n
				}
			}
			net.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatal("no leader elected")
		return nil
	}
	l := leader()
	proposeAll(t, l, sms[l.cfg.ID], datas("a", 20), 20)
	for id := range sms {
		waitLen(t, sms[id], 20)
		equalRecords(t, sms[id].snapshot(), sms[l.cfg.ID].snapshot())
	}

	// A follower's ReadIndex goes through the leader.
	var follower *Node
	for id, n := range net.nodes {
		if id != l.cfg.ID {
			follower = n
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ri, err := follower.ReadIndex(ctx)
	if err != nil || ri < 20 {
		t.Fatalf("follower ReadIndex = %d, %v", ri, err)
	}
	if err := follower.WaitApplied(ctx, ri); err != nil {
		t.Fatal(err)
	}

	// Take the follower away, move the log past two snapshots, bring it
	// back: it must catch up (from the leader's snapshot or log).
	fid := follower.cfg.ID
	net.mu.Lock()
	delete(net.nodes, fid)
	net.mu.Unlock()
	follower.Close()
	for w := 0; w < 4; w++ {
		proposeAll(t, l, sms[l.cfg.ID], datas(fmt.Sprintf("b%d", w), 2000), 20+2000*(w+1))
	}
	open(fid)
	want := sms[l.cfg.ID].snapshot()
	deadline := time.Now().Add(20 * time.Second)
	for sms[fid].len() != len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("follower has %d entries, leader %d", sms[fid].len(), len(want))
		}
		time.Sleep(5 * time.Millisecond)
	}
	equalRecords(t, sms[fid].snapshot(), want)
	t.Logf("follower caught up; snapshots received/taken: %d", net.nodes[fid].Stats().Snapshots)
}
