package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/replication"
	"github.com/paddockhq/paddock/statemachine"
)

// EnsembleConfig makes a Server a member of a replicated ensemble. Its
// zero value is a standalone server (a one-voter Raft group).
//
// A zoo.cfg maps onto it line by line: each
// server.N=host:peerPort:electionPort[:participant|observer][;clientPort]
// becomes Peers[N] (participants) or Observers[N] (observers) holding the
// right-hand side as written; myid is Config.ServerID. Paddock's members
// speak Raft on the peer port; the election port is not used (Raft elects
// over the same connections) and is only kept in /zookeeper/config's text.
type EnsembleConfig struct {
	// Peers are the voting members' addresses, by server id:
	// "host:peerPort[:electionPort][;[clientHost:]clientPort]". The client
	// part, when given, is what /zookeeper/config advertises for that
	// member (clients such as Curator build connect strings from it).
	Peers map[uint64]string
	// Observers are the non-voting members (Raft learners), same format.
	// They serve reads and forward writes; they do not count in quorums.
	Observers map[uint64]string
	// PeerListenAddr is where this member accepts peer connections;
	// default: this member's own entry in Peers or Observers.
	PeerListenAddr string
	// ClusterID names the ensemble; required for an ensemble. Peer
	// connections between different cluster ids are refused, and the data
	// directory is stamped with it.
	ClusterID string
	// PeerTLSCert, PeerTLSKey and PeerTLSCA (PEM files) turn on mutual TLS
	// between members: all three or none.
	PeerTLSCert, PeerTLSKey, PeerTLSCA string
	// Join starts a member with an empty data directory as a new member of
	// a running ensemble (to be added with reconfig) instead of
	// bootstrapping. Without it, an empty data directory bootstraps only
	// when every other member of the configuration is empty as well.
	Join bool
	// ReconfigEnabled is ZooKeeper's reconfigEnabled: allow the reconfig
	// operation (subject to WRITE on /zookeeper/config, or super).
	ReconfigEnabled bool
	// ReadOnlyMode is ZooKeeper's readonlymode.enabled: a member that lost
	// the quorum serves read-only clients from its local state
	// (readonly.go).
	ReadOnlyMode bool
	// RequestTimeout bounds how long a write may wait to be committed in an
	// ensemble before its connection is closed, so that its client
	// reconnects (ConnectionLoss) instead of waiting forever for a
	// proposal a leader change lost; default 10s. Requests pending across a
	// leader change are failed sooner (two election timeouts after it).
	RequestTimeout time.Duration
	// RaftTick is the Raft tick (default 100ms); ElectionTicks the election
	// timeout in ticks (default 10).
	RaftTick      time.Duration
	ElectionTicks int
}

// Enabled reports whether the configuration describes an ensemble.
func (c *EnsembleConfig) Enabled() bool { return len(c.Peers)+len(c.Observers) > 0 }

// staticMembers parses Peers and Observers and checks that self is one of
// them.
func (c *EnsembleConfig) staticMembers(self uint64) (members, error) {
	out := members{}
	add := func(src map[uint64]string, observer bool) error {
		for id, spec := range src {
			if id == 0 || id > 254 {
				return fmt.Errorf("server id %d out of range 1..254", id)
			}
			if _, dup := out[id]; dup {
				return fmt.Errorf("server %d is listed as both a peer and an observer", id)
			}
			m, err := ParseMemberSpec(id, spec, observer)
			if err != nil {
				return err
			}
			m.Observer = observer
			out[id] = m
		}
		return nil
	}
	if err := add(c.Peers, false); err != nil {
		return nil, err
	}
	if err := add(c.Observers, true); err != nil {
		return nil, err
	}
	if _, ok := out[self]; !ok {
		return nil, fmt.Errorf("this server's id %d is in neither the peers nor the observers", self)
	}
	if v, _ := out.ids(); len(v) == 0 {
		return nil, errors.New("an ensemble needs at least one voting peer")
	}
	if c.ClusterID == "" {
		return nil, errors.New("an ensemble member needs a cluster id (--cluster-id)")
	}
	return out, nil
}

// ensemble is a Server's membership state.
type ensemble struct {
	on        bool
	static    members // from the flags: bootstrap, and addresses until the log has a config
	transport *replication.TCPTransport
	conf      atomic.Pointer[members] // parsed /zookeeper/config, nil while empty

	hasData atomic.Bool                      // the data directory holds a log (answers probes)
	node    atomic.Pointer[replication.Node] // once open (probe answers)
	adm     admission                        // admission of a member started empty (admission.go)
	rounds  *admissionRounds                 // while it waits
	// sawFresh holds the members this one found fresh when it probed them
	// before bootstrapping, and that have not sent it a raft message
	// since: a member that bootstrapped a moment earlier still lets them
	// bootstrap (see bootstrapGate).
	sawMu    sync.Mutex
	sawFresh map[uint64]bool

	leaderChangedAt atomic.Int64 // unix nanos of the last leader change seen
	removed         atomic.Bool  // this member was removed by a reconfig
	lastHeard       sync.Map     // peer id → unix nanos of its last raft message (reconfig.go)
	lastConfigProp  time.Time    // ensembleLoop only
}

