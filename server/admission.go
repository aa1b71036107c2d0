package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/paddockhq/paddock/replication"
)

// Admission: a member with an empty data directory takes no part in raft
// until it knows that doing so cannot make the ensemble forget a write.
//
// The hazard is Raft's (and Zab's) "amnesia": a voter acknowledges writes,
// loses its disk, and comes back empty with the same id. The quorums that
// committed those writes counted it; empty, it would vote for a candidate
// that lacks them and acknowledge that candidate's log, and a write every
// client was told is durable is gone. Raft assumes stable storage; so does
// ZooKeeper, which has the same failure when a voter's dataDir is wiped
// (ZOOKEEPER-1549 and the many operator bug reports in
// operator-lessons.md). The cure is the one etcd documents for a member
// whose data is lost: remove it from the membership, then add it back as a
// new member (a learner first), which the cluster brings up to date.
//
// So an ensemble member whose data directory holds no log and no snapshot
// starts in one of two ways:
//
//   - bootstrap: without --join, when every member of the static
//     configuration answers that it is empty too (the brand-new cluster,
//     bootstrapGate in ensemble.go);
//   - admission: otherwise (with --join, or when a member already has data).
//     The raft node is opened with an empty log, as a joiner, but every
//     raft message sent to it is dropped: it does not vote, acknowledge an
//     append, take a snapshot or campaign (a joiner is in no configuration
//     of its own, so raft never makes it a candidate). It asks its peers
//     with status probes (TCPTransport.ProbeStatus) what place its id holds
//     in their configuration, and
//     - is admitted once the leader (with its log applied) answers that the
//     id is not a voter (absent, or an observer) and no member with data
//     says it is one: it is then a joiner like any new member, and waits
//     for a reconfig to add it;
//     - is refused while any member with data lists the id as a voter: it
//     says so (log, /readyz, srvr/stat/mntr "refused", the admin srvr
//     command's "refusal" key, the termination message) and keeps asking,
//     so the remedy is a reconfig that removes it, after which it is
//     admitted by itself and can be added back.
//
// Two kinds of voter cannot have acknowledged anything, and are admitted:
//
//   - a voter of the initial configuration that never took part: a member
//     that bootstrapped found it empty then and has not heard a raft
//     message from it since (answerProbe's "data-saw-you-fresh");
//   - a voter added while it was waiting here: each probe names the
//     member's incarnation (the stamp's epoch, new whenever the directory
//     starts empty), and a member that answered that incarnation "not a
//     voter" before says so when it answers "voter" later (NewSince). This
//     is the ZooKeeper way of adding a server (start it, then
//     `reconfig -add server.N=...:participant`) racing the first probes.
//
// The first round of probes is made before the server starts serving (so
// a member added right after it answers, as the operator does, has been
// seen as a non-voter first); later rounds run once a second until the
// member is admitted. Until then the member's identity stamp carries
// pending-admission=true, so a restart before then (which finds the log
// files the joiner's node created, but no data in them) checks again.

// Admission states (ensemble.admission).
const (
	admitted  int32 = iota // takes part in raft
	admitWait              // asking its peers
	admitDeny              // a member with data lists it as a voter
)

// statusAnswer is a member's answer to a status probe (JSON).
type statusAnswer struct {
	// Data: the answering member's data directory holds a log.
	Data bool `json:"data"`
	// SawFresh: it found the asker empty when it bootstrapped and has not
	// heard a raft message from it since.
	SawFresh bool `json:"sawFresh,omitempty"`
	// Leader is the leader it knows (0: none); IsLeader, that it is the
	// leader; Applied, that it has applied everything it knows committed.
	Leader   uint64 `json:"leader,omitempty"`
	IsLeader bool   `json:"isLeader,omitempty"`
	Applied  bool   `json:"applied,omitempty"`
	// Place is the asker's place in the answering member's applied
	// configuration: "voter", "observer" or "none" ("" with no data).
	Place string `json:"place,omitempty"`
	// NewSince: Place is "voter", and this member answered the asker's
	// incarnation (the question's epoch) with another place before.
	NewSince bool `json:"newSince,omitempty"`
	// Admitted: the answering member takes part in raft.
	Admitted bool `json:"admitted"`
}

// statusQuestion is what a member waiting for admission sends with its
// status probes (JSON).
type statusQuestion struct {
	// Epoch is the asker's incarnation (identity stamp epoch).
	Epoch string `json:"epoch"`
}

// Places in a configuration.
const (
	placeVoter    = "voter"
	placeObserver = "observer"
	placeNone     = "none"
)

// admission is the admission state of an ensemble member.
type admission struct {
	state  atomic.Int32
	epoch  string // this member's incarnation while it waits (set before the loop)
	mu     sync.Mutex
	reason string // why the member is not (yet) admitted
	// seenAsNonVoter maps a peer waiting for admission to the incarnation
	// this member last answered with a place other than voter.
	seenAsNonVoter map[uint64]string

	refusedVotes   atomic.Uint64 // MsgVote/MsgPreVote dropped
	refusedAppends atomic.Uint64 // MsgApp/MsgHeartbeat/MsgSnap dropped
}

