package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paddockhq/paddock/client"
	"github.com/paddockhq/paddock/client/recipes"
)

// exclusion checks that at most limit holders are inside at once.
type exclusion struct {
	in, max atomic.Int32
}

func (x *exclusion) enter() int32 {
	n := x.in.Add(1)
	for {
		m := x.max.Load()
		if n <= m || x.max.CompareAndSwap(m, n) {
			return n
		}
	}
}

func (x *exclusion) leave() { x.in.Add(-1) }

func TestLock(t *testing.T) {
	ctx := ctxT(t)
	d := dir(t)
	var x exclusion
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	const workers, rounds = 5, 10
	for i := range workers {
		c := connect(t, servers)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := recipes.NewLock(c, d, []byte(fmt.Sprint(i)))
			for range rounds {
				if err := l.Lock(ctx); err != nil {
					t.Error(err)
					return
				}
				if n := x.enter(); n > 1 {
					t.Errorf("%d holders at once", n)
				}
				mu.Lock()
				order = append(order, l.Node())
				mu.Unlock()
				time.Sleep(time.Millisecond)
				x.leave()
				if err := l.Unlock(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(order) != workers*rounds {
		t.Fatalf("%d acquisitions", len(order))
	}
	// Fair: the lock was granted in the order of the contenders' nodes.
	seqs := make([]string, len(order))
	for i, p := range order {
		seqs[i] = p[len(p)-10:]
	}
	if !slices.IsSorted(seqs) {
		t.Fatalf("lock not granted in request order: %v", seqs)
	}
}

func TestLockCancelAndExpiry(t *testing.T) {
	ctx := ctxT(t)
	d := dir(t)
	holderC := connect(t, servers)
	holder := recipes.NewLock(holderC, d, nil)
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	waiterC := connect(t, servers)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := recipes.NewLock(waiterC, d, nil).Lock(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock with an expiring context: %v", err)
	}
	kids, _, err := waiterC.Children(ctx, d)
	if err != nil || len(kids) != 1 {
		t.Fatalf("a cancelled contender left its node: %v %v", kids, err)
	}
	// The holder's session ends: the waiter gets the lock.
	got := make(chan error, 1)
	go func() { got <- recipes.NewLock(waiterC, d, nil).Lock(ctx) }()
	time.Sleep(100 * time.Millisecond)
	holderC.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := holder.Unlock(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("unlock on a closed client: %v", err)
	}
}

func TestRWLock(t *testing.T) {
	ctx := ctxT(t)
	d := dir(t)
	c1, c2, c3 := connect(t, servers), connect(t, servers), connect(t, servers)
	r1, err := recipes.NewRWLock(c1, d).RLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := recipes.NewRWLock(c2, d).RLock(ctx)
	if err != nil {
		t.Fatal("second reader blocked by the first:", err)
	}
	wrote := make(chan *recipes.Held, 1)
	go func() {
		w, err := recipes.NewRWLock(c3, d).Lock(ctx)
		if err != nil {
			t.Error(err)
		}
		wrote <- w
	}()
	// A reader arriving after the writer waits for it (no starvation).
	time.Sleep(200 * time.Millisecond)
	read3 := make(chan *recipes.Held, 1)
	go func() {
		r, err := recipes.NewRWLock(c1, d).RLock(ctx)
		if err != nil {
			t.Error(err)
		}
		read3 <- r
	}()
	select {
	case <-wrote:
		t.Fatal("writer got the lock while readers hold it")
	case <-read3:
		t.Fatal("late reader overtook the waiting writer")
	case <-time.After(300 * time.Millisecond):
	}
	r1.Unlock(ctx)
	r2.Unlock(ctx)
	w := <-wrote
	select {
	case <-read3:
		t.Fatal("reader got the lock while the writer holds it")
	case <-time.After(200 * time.Millisecond):
	}
	w.Unlock(ctx)
	(<-read3).Unlock(ctx)
}

func TestElection(t *testing.T) {
	ctx := ctxT(t)
	d := dir(t)
	observer := connect(t, servers)
	obs := recipes.NewElection(observer, d).Observe(ctx)
	if li := <-obs; li.Node != "" {
		t.Fatalf("leader before any candidate: %+v", li)
	}
	var clients []*client.Client
	var cands []*recipes.Election
	for i := range 3 {
		c := connect(t, servers)
		clients = append(clients, c)
		e := recipes.NewElection(c, d)
		cands = append(cands, e)
		if i == 0 {
			if err := e.Campaign(ctx, []byte("c0")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if li := <-obs; string(li.Value) != "c0" {
		t.Fatalf("observed %+v, want c0", li)
	}
	won := make(chan int, 2)
	for i := 1; i < 3; i++ {
		go func() {
			if err := cands[i].Campaign(ctx, []byte(fmt.Sprintf("c%d", i))); err == nil {
				won <- i
			}
		}()
		time.Sleep(100 * time.Millisecond) // c1 queues before c2
	}
	if !cands[0].IsLeader() || cands[1].IsLeader() {
		t.Fatal("wrong leader")
	}
	li, err := cands[2].Leader(ctx)
	if err != nil || string(li.Value) != "c0" {
		t.Fatalf("Leader: %+v %v", li, err)
	}
	if err := cands[0].Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if w := <-won; w != 1 {
		t.Fatalf("candidate %d won, want 1", w)
	}
	if li := <-obs; string(li.Value) != "c1" {
		t.Fatalf("observed %+v, want c1", li)
	}
	clients[1].Close() // the leader's session ends
	if w := <-won; w != 2 {
		t.Fatalf("candidate %d won, want 2", w)
	}
	if li := <-obs; string(li.Value) != "c2" {
		t.Fatalf("observed %+v, want c2", li)
	}
	cands[2].Resign(ctx)
	if li := <-obs; li.Node != "" {
		t.Fatalf("observed %+v, want no leader", li)
	}
	if _, err := cands[0].Leader(ctx); !errors.Is(err, recipes.ErrNoLeader) {
		t.Fatal(err)
	}
}

func TestBarrier(t *testing.T) {
	ctx := ctxT(t)
	p := dir(t)
	c := connect(t, servers)
	b := recipes.NewBarrier(c, p)
	if err := b.Wait(ctx); err != nil { // not up: no wait
		t.Fatal(err)
	}
	if err := b.Set(ctx); err != nil {
		t.Fatal(err)
	}
	released := make(chan error, 3)
	for range 3 {
		w := recipes.NewBarrier(connect(t, servers), p)
		go func() { released <- w.Wait(ctx) }()
	}
	select {
	case <-released:
		t.Fatal("released while the barrier is up")
	case <-time.After(200 * time.Millisecond):
	}
	if err := b.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-released; err != nil {
			t.Fatal(err)
		}
	}
}

func TestDoubleBarrier(t *testing.T) {
	ctx := ctxT(t)
	d := dir(t)
	const n = 4
	var entered, left atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		c := connect(t, servers)
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 50 * time.Millisecond)
			b := recipes.NewDoubleBarrier(c, d, fmt.Sprintf("p%d", i), n)
			if err := b.Enter(ctx); err != nil {
				t.Error(err)
				return
			}
			if got := entered.Add(1); got == 1 && i != n-1 {
				// Nobody can be through before the last one arrived.
				if left.Load() != 0 {
					t.Error("left before all entered")
				}
			}
			time.Sleep(time.Duration(n-i) * 30 * time.Millisecond)
			if err := b.Leave(ctx); err != nil {
				t.Error(err)
				return
			}
			if entered.Load() != n {
				t.Error("left before everyone entered")
			}
			left.Add(1)
		}()
	}
	wg.Wait()
	c := connect(t, servers)
	if kids, _, err := c.Children(ctx, d); err != nil || len(kids) != 0 {
		t.Fatalf("left behind %v %v", kids, err)
	}
}

func TestQueue(t *testing.T) {
	ctx := ctxT(t)
	d := dir(t)
	q := recipes.NewQueue(connect(t, servers), d)
	if _, ok, err := q.Poll(ctx); ok || err != nil {
		t.Fatal(ok, err)
	}
	for i := range 3 {
		if _, err := q.Put(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := q.Len(ctx); n != 3 {
		t.Fatalf("len %d", n)
	}
	for i := range 3 { // FIFO
		data, err := q.Take(ctx)
		if err != nil || string(data) != fmt.Sprint(i) {
			t.Fatalf("take %q %v", data, err)
		}
	}
	// Concurrent consumers: every item taken exactly once, including items
	// put while consumers wait.
	const items, consumers = 60, 4
	got := make(chan string, items)
	for range consumers {
		cq := recipes.NewQueue(connect(t, servers), d)
		go func() {
			for {
				data, err := cq.Take(ctx)
				if err != nil {
					return
				}
				got <- string(data)
			}
		}()
	}
	for i := range items {
		if _, err := q.Put(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range items {
		v := <-got
		if seen[v] {
			t.Fatalf("item %s taken twice", v)
		}
		seen[v] = true
	}
}

func TestCounter(t *testing.T) {
	ctx := ctxT(t)
	p := dir(t) + "/count"
	var wg sync.WaitGroup
	for range 5 {
		ct := recipes.NewCounter(connect(t, servers), p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := ct.Add(ctx, 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	v, err := recipes.NewCounter(connect(t, servers), p).Get(ctx)
	if err != nil || v != 100 {
		t.Fatalf("counter %d %v", v, err)
	}
}

func TestRegistry(t *testing.T) {
	ctx := ctxT(t)
	d := dir(t)
	watcher := recipes.NewRegistry(connect(t, servers), d)
	updates := watcher.Watch(ctx, "api")
	ids := func(list []recipes.Instance) string {
		var s []string
		for _, in := range list {
			s = append(s, in.ID+"="+string(in.Data))
		}
		return strings.Join(s, ",")
	}
	next := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case list := <-updates:
				if ids(list) == want {
					return
				}
			case <-deadline:
				t.Fatalf("membership never became %q", want)
			}
		}
	}
	next("")
	a := connect(t, servers)
	ra, err := recipes.NewRegistry(a, d).Register(ctx, "api", "a", []byte("10.0.0.1:80"))
	if err != nil {
		t.Fatal(err)
	}
	next("a=10.0.0.1:80")
	b := connect(t, servers)
	if _, err := recipes.NewRegistry(b, d).Register(ctx, "api", "b", []byte("10.0.0.2:80")); err != nil {
		t.Fatal(err)
	}
	next("a=10.0.0.1:80,b=10.0.0.2:80")
	if err := ra.Update(ctx, []byte("10.0.0.1:81")); err != nil {
		t.Fatal(err)
	}
	next("a=10.0.0.1:81,b=10.0.0.2:80")
	b.Close() // a crashed instance disappears with its session
	next("a=10.0.0.1:81")
	if err := ra.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	next("")
	svcs, err := watcher.Services(ctx)
	if err != nil || !slices.Equal(svcs, []string{"api"}) {
		t.Fatalf("services %v %v", svcs, err)
	}
}

type limits struct {
	MaxConns int    `json:"maxConns"`
	Mode     string `json:"mode"`
}

func TestConfig(t *testing.T) {
	ctx := ctxT(t)
	p := dir(t) + "/limits"
	cfg := recipes.NewConfig(connect(t, servers), p, recipes.JSON[limits]())
	updates := recipes.NewConfig(connect(t, servers), p, recipes.JSON[limits]()).Watch(ctx)
	if v := <-updates; v.Exists {
		t.Fatalf("value before creation: %+v", v)
	}
	if err := cfg.Set(ctx, limits{10, "strict"}, client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	v := <-updates
	if !v.Exists || v.Value != (limits{10, "strict"}) || v.Err != nil {
		t.Fatalf("first value %+v", v)
	}
	if err := cfg.Set(ctx, limits{20, "lax"}, v.Version); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set(ctx, limits{30, "x"}, v.Version); !errors.Is(err, client.ErrBadVersion) {
		t.Fatalf("stale conditional set: %v", err)
	}
	if v := <-updates; v.Value != (limits{20, "lax"}) {
		t.Fatalf("second value %+v", v)
	}
	// Bad data is reported, not fatal.
	raw := connect(t, servers)
	if _, err := raw.Set(ctx, p, []byte("{not json"), client.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if v := <-updates; v.Err == nil {
		t.Fatalf("undecodable value accepted: %+v", v)
	}
	got, err := cfg.Get(ctx)
	if err != nil || got.Err == nil {
		t.Fatalf("Get of bad data: %+v %v", got, err)
	}
}
