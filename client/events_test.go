package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// nextSE waits for the next session event. The timeout only guards
// against a hang; nothing is asserted about timing.
func nextSE(t *testing.T, s *SessionEvents) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("session events: %v", err)
	}
	return ev
}

// queued returns the events queued now, without waiting.
func queued(s *SessionEvents) []Event {
	var out []Event
	for {
		ev, ok := s.TryNext()
		if !ok {
			return out
		}
		out = append(out, ev)
	}
}

func wantState(t *testing.T, ev Event, st State) {
	t.Helper()
	if ev.Type != EventNone || ev.State != st || ev.Path != "" {
		t.Fatalf("got %+v, want a None event with state %v", ev, st)
	}
}

// sameEvents compares events by type and path.
func sameEvents(t *testing.T, what string, got []Event, want ...string) {
	t.Helper()
	var g []string
	for _, ev := range got {
		g = append(g, ev.String())
	}
	if !slices.Equal(g, want) {
		t.Fatalf("%s:\n   got %q\n  want %q", what, g, want)
	}
}

// testSessionEvents: the session stream starts with the connection, gets
// each watch notification once, in the server's order, and before the
// reply to any later request, drops notifications no watch claims, gets
// one removal event per kind of watch removed, and ends with Closed.
func testSessionEvents(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr, WithSessionEvents())
	se := c.SessionEvents()
	wantState(t, nextSE(t, se), StateConnected)
	w := connect(t, e.addr)
	base := unique(t)
	created(t)(w.Create(ctx, base, []byte("0"), ModePersistent, nil))
	created(t)(w.Create(ctx, base+"/a", []byte("0"), ModePersistent, nil))

	// Watches of every kind; /a is watched twice by GetW and by the
	// recursive watch on base, yet each change of it is one event.
	must3(t)(c.GetW(ctx, base+"/a"))
	must3(t)(c.GetW(ctx, base+"/a"))
	must3(t)(existsW3(c.ExistsW(ctx, base+"/b")))
	must3(t)(c.ChildrenW(ctx, base))
	watcher2(t)(c.AddWatch(ctx, base+"/r", WatchPersistentRecursive))
	if got := queued(se); len(got) != 0 {
		t.Fatalf("events before any change: %v", got)
	}

	stat2(t)(w.Set(ctx, base+"/a", []byte("1"), AnyVersion))         // data watch (twice) → one event
	created(t)(w.Create(ctx, base+"/b", nil, ModePersistent, nil))   // exist watch, then the child watch of base
	created(t)(w.Create(ctx, base+"/c", nil, ModePersistent, nil))   // the child watch has fired: nothing
	stat2(t)(w.Set(ctx, base+"/c", []byte("x"), AnyVersion))         // not watched: nothing
	stat2(t)(w.Set(ctx, base+"/a", []byte("2"), AnyVersion))         // the data watch has fired: nothing
	created(t)(w.Create(ctx, base+"/r", nil, ModePersistent, nil))   // recursive
	created(t)(w.Create(ctx, base+"/r/k", nil, ModePersistent, nil)) // recursive
	stat2(t)(w.Set(ctx, base+"/r/k", []byte("v"), AnyVersion))       // recursive

	// Once c reads the last change, every event is already queued: no
	// waiting, TryNext only.
	for {
		data, _, err := c.Get(ctx, base+"/r/k")
		if err != nil {
			t.Fatal(err)
		}
		if string(data) == "v" {
			break
		}
	}
	got := queued(se)
	sameEvents(t, "events after reading the last change", got,
		"NodeDataChanged "+base+"/a",
		"NodeCreated "+base+"/b",
		"NodeChildrenChanged "+base,
		"NodeCreated "+base+"/r",
		"NodeCreated "+base+"/r/k",
		"NodeDataChanged "+base+"/r/k")
	for i, ev := range got {
		if ev.State != StateConnected {
			t.Fatalf("event %d: %+v, want state SyncConnected", i, ev)
		}
		// Apache ZooKeeper 3.8 sends -1 as a notification's zxid; Paddock
		// the zxid of the change (two events of one create share it).
		if e.kind == "paddock" && (ev.Zxid <= 0 || (i > 0 && ev.Zxid < got[i-1].Zxid)) {
			t.Fatalf("event %d: %+v, want zxids that never fall", i, ev)
		}
	}

	// Removing every kind of watch on a path gives one event per kind,
	// before RemoveWatches returns.
	must3(t)(c.GetW(ctx, base+"/a"))
	must3(t)(existsW3(c.ExistsW(ctx, base+"/a")))
	must3(t)(c.ChildrenW(ctx, base+"/a"))
	pw := watcher2(t)(c.AddWatch(ctx, base+"/a", WatchPersistent))
	if err := c.RemoveWatches(ctx, base+"/a", WatcherAny, false); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "events of RemoveWatches", queued(se),
		"ChildWatchRemoved "+base+"/a",
		"DataWatchRemoved "+base+"/a",
		"PersistentWatchRemoved "+base+"/a")
	wantErr(t, c.RemoveWatches(ctx, base+"/a", WatcherAny, false), ErrNoWatcher)
	if got := queued(se); len(got) != 0 {
		t.Fatalf("events after a refused RemoveWatches: %v", got)
	}
	for range pw.Events() { // closed by the removal
	}

	c.Close()
	wantState(t, nextSE(t, se), StateClosed)
	if ev, err := se.Next(ctx); err != io.EOF {
		t.Fatalf("after Closed: %+v %v, want io.EOF", ev, err)
	}
	if !se.Ended() {
		t.Fatal("stream not ended after Closed")
	}
}

