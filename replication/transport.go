package replication

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Peer protocol constants; the wire format is described in doc.go.
const (
	// peerMagic opens every handshake and handshake reply, so that a
	// connection from something that is not a Paddock member (a client on
	// the wrong port, a port scanner) is recognised at once.
	peerMagic = "PDKPEER\x00"
	// peerProtocolVersion is the only version this build speaks. A peer
	// offering another version is refused, naming both.
	peerProtocolVersion = 1

	// Frame types.
	frameHello      = 1 // handshake, dialer -> acceptor
	frameHelloReply = 2 // handshake reply, acceptor -> dialer
	frameMessage    = 3 // one protobuf-marshalled raftpb.Message
	frameSnapAck    = 4 // snapshot connection: the MsgSnap was handed to raft

	// Connection kinds, chosen by the dialer in its hello.
	connStream   = 1 // long-lived, one-way stream of raft messages
	connSnapshot = 2 // one MsgSnap, acknowledged, then closed

	// Handshake reply status.
	helloAccepted = 0
	helloRefused  = 1

	frameHeaderLen = 9         // uint32 length, uint32 crc, uint8 type
	maxHelloBytes  = 4 << 10   // bound on a hello or reply frame
	maxStreamFrame = 256 << 20 // bound on one message on a stream
	maxSnapFrame   = 1<<32 - 1 // a snapshot frame: whatever uint32 holds
	ioChunk        = 1 << 20   // unit of progress for I/O deadlines
	writeBatch     = 512       // messages coalesced into one flush
	minBackoff     = 50 * time.Millisecond
	maxBackoff     = 2 * time.Second
	defaultQueue   = 4096
	defaultDial    = 3 * time.Second
	defaultIO      = 10 * time.Second
	maxReasonBytes = 1 << 10
)

// Compile-time checks: the transport is a Transport, a Node is a Handler.
var (
	_ Transport = (*TCPTransport)(nil)
	_ Handler   = (*Node)(nil)
)

