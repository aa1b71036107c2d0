package ensemble

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/faults"
)

// write creates or sets path through a fresh session to addrs, retrying
// until it succeeds (the ensemble may be electing).
func write(t *testing.T, addrs []string, path, data string) {
	t.Helper()
	err := faults.WaitFor(recoverTimeout, "write "+path, func() bool {
		conn, err := faults.Connect(addrs, 6*time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		_, err = conn.Create(path, []byte(data), 0, zk.WorldACL(zk.PermAll))
		if err == zk.ErrNodeExists {
			_, err = conn.Set(path, []byte(data), -1)
		}
		return err == nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readFrom reads path from one member only, without sync.
func readFrom(t *testing.T, addr, path string) string {
	t.Helper()
	conn, err := faults.Connect([]string{addr}, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, _, err := conn.Get(path)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(data)
}

// waitReadEverywhere waits until every up member serves path with data.
func waitReadEverywhere(t *testing.T, c *faults.Cluster, path, data string) {
	t.Helper()
	for _, m := range c.Members {
		if !m.Up() {
			continue
		}
		err := faults.WaitFor(recoverTimeout, fmt.Sprintf("member %d to serve %s=%s", m.ID, path, data), func() bool {
			conn, err := faults.Connect([]string{m.ClientAddr}, 6*time.Second)
			if err != nil {
				return false
			}
			defer conn.Close()
			got, _, err := conn.Get(path)
			return err == nil && string(got) == data
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestEnsembleBasics walks a 3-member ensemble through each fault once:
// leader kill and restart, leader isolation (reset and blackhole), a
// paused follower, and checks that each member serves the latest write.
func TestEnsembleBasics(t *testing.T) {
	c := faults.StartT(t, faults.Options{Voters: 3})
	leader, err := c.WaitLeader(recoverTimeout)
	if err != nil {
		t.Fatal(err)
	}
	modes := c.Modes()
	t.Logf("leader %d, modes %v", leader, modes)
	for id, mode := range modes {
		if id != leader && mode != "follower" {
			t.Fatalf("member %d mode %q", id, mode)
		}
	}
	all := c.Addrs()
	write(t, all, "/basics", "v1")
	waitReadEverywhere(t, c, "/basics", "v1")

	// kill -9 the leader: the others elect a new one and take writes.
	if err := c.Member(leader).Kill(); err != nil {
		t.Fatal(err)
	}
	write(t, all, "/basics", "v2")
	l2, err := c.WaitLeader(recoverTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if l2 == leader {
		t.Fatalf("dead member %d still leader", leader)
	}
	// Restart it with its data: it catches up.
	if err := c.Member(leader).StartIfDown(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(recoverTimeout); err != nil {
		t.Fatal(err)
	}
	waitReadEverywhere(t, c, "/basics", "v2")

	// Isolate the leader (connections reset): a new leader among the
	// other two; the old one stops being leader; heal, it rejoins.
	for _, mode := range []faults.LinkState{faults.LinkDown, faults.LinkBlackhole} {
		l, err := c.WaitLeader(recoverTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.Isolate(mode, l)
		var others []string
		for _, m := range c.Members {
			if m.ID != l {
				others = append(others, m.ClientAddr)
			}
		}
		data := "v3-" + mode.String()
		write(t, others, "/basics", data)
		err = faults.WaitFor(recoverTimeout, "a new leader on the majority side", func() bool {
			for id, mode := range c.Modes() {
				if id != l && mode == "leader" {
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Heal()
		if _, err := c.WaitLeader(recoverTimeout); err != nil {
			t.Fatal(err)
		}
		waitReadEverywhere(t, c, "/basics", data)
	}

	// Pause a follower: writes continue; resume: it catches up.
	l, _ := c.WaitLeader(recoverTimeout)
	f := 1
	if f == l {
		f = 2
	}
	if err := c.Member(f).Pause(); err != nil {
		t.Fatal(err)
	}
	write(t, all, "/basics", "v4")
	if err := c.Member(f).Resume(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(recoverTimeout); err != nil {
		t.Fatal(err)
	}
	waitReadEverywhere(t, c, "/basics", "v4")
	if err := c.WaitCaughtUp(recoverTimeout); err != nil {
		t.Fatal(err)
	}
}

// TestSingleMember runs the workloads on a one-voter "ensemble" started
// with the ensemble flags (a standalone server is a one-voter group).
func TestSingleMember(t *testing.T) {
	c := faults.StartT(t, faults.Options{Voters: 1})
	if _, err := c.WaitLeader(recoverTimeout); err != nil {
		t.Fatal(err)
	}
	write(t, c.Addrs(), "/single", "x")
	if got := readFrom(t, c.Members[0].ClientAddr, "/single"); got != "x" {
		t.Fatalf("read %q", got)
	}
}

// TestWipedFollower restarts a follower with an empty data directory: it
// must not serve an empty tree nor take part; it stays up and says it is
// refused, and the other two carry on (TestWipedVoterRefusesUntilRebuilt
// goes on to what it must not do and to its rebuild).
func TestWipedFollower(t *testing.T) {
	c := faults.StartT(t, faults.Options{Voters: 3})
	leader, err := c.WaitLeader(recoverTimeout)
	if err != nil {
		t.Fatal(err)
	}
	write(t, c.Addrs(), "/wiped", "before")
	waitReadEverywhere(t, c, "/wiped", "before")
	f := 1
	if f == leader {
		f = 2
	}
	m := c.Member(f)
	if err := m.Restart(true); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitMode(recoverTimeout, "refused"); err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, o := range c.Members {
		if o.ID != f {
			others = append(others, o.ClientAddr)
		}
	}
	write(t, others, "/wiped", "after")
}

// TestObserver runs 3 voters and 1 observer: the observer reports its
// mode, forwards writes and serves reads, and a partition of the observer
// does not cost the voters their quorum.
func TestObserver(t *testing.T) {
	c := faults.StartT(t, faults.Options{Voters: 3, Observers: 1})
	if _, err := c.WaitLeader(recoverTimeout); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(recoverTimeout); err != nil {
		t.Fatal(err)
	}
	obs := c.Member(4)
	if s, err := obs.Srvr(); err != nil || s.Mode != "observer" {
		t.Fatalf("member 4: %+v %v", s, err)
	}
	write(t, []string{obs.ClientAddr}, "/observed", "v1")
	waitReadEverywhere(t, c, "/observed", "v1")
	c.Isolate(faults.LinkDown, 4)
	write(t, c.Addrs()[:3], "/observed", "v2")
	c.Heal()
	waitReadEverywhere(t, c, "/observed", "v2")
}
