package replication

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// StateMachine is the replicated state the node drives. All three methods
// are called from a single goroutine (the node's run loop, or Open), never
// concurrently.
type StateMachine interface {
	// Apply applies one committed normal entry. It is called in log order,
	// exactly once per entry per process lifetime, and only for entries with
	// non-empty data (raft's empty leader entries advance AppliedIndex but
	// are not passed here). It must be deterministic and cannot fail:
	// request errors are results recorded inside the state machine.
	Apply(index uint64, term uint64, data []byte)
	// Snapshot serializes the full state as of the last applied index.
	Snapshot(w io.Writer) error
	// Restore replaces the full state with one written by Snapshot.
	Restore(r io.Reader) error
}

// SnapshotCapturer is optionally implemented by a StateMachine that can
// snapshot without stopping apply. CaptureSnapshot is called on the run
// loop, between applies, and freezes the state as of the last applied
// index cheaply (copy-on-write); the function it returns writes that
// frozen state and is called on another goroutine while Apply goes on.
// Without it the node calls Snapshot on the run loop, and no entry applies
// (nor, on a leader, does a heartbeat go out) until the file is written.
type SnapshotCapturer interface {
	CaptureSnapshot() (write func(io.Writer) error)
}

// Transport carries raft messages to other members. Send must not block
// for long (queue and return); lost messages are fine, raft retries.
// Messages received from peers are fed back with (*Node).Step. A
// one-member group needs no Transport. A MsgSnap carries the snapshot body
// in Snapshot.Data (read from the snapshot file when raft decides to send
// one; the node keeps no snapshot body in memory).
type Transport interface {
	Send(msgs []*raftpb.Message)
}

// Config configures a Node. Zero values get the defaults noted.
type Config struct {
	// ID is this member's raft id (>= 1); a standalone server uses 1.
	ID uint64
	// Peers are the initial voters written into a new data directory
	// (default {ID}). Ignored when Dir already holds a log.
	Peers []uint64
	// Learners are the initial non-voting members (ZooKeeper observers)
	// written into a new data directory next to Peers. Ignored when Dir
	// already holds a log, and when Join is set.
	Learners []uint64
	// Join starts a new data directory with an empty log, waiting for an
	// existing leader to add this member, instead of bootstrapping Peers.
	Join bool
	// Dir is the data directory; the node owns Dir/wal and Dir/snap.
	Dir string
	// TickInterval is the raft logical clock period (default 100ms).
	TickInterval time.Duration
	// ElectionTicks and HeartbeatTicks are in ticks (default 10 and 1).
	ElectionTicks, HeartbeatTicks int
	// SnapshotEvery is the number of applied entries after which a snapshot
	// is taken (default 10000, as etcd). The two newest snapshots are kept.
	SnapshotEvery uint64
	// MaxBatchBytes bounds the proposal bytes gathered into one raft batch
	// and the committed bytes handed out per Ready (default 4 MiB).
	MaxBatchBytes int
	// Logger receives the node's and raft's logs (default slog.Default()).
	Logger *slog.Logger
	// Transport sends messages to peers; nil for a one-member group.
	Transport Transport
	// CheckConfChangesOnApply turns off raft's checks of membership
	// changes when they are proposed (raft.Config.DisableConfChangeValidation),
	// which silently turn a change raft finds untimely into an empty entry,
	// so that every proposed change reaches the log and is checked when
	// applied, against the configuration actually in force, on every
	// member alike: one that does not apply is refused there (see
	// ConfChangeRejecter), and its proposer can be answered.
	CheckConfChangesOnApply bool
	// VetConfChange, if set, lets the leader refuse a membership change
	// before it enters the log (see ConfChangeVetter).
	VetConfChange ConfChangeVetter

	// segmentSize overrides the WAL segment size (tests only).
	segmentSize int64
}

const (
	// maxPendingEntries is how far the raft log may run ahead of the
	// applied index before the loop stops taking new proposals: Propose
	// then blocks, which is the backpressure the callers see.
	maxPendingEntries = 1 << 16
	// snapshotCatchUpEntries is how many entries are kept in memory behind
	// a snapshot so a slightly slow follower can catch up from the log.
	snapshotCatchUpEntries = 5000
)

