package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/operator/api/v1alpha1"
)

// cluster builds an Observed: a bootstrapped ensemble whose voters are
// voters (all healthy, up to date, pods and volumes present), led by
// leader.
func cluster(voters []uint64, leader uint64) *Observed {
	o := &Observed{
		Members:      map[uint64]*Member{},
		Config:       Membership{Known: true, Voters: map[uint64]bool{}, Observers: map[uint64]bool{}},
		Leader:       leader,
		StsExists:    true,
		Bootstrapped: true,
		ObserverBase: 128,
	}
	for _, id := range voters {
		o.Config.Voters[id] = true
		role := "follower"
		if id == leader {
			role = "leader"
		}
		o.Members[id] = &Member{ID: id, PodExists: true, PodRunning: true, PodReady: true, UpToDate: true,
			Role: role, Zxid: 100 + int64(id), PVCExists: true}
		if int32(id) > o.VoterSts {
			o.VoterSts = int32(id)
		}
	}
	return o
}

func with(o *Observed, f func(o *Observed)) *Observed { f(o); return o }

func TestNext(t *testing.T) {
	d3 := Desired{Voters: 3, ObserverBase: 128}
	d5 := Desired{Voters: 5, ObserverBase: 128}
	d1 := Desired{Voters: 1, ObserverBase: 128}
	tests := []struct {
		name string
		d    Desired
		o    *Observed
		want Kind
		id   uint64
		// also checked when set
		reason string
		target uint64
		n      int32
		// learner is checked for AddMember steps
		learner bool
	}{
		{name: "steady", d: d3, o: cluster([]uint64{1, 2, 3}, 1), want: Steady},
		{name: "not bootstrapped waits", d: d3, o: with(cluster([]uint64{1, 2, 3}, 0), func(o *Observed) {
			o.Bootstrapped = false
			o.Config.Known = false
		}), want: Wait, reason: v1alpha1.ReasonBootstrapping},
		{name: "bootstrap refused volume reported", d: d3, o: with(cluster([]uint64{1, 2, 3}, 0), func(o *Observed) {
			o.Bootstrapped = false
			o.Members[2].Refused = "data directory belongs to cluster other"
		}), want: Refuse, id: 2, reason: v1alpha1.ReasonMemberRefused},

		// Scale up: one at a time, after the pod waits as joining.
		{name: "scale up starts pod 4", d: d5, o: cluster([]uint64{1, 2, 3}, 1), want: SetReplicas, n: 4, reason: v1alpha1.ReasonScalingUp},
		{name: "scale up waits for pod 4", d: d5, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.VoterSts = 4
			o.Members[4] = &Member{ID: 4, PodExists: true, PVCExists: true, UpToDate: true}
		}), want: Wait, id: 4},
		{name: "scale up adds joining pod 4", d: d5, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.VoterSts = 4
			o.Members[4] = &Member{ID: 4, PodExists: true, PodRunning: true, UpToDate: true, Role: "joining", PVCExists: true}
		}), want: AddMember, id: 4, learner: true},
		{name: "scale up waits for added member 4 to be ready before 5", d: d5, o: with(cluster([]uint64{1, 2, 3, 4}, 1), func(o *Observed) {
			o.Members[4].PodReady = false
		}), want: Wait, id: 5, reason: v1alpha1.ReasonScalingUp},
		{name: "scale up refused while unhealthy", d: d5, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Members[2].PodReady = false
		}), want: Wait, id: 4},
		{name: "scale up deletes stale volume first", d: d5, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Members[4] = &Member{ID: 4, PVCExists: true, PVCStale: true}
		}), want: DeletePVC, id: 4},
		{name: "scale up refuses unknown volume", d: d5, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Members[4] = &Member{ID: 4, PVCExists: true}
		}), want: Refuse, id: 4, reason: v1alpha1.ReasonMemberRefused},
		{name: "member with old data not in config is refused", d: d5, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.VoterSts = 4
			o.Members[4] = &Member{ID: 4, PodExists: true, PodRunning: true, UpToDate: true, Role: "removed", PVCExists: true}
		}), want: Refuse, id: 4, reason: v1alpha1.ReasonMemberRefused},
		{name: "1 to 3 goes through 2", d: d3, o: cluster([]uint64{1}, 1), want: SetReplicas, n: 2},

		// Scale down: reconfig first, then the pod.
		{name: "scale down removes 5 first", d: d3, o: cluster([]uint64{1, 2, 3, 4, 5}, 1), want: RemoveMember, id: 5, reason: v1alpha1.ReasonScalingDown},
		{name: "scale down shrinks sts after removal", d: d3, o: with(cluster([]uint64{1, 2, 3, 4}, 1), func(o *Observed) {
			o.VoterSts = 5
			o.Members[5] = &Member{ID: 5, PodExists: true, PodRunning: true, PodReady: false, UpToDate: true, Role: "removed", PVCExists: true}
		}), want: SetReplicas, n: 4},
		{name: "scale down hands leadership away first", d: d3, o: cluster([]uint64{1, 2, 3, 4}, 4), want: TransferLeader, id: 4},
		{name: "scale down that loses quorum is refused", d: d3, o: with(cluster([]uint64{1, 2, 3, 4, 5}, 3), func(o *Observed) {
			o.Members[1].PodReady = false
			o.Members[2].PodReady = false
		}), want: Refuse, id: 5, reason: v1alpha1.ReasonScaleRefused},
		{name: "scale down removes a dead member when quorum holds", d: d3, o: with(cluster([]uint64{1, 2, 3, 4, 5}, 1), func(o *Observed) {
			o.Members[5].PodReady = false
		}), want: RemoveMember, id: 5},
		{name: "scale to 1 refuses removing last voter? no: 2 to 1 ok", d: d1, o: cluster([]uint64{1, 2}, 1), want: RemoveMember, id: 2},
		{name: "2 to 1 refused when the survivor is down", d: d1, o: with(cluster([]uint64{1, 2}, 2), func(o *Observed) {
			o.Members[1].PodReady = false
		}), want: Refuse, id: 2, reason: v1alpha1.ReasonScaleRefused},

		// Rolling: missing, unready, followers, leader last.
		{name: "missing pod first", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Members[2].PodExists = false
			o.Members[3].UpToDate = false
		}), want: Wait, id: 2},
		{name: "unready outdated first", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			for _, m := range o.Members {
				m.UpToDate = false
			}
			o.Members[3].PodReady = false
		}), want: DeletePod, id: 3},
		{name: "followers before leader", d: d3, o: with(cluster([]uint64{1, 2, 3}, 2), func(o *Observed) {
			for _, m := range o.Members {
				m.UpToDate = false
			}
		}), want: DeletePod, id: 1},
		{name: "leader last: transfer first", d: d3, o: with(cluster([]uint64{1, 2, 3}, 2), func(o *Observed) {
			o.Members[2].UpToDate = false
		}), want: TransferLeader, id: 2, target: 3},
		{name: "leader restarted after failed transfers", d: d3, o: with(cluster([]uint64{1, 2, 3}, 2), func(o *Observed) {
			o.Members[2].UpToDate = false
			o.LeaderTransferTried = 3
		}), want: DeletePod, id: 2},
		{name: "roll waits while a restarted member is unready", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Members[1].UpToDate = false
			o.Members[2].UpToDate = false
			o.Members[3].PodReady = false
			o.Members[3].UnreadyFor = time.Minute
		}), want: Wait, reason: v1alpha1.ReasonUpgrading},
		{name: "roll stops on failure", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Members[1].UpToDate = false
			o.Members[2].UpToDate = false
			o.Members[3].PodReady = false
			o.Members[3].CrashLooping = true
		}), want: Refuse, id: 3, reason: v1alpha1.ReasonUpgradeFailed},
		{name: "leaderless ensemble: unready outdated pods still roll", d: d3, o: with(cluster([]uint64{1, 2, 3}, 0), func(o *Observed) {
			o.Config.Known = false
			for _, m := range o.Members {
				m.UpToDate, m.PodReady, m.Role = false, false, ""
			}
		}), want: DeletePod, id: 1},

		// Volumes and data.
		{name: "refused member reported", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Members[3].Refused = "refusing to start: data directory belongs to server 3 of cluster \"x\""
			o.Members[3].PodReady = false
		}), want: Refuse, id: 3, reason: v1alpha1.ReasonMemberRefused},
		{name: "all volumes empty: data lost, never bootstrap", d: d3, o: with(cluster([]uint64{1, 2, 3}, 0), func(o *Observed) {
			o.Config.Known = false
			for _, m := range o.Members {
				m.Role, m.PodReady = "joining", false
			}
		}), want: Refuse, reason: v1alpha1.ReasonDataLost},

		// Rebuild.
		{name: "rebuild removes from config", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) { o.Rebuild = 3 }), want: RemoveMember, id: 3},
		{name: "rebuild refused without quorum", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Rebuild = 3
			o.Members[2].PodReady = false
		}), want: Refuse, id: 3, reason: v1alpha1.ReasonNoQuorum},
		{name: "rebuild deletes volume", d: d3, o: with(cluster([]uint64{1, 2}, 1), func(o *Observed) {
			o.Rebuild = 3
			o.VoterSts = 3
			o.Members[3] = &Member{ID: 3, PodExists: true, PodRunning: true, UpToDate: true, Role: "removed", PVCExists: true}
		}), want: DeletePVC, id: 3},
		{name: "rebuild deletes pod", d: d3, o: with(cluster([]uint64{1, 2}, 1), func(o *Observed) {
			o.Rebuild = 3
			o.VoterSts = 3
			o.Members[3] = &Member{ID: 3, PodExists: true, PodRunning: true, UpToDate: true, Role: "removed", PVCTerminating: true}
		}), want: DeletePod, id: 3},
		{name: "pod without volume recreated", d: d3, o: with(cluster([]uint64{1, 2}, 1), func(o *Observed) {
			o.VoterSts = 3
			o.Members[3] = &Member{ID: 3, PodExists: true, UpToDate: true}
		}), want: DeletePod, id: 3},
		{name: "rebuilt member is added back", d: d3, o: with(cluster([]uint64{1, 2}, 1), func(o *Observed) {
			o.VoterSts = 3
			o.Members[3] = &Member{ID: 3, PodExists: true, PodRunning: true, UpToDate: true, Role: "joining", PVCExists: true}
		}), want: AddMember, id: 3, learner: true},
		{name: "voter added as an observer is promoted once caught up", d: d3, o: with(cluster([]uint64{1, 2}, 1), func(o *Observed) {
			o.VoterSts = 3
			o.Config.Observers[3] = true
			o.Members[3] = &Member{ID: 3, PodExists: true, PodRunning: true, PodReady: true, UpToDate: true, Role: "observer", PVCExists: true}
		}), want: AddMember, id: 3, learner: false},
		{name: "promotion waits for the observer to catch up", d: d3, o: with(cluster([]uint64{1, 2}, 1), func(o *Observed) {
			o.VoterSts = 3
			o.Config.Observers[3] = true
			o.Members[3] = &Member{ID: 3, PodExists: true, PodRunning: true, UpToDate: true, Role: "observer", PVCExists: true}
		}), want: Wait, id: 3, reason: v1alpha1.ReasonScalingUp},
		{name: "a voter being promoted is not scaled away", d: d5, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.VoterSts = 4
			o.Config.Observers[4] = true
			o.Members[4] = &Member{ID: 4, PodExists: true, PodRunning: true, PodReady: true, UpToDate: true, Role: "observer", PVCExists: true}
		}), want: AddMember, id: 4, learner: false},

		// A voter that came back empty refuses to vote: rebuilt.
		{name: "empty refused voter: rebuild started", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Members[2].Role, o.Members[2].PodReady = "refused", false
			o.Members[2].EmptyRefused, o.Members[2].Refused = true, "refusing to vote: the data directory is empty"
		}), want: StartRebuild, id: 2, reason: v1alpha1.ReasonMemberRefused},
		{name: "empty refused voter: removed by the rebuild", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Rebuild = 2
			o.Members[2].Role, o.Members[2].PodReady = "refused", false
			o.Members[2].EmptyRefused, o.Members[2].Refused = true, "refusing to vote: the data directory is empty"
		}), want: RemoveMember, id: 2},
		{name: "empty refused voter without quorum: rebuild refused", d: d3, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Rebuild = 2
			o.Members[3].PodReady = false
			o.Members[2].Role, o.Members[2].PodReady = "refused", false
			o.Members[2].EmptyRefused, o.Members[2].Refused = true, "refusing to vote"
		}), want: Refuse, id: 2, reason: v1alpha1.ReasonNoQuorum},

		// Observers.
		{name: "observer added after voters", d: Desired{Voters: 3, Observers: 1, ObserverBase: 128}, o: cluster([]uint64{1, 2, 3}, 1),
			want: SetReplicas, n: 1},
		{name: "observer removed before voters", d: Desired{Voters: 2, ObserverBase: 128}, o: with(cluster([]uint64{1, 2, 3}, 1), func(o *Observed) {
			o.Config.Observers[128] = true
			o.ObserverSts = 1
			o.Members[128] = &Member{ID: 128, Observer: true, PodExists: true, PodRunning: true, PodReady: true, UpToDate: true, Role: "observer", PVCExists: true}
		}), want: RemoveMember, id: 128},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Next(tc.d, tc.o)
			if s.Kind != tc.want || (tc.id != 0 && s.ID != tc.id) || (tc.reason != "" && s.Reason != tc.reason) ||
				(tc.target != 0 && s.Target != tc.target) || (tc.n != 0 && s.Replicas != tc.n) {
				t.Fatalf("got %v; want %v id=%d reason=%q target=%d n=%d", s, tc.want, tc.id, tc.reason, tc.target, tc.n)
			}
			if s.Kind == AddMember && s.Learner != tc.learner {
				t.Fatalf("AddMember learner=%v, want %v: %v", s.Learner, tc.learner, s)
			}
			if s.Message == "" || strings.TrimSpace(s.Reason) == "" {
				t.Fatalf("step without reason or message: %v", s)
			}
		})
	}
}