func (e *ensemble) current() members {
	if p := e.conf.Load(); p != nil {
		return *p
	}
	return nil
}

// probe answers.
const (
	probeFresh        = "fresh"
	probeData         = "data"
	probeDataSawFresh = "data-saw-you-fresh"
)

// openNode checks the identity stamp and opens the replication node: a
// one-voter group for a standalone server, or an ensemble member with its
// TCP peer transport. An ensemble member whose data directory is empty
// either bootstraps a new ensemble with the other members (bootstrapGate)
// or is opened as a joiner that takes no part in raft until it is admitted
// (admission.go).
func (s *Server) openNode() (*replication.Node, error) {
	cfg := &s.cfg
	s.ens = &ensemble{on: cfg.EnsembleConfig.Enabled(), sawFresh: map[uint64]bool{}}
	if err := checkIdentity(cfg.DataDir, cfg.ClusterID, cfg.ServerID); err != nil {
		return nil, err
	}
	fresh, err := dataDirFresh(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	stamp, stamped, err := readIdentity(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("server: reading identity stamp: %w", err)
	}
	pending := stamped && stamp.PendingAdmission
	s.ens.hasData.Store(!fresh && !pending)
	rc := replication.Config{
		ID:            cfg.ServerID,
		Peers:         []uint64{cfg.ServerID},
		Dir:           cfg.DataDir,
		SnapshotEvery: cfg.SnapshotEvery,
		Logger:        cfg.Logger,
	}
	var t *replication.TCPTransport
	gated := false
	if s.ens.on {
		ms, err := cfg.EnsembleConfig.staticMembers(cfg.ServerID)
		if err != nil {
			return nil, fmt.Errorf("server: ensemble configuration: %w", err)
		}
		s.ens.static = ms
		if cfg.RequestTimeout <= 0 {
			cfg.RequestTimeout = 10 * time.Second
		}
		rc.Peers, rc.Learners = ms.ids()
		rc.Join = cfg.Join
		// Every reconfig reaches the log and is answered there, on every
		// member alike (reconfig.go).
		rc.CheckConfChangesOnApply = true
		rc.VetConfChange = s.vetConfChange
		rc.TickInterval, rc.ElectionTicks = cfg.RaftTick, cfg.ElectionTicks
		listen := cfg.PeerListenAddr
		if listen == "" {
			listen = ms[cfg.ServerID].PeerAddr()
		}
		tc := replication.TransportConfig{
			ID:          cfg.ServerID,
			ClusterID:   cfg.ClusterID,
			ListenAddr:  listen,
			Resolve:     s.resolvePeer,
			Logger:      cfg.Logger,
			Probe:       s.answerProbe,
			StatusProbe: s.answerStatusProbe,
		}
		if tc.ServerTLS, tc.ClientTLS, err = cfg.EnsembleConfig.peerTLS(); err != nil {
			return nil, fmt.Errorf("server: peer TLS: %w", err)
		}
		// Until admitted, the member answers probes as empty and drops
		// raft messages; the transport may hear from peers at once.
		if fresh || pending {
			s.ens.adm.state.Store(admitWait)
			s.ens.adm.setReason("starting with an empty data directory")
		}
		if t, err = replication.NewTCPTransport(tc); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.ens.transport = t
		rc.Transport = t
		switch {
		case pending, fresh && cfg.Join:
			gated = true
		case fresh:
			bootstrap, err := s.bootstrapGate(t, ms)
			if err != nil {
				t.Close()
				return nil, err
			}
			gated = !bootstrap
		}
		if gated {
			// Opened as a joiner whatever --join says: it is not one of
			// a new ensemble's founders, so it only ever enters raft by
			// being added.
			rc.Join = true
		} else {
			s.ens.adm.state.Store(admitted)
			s.ens.adm.setReason("")
		}
	}
	switch {
	case gated:
		switch {
		case !stamped:
			stamp = identity{ClusterID: cfg.ClusterID, ServerID: cfg.ServerID, Epoch: newEpoch()}
		case !pending:
			// The log is gone but the stamp is not: a new incarnation.
			stamp.Epoch = newEpoch()
		}
		stamp.PendingAdmission = true
		err = writeIdentity(cfg.DataDir, stamp)
	case !stamped:
		err = writeIdentity(cfg.DataDir, identity{ClusterID: cfg.ClusterID, ServerID: cfg.ServerID, Epoch: newEpoch()})
	}
	if err != nil {
		if t != nil {
			t.Close()
		}
		return nil, fmt.Errorf("server: writing identity stamp: %w", err)
	}
	if gated {
		// The first round before anyone can see this member (admission.go).
		s.ens.adm.epoch = stamp.Epoch
		s.ens.rounds = newAdmissionRounds()
		if s.admissionRound(s.ens.rounds) {
			gated = false
		}
	}
	node, err := replication.Open(rc, fsm{s})
	if err != nil {
		if t != nil {
			t.Close()
		}
		return nil, fmt.Errorf("server: open %s: %w", cfg.DataDir, err)
	}
	s.ens.node.Store(node)
	if t != nil {
		t.SetHandler(peerHandler{node: node, ens: s.ens})
		v, l := node.Membership()
		s.log.Info("ensemble member started", "server_id", cfg.ServerID, "cluster", cfg.ClusterID,
			"peer_addr", t.Addr().String(), "voters", v, "observers", l, "join", rc.Join && (fresh || pending),
			"waiting_for_admission", gated)
	}
	if !s.ens.gated() {
		s.ens.hasData.Store(true)
	}
	return node, nil
}

// peerTLS builds the mutual TLS configurations of the peer transport.
func (c *EnsembleConfig) peerTLS() (server, client *tls.Config, err error) {
	if c.PeerTLSCert == "" && c.PeerTLSKey == "" && c.PeerTLSCA == "" {
		return nil, nil, nil
	}
	if c.PeerTLSCert == "" || c.PeerTLSKey == "" || c.PeerTLSCA == "" {
		return nil, nil, errors.New("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together")
	}
	cert, err := tls.LoadX509KeyPair(c.PeerTLSCert, c.PeerTLSKey)
	if err != nil {
		return nil, nil, err
	}
	pem, err := os.ReadFile(c.PeerTLSCA)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("no certificate in %s", c.PeerTLSCA)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client, nil
}

// bootstrapGate holds a member with an empty data directory until every
// other member of the configuration has answered a probe, and reports
// false (do not bootstrap) as soon as one of them already has data: then
// this member's data was lost (or it is new), and bootstrapping would make
// it a voter that forgot what it had acknowledged. It then goes through
// admission instead (admission.go): refused while it is still a voter,
// admitted as a new member once it is not. Members
// starting together all answer "fresh"; one that bootstrapped a moment
// earlier remembers which members it found fresh and answers them
// "data-saw-you-fresh" until they send it a raft message, so they start
// too. A wiped member has spoken raft with at least the leader it
// acknowledged, and that member (or, if it restarted since, its empty
// memory) answers "data".
func (s *Server) bootstrapGate(t *replication.TCPTransport, ms members) (bool, error) {
	waiting := map[uint64]bool{}
	for id := range ms {
		if id != s.cfg.ServerID {
			waiting[id] = true
		}
	}
	start, lastLog := time.Now(), time.Now()
	for len(waiting) > 0 {
		for id := range waiting {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := t.Probe(ctx, id)
			cancel()
			if err != nil {
				continue
			}
			switch string(st) {
			case probeFresh:
				// Remember it: if this member bootstraps first, it lets
				// id bootstrap too (answerProbe), until id speaks raft.
				s.ens.sawMu.Lock()
				s.ens.sawFresh[id] = true
				s.ens.sawMu.Unlock()
				delete(waiting, id)
			case probeDataSawFresh:
				delete(waiting, id)
			case probeData:
				s.log.Warn("not bootstrapping: the data directory is empty but a member already has data; "+
					"this member must be admitted before it takes part", "data_dir", s.cfg.DataDir, "member_with_data", id)
				s.ens.sawMu.Lock()
				clear(s.ens.sawFresh) // it bootstraps nothing, so it vouches for no one
				s.ens.sawMu.Unlock()
				return false, nil
			}
		}
		if len(waiting) == 0 {
			break
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			ids := make([]uint64, 0, len(waiting))
			for id := range waiting {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			s.log.Info("new data directory: waiting for every member to answer before bootstrapping",
				"waiting_for", ids, "waited", time.Since(start).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true, nil
}

// answerProbe tells a probing member whether this one has data.
func (s *Server) answerProbe(from uint64) []byte {
	e := s.ens
	if !e.hasData.Load() {
		return []byte(probeFresh)
	}
	e.sawMu.Lock()
	saw := e.sawFresh[from]
	e.sawMu.Unlock()
	if saw {
		return []byte(probeDataSawFresh)
	}
	return []byte(probeData)
}

// peerHandler is the transport's Handler: the node, plus noting which
// members have spoken raft (they are no longer "fresh").
type peerHandler struct {
	node *replication.Node
	ens  *ensemble
}

func (h peerHandler) Step(ctx context.Context, m *raftpb.Message) error {
	if h.ens.dropBeforeAdmission(m) {
		return errNotAdmitted
	}
	h.ens.heard(m.GetFrom())
	h.ens.sawMu.Lock()
	if len(h.ens.sawFresh) > 0 {
		delete(h.ens.sawFresh, m.GetFrom())
	}
	h.ens.sawMu.Unlock()
	return h.node.Step(ctx, m)
}

func (h peerHandler) ReportUnreachable(id uint64) { h.node.ReportUnreachable(id) }

func (h peerHandler) ReportSnapshot(id uint64, st raft.SnapshotStatus) {
	h.node.ReportSnapshot(id, st)
}

// resolvePeer is the transport's address book: the replicated
// configuration first (it follows reconfigs), then the flags.
func (s *Server) resolvePeer(id uint64) (string, bool) {
	if m, ok := s.ens.current()[id]; ok {
		return m.PeerAddr(), true
	}
	if m, ok := s.ens.static[id]; ok {
		return m.PeerAddr(), true
	}
	return "", false
}

// mode is the role srvr, stat and mntr report.
func (s *Server) mode() string {
	if s.node == nil {
		return "standalone"
	}
	if !s.ens.on && s.node.SingleVoter() {
		return "standalone"
	}
	if s.ens.removed.Load() {
		return "removed"
	}
	if s.ens.refusedAdmission() {
		return "refused"
	}
	if s.ens.gated() {
		return "joining"
	}
	if s.readOnlyActive() {
		return "read-only"
	}
	voters, learners := s.node.Membership()
	switch id := s.cfg.ServerID; {
	case slices.Contains(learners, id):
		return "observer"
	case s.node.IsLeader():
		return "leader"
	case slices.Contains(voters, id):
		return "follower"
	}
	return "joining"
}

// startEnsemble starts the ensemble's background work (called from New).
func (s *Server) startEnsemble() {
	s.tracker.closingRetry = s.cfg.RequestTimeout
	if !s.ens.on {
		return
	}
	s.mu.RLock()
	s.refreshConfigLocked()
	s.mu.RUnlock()
	s.wg.Add(1)
	go s.ensembleLoop()
	if s.ens.gated() {
		s.wg.Add(1)
		go s.admissionLoop(s.ens.rounds)
	}
}

// closeEnsemble closes the peer transport (after the node).
func (s *Server) closeEnsemble() {
	if s.ens != nil && s.ens.transport != nil {
		s.ens.transport.Close()
	}
}

// electionTimeout is the Raft election timeout.
func (s *Server) electionTimeout() time.Duration {
	tick, ticks := s.cfg.RaftTick, s.cfg.ElectionTicks
	if tick <= 0 {
		tick = 100 * time.Millisecond
	}
	if ticks <= 0 {
		ticks = 10
	}
	return tick * time.Duration(ticks)
}

// ensembleLoop watches for leader changes, fails requests that can no
// longer complete, relays session liveness to the leader, and has the
// first leader of a new ensemble write /zookeeper/config.
func (s *Server) ensembleLoop() {
	defer s.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	relay := s.cfg.TickTime / 2
	if m := s.cfg.MinSessionTimeout / 4; m < relay {
		relay = m
	}
	relay = max(relay, 50*time.Millisecond)
	var lastLead uint64
	lastRelay := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if lead := s.node.Leader(); lead != lastLead {
				if lastLead != 0 || lead == 0 {
					s.ens.leaderChangedAt.Store(now.UnixNano())
				}
				s.log.Info("leader changed", "leader", lead, "previous", lastLead, "mode", s.mode())
				lastLead = lead
			}
			s.reapPending(now)
			s.watchQuorum(now) // readonly.go
			if now.Sub(lastRelay) >= relay {
				lastRelay = now
				s.relayTouches()
			}
			s.maybeProposeInitialConfig(now)
		}
	}
}

// reapPending closes the connections of writes that will not complete:
// pending for longer than RequestTimeout, or proposed before a leader
// change and still not applied two election timeouts after it. The client
// sees ConnectionLoss and reconnects, as ZooKeeper's clients do when a
// follower drops them on a leader change; the write's outcome is unknown
// to it, as ZooKeeper's contract says.
func (s *Server) reapPending(now time.Time) {
	at := s.ens.leaderChangedAt.Load()
	changed := time.Unix(0, at)
	grace := 2 * s.electionTimeout()
	var victims []*request
	s.pmu.Lock()
	for seq, r := range s.pending {
		lost := at != 0 && r.start.Before(changed) && now.Sub(changed) > grace
		if now.Sub(r.start) > s.cfg.RequestTimeout || lost {
			delete(s.pending, seq)
			victims = append(victims, r)
		}
	}
	s.pmu.Unlock()
	for _, r := range victims {
		if r.c == nil {
			continue // an in-process Submit (console.go): its caller times out
		}
		r.c.log.Warn("write not committed in time (leader change or lost proposal); closing the connection so the client reconnects",
			"op", r.op.String(), "waited", now.Sub(r.start).Round(time.Millisecond))
		r.c.close()
	}
}

// relayTouches proposes the liveness of the sessions whose connections
// this member holds, unless it is the leader (whose tracker is already
// touched directly).
func (s *Server) relayTouches() {
	if s.node.IsLeader() {
		s.tracker.takeDirty()
		return
	}
	if s.node.Leader() == 0 {
		return // keep them until there is a leader to tell
	}
	ids := s.tracker.takeDirty()
	if len(ids) == 0 {
		return
	}
	e := &statemachine.Entry{Op: statemachine.OpTouchSessions, Body: proto.Marshal(&statemachine.TouchBody{Sessions: ids})}
	if err := s.propose(e); err != nil {
		s.log.Debug("could not relay session liveness", "sessions", len(ids), "err", err)
	}
}

// maybeProposeInitialConfig has the leader of an ensemble whose log has
// no configuration yet write one (from the flags) into /zookeeper/config.
func (s *Server) maybeProposeInitialConfig(now time.Time) {
	if !s.node.IsLeader() || s.ens.current() != nil || now.Sub(s.ens.lastConfigProp) < 2*time.Second {
		return
	}
	s.ens.lastConfigProp = now
	ms := s.ens.static.clone()
	if self, ok := ms[s.cfg.ServerID]; ok && self.ClientAddr == "" {
		self.ClientAddr = s.advertisedClientAddr()
		ms[s.cfg.ServerID] = self
	}
	// Only members the log agrees on: voters and learners as raft has them.
	voters, learners := s.node.Membership()
	for id := range ms {
		if !slices.Contains(voters, id) && !slices.Contains(learners, id) {
			delete(ms, id)
		}
	}
	body := proto.Marshal(&statemachine.ConfigBody{Expected: 0, Config: ms.text()})
	if err := s.propose(&statemachine.Entry{Op: statemachine.OpSetConfig, Body: body}); err != nil {
		s.log.Debug("could not propose the initial configuration", "err", err)
	}
}

// advertisedClientAddr is this server's client address as
// /zookeeper/config shows it: the listen host (0.0.0.0 when unspecified)
// and the bound port.
func (s *Server) advertisedClientAddr() string {
	host, _, _ := net.SplitHostPort(s.cfg.ListenAddr)
	if host == "" {
		host = "0.0.0.0"
	}
	port := ""
	if ta, ok := s.ln.Addr().(*net.TCPAddr); ok {
		port = fmt.Sprint(ta.Port)
	}
	return net.JoinHostPort(host, port)
}

// applyEnsembleEntry is the server's side of the ensemble's internal
// entries. Called from applyEntry with mu held.
func (s *Server) applyEnsembleEntry(e *statemachine.Entry, res *statemachine.Result) {
	switch e.Op {
	case statemachine.OpTouchSessions:
		var body statemachine.TouchBody
		if proto.Unmarshal(e.Body, &body) == nil {
			s.tracker.touchRemote(body.Sessions)
		}
	case statemachine.OpSetConfig:
		if res.Err == proto.ErrOK {
			s.refreshConfigLocked()
		}
	}
}

// refreshConfigLocked re-reads /zookeeper/config into the address book.
// Called with mu held (read or write).
func (s *Server) refreshConfigLocked() {
	if s.ens == nil {
		return
	}
	text, _ := s.state.Config()
	if strings.TrimSpace(text) == "" {
		s.ens.conf.Store(nil)
		return
	}
	ms, err := parseConfigText(text)
	if err != nil {
		s.log.Error("unparsable /zookeeper/config in the log", "err", err)
		return
	}
	s.ens.conf.Store(&ms)
}

// afterRestore brings the server's view in line with a state restored
// from a snapshot (at start, or sent by the leader): the address book,
// and the session tracker (every session in the state is tracked, with a
// fresh timeout if it was not before; sessions gone from the state are
// forgotten). Called with mu held.
func (s *Server) afterRestore() {
	s.refreshConfigLocked()
	if s.ens != nil {
		if _, ok := s.ens.current()[s.cfg.ServerID]; ok {
			s.ens.removed.Store(false)
		}
	}
	live := map[int64]bool{}
	for _, si := range s.state.Sessions() {
		live[si.ID] = true
		s.tracker.mu.Lock()
		_, known := s.tracker.sessions[si.ID]
		s.tracker.mu.Unlock()
		if !known {
			s.tracker.add(si.ID, time.Duration(si.Timeout)*time.Millisecond)
		}
	}
	s.tracker.mu.Lock()
	for id := range s.tracker.sessions {
		if !live[id] {
			delete(s.tracker.sessions, id)
		}
	}
	s.tracker.mu.Unlock()
}

// ApplyConfChange applies a membership change: its context is the
// OpSetConfig entry of a reconfig, applied like any entry (the reply goes
// to the client waiting on this member); the change is refused, on every
// member alike, if that entry fails (BADVERSION, NOAUTH, ...) or if it
// would leave no voter.
func (f fsm) ApplyConfChange(index, term uint64, cc *raftpb.ConfChangeV2, before *raftpb.ConfState) bool {
	s := f.s
	if len(cc.GetContext()) == 0 {
		return true // raft leaving a joint configuration
	}
	e, err := statemachine.DecodeEntry(cc.GetContext())
	if err != nil {
		s.log.Error("refusing a membership change with an undecodable context", "index", index, "err", err)
		return false
	}
	voters, learners := before.GetVoters(), before.GetLearners()
	vset := map[uint64]bool{}
	for _, id := range voters {
		vset[id] = true
	}
	for _, c := range cc.GetChanges() {
		switch c.GetType() {
		case raftpb.ConfChangeAddNode:
			vset[c.GetNodeId()] = true
		case raftpb.ConfChangeRemoveNode, raftpb.ConfChangeAddLearnerNode:
			delete(vset, c.GetNodeId())
		}
	}
	if len(vset) == 0 {
		s.applyEntry(index, errorTxn(e, proto.ErrBadArguments)) // answers the proposer (reconfig.go)
		return false
	}
	res := s.applyEntry(index, e)
	if res.Err != proto.ErrOK {
		return false
	}
	s.log.Info("membership changed", "index", index, "change", raft.DescribeConfChange(cc),
		"voters_before", voters, "observers_before", learners)
	// Members that left are forgotten by the transport; if this member
	// left, it stops serving clients.
	ms := s.ens.current()
	if s.ens.transport != nil {
		for _, c := range cc.GetChanges() {
			if c.GetType() == raftpb.ConfChangeRemoveNode && c.GetNodeId() != s.cfg.ServerID {
				go s.ens.transport.RemovePeer(c.GetNodeId())
			}
		}
	}
	if _, ok := ms[s.cfg.ServerID]; ok {
		// Added (back): a member removed earlier in the log it replays,
		// or rebuilt and re-added, serves again.
		s.ens.removed.Store(false)
	} else if ms != nil && !s.ens.removed.Load() {
		s.ens.removed.Store(true)
		s.log.Warn("this member was removed from the ensemble by a reconfig; closing client connections")
		go func() {
			for _, c := range s.connList() {
				c.close()
			}
		}()
	}
	return true
}

// ensembleWrite handles the writes that differ in an ensemble: sync
// (Raft ReadIndex instead of a log entry, whenever this member is not the
// only voter) and reconfig (a Raft membership change). handled is false
// for everything else; ok is whether the reader goes on.
func (c *conn) ensembleWrite(xid int32, op proto.OpCode, body []byte) (handled, ok bool) {
	s := c.s
	switch {
	case op == proto.OpSync && !s.node.SingleVoter():
		var sr proto.SyncRequest
		if err := proto.Unmarshal(body, &sr); err != nil {
			c.log.Warn("closing connection: malformed request", "op", op, "err", err)
			c.close()
			return true, false
		}
		r := c.newRequest(xid, op)
		r.path = sr.Path
		c.enqueue(r)
		prev := c.lastWrite
		c.lastWrite = r
		go s.syncReadIndex(r, prev)
		return true, true
	case op == proto.OpReconfig && s.ens.on && s.cfg.ReconfigEnabled:
		return true, c.reconfig(xid, body)
	}
	return false, true
}

// syncReadIndex answers a sync once this member has applied everything
// the leader had committed when the sync arrived (Raft ReadIndex: the
// leader confirms its leadership with a quorum). prev is the session's
// previous write, which completes first so replies stay in order.
func (s *Server) syncReadIndex(r *request, prev *request) {
	c := r.c
	if prev != nil {
		select {
		case <-prev.done:
		case <-c.closed:
			return
		}
	}
	deadline := time.Now().Add(s.cfg.RequestTimeout)
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 2*s.electionTimeout())
		idx, err := s.node.ReadIndex(ctx)
		if err == nil {
			err = s.node.WaitApplied(ctx, idx)
		}
		cancel()
		if err == nil {
			break
		}
		if s.ctx.Err() != nil || time.Now().After(deadline) {
			c.log.Warn("sync could not reach the leader in time; closing the connection so the client reconnects", "err", err)
			c.close()
			return
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-c.closed:
			return
		}
	}
	s.mu.RLock()
	zxid := s.state.LastZxid()
	c.stats.lastZxid.Store(zxid)
	c.complete(r, encodeReply(r.xid, zxid, proto.ErrOK, &proto.SyncResponse{Path: r.path}), false)
	s.mu.RUnlock()
}

// reconfig answers ZooKeeper's reconfig (PrepRequestProcessor's reconfig
// branch) with a Raft membership change. The member computes the new
// configuration from its current one; the change carries it, with the
// version it was computed from, as an OpSetConfig entry that every member
// checks when the change is applied (session, reconfigEnabled, WRITE on
// /zookeeper/config, version), refusing the change together with the
// entry. A change of more than one voter uses joint consensus.
func (c *conn) reconfig(xid int32, body []byte) bool {
	s := c.s
	var req proto.ReconfigRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		c.log.Warn("closing connection: malformed request", "op", proto.OpReconfig, "err", err)
		c.close()
		return false
	}
	r := c.newRequest(xid, proto.OpReconfig)
	c.enqueue(r)
	if !c.waitPrior() {
		return false
	}
	// Refusals found here are logged as error txns (reconfig.go), as
	// ZooKeeper's are: they consume a zxid, on every member alike.
	fail := func(code proto.ErrCode) bool { return c.reconfigError(r, code) }
	s.mu.RLock()
	text, version := s.state.Config()
	s.mu.RUnlock()
	cur := s.ens.current()
	if strings.TrimSpace(text) == "" || cur == nil {
		return fail(proto.ErrReconfigInProgress) // the initial configuration is not written yet
	}
	if s.node.Joint() {
		return fail(proto.ErrReconfigInProgress)
	}
	// PrepRequestProcessor's order: version, then arguments.
	if req.CurConfigId != -1 && req.CurConfigId != version {
		return fail(proto.ErrBadVersion)
	}
	next, err := reconfigure(cur, req.JoiningServers, req.LeavingServers, req.NewMembers)
	if err != nil {
		c.log.Info("reconfig refused: bad arguments", "err", err)
		return fail(proto.ErrBadArguments)
	}
	if v, _ := next.ids(); len(v) == 0 {
		return fail(proto.ErrBadArguments)
	}
	changes := confChanges(cur, next)
	e := &statemachine.Entry{
		Op:      statemachine.OpSetConfig,
		Session: c.sessionID(),
		Cxid:    xid,
		Auth:    c.authIDs(),
		Origin:  s.cfg.ServerID,
		Time:    time.Now().UnixMilli(),
		Body:    proto.Marshal(&statemachine.ConfigBody{Expected: version, Config: next.text()}),
	}
	e.Seq = s.addPending(r)
	c.lastWrite = r
	if len(changes) == 0 {
		// Only addresses or ports changed: no Raft membership change.
		if err := s.propose(e); err != nil {
			s.dropPending(e.Seq)
			c.log.Warn("closing connection: proposal failed", "op", proto.OpReconfig, "err", err)
			c.close()
			return false
		}
		return true
	}
	cc := &raftpb.ConfChangeV2{Transition: raftpb.ConfChangeTransitionAuto.Enum(), Changes: changes, Context: e.Encode()}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	err = s.node.ProposeConfChange(ctx, cc)
	cancel()
	if err != nil {
		s.dropPending(e.Seq)
		if errors.Is(err, replication.ErrProposalDropped) || errors.Is(err, raft.ErrProposalDropped) {
			// No leader to log anything: answered at once.
			c.complete(r, encodeReply(xid, c.lastZxid(), proto.ErrReconfigInProgress, nil), false)
			return true
		}
		c.log.Warn("closing connection: reconfig proposal failed", "err", err)
		c.close()
		return false
	}
	c.log.Info("reconfig proposed", "from_version", fmt.Sprintf("%x", version), "changes", raft.DescribeConfChange(cc))
	return true
}