func (c *Config) setDefaults() {
	if len(c.Peers) == 0 {
		c.Peers = []uint64{c.ID}
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 1
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 10000
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 4 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.segmentSize <= 0 {
		c.segmentSize = defaultSegmentSize
	}
}

// Errors returned by a Node.
var (
	// ErrStopped: the node was closed or stopped on a fatal error (see Err).
	ErrStopped = errors.New("replication: node stopped")
	// ErrNoLeader: no leader is known, so a proposal cannot be routed.
	ErrNoLeader = errors.New("replication: no leader")
	// ErrProposalDropped: raft refused a conf change proposal (e.g. a leadership
	// transfer is in progress). Retrying later may succeed.
	ErrProposalDropped = errors.New("replication: proposal dropped")
	// ErrLeaderChanged: a ReadIndex request was lost to a leader change.
	ErrLeaderChanged = errors.New("replication: leader changed")
)

// Stats are counters describing the node's disk work, for metrics and for
// checking that group commit works (EntriesWritten/Fsyncs).
type Stats struct {
	Fsyncs          uint64 // WAL batch fsyncs
	EntriesWritten  uint64 // entries appended to the WAL
	BytesWritten    uint64 // WAL bytes written
	Proposals       uint64 // proposals accepted by raft
	Dropped         uint64 // proposals queued by Propose but refused by raft
	ProposalBatches uint64 // raft messages those proposals were grouped into
	Applied         uint64 // normal entries passed to StateMachine.Apply
	Snapshots       uint64 // snapshots taken or received
}

// EntriesPerFsync is the average group-commit batch size.
func (s Stats) EntriesPerFsync() float64 {
	if s.Fsyncs == 0 {
		return 0
	}
	return float64(s.EntriesWritten) / float64(s.Fsyncs)
}

// Node is a durable raft member. Its exported methods are safe for
// concurrent use. One goroutine (the run loop) owns the raft.RawNode, the
// storage, the WAL and the state machine.
type Node struct {
	cfg       Config
	sm        StateMachine
	log       *slog.Logger
	rn        *raft.RawNode
	storage   *raft.MemoryStorage
	wal       *wal
	snaps     *snapStore
	keepSnaps bool // a Transport is configured: MsgSnaps may be sent

	// Owned by the run loop.
	confState   *raftpb.ConfState
	snapIndex   uint64 // index of the newest snapshot
	appliedTerm uint64
	lastIndex   uint64 // newest index in the raft log
	reads       map[uint64]chan uint64
	// snapping is the result of the snapshot being written off the run
	// loop (SnapshotCapturer), nil when none is; at most one at a time.
	snapping chan snapDone
	// removing counts the goroutines deleting files (dropFiles).
	removing sync.WaitGroup

	propc  chan []byte
	recvc  chan *raftpb.Message
	actc   chan func()
	stopc  chan struct{}
	done   chan struct{}
	stopMu sync.Once
	closed sync.Once

	// memb is a copy of confState for Membership, replaced on changes.
	memb atomic.Pointer[raftpb.ConfState]

	applied, committed, lead, term atomic.Uint64
	leader                         atomic.Bool
	readSeq                        atomic.Uint64

	applyMu sync.Mutex
	applyCh chan struct{} // closed and replaced whenever applied advances

	errMu sync.Mutex
	err   error

	stats struct {
		proposals, batches, dropped, applied, snapshots atomic.Uint64
		fsyncs, entries, bytes                          atomic.Uint64
	}
}

// Open recovers the node stored in cfg.Dir (creating it if empty) and
// starts its run loop.
//
// Recovery restores the newest valid snapshot into sm, replays the WAL
// after it, and applies every committed entry in it before Open returns.
// A one-voter group then elects itself, also before Open returns, so a
// standalone node is leader and fully caught up when it is handed out.
func Open(cfg Config, sm StateMachine) (*Node, error) {
	if cfg.ID == 0 {
		return nil, errors.New("replication: Config.ID must be >= 1")
	}
	if cfg.Dir == "" {
		return nil, errors.New("replication: Config.Dir is required")
	}
	if sm == nil {
		return nil, errors.New("replication: nil StateMachine")
	}
	cfg.setDefaults()
	log := cfg.Logger.With("raft_id", cfg.ID)
	walDir, snapDir := filepath.Join(cfg.Dir, "wal"), filepath.Join(cfg.Dir, "snap")
	for _, d := range []string{cfg.Dir, walDir, snapDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}

	n := &Node{
		cfg:       cfg,
		sm:        sm,
		log:       log,
		storage:   raft.NewMemoryStorage(),
		snaps:     &snapStore{dir: snapDir, log: log},
		keepSnaps: cfg.Transport != nil,
		confState: &raftpb.ConfState{},
		reads:     make(map[uint64]chan uint64),
		propc:     make(chan []byte, 4096),
		recvc:     make(chan *raftpb.Message, 1024),
		actc:      make(chan func(), 64),
		stopc:     make(chan struct{}),
		done:      make(chan struct{}),
		applyCh:   make(chan struct{}),
	}

	// 1. Snapshot.
	// The raft storage holds the snapshot's metadata only: its body (as
	// big as the state) is read back from the file when a follower needs
	// it (sendSnapshotFromDisk), so no member holds a second copy of the
	// state in memory.
	meta, _, haveSnap, err := n.snaps.loadNewest(sm.Restore, false)
	if err != nil {
		return nil, err
	}
	if haveSnap {
		if err := n.storage.ApplySnapshot(&raftpb.Snapshot{Metadata: meta.raft()}); err != nil {
			return nil, err
		}
		n.confState = meta.ConfState
		n.snapIndex, n.appliedTerm = meta.Index, meta.Term
		n.applied.Store(meta.Index)
	}

	// 2. WAL.
	rp, err := replayWAL(walDir, meta.Index, log)
	if err != nil {
		return nil, err
	}
	n.lastIndex = meta.Index
	if k := len(rp.entries); k > 0 {
		n.lastIndex = rp.entries[k-1].GetIndex()
	}
	if rp.hardState != nil {
		if err := n.storage.SetHardState(rp.hardState); err != nil {
			return nil, err
		}
		n.term.Store(rp.hardState.GetTerm())
	}
	if err := n.storage.Append(rp.entries); err != nil {
		return nil, err
	}
	if n.wal, err = openWAL(walDir, rp, n.lastIndex, cfg.segmentSize, log); err != nil {
		return nil, err
	}
	recovered := slog.LevelInfo
	if meta.Index == 0 && len(rp.entries) == 0 {
		recovered = slog.LevelDebug // a new data directory: nothing to report
	}
	log.Log(context.Background(), recovered, "replication: recovered storage", "dir", cfg.Dir, "snapshot_index", meta.Index,
		"wal_entries", len(rp.entries), "last_index", n.lastIndex, "commit", rp.hardState.GetCommit(),
		"segments", len(n.wal.segs))

	// 3. Raft. A new group with learners writes its initial configuration
	// into the log before raft reads it (see bootstrapWithLearners).
	fresh := !haveSnap && rp.hardState == nil && len(rp.entries) == 0
	if fresh && !cfg.Join && len(cfg.Learners) > 0 {
		if err := n.bootstrapWithLearners(); err != nil {
			n.wal.close()
			return nil, err
		}
	}
	n.rn, err = raft.NewRawNode(&raft.Config{
		ID:                          cfg.ID,
		ElectionTick:                cfg.ElectionTicks,
		HeartbeatTick:               cfg.HeartbeatTicks,
		Storage:                     n.storage,
		Applied:                     meta.Index,
		MaxSizePerMsg:               1 << 20,
		MaxCommittedSizePerReady:    uint64(cfg.MaxBatchBytes),
		MaxInflightMsgs:             256,
		CheckQuorum:                 true,
		PreVote:                     true,
		StepDownOnRemoval:           true,
		DisableConfChangeValidation: cfg.CheckConfChangesOnApply,
		Logger:                      raftLogger{log.With("component", "raft")},
	})
	if err != nil {
		n.wal.close()
		return nil, err
	}
	if fresh && !cfg.Join && len(cfg.Learners) == 0 {
		peers := make([]raft.Peer, len(cfg.Peers))
		for i, id := range cfg.Peers {
			peers[i] = raft.Peer{ID: id}
		}
		if err := n.rn.Bootstrap(peers); err != nil {
			n.wal.close()
			return nil, err
		}
		log.Debug("replication: bootstrapped new group", "peers", cfg.Peers)
	}

	// 4. Apply everything durable and committed, then let a lone voter
	// elect itself, all before anyone can propose.
	if err := n.drainReadies(); err != nil {
		n.wal.close()
		return nil, err
	}
	n.publishConfState()
	if n.singleVoter() {
		if err := n.rn.Campaign(); err != nil {
			n.wal.close()
			return nil, err
		}
		if err := n.drainReadies(); err != nil {
			n.wal.close()
			return nil, err
		}
	}
	go n.run()
	return n, nil
}

// singleVoter reports whether this member is the group's only voter.
func (n *Node) singleVoter() bool {
	cs := n.confState
	return len(cs.GetVoters()) == 1 && cs.GetVoters()[0] == n.cfg.ID && len(cs.GetVotersOutgoing()) == 0
}

// drainReadies handles Readies until raft has nothing more to do.
func (n *Node) drainReadies() error {
	for n.rn.HasReady() {
		if err := n.handleReady(); err != nil {
			return err
		}
	}
	return nil
}

// run is the node's loop: tick, gather proposals and messages, handle the
// Ready, repeat.
func (n *Node) run() {
	defer close(n.done)
	defer func() {
		// A snapshot still being written is durable before the WAL closes;
		// it is recorded unless the node already failed.
		if n.snapping != nil && n.Err() != nil {
			<-n.snapping
		} else if err := n.awaitSnapshot(); err != nil {
			n.fail(err)
		}
	}()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	var props [][]byte
	for {
		propc := n.propc
		if applied := n.applied.Load(); n.lastIndex > applied && n.lastIndex-applied > maxPendingEntries {
			propc = nil // backpressure: Propose blocks until applying catches up
		}
		if !n.rn.HasReady() {
			select {
			case <-ticker.C:
				n.rn.Tick()
			case p := <-propc:
				props = append(props, p)
			case m := <-n.recvc:
				n.step(m)
			case f := <-n.actc:
				f()
			case d := <-n.snapping:
				if !n.snapshotWritten(d) {
					return
				}
			case <-n.stopc:
				return
			}
		}
		// Gather whatever else is already waiting so that it shares this
		// Ready and its fsync.
		var stop bool
		props, stop = n.gather(props, propc, ticker.C)
		if stop {
			return
		}
		if len(props) > 0 {
			n.propose(props)
			clear(props)
			props = props[:0]
		}
		if n.rn.HasReady() {
			if err := n.handleReady(); err != nil {
				n.fail(err)
				return
			}
		}
		// Under steady load the select above is skipped: look here too.
		select {
		case d := <-n.snapping:
			if !n.snapshotWritten(d) {
				return
			}
		default:
		}
	}
}

// gather takes queued proposals (up to MaxBatchBytes), messages and
// actions without blocking.
func (n *Node) gather(props [][]byte, propc chan []byte, tickc <-chan time.Time) ([][]byte, bool) {
	size := 0
	for _, p := range props {
		size += len(p)
	}
	for {
		if size >= n.cfg.MaxBatchBytes {
			propc = nil
		}
		select {
		case p := <-propc:
			props = append(props, p)
			size += len(p)
		case m := <-n.recvc:
			n.step(m)
		case f := <-n.actc:
			f()
		case <-tickc:
			n.rn.Tick()
		case <-n.stopc:
			return props, true
		default:
			return props, false
		}
	}
}

// propose hands a batch of proposals to raft as one message. A batch raft
// refuses (no leader any more, leadership transfer) is dropped and counted:
// its callers find out by never seeing the entries applied, exactly as when
// a leader that a proposal was forwarded to fails.
func (n *Node) propose(props [][]byte) {
	err := ErrNoLeader
	if n.lead.Load() != raft.None {
		ents := make([]*raftpb.Entry, len(props))
		for i, p := range props {
			ents[i] = &raftpb.Entry{Data: p}
		}
		err = n.rn.Step(&raftpb.Message{
			Type:    raftpb.MsgProp.Enum(),
			From:    proto.Uint64(n.cfg.ID),
			Entries: ents,
		})
	}
	if err != nil {
		n.stats.dropped.Add(uint64(len(props)))
		n.log.Warn("replication: proposals dropped", "count", len(props), "err", err)
		return
	}
	n.stats.proposals.Add(uint64(len(props)))
	n.stats.batches.Add(1)
}

func (n *Node) step(m *raftpb.Message) {
	if m.GetType() == raftpb.MsgProp {
		n.vetEntries(m.GetEntries())
	}
	if err := n.rn.Step(m); err != nil {
		n.log.Debug("replication: dropped message", "type", m.GetType().String(), "from", m.GetFrom(), "err", err)
	}
}

// handleReady processes one Ready. The order is the durability contract:
// persist (one fsync) -> send -> apply -> snapshot -> Advance. On error
// nothing after the failed step happens, so an entry whose write failed is
// never applied or acknowledged to anyone.
func (n *Node) handleReady() error {
	rd := n.rn.Ready()
	if rd.SoftState != nil {
		n.updateSoftState(rd.SoftState)
	}
	if rd.HardState != nil {
		n.term.Store(rd.HardState.GetTerm())
	}

	// 1. Persist.
	snap := rd.Snapshot
	hasSnap := snap != nil && !raft.IsEmptySnap(snap)
	if hasSnap {
		md := snap.GetMetadata()
		meta := snapMeta{Index: md.GetIndex(), Term: md.GetTerm(), ConfState: md.GetConfState()}
		if _, err := n.snaps.save(meta, func(w io.Writer) error { _, err := w.Write(snap.GetData()); return err }, false); err != nil {
			return fmt.Errorf("replication: save received snapshot: %w", err)
		}
		if err := n.wal.saveSnapshotMarker(meta.Index, meta.Term, true); err != nil {
			return err
		}
	}
	err := n.wal.save(rd.HardState, rd.Entries, rd.MustSync || hasSnap)
	n.stats.fsyncs.Store(n.wal.fsyncs)
	n.stats.entries.Store(n.wal.entries)
	n.stats.bytes.Store(n.wal.bytes)
	if err != nil {
		return err
	}
	if hasSnap {
		if err := n.awaitSnapshot(); err != nil {
			return err
		}
		if err := n.installSnapshot(snap); err != nil {
			return err
		}
	}
	if rd.HardState != nil {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return err
		}
		n.committed.Store(rd.HardState.GetCommit())
	}
	if k := len(rd.Entries); k > 0 {
		if err := n.storage.Append(rd.Entries); err != nil {
			return err
		}
		n.lastIndex = rd.Entries[k-1].GetIndex()
	}

	// 2. Send: everything in the Ready may now go out, the local writes it
	// depends on are durable.
	if t := n.cfg.Transport; t != nil && len(rd.Messages) > 0 {
		msgs := rd.Messages
		if n.keepSnaps {
			msgs = n.sendSnapshotsFromDisk(msgs)
		}
		if len(msgs) > 0 {
			t.Send(msgs)
		}
	}

	// 3. Apply.
	if err := n.apply(rd.CommittedEntries); err != nil {
		return err
	}
	for _, rs := range rd.ReadStates {
		if len(rs.RequestCtx) == 8 {
			id := binary.BigEndian.Uint64(rs.RequestCtx)
			if ch, ok := n.reads[id]; ok {
				ch <- rs.Index
				delete(n.reads, id)
			}
		}
	}

	// 4. Snapshot.
	if n.snapping == nil && n.snapshotDue(n.applied.Load()-n.snapIndex) {
		if err := n.takeSnapshot(); err != nil {
			return err
		}
	}

	n.rn.Advance(rd)
	return nil
}

