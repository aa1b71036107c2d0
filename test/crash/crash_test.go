// Package crash kills a Paddock server with SIGKILL at random moments while
// clients write to it, restarts it on the same data directory, and checks
// that every write a client saw acknowledged survived, that nothing was
// invented, and that a live session's ephemeral node outlives the crash.
//
// The number of rounds and the seed come from -crash.rounds / -crash.seed
// (or PADDOCK_CRASH_ROUNDS / PADDOCK_CRASH_SEED); every failure prints the
// seed so it can be replayed.
package crash

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/testserver"
)

var (
	rounds = flag.Int("crash.rounds", envInt("PADDOCK_CRASH_ROUNDS", 6), "kill -9 rounds")
	seed   = flag.Uint64("crash.seed", uint64(envInt("PADDOCK_CRASH_SEED", 0)), "random seed (0 = from the clock)")
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}

var quiet = zk.WithLogger(log.New(io.Discard, "", 0))

func connect(t *testing.T, addr string, timeout time.Duration) (*zk.Conn, <-chan zk.Event) {
	t.Helper()
	c, ev, err := zk.Connect([]string{addr}, timeout, quiet)
	if err != nil {
		t.Fatal(err)
	}
	waitSession(t, ev, 20*time.Second)
	return c, ev
}

func waitSession(t *testing.T, ev <-chan zk.Event, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case e := <-ev:
			if e.State == zk.StateHasSession {
				return
			}
			if e.State == zk.StateExpired {
				t.Fatal("session expired")
			}
		case <-deadline:
			t.Fatal("no session")
		}
	}
}

// model is what the clients know: writes acknowledged, and writes sent but
// not answered (they may or may not have happened).
type model struct {
	mu       sync.Mutex
	acked    map[string]string // path -> data
	pending  map[string]string
	counters map[string][2]int // counter path -> [last acked value, last attempted value]
}

func TestKill9UnderLoad(t *testing.T) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d, %d rounds (replay with -crash.seed=%d)", s, *rounds, s)
	rng := rand.New(rand.NewPCG(s, 7))

	srv := testserver.Start(t, testserver.Options{})
	setup, _ := connect(t, srv.Addr, 10*time.Second)
	if _, err := setup.Create("/crash", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	setup.Close()

	m := &model{acked: map[string]string{}, pending: map[string]string{}, counters: map[string][2]int{}}
	// An ephemeral owned by a session that lives through every crash.
	keeper, keeperEv := connect(t, srv.Addr, 30*time.Second)
	defer keeper.Close()
	if _, err := keeper.Create("/crash-eph", []byte("alive"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	keeperSession := keeper.SessionID()

	for round := 0; round < *rounds; round++ {
		const writers = 8
		var wg sync.WaitGroup
		stop := make(chan struct{})
		conns := make([]*zk.Conn, writers)
		for w := range conns {
			conns[w], _ = connect(t, srv.Addr, 10*time.Second)
		}
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				write(conns[w], m, round, w, stop)
			}()
		}
		time.Sleep(time.Duration(50+rng.IntN(500)) * time.Millisecond)
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		close(stop)
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		if err := srv.Restart(); err != nil {
			t.Fatalf("seed %d round %d: restart: %v", s, round, err)
		}
		verify(t, srv.Addr, m, s, round)

		// The keeper's session resumes with its ephemeral intact.
		waitSession(t, keeperEv, 30*time.Second)
		if keeper.SessionID() != keeperSession {
			t.Fatalf("seed %d round %d: keeper got a new session", s, round)
		}
		_, st, err := keeper.Get("/crash-eph")
		if err != nil || st.EphemeralOwner != keeperSession {
			t.Fatalf("seed %d round %d: ephemeral after crash: %v %+v", s, round, err, st)
		}
	}
	m.mu.Lock()
	t.Logf("%d acknowledged writes survived %d kills", len(m.acked), *rounds)
	m.mu.Unlock()
}

// write creates nodes and bumps a counter until stopped or the server dies.
func write(c *zk.Conn, m *model, round, w int, stop chan struct{}) {
	ctr := fmt.Sprintf("/crash/ctr-%d", w)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		path := fmt.Sprintf("/crash/r%d-w%d-%d", round, w, i)
		data := fmt.Sprintf("v%d.%d.%d", round, w, i)
		m.mu.Lock()
		m.pending[path] = data
		m.mu.Unlock()
		_, err := c.Create(path, []byte(data), 0, zk.WorldACL(zk.PermAll))
		m.mu.Lock()
		if err == nil {
			m.acked[path] = data
			delete(m.pending, path)
		}
		m.mu.Unlock()
		if err != nil {
			return
		}

		m.mu.Lock()
		cv := m.counters[ctr]
		next := cv[1] + 1
		cv[1] = next
		m.counters[ctr] = cv
		m.mu.Unlock()
		var serr error
		if next == 1 {
			_, serr = c.Create(ctr, []byte("1"), 0, zk.WorldACL(zk.PermAll))
		} else {
			_, serr = c.Set(ctr, []byte(strconv.Itoa(next)), -1)
		}
		if serr != nil {
			return
		}
		m.mu.Lock()
		cv = m.counters[ctr]
		cv[0] = next
		m.counters[ctr] = cv
		m.mu.Unlock()
	}
}

// verify checks the restarted server against the model, then folds the
// round's unanswered writes into it: whatever the server now holds is what
// later rounds must keep.
func verify(t *testing.T, addr string, m *model, seed uint64, round int) {
	t.Helper()
	c, _ := connect(t, addr, 10*time.Second)
	defer c.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d round %d: %s", seed, round, fmt.Sprintf(format, args...))
	}
	children, _, err := c.Children("/crash")
	if err != nil {
		fail("children: %v", err)
	}
	present := map[string]bool{}
	for _, ch := range children {
		present["/crash/"+ch] = true
	}
	for p, want := range m.acked {
		if !present[p] {
			fail("acknowledged create %s lost", p)
		}
		data, _, err := c.Get(p)
		if err != nil || string(data) != want {
			fail("%s = %q, %v; want %q", p, data, err, want)
		}
	}
	for p := range present {
		if strings.HasPrefix(p, "/crash/ctr-") {
			continue
		}
		if _, ok := m.acked[p]; ok {
			continue
		}
		data, ok := m.pending[p]
		if !ok {
			fail("%s exists but was never written", p)
		}
		got, _, err := c.Get(p)
		if err != nil || string(got) != data {
			fail("unacknowledged %s has %q, %v; want %q", p, got, err, data)
		}
		m.acked[p] = data // it survived; from now on it must stay
	}
	for p := range m.pending {
		delete(m.pending, p)
	}
	for ctr, cv := range m.counters {
		data, _, err := c.Get(ctr)
		if errors.Is(err, zk.ErrNoNode) && cv[0] == 0 {
			m.counters[ctr] = [2]int{0, 0}
			continue
		}
		if err != nil {
			fail("counter %s: %v", ctr, err)
		}
		v, _ := strconv.Atoi(string(data))
		if v < cv[0] || v > cv[1] {
			fail("counter %s = %d, acknowledged %d, attempted %d", ctr, v, cv[0], cv[1])
		}
		m.counters[ctr] = [2]int{v, v}
	}
}
