package controllers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/paddockhq/paddock/server"
)

// liveMember is one in-process server of a loopback ensemble.
type liveMember struct {
	srv                 *server.Server
	client, peer, admin string
	stop                func()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startLive(t *testing.T, id uint64, m *liveMember, peers map[uint64]string, join bool) {
	t.Helper()
	cfg := server.Config{
		ServerID: id, ListenAddr: m.client, DataDir: t.TempDir(), TickTime: 200 * time.Millisecond,
		SuperDigest: SuperDigest("pw"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	cfg.AdminAddr = m.admin
	cfg.EnsembleConfig = server.EnsembleConfig{Peers: peers, ClusterID: "live", ReconfigEnabled: true, Join: join,
		RaftTick: 50 * time.Millisecond, ElectionTicks: 10}
	go func() {
		s, err := server.New(cfg)
		if err != nil {
			t.Errorf("member %d: %v", id, err)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Serve(ctx) }()
		m.srv = s
		m.stop = func() { cancel(); <-done; s.Close() }
	}()
}

// TestLiveEnsemble checks the operator's view of real servers: srvr roles
// and zxids over the admin endpoint, /zookeeper/config, reconfig add of a
// --join member and remove, and the leadership handover.
func TestLiveEnsemble(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an ensemble")
	}
	ms := map[uint64]*liveMember{}
	peers := map[uint64]string{}
	byHost := map[string]string{} // "m<id>:<port>" → loopback address
	for id := uint64(1); id <= 4; id++ {
		m := &liveMember{client: freeAddr(t), peer: freeAddr(t), admin: freeAddr(t)}
		ms[id] = m
		byHost[fmt.Sprintf("m%d:%d", id, ClientPort)] = m.client
		byHost[fmt.Sprintf("m%d:%d", id, AdminPort)] = m.admin
		if id <= 3 {
			peers[id] = m.peer + ";" + m.client
		}
	}
	for id := uint64(1); id <= 3; id++ {
		startLive(t, id, ms[id], peers, false)
	}
	t.Cleanup(func() {
		for _, m := range ms {
			if m.stop != nil {
				m.stop()
			}
		}
	})
	ens := &LiveEnsemble{Resolve: func(hp string) string { return byHost[hp] }}
	ctx := context.Background()
	hosts := []string{"m1", "m2", "m3"}
	wait := func(what string, f func() bool) {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if f() {
				return
			}
		}
		t.Fatalf("%s: timed out", what)
	}
	leader := func() uint64 {
		for id := uint64(1); id <= 4; id++ {
			if info, err := ens.Member(ctx, fmt.Sprintf("m%d", id)); err == nil && info.Role == "leader" {
				return id
			}
		}
		return 0
	}
	wait("a leader", func() bool { return leader() != 0 })
	conf := Membership{}
	wait("/zookeeper/config", func() bool {
		c, err := ens.Config(ctx, hosts, "")
		conf = c
		return err == nil && len(c.Voters) == 3
	})

	// A --join member waits as "joining" until reconfig adds it.
	peers4 := map[uint64]string{4: ms[4].peer + ";" + ms[4].client}
	for id, p := range peers {
		peers4[id] = p
	}
	startLive(t, 4, ms[4], peers4, true)
	wait("member 4 joining", func() bool {
		info, err := ens.Member(ctx, "m4")
		return err == nil && info.Role == "joining"
	})
	if err := ens.Reconfig(ctx, hosts, "wrong", []string{fmt.Sprintf("server.4=%s:3888:participant;%s", ms[4].peer, ms[4].client)}, nil); err == nil {
		t.Fatal("reconfig with a wrong super password accepted")
	}
	if err := ens.Reconfig(ctx, hosts, "pw", []string{fmt.Sprintf("server.4=%s:3888:participant;%s", ms[4].peer, ms[4].client)}, nil); err != nil {
		t.Fatal(err)
	}
	wait("member 4 a follower", func() bool {
		info, err := ens.Member(ctx, "m4")
		c, cerr := ens.Config(ctx, hosts, "")
		return err == nil && info.Role == "follower" && cerr == nil && c.Voters[4] && c.Version != conf.Version
	})

	// Handover, then remove the old leader.
	from := leader()
	to := from%4 + 1
	if err := ens.TransferLeadership(ctx, fmt.Sprintf("m%d", from), to); err != nil {
		t.Fatal(err)
	}
	wait("new leader", func() bool { return leader() == to })
	if err := ens.Reconfig(ctx, []string{fmt.Sprintf("m%d", to)}, "pw", nil, []uint64{from}); err != nil {
		t.Fatal(err)
	}
	wait("removed", func() bool {
		c, err := ens.Config(ctx, []string{fmt.Sprintf("m%d", to)}, "")
		return err == nil && !c.Voters[from] && len(c.Voters) == 3
	})
}