func (n *Node) updateSoftState(ss *raft.SoftState) {
	prev := n.lead.Swap(ss.Lead)
	n.leader.Store(ss.RaftState == raft.StateLeader)
	if prev != ss.Lead {
		lvl := slog.LevelInfo
		if len(n.confState.Voters) <= 1 {
			lvl = slog.LevelDebug // a one-voter group always leads itself
		}
		n.log.Log(context.Background(), lvl, "replication: leader changed", "leader", ss.Lead, "state", ss.RaftState.String())
		// raft drops pending read-index requests on a leader change.
		for id, ch := range n.reads {
			close(ch)
			delete(n.reads, id)
		}
	}
}

// installSnapshot replaces the log and the state machine with a snapshot
// received from the leader (already durable on disk).
func (n *Node) installSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	// The storage keeps the metadata only (see New); the body is on disk.
	if err := n.storage.ApplySnapshot(&raftpb.Snapshot{Metadata: md}); err != nil {
		return err
	}
	if err := n.sm.Restore(bytes.NewReader(snap.GetData())); err != nil {
		return fmt.Errorf("replication: restore received snapshot %d: %w", md.GetIndex(), err)
	}
	n.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
	n.publishConfState()
	n.snapIndex, n.appliedTerm, n.lastIndex = md.GetIndex(), md.GetTerm(), md.GetIndex()
	n.stats.snapshots.Add(1)
	n.publishApplied(md.GetIndex())
	n.log.Info("replication: installed snapshot from leader", "index", md.GetIndex(), "term", md.GetTerm())
	if oldest, victims, err := n.snaps.purge(2); err != nil {
		n.log.Warn("replication: purge snapshots", "err", err)
	} else {
		n.dropFiles(append(victims, n.wal.releaseTo(oldest)...))
	}
	return nil
}

