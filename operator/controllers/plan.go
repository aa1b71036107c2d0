package controllers

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/paddockhq/paddock/operator/api/v1alpha1"
)

// This file is the operator's brain: pure functions from what was observed
// to the ONE next step. Nothing here talks to Kubernetes or to a server, so
// every safety rule is tested by tables (plan_test.go). The reconciler
// observes, asks Next for a step, does it, records an event, and comes
// back; every step is idempotent and re-derived from fresh observations, so
// an operator that crashes or reads a stale cache in the middle of a scale
// or a roll picks up where the ensemble really is.

// Member is one member (pod, volume, server) as observed.
type Member struct {
	ID       uint64
	Observer bool // belongs to the observer StatefulSet

	PodExists      bool
	PodTerminating bool
	PodRunning     bool // container running
	PodReady       bool // readiness probe (/readyz: in quorum, state applied)
	UpToDate       bool // pod runs the StatefulSet's update revision
	// UnreadyFor is how long an up-to-date pod has been not ready since it
	// was created or last ready (0 when ready).
	UnreadyFor   time.Duration
	CrashLooping bool

	// Role from the member's admin endpoint (srvr server_state): leader,
	// follower, observer, joining, removed; "" when it did not answer.
	Role string
	Zxid int64

	// Refused is the server's own refusal: to start (identity stamp of
	// another cluster or member), read from the container's termination
	// message; or to take part (below).
	Refused string
	// EmptyRefused: the server runs but refuses to vote (srvr reports
	// "refused"): its volume is empty while it is still a voter of the
	// ensemble, so it may have acknowledged writes it no longer has
	// (server/admission.go). Its volume holds nothing, so rebuilding it is
	// always safe when the others keep a quorum.
	EmptyRefused bool

	PVCExists      bool // exists and is not being deleted
	PVCTerminating bool
	// PVCStale marks a volume left behind by a member that was removed
	// from the ensemble (scale-down with onScaleDown=Retain, or a rebuild):
	// it must never be reused by a new member.
	PVCStale bool
}

// Membership is the ensemble's configuration as /zookeeper/config says.
type Membership struct {
	Known     bool
	Voters    map[uint64]bool
	Observers map[uint64]bool
	Version   string
}

// Has reports whether id is a voter or observer.
func (m Membership) Has(id uint64) bool { return m.Voters[id] || m.Observers[id] }

// Observed is everything Next decides from.
type Observed struct {
	Members      map[uint64]*Member
	Config       Membership
	Leader       uint64 // 0 = none known
	VoterSts     int32  // replicas of the voter StatefulSet (its highest ordinal)
	ObserverSts  int32  // replicas of the observer StatefulSet
	ObserverBase uint64 // server id of the observer StatefulSet's first pod
	// Ephemeral: members have no claims (storage.ephemeral).
	Ephemeral    bool
	StsExists    bool
	Bootstrapped bool
	// Rebuild is the member id asked for by paddock.dev/rebuild-member
	// (0 = none).
	Rebuild uint64
	// LeaderTransferTried is how many times leadership was handed over
	// away from an outdated leader during this roll without effect.
	LeaderTransferTried int
}

// Desired is the spec, reduced to what the plan needs.
type Desired struct {
	Voters       int32
	Observers    int32
	ObserverBase uint64 // server id of the first observer
}

// Kind is the kind of a Step.
type Kind int

// Step kinds.
const (
	// Wait: nothing to do now (or nothing safe to do); Reason says why.
	Wait Kind = iota
	// Steady: converged.
	Steady
	// SetReplicas sets a StatefulSet's replicas (Observer says which).
	SetReplicas
	// AddMember adds a joined, waiting member with reconfig.
	AddMember
	// RemoveMember removes a member with reconfig.
	RemoveMember
	// DeletePod deletes a pod (roll, rebuild).
	DeletePod
	// DeletePVC deletes a member's volume (stale volume, rebuild).
	DeletePVC
	// TransferLeader asks the leader to hand leadership to Target.
	TransferLeader
	// Refuse: the change asked for is unsafe; reported as a condition.
	Refuse
	// FinishRebuild clears the rebuild annotation.
	FinishRebuild
	// StartRebuild sets the rebuild annotation for ID (a voter that came
	// back empty and refuses to vote).
	StartRebuild
)