// Handler receives what a TCPTransport carries: messages from peers and
// the delivery reports raft needs. *Node implements it.
type Handler interface {
	// Step delivers a message received from a peer. It may block (that is
	// the receiver's backpressure); ctx is cancelled when the transport
	// closes.
	Step(ctx context.Context, m *raftpb.Message) error
	// ReportUnreachable tells raft that messages to id were dropped, so it
	// stops optimistically pipelining to that peer.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft whether a MsgSnap reached id.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// TransportConfig configures a TCPTransport. Zero values get the defaults
// noted.
type TransportConfig struct {
	// ID is this member's raft id (>= 1).
	ID uint64
	// ClusterID names the ensemble. Every connection carries it in its
	// handshake, and both ends refuse a peer whose ClusterID differs, so a
	// member of another cluster (a stale pod, a mistyped address) can never
	// exchange raft messages with this one. Required.
	ClusterID string
	// ListenAddr is the "host:port" to accept peer connections on; port 0
	// picks a free port (see Addr).
	ListenAddr string
	// Resolve returns the "host:port" of a peer, or false if it is not
	// known. It is called on every (re)connect, never cached, so membership
	// changes and moved members are picked up; a host name in the result is
	// resolved again by the dialer on every connect (Kubernetes pods change
	// IP addresses when they are rescheduled). Required.
	Resolve func(id uint64) (addr string, ok bool)
	// ServerTLS and ClientTLS turn on mutual TLS: both or neither must be
	// set. ServerTLS must verify client certificates
	// (ClientAuth: tls.RequireAndVerifyClientCert with ClientCAs); ClientTLS
	// verifies the peer against RootCAs, with ServerName defaulting to the
	// host part of the resolved address.
	ServerTLS, ClientTLS *tls.Config
	// Logger receives the transport's logs (default slog.Default()).
	Logger *slog.Logger
	// DialTimeout bounds a connect, including the TLS and Paddock
	// handshakes (default 3s).
	DialTimeout time.Duration
	// IOTimeout is how long a write (or a snapshot read) may make no
	// progress before the connection is declared dead (default 10s). It is
	// applied per 1 MiB, so large snapshots are not limited by it.
	IOTimeout time.Duration
	// QueueSize bounds the messages waiting to be written to one peer
	// (default 4096). When it is full, messages to that peer are dropped
	// and raft is told the peer is unreachable; raft retransmits.
	QueueSize int
	// Handler receives messages and reports. It may instead be set later
	// with SetHandler, once the Node exists.
	Handler Handler
	// Probe answers a peer's Probe (see TCPTransport.Probe), given the
	// asking member's id; nil answers an empty status.
	Probe func(from uint64) []byte
	// StatusProbe answers a peer's ProbeStatus, given the asking member's
	// id and its question; nil refuses status probes (the dialer sees
	// ErrStatusProbeUnsupported).
	StatusProbe func(from uint64, question []byte) []byte
}

// unknownKindReason starts the refusal of a connection kind the acceptor
// does not serve; errUnknownKind marks it on the dialer's side.
const unknownKindReason = "unknown connection kind"

var errUnknownKind = errors.New("connection kind not served")

// TransportStats are the transport's counters, for metrics and tests.
type TransportStats struct {
	MessagesSent      uint64 // messages written to a stream connection
	MessagesDropped   uint64 // messages dropped: queue full, peer down or blocked
	MessagesReceived  uint64 // messages handed to the Handler
	SnapshotsSent     uint64 // MsgSnaps acknowledged by the receiver
	SnapshotsFailed   uint64 // MsgSnaps that could not be delivered
	SnapshotsReceived uint64 // MsgSnaps handed to the Handler
	HandshakesRefused uint64 // inbound connections refused (identity, version, TLS)
}

// TCPTransport carries raft messages between members over TCP, optionally
// with mutual TLS. It implements Transport.
//
// Each peer gets one outbound stream connection, written by its own
// goroutine from a bounded queue, so a slow or dead peer never delays
// messages to the others nor the raft loop (Send never blocks). Snapshots
// travel on a separate, short-lived connection per MsgSnap so that tens of
// megabytes to one peer do not hold up heartbeats. Inbound, each accepted
// connection has a goroutine that hands messages to the Handler. The wire
// format is described in the package documentation.
type TCPTransport struct {
	cfg     TransportConfig
	log     *slog.Logger
	ln      net.Listener
	handler atomic.Pointer[Handler]
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	reportc chan *peer

	mu      sync.Mutex
	closed  bool
	peers   map[uint64]*peer
	blocked map[uint64]bool
	conns   map[net.Conn]struct{} // every accepted connection, closed by Close
	streams map[uint64]net.Conn   // the current inbound stream of each peer

	stats struct {
		sent, dropped, received                   atomic.Uint64
		snapSent, snapFailed, snapRecv, refusedIn atomic.Uint64
	}
}

// NewTCPTransport validates cfg, starts listening on cfg.ListenAddr and
// accepting peer connections. Messages received before a Handler is set
// are dropped (raft retransmits).
func NewTCPTransport(cfg TransportConfig) (*TCPTransport, error) {
	switch {
	case cfg.ID == 0:
		return nil, errors.New("replication: TransportConfig.ID must be >= 1")
	case cfg.ClusterID == "":
		return nil, errors.New("replication: TransportConfig.ClusterID is required")
	case len(cfg.ClusterID) > 255:
		return nil, errors.New("replication: TransportConfig.ClusterID is longer than 255 bytes")
	case cfg.Resolve == nil:
		return nil, errors.New("replication: TransportConfig.Resolve is required")
	case (cfg.ServerTLS == nil) != (cfg.ClientTLS == nil):
		return nil, errors.New("replication: peer TLS is mutual: set both ServerTLS and ClientTLS, or neither")
	case cfg.ServerTLS != nil && cfg.ServerTLS.ClientAuth != tls.RequireAndVerifyClientCert:
		return nil, errors.New("replication: ServerTLS must verify peers (ClientAuth: tls.RequireAndVerifyClientCert)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDial
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = defaultIO
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = defaultQueue
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("replication: peer listener: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCPTransport{
		cfg:     cfg,
		log:     cfg.Logger.With("raft_id", cfg.ID, "component", "transport"),
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		reportc: make(chan *peer, 64),
		peers:   make(map[uint64]*peer),
		blocked: make(map[uint64]bool),
		conns:   make(map[net.Conn]struct{}),
		streams: make(map[uint64]net.Conn),
	}
	if cfg.Handler != nil {
		t.SetHandler(cfg.Handler)
	}
	t.log.Info("replication: peer transport listening", "addr", ln.Addr().String(),
		"cluster", cfg.ClusterID, "tls", cfg.ServerTLS != nil)
	t.wg.Add(2)
	go t.acceptLoop()
	go t.reportLoop()
	return t, nil
}

// SetHandler sets where received messages and reports go. It exists
// because the Node needs its Transport at Open and the transport needs the
// Node: create the transport, Open the node with it, then SetHandler(node).
func (t *TCPTransport) SetHandler(h Handler) { t.handler.Store(&h) }

func (t *TCPTransport) getHandler() Handler {
	if h := t.handler.Load(); h != nil {
		return *h
	}
	return nil
}

// Addr is the address the transport listens on (useful with port 0).
func (t *TCPTransport) Addr() net.Addr { return t.ln.Addr() }

// Stats returns the transport's counters.
func (t *TCPTransport) Stats() TransportStats {
	return TransportStats{
		MessagesSent:      t.stats.sent.Load(),
		MessagesDropped:   t.stats.dropped.Load(),
		MessagesReceived:  t.stats.received.Load(),
		SnapshotsSent:     t.stats.snapSent.Load(),
		SnapshotsFailed:   t.stats.snapFailed.Load(),
		SnapshotsReceived: t.stats.snapRecv.Load(),
		HandshakesRefused: t.stats.refusedIn.Load(),
	}
}

// Send queues messages for their peers and returns at once; it never
// blocks on the network. A message that cannot be queued (queue full, peer
// down, peer blocked) is dropped and raft is told the peer is unreachable,
// as etcd's rafthttp does: raft retransmits. A MsgSnap goes to the peer's
// snapshot sender, whose outcome is reported with ReportSnapshot.
func (t *TCPTransport) Send(msgs []*raftpb.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		if to == 0 || to == t.cfg.ID {
			continue
		}
		p := t.peerLocked(to)
		isSnap := m.GetType() == raftpb.MsgSnap
		switch {
		case t.blocked[to]:
			t.drop(p)
			if isSnap {
				t.reportSnapshotAsync(to, raft.SnapshotFailure)
			}
		case isSnap:
			if p.snapBusy.CompareAndSwap(false, true) {
				p.snapc <- m // never blocks: at most one is in flight
			} else {
				// raft sends one snapshot at a time; a second one means
				// the first is still in flight. Refuse this one.
				t.reportSnapshotAsync(to, raft.SnapshotFailure)
			}
		case !p.active.Load():
			t.drop(p)
		default:
			select {
			case p.queue <- m:
			default:
				t.drop(p)
			}
		}
	}
}

// peerLocked returns the peer for id, starting its goroutines on first use.
func (t *TCPTransport) peerLocked(id uint64) *peer {
	if p := t.peers[id]; p != nil {
		return p
	}
	p := &peer{
		t:     t,
		id:    id,
		log:   t.log.With("peer", id),
		queue: make(chan *raftpb.Message, t.cfg.QueueSize),
		snapc: make(chan *raftpb.Message, 1),
		stop:  make(chan struct{}),
	}
	p.active.Store(true)
	t.peers[id] = p
	t.wg.Add(2)
	go p.writeLoop()
	go p.snapLoop()
	return p
}

// drop counts a dropped message and schedules one ReportUnreachable for the
// peer (coalesced: at most one is pending per peer). It must not call the
// Handler itself: Send runs on the node's loop, which the Handler's
// methods wait for.
func (t *TCPTransport) drop(p *peer) {
	t.stats.dropped.Add(1)
	if p.reportPending.CompareAndSwap(false, true) {
		select {
		case t.reportc <- p:
		default:
			p.reportPending.Store(false) // only a hint; the next drop retries
		}
	}
}

// reportLoop delivers ReportUnreachable calls off the node's loop.
func (t *TCPTransport) reportLoop() {
	defer t.wg.Done()
	for {
		select {
		case p := <-t.reportc:
			p.reportPending.Store(false)
			if h := t.getHandler(); h != nil {
				h.ReportUnreachable(p.id)
			}
		case <-t.ctx.Done():
			return
		}
	}
}

// reportSnapshotAsync reports a snapshot outcome without blocking the
// caller. Unlike unreachable reports it is never dropped: a lost failure
// report would leave raft waiting on that peer's snapshot forever.
// Called with t.mu held and t.closed false.
func (t *TCPTransport) reportSnapshotAsync(id uint64, status raft.SnapshotStatus) {
	if status == raft.SnapshotFailure {
		t.stats.snapFailed.Add(1)
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		if h := t.getHandler(); h != nil {
			h.ReportSnapshot(id, status)
		}
	}()
}

// Block cuts this member off from the given peers, for fault-injection
// tests only: messages to them are dropped (and reported unreachable),
// messages and snapshots from them are discarded on arrival, and open
// connections in both directions are closed. Call it on both members (or
// on every member, for a partition) to cut a link in both directions.
// Unblock restores traffic; connections are re-established on demand.
func (t *TCPTransport) Block(ids ...uint64) {
	var toClose []net.Conn
	var peers []*peer
	t.mu.Lock()
	for _, id := range ids {
		t.blocked[id] = true
		if c := t.streams[id]; c != nil {
			toClose = append(toClose, c)
		}
		if p := t.peers[id]; p != nil {
			peers = append(peers, p)
		}
	}
	t.mu.Unlock()
	for _, c := range toClose {
		c.Close()
	}
	for _, p := range peers {
		p.closeConns()
	}
	t.log.Warn("replication: FAULT INJECTION: blocking traffic with peers", "peers", ids)
}

// Unblock undoes Block for the given peers.
func (t *TCPTransport) Unblock(ids ...uint64) {
	t.mu.Lock()
	for _, id := range ids {
		delete(t.blocked, id)
	}
	t.mu.Unlock()
	t.log.Warn("replication: FAULT INJECTION: unblocking traffic with peers", "peers", ids)
}

func (t *TCPTransport) isBlocked(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blocked[id]
}

// RemovePeer stops the goroutines and connections for a peer that left the
// membership. Sending to it again later starts them afresh.
func (t *TCPTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.shutdown()
	}
}

// Close stops the listener and every goroutine and connection of the
// transport, and waits for them. Messages still queued are dropped. It is
// safe to call more than once.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := make([]*peer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	conns := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()

	t.cancel()
	err := t.ln.Close()
	for _, p := range peers {
		p.shutdown()
	}
	for _, c := range conns {
		c.Close()
	}
	t.wg.Wait()
	return err
}