func (a *admission) setReason(r string) {
	a.mu.Lock()
	a.reason = r
	a.mu.Unlock()
}

func (a *admission) why() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reason
}

// gated reports whether raft messages to this member are dropped.
func (e *ensemble) gated() bool { return e.adm.state.Load() != admitted }

// refusedAdmission reports whether a member with data lists this member as
// a voter while it has no data.
func (e *ensemble) refusedAdmission() bool { return e.adm.state.Load() == admitDeny }

// errNotAdmitted is what the transport hears for a message dropped before
// admission (a snapshot is then reported as not delivered).
var errNotAdmitted = errors.New("server: this member has not been admitted yet; raft messages are dropped")

// dropBeforeAdmission counts and drops a raft message sent to a member
// that has not been admitted. It reports whether the message was dropped.
func (e *ensemble) dropBeforeAdmission(m *raftpb.Message) bool {
	if !e.gated() {
		return false
	}
	switch m.GetType() {
	case raftpb.MsgVote, raftpb.MsgPreVote:
		e.adm.refusedVotes.Add(1)
	case raftpb.MsgApp, raftpb.MsgHeartbeat, raftpb.MsgSnap:
		e.adm.refusedAppends.Add(1)
	}
	return true
}

// answerStatusProbe is the transport's StatusProbe: this member's view of
// the asker (statusAnswer). It may be called before the node is open.
func (s *Server) answerStatusProbe(from uint64, question []byte) []byte {
	e := s.ens
	var q statusQuestion
	json.Unmarshal(question, &q) // a question it cannot read has no epoch
	node := e.node.Load()
	a := statusAnswer{Data: e.hasData.Load() && !e.gated() && node != nil, Admitted: !e.gated()}
	if a.Data {
		e.sawMu.Lock()
		a.SawFresh = e.sawFresh[from]
		e.sawMu.Unlock()
		a.Leader = node.Leader()
		a.IsLeader = node.IsLeader()
		a.Applied = node.AppliedIndex() >= node.CommittedIndex()
		a.Place = placeNone
		voters, learners := node.Membership()
		switch {
		case slices.Contains(voters, from):
			a.Place = placeVoter
		case slices.Contains(learners, from):
			a.Place = placeObserver
		}
		e.adm.mu.Lock()
		switch {
		case q.Epoch == "":
		case a.Place != placeVoter:
			if e.adm.seenAsNonVoter == nil {
				e.adm.seenAsNonVoter = map[uint64]string{}
			}
			e.adm.seenAsNonVoter[from] = q.Epoch
		case e.adm.seenAsNonVoter[from] == q.Epoch:
			a.NewSince = true
		}
		e.adm.mu.Unlock()
	}
	b, _ := json.Marshal(a)
	return b
}

// admissionVerdict decides from the peers' answers (by id; a legacy
// answer, from a member without status probes, has Place "" and Data set
// from its plain probe answer).
func admissionVerdict(self uint64, answers map[uint64]statusAnswer, join bool) (state int32, reason string) {
	var leader uint64
	var voterAt, legacy, data []uint64
	for _, id := range slices.Sorted(maps.Keys(answers)) {
		a := answers[id]
		if !a.Data {
			continue
		}
		data = append(data, id)
		switch {
		case a.Place == "":
			legacy = append(legacy, id)
		case a.Place == placeVoter && !a.SawFresh && !a.NewSince:
			voterAt = append(voterAt, id)
		}
		if a.IsLeader && a.Applied {
			leader = id
		}
	}
	if leader != 0 && answers[leader].Place == placeVoter && (answers[leader].NewSince || answers[leader].SawFresh) {
		// The leader itself saw this incarnation empty before it became
		// a voter: members that say plain "voter" did not see it then.
		return admitted, fmt.Sprintf("the leader, member %d, made server %d a voter after seeing it empty", leader, self)
	}
	if len(voterAt) > 0 {
		return admitDeny, fmt.Sprintf("refusing to vote: the data directory is empty but server %d is a voter in the configuration of member(s) %s, "+
			"so it may have acknowledged writes it no longer has; remove it from the ensemble with reconfig (it is then admitted as a new member "+
			"and can be added back, as an observer first), or restore its data directory", self, joinIDs(voterAt))
	}
	if leader != 0 {
		return admitted, fmt.Sprintf("the leader, member %d, has server %d as %s", leader, self, answers[leader].Place)
	}
	if len(data) > 0 && len(legacy) == len(data) {
		// Only members of an older version answered: they cannot say.
		if join {
			return admitted, fmt.Sprintf("members %s do not answer status probes (older version); joining without the check", joinIDs(legacy))
		}
		return admitDeny, fmt.Sprintf("refusing to bootstrap: the data directory is empty but member(s) %s already have data, "+
			"so this member's data was lost or it is new to the ensemble; start it with --join "+
			"(after removing and re-adding it with reconfig if it was a voter), or restore its data directory", joinIDs(legacy))
	}
	if len(data) == 0 {
		return admitWait, "waiting to be admitted: the data directory is empty and no member with data answers " +
			"(a new member waits for the ensemble; if every member lost its data, restore from a backup)"
	}
	return admitWait, fmt.Sprintf("waiting to be admitted: the data directory is empty; members %s have data but none of them is a leader with its log applied", joinIDs(data))
}

