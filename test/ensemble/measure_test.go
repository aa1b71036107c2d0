package ensemble

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/faults"
	"github.com/paddockhq/paddock/internal/zkref"
)

// Measurements for docs/PERFORMANCE.md, run with -ens.measure (and best
// with PADDOCK_RACE=0, so that Paddock is not slowed by the race
// detector):
//
//	PADDOCK_RACE=0 go test ./test/ensemble -run 'Failover|CatchUp' -v -ens.measure
//
// Each prints RESULT lines.

const failoverTrials = 5

func needMeasure(t *testing.T) {
	if !*flagMeasure {
		t.Skip("measurement: run with -ens.measure")
	}
}

// failover kills the leader and returns the time from SIGKILL to the
// first acknowledged setData through a session connected to the
// surviving members (the client is already connected to a survivor, so
// the figure is the ensemble's, not the client's reconnection).
func failover(t *testing.T, survivors []string, kill func() error, elected func() bool) (time.Duration, time.Duration) {
	t.Helper()
	conn, err := faults.Connect(survivors, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 10 { // warm up: the session and the path exist
		if _, err := conn.Create("/failover", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			t.Fatalf("warm-up %d: %v", i, err)
		}
		if _, err := conn.Set("/failover", []byte("warm"), -1); err != nil {
			t.Fatalf("warm-up %d: %v", i, err)
		}
	}
	start := time.Now()
	if err := kill(); err != nil {
		t.Fatal(err)
	}
	electedc := make(chan time.Duration, 1)
	go func() { // when a survivor first reports Mode: leader
		for time.Since(start) < 5*time.Minute {
			if elected() {
				electedc <- time.Since(start)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		electedc <- 0
	}()
	for {
		_, err := conn.Set("/failover", []byte("after"), -1)
		if err == nil {
			d := time.Since(start)
			return d, <-electedc
		}
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("no write 5 minutes after the leader's kill: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func summarize(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(time.Millisecond).String())
	}
	return fmt.Sprintf("median %v (min %v, max %v; trials %s)", s[len(s)/2].Round(time.Millisecond),
		s[0].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), strings.Join(parts, " "))
}

func TestFailoverPaddock(t *testing.T) {
	needMeasure(t)
	c := faults.StartT(t, faults.Options{Voters: 3})
	var ds, es []time.Duration
	for trial := range failoverTrials {
		leader, err := c.WaitLeader(recoverTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WaitCaughtUp(recoverTimeout); err != nil {
			t.Fatal(err)
		}
		var survivors []string
		for _, m := range c.Members {
			if m.ID != leader {
				survivors = append(survivors, m.ClientAddr)
			}
		}
		d, e := failover(t, survivors, c.Member(leader).Kill, func() bool {
			l := c.Leader()
			return l != 0 && l != leader
		})
		t.Logf("trial %d: leader %d killed, new leader reported after %v, first write after %v", trial, leader, e, d)
		ds = append(ds, d)
		es = append(es, e)
		if err := c.Member(leader).StartIfDown(); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitServing(recoverTimeout); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("RESULT failover paddock 3 members (defaults): first write %s", summarize(ds))
	t.Logf("RESULT election paddock 3 members (defaults): new leader in srvr %s", summarize(es))
}

func TestFailoverApache(t *testing.T) {
	needMeasure(t)
	zkref.Require(t)
	var ds, es []time.Duration
	for trial := range failoverTrials {
		e := zkref.StartEnsemble(t, 3)
		leader := -1
		err := faults.WaitFor(recoverTimeout, "an Apache leader", func() bool {
			for i, s := range e.Servers {
				if m, err := s.Mode(); err == nil && m == "leader" {
					leader = i
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
		var survivors []string
		for i, s := range e.Servers {
			if i != leader {
				survivors = append(survivors, s.Addr)
			}
		}
		d, el := failover(t, survivors, e.Servers[leader].Kill, func() bool {
			for i, s := range e.Servers {
				if m, err := s.Mode(); i != leader && err == nil && m == "leader" {
					return true
				}
			}
			return false
		})
		t.Logf("trial %d: apache leader %d killed, new leader reported after %v, first write after %v", trial, leader+1, el, d)
		ds = append(ds, d)
		es = append(es, el)
		e.Stop()
	}
	t.Logf("RESULT failover apache-zookeeper-3.8 3 members (tickTime 2000, initLimit 10, syncLimit 5): first write %s", summarize(ds))
	t.Logf("RESULT election apache-zookeeper-3.8 3 members: new leader in srvr %s", summarize(es))
}

// TestCatchUpPaddock kills a follower, writes -ens.writes creates (100-byte
// payloads) through the others, restarts it with its data kept and times
// until its srvr zxid equals the leader's.
func TestCatchUpPaddock(t *testing.T) {
	needMeasure(t)
	c := faults.StartT(t, faults.Options{Voters: 3})
	leader, err := c.WaitLeader(recoverTimeout)
	if err != nil {
		t.Fatal(err)
	}
	lag := 1
	if lag == leader {
		lag = 2
	}
	if err := c.Member(lag).Kill(); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, m := range c.Members {
		if m.ID != lag {
			addrs = append(addrs, m.ClientAddr)
		}
	}
	n := *flagWrites
	const workers = 64
	conns := make([]*zk.Conn, 4)
	for i := range conns {
		if conns[i], err = faults.Connect(addrs, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	if _, err := conns[0].Create("/catchup", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("x", 100))
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	wstart := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conns[w%len(conns)]
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				for {
					_, err := conn.Create(fmt.Sprintf("/catchup/n%07d", i), payload, 0, zk.WorldACL(zk.PermAll))
					if err == nil || err == zk.ErrNodeExists {
						break
					}
					if failed.Add(1) > 1000 {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 1000 {
		t.Fatal("too many failed writes")
	}
	wdur := time.Since(wstart)
	t.Logf("%d creates in %v (%.0f/s) with member %d down", n, wdur.Round(time.Millisecond), float64(n)/wdur.Seconds(), lag)
	ls, err := c.Member(leader).Srvr()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Member(lag).StartIfDown(); err != nil {
		t.Fatal(err)
	}
	var serving time.Duration
	err = faults.WaitFor(10*time.Minute, "the restarted member to catch up", func() bool {
		s, err := c.Member(lag).Srvr()
		if err == nil && serving == 0 && s.Mode == "follower" {
			serving = time.Since(start)
		}
		return err == nil && s.Zxid >= ls.Zxid
	})
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("RESULT catch-up paddock: member restarted after %d writes reached the leader's zxid 0x%x in %v (process start to zxid match; follower mode after %v)",
		n, ls.Zxid, d.Round(time.Millisecond), serving.Round(time.Millisecond))
}
