package faults

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// FaultKind names one kind of step in a fault schedule.
type FaultKind string

// The fault kinds. Targets named "the leader" are resolved when the step
// runs (the member that reports Mode: leader then, or a random member if
// none does).
const (
	KillLeader        FaultKind = "kill-leader"        // kill -9 the leader
	KillMinority      FaultKind = "kill-minority"      // kill -9 a random minority (may include the leader)
	PauseLeader       FaultKind = "pause-leader"       // SIGSTOP the leader
	PauseMinority     FaultKind = "pause-minority"     // SIGSTOP a random minority
	PartitionMinority FaultKind = "partition-minority" // cut a random minority from the rest
	IsolateLeader     FaultKind = "isolate-leader"     // cut the leader from everyone
	SplitNoMajority   FaultKind = "split-no-majority"  // cut into groups none of which is a majority
	KillMajority      FaultKind = "kill-majority"      // kill -9 a majority (unavailable until restart)
	RestartKept       FaultKind = "restart-kept"       // kill -9 then start a random member, data kept
	RestartWiped      FaultKind = "restart-wiped"      // kill -9 a non-leader, wipe its data dir, start it
	RestartDead       FaultKind = "restart-dead"       // start every dead member (data kept)
	ResumeAll         FaultKind = "resume-all"         // SIGCONT every paused member
	HealNetwork       FaultKind = "heal-network"       // restore every link
)

// Step is one action of a schedule, taken After the previous one.
type Step struct {
	After time.Duration
	Kind  FaultKind
	// Blackhole picks LinkBlackhole over LinkDown for partitions.
	Blackhole bool
	// Pick seeds the random choice of members when the step runs.
	Pick uint64
}

func (s Step) String() string {
	extra := ""
	if s.Blackhole {
		extra = " (blackhole)"
	}
	return fmt.Sprintf("+%v %s%s", s.After, s.Kind, extra)
}

// Schedule is a seeded sequence of faults for an ensemble of Members.
type Schedule struct {
	Seed    uint64
	Members int
	Steps   []Step
}

func (s *Schedule) String() string {
	var parts []string
	for _, st := range s.Steps {
		parts = append(parts, st.String())
	}
	return fmt.Sprintf("seed=%d members=%d: %s", s.Seed, s.Members, strings.Join(parts, ", "))
}

// ScheduleOptions shapes generated schedules.
type ScheduleOptions struct {
	// Members is 3 or 5; 0 picks one from the seed.
	Members int
	// Duration is the rough length of the fault phase.
	Duration time.Duration
	// Wipe allows RestartWiped steps.
	Wipe bool
}

// GenSchedule derives a schedule from seed alone (same seed and options,
// same schedule).
func GenSchedule(seed uint64, o ScheduleOptions) *Schedule {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	n := o.Members
	if n == 0 {
		n = []int{3, 3, 5}[rng.IntN(3)]
	}
	if o.Duration == 0 {
		o.Duration = 20 * time.Second
	}
	type weighted struct {
		k FaultKind
		w int
	}
	kinds := []weighted{
		{KillLeader, 10}, {KillMinority, 6}, {PauseLeader, 6}, {PauseMinority, 4},
		{PartitionMinority, 8}, {IsolateLeader, 8}, {SplitNoMajority, 3}, {KillMajority, 2},
		{RestartKept, 6}, {RestartDead, 8}, {ResumeAll, 6}, {HealNetwork, 8},
	}
	if o.Wipe {
		kinds = append(kinds, weighted{RestartWiped, 4})
	}
	total := 0
	for _, k := range kinds {
		total += k.w
	}
	s := &Schedule{Seed: seed, Members: n}
	var elapsed time.Duration
	for elapsed < o.Duration {
		after := time.Duration(500+rng.IntN(3000)) * time.Millisecond
		elapsed += after
		x := rng.IntN(total)
		var k FaultKind
		for _, kw := range kinds {
			if x < kw.w {
				k = kw.k
				break
			}
			x -= kw.w
		}
		s.Steps = append(s.Steps, Step{After: after, Kind: k, Blackhole: rng.IntN(3) == 0, Pick: rng.Uint64()})
	}
	return s
}