func TestCanRemove(t *testing.T) {
	for _, tc := range []struct {
		voters, unready []uint64
		remove          uint64
		ok              bool
	}{
		{[]uint64{1, 2, 3}, nil, 3, true},
		{[]uint64{1, 2, 3}, []uint64{1}, 3, false}, // {1,2} with 1 down: 1 of 2
		{[]uint64{1, 2, 3}, []uint64{3}, 3, true},  // removing the dead one
		{[]uint64{1, 2, 3, 4}, []uint64{4}, 4, true},
		{[]uint64{1, 2, 3, 4}, []uint64{1, 4}, 3, false}, // 2 of 4 cannot commit
		{[]uint64{1}, nil, 1, false},
	} {
		o := cluster(tc.voters, tc.voters[0])
		for _, id := range tc.unready {
			o.Members[id].PodReady = false
		}
		if ok, why := o.CanRemove(tc.remove); ok != tc.ok {
			t.Errorf("voters %v unready %v remove %d: ok=%v (%s), want %v", tc.voters, tc.unready, tc.remove, ok, why, tc.ok)
		}
	}
}

// TestInterruptedScaleHeals replays a scale from 3 to 5 in which every
// step is followed by a "crash" (fresh observations): the plan always
// continues from the ensemble's real state, one member at a time.
func TestInterruptedScaleHeals(t *testing.T) {
	o := cluster([]uint64{1, 2, 3}, 1)
	d := Desired{Voters: 5, ObserverBase: 128}
	var trace []string
	for i := 0; i < 30; i++ {
		s := Next(d, o)
		trace = append(trace, s.Kind.String())
		switch s.Kind {
		case Steady:
			if len(o.Config.Voters) != 5 {
				t.Fatalf("steady with %d voters", len(o.Config.Voters))
			}
			// Each new voter: pod, wait, added as an observer, wait for it
			// to catch up, promoted.
			want := "SetReplicas Wait AddMember Wait AddMember SetReplicas Wait AddMember Wait AddMember Steady"
			if got := strings.Join(trace, " "); got != want {
				t.Fatalf("trace %q, want %q", got, want)
			}
			return
		case SetReplicas:
			o.VoterSts = s.Replicas
			o.Members[uint64(s.Replicas)] = &Member{ID: uint64(s.Replicas), PodExists: true, PVCExists: true, UpToDate: true}
		case Wait:
			// the pod comes up (joining), or the added member catches up
			for _, m := range o.Members {
				if !m.PodRunning {
					m.PodRunning, m.Role = true, "joining"
				} else if o.Config.Observers[m.ID] && !m.PodReady {
					m.PodReady, m.Role = true, "observer"
				}
			}
		case AddMember:
			if s.Learner {
				o.Config.Observers[s.ID] = true
				break
			}
			if !o.Config.Observers[s.ID] || o.Members[s.ID].Role != "observer" || !o.Members[s.ID].PodReady {
				t.Fatalf("member %d promoted before it caught up as an observer: %+v", s.ID, o.Members[s.ID])
			}
			delete(o.Config.Observers, s.ID)
			o.Config.Voters[s.ID] = true
			o.Members[s.ID].Role = "follower"
		default:
			t.Fatalf("unexpected step %v", s)
		}
	}
	t.Fatalf("did not converge: %v", trace)
}