// dropFiles removes files no longer needed on a goroutine of its own
// (removeGently); Close waits for it.
func (n *Node) dropFiles(paths []string) {
	if len(paths) == 0 {
		return
	}
	n.removing.Go(func() { removeGently(paths, n.log) })
}

// apply applies committed entries in order.
func (n *Node) apply(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= n.applied.Load() {
			continue // already covered by a snapshot
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) > 0 {
				n.sm.Apply(idx, e.GetTerm(), e.GetData())
				n.stats.applied.Add(1)
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("replication: bad conf change at %d: %w", idx, err)
			}
			if err := n.checkConfChange(idx, cc.AsV2()); err != nil {
				// Refused on every member alike; raft must not see it.
				n.log.Warn("replication: refusing a membership change that does not apply", "index", idx, "change", raft.DescribeConfChange(&cc), "err", err)
				n.rejectConfChange(idx, e.GetTerm(), cc.AsV2(), err)
			} else if n.admitConfChange(idx, e.GetTerm(), cc.AsV2()) {
				// A refused change is not given to raft at all (raft's
				// RawNode.ApplyConfChange contract).
				n.confState = n.rn.ApplyConfChange(&cc)
				n.publishConfState()
				n.log.Debug("replication: applied conf change", "index", idx, "change", raft.DescribeConfChange(&cc), "conf", raft.DescribeConfState(n.confState))
			}
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("replication: bad conf change at %d: %w", idx, err)
			}
			if err := n.checkConfChange(idx, &cc); err != nil {
				n.log.Warn("replication: refusing a membership change that does not apply", "index", idx, "change", raft.DescribeConfChange(&cc), "err", err)
				n.rejectConfChange(idx, e.GetTerm(), &cc, err)
			} else if n.admitConfChange(idx, e.GetTerm(), &cc) {
				// A change refused by the state machine (deterministically,
				// on every member) is not given to raft at all: raft's
				// RawNode.ApplyConfChange contract for a vetoed change.
				n.confState = n.rn.ApplyConfChange(&cc)
				n.publishConfState()
				n.log.Debug("replication: applied conf change", "index", idx, "change", raft.DescribeConfChange(&cc), "conf", raft.DescribeConfState(n.confState))
			}
		}
		n.appliedTerm = e.GetTerm()
		n.applied.Store(idx)
	}
	n.publishApplied(n.applied.Load())
	return nil
}

