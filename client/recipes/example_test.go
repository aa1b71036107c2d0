package recipes_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/paddockhq/paddock/client"
	"github.com/paddockhq/paddock/client/recipes"
)

func mustConnect() *client.Client {
	c, err := client.Connect(context.Background(), servers)
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// Two processes share a resource; the lock lets one in at a time, in the
// order they asked.
func ExampleLock() {
	ctx := context.Background()
	c := mustConnect()
	defer c.Close()

	l := recipes.NewLock(c, "/examples/locks/printer", []byte("host-a"))
	if err := l.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("holding", l.Node() != "")
	// ... use the printer ...
	if err := l.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("released")
	// Output:
	// holding true
	// released
}

// Readers share the lock; a writer has it alone.
func ExampleRWLock() {
	ctx := context.Background()
	c := mustConnect()
	defer c.Close()

	rw := recipes.NewRWLock(c, "/examples/rwlock")
	r1, _ := rw.RLock(ctx)
	r2, _ := rw.RLock(ctx) // a second reader does not wait
	fmt.Println("two readers")
	r1.Unlock(ctx)
	r2.Unlock(ctx)
	w, _ := rw.Lock(ctx)
	fmt.Println("one writer")
	w.Unlock(ctx)
	// Output:
	// two readers
	// one writer
}

// One of several candidates leads; anyone can follow who it is.
func ExampleElection() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher := mustConnect()
	defer watcher.Close()
	leaders := recipes.NewElection(watcher, "/examples/election").Observe(ctx)
	fmt.Printf("leader: %q\n", (<-leaders).Value)

	a, b := mustConnect(), mustConnect()
	defer b.Close()
	ea := recipes.NewElection(a, "/examples/election")
	ea.Campaign(ctx, []byte("scheduler-a")) // no one else: wins at once
	fmt.Printf("leader: %s\n", (<-leaders).Value)

	done := make(chan struct{})
	go func() {
		recipes.NewElection(b, "/examples/election").Campaign(ctx, []byte("scheduler-b"))
		close(done)
	}()
	a.Close() // the leader's process goes away
	<-done
	fmt.Printf("leader: %s\n", (<-leaders).Value)
	// Output:
	// leader: ""
	// leader: scheduler-a
	// leader: scheduler-b
}

// Workers wait at a barrier until a coordinator lifts it.
func ExampleBarrier() {
	ctx := context.Background()
	c := mustConnect()
	defer c.Close()

	b := recipes.NewBarrier(c, "/examples/barrier")
	b.Set(ctx)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recipes.NewBarrier(c, "/examples/barrier").Wait(ctx)
			_ = i // start work
		}()
	}
	b.Remove(ctx)
	wg.Wait()
	fmt.Println("all released")
	// Output:
	// all released
}

// A computation that starts when all three workers are present and ends
// when all three are done.
func ExampleDoubleBarrier() {
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := mustConnect()
			defer c.Close()
			b := recipes.NewDoubleBarrier(c, "/examples/double", fmt.Sprintf("worker-%d", i), 3)
			b.Enter(ctx)
			// ... compute ...
			b.Leave(ctx)
		}()
	}
	wg.Wait()
	fmt.Println("computation done")
	// Output:
	// computation done
}

// Producers put, consumers take, first in first out.
func ExampleQueue() {
	ctx := context.Background()
	c := mustConnect()
	defer c.Close()

	q := recipes.NewQueue(c, "/examples/queue")
	for _, job := range []string{"resize", "encode", "upload"} {
		q.Put(ctx, []byte(job))
	}
	for range 3 {
		job, _ := q.Take(ctx)
		fmt.Println(string(job))
	}
	// Output:
	// resize
	// encode
	// upload
}

// A counter many clients update without a lock.
func ExampleCounter() {
	ctx := context.Background()
	c := mustConnect()
	defer c.Close()

	hits := recipes.NewCounter(c, "/examples/counters/hits")
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hits.Add(ctx, 1)
		}()
	}
	wg.Wait()
	n, _ := hits.Get(ctx)
	fmt.Println(n)
	// Output:
	// 10
}

// Instances register themselves; clients discover them and follow changes.
func ExampleRegistry() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := mustConnect()
	defer c.Close()
	registry := recipes.NewRegistry(c, "/examples/services")
	updates := registry.Watch(ctx, "payments")
	fmt.Println(len(<-updates), "instances")

	inst := mustConnect()
	recipes.NewRegistry(inst, "/examples/services").Register(ctx, "payments", "pay-1", []byte("10.0.0.7:8443"))
	list := <-updates
	fmt.Println(list[0].ID, string(list[0].Data))

	inst.Close() // the instance dies: its registration goes with its session
	fmt.Println(len(<-updates), "instances")
	// Output:
	// 0 instances
	// pay-1 10.0.0.7:8443
	// 0 instances
}

// A typed configuration value, with a notification on every change.
func ExampleConfig() {
	type RateLimit struct {
		PerSecond int  `json:"perSecond"`
		Enforce   bool `json:"enforce"`
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := mustConnect()
	defer c.Close()

	cfg := recipes.NewConfig(c, "/examples/config/ratelimit", recipes.JSON[RateLimit]())
	cfg.Set(ctx, RateLimit{PerSecond: 100}, client.AnyVersion)
	changes := cfg.Watch(ctx)
	fmt.Printf("%+v\n", (<-changes).Value)
	cfg.Set(ctx, RateLimit{PerSecond: 50, Enforce: true}, client.AnyVersion)
	fmt.Printf("%+v\n", (<-changes).Value)
	// Output:
	// {PerSecond:100 Enforce:false}
	// {PerSecond:50 Enforce:true}
}
