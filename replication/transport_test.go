package replication

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/paddockhq/paddock/internal/testpki"
)

// The tests below run real Nodes over real loopback TCP. Nothing asserts
// how fast something happens: every wait is for a condition, with a
// deadline generous enough for a loaded 2-core machine under -race.

const clusterWait = 90 * time.Second

var showLogs = flag.Bool("transport.logs", false, "with -v, print the cluster tests' transport logs")

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkGoroutines fails the test if, once every later-registered cleanup
// has run (clusters, transports), more goroutines are alive than at the
// start. Register it first.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(20 * time.Second)
		for {
			now := runtime.NumGoroutine()
			if now <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, now, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// ---- a cluster of real nodes over TCPTransport ----

type tcpMember struct {
	node *Node
	tr   *TCPTransport
	sm   *listSM
}

type tcpCluster struct {
	t         *testing.T
	clusterID string
	peers     []uint64
	dirs      map[uint64]string
	snapEvery uint64
	tlsFor    func(id uint64) (server, client *tls.Config)
	joining   map[uint64]bool // members started empty, to be added by conf change
	logs      *logBuf

	mu      sync.Mutex
	addrs   map[uint64]string // what the resolver answers; changes on restart
	members map[uint64]*tcpMember
}

func newTCPCluster(t *testing.T, n int, tune func(*tcpCluster)) *tcpCluster {
	c := &tcpCluster{
		t:         t,
		clusterID: "test-" + t.Name(),
		dirs:      map[uint64]string{},
		addrs:     map[uint64]string{},
		members:   map[uint64]*tcpMember{},
		joining:   map[uint64]bool{},
		logs:      &logBuf{},
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.peers = append(c.peers, id)
		c.dirs[id] = t.TempDir()
	}
	if tune != nil {
		tune(c)
	}
	t.Cleanup(c.stopAll)
	for _, id := range c.peers {
		c.start(id)
	}
	return c
}

// resolve answers with a host name, not an IP, so every connect goes
// through name resolution as it does on Kubernetes.
func (c *tcpCluster) resolve(id uint64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.addrs[id]
	return a, ok
}

// start opens member id (again) on its data directory, listening on a new
// port: the others find it only because they resolve at each connect.
func (c *tcpCluster) start(id uint64) {
	c.t.Helper()
	tcfg := TransportConfig{
		ID:         id,
		ClusterID:  c.clusterID,
		ListenAddr: "127.0.0.1:0",
		Resolve:    c.resolve,
		Logger:     slogTo(c.logs),
	}
	if c.tlsFor != nil {
		tcfg.ServerTLS, tcfg.ClientTLS = c.tlsFor(id)
	}
	tr, err := NewTCPTransport(tcfg)
	if err != nil {
		c.t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(tr.Addr().String())
	cfg := testConfig(c.dirs[id])
	cfg.ID, cfg.Peers, cfg.Transport = id, c.peers, tr
	cfg.Join = c.joining[id]
	cfg.TickInterval = 20 * time.Millisecond
	if c.snapEvery > 0 {
		cfg.SnapshotEvery = c.snapEvery
	}
	sm := &listSM{}
	n, err := Open(cfg, sm)
	if err != nil {
		tr.Close()
		c.t.Fatal(err)
	}
	tr.SetHandler(n)
	c.mu.Lock()
	c.addrs[id] = net.JoinHostPort("localhost", port)
	c.members[id] = &tcpMember{node: n, tr: tr, sm: sm}
	c.mu.Unlock()
}

// stop closes member id's node, then its transport.
func (c *tcpCluster) stop(id uint64) {
	c.mu.Lock()
	m := c.members[id]
	delete(c.members, id)
	c.mu.Unlock()
	if m == nil {
		return
	}
	if err := m.node.Close(); err != nil {
		c.t.Errorf("close node %d: %v", id, err)
	}
	if err := m.tr.Close(); err != nil {
		c.t.Errorf("close transport %d: %v", id, err)
	}
}

func (c *tcpCluster) stopAll() {
	for _, id := range c.peers {
		c.stop(id)
	}
	if c.t.Failed() || testing.Verbose() && *showLogs {
		c.t.Logf("transport logs:\n%s", c.logs.String())
	}
}

func (c *tcpCluster) member(id uint64) *tcpMember {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[id]
}

// live returns the running members among ids (all running ones if nil).
func (c *tcpCluster) live(ids []uint64) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, id := range c.peers {
		if _, ok := c.members[id]; ok && (ids == nil || slices.Contains(ids, id)) {
			out = append(out, id)
		}
	}
	return out
}

// waitLeader waits until one of the running members among ids (all if
// nil) is leader and returns its id.
func (c *tcpCluster) waitLeader(ids []uint64) uint64 {
	c.t.Helper()
	var lead uint64
	waitFor(c.t, clusterWait, "a leader", func() bool {
		for _, id := range c.live(ids) {
			if m := c.member(id); m != nil && m.node.IsLeader() {
				lead = id
				return true
			}
		}
		return false
	})
	return lead
}

// replicate gets every datum applied on a leader chosen among ids (all
// running members if nil), re-proposing what a leader change lost, then
// waits until those members hold identical logs.
func (c *tcpCluster) replicate(ids []uint64, data []string) {
	c.t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		if time.Now().After(deadline) {
			c.t.Fatalf("could not replicate %d entries", len(data))
		}
		lead := c.waitLeader(ids)
		m := c.member(lead)
		missing := missingData(m.sm, data)
		if len(missing) == 0 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, d := range missing {
			if err := m.node.Propose(ctx, []byte(d)); err != nil {
				break
			}
		}
		cancel()
		wait := time.Now().Add(15 * time.Second)
		for time.Now().Before(wait) && m.node.IsLeader() && len(missingData(m.sm, data)) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	c.waitConsistent(ids)
}

func missingData(sm *listSM, data []string) []string {
	have := map[string]bool{}
	for _, r := range sm.snapshot() {
		have[r.Data] = true
	}
	var out []string
	for _, d := range data {
		if !have[d] {
			out = append(out, d)
		}
	}
	return out
}

// waitConsistent waits until the running members among ids (all if nil)
// have applied identical logs.
func (c *tcpCluster) waitConsistent(ids []uint64) {
	c.t.Helper()
	var why string
	ok := func() bool {
		live := c.live(ids)
		ref := c.member(live[0]).sm.snapshot()
		for _, id := range live[1:] {
			got := c.member(id).sm.snapshot()
			if len(got) != len(ref) {
				why = fmt.Sprintf("member %d applied %d entries, member %d %d", id, len(got), live[0], len(ref))
				return false
			}
			for i := range got {
				if got[i] != ref[i] {
					why = fmt.Sprintf("member %d differs from member %d at %d: %+v vs %+v", id, live[0], i, got[i], ref[i])
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(clusterWait)
	for !ok() {
		if time.Now().After(deadline) {
			c.t.Fatalf("members never converged: %s", why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTCPTransportThreeMembers: election, replication, losing the leader,
// and a restarted member (same directory, new address) catching up.
func TestTCPTransportThreeMembers(t *testing.T) {
	checkGoroutines(t)
	c := newTCPCluster(t, 3, nil)

	c.replicate(nil, datas("a", 30))

	old := c.waitLeader(nil)
	c.stop(old)
	newLead := c.waitLeader(c.live(nil))
	if newLead == old {
		t.Fatalf("stopped member %d still leads", old)
	}
	c.replicate(nil, datas("b", 30))

	c.start(old) // same directory, new port
	c.replicate(nil, datas("c", 10))
	if got := c.member(old).sm.len(); got < 70 {
		t.Fatalf("restarted member applied %d entries, want >= 70", got)
	}
	for _, id := range c.peers {
		if st := c.member(id).tr.Stats(); st.MessagesReceived == 0 {
			t.Errorf("member %d received no messages: %+v", id, st)
		}
	}
}

// TestTCPTransportAddMember: a fourth member joins a running ensemble
// through a conf change. Its address becomes resolvable only when it
// starts, and it receives from members it has never heard of.
func TestTCPTransportAddMember(t *testing.T) {
	checkGoroutines(t)
	c := newTCPCluster(t, 3, nil)
	c.replicate(nil, datas("a", 20))

	const newID = 4
	c.mu.Lock()
	c.peers = append(c.peers, newID)
	c.dirs[newID] = t.TempDir()
	c.joining[newID] = true
	c.mu.Unlock()
	c.start(newID)

	cc := &raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: proto.Uint64(newID)}
	waitFor(t, clusterWait, "the conf change to be accepted", func() bool {
		lead := c.member(c.waitLeader(nil))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return lead.node.ProposeConfChange(ctx, cc) == nil
	})
	waitFor(t, clusterWait, "four voters", func() bool {
		lead := c.member(c.waitLeader(nil))
		return len(lead.node.Status().Config.Voters[0]) == 4
	})
	c.replicate(nil, datas("b", 10))
	if got := c.member(newID).sm.len(); got < 30 {
		t.Fatalf("new member applied %d entries, want >= 30", got)
	}
}

// TestTCPTransportFiveMembers: a five-member ensemble survives two
// failures (the leader and one more) and the two catch up on return.
func TestTCPTransportFiveMembers(t *testing.T) {
	checkGoroutines(t)
	c := newTCPCluster(t, 5, nil)
	c.replicate(nil, datas("a", 20))

	lead := c.waitLeader(nil)
	other := c.peers[0]
	if other == lead {
		other = c.peers[1]
	}
	c.stop(lead)
	c.stop(other)
	c.replicate(nil, datas("b", 20)) // 3 of 5 is a quorum

	c.start(lead)
	c.start(other)
	c.replicate(nil, datas("c", 5))
	if n := len(c.live(nil)); n != 5 {
		t.Fatalf("%d members running, want 5", n)
	}
}

// TestTCPTransportSnapshotCatchUp: a member that was down while the leader
// snapshotted and compacted its log past it catches up through a snapshot
// of tens of megabytes sent over the transport.
func TestTCPTransportSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("moves ~30 MB through three WALs")
	}
	checkGoroutines(t)
	c := newTCPCluster(t, 3, func(c *tcpCluster) { c.snapEvery = 2000 })
	c.replicate(nil, datas("a", 10))

	lead := c.waitLeader(nil)
	down := c.peers[0]
	if down == lead {
		down = c.peers[1]
	}
	downAt := c.member(down).node.AppliedIndex()
	c.stop(down)

	// Entries of 4 KiB, in chunks, until every running member has
	// snapshotted and compacted its log past the stopped one (compaction
	// keeps snapshotCatchUpEntries behind the newest snapshot): ~30 MB.
	pad := strings.Repeat("x", 4096)
	compacted := func() bool {
		for _, id := range c.live(nil) {
			if first, _ := c.member(id).node.storage.FirstIndex(); first <= downAt+1 {
				return false
			}
		}
		return true
	}
	for chunk := 0; !compacted(); chunk++ {
		if chunk == 20 {
			t.Fatal("logs never compacted")
		}
		big := datas(fmt.Sprintf("big%d", chunk), 1000)
		for i := range big {
			big[i] += pad
		}
		c.replicate(nil, big)
	}

	c.start(down)
	c.waitConsistent(nil)
	m := c.member(down)
	m.sm.mu.Lock()
	restored := m.sm.restored
	m.sm.mu.Unlock()
	if restored == 0 || m.tr.Stats().SnapshotsReceived == 0 {
		t.Fatalf("member %d caught up without a snapshot transfer (restored %d, transport %+v)",
			down, restored, m.tr.Stats())
	}
	var sent uint64
	for _, id := range c.live(nil) {
		sent += c.member(id).tr.Stats().SnapshotsSent
	}
	if sent == 0 {
		t.Fatal("no member reports having sent a snapshot")
	}
}

// TestTCPTransportBlock: the fault-injection hook isolates the leader;
// the others elect a new one and make progress; after Unblock the old
// leader catches up.
func TestTCPTransportBlock(t *testing.T) {
	checkGoroutines(t)
	c := newTCPCluster(t, 3, nil)
	c.replicate(nil, datas("a", 10))

	old := c.waitLeader(nil)
	var rest []uint64
	for _, id := range c.peers {
		if id != old {
			rest = append(rest, id)
			c.member(id).tr.Block(old)
		}
	}
	c.member(old).tr.Block(rest...)
	c.waitLeader(rest)
	c.replicate(rest, datas("b", 20))

	for _, id := range rest {
		c.member(id).tr.Unblock(old)
	}
	c.member(old).tr.Unblock(rest...)
	c.replicate(nil, datas("c", 5))
	if got := c.member(old).sm.len(); got < 35 {
		t.Fatalf("formerly isolated member applied %d entries, want >= 35", got)
	}
}

// ---- mutual TLS ----

type testCA struct{ *testpki.CA }

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	return &testCA{testpki.NewNamed(t, pkix.Name{CommonName: name})}
}

// configs issues a member certificate (valid for localhost and 127.0.0.1,
// as server and as client) and returns the member's mutual-TLS configs.
func (ca *testCA) configs(t testing.TB, name string) (server, client *tls.Config) {
	t.Helper()
	leaf := ca.Issue(t, name, testpki.Server)
	server = ca.ServerConfig(leaf, tls.RequireAndVerifyClientCert)
	server.MinVersion = tls.VersionTLS13
	client = ca.ClientConfig("", leaf)
	client.MinVersion = tls.VersionTLS13
	return server, client
}

// TestTCPTransportMutualTLS runs a three-member ensemble over mutual TLS.
func TestTCPTransportMutualTLS(t *testing.T) {
	checkGoroutines(t)
	ca := newTestCA(t, "paddock test CA")
	c := newTCPCluster(t, 3, func(c *tcpCluster) {
		c.tlsFor = func(id uint64) (*tls.Config, *tls.Config) {
			return ca.configs(t, fmt.Sprintf("member-%d", id))
		}
	})
	c.replicate(nil, datas("tls", 20))
	if strings.Contains(c.logs.String(), "TLS handshake failed") {
		t.Fatalf("unexpected TLS failures:\n%s", c.logs.String())
	}
}

// ---- transport-level tests with a recording handler ----

// recHandler records what a transport delivers. If stepGate is set, Step
// of a message for which it returns a channel waits for that channel.
type recHandler struct {
	mu          sync.Mutex
	msgs        []*raftpb.Message
	unreachable map[uint64]int
	snaps       map[uint64][]raft.SnapshotStatus
	stepGate    func(m *raftpb.Message) <-chan struct{}
	stepping    chan *raftpb.Message // if set, receives gated messages as they wait
}

func newRecHandler() *recHandler {
	return &recHandler{unreachable: map[uint64]int{}, snaps: map[uint64][]raft.SnapshotStatus{}}
}

func (h *recHandler) Step(ctx context.Context, m *raftpb.Message) error {
	if h.stepGate != nil {
		if gate := h.stepGate(m); gate != nil {
			if h.stepping != nil {
				select {
				case h.stepping <- m:
				default:
				}
			}
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	h.mu.Lock()
	h.msgs = append(h.msgs, m)
	h.mu.Unlock()
	return nil
}

func (h *recHandler) ReportUnreachable(id uint64) {
	h.mu.Lock()
	h.unreachable[id]++
	h.mu.Unlock()
}

func (h *recHandler) ReportSnapshot(id uint64, s raft.SnapshotStatus) {
	h.mu.Lock()
	h.snaps[id] = append(h.snaps[id], s)
	h.mu.Unlock()
}

func (h *recHandler) count(typ raftpb.MessageType, from uint64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m.GetType() == typ && m.GetFrom() == from {
			n++
		}
	}
	return n
}

func (h *recHandler) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

func (h *recHandler) unreachableCount(id uint64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.unreachable[id]
}

func (h *recHandler) snapReports(id uint64) []raft.SnapshotStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.snaps[id])
}

// addrBook is a resolver tests fill in as transports start.
type addrBook struct {
	mu sync.Mutex
	m  map[uint64]string
}

func (b *addrBook) set(id uint64, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[uint64]string{}
	}
	b.m[id] = addr
}

func (b *addrBook) resolve(id uint64) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.m[id]
	return a, ok
}

// newTestTransport starts a transport registered in book, closed at the
// end of the test.
func newTestTransport(t *testing.T, book *addrBook, cfg TransportConfig, h Handler) *TCPTransport {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	if cfg.Resolve == nil {
		cfg.Resolve = book.resolve
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	cfg.Handler = h
	tr, err := NewTCPTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	book.set(cfg.ID, tr.Addr().String())
	t.Cleanup(func() { tr.Close() })
	return tr
}

func heartbeat(from, to uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(1)}
}

// sendUntil sends msg every few milliseconds until cond holds.
func sendUntil(t *testing.T, tr *TCPTransport, msg *raftpb.Message, what string, cond func() bool) {
	t.Helper()
	waitFor(t, 30*time.Second, what, func() bool {
		tr.Send([]*raftpb.Message{proto.Clone(msg).(*raftpb.Message)})
		time.Sleep(10 * time.Millisecond)
		return cond()
	})
}

// TestTCPTransportRejectsForeignCA: a peer whose certificate comes from
// another CA can neither connect to a member nor be connected to.
func TestTCPTransportRejectsForeignCA(t *testing.T) {
	checkGoroutines(t)
	good, evil := newTestCA(t, "paddock CA"), newTestCA(t, "other CA")
	book := &addrBook{}
	logs := &logBuf{}

	var h1, h2, h3 = newRecHandler(), newRecHandler(), newRecHandler()
	s1, c1 := good.configs(t, "member-1")
	m1 := newTestTransport(t, book, TransportConfig{ID: 1, ClusterID: "c", ServerTLS: s1, ClientTLS: c1, Logger: slogTo(logs)}, h1)
	s3, c3 := good.configs(t, "member-3")
	m3 := newTestTransport(t, book, TransportConfig{ID: 3, ClusterID: "c", ServerTLS: s3, ClientTLS: c3}, h3)
	s2, c2 := evil.configs(t, "member-2")
	rogue := newTestTransport(t, book, TransportConfig{ID: 2, ClusterID: "c", ServerTLS: s2, ClientTLS: c2}, h2)

	// Control: two members of the same CA talk.
	sendUntil(t, m3, heartbeat(3, 1), "member 3 reaching member 1 over mTLS",
		func() bool { return h1.count(raftpb.MsgHeartbeat, 3) > 0 })

	// The rogue dials member 1: member 1 refuses the TLS handshake.
	sendUntil(t, rogue, heartbeat(2, 1), "member 1 refusing the rogue's certificate",
		func() bool { return strings.Contains(logs.String(), "TLS handshake failed") })
	// Member 1 dials the rogue: member 1 does not trust its certificate.
	sendUntil(t, m1, heartbeat(1, 2), "member 1 refusing to talk to the rogue",
		func() bool { return strings.Contains(logs.String(), "TLS handshake with member 2") })

	if n := h1.count(raftpb.MsgHeartbeat, 2); n != 0 {
		t.Fatalf("member 1 received %d messages from the rogue", n)
	}
	if n := h2.total(); n != 0 {
		t.Fatalf("rogue received %d messages", n)
	}
	if m1.Stats().HandshakesRefused == 0 {
		t.Fatalf("member 1 counted no refused handshake: %+v", m1.Stats())
	}
	waitFor(t, 30*time.Second, "raft on member 1 to be told the rogue is unreachable", func() bool {
		return h1.unreachableCount(2) > 0
	})
}

// TestTCPTransportRejectsOtherCluster: a member of another cluster, an
// unknown protocol version, a connection meant for another member and a
// stranger speaking another protocol are all refused, with log lines
// naming both sides.
func TestTCPTransportRejectsOtherCluster(t *testing.T) {
	checkGoroutines(t)
	book := &addrBook{}
	logsA, logsB := &logBuf{}, &logBuf{}
	ha, hb := newRecHandler(), newRecHandler()
	a := newTestTransport(t, book, TransportConfig{ID: 1, ClusterID: "alpha", Logger: slogTo(logsA)}, ha)
	b := newTestTransport(t, book, TransportConfig{ID: 2, ClusterID: "beta", Logger: slogTo(logsB)}, hb)

	sendUntil(t, a, heartbeat(1, 2), "beta refusing alpha",
		func() bool { return strings.Contains(logsB.String(), "cluster id mismatch") })
	line := findLine(logsB.String(), "refused peer connection")
	for _, want := range []string{"local_id=2", "local_cluster=beta", "peer_id=1", "peer_cluster=alpha"} {
		if !strings.Contains(line, want) {
			t.Errorf("refusal log line lacks %q: %s", want, line)
		}
	}
	waitFor(t, 30*time.Second, "alpha logging the refusal", func() bool {
		return strings.Contains(logsA.String(), `refused us (member 1 of cluster \"alpha\")`)
	})
	if hb.total() != 0 {
		t.Fatalf("beta received %d messages from alpha", hb.total())
	}
	_ = b

	// Hand-made handshakes straight at b.
	try := func(h hello) helloReply {
		t.Helper()
		conn, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		if err := writeFrame(conn, frameHello, h.encode()); err != nil {
			t.Fatal(err)
		}
		typ, payload, err := readFrame(conn, maxHelloBytes)
		if err != nil || typ != frameHelloReply {
			t.Fatalf("reply: type %d, %v", typ, err)
		}
		r, err := decodeHelloReply(payload)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := try(hello{Version: 99, Kind: connStream, From: 1, To: 2, Cluster: "beta"})
	if r.Status != helloRefused || !strings.Contains(r.Reason, "version 99") || r.ID != 2 || r.Cluster != "beta" {
		t.Fatalf("version 99: %+v", r)
	}
	r = try(hello{Version: peerProtocolVersion, Kind: connStream, From: 1, To: 7, Cluster: "beta"})
	if r.Status != helloRefused || !strings.Contains(r.Reason, "wrong member") {
		t.Fatalf("wrong member: %+v", r)
	}
	r = try(hello{Version: peerProtocolVersion, Kind: connStream, From: 1, To: 2, Cluster: "beta"})
	if r.Status != helloAccepted {
		t.Fatalf("valid handshake refused: %+v", r)
	}

	// Something that is not a Paddock member at all.
	conn, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("stranger got %d bytes back", n)
	}
	conn.Close()
	waitFor(t, 30*time.Second, "the stranger refusal in the log", func() bool {
		return strings.Contains(logsB.String(), "not a Paddock peer handshake")
	})
}

func findLine(s, substr string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}

// TestTCPTransportSnapshotDoesNotBlockStreams: while a 40 MB snapshot to
// member 2 is in flight (held by member 2's raft), messages to member 2
// and member 3 keep flowing; a second snapshot meanwhile is refused at
// once; the snapshot arrives intact and is reported finished.
func TestTCPTransportSnapshotDoesNotBlockStreams(t *testing.T) {
	checkGoroutines(t)
	book := &addrBook{}
	release := make(chan struct{})
	h1, h2, h3 := newRecHandler(), newRecHandler(), newRecHandler()
	h2.stepping = make(chan *raftpb.Message, 1)
	h2.stepGate = func(m *raftpb.Message) <-chan struct{} {
		if m.GetType() == raftpb.MsgSnap {
			return release
		}
		return nil
	}
	// The acknowledgement waits for member 2's raft, which this test holds
	// for as long as it likes.
	m1 := newTestTransport(t, book, TransportConfig{ID: 1, ClusterID: "c", IOTimeout: 10 * time.Minute}, h1)
	newTestTransport(t, book, TransportConfig{ID: 2, ClusterID: "c"}, h2)
	newTestTransport(t, book, TransportConfig{ID: 3, ClusterID: "c"}, h3)

	body := make([]byte, 40<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	snap := &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(1),
		Snapshot: &raftpb.Snapshot{Data: body, Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(100), Term: proto.Uint64(1), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		}},
	}
	m1.Send([]*raftpb.Message{snap})
	select {
	case <-h2.stepping:
	case <-time.After(clusterWait):
		t.Fatal("snapshot never reached member 2")
	}
	// The snapshot is now held inside member 2; streams must not care.
	sendUntil(t, m1, heartbeat(1, 2), "a heartbeat to member 2 during the snapshot",
		func() bool { return h2.count(raftpb.MsgHeartbeat, 1) > 0 })
	sendUntil(t, m1, heartbeat(1, 3), "a heartbeat to member 3 during the snapshot",
		func() bool { return h3.count(raftpb.MsgHeartbeat, 1) > 0 })
	// A second snapshot while one is in flight is refused at once.
	m1.Send([]*raftpb.Message{snap})
	waitFor(t, 30*time.Second, "the second snapshot to be refused", func() bool {
		return slices.Equal(h1.snapReports(2), []raft.SnapshotStatus{raft.SnapshotFailure})
	})

	close(release)
	waitFor(t, clusterWait, "the snapshot to be reported finished", func() bool {
		return slices.Contains(h1.snapReports(2), raft.SnapshotFinish)
	})
	if h2.count(raftpb.MsgSnap, 1) != 1 {
		t.Fatalf("member 2 stepped %d snapshots, want 1", h2.count(raftpb.MsgSnap, 1))
	}
	h2.mu.Lock()
	for _, m := range h2.msgs {
		if m.GetType() == raftpb.MsgSnap && !bytes.Equal(m.GetSnapshot().GetData(), body) {
			t.Error("snapshot body corrupted in transit")
		}
	}
	h2.mu.Unlock()
	if st := m1.Stats(); st.SnapshotsSent != 1 || st.SnapshotsFailed != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestTCPTransportDropsAndReports: when a peer stops reading, its queue
// fills and messages are dropped with ReportUnreachable; a peer with no
// address is reported too; Send never blocks meanwhile.
func TestTCPTransportDropsAndReports(t *testing.T) {
	checkGoroutines(t)
	book := &addrBook{}
	stuck := make(chan struct{})
	defer close(stuck)
	h1, h2 := newRecHandler(), newRecHandler()
	h2.stepGate = func(*raftpb.Message) <-chan struct{} { return stuck } // never reads on
	m1 := newTestTransport(t, book, TransportConfig{ID: 1, ClusterID: "c", QueueSize: 16}, h1)
	newTestTransport(t, book, TransportConfig{ID: 2, ClusterID: "c"}, h2)

	app := &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(1),
		Entries: []*raftpb.Entry{{Index: proto.Uint64(1), Term: proto.Uint64(1), Data: make([]byte, 64<<10)}},
	}
	waitFor(t, clusterWait, "messages to a stuck peer to be dropped and reported", func() bool {
		for range 32 {
			m1.Send([]*raftpb.Message{app})
		}
		time.Sleep(time.Millisecond)
		return h1.unreachableCount(2) > 0 && m1.Stats().MessagesDropped > 0
	})

	sendUntil(t, m1, heartbeat(1, 9), "a peer without an address to be reported",
		func() bool { return h1.unreachableCount(9) > 0 })
}

// TestFrameFormat covers the framing and handshake encodings.
func TestFrameFormat(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, frameMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(&buf, frameSnapAck, nil); err != nil {
		t.Fatal(err)
	}
	raw := slices.Clone(buf.Bytes())
	typ, p, err := readFrame(&buf, 100)
	if err != nil || typ != frameMessage || string(p) != "hello" {
		t.Fatalf("got %d %q %v", typ, p, err)
	}
	if typ, p, err = readFrame(&buf, 100); err != nil || typ != frameSnapAck || len(p) != 0 {
		t.Fatalf("got %d %q %v", typ, p, err)
	}

	bad := slices.Clone(raw)
	bad[frameHeaderLen+1] ^= 1 // flip a payload bit
	if _, _, err := readFrame(bytes.NewReader(bad), 100); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupt payload: %v", err)
	}
	bad = slices.Clone(raw)
	bad[8] = frameHello // the type is covered by the checksum too
	if _, _, err := readFrame(bytes.NewReader(bad), 100); err == nil {
		t.Fatal("changed type accepted")
	}
	if _, _, err := readFrame(bytes.NewReader(raw), 4); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized frame: %v", err)
	}
	if _, _, err := readFrame(bytes.NewReader(raw[:12]), 100); err == nil {
		t.Fatal("truncated frame accepted")
	}
	// A length far beyond what arrives must not be trusted for allocation.
	var huge bytes.Buffer
	huge.Write([]byte{0xff, 0xff, 0xff, 0x00, 0, 0, 0, 0, frameMessage, 1, 2, 3})
	if _, _, err := readFrame(&huge, maxSnapFrame); err == nil {
		t.Fatal("short huge frame accepted")
	}

	h := hello{Version: 1, Kind: connSnapshot, From: 3, To: 5, Cluster: "prod-zk"}
	if got, err := decodeHello(h.encode()); err != nil || got != h {
		t.Fatalf("hello round trip: %+v %v", got, err)
	}
	r := helloReply{Version: 1, Status: helloRefused, ID: 5, Cluster: "prod-zk", Reason: "because"}
	if got, err := decodeHelloReply(r.encode()); err != nil || got != r {
		t.Fatalf("reply round trip: %+v %v", got, err)
	}
	enc := h.encode()
	for i := range enc {
		decodeHello(enc[:i]) // must not panic
	}
	enc[0] = 'X'
	if _, err := decodeHello(enc); err == nil {
		t.Fatal("bad magic accepted")
	}
}

