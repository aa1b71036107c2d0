package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

// env is a server the core suite runs against.
type env struct {
	kind string // "paddock" or "zookeeper"
	addr string
	// restart restarts the server process keeping its data; nil when the
	// harness cannot.
	restart func() error
}

var pathSeq atomic.Int64

// unique returns a fresh top-level path for one test.
func unique(t *testing.T) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("/t%d_%s", pathSeq.Add(1), name)
}

func startPaddock(t *testing.T) env {
	t.Helper()
	opts := testserver.CompatOptions()
	opts.TickTime = 200 * time.Millisecond
	s := testserver.Start(t, opts)
	return env{kind: "paddock", addr: s.Addr, restart: s.Restart}
}

func startZooKeeper(t *testing.T) env {
	t.Helper()
	s := zkref.Start(t, zkref.Options{TickTime: 200 * time.Millisecond})
	return env{kind: "zookeeper", addr: s.Addr}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// connect returns a client for the test, closed at cleanup.
func connect(t *testing.T, addr string, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithSessionTimeout(4 * time.Second)}, opts...)
	if os.Getenv("ZK_CLIENT_DEBUG") != "" {
		opts = append(opts, WithLogger(testLogger(t)))
	}
	c, err := Connect(ctxT(t), []string{addr}, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// created, stat2 and watcher2 unpack results, failing the test on error.
func created(t *testing.T) func(string, *Stat, error) string {
	return func(p string, _ *Stat, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func stat2(t *testing.T) func(*Stat, error) *Stat {
	return func(st *Stat, err error) *Stat {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}

func watcher2(t *testing.T) func(*Watcher, error) *Watcher {
	return func(w *Watcher, err error) *Watcher {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// recv waits for one event on ch.
func recv(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed without an event")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event within 20s")
	}
	return Event{}
}

// recvNode waits for the next event on ch that is not a session event.
func recvNode(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	for {
		ev := recv(t, ch)
		if ev.Type != EventNone {
			return ev
		}
	}
}

func noEvent(t *testing.T, ch <-chan Event, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected event %v", ev)
		}
	case <-time.After(d):
	}
}

func wantEvent(t *testing.T, ev Event, typ EventType, path string) {
	t.Helper()
	if ev.Type != typ || ev.Path != path {
		t.Fatalf("got event %v (%+v), want %v %s", ev, ev, typ, path)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
