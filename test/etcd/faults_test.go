package etcd

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/faults"
)

var (
	flagFaultSeed      = flag.Uint64("etcd.seed", 1, "first fault schedule seed (TestEtcdSchedule)")
	flagFaultSchedules = flag.Int("etcd.schedules", 2, "number of fault schedules to run")
	flagFaultDuration  = flag.Duration("etcd.duration", 12*time.Second, "fault phase of each schedule")
	flagFaultMembers   = flag.Int("etcd.members", 0, "ensemble size (3 or 5; 0 = chosen by the seed)")
	flagSerializable   = flag.Bool("etcd.serializable", false, "serializable reads (stale reads allowed): the check should fail")
	flagLeases         = flag.String("etcd.leases", "even", "which schedules add the lease client: even (seeds), all, none")
	flagCompact        = flag.Duration("etcd.compact", 500*time.Millisecond, "compactor interval (two compactors shaped as kube-apiserver's; 0 = no compaction)")
)

// TestEtcdSchedule runs -etcd.schedules randomized fault schedules
// (internal/faults: kill -9, SIGSTOP, partitions, restarts) from
// -etcd.seed on, against an ensemble serving the etcd API on every
// member, with etcd clients doing Put/Get/Range/Txn/DeleteRange on three
// keys, one watcher per member, two compactors shaped as kube-apiserver's
// with short watches probing around the compact revision (-etcd.compact)
// and, per -etcd.leases, clients granting, renewing, revoking and
// abandoning leases with keys; the history (compactions included) is
// checked with porcupine against a revision-aware model of etcd's KV,
// the watch streams and probes against each other and the history, and
// no lease may end before its TTL past its last renewal
// (faults.EtcdWorkload.Check); every lease must be gone, with its key, on
// every member at the end.
func TestEtcdSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("fault schedules take a while")
	}
	for i := range *flagFaultSchedules {
		seed := *flagFaultSeed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runEtcdSchedule(t, seed) })
	}
}

func runEtcdSchedule(t *testing.T, seed uint64) {
	sched := faults.GenSchedule(seed, faults.ScheduleOptions{Members: *flagFaultMembers, Duration: *flagFaultDuration})
	t.Logf("schedule %s", sched)
	reproduce := fmt.Sprintf("go test ./test/etcd -run EtcdSchedule -v -etcd.seed=%d -etcd.schedules=1 -etcd.duration=%v", seed, *flagFaultDuration)
	if *flagFaultMembers != 0 {
		reproduce += fmt.Sprintf(" -etcd.members=%d", *flagFaultMembers)
	}
	leases := *flagLeases == "all" || *flagLeases == "even" && seed%2 == 0
	if leases {
		reproduce += " -etcd.leases=all"
	} else {
		reproduce += " -etcd.leases=none"
	}
	if *flagCompact != 500*time.Millisecond {
		reproduce += fmt.Sprintf(" -etcd.compact=%v", *flagCompact)
	}
	if *flagSerializable {
		reproduce += " -etcd.serializable"
	}
	c := faults.StartT(t, faults.Options{Voters: sched.Members, Logf: t.Logf, EtcdAPI: true})
	const recoverTimeout = 3 * time.Minute
	if _, err := c.WaitLeader(recoverTimeout); err != nil {
		t.Fatalf("initial election: %v", err)
	}
	var endpoints []string
	for id := 1; id <= sched.Members; id++ {
		waitPort(t, c.Member(id).EtcdAddr)
		endpoints = append(endpoints, "http://"+c.Member(id).EtcdAddr)
	}
	t.Logf("lease client: %v", leases)
	w := faults.NewEtcdWorkload(faults.EtcdWorkloadOptions{Endpoints: endpoints, Prefix: "/faults/", Seed: seed, Logf: t.Logf,
		Serializable: *flagSerializable, Leases: leases, Compact: *flagCompact})
	defer w.Close()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	if err := w.StartWatchers(wctx); err != nil {
		t.Fatal(err)
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
		t.Logf("step %s: %s", st.Kind, desc)
		if err != nil {
			t.Fatalf("step %s: %v\n  reproduce: %s", st, err, reproduce)
		}
	}
	if err := c.HealAll(); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if _, err := c.WaitLeader(recoverTimeout); err != nil {
		t.Fatalf("no leader after heal: %v", err)
	}
	if err := c.WaitServing(recoverTimeout); err != nil {
		t.Fatalf("not every member serving after heal: %v", err)
	}
	time.Sleep(3 * time.Second)
	cancel()
	<-done
	marker, err := w.Finish(recoverTimeout)
	if err != nil {
		dir, _ := c.KeepLogs()
		t.Fatalf("%v (logs in %s)\n  reproduce: %s", err, dir, reproduce)
	}
	// Every lease must end (on every member) while the watchers still
	// run: they time the DELETEs of the lease keys the safety check reads.
	var leaseProblems []string
	if leases {
		leaseProblems = w.CheckLeases(recoverTimeout)
	}
	wcancel()
	r := w.Check(3 * time.Minute)
	r.Violations = append(r.Violations, leaseProblems...)
	t.Logf("seed=%d: %s; marker at revision %d", seed, r, marker)
	if !r.OK() {
		dir, _ := c.KeepLogs()
		if dir != "" {
			if f, err := r.VisualizeTo(dir); err == nil && f != "" {
				t.Logf("porcupine visualisation: %s", f)
			}
		}
		t.Errorf("seed=%d: %d violation(s) (logs in %s):\n    %s\n  reproduce: %s", seed, len(r.Violations), dir,
			strings.Join(r.Violations, "\n    "), reproduce)
	}
}