// testSessionEventsReconnect: a lost connection shows as Disconnected,
// the new one as Connected, and the events the SetWatches replay brings
// come after that Connected.
func testSessionEventsReconnect(t *testing.T, e env) {
	ctx := ctxT(t)
	link := proxied(t, e.addr)
	c := connect(t, link.Addr, WithSessionEvents())
	se := c.SessionEvents()
	wantState(t, nextSE(t, se), StateConnected)
	w := connect(t, e.addr)
	base := unique(t)
	created(t)(w.Create(ctx, base, nil, ModePersistent, nil))
	must3(t)(c.GetW(ctx, base))
	must3(t)(c.ChildrenW(ctx, base))

	link.Set(linkDown)
	wantState(t, nextSE(t, se), StateDisconnected)
	stat2(t)(w.Set(ctx, base, []byte("while away"), AnyVersion))
	created(t)(w.Create(ctx, base+"/kid", nil, ModePersistent, nil))
	link.Set(linkUp)
	wantState(t, nextSE(t, se), StateConnected)
	got := []Event{nextSE(t, se), nextSE(t, se)}
	slices.SortFunc(got, func(a, b Event) int { return int(a.Type - b.Type) })
	sameEvents(t, "replayed events", got, "NodeDataChanged "+base, "NodeChildrenChanged "+base)
	if got := queued(se); len(got) != 0 {
		t.Fatalf("more events after the replay: %v", got)
	}
}

// TestSessionEventsNew: New returns at once while no server is reachable;
// calls fail fast, WaitConnected says why the last attempt failed, and the
// stream's first event is the connection, when it comes.
func TestSessionEventsNew(t *testing.T) {
	e := startPaddock(t)
	ctx := ctxT(t)
	link := proxied(t, e.addr)
	link.Set(linkDown)
	c, err := New([]string{link.Addr}, WithSessionEvents(), WithSessionTimeout(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	se := c.SessionEvents()
	_, _, err = c.Get(ctx, "/")
	wantErr(t, err, ErrConnectionLoss)
	// Wait until an attempt has failed (the first may still be under way
	// when a short wait ends).
	var ce *ConnectError
	for {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.WaitConnected(short)
		cancel()
		if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitConnected while down: %v, want a *ConnectError for the deadline", err)
		}
		if ce.Last != nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no connection attempt failed")
		}
	}
	if len(queued(se)) != 0 {
		t.Fatal("session events before any connection")
	}
	link.Set(linkUp)
	wantState(t, nextSE(t, se), StateConnected)
	if _, _, err := c.Get(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(ce); s == "" || ce.Unwrap() != context.DeadlineExceeded {
		t.Fatalf("ConnectError %q unwraps to %v", s, ce.Unwrap())
	}
}

// TestSessionEventsQueue: concurrent readers of one stream get every
// event exactly once, each reader in order, and all of them io.EOF after
// the last; a cancelled wait returns the context's error.
func TestSessionEventsQueue(t *testing.T) {
	s := newSessionEvents()
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Next(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next on a cancelled context: %v", err)
	}
	const n = 20000
	var wg sync.WaitGroup
	seen := make([][]int64, 3)
	for r := range seen {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var ev Event
				var err error
				if r == 2 {
					var ok bool
					if ev, ok = s.TryNext(); !ok {
						if s.Ended() && s.Len() == 0 {
							return
						}
						runtime.Gosched()
						continue
					}
				} else if ev, err = s.Next(context.Background()); err == io.EOF {
					return
				} else if err != nil {
					t.Error(err)
					return
				}
				if ev.Type == EventNone {
					continue
				}
				seen[r] = append(seen[r], ev.Zxid)
			}
		}()
	}
	for i := int64(1); i <= n; i++ {
		s.push(Event{Type: EventNodeDataChanged, Zxid: i}, false)
	}
	s.push(Event{Type: EventNone, State: StateClosed}, true)
	s.push(Event{Type: EventNodeCreated, Zxid: n + 1}, false) // after the end: dropped
	wg.Wait()
	var all []int64
	for r, l := range seen {
		if !slices.IsSorted(l) {
			t.Errorf("reader %d saw events out of order", r)
		}
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) != n {
		t.Fatalf("%d events delivered, want %d", len(all), n)
	}
	for i, z := range all {
		if z != int64(i+1) {
			t.Fatalf("event %d delivered twice or never", i+1)
		}
	}
	if _, err := s.Next(context.Background()); err != io.EOF {
		t.Fatalf("Next after the end: %v", err)
	}
}
