package faults

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}

func needBinary(t *testing.T) {
	t.Helper()
	if _, err := testserver.Binary(); err != nil {
		if errors.Is(err, testserver.ErrNoSource) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
}

// standalone turns the ensemble command line into a standalone one, so the
// process management can be tested on any build.
func standalone(m *Member, args []string) []string {
	return []string{"server", "--addr", m.ClientAddr, "--data-dir", m.DataDir, "--4lw-whitelist", "*"}
}

// TestProcessFaults checks kill -9, pause/resume and restart (kept and
// wiped data) on three standalone servers managed as a "cluster".
func TestProcessFaults(t *testing.T) {
	needBinary(t)
	c, err := Start(Options{Voters: 3, Dir: t.TempDir(), Args: standalone, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(c.Tails(20))
		}
		c.Close()
	}()
	if err := c.WaitServing(time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := c.Leaders(); len(got) != 3 { // every standalone server leads itself
		t.Fatalf("leaders %v, modes %v", got, c.Modes())
	}
	m := c.Member(2)
	conn, err := Connect([]string{m.ClientAddr}, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Create("/kept", []byte("x"), 0, nil); err == nil {
		t.Fatal("create with nil ACL should fail") // sanity of the client
	}
	if _, err := conn.Create("/kept", []byte("x"), 0, worldACL()); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	// Pause: srvr gets no answer; resume: it answers again.
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	if !m.Paused() || m.Serving() {
		t.Fatal("paused member serving")
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(time.Minute, 2); err != nil {
		t.Fatal(err)
	}

	// kill -9 while paused, then restart with the data kept.
	pid := m.PID()
	m.Pause()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if m.Running() {
		t.Fatal("running after kill")
	}
	if err := m.Restart(false); err != nil {
		t.Fatal(err)
	}
	if m.PID() == pid {
		t.Fatal("same pid after restart")
	}
	if err := c.WaitServing(time.Minute, 2); err != nil {
		t.Fatal(err)
	}
	conn, err = Connect([]string{m.ClientAddr}, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := conn.Exists("/kept"); err != nil || !ok {
		t.Fatalf("after kept restart: exists %v %v", ok, err)
	}
	conn.Close()

	// Restart with the data wiped: the node is gone.
	if err := m.Restart(true); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(time.Minute, 2); err != nil {
		t.Fatal(err)
	}
	conn, err = Connect([]string{m.ClientAddr}, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := conn.Exists("/kept"); err != nil || ok {
		t.Fatalf("after wiped restart: exists %v %v", ok, err)
	}
	conn.Close()

	// Links: partition cuts both directions between groups only.
	c.Partition(LinkDown, []int{1}, []int{2, 3})
	if got := c.Cut(); len(got) != 4 {
		t.Fatalf("cut %v", got)
	}
	c.Isolate(LinkBlackhole, 3)
	if got := c.Cut(); len(got) != 6 || c.Link(2, 3).State() != LinkBlackhole {
		t.Fatalf("cut %v", got)
	}
	c.Heal()
	if got := c.Cut(); len(got) != 0 {
		t.Fatalf("cut after heal %v", got)
	}
}

// TestWorkloadsStandalone runs every workload against one standalone
// server, with a kill -9 and restart in the middle, and expects the checks
// to pass.
func TestWorkloadsStandalone(t *testing.T) {
	needBinary(t)
	c, err := Start(Options{Voters: 1, Dir: t.TempDir(), Args: standalone, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(c.Tails(20))
		}
		c.Close()
	}()
	if err := c.WaitServing(time.Minute); err != nil {
		t.Fatal(err)
	}
	w := NewWorkloads(WorkloadOptions{Addrs: c.Addrs(), Root: "/wl", Seed: 1, SessionTimeout: 4 * time.Second, Logf: t.Logf})
	if err := w.Setup(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	go func() {
		time.Sleep(3 * time.Second)
		c.Member(1).Restart(false)
	}()
	w.Run(ctx)
	if err := c.WaitServing(time.Minute); err != nil {
		t.Fatal(err)
	}
	r := w.Check(time.Minute)
	t.Logf("report: %s", r)
	if !r.OK() {
		if f, err := r.VisualizeTo(t.TempDir()); f != "" {
			t.Logf("visualisation %s %v", f, err)
		}
		t.Fatal("violations")
	}
	if r.Counts["reg.sread"] == 0 || r.Counts["seq.ok"] == 0 || r.Counts["counter.ok"] == 0 || r.Counts["lock.holds"] == 0 {
		t.Fatalf("a workload made no progress: %v", r.Counts)
	}
}

// TestApplyEveryKind takes each kind of step once on five standalone
// servers (what matters here is that each step runs, not its effect on
// Raft) and then heals.
func TestApplyEveryKind(t *testing.T) {
	needBinary(t)
	c, err := Start(Options{Voters: 5, Dir: t.TempDir(), Args: standalone, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitServing(time.Minute); err != nil {
		t.Fatal(err)
	}
	kinds := []FaultKind{KillLeader, KillMinority, PauseLeader, PauseMinority, PartitionMinority, IsolateLeader,
		SplitNoMajority, KillMajority, RestartKept, RestartWiped, RestartDead, ResumeAll, HealNetwork}
	for i, k := range kinds {
		desc, err := c.Apply(Step{Kind: k, Blackhole: i%2 == 0, Pick: uint64(i)})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		t.Logf("%s: %s", k, desc)
	}
	if err := c.HealAll(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(time.Minute); err != nil {
		t.Fatal(err)
	}
	if cut := c.Cut(); len(cut) != 0 {
		t.Fatalf("cut after heal: %v", cut)
	}
}