// confChanges lists the Raft changes from one configuration to another:
// new or promoted participants are added as voters, new or demoted
// observers as learners, and members that left are removed.
func confChanges(cur, next members) []*raftpb.ConfChangeSingle {
	ids := make([]uint64, 0, len(cur)+len(next))
	for id := range cur {
		ids = append(ids, id)
	}
	for id := range next {
		if _, ok := cur[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out []*raftpb.ConfChangeSingle
	add := func(t raftpb.ConfChangeType, id uint64) {
		out = append(out, &raftpb.ConfChangeSingle{Type: t.Enum(), NodeId: &id})
	}
	for _, id := range ids {
		o, inCur := cur[id]
		n, inNext := next[id]
		switch {
		case inCur && !inNext:
			add(raftpb.ConfChangeRemoveNode, id)
		case !inCur && inNext && n.Observer, inCur && inNext && !o.Observer && n.Observer:
			add(raftpb.ConfChangeAddLearnerNode, id)
		case !inCur && inNext && !n.Observer, inCur && inNext && o.Observer && !n.Observer:
			add(raftpb.ConfChangeAddNode, id)
		}
	}
	return out
}

// ensembleMetrics are mntr's ensemble keys: quorum size and peer state
// on every member, follower counts on the leader.
func (s *Server) ensembleMetrics() []metric {
	if s.ens == nil || !s.ens.on {
		return nil
	}
	var out []metric
	kv := func(k string, v any) { out = append(out, metric{k, v}) }
	voters, learners := s.node.Membership()
	kv("quorum_size", len(voters))
	kv("peer_state", s.peerState())
	// Paddock's: raft messages dropped while this member, started empty,
	// was not admitted (admission.go): proof it neither voted nor acked.
	kv("admission_refused_votes", s.ens.adm.refusedVotes.Load())
	kv("admission_refused_appends", s.ens.adm.refusedAppends.Load())
	if !s.node.IsLeader() {
		return out
	}
	st := s.node.Status()
	synced, syncedObservers := 0, 0
	for id, pr := range st.Progress {
		if id == s.cfg.ServerID || !pr.RecentActive || pr.State.String() != "StateReplicate" {
			continue
		}
		if pr.IsLearner {
			syncedObservers++
		} else {
			synced++
		}
	}
	kv("learners", len(voters)-1+len(learners))
	kv("synced_followers", synced)
	kv("synced_non_voting_followers", 0)
	kv("synced_observers", syncedObservers)
	kv("pending_syncs", 0)
	return out
}

// peerState is ZooKeeper's zk_peer_state ("following - broadcast", ...).
func (s *Server) peerState() string {
	switch m := s.mode(); m {
	case "leader":
		return "leading - broadcast"
	case "read-only":
		return "looking - election" // a read-only ZooKeeper server is looking
	case "refused":
		return "refused - admission"
	case "follower":
		if s.node.Leader() == 0 {
			return "looking - election"
		}
		return "following - broadcast"
	case "observer":
		if s.node.Leader() == 0 {
			return "observing - discovery"
		}
		return "observing - broadcast"
	default:
		return m
	}
}

// catchUpWithLeader brings this member up to the leader's commit point
// (ReadIndex) before a reconnecting session is checked, so a member that
// fell behind never revives a session the leader already expired, nor
// calls expired one it has not yet seen created (ZooKeeper's followers ask
// the leader to validate a moved session for the same reason). A
// standalone server is always caught up. It reports false when no leader
// answered in time: the client is disconnected and tries another member.
func (s *Server) catchUpWithLeader(c *conn) bool {
	if s.node.SingleVoter() {
		return true
	}
	return s.revalidateThroughLog(c) || s.readIndexCatchUp(c)
}

// revalidateThroughLog is ZooKeeper's REVALIDATE for a session that
// reconnects to this member: a touch of just that session goes through the
// log and is applied before the client hears it is connected. Every
// member's tracker (the leader's included) then gives the session a fresh
// timeout, so the leader cannot expire a session a client was just told it
// holds because the relayed liveness had not reached it yet; and since the
// touch is applied after everything before it, this member has caught up.
// If the session was closed first, the caller finds it gone and answers
// expired.
func (s *Server) revalidateThroughLog(c *conn) bool {
	id := c.pendingSession
	if id == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*s.electionTimeout())
	defer cancel()
	e := &statemachine.Entry{Op: statemachine.OpTouchSessions, Body: proto.Marshal(&statemachine.TouchBody{Sessions: []int64{id}})}
	if _, err := s.submitEntry(ctx, e); err != nil {
		c.log.Debug("could not revalidate the session through the log; falling back to a read barrier", "err", err)
		return false
	}
	return true
}

// readIndexCatchUp waits until this member has applied everything the
// leader had committed (Raft ReadIndex).
func (s *Server) readIndexCatchUp(c *conn) bool {
	deadline := time.Now().Add(2 * s.electionTimeout())
	for {
		ctx, cancel := context.WithTimeout(s.ctx, s.electionTimeout())
		idx, err := s.node.ReadIndex(ctx)
		if err == nil {
			err = s.node.WaitApplied(ctx, idx)
		}
		cancel()
		if err == nil {
			return true
		}
		if s.ctx.Err() != nil || time.Now().After(deadline) {
			c.log.Info("cannot check a reconnecting session without a leader; closing the connection", "err", err)
			return false
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-c.closed:
			return false
		}
	}
}