func (n *Node) publishApplied(idx uint64) {
	n.applied.Store(idx)
	n.applyMu.Lock()
	close(n.applyCh)
	n.applyCh = make(chan struct{})
	n.applyMu.Unlock()
}

// snapDone is a snapshot written off the run loop: its metadata, when it
// was started, and the error writing it.
type snapDone struct {
	meta  snapMeta
	start time.Time
	err   error
}

// takeSnapshot snapshots the state machine at the applied index. With a
// SnapshotCapturer it only captures the state here and writes the file on
// a goroutine of its own (finishSnapshot runs on the run loop when it is
// durable); otherwise it writes the file now and finishes.
func (n *Node) takeSnapshot() error {
	meta := snapMeta{Index: n.applied.Load(), Term: n.appliedTerm, ConfState: proto.Clone(n.confState).(*raftpb.ConfState)}
	start := time.Now()
	c, ok := n.sm.(SnapshotCapturer)
	if !ok {
		_, err := n.snaps.save(meta, n.sm.Snapshot, false)
		return n.finishSnapshot(snapDone{meta: meta, start: start, err: err})
	}
	write := c.CaptureSnapshot()
	ch := make(chan snapDone, 1)
	n.snapping = ch
	n.log.Debug("replication: writing snapshot", "index", meta.Index, "capture", time.Since(start))
	go func() {
		_, err := n.snaps.save(meta, write, false)
		ch <- snapDone{meta: meta, start: start, err: err}
	}()
	return nil
}