// ---- outbound ----

// peer is the sending side for one remote member.
type peer struct {
	t             *TCPTransport
	id            uint64
	log           *slog.Logger
	queue         chan *raftpb.Message // stream messages
	snapc         chan *raftpb.Message // the MsgSnap to send, if any
	snapBusy      atomic.Bool          // a MsgSnap is queued or being sent
	active        atomic.Bool          // false while backing off: Send drops
	reportPending atomic.Bool

	stopOnce sync.Once
	stop     chan struct{}

	mu       sync.Mutex
	stopped  bool
	conn     net.Conn // current stream connection, if any
	snapConn net.Conn // current snapshot connection, if any
}

func (p *peer) shutdown() {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		close(p.stop)
		p.closeConns()
	})
}

// closeConns closes the peer's open connections; their goroutines see the
// error and reconnect on demand (or exit, if stopped).
func (p *peer) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.Close()
	}
	if p.snapConn != nil {
		p.snapConn.Close()
	}
}

// track records c as the peer's current connection of its kind, refusing
// (closing it) if the peer was stopped meanwhile.
func (p *peer) track(slot *net.Conn, c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped && c != nil {
		c.Close()
		return false
	}
	*slot = c
	return true
}

func (p *peer) stopping() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// writeLoop owns the peer's stream connection: it connects on demand,
// writes queued messages in batches, and on failure drops what is queued,
// reports the peer unreachable and backs off before the next attempt.
func (p *peer) writeLoop() {
	t := p.t
	defer t.wg.Done()
	var (
		conn    net.Conn
		bw      *bufio.Writer
		backoff = minBackoff
		failing bool // log a failure once, not on every retry
		batch   []*raftpb.Message
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case m := <-p.queue:
			batch = append(batch[:0], m)
		case <-p.stop:
			return
		}
	gather:
		for len(batch) < writeBatch {
			select {
			case m := <-p.queue:
				batch = append(batch, m)
			default:
				break gather
			}
		}
		if t.isBlocked(p.id) {
			if conn != nil {
				conn.Close()
				p.track(&p.conn, nil)
				conn = nil
			}
			for range batch {
				t.drop(p)
			}
			clear(batch)
			continue
		}
		if conn == nil {
			c, err := t.dial(p.id, connStream)
			if err == nil && !p.track(&p.conn, c) {
				return
			}
			if err != nil {
				if p.stopping() {
					return
				}
				if !failing {
					p.log.Warn("replication: cannot connect to peer; dropping its messages and retrying", "err", err)
				} else {
					p.log.Debug("replication: still cannot connect to peer", "err", err, "backoff", backoff)
				}
				failing = true
				p.active.Store(false)
				for range batch {
					t.drop(p)
				}
				p.drain()
				if !p.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, maxBackoff)
				p.active.Store(true)
				continue
			}
			if failing {
				p.log.Info("replication: connected to peer", "addr", c.RemoteAddr().String())
			} else {
				p.log.Debug("replication: connected to peer", "addr", c.RemoteAddr().String())
			}
			failing, backoff = false, minBackoff
			conn = c
			bw = bufio.NewWriterSize(deadlineWriter{c, t.cfg.IOTimeout}, 64<<10)
		}
		err := p.writeBatch(bw, batch)
		if err != nil {
			if !p.stopping() {
				p.log.Warn("replication: lost stream to peer", "err", err)
			}
			conn.Close()
			p.track(&p.conn, nil)
			conn = nil
			for range batch {
				t.drop(p) // some may have gone out; raft cannot tell either way
			}
		}
		clear(batch)
	}
}

