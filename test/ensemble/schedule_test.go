package ensemble

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/faults"
)

// Generous deadlines: nothing here asserts on speed.
const (
	recoverTimeout = 3 * time.Minute
	checkTimeout   = 3 * time.Minute
)

// scheduleResult is one line of the -ens.summary file.
type scheduleResult struct {
	Seed       uint64         `json:"seed"`
	Members    int            `json:"members"`
	Kinds      []string       `json:"kinds"`
	Steps      []string       `json:"steps"`
	Passed     bool           `json:"passed"`
	Violations []string       `json:"violations,omitempty"`
	Errors     []string       `json:"errors,omitempty"`
	Counts     map[string]int `json:"counts"`
	Seconds    float64        `json:"seconds"`
	Time       string         `json:"time"`
}

var (
	summaryMu sync.Mutex
	results   []scheduleResult
)

func writeSummary(r scheduleResult) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	results = append(results, r)
	if *flagSummary == "" {
		return
	}
	f, err := os.OpenFile(*flagSummary, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	b, _ := json.Marshal(r)
	f.Write(append(b, '\n'))
}

// TestSchedule runs -ens.schedules randomized fault schedules from
// -ens.seed on.
func TestSchedule(t *testing.T) {
	for i := range *flagSchedules {
		seed := *flagSeed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSchedule(t, seed) })
	}
	summaryMu.Lock()
	defer summaryMu.Unlock()
	t.Logf("%s", summarizeResults(results))
}

// summarizeResults totals schedules, failures, faults and operations.
func summarizeResults(rs []scheduleResult) string {
	var failed []string
	faultsBy := map[string]int{}
	ops := map[string]int{}
	members := map[int]int{}
	var secs float64
	for _, r := range rs {
		if !r.Passed {
			failed = append(failed, fmt.Sprint(r.Seed))
		}
		members[r.Members]++
		secs += r.Seconds
		for _, k := range r.Kinds {
			faultsBy[k]++
		}
		for k, v := range r.Counts {
			ops[k] += v
		}
	}
	return fmt.Sprintf("SUMMARY schedules=%d failed=%d (seeds %s) members=%v time=%.0fs\n  steps %v\n  operations %v",
		len(rs), len(failed), strings.Join(failed, ","), members, secs, faultsBy, ops)
}

func reproduce(seed uint64) string {
	extra := ""
	if *flagWipe {
		extra += " -ens.wipe"
	}
	if *flagMembers != 0 {
		extra += fmt.Sprintf(" -ens.members=%d", *flagMembers)
	}
	if *flagDuration != 20*time.Second {
		extra += fmt.Sprintf(" -ens.duration=%v", *flagDuration)
	}
	return fmt.Sprintf("go test ./test/ensemble -run 'Schedule' -v -ens.seed=%d%s", seed, extra)
}

func runSchedule(t *testing.T, seed uint64) {
	start := time.Now()
	sched := faults.GenSchedule(seed, faults.ScheduleOptions{Members: *flagMembers, Duration: *flagDuration, Wipe: *flagWipe})
	res := scheduleResult{Seed: seed, Members: sched.Members, Counts: map[string]int{}, Time: start.UTC().Format(time.RFC3339)}
	failed := false
	fail := func(format string, args ...any) {
		failed = true
		msg := fmt.Sprintf(format, args...)
		res.Errors = append(res.Errors, msg)
		t.Errorf("seed=%d: %s\n  reproduce: %s", seed, msg, reproduce(seed))
	}
	defer func() {
		res.Passed = !failed && !t.Failed()
		res.Seconds = time.Since(start).Seconds()
		writeSummary(res)
	}()
	t.Logf("schedule %s", sched)

	// Wiped members are rebuilt through reconfig once healed.
	c := faults.StartT(t, faults.Options{Voters: sched.Members, Reconfig: *flagWipe})
	if _, err := c.WaitLeader(recoverTimeout); err != nil {
		fail("initial election: %v", err)
		return
	}
	w := faults.NewWorkloads(faults.WorkloadOptions{
		Addrs: c.Addrs(), Root: fmt.Sprintf("/schedule-%d", seed), Seed: seed, Logf: t.Logf,
	})
	if err := w.Setup(); err != nil {
		fail("%v", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() {
		cancel()
		<-done
	}()

	for _, st := range sched.Steps {
		time.Sleep(st.After)
		desc, err := c.Apply(st)
		res.Steps = append(res.Steps, desc)
		res.Kinds = append(res.Kinds, string(st.Kind))
		t.Logf("step %s: %s", st.Kind, desc)
		if err != nil {
			fail("step %s: %v", st, err)
			return
		}
	}

	// Heal everything, let the clients run on the healed ensemble for a
	// while, then stop them and check.
	if err := c.HealAll(); err != nil {
		fail("heal: %v", err)
		return
	}
	if *flagWipe {
		rebuilt, err := c.RebuildRefused(recoverTimeout)
		if err != nil {
			fail("rebuilding wiped members: %v", err)
			return
		}
		if len(rebuilt) > 0 {
			t.Logf("rebuilt wiped member(s) %v", rebuilt)
		}
	}
	leader, err := c.WaitLeader(recoverTimeout)
	if err != nil {
		fail("no leader after heal: %v", err)
		return
	}
	if err := c.WaitServing(recoverTimeout); err != nil {
		fail("not every member serving after heal: %v", err)
		return
	}
	t.Logf("healed: leader %d", leader)
	time.Sleep(3 * time.Second)
	cancel()
	<-done

	r := w.Check(checkTimeout)
	res.Counts, res.Violations = r.Counts, r.Violations
	t.Logf("seed=%d: %s", seed, r)
	if !r.OK() {
		keep(t, c, r, seed)
		fail("%d violation(s):\n    %s", len(r.Violations), strings.Join(r.Violations, "\n    "))
	}

	// Replicas agree once caught up.
	if err := c.WaitCaughtUp(recoverTimeout); err != nil {
		fail("members did not converge: %v", err)
		return
	}
	digests := map[string][]int{}
	for _, m := range c.Members {
		d, err := w.Digest(m.ClientAddr)
		if err != nil {
			fail("digest of member %d: %v", m.ID, err)
			return
		}
		digests[d] = append(digests[d], m.ID)
	}
	if len(digests) != 1 {
		fail("members disagree after catching up: %v", digests)
	}
}

// keep writes porcupine's visualisation next to the kept member logs.
func keep(t *testing.T, c *faults.Cluster, r *faults.Report, seed uint64) {
	dir, err := c.KeepLogs()
	if err != nil {
		return
	}
	if r != nil {
		r.VisualizeTo(dir)
	}
	t.Logf("seed=%d: member logs and porcupine visualisation kept in %s", seed, dir)
}
