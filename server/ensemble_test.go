package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// testMember is one in-process ensemble member on loopback ports.
type testMember struct {
	id   uint64
	cfg  Config
	srv  *Server
	done chan struct{}
}

// testEnsemble is a set of members started with the same configuration.
type testEnsemble struct {
	t       *testing.T
	mu      sync.Mutex
	members map[uint64]*testMember
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newTestEnsemble starts voters 1..nVoters and observers after them, all
// at once (an empty data directory bootstraps only when every member
// answers).
func newTestEnsemble(t *testing.T, nVoters, nObservers int, mod func(*Config)) *testEnsemble {
	t.Helper()
	peers, observers := map[uint64]string{}, map[uint64]string{}
	clients := map[uint64]string{}
	for i := 1; i <= nVoters+nObservers; i++ {
		id := uint64(i)
		clients[id] = freePort(t)
		spec := freePort(t) + ";" + clients[id]
		if i <= nVoters {
			peers[id] = spec
		} else {
			observers[id] = spec
		}
	}
	e := &testEnsemble{t: t, members: map[uint64]*testMember{}}
	for id := range clients {
		cfg := ensembleConfig(t, id, clients[id], peers, observers)
		if mod != nil {
			mod(&cfg)
		}
		e.members[id] = &testMember{id: id, cfg: cfg}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(e.members))
	for _, m := range e.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.start(m); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range e.members {
			e.stop(m.id)
		}
	})
	return e
}

func ensembleConfig(t testing.TB, id uint64, client string, peers, observers map[uint64]string) Config {
	return Config{
		ServerID:               id,
		ListenAddr:             client,
		DataDir:                t.TempDir(),
		TickTime:               200 * time.Millisecond,
		MaxSessionTimeout:      20 * time.Second,
		ExtendedTypes:          true,
		FourLetterWhitelist:    []string{"*"},
		ContainerCheckInterval: 100 * time.Millisecond,
		Logger:                 testLogger().With("member", id),
		EnsembleConfig: EnsembleConfig{
			Peers:          peers,
			Observers:      observers,
			ClusterID:      "test-cluster",
			RaftTick:       50 * time.Millisecond,
			ElectionTicks:  10,
			RequestTimeout: 5 * time.Second,
		},
	}
}

// start runs m's server (again, on the same data directory).
func (e *testEnsemble) start(m *testMember) error {
	s, err := New(m.cfg)
	if err != nil {
		return fmt.Errorf("member %d: %w", m.id, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(context.Background()); err != nil {
			e.t.Errorf("member %d serve: %v", m.id, err)
		}
	}()
	e.mu.Lock()
	m.srv, m.done = s, done
	e.mu.Unlock()
	return nil
}

// stop closes m's server (kept data directory).
func (e *testEnsemble) stop(id uint64) {
	e.mu.Lock()
	m := e.members[id]
	s, done := m.srv, m.done
	m.srv = nil
	e.mu.Unlock()
	if s != nil {
		s.Close()
		<-done
	}
}

func (e *testEnsemble) server(id uint64) *Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.members[id].srv
}

func (e *testEnsemble) addr(id uint64) string { return e.members[id].cfg.ListenAddr }