func (p *peer) writeBatch(bw *bufio.Writer, batch []*raftpb.Message) error {
	for _, m := range batch {
		data, err := proto.Marshal(m)
		if err != nil {
			p.log.Error("replication: cannot marshal raft message; dropped", "type", m.GetType().String(), "err", err)
			continue
		}
		if err := writeFrame(bw, frameMessage, data); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	p.t.stats.sent.Add(uint64(len(batch)))
	return nil
}

// drain drops every queued message.
func (p *peer) drain() {
	for {
		select {
		case <-p.queue:
			p.t.drop(p)
		default:
			return
		}
	}
}

// sleep waits d (with jitter) and reports false if the peer was stopped.
func (p *peer) sleep(d time.Duration) bool {
	d = d/2 + rand.N(d/2+1)
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-p.stop:
		return false
	}
}

// snapLoop sends MsgSnaps, each on a connection of its own, and reports
// every outcome to raft.
func (p *peer) snapLoop() {
	defer p.t.wg.Done()
	for {
		select {
		case m := <-p.snapc:
			status := raft.SnapshotFinish
			start := time.Now()
			size, err := p.sendSnapshot(m)
			if err != nil {
				status = raft.SnapshotFailure
				p.t.stats.snapFailed.Add(1)
				if !p.stopping() {
					p.log.Warn("replication: snapshot send failed", "index", m.GetSnapshot().GetMetadata().GetIndex(), "err", err)
				}
			} else {
				p.t.stats.snapSent.Add(1)
				p.log.Info("replication: snapshot sent", "index", m.GetSnapshot().GetMetadata().GetIndex(),
					"bytes", size, "took", time.Since(start))
			}
			// Free the slot before reporting: raft sends no new snapshot
			// to this peer until it has processed the report.
			p.snapBusy.Store(false)
			if h := p.t.getHandler(); h != nil {
				h.ReportSnapshot(p.id, status)
			}
		case <-p.stop:
			return
		}
	}
}