// snapshotWritten finishes a snapshot written off the run loop; false
// means the node failed and the run loop must stop.
func (n *Node) snapshotWritten(d snapDone) bool {
	if err := n.finishSnapshot(d); err != nil {
		n.fail(err)
		return false
	}
	return true
}

// awaitSnapshot waits for the snapshot being written, if any, and
// finishes it: before a snapshot from the leader replaces the state, and
// when the run loop stops.
func (n *Node) awaitSnapshot() error {
	if n.snapping == nil {
		return nil
	}
	return n.finishSnapshot(<-n.snapping)
}

// finishSnapshot records a snapshot that is durable on disk, then compacts
// the in-memory log and drops files no longer needed. A snapshot that
// could not be written is fatal, as a failed WAL write is: the node stops
// rather than run on with a log it cannot compact.
func (n *Node) finishSnapshot(d snapDone) error {
	n.snapping = nil
	meta := d.meta
	if d.err != nil {
		return fmt.Errorf("replication: take snapshot at %d: %w", meta.Index, d.err)
	}
	if err := n.wal.saveSnapshotMarker(meta.Index, meta.Term, false); err != nil {
		return err
	}
	if _, err := n.storage.CreateSnapshot(meta.Index, meta.ConfState, nil); err != nil {
		return err
	}
	if meta.Index > snapshotCatchUpEntries {
		compact := meta.Index - snapshotCatchUpEntries
		if first, _ := n.storage.FirstIndex(); compact > first {
			if err := n.storage.Compact(compact); err != nil {
				return err
			}
		}
	}
	n.snapIndex = meta.Index
	n.stats.snapshots.Add(1)
	oldest, victims, err := n.snaps.purge(2)
	if err != nil {
		return err
	}
	n.dropFiles(append(victims, n.wal.releaseTo(oldest)...))
	n.log.Info("replication: snapshot taken", "index", meta.Index, "term", meta.Term,
		"took", time.Since(d.start), "wal_segments", len(n.wal.segs))
	return nil
}