// TestNewTCPTransportValidates checks the configuration errors.
func TestNewTCPTransportValidates(t *testing.T) {
	ca := newTestCA(t, "ca")
	srv, cli := ca.configs(t, "m")
	lax := srv.Clone()
	lax.ClientAuth = tls.NoClientCert
	resolve := func(uint64) (string, bool) { return "", false }
	for name, cfg := range map[string]TransportConfig{
		"no id":          {ClusterID: "c", ListenAddr: "127.0.0.1:0", Resolve: resolve},
		"no cluster":     {ID: 1, ListenAddr: "127.0.0.1:0", Resolve: resolve},
		"no resolver":    {ID: 1, ClusterID: "c", ListenAddr: "127.0.0.1:0"},
		"half tls":       {ID: 1, ClusterID: "c", ListenAddr: "127.0.0.1:0", Resolve: resolve, ServerTLS: srv},
		"unverified tls": {ID: 1, ClusterID: "c", ListenAddr: "127.0.0.1:0", Resolve: resolve, ServerTLS: lax, ClientTLS: cli},
	} {
		if tr, err := NewTCPTransport(cfg); err == nil {
			tr.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestTCPTransportProbes: a probe gets the acceptor's Probe answer, a
// status probe its StatusProbe answer to the question, each given the
// asker's id; a member
// without StatusProbe (as an older version) refuses status probes as an
// unknown kind, which the asker sees as ErrStatusProbeUnsupported, and
// still answers plain probes.
func TestTCPTransportProbes(t *testing.T) {
	checkGoroutines(t)
	book := &addrBook{}
	a := newTestTransport(t, book, TransportConfig{ID: 1, ClusterID: "c"}, newRecHandler())
	newTestTransport(t, book, TransportConfig{ID: 2, ClusterID: "c",
		Probe:       func(from uint64) []byte { return fmt.Appendf(nil, "plain for %d", from) },
		StatusProbe: func(from uint64, q []byte) []byte { return fmt.Appendf(nil, "status for %d: %s", from, q) },
	}, newRecHandler())
	newTestTransport(t, book, TransportConfig{ID: 3, ClusterID: "c",
		Probe: func(from uint64) []byte { return []byte("old") },
	}, newRecHandler())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got, err := a.Probe(ctx, 2); err != nil || string(got) != "plain for 1" {
		t.Fatalf("probe of 2: %q %v", got, err)
	}
	if got, err := a.ProbeStatus(ctx, 2, []byte("who am I?")); err != nil || string(got) != "status for 1: who am I?" {
		t.Fatalf("status probe of 2: %q %v", got, err)
	}
	if got, err := a.ProbeStatus(ctx, 3, nil); !errors.Is(err, ErrStatusProbeUnsupported) {
		t.Fatalf("status probe of 3 (no StatusProbe): %q %v, want ErrStatusProbeUnsupported", got, err)
	}
	if got, err := a.Probe(ctx, 3); err != nil || string(got) != "old" {
		t.Fatalf("probe of 3: %q %v", got, err)
	}
	if _, err := a.ProbeStatus(ctx, 9, nil); err == nil || errors.Is(err, ErrStatusProbeUnsupported) {
		t.Fatalf("status probe of an unknown member: %v", err)
	}
}