func (p *peer) sendSnapshot(m *raftpb.Message) (int, error) {
	t := p.t
	if t.isBlocked(p.id) {
		return 0, errors.New("peer is blocked (fault injection)")
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return 0, err
	}
	if uint64(len(data)) > maxSnapFrame {
		return 0, fmt.Errorf("snapshot message is %d bytes, over the %d-byte frame limit", len(data), uint64(maxSnapFrame))
	}
	c, err := t.dial(p.id, connSnapshot)
	if err != nil {
		return 0, err
	}
	if !p.track(&p.snapConn, c) {
		return 0, errors.New("transport closed")
	}
	defer func() {
		c.Close()
		p.track(&p.snapConn, nil)
	}()
	if err := writeFrame(deadlineWriter{c, t.cfg.IOTimeout}, frameMessage, data); err != nil {
		return 0, err
	}
	// The receiver acknowledges once raft has the message; give it the
	// time to read the frame's tail and queue it.
	c.SetReadDeadline(time.Now().Add(t.cfg.IOTimeout))
	typ, _, err := readFrame(c, maxHelloBytes)
	if err != nil {
		return 0, fmt.Errorf("waiting for snapshot acknowledgement: %w", err)
	}
	if typ != frameSnapAck {
		return 0, fmt.Errorf("unexpected frame type %d instead of a snapshot acknowledgement", typ)
	}
	return len(data), nil
}

