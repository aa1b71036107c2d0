package client

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// stateLog records state changes for a test.
type stateLog struct{ ch chan State }

func newStateLog() *stateLog { return &stateLog{ch: make(chan State, 64)} }

func (s *stateLog) cb(st State) { s.ch <- st }

// await waits for state want, failing on a terminal state first.
func (s *stateLog) await(t *testing.T, want State, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case st := <-s.ch:
			if st == want {
				return
			}
			if st.Terminal() {
				t.Fatalf("state %v while waiting for %v", st, want)
			}
		case <-deadline:
			t.Fatalf("no %v state within %v", want, within)
		}
	}
}

var reconnectTests = []struct {
	name string
	f    func(t *testing.T, e env)
}{
	{"ReplayAfterDisconnect", testReplayAfterDisconnect},
	{"SetWatchesBatches", testSetWatchesBatches},
	{"ReadTimeout", testReadTimeout},
	{"AuthFailed", testAuthFailed},
	{"AuthReplayed", testAuthReplayed},
	{"SessionEvents", testSessionEventsReconnect},
}

func TestReconnectPaddock(t *testing.T) {
	e := startPaddock(t)
	for _, tc := range reconnectTests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, e) })
	}
}

func TestReconnectZooKeeper(t *testing.T) {
	e := startZooKeeper(t)
	for _, tc := range reconnectTests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, e) })
	}
}

// testReplayAfterDisconnect: the connection drops, another client changes
// watched nodes, and when the client reconnects it resumes its session
// and receives the events it missed through the SetWatches replay.
func testReplayAfterDisconnect(t *testing.T, e env) {
	ctx := ctxT(t)
	link := proxied(t, e.addr)
	states := newStateLog()
	c := connect(t, link.Addr, WithStateCallback(states.cb))
	states.await(t, StateConnected, time.Second)
	w := connect(t, e.addr)
	base := unique(t)
	created(t)(w.Create(ctx, base, nil, ModePersistent, nil))
	for _, n := range []string{"data", "kids", "deleted", "p"} {
		created(t)(w.Create(ctx, base+"/"+n, nil, ModePersistent, nil))
	}
	created(t)(c.Create(ctx, base+"/eph", nil, ModeEphemeral, nil))
	_, _, dataCh := must3(t)(c.GetW(ctx, base+"/data"))
	_, _, createdCh := must3(t)(existsW3(c.ExistsW(ctx, base+"/created")))
	_, _, kidsCh := must3(t)(c.ChildrenW(ctx, base+"/kids"))
	_, _, deletedCh := must3(t)(c.GetW(ctx, base+"/deleted"))
	_, _, quietCh := must3(t)(existsW3(c.ExistsW(ctx, base+"/quiet")))
	pw := watcher2(t)(c.AddWatch(ctx, base+"/p", WatchPersistent))
	session := c.SessionID()

	link.Set(linkDown)
	states.await(t, StateDisconnected, 5*time.Second)
	start := time.Now()
	_, _, err := c.Get(ctx, base)
	wantErr(t, err, ErrConnectionLoss)
	if time.Since(start) > time.Second {
		t.Fatalf("a call while disconnected took %v; it should fail fast", time.Since(start))
	}
	stat2(t)(w.Set(ctx, base+"/data", []byte("new"), AnyVersion))
	created(t)(w.Create(ctx, base+"/created", nil, ModePersistent, nil))
	created(t)(w.Create(ctx, base+"/kids/x", nil, ModePersistent, nil))
	if err := w.Delete(ctx, base+"/deleted", AnyVersion); err != nil {
		t.Fatal(err)
	}
	stat2(t)(w.Set(ctx, base+"/p", []byte("missed"), AnyVersion)) // persistent watches are not replayed

	link.Set(linkUp)
	states.await(t, StateConnected, 10*time.Second)
	if c.SessionID() != session {
		t.Fatalf("session 0x%x after reconnect, want 0x%x", c.SessionID(), session)
	}
	wantEvent(t, recv(t, dataCh), EventNodeDataChanged, base+"/data")
	wantEvent(t, recv(t, createdCh), EventNodeCreated, base+"/created")
	wantEvent(t, recv(t, kidsCh), EventNodeChildrenChanged, base+"/kids")
	wantEvent(t, recv(t, deletedCh), EventNodeDeleted, base+"/deleted")
	noEvent(t, quietCh, 100*time.Millisecond)
	pe := pw.Events()
	if ev := recv(t, pe); ev.Type != EventNone || ev.State != StateDisconnected {
		t.Fatalf("persistent watcher: %+v, want None/Disconnected", ev)
	}
	if ev := recv(t, pe); ev.Type != EventNone || ev.State != StateConnected {
		t.Fatalf("persistent watcher: %+v, want None/Connected", ev)
	}
	// Re-armed: the next change fires both the quiet and the persistent
	// watch.
	created(t)(w.Create(ctx, base+"/quiet", nil, ModePersistent, nil))
	wantEvent(t, recv(t, quietCh), EventNodeCreated, base+"/quiet")
	stat2(t)(w.Set(ctx, base+"/p", []byte("seen"), AnyVersion))
	wantEvent(t, recv(t, pe), EventNodeDataChanged, base+"/p")
	if ok, _, err := w.Exists(ctx, base+"/eph"); err != nil || !ok {
		t.Fatalf("ephemeral lost across the reconnect: %v %v", ok, err)
	}
}