// sendSnapshotsFromDisk takes the MsgSnaps out of msgs and sends each from
// a goroutine of its own once its body is read from the snapshot file:
// raft's storage holds only snapshot metadata, and reading a large file
// must not stall the run loop. A body that cannot be read (the snapshot
// was purged meanwhile) is reported as a failed send; raft then retries
// with its newest snapshot. It returns the other messages.
func (n *Node) sendSnapshotsFromDisk(msgs []*raftpb.Message) []*raftpb.Message {
	var rest []*raftpb.Message
	for _, m := range msgs {
		if m.GetType() != raftpb.MsgSnap || len(m.GetSnapshot().GetData()) > 0 {
			rest = append(rest, m)
			continue
		}
		md := m.GetSnapshot().GetMetadata()
		go func() {
			body, err := n.snaps.body(md.GetTerm(), md.GetIndex())
			if err != nil {
				n.log.Warn("replication: cannot read the snapshot to send", "to", m.GetTo(), "index", md.GetIndex(), "err", err)
				n.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
				return
			}
			// A copy: the message raft gave us is left untouched.
			out := proto.Clone(m).(*raftpb.Message)
			out.Snapshot = &raftpb.Snapshot{Data: body, Metadata: md}
			n.cfg.Transport.Send([]*raftpb.Message{out})
		}()
	}
	return rest
}

// fail records a fatal error; the run loop exits right after.
func (n *Node) fail(err error) {
	n.errMu.Lock()
	if n.err == nil {
		n.err = err
	}
	n.errMu.Unlock()
	n.log.Error("replication: node stopped on fatal error", "err", err)
}

// Err returns the fatal error that stopped the node, or nil.
func (n *Node) Err() error {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	return n.err
}

// Done is closed when the run loop has exited (Close or a fatal error).
func (n *Node) Done() <-chan struct{} { return n.done }

func (n *Node) stoppedErr() error {
	if err := n.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	return ErrStopped
}

// Propose hands data to the raft loop as a new log entry and returns
// without waiting for the loop, the disk or the commit: the caller learns
// the outcome when StateMachine.Apply sees the entry, so it should embed a
// request id in data. Not waiting is what lets a single caller pipeline
// many proposals into one fsync.
//
// Propose fails fast when the node has stopped or knows no leader. A
// proposal that is accepted here but lost later (leadership changed before
// the loop stepped it, or a leader it was forwarded to failed) is never
// applied; callers need a timeout, as with any raft system. Stats counts
// the proposals dropped locally. Propose blocks (until ctx is done) while
// the node is too far behind on applying: that is the backpressure. data
// must not be modified afterwards.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-n.done:
		return n.stoppedErr()
	default:
	}
	if n.lead.Load() == raft.None {
		return ErrNoLeader
	}
	select {
	case n.propc <- data:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
}

// do runs f on the run loop and waits for it.
func (n *Node) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case n.actc <- func() { f(); close(ran) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
}

// ProposeConfChange proposes a membership change (raftpb.ConfChange or
// ConfChangeV2). Like Propose, it returns once raft has accepted it.
func (n *Node) ProposeConfChange(ctx context.Context, cc raftpb.ConfChangeI) error {
	var err error
	if derr := n.do(ctx, func() {
		if n.cfg.VetConfChange != nil && n.leader.Load() {
			st := n.rn.Status()
			if repl := n.cfg.VetConfChange(cc.AsV2(), st); repl != nil {
				n.log.Info("replication: membership change refused before entering the log", "change", raft.DescribeConfChange(cc))
				err = n.rn.Propose(repl)
				return
			}
		}
		err = n.rn.ProposeConfChange(cc)
	}); derr != nil {
		return derr
	}
	if errors.Is(err, raft.ErrProposalDropped) {
		return ErrProposalDropped
	}
	return err
}

// Step feeds a message received from a peer into raft.
func (n *Node) Step(ctx context.Context, m *raftpb.Message) error {
	select {
	case n.recvc <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
}

// ReportUnreachable tells raft that a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) {
	_ = n.do(context.Background(), func() { n.rn.ReportUnreachable(id) })
}

// ReportSnapshot tells raft whether sending a snapshot to a peer worked.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	_ = n.do(context.Background(), func() { n.rn.ReportSnapshot(id, status) })
}

// ReadIndex returns an index such that a read served after AppliedIndex
// reaches it observes every write committed before ReadIndex was called
// (raft's ReadIndex: the leader confirms it still leads). On a one-voter
// group it returns the commit index without network traffic.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if n.lead.Load() == raft.None {
		return 0, ErrNoLeader
	}
	id := n.readSeq.Add(1)
	ch := make(chan uint64, 1)
	rctx := binary.BigEndian.AppendUint64(nil, id)
	if err := n.do(ctx, func() {
		n.reads[id] = ch
		n.rn.ReadIndex(rctx)
	}); err != nil {
		return 0, err
	}
	select {
	case idx, ok := <-ch:
		if !ok {
			return 0, ErrLeaderChanged
		}
		return idx, nil
	case <-ctx.Done():
		// Forget the request; harmless if it has already been answered.
		select {
		case n.actc <- func() { delete(n.reads, id) }:
		case <-n.done:
		}
		return 0, ctx.Err()
	case <-n.done:
		return 0, n.stoppedErr()
	}
}