// Apply takes one step on the cluster and describes what it did.
func (c *Cluster) Apply(st Step) (string, error) {
	rng := rand.New(rand.NewPCG(st.Pick, 1))
	ids := c.Voters()
	n := len(ids)
	minority := func() []int {
		k := 1 + rng.IntN((n-1)/2) // 1..floor((n-1)/2)
		perm := rng.Perm(n)
		var out []int
		for _, i := range perm[:k] {
			out = append(out, ids[i])
		}
		sort.Ints(out)
		return out
	}
	leader := func() int {
		if l := c.Leader(); l != 0 {
			return l
		}
		return ids[rng.IntN(n)]
	}
	rest := func(group []int) []int {
		in := map[int]bool{}
		for _, id := range group {
			in[id] = true
		}
		var out []int
		for _, id := range c.IDs() {
			if !in[id] {
				out = append(out, id)
			}
		}
		return out
	}
	mode := LinkDown
	if st.Blackhole {
		mode = LinkBlackhole
	}
	switch st.Kind {
	case KillLeader:
		l := leader()
		return fmt.Sprintf("kill -9 leader %d", l), c.Member(l).Kill()
	case KillMinority:
		g := minority()
		for _, id := range g {
			if err := c.Member(id).Kill(); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("kill -9 %v", g), nil
	case KillMajority:
		g := rest(minority())
		g = g[:n/2+1]
		for _, id := range g {
			if err := c.Member(id).Kill(); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("kill -9 majority %v", g), nil
	case PauseLeader:
		l := leader()
		return fmt.Sprintf("pause leader %d", l), c.Member(l).Pause()
	case PauseMinority:
		g := minority()
		for _, id := range g {
			if err := c.Member(id).Pause(); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("pause %v", g), nil
	case PartitionMinority:
		g := minority()
		c.Partition(mode, g, rest(g))
		return fmt.Sprintf("partition %v | %v (%s)", g, rest(g), mode), nil
	case IsolateLeader:
		l := leader()
		c.Isolate(mode, l)
		return fmt.Sprintf("isolate leader %d (%s)", l, mode), nil
	case SplitNoMajority:
		perm := rng.Perm(n)
		var groups [][]int
		size := (n - 1) / 2 // no group reaches a majority
		for i := 0; i < n; i += size {
			var g []int
			for _, p := range perm[i:min(i+size, n)] {
				g = append(g, ids[p])
			}
			groups = append(groups, g)
		}
		c.Partition(mode, groups...)
		return fmt.Sprintf("split %v (%s)", groups, mode), nil
	case RestartKept:
		id := ids[rng.IntN(n)]
		return fmt.Sprintf("restart %d (data kept)", id), c.Member(id).Restart(false)
	case RestartWiped:
		l := c.Leader()
		var cand []int
		for _, id := range ids {
			if id != l {
				cand = append(cand, id)
			}
		}
		id := cand[rng.IntN(len(cand))]
		// Only one member's data may be lost at a time without
		// losing the quorum's memory: wiped restarts are only taken
		// while every other voter is up with its data (a member wiped
		// earlier stays refused until it is rebuilt).
		for _, o := range ids {
			if o != id && !c.Member(o).Up() {
				return fmt.Sprintf("restart %d wiped: skipped, member %d is down", id, o), nil
			}
			if s, err := c.Member(o).Srvr(); o != id && (err != nil || s.Mode == "refused") {
				return fmt.Sprintf("restart %d wiped: skipped, member %d has no data or does not answer", id, o), nil
			}
		}
		return fmt.Sprintf("restart %d (data wiped)", id), c.Member(id).Restart(true)
	case RestartDead:
		var started []int
		for _, m := range c.Members {
			if !m.Running() {
				if err := m.StartIfDown(); err != nil {
					return "", err
				}
				started = append(started, m.ID)
			}
		}
		return fmt.Sprintf("start dead %v", started), nil
	case ResumeAll:
		var resumed []int
		for _, m := range c.Members {
			if m.Paused() {
				if err := m.Resume(); err != nil {
					return "", err
				}
				resumed = append(resumed, m.ID)
			}
		}
		return fmt.Sprintf("resume %v", resumed), nil
	case HealNetwork:
		c.Heal()
		return "heal network", nil
	}
	return "", fmt.Errorf("faults: unknown step %q", st.Kind)
}