func joinIDs(ids []uint64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}

// askPeers probes every other static member once and collects the
// answers of those that reply.
func (s *Server) askPeers(t *replication.TCPTransport, ms members, legacy map[uint64]bool) map[uint64]statusAnswer {
	question, _ := json.Marshal(statusQuestion{Epoch: s.ens.adm.epoch})
	out := map[uint64]statusAnswer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id := range ms {
		if id == s.cfg.ServerID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
			defer cancel()
			var a statusAnswer
			mu.Lock()
			old := legacy[id]
			mu.Unlock()
			if !old {
				b, err := t.ProbeStatus(ctx, id, question)
				if errors.Is(err, replication.ErrStatusProbeUnsupported) {
					old = true
					mu.Lock()
					legacy[id] = true
					mu.Unlock()
				} else if err != nil || json.Unmarshal(b, &a) != nil {
					return
				}
			}
			if old {
				b, err := t.Probe(ctx, id)
				if err != nil {
					return
				}
				a = statusAnswer{Data: string(b) != probeFresh, SawFresh: string(b) == probeDataSawFresh, Admitted: true}
			}
			mu.Lock()
			out[id] = a
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// admissionRound asks the peers once and admits this member or records
// why not; it reports whether the member is admitted.
func (s *Server) admissionRound(r *admissionRounds) bool {
	e := s.ens
	answers := s.askPeers(e.transport, e.static, r.legacy)
	state, reason := admissionVerdict(s.cfg.ServerID, answers, s.cfg.Join)
	if state == admitted {
		if err := s.admit(reason); err != nil {
			s.log.Error("cannot record the admission in the identity stamp; asking again", "err", err)
			return false
		}
		return true
	}
	e.adm.setReason(reason)
	e.adm.state.Store(state)
	if state != r.lastState || reason != r.lastReason || time.Since(r.lastLog) > 30*time.Second {
		lvl := s.log.Info
		if state == admitDeny {
			lvl = s.log.Error
			s.writeTerminationMessage(reason)
		}
		lvl("not taking part in raft: "+reason, "server_id", s.cfg.ServerID,
			"votes_refused", e.adm.refusedVotes.Load(), "appends_refused", e.adm.refusedAppends.Load())
		r.lastState, r.lastReason, r.lastLog = state, reason, time.Now()
	}
	return false
}

// admissionRounds is what successive rounds share.
type admissionRounds struct {
	legacy     map[uint64]bool // peers without status probes
	lastState  int32
	lastReason string
	lastLog    time.Time
}

func newAdmissionRounds() *admissionRounds {
	return &admissionRounds{legacy: map[uint64]bool{}, lastState: -1}
}

// admissionLoop asks the peers once a second until this member is
// admitted.
func (s *Server) admissionLoop(r *admissionRounds) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if s.admissionRound(r) {
			return
		}
	}
}

// admit records the admission in the stamp, then lets raft messages in.
func (s *Server) admit(why string) error {
	id, ok, err := readIdentity(s.cfg.DataDir)
	if err != nil {
		return err
	}
	if ok && id.PendingAdmission {
		id.PendingAdmission = false
		if err := writeIdentity(s.cfg.DataDir, id); err != nil {
			return err
		}
	}
	e := s.ens
	e.adm.setReason("")
	e.hasData.Store(true) // part of a running ensemble from now on: not a founder of a new one
	e.adm.state.Store(admitted)
	s.clearTerminationMessage()
	s.log.Info("admitted: taking part in raft as a new member (waits to be added with reconfig unless it already is an observer)",
		"server_id", s.cfg.ServerID, "why", why,
		"votes_refused", e.adm.refusedVotes.Load(), "appends_refused", e.adm.refusedAppends.Load())
	return nil
}

func (s *Server) writeTerminationMessage(msg string) {
	WriteTerminationMessage(s.cfg.TerminationMessagePath, msg)
}

func (s *Server) clearTerminationMessage() { s.writeTerminationMessage("") }

// WriteTerminationMessage replaces the content of the termination message
// file path (Kubernetes' terminationMessagePath, /dev/termination-log by
// default) with msg, if that file exists; it never creates it. The kubelet
// copies the file into the container's terminated state when the
// container stops, which is where the operator reads why a member refused
// its data directory. An empty msg empties the file.
func WriteTerminationMessage(path, msg string) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return // not on Kubernetes, or not writable: nothing to do
	}
	if msg != "" {
		f.WriteString(msg + "\n")
	}
	f.Close()
}