// dial connects to a peer, freshly resolving its address, and runs the TLS
// and Paddock handshakes. The returned connection has no deadline set.
func (t *TCPTransport) dial(id uint64, kind byte) (net.Conn, error) {
	addr, ok := t.cfg.Resolve(id)
	if !ok {
		return nil, fmt.Errorf("no address known for member %d", id)
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 15 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if t.cfg.ClientTLS != nil {
		cfg := t.cfg.ClientTLS.Clone()
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				raw.Close()
				return nil, err
			}
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with member %d at %s: %w", id, addr, err)
		}
		conn = tc
	}
	// Closing the connection is what interrupts a handshake in progress
	// when ctx ends (timeout or Close).
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	err = t.clientHello(conn, id, kind, addr)
	if !stop() {
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

func (t *TCPTransport) clientHello(conn net.Conn, to uint64, kind byte, addr string) error {
	conn.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	h := hello{Version: peerProtocolVersion, Kind: kind, From: t.cfg.ID, To: to, Cluster: t.cfg.ClusterID}
	if err := writeFrame(conn, frameHello, h.encode()); err != nil {
		return fmt.Errorf("handshake with member %d at %s: %w", to, addr, err)
	}
	typ, payload, err := readFrame(conn, maxHelloBytes)
	if err != nil {
		return fmt.Errorf("handshake with member %d at %s: %w", to, addr, err)
	}
	if typ != frameHelloReply {
		return fmt.Errorf("handshake with member %d at %s: unexpected frame type %d", to, addr, typ)
	}
	r, err := decodeHelloReply(payload)
	if err != nil {
		return fmt.Errorf("handshake with member %d at %s: %w", to, addr, err)
	}
	if r.Status != helloAccepted {
		err := fmt.Errorf("member %d at %s refused us (member %d of cluster %q): %s", to, addr, t.cfg.ID, t.cfg.ClusterID, r.Reason)
		if strings.HasPrefix(r.Reason, unknownKindReason) {
			err = fmt.Errorf("%w: %w", errUnknownKind, err)
		}
		return err
	}
	// The acceptor checked us; check it too, so we never send raft
	// messages to a member of another cluster or to the wrong member.
	if r.Cluster != t.cfg.ClusterID || r.ID != to || r.Version != peerProtocolVersion {
		return fmt.Errorf("refusing %s: expected member %d of cluster %q (protocol %d), it is member %d of cluster %q (protocol %d)",
			addr, to, t.cfg.ClusterID, peerProtocolVersion, r.ID, r.Cluster, r.Version)
	}
	return nil
}

// ---- inbound ----

func (t *TCPTransport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			t.log.Warn("replication: accept failed", "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveConn(c)
	}
}

// serveConn runs the acceptor side of the handshakes, then reads a stream
// or a single snapshot.
func (t *TCPTransport) serveConn(raw net.Conn) {
	defer t.wg.Done()
	defer func() {
		raw.Close()
		t.mu.Lock()
		delete(t.conns, raw)
		t.mu.Unlock()
	}()
	remote := raw.RemoteAddr().String()
	raw.SetDeadline(time.Now().Add(t.cfg.DialTimeout))
	conn := raw
	if t.cfg.ServerTLS != nil {
		tc := tls.Server(raw, t.cfg.ServerTLS)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			if t.ctx.Err() == nil {
				t.stats.refusedIn.Add(1)
				t.log.Warn("replication: refused peer connection: TLS handshake failed", "remote", remote, "err", err)
			}
			return
		}
		conn = tc
	}
	h, ok := t.serverHello(conn, remote)
	if !ok {
		return
	}
	conn.SetDeadline(time.Time{})
	switch h.Kind {
	case connStream:
		t.serveStream(conn, raw, h.From)
	case connSnapshot:
		t.serveSnapshot(conn, h.From)
	case connProbe, connStatusProbe:
		t.serveProbe(conn, h.From, h.Kind)
	}
}

