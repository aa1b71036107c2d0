package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paddockhq/paddock/client"
	"github.com/paddockhq/paddock/client/recipes"
	"github.com/paddockhq/paddock/internal/faults"
)

// startEnsemble starts a 3-member Paddock ensemble and waits for its
// leader. It skips when the binary has no ensemble support, and in -short
// mode.
func startEnsemble(t *testing.T) *faults.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("ensemble test skipped in -short mode")
	}
	c := faults.StartT(t, faults.Options{Voters: 3, TickTime: 200 * time.Millisecond})
	if _, err := c.WaitLeader(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// killLeader kill -9s the ensemble's leader, waits for a new one, and
// returns the killed member's id.
func killLeader(t *testing.T, c *faults.Cluster) int {
	t.Helper()
	id := c.Leader()
	if id == 0 {
		t.Fatal("no leader to kill")
	}
	t.Logf("kill -9 leader %d", id)
	if err := c.Member(id).Kill(); err != nil {
		t.Fatal(err)
	}
	if err := faults.WaitFor(60*time.Second, "new leader", func() bool {
		l := c.Leader()
		return l != 0 && l != id
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader %d", c.Leader())
	return id
}

// session keeps a client for a worker, replacing it after an expiry.
type session struct {
	t     *testing.T
	addrs []string
	c     *client.Client
}

func newSession(t *testing.T, addrs []string) *session {
	s := &session{t: t, addrs: addrs, c: connect(t, addrs, client.WithSessionTimeout(10*time.Second))}
	return s
}

// renew replaces an expired client.
func (s *session) renew(ctx context.Context) bool {
	n, err := s.c.NewSession(ctx)
	if err != nil {
		return false
	}
	s.c.Close()
	s.c = n
	s.t.Cleanup(func() { n.Close() })
	return true
}

// TestEnsembleLock runs contending lock holders against a 3-member
// ensemble while its leader is killed with SIGKILL and brought back:
// never two holders at once, and the lock keeps being granted after the
// failover.
func TestEnsembleLock(t *testing.T) {
	cl := startEnsemble(t)
	ctx := ctxT(t)
	d := dir(t)
	var x exclusion
	var grants, afterKill atomic.Int64
	var killed atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		s := newSession(t, cl.Addrs())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l := recipes.NewLock(s.c, d, []byte(fmt.Sprint(i)))
				lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				err := l.Lock(lctx)
				cancel()
				switch {
				case errors.Is(err, client.ErrSessionExpired):
					t.Logf("worker %d: session expired, renewing", i)
					if !s.renew(ctx) {
						return
					}
					continue
				case err != nil:
					t.Logf("worker %d: lock: %v", i, err)
					continue
				}
				if n := x.enter(); n > 1 {
					t.Errorf("%d holders at once", n)
				}
				grants.Add(1)
				if killed.Load() {
					afterKill.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
				x.leave()
				if err := l.Unlock(ctx); err != nil {
					t.Logf("worker %d: unlock: %v", i, err)
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	before := grants.Load()
	id := killLeader(t, cl)
	killed.Store(true)
	time.Sleep(3 * time.Second)
	if err := cl.Member(id).StartIfDown(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d grants before the kill, %d after", before, afterKill.Load())
	if before == 0 || afterKill.Load() == 0 {
		t.Fatalf("no progress: %d grants before the kill, %d after", before, afterKill.Load())
	}
}

// TestEnsembleElection: the election survives the ensemble's leader being
// killed (sessions move to the surviving members), and hands over when the
// elected candidate's process goes away.
func TestEnsembleElection(t *testing.T) {
	cl := startEnsemble(t)
	ctx := ctxT(t)
	d := dir(t)
	obsC := connect(t, cl.Addrs(), client.WithSessionTimeout(10*time.Second))
	obs := recipes.NewElection(obsC, d).Observe(ctx)
	<-obs // no leader yet
	var cands []*client.Client
	won := make(chan int, 3)
	for i := range 3 {
		c := connect(t, cl.Addrs(), client.WithSessionTimeout(10*time.Second))
		cands = append(cands, c)
		go func() {
			if err := recipes.NewElection(c, d).Campaign(ctx, []byte(fmt.Sprint(i))); err == nil {
				won <- i
			}
		}()
		time.Sleep(100 * time.Millisecond)
	}
	first := <-won
	if li := <-obs; string(li.Value) != fmt.Sprint(first) {
		t.Fatalf("observed %+v, candidate %d won", li, first)
	}
	killLeader(t, cl)
	// Sessions survive the failover: the elected candidate keeps leading.
	li, err := recipes.NewElection(obsC, d).Leader(ctx)
	if err != nil || string(li.Value) != fmt.Sprint(first) {
		t.Fatalf("after failover: %+v %v", li, err)
	}
	cands[first].Close()
	second := <-won
	for li := range obs {
		if string(li.Value) == fmt.Sprint(second) {
			return
		}
	}
	t.Fatal("observer closed before seeing the new leader")
}

// TestEnsembleCounter increments a counter from several clients while the
// leader is killed: every acknowledged increment is counted, and at most
// the ambiguous ones (connection lost during the write) besides.
func TestEnsembleCounter(t *testing.T) {
	cl := startEnsemble(t)
	ctx := ctxT(t)
	p := dir(t) + "/n"
	var ok, ambiguous atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		c := connect(t, cl.Addrs(), client.WithSessionTimeout(10*time.Second))
		ct := recipes.NewCounter(c, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := ct.Add(ctx, 1)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, client.ErrConnectionLoss):
					ambiguous.Add(1)
					c.WaitConnected(ctx)
				default:
					t.Errorf("add: %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(time.Second)
	killLeader(t, cl)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	c := connect(t, cl.Addrs())
	if err := c.Sync(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	v, err := recipes.NewCounter(c, p).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("counter %d: %d acknowledged, %d ambiguous", v, ok.Load(), ambiguous.Load())
	if v < ok.Load() || v > ok.Load()+ambiguous.Load() {
		t.Fatalf("counter %d, want between %d and %d", v, ok.Load(), ok.Load()+ambiguous.Load())
	}
}

// TestEnsembleRecipesAcrossFailover sets up every other recipe, kills the
// ensemble's leader in the middle, and checks each one completes its work
// on the surviving members.
func TestEnsembleRecipesAcrossFailover(t *testing.T) {
	cl := startEnsemble(t)
	ctx := ctxT(t)
	d := dir(t)
	conn := func() *client.Client { return connect(t, cl.Addrs(), client.WithSessionTimeout(10*time.Second)) }
	a, b, w := conn(), conn(), conn()

	// Before the kill.
	reg, err := recipes.NewRegistry(a, d+"/reg").Register(ctx, "svc", "a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	members := recipes.NewRegistry(w, d+"/reg").Watch(ctx, "svc")
	<-members
	cfgUpdates := recipes.NewConfig(w, d+"/cfg", recipes.String()).Watch(ctx)
	<-cfgUpdates
	barrier := recipes.NewBarrier(a, d+"/barrier")
	if err := barrier.Set(ctx); err != nil {
		t.Fatal(err)
	}
	released := make(chan error, 1)
	go func() { released <- recipes.NewBarrier(b, d+"/barrier").Wait(ctx) }()
	q := recipes.NewQueue(a, d+"/queue")
	for i := range 10 {
		if _, err := q.Put(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	rw := recipes.NewRWLock(a, d+"/rw")
	rl, err := rw.RLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		h, err := recipes.NewRWLock(b, d+"/rw").Lock(ctx)
		if err == nil {
			err = h.Unlock(ctx)
		}
		wrote <- err
	}()
	entered := make(chan error, 3)
	for i, c := range []*client.Client{a, b} {
		go func() { entered <- recipes.NewDoubleBarrier(c, d+"/double", fmt.Sprint(i), 3).Enter(ctx) }()
	}

	killLeader(t, cl)

	// After the kill.
	if _, err := recipes.NewRegistry(b, d+"/reg").Register(ctx, "svc", "b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	for list := range members {
		if len(list) == 2 {
			break
		}
	}
	if err := recipes.NewConfig(a, d+"/cfg", recipes.String()).Set(ctx, "after", client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	for v := range cfgUpdates {
		if v.Value == "after" {
			break
		}
	}
	if err := barrier.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 10 {
		data, err := recipes.NewQueue(b, d+"/queue").Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(data)] {
			t.Fatalf("item %s taken twice", data)
		}
		seen[string(data)] = true
	}
	if err := rl.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	go func() { entered <- recipes.NewDoubleBarrier(w, d+"/double", "2", 3).Enter(ctx) }()
	for range 3 {
		if err := <-entered; err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
}