// testSetWatchesBatches re-arms more than 128 KB of watched paths, which
// must be split over several SetWatches packets.
func testSetWatchesBatches(t *testing.T, e env) {
	ctx := ctxT(t)
	link := proxied(t, e.addr)
	states := newStateLog()
	c := connect(t, link.Addr, WithStateCallback(states.cb))
	states.await(t, StateConnected, time.Second)
	w := connect(t, e.addr)
	base := unique(t)
	created(t)(w.Create(ctx, base, nil, ModePersistent, nil))
	long := strings.Repeat("x", 400)
	const n = 400 // 400 paths of ~440 bytes: ~170 KB
	chans := make([]<-chan Event, n)
	for i := range n {
		_, _, ch := must3(t)(existsW3(c.ExistsW(ctx, fmt.Sprintf("%s/%s-%03d", base, long, i))))
		chans[i] = ch
	}
	link.Set(linkDown)
	states.await(t, StateDisconnected, 5*time.Second)
	link.Set(linkUp)
	states.await(t, StateConnected, 10*time.Second)
	for _, i := range []int{0, n / 2, n - 1} {
		p := fmt.Sprintf("%s/%s-%03d", base, long, i)
		created(t)(w.Create(ctx, p, nil, ModePersistent, nil))
		wantEvent(t, recv(t, chans[i]), EventNodeCreated, p)
	}
	if _, _, err := c.Get(ctx, base); err != nil {
		t.Fatalf("connection unusable after batched SetWatches: %v", err)
	}
}

// testReadTimeout: a server that goes silent (the network drops packets)
// is detected within 2/3 of the session timeout, and the client comes
// back once the network does, its session intact.
func testReadTimeout(t *testing.T, e env) {
	ctx := ctxT(t)
	link := proxied(t, e.addr)
	states := newStateLog()
	c := connect(t, link.Addr, WithStateCallback(states.cb), WithSessionTimeout(3*time.Second))
	states.await(t, StateConnected, time.Second)
	session := c.SessionID()
	// Idle longer than T/3: pings keep the session.
	time.Sleep(1500 * time.Millisecond)
	if _, _, err := c.Get(ctx, "/"); err != nil {
		t.Fatal(err)
	}
	link.Set(linkBlackhole)
	start := time.Now()
	states.await(t, StateDisconnected, 5*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("silence detected after %v, want about 2s", d)
	}
	link.Set(linkUp)
	states.await(t, StateConnected, 10*time.Second)
	if c.SessionID() != session {
		t.Fatal("session changed")
	}
}

func testAuthFailed(t *testing.T, e env) {
	ctx := ctxT(t)
	states := newStateLog()
	c, err := Connect(ctx, []string{e.addr}, WithAuth("nosuchscheme", []byte("x")), WithStateCallback(states.cb))
	if err == nil {
		defer c.Close()
		states.await(t, StateAuthFailed, 5*time.Second)
		_, _, err = c.Get(ctx, "/")
	}
	wantErr(t, err, ErrAuthFailed)
}

// testAuthReplayed: credentials added with AddAuth are sent again after a
// reconnect.
func testAuthReplayed(t *testing.T, e env) {
	ctx := ctxT(t)
	link := proxied(t, e.addr)
	states := newStateLog()
	c := connect(t, link.Addr, WithStateCallback(states.cb))
	states.await(t, StateConnected, time.Second)
	if err := c.AddAuth(ctx, "digest", []byte("bob:pw")); err != nil {
		t.Fatal(err)
	}
	base := unique(t)
	created(t)(c.Create(ctx, base, []byte("x"), ModePersistent, DigestACL(PermAll, "bob", "pw")))
	link.Set(linkDown)
	states.await(t, StateDisconnected, 5*time.Second)
	link.Set(linkUp)
	states.await(t, StateConnected, 10*time.Second)
	var err error
	for range 50 { // the first call may race the reconnect's auth reply
		if _, _, err = c.Get(ctx, base); !errors.Is(err, ErrConnectionLoss) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
}

// TestServerRestart: the only server restarts; the client reconnects to
// it and resumes its session, its ephemeral node and its watches intact.
func TestServerRestart(t *testing.T) {
	e := startPaddock(t)
	ctx := ctxT(t)
	states := newStateLog()
	c := connect(t, e.addr, WithStateCallback(states.cb), WithSessionTimeout(10*time.Second))
	states.await(t, StateConnected, time.Second)
	base := unique(t)
	created(t)(c.Create(ctx, base, nil, ModeEphemeral, nil))
	_, _, ch := must3(t)(c.GetW(ctx, base))
	session := c.SessionID()
	if err := e.restart(); err != nil {
		t.Fatal(err)
	}
	states.await(t, StateDisconnected, 10*time.Second)
	states.await(t, StateConnected, 20*time.Second)
	if c.SessionID() != session {
		t.Fatalf("session 0x%x after restart, want 0x%x", c.SessionID(), session)
	}
	if ok, _, err := c.Exists(ctx, base); err != nil || !ok {
		t.Fatalf("ephemeral after restart: %v %v", ok, err)
	}
	w := connect(t, e.addr)
	stat2(t)(w.Set(ctx, base, []byte("after"), AnyVersion))
	wantEvent(t, recv(t, ch), EventNodeDataChanged, base)
}

// TestMultipleServers: a client given a list with dead entries finds the
// live server.
func TestMultipleServers(t *testing.T) {
	e := startPaddock(t)
	ctx := ctxT(t)
	c, err := Connect(ctx, []string{"127.0.0.1:1", "127.0.0.1:2," + e.addr}, WithoutShuffle())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Server() != e.addr {
		t.Fatalf("connected to %q", c.Server())
	}
}