// WaitApplied blocks until AppliedIndex() >= index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		n.applyMu.Lock()
		ch := n.applyCh
		n.applyMu.Unlock()
		if n.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			if n.applied.Load() >= index {
				return nil
			}
			return n.stoppedErr()
		}
	}
}

// AppliedIndex is the index of the last entry applied (normal, empty or
// conf change) or restored from a snapshot.
func (n *Node) AppliedIndex() uint64 { return n.applied.Load() }

// CommittedIndex is the commit index last persisted by this node.
func (n *Node) CommittedIndex() uint64 { return n.committed.Load() }

// IsLeader reports whether this node currently believes it is leader.
func (n *Node) IsLeader() bool { return n.leader.Load() }

// Leader is the id of the current leader as known here, 0 if none.
func (n *Node) Leader() uint64 { return n.lead.Load() }

// Term is the current raft term.
func (n *Node) Term() uint64 { return n.term.Load() }

// Status returns raft's full status (zero value once the node stopped).
func (n *Node) Status() raft.Status {
	var st raft.Status
	_ = n.do(context.Background(), func() { st = n.rn.Status() })
	return st
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{
		Fsyncs:          n.stats.fsyncs.Load(),
		EntriesWritten:  n.stats.entries.Load(),
		BytesWritten:    n.stats.bytes.Load(),
		Proposals:       n.stats.proposals.Load(),
		Dropped:         n.stats.dropped.Load(),
		ProposalBatches: n.stats.batches.Load(),
		Applied:         n.stats.applied.Load(),
		Snapshots:       n.stats.snapshots.Load(),
	}
}

// Close stops the run loop, then fsyncs and closes the WAL. It returns the
// fatal error that stopped the node, if any, or the close error.
func (n *Node) Close() error {
	n.stopMu.Do(func() { close(n.stopc) })
	<-n.done
	n.removing.Wait()
	var err error
	n.closed.Do(func() { err = n.wal.close() })
	if ferr := n.Err(); ferr != nil {
		return ferr
	}
	return err
}

// SnapshotSizer is optionally implemented by a StateMachine that knows how
// big its state is. Writing a snapshot costs CPU and disk in proportion to
// the state (and, without SnapshotCapturer, stops apply that long), so
// snapshots are spaced at least SnapshotCost() entries apart: the cost per
// applied entry stays bounded however large the tree grows, and the
// in-memory log stays proportional to the state.
type SnapshotSizer interface {
	SnapshotCost() uint64
}

// snapshotDue decides whether to snapshot after since entries.
func (n *Node) snapshotDue(since uint64) bool {
	if since < n.cfg.SnapshotEvery {
		return false
	}
	if sz, ok := n.sm.(SnapshotSizer); ok {
		return since >= sz.SnapshotCost()
	}
	return true
}

// raftLogger adapts slog to raft's Logger interface.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) logf(level slog.Level, format string, v ...any) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}
func (r raftLogger) log(level slog.Level, v ...any) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, fmt.Sprint(v...))
	}
}

func (r raftLogger) Debug(v ...any)                 { r.log(slog.LevelDebug, v...) }
func (r raftLogger) Debugf(format string, v ...any) { r.logf(slog.LevelDebug, format, v...) }

// raft narrates every election step at Info; that is detail for a
// debugging operator, so it goes to Debug and our own summaries stay at Info.
func (r raftLogger) Info(v ...any)                    { r.log(slog.LevelDebug, v...) }
func (r raftLogger) Infof(format string, v ...any)    { r.logf(slog.LevelDebug, format, v...) }
func (r raftLogger) Warning(v ...any)                 { r.log(slog.LevelWarn, v...) }
func (r raftLogger) Warningf(format string, v ...any) { r.logf(slog.LevelWarn, format, v...) }
func (r raftLogger) Error(v ...any)                   { r.log(slog.LevelError, v...) }
func (r raftLogger) Errorf(format string, v ...any)   { r.logf(slog.LevelError, format, v...) }
func (r raftLogger) Fatal(v ...any)                   { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any)   { r.Panicf(format, v...) }
func (r raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	r.l.Error(msg)
	panic(msg)
}
func (r raftLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	r.l.Error(msg)
	panic(msg)
}