func (k Kind) String() string {
	return [...]string{"Wait", "Steady", "SetReplicas", "AddMember", "RemoveMember", "DeletePod", "DeletePVC",
		"TransferLeader", "Refuse", "FinishRebuild", "StartRebuild"}[k]
}

// Step is the one thing to do next.
type Step struct {
	Kind     Kind
	ID       uint64 // member concerned
	Target   uint64 // TransferLeader: the new leader
	Observer bool   // SetReplicas/AddMember: the observer group
	// Learner (AddMember of a voter id): add it as an observer first; it
	// is promoted once it has caught up (a second AddMember without it).
	Learner  bool
	Replicas int32 // SetReplicas
	// Reason is a condition/event reason (v1alpha1.Reason*), Message a
	// sentence for people.
	Reason  string
	Message string
	// Degraded marks a Wait/Refuse that is a problem, not progress.
	Degraded bool
	// FinishRebuild: after this step, clear the rebuild annotation.
	FinishRebuild bool
}

func (s Step) String() string {
	return fmt.Sprintf("%s(id=%d target=%d obs=%v n=%d) %s: %s", s.Kind, s.ID, s.Target, s.Observer, s.Replicas, s.Reason, s.Message)
}

// UpgradeTimeout is how long a restarted member may stay unready before the
// roll is declared failed (it stops either way: nothing healthy is
// restarted while a member is unready).
const UpgradeTimeout = 10 * time.Minute

// Quorum is the majority of n voters.
func Quorum(n int) int { return n/2 + 1 }