// serverHello reads and checks the dialer's hello and answers it.
func (t *TCPTransport) serverHello(conn net.Conn, remote string) (hello, bool) {
	typ, payload, err := readFrame(conn, maxHelloBytes)
	var h hello
	if err == nil && typ != frameHello {
		err = fmt.Errorf("first frame has type %d, not a handshake", typ)
	}
	if err == nil {
		h, err = decodeHello(payload)
	}
	if err != nil {
		if t.ctx.Err() == nil {
			t.stats.refusedIn.Add(1)
			t.log.Warn("replication: refused peer connection: not a Paddock peer handshake", "remote", remote, "err", err)
		}
		return h, false
	}
	var reason string
	quiet := false // a fault-injection refusal is expected, not news
	switch {
	case h.Version != peerProtocolVersion:
		reason = fmt.Sprintf("unsupported peer protocol version %d (member %d speaks version %d)", h.Version, t.cfg.ID, peerProtocolVersion)
	case h.Cluster != t.cfg.ClusterID:
		reason = fmt.Sprintf("cluster id mismatch: member %d is in cluster %q, member %d is in cluster %q", h.From, h.Cluster, t.cfg.ID, t.cfg.ClusterID)
	case h.To != t.cfg.ID:
		reason = fmt.Sprintf("wrong member: connection from member %d meant for member %d reached member %d", h.From, h.To, t.cfg.ID)
	case h.From == 0 || h.From == t.cfg.ID:
		reason = fmt.Sprintf("invalid sender id %d (this member is %d)", h.From, t.cfg.ID)
	case h.Kind != connStream && h.Kind != connSnapshot && h.Kind != connProbe &&
		(h.Kind != connStatusProbe || t.cfg.StatusProbe == nil):
		reason = fmt.Sprintf("%s %d", unknownKindReason, h.Kind)
	case t.isBlocked(h.From):
		reason, quiet = "blocked by fault injection", true
	}
	reply := helloReply{Version: peerProtocolVersion, ID: t.cfg.ID, Cluster: t.cfg.ClusterID, Status: helloAccepted}
	if reason != "" {
		reply.Status, reply.Reason = helloRefused, reason
		if !quiet {
			t.stats.refusedIn.Add(1)
			t.log.Warn("replication: refused peer connection", "reason", reason,
				"local_id", t.cfg.ID, "local_cluster", t.cfg.ClusterID,
				"peer_id", h.From, "peer_cluster", h.Cluster, "peer_version", h.Version, "remote", remote)
		}
	}
	if err := writeFrame(conn, frameHelloReply, reply.encode()); err != nil {
		if reason == "" {
			t.log.Debug("replication: handshake reply failed", "remote", remote, "err", err)
		}
		return h, false
	}
	return h, reason == ""
}

// serveStream reads messages from one peer's stream until it fails. A new
// stream from the same peer replaces (closes) the previous one.
func (t *TCPTransport) serveStream(conn, raw net.Conn, from uint64) {
	t.mu.Lock()
	if old := t.streams[from]; old != nil {
		old.Close()
	}
	t.streams[from] = raw
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.streams[from] == raw {
			delete(t.streams, from)
		}
		t.mu.Unlock()
	}()
	log := t.log.With("peer", from)
	log.Debug("replication: accepted stream from peer", "remote", raw.RemoteAddr().String())
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		typ, payload, err := readFrame(br, maxStreamFrame)
		if err != nil {
			if t.ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				log.Info("replication: stream from peer ended", "err", err)
			}
			return
		}
		if typ != frameMessage {
			log.Warn("replication: unexpected frame type on peer stream; closing", "type", typ)
			return
		}
		if !t.deliver(log, from, payload) {
			return
		}
	}
}

// serveSnapshot reads one MsgSnap, hands it to raft and acknowledges it.
func (t *TCPTransport) serveSnapshot(conn net.Conn, from uint64) {
	log := t.log.With("peer", from)
	start := time.Now()
	typ, payload, err := readFrame(deadlineReader{conn, t.cfg.IOTimeout}, maxSnapFrame)
	if err != nil {
		log.Warn("replication: receiving snapshot failed", "err", err)
		return
	}
	if typ != frameMessage {
		log.Warn("replication: unexpected frame type on snapshot connection", "type", typ)
		return
	}
	if !t.deliver(log, from, payload) {
		return
	}
	t.stats.snapRecv.Add(1)
	log.Info("replication: snapshot received", "bytes", len(payload), "took", time.Since(start))
	conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout))
	if err := writeFrame(conn, frameSnapAck, nil); err != nil {
		log.Warn("replication: acknowledging snapshot failed", "err", err)
	}
}

// deliver unmarshals one message and steps it into raft. It reports false
// when the connection should be closed.
func (t *TCPTransport) deliver(log *slog.Logger, from uint64, payload []byte) bool {
	if t.isBlocked(from) {
		t.stats.dropped.Add(1)
		return true
	}
	m := new(raftpb.Message)
	if err := proto.Unmarshal(payload, m); err != nil {
		log.Warn("replication: undecodable raft message from peer; closing", "err", err)
		return false
	}
	if m.GetFrom() != from || m.GetTo() != t.cfg.ID {
		log.Warn("replication: raft message with wrong addressing; closing",
			"msg_from", m.GetFrom(), "msg_to", m.GetTo(), "local_id", t.cfg.ID)
		return false
	}
	h := t.getHandler()
	if h == nil {
		t.stats.dropped.Add(1)
		return true
	}
	if err := h.Step(t.ctx, m); err != nil {
		if t.ctx.Err() == nil {
			log.Debug("replication: handler refused message", "type", m.GetType().String(), "err", err)
		}
		return t.ctx.Err() == nil && m.GetType() != raftpb.MsgSnap
	}
	t.stats.received.Add(1)
	return true
}