func (e *testEnsemble) addrs() []string {
	var out []string
	for id := uint64(1); id <= uint64(len(e.members)); id++ {
		if m, ok := e.members[id]; ok {
			out = append(out, m.cfg.ListenAddr)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader waits for a running member to lead and returns its id.
func (e *testEnsemble) leader() uint64 {
	e.t.Helper()
	var lead uint64
	waitFor(e.t, "a leader", func() bool {
		for id := range e.members {
			if s := e.server(id); s != nil && s.node.IsLeader() {
				lead = id
				return true
			}
		}
		return false
	})
	return lead
}

// waitConfig waits until every running member has the initial
// configuration in /zookeeper/config.
func (e *testEnsemble) waitConfig() {
	e.t.Helper()
	waitFor(e.t, "/zookeeper/config on every member", func() bool {
		for id := range e.members {
			s := e.server(id)
			if s == nil {
				continue
			}
			if s.ens.current() == nil {
				return false
			}
		}
		return true
	})
}

// connectAll opens a go-zookeeper session over the given addresses.
func connectAll(t testing.TB, addrs []string, timeout time.Duration) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	c, ev, err := zk.Connect(addrs, timeout, zk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	waitFor(t, "a session", func() bool { return c.State() == zk.StateHasSession })
	return c, ev
}

// retry runs op until it succeeds (a client may see ConnectionLoss while
// the ensemble fails over).
func retry(t testing.TB, what string, op func() error) {
	t.Helper()
	var last error
	waitFor(t, what, func() bool {
		last = op()
		if last != nil && !errors.Is(last, zk.ErrConnectionClosed) && !errors.Is(last, zk.ErrNoServer) {
			t.Logf("%s: %v", what, last)
		}
		return last == nil
	})
}

func (e *testEnsemble) followers(lead uint64) []uint64 {
	var out []uint64
	for id := uint64(1); id <= uint64(len(e.members)); id++ {
		if s := e.server(id); s != nil && id != lead && s.Mode() == "follower" {
			out = append(out, id)
		}
	}
	return out
}

func TestEnsembleReadsWritesSync(t *testing.T) {
	e := newTestEnsemble(t, 3, 1, nil)
	lead := e.leader()
	e.waitConfig()
	var fol uint64
	waitFor(t, "two followers", func() bool {
		f := e.followers(lead)
		if len(f) == 2 {
			fol = f[0]
			return true
		}
		return false
	})
	if m := e.server(4).Mode(); m != "observer" {
		t.Fatalf("member 4 mode %q, want observer", m)
	}
	if m := e.server(lead).Mode(); m != "leader" {
		t.Fatalf("leader mode %q", m)
	}

	// A write through a follower, then read-your-writes on the same session.
	fc, _ := connectAll(t, []string{e.addr(fol)}, 10*time.Second)
	if _, err := fc.Create("/via-follower", []byte("f"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if d, _, err := fc.Get("/via-follower"); err != nil || string(d) != "f" {
		t.Fatalf("read your write on follower: %q %v", d, err)
	}

	// The observer serves reads and forwards writes.
	oc, _ := connectAll(t, []string{e.addr(4)}, 10*time.Second)
	if _, err := oc.Create("/via-observer", []byte("o"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if d, _, err := oc.Get("/via-observer"); err != nil || string(d) != "o" {
		t.Fatalf("read your write on observer: %q %v", d, err)
	}
	if _, err := oc.Sync("/via-follower"); err != nil {
		t.Fatal(err)
	}
	if d, _, err := oc.Get("/via-follower"); err != nil || string(d) != "f" {
		t.Fatalf("observer after sync: %q %v", d, err)
	}

	// sync on a follower sees the leader's latest write.
	lc, _ := connectAll(t, []string{e.addr(lead)}, 10*time.Second)
	for i := 0; i < 20; i++ {
		want := fmt.Sprintf("v%d", i)
		if _, err := lc.Set("/via-follower", []byte(want), -1); err != nil {
			t.Fatal(err)
		}
		if _, err := fc.Sync("/via-follower"); err != nil {
			t.Fatal(err)
		}
		if d, _, err := fc.Get("/via-follower"); err != nil || string(d) != want {
			t.Fatalf("follower after sync: %q %v, want %q", d, err, want)
		}
	}

	// Every member serves the same /zookeeper/config.
	var texts []string
	for id := uint64(1); id <= 4; id++ {
		c, _ := connectAll(t, []string{e.addr(id)}, 10*time.Second)
		if _, err := c.Sync("/zookeeper/config"); err != nil {
			t.Fatal(err)
		}
		d, _, err := c.Get("/zookeeper/config")
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(d))
	}
	for _, tx := range texts[1:] {
		if tx != texts[0] {
			t.Fatalf("members disagree on /zookeeper/config:\n%s\n---\n%s", texts[0], tx)
		}
	}
	for _, want := range []string{"server.1=127.0.0.1:", ":participant;127.0.0.1:", "server.4=", ":observer;", "\nversion="} {
		if !strings.Contains(texts[0], want) {
			t.Fatalf("/zookeeper/config lacks %q:\n%s", want, texts[0])
		}
	}

	// Four-letter words report the roles.
	if out := e.server(lead).runFourLetter("srvr"); !strings.Contains(out, "Mode: leader") {
		t.Fatalf("srvr on leader:\n%s", out)
	}
	if out := e.server(4).runFourLetter("srvr"); !strings.Contains(out, "Mode: observer") {
		t.Fatalf("srvr on observer:\n%s", out)
	}
	mntr := e.server(lead).runFourLetter("mntr")
	for _, want := range []string{"zk_server_state\tleader", "zk_quorum_size\t3", "zk_learners\t3", "zk_synced_followers\t2", "zk_synced_observers\t1"} {
		if !strings.Contains(mntr, want) {
			t.Fatalf("mntr on leader lacks %q:\n%s", want, mntr)
		}
	}
}

func TestEnsembleFailoverKeepsSessions(t *testing.T) {
	e := newTestEnsemble(t, 3, 0, nil)
	lead := e.leader()
	e.waitConfig()

	c, ev := connectAll(t, e.addrs(), 4*time.Second)
	sid := c.SessionID()
	var expired sync.WaitGroup
	expired.Add(1)
	var sawExpiry bool
	var evMu sync.Mutex
	go func() {
		defer expired.Done()
		for x := range ev {
			if x.State == zk.StateExpired {
				evMu.Lock()
				sawExpiry = true
				evMu.Unlock()
			}
		}
	}()
	if _, err := c.Create("/eph", []byte("e"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("/before", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	// Kill the leader; a new one is elected and the client carries on.
	e.stop(lead)
	newLead := e.leader()
	if newLead == lead {
		t.Fatal("old leader still leads")
	}
	retry(t, "write after failover", func() error {
		_, err := c.Create("/after", nil, 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	})
	// Longer than the session timeout on the new leader: nothing expires,
	// because the member holding the connection relays its liveness.
	time.Sleep(6 * time.Second)
	retry(t, "read after failover", func() error {
		_, _, err := c.Get("/eph")
		return err
	})
	if c.SessionID() != sid {
		t.Fatalf("session changed from %x to %x", sid, c.SessionID())
	}
	evMu.Lock()
	if sawExpiry {
		t.Fatal("session expired during failover")
	}
	evMu.Unlock()
	other, _ := connectAll(t, []string{e.addr(newLead)}, 10*time.Second)
	if ok, _, err := other.Exists("/eph"); err != nil || !ok {
		t.Fatalf("ephemeral lost on failover: %v %v", ok, err)
	}

	// The old leader restarts on its data and catches up.
	if err := e.start(e.members[lead]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted member to catch up", func() bool {
		s := e.server(lead)
		s.mu.RLock()
		defer s.mu.RUnlock()
		ok, _, _ := s.state.NodeState("/after")
		return ok && s.Mode() == "follower"
	})
	rc, _ := connectAll(t, []string{e.addr(lead)}, 10*time.Second)
	if ok, _, err := rc.Exists("/eph"); err != nil || !ok {
		t.Fatalf("restarted member: /eph %v %v", ok, err)
	}

	// A member whose data directory is wiped may not bootstrap again, nor
	// take part: it is refused (admission.go; TestEnsembleWipedVoter).
	fol := e.followers(e.leader())[0]
	e.stop(fol)
	dir := e.members[fol].cfg.DataDir
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	wiped, err := New(e.members[fol].cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := wiped.Ready(); wiped.Mode() != "refused" || ok || !strings.Contains(why, "refusing to vote") {
		t.Fatalf("wiped member: mode %s, ready %v %q", wiped.Mode(), ok, why)
	}
	wiped.Close()
	c.Close()
	expired.Wait()
}

func TestEnsembleIdentityMismatch(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{ServerID: 1, ListenAddr: "127.0.0.1:0", DataDir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = New(Config{ServerID: 2, ListenAddr: "127.0.0.1:0", DataDir: dir, Logger: testLogger()})
	if err == nil || !strings.Contains(err.Error(), "belongs to server 1") {
		t.Fatalf("other server id: %v", err)
	}
	peers := map[uint64]string{1: freePort(t)}
	cfg := ensembleConfig(t, 1, "127.0.0.1:0", peers, nil)
	cfg.DataDir = dir
	_, err = New(cfg)
	if err == nil || !strings.Contains(err.Error(), `cluster "test-cluster"`) {
		t.Fatalf("other cluster id: %v", err)
	}
}

func TestEnsembleReconfig(t *testing.T) {
	const super = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" // super:test
	e := newTestEnsemble(t, 3, 0, func(c *Config) {
		c.ReconfigEnabled = true
		c.SuperDigest = super
	})
	e.leader()
	e.waitConfig()

	c, _ := connectAll(t, e.addrs(), 10*time.Second)
	// Without super (or WRITE on /zookeeper/config): NoAuth.
	if _, err := c.IncrementalReconfig(nil, []string{"3"}, -1); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("reconfig without auth: %v", err)
	}
	if err := c.AddAuth("digest", []byte("super:test")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.IncrementalReconfig(nil, []string{"3"}, 0x7777); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("reconfig with a stale version: %v", err)
	}

	// A fourth member joins.
	peerAddr, clientAddr := freePort(t), freePort(t)
	peers := map[uint64]string{}
	for id, m := range e.members {
		peers[id] = m.cfg.Peers[id]
	}
	peers[4] = peerAddr + ";" + clientAddr
	cfg := ensembleConfig(t, 4, clientAddr, peers, nil)
	cfg.Join, cfg.ReconfigEnabled, cfg.SuperDigest = true, true, super
	m4 := &testMember{id: 4, cfg: cfg}
	e.members[4] = m4
	if err := e.start(m4); err != nil {
		t.Fatal(err)
	}
	if m := e.server(4).Mode(); m != "joining" {
		t.Fatalf("joining member mode %q", m)
	}
	_, cur := e.server(1).configNow()
	st, err := c.IncrementalReconfig([]string{"server.4=" + peerAddr + ":0:participant;" + clientAddr}, nil, cur)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reconfig: new config version %x", st.Mzxid)
	waitFor(t, "member 4 to follow", func() bool { return e.server(4).Mode() == "follower" })
	d4, _ := connectAll(t, []string{clientAddr}, 10*time.Second)
	if _, err := d4.Create("/from-4", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, err := d4.Sync("/zookeeper/config"); err != nil {
		t.Fatal(err)
	}
	text, _, err := d4.Get("/zookeeper/config")
	if err != nil || !strings.Contains(string(text), "server.4=") {
		t.Fatalf("config on member 4: %q %v", text, err)
	}
	if v, _ := e.server(1).node.Membership(); len(v) != 4 {
		t.Fatalf("voters after add: %v", v)
	}

	// Member 4 leaves again.
	retry(t, "remove member 4", func() error {
		_, err := c.IncrementalReconfig(nil, []string{"4"}, -1)
		return err
	})
	waitFor(t, "member 4 to be removed", func() bool {
		v, _ := e.server(1).node.Membership()
		return len(v) == 3
	})
	// Member 4 learns of its removal only if the commit reached it before
	// the leader stopped talking to it (Raft does not tell a removed
	// member); either way it is out of every quorum.
	t.Logf("member 4 after removal: %s", e.server(4).Mode())
	e.stop(4)
	// Non-incremental: member 3 becomes an observer (joint consensus is
	// not needed for one voter, but the path is the same).
	var lines []string
	for id := uint64(1); id <= 3; id++ {
		m, _ := ParseMemberSpec(id, peers[id], id == 3)
		lines = append(lines, m.String())
	}
	retry(t, "demote member 3", func() error {
		_, err := c.Reconfig(lines, -1)
		return err
	})
	waitFor(t, "member 3 to observe", func() bool { return e.server(3).Mode() == "observer" })
	// Demoting the leader makes it step down: writes may see
	// ConnectionLoss meanwhile.
	retry(t, "write after demotion", func() error {
		_, err := c.Create("/after-reconfig", nil, 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	})

	// A member restarted after reconfigs replays them (its flags still
	// describe the first configuration; the log wins).
	e.stop(1)
	if err := e.start(e.members[1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "member 1 back with the new configuration", func() bool {
		s := e.server(1)
		v, l := s.node.Membership()
		s.mu.RLock()
		ok, _, _ := s.state.NodeState("/after-reconfig")
		s.mu.RUnlock()
		return ok && len(v) == 2 && len(l) == 1 && (s.Mode() == "leader" || s.Mode() == "follower")
	})
}

// configNow returns /zookeeper/config and its version.
func (s *Server) configNow() (string, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.Config()
}