// ids returns the sorted keys of a set.
func ids(m map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(m))
	for id, ok := range m {
		if ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (o *Observed) member(id uint64) *Member {
	if m := o.Members[id]; m != nil {
		return m
	}
	return &Member{ID: id}
}

// readyIn counts the members of set (minus except) whose pods are ready.
func (o *Observed) readyIn(set map[uint64]bool, except uint64) int {
	n := 0
	for id, ok := range set {
		if ok && id != except && o.member(id).PodReady {
			n++
		}
	}
	return n
}

// healthy reports whether the ensemble can take a membership change or a
// restart: configuration known, a leader, every configured member's pod
// ready, nothing terminating.
func (o *Observed) healthy() (bool, string) {
	if !o.Config.Known {
		return false, "the ensemble configuration (/zookeeper/config) cannot be read"
	}
	if o.Leader == 0 {
		return false, "the ensemble has no leader"
	}
	var unready []string
	for _, id := range append(ids(o.Config.Voters), ids(o.Config.Observers)...) {
		if !o.member(id).PodReady {
			unready = append(unready, fmt.Sprint(id))
		}
	}
	if len(unready) > 0 {
		return false, "members not ready: " + strings.Join(unready, ",")
	}
	for _, id := range o.sortedIDs() {
		if o.Members[id].PodTerminating {
			return false, fmt.Sprintf("member %d is terminating", id)
		}
	}
	return true, ""
}

func (o *Observed) sortedIDs() []uint64 {
	out := make([]uint64, 0, len(o.Members))
	for id := range o.Members {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// CanRemove checks that removing voter id keeps a quorum both through the
// change (the old configuration must commit it) and after it.
func (o *Observed) CanRemove(id uint64) (bool, string) {
	if !o.Config.Voters[id] {
		return true, "" // observers and non-members never count
	}
	n := len(ids(o.Config.Voters))
	if n <= 1 {
		return false, fmt.Sprintf("member %d is the only voter", id)
	}
	if r := o.readyIn(o.Config.Voters, 0); r < Quorum(n) {
		return false, fmt.Sprintf("only %d of %d voters are ready; the change cannot commit", r, n)
	}
	if r := o.readyIn(o.Config.Voters, id); r < Quorum(n-1) {
		return false, fmt.Sprintf("without member %d only %d of %d voters would be ready (quorum %d)", id, r, n-1, Quorum(n-1))
	}
	return true, ""
}

// Next returns the one next step.
func Next(d Desired, o *Observed) Step {
	// Before the first quorum: the StatefulSets were created at full size
	// (Parallel) and the members bootstrap together, or sit waiting for
	// each other. Only watch and report.
	if !o.Bootstrapped {
		if o.Leader != 0 {
			return Step{Kind: Wait, Reason: v1alpha1.ReasonBootstrapping, Message: "quorum formed; recording that the cluster holds data"}
		}
		if r := refused(o); r != nil {
			return *r
		}
		return Step{Kind: Wait, Reason: v1alpha1.ReasonBootstrapping, Message: "waiting for the initial members to form a quorum"}
	}
	if o.Leader == 0 && o.allVotersEmptyJoining() {
		return Step{Kind: Refuse, Reason: v1alpha1.ReasonDataLost, Degraded: true,
			Message: "every voter came up with an empty volume although the cluster holds data; not bootstrapping an empty quorum: restore from a PaddockBackup into a new cluster"}
	}

	// A member's own server refuses its volume: report. A volume of
	// another cluster or member is never wiped by the operator (the
	// annotation does that on request); an empty volume under a voter
	// that refuses to vote has nothing to lose, and is rebuilt.
	if r := refused(o); r != nil && o.Rebuild == 0 {
		return *r
	}

	if o.Rebuild != 0 {
		return rebuild(d, o)
	}

	// 1. Missing pods: the StatefulSet controller recreates them; never
	// touch anything else meanwhile.
	for _, id := range o.expectedPods() {
		if m := o.member(id); !m.PodExists {
			return Step{Kind: Wait, ID: id, Reason: v1alpha1.ReasonMembersUnready,
				Message: fmt.Sprintf("waiting for the pod of member %d to be created", id)}
		}
	}

	// A pod created while its volume was still being deleted (rebuild)
	// waits forever for it: delete it so the StatefulSet makes both anew.
	for _, id := range o.sortedIDs() {
		m := o.Members[id]
		if !o.Ephemeral && m.PodExists && !m.PodTerminating && !m.PodRunning && !m.PVCExists {
			return Step{Kind: DeletePod, ID: id, Reason: v1alpha1.ReasonRebuilding,
				Message: fmt.Sprintf("the pod of member %d has no volume; recreating it", id)}
		}
	}

	// 2. Outdated pods that are not ready anyway go first (they serve no
	// one; restarting them may be exactly what fixes them).
	for _, id := range o.sortedIDs() {
		m := o.Members[id]
		if m.PodExists && !m.PodTerminating && !m.UpToDate && !m.PodReady {
			return Step{Kind: DeletePod, ID: id, Reason: v1alpha1.ReasonUpgrading,
				Message: fmt.Sprintf("restarting unready member %d with the new template first", id)}
		}
	}

	// 3. Membership: scale down (highest id first), then up (lowest
	// missing id first), one member at a time.
	if s, ok := scale(d, o); ok {
		return s
	}

	// 4. Roll the healthy members: observers, followers, the leader last.
	if s, ok := roll(o); ok {
		return s
	}
	if ok, why := o.healthy(); !ok {
		return Step{Kind: Wait, Reason: noQuorumReason(o), Message: why, Degraded: true}
	}
	return Step{Kind: Steady, Reason: v1alpha1.ReasonAllHealthy, Message: "all members ready and up to date"}
}

func noQuorumReason(o *Observed) string {
	switch {
	case !o.Config.Known:
		return v1alpha1.ReasonNoQuorum
	case o.Leader == 0:
		return v1alpha1.ReasonNoLeader
	}
	return v1alpha1.ReasonMembersUnready
}

// refused reports the first member whose server refuses its volume.
func refused(o *Observed) *Step {
	for _, id := range o.sortedIDs() {
		m := o.Members[id]
		switch {
		case m.EmptyRefused && o.Bootstrapped:
			return &Step{Kind: StartRebuild, ID: id, Reason: v1alpha1.ReasonMemberRefused, Degraded: true,
				Message: fmt.Sprintf("member %d came back with an empty volume while it is still a voter and refuses to vote (%s); "+
					"rebuilding it (paddock.dev/rebuild-member=%d): removed from the ensemble by reconfig, volume and pod deleted, "+
					"added back as an observer and promoted once caught up", id, m.Refused, id)}
		case m.Refused != "":
			return &Step{Kind: Refuse, ID: id, Reason: v1alpha1.ReasonMemberRefused, Degraded: true,
				Message: fmt.Sprintf("member %d refuses to start: %s (to wipe and resync it, annotate the PaddockCluster paddock.dev/rebuild-member=%d)", id, m.Refused, id)}
		}
	}
	return nil
}

// allVotersEmptyJoining: every voter pod's server reports "joining"
// (started with --join on an empty volume, waiting to be added).
func (o *Observed) allVotersEmptyJoining() bool {
	n := 0
	for _, id := range o.sortedIDs() {
		m := o.Members[id]
		if m.Observer || !m.PodExists {
			continue
		}
		if m.Role != "joining" {
			return false
		}
		n++
	}
	return n > 0
}

// expectedPods are the ordinals the StatefulSets should have pods for.
func (o *Observed) expectedPods() []uint64 {
	var out []uint64
	for i := int32(1); i <= o.VoterSts; i++ {
		out = append(out, uint64(i))
	}
	for i := int32(0); i < o.ObserverSts; i++ {
		out = append(out, o.ObserverBase+uint64(i))
	}
	return out
}

// scale plans one membership step toward d.
func scale(d Desired, o *Observed) (Step, bool) {
	// Voter ids are 1..Voters; observer ids ObserverBase..ObserverBase+Observers-1.
	wantVoter := func(id uint64) bool { return id >= 1 && id <= uint64(d.Voters) }
	wantObserver := func(id uint64) bool {
		return d.Observers > 0 && id >= d.ObserverBase && id < d.ObserverBase+uint64(d.Observers)
	}
	if !o.Config.Known {
		return Step{}, false
	}

	// Shrink the StatefulSets down to the highest configured/wanted id.
	if n := highestKeep(o.Config.Voters, d.Voters, 1, 0); o.VoterSts > n {
		return Step{Kind: SetReplicas, Replicas: n, Reason: v1alpha1.ReasonScalingDown,
			Message: fmt.Sprintf("member %d left the ensemble; removing its pod", o.VoterSts)}, true
	}
	if n := highestKeep(o.Config.Observers, d.Observers, d.ObserverBase, 1); o.ObserverSts > n {
		return Step{Kind: SetReplicas, Observer: true, Replicas: n, Reason: v1alpha1.ReasonScalingDown,
			Message: fmt.Sprintf("observer %d left the ensemble; removing its pod", d.ObserverBase+uint64(o.ObserverSts)-1)}, true
	}

	// Scale down: remove the highest unwanted member from the
	// configuration first; only then shrink the StatefulSet.
	var extra []uint64
	for _, id := range append(ids(o.Config.Voters), ids(o.Config.Observers)...) {
		if (o.Config.Voters[id] && !wantVoter(id)) || (o.Config.Observers[id] && !wantObserver(id) && !wantVoter(id)) {
			extra = append(extra, id)
		}
	}
	sort.Slice(extra, func(i, j int) bool {
		// observers before voters, then highest first
		oi, oj := o.Config.Observers[extra[i]], o.Config.Observers[extra[j]]
		if oi != oj {
			return oi
		}
		return extra[i] > extra[j]
	})
	if len(extra) > 0 {
		id := extra[0]
		reason := v1alpha1.ReasonScalingDown
		if ok, why := o.CanRemove(id); !ok {
			return Step{Kind: Refuse, ID: id, Reason: v1alpha1.ReasonScaleRefused, Degraded: true,
				Message: fmt.Sprintf("scale-down refused: removing member %d would lose quorum: %s", id, why)}, true
		}
		if id == o.Leader {
			if t := o.transferTarget(id); t != 0 {
				return Step{Kind: TransferLeader, ID: id, Target: t, Reason: reason,
					Message: fmt.Sprintf("member %d leads and is being removed; handing leadership to member %d first", id, t)}, true
			}
		}
		return Step{Kind: RemoveMember, ID: id, Reason: reason,
			Message: fmt.Sprintf("removing member %d from the ensemble (reconfig) before its pod goes", id)}, true
	}
	// A voter added as an observer is promoted once it has caught up
	// (its pod is ready: in quorum, its log applied), before anything
	// else is added.
	for _, id := range ids(o.Config.Observers) {
		if !wantVoter(id) {
			continue
		}
		if ok, why := o.healthy(); !ok || o.member(id).Role != "observer" {
			if why == "" {
				why = fmt.Sprintf("it reports %q", o.member(id).Role)
			}
			return Step{Kind: Wait, ID: id, Reason: v1alpha1.ReasonScalingUp,
				Message: fmt.Sprintf("member %d was added as an observer; promoting it once it has caught up: %s", id, why)}, true
		}
		return Step{Kind: AddMember, ID: id, Reason: v1alpha1.ReasonScalingUp,
			Message: fmt.Sprintf("member %d has caught up as an observer; promoting it to voter (reconfig)", id)}, true
	}
	// Scale up: the lowest wanted id not in the configuration.
	var missing []uint64
	for id := uint64(1); id <= uint64(d.Voters); id++ {
		if !o.Config.Has(id) {
			missing = append(missing, id)
		}
	}
	for i := int32(0); i < d.Observers; i++ {
		if id := d.ObserverBase + uint64(i); !o.Config.Has(id) {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return Step{}, false
	}
	id := missing[0]
	observer := id >= d.ObserverBase && d.Observers > 0 && !wantVoter(id)
	if ok, why := o.healthy(); !ok {
		return Step{Kind: Wait, ID: id, Reason: v1alpha1.ReasonScalingUp, Degraded: true,
			Message: fmt.Sprintf("scale-up waits until the ensemble is healthy: %s", why)}, true
	}
	m := o.member(id)
	// The StatefulSet must have a pod for id.
	stsN, ordinal := o.VoterSts, int32(id)
	if observer {
		stsN, ordinal = o.ObserverSts, int32(id-d.ObserverBase)+1
	}
	if !m.PodExists && stsN < ordinal {
		if m.PVCExists {
			if m.PVCStale {
				return Step{Kind: DeletePVC, ID: id, Reason: v1alpha1.ReasonScalingUp,
					Message: fmt.Sprintf("deleting the volume member %d left when it was removed; a new member starts empty", id)}, true
			}
			return Step{Kind: Refuse, ID: id, Reason: v1alpha1.ReasonMemberRefused, Degraded: true,
				Message: fmt.Sprintf("scale-up refused: a volume for member %d exists but it is not in the ensemble and not known to be stale; delete it or annotate it paddock.dev/stale=true", id)}, true
		}
		return Step{Kind: SetReplicas, Observer: observer, Replicas: ordinal, Reason: v1alpha1.ReasonScalingUp,
			Message: fmt.Sprintf("starting member %d (it joins empty and waits to be added)", id)}, true
	}
	switch {
	case m.Role == "joining" && m.PodRunning && observer:
		return Step{Kind: AddMember, ID: id, Observer: true, Reason: v1alpha1.ReasonScalingUp,
			Message: fmt.Sprintf("observer %d is up and waiting; adding it to the ensemble (reconfig)", id)}, true
	case m.Role == "joining" && m.PodRunning:
		// A voter joins as an observer first: an empty voter would count
		// in quorums before it holds anything.
		return Step{Kind: AddMember, ID: id, Learner: true, Reason: v1alpha1.ReasonScalingUp,
			Message: fmt.Sprintf("member %d is up and waiting; adding it to the ensemble as an observer first (reconfig)", id)}, true
	case m.Role == "removed" || (m.Role != "" && m.Role != "joining"):
		// It holds data of an earlier membership: wipe it.
		return Step{Kind: Refuse, ID: id, Reason: v1alpha1.ReasonMemberRefused, Degraded: true,
			Message: fmt.Sprintf("member %d runs as %q but is not in the ensemble; annotate paddock.dev/rebuild-member=%d to wipe it", id, m.Role, id)}, true
	}
	return Step{Kind: Wait, ID: id, Reason: v1alpha1.ReasonScalingUp,
		Message: fmt.Sprintf("waiting for member %d to start and wait to be added", id)}, true
}

// highestKeep is the StatefulSet size that keeps every configured member
// of the group and every wanted one: the highest such ordinal.
func highestKeep(conf map[uint64]bool, want int32, base uint64, _ int) int32 {
	n := want
	for id, ok := range conf {
		if ok && id >= base {
			if ord := int32(id-base) + 1; ord > n {
				n = ord
			}
		}
	}
	return n
}

// transferTarget picks the ready, up-to-date voter with the highest zxid
// (other than from) to take leadership.
func (o *Observed) transferTarget(from uint64) uint64 {
	var best uint64
	var bestZxid int64 = -1
	for _, id := range ids(o.Config.Voters) {
		m := o.member(id)
		if id == from || !m.PodReady || !m.UpToDate || m.Role != "follower" {
			continue
		}
		if m.Zxid > bestZxid {
			best, bestZxid = id, m.Zxid
		}
	}
	return best
}

// roll plans one restart of an outdated, healthy member.
func roll(o *Observed) (Step, bool) {
	var outdated []uint64
	for _, id := range o.sortedIDs() {
		if m := o.Members[id]; m.PodExists && !m.UpToDate {
			outdated = append(outdated, id)
		}
	}
	if len(outdated) == 0 {
		return Step{}, false
	}
	// A restarted member that does not come back stops the roll.
	for _, id := range o.sortedIDs() {
		m := o.Members[id]
		if m.PodExists && m.UpToDate && !m.PodReady && (m.CrashLooping || m.UnreadyFor > UpgradeTimeout) {
			return Step{Kind: Refuse, ID: id, Reason: v1alpha1.ReasonUpgradeFailed, Degraded: true,
				Message: fmt.Sprintf("roll stopped: member %d did not become ready with the new template (%s); %d member(s) still outdated", id, describeUnready(m), len(outdated))}, true
		}
	}
	if ok, why := o.healthy(); !ok {
		return Step{Kind: Wait, Reason: v1alpha1.ReasonUpgrading, Message: "roll waits until the ensemble is healthy: " + why}, true
	}
	// Observers, then followers, the leader last.
	sort.SliceStable(outdated, func(i, j int) bool {
		rank := func(id uint64) int {
			switch {
			case id == o.Leader:
				return 2
			case o.Config.Observers[id] || o.Members[id].Observer:
				return 0
			}
			return 1
		}
		return rank(outdated[i]) < rank(outdated[j])
	})
	id := outdated[0]
	if id == o.Leader && len(o.Config.Voters) > 1 {
		if t := o.transferTarget(id); t != 0 && o.LeaderTransferTried < 3 {
			return Step{Kind: TransferLeader, ID: id, Target: t, Reason: v1alpha1.ReasonUpgrading,
				Message: fmt.Sprintf("handing leadership from member %d to member %d before restarting it", id, t)}, true
		}
		return Step{Kind: DeletePod, ID: id, Reason: v1alpha1.ReasonUpgrading,
			Message: fmt.Sprintf("restarting the leader, member %d, last (leadership transfer unavailable or without effect)", id)}, true
	}
	what := "follower"
	if o.Config.Observers[id] {
		what = "observer"
	} else if id == o.Leader {
		what = "leader (the only voter)"
	}
	return Step{Kind: DeletePod, ID: id, Reason: v1alpha1.ReasonUpgrading,
		Message: fmt.Sprintf("restarting %s member %d with the new template", what, id)}, true
}

func describeUnready(m *Member) string {
	if m.CrashLooping {
		return "crash-looping"
	}
	return fmt.Sprintf("unready for %v", m.UnreadyFor.Round(time.Second))
}

// rebuild wipes one member and lets it rejoin: out of the configuration,
// volume and pod deleted, then the normal scale-up adds it back.
func rebuild(d Desired, o *Observed) Step {
	id := o.Rebuild
	if o.Config.Known && o.Config.Has(id) {
		if ok, why := o.CanRemove(id); !ok {
			return Step{Kind: Refuse, ID: id, Reason: v1alpha1.ReasonNoQuorum, Degraded: true,
				Message: fmt.Sprintf("rebuild of member %d refused: %s", id, why)}
		}
		if id == o.Leader {
			if t := o.transferTarget(id); t != 0 {
				return Step{Kind: TransferLeader, ID: id, Target: t, Reason: v1alpha1.ReasonRebuilding,
					Message: fmt.Sprintf("member %d leads; handing leadership to member %d before rebuilding it", id, t)}
			}
		}
		return Step{Kind: RemoveMember, ID: id, Reason: v1alpha1.ReasonRebuilding,
			Message: fmt.Sprintf("rebuild: removing member %d from the ensemble before wiping it", id)}
	}
	if !o.Config.Known {
		return Step{Kind: Wait, ID: id, Reason: v1alpha1.ReasonRebuilding, Degraded: true,
			Message: fmt.Sprintf("rebuild of member %d waits for a readable ensemble configuration", id)}
	}
	m := o.member(id)
	if m.PVCExists {
		return Step{Kind: DeletePVC, ID: id, Reason: v1alpha1.ReasonRebuilding,
			Message: fmt.Sprintf("rebuild: deleting the volume of member %d", id)}
	}
	if m.PodExists && !m.PodTerminating {
		return Step{Kind: DeletePod, ID: id, Reason: v1alpha1.ReasonRebuilding, FinishRebuild: true,
			Message: fmt.Sprintf("rebuild: deleting the pod of member %d; it comes back empty, joins, is added back as an observer and promoted once caught up", id)}
	}
	return Step{Kind: FinishRebuild, ID: id, Reason: v1alpha1.ReasonRebuilding,
		Message: fmt.Sprintf("rebuild: member %d wiped; it is added back once it is up", id)}
}