// ---- wire format ----

// hello is the dialer's handshake.
type hello struct {
	Version  uint16
	Kind     byte
	From, To uint64
	Cluster  string
}

func (h hello) encode() []byte {
	b := append([]byte(nil), peerMagic...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = append(b, h.Kind)
	b = binary.BigEndian.AppendUint64(b, h.From)
	b = binary.BigEndian.AppendUint64(b, h.To)
	return appendString(b, h.Cluster)
}

func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) < len(peerMagic) || string(b[:len(peerMagic)]) != peerMagic {
		return h, errors.New("bad magic")
	}
	b = b[len(peerMagic):]
	if len(b) < 2+1+8+8 {
		return h, errors.New("short handshake")
	}
	h.Version = binary.BigEndian.Uint16(b)
	h.Kind = b[2]
	h.From = binary.BigEndian.Uint64(b[3:])
	h.To = binary.BigEndian.Uint64(b[11:])
	var err error
	h.Cluster, _, err = readString(b[19:])
	return h, err
}

// helloReply is the acceptor's answer.
type helloReply struct {
	Version uint16
	Status  byte
	ID      uint64
	Cluster string
	Reason  string
}

func (r helloReply) encode() []byte {
	b := append([]byte(nil), peerMagic...)
	b = binary.BigEndian.AppendUint16(b, r.Version)
	b = append(b, r.Status)
	b = binary.BigEndian.AppendUint64(b, r.ID)
	b = appendString(b, r.Cluster)
	if len(r.Reason) > maxReasonBytes {
		r.Reason = r.Reason[:maxReasonBytes]
	}
	return appendString(b, r.Reason)
}

func decodeHelloReply(b []byte) (helloReply, error) {
	var r helloReply
	if len(b) < len(peerMagic) || string(b[:len(peerMagic)]) != peerMagic {
		return r, errors.New("bad magic: not a Paddock peer")
	}
	b = b[len(peerMagic):]
	if len(b) < 2+1+8 {
		return r, errors.New("short handshake reply")
	}
	r.Version = binary.BigEndian.Uint16(b)
	r.Status = b[2]
	r.ID = binary.BigEndian.Uint64(b[3:])
	var err error
	if r.Cluster, b, err = readString(b[11:]); err != nil {
		return r, err
	}
	r.Reason, _, err = readString(b)
	return r, err
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, errors.New("short string")
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, errors.New("short string")
	}
	return string(b[2 : 2+n]), b[2+n:], nil
}

// writeFrame writes one frame: uint32 length, uint32 crc32c over the type
// byte and the payload, uint8 type, payload (integers big-endian).
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	if uint64(len(payload)) > maxSnapFrame {
		return fmt.Errorf("frame of %d bytes is too large", len(payload))
	}
	var hdr [frameHeaderLen]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum([]byte{typ}, crcTable), crcTable, payload)
	binary.BigEndian.PutUint32(hdr[4:8], crc)
	hdr[8] = typ
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readFrame reads one frame whose payload is at most max bytes. Large
// payloads are read incrementally, so a corrupt length cannot make it
// allocate more than the bytes that actually arrive.
func readFrame(r io.Reader, max uint64) (byte, []byte, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(binary.BigEndian.Uint32(hdr[0:4]))
	want := binary.BigEndian.Uint32(hdr[4:8])
	typ := hdr[8]
	if n > max {
		return 0, nil, fmt.Errorf("frame of %d bytes exceeds the %d-byte limit", n, max)
	}
	var payload []byte
	if n <= 4<<20 {
		payload = make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return 0, nil, noEOF(err)
		}
	} else {
		var buf bytes.Buffer
		buf.Grow(4 << 20)
		if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
			return 0, nil, noEOF(err)
		}
		payload = buf.Bytes()
	}
	if got := crc32.Update(crc32.Checksum([]byte{typ}, crcTable), crcTable, payload); got != want {
		return 0, nil, fmt.Errorf("frame checksum mismatch (type %d, %d bytes)", typ, n)
	}
	return typ, payload, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// deadlineWriter writes in chunks of ioChunk, giving each chunk a fresh
// write deadline: a connection must make progress, but a large snapshot may
// take as long as it needs.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), ioChunk)]
		w.c.SetWriteDeadline(time.Now().Add(w.timeout))
		n, err := w.c.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// deadlineReader is deadlineWriter's counterpart for reads.
type deadlineReader struct {
	c       net.Conn
	timeout time.Duration
}

func (r deadlineReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(r.timeout))
	return r.c.Read(p[:min(len(p), ioChunk)])
}
