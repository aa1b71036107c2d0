package ensemble

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/faults"
	"github.com/paddockhq/paddock/internal/zkref"
)

// ackLog records every write of the amnesia test's writer: when it was
// issued, when it returned, and whether it was acknowledged.
type ackLog struct {
	mu   sync.Mutex
	ops  []ackedOp
	stop chan struct{}
	done chan struct{}
}

type ackedOp struct {
	path          string
	call, return_ time.Time
	ok            bool
}

// startWriter creates /amnesia/w-<n> one after the other through a client
// of every member until stopped.
func startWriter(t *testing.T, c *faults.Cluster) *ackLog {
	l := &ackLog{stop: make(chan struct{}), done: make(chan struct{})}
	cl := &faults.Client{ID: 1, Addrs: c.Addrs(), SessionTimeout: 10 * time.Second, OpTimeout: 4 * time.Second, Clock: faults.NewClock()}
	go func() {
		defer close(l.done)
		defer cl.Close()
		for n := 0; ; n++ {
			select {
			case <-l.stop:
				return
			default:
			}
			p := fmt.Sprintf("/amnesia/w-%06d", n)
			call := time.Now()
			_, err := cl.Do(func(conn *zk.Conn) error {
				_, err := conn.Create(p, []byte(p), 0, zk.WorldACL(zk.PermAll))
				return err
			})
			op := ackedOp{path: p, call: call, return_: time.Now(), ok: err == nil}
			l.mu.Lock()
			l.ops = append(l.ops, op)
			l.mu.Unlock()
			if err != nil {
				select {
				case <-l.stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	t.Cleanup(l.halt)
	return l
}

func (l *ackLog) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// acked returns the acknowledged writes.
func (l *ackLog) acked() []ackedOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ackedOp
	for _, o := range l.ops {
		if o.ok {
			out = append(out, o)
		}
	}
	return out
}

// ackedWithin returns writes issued after from and acknowledged before to:
// with only a refused member and one other up, there must be none.
func (l *ackLog) ackedWithin(from, to time.Time) []string {
	var out []string
	for _, o := range l.acked() {
		if o.call.After(from) && o.return_.Before(to) {
			out = append(out, o.path)
		}
	}
	return out
}

// waitAcks waits until n more writes than now have been acknowledged.
func (l *ackLog) waitAcks(t *testing.T, n int) {
	t.Helper()
	base := len(l.acked())
	if err := faults.WaitFor(recoverTimeout, fmt.Sprintf("%d more acknowledged writes", n), func() bool {
		return len(l.acked()) >= base+n
	}); err != nil {
		t.Fatal(err)
	}
}

var mntrRe = regexp.MustCompile(`(?m)^zk_(\S+)\t(.*)$`)

// mntr returns a member's mntr keys (without zk_).
func mntr(m *faults.Member) map[string]string {
	raw, err := zkref.FourLetter(m.ClientAddr, "mntr", 2*time.Second)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, mm := range mntrRe.FindAllStringSubmatch(raw, -1) {
		out[mm[1]] = mm[2]
	}
	return out
}

func mntrInt(m *faults.Member, key string) int {
	n, _ := strconv.Atoi(mntr(m)[key])
	return n
}

// waitRefusedVotes waits until the live others have no leader (a leader
// left alone with the refused member steps down within an election
// timeout, raft's CheckQuorum), then until the refused member has dropped
// n more vote requests, checking meanwhile that none of the others leads
// again: it cannot, the refused member being its only possible vote.
func waitRefusedVotes(t *testing.T, refused *faults.Member, n int, others ...*faults.Member) int {
	t.Helper()
	leading := func() int {
		for _, o := range others {
			if s, err := o.Srvr(); err == nil && s.Mode == "leader" {
				return o.ID
			}
		}
		return 0
	}
	if err := faults.WaitFor(recoverTimeout, "the lone leader to step down", func() bool { return leading() == 0 }); err != nil {
		t.Fatal(err)
	}
	base := mntrInt(refused, "admission_refused_votes")
	if err := faults.WaitFor(recoverTimeout, fmt.Sprintf("member %d to refuse %d more vote requests", refused.ID, n), func() bool {
		if id := leading(); id != 0 {
			t.Fatalf("member %d leads with only the refused member %d beside it", id, refused.ID)
		}
		return mntrInt(refused, "admission_refused_votes") >= base+n
	}); err != nil {
		t.Fatal(err)
	}
	return mntrInt(refused, "admission_refused_votes")
}

// TestWipedVoterRefusesUntilRebuilt is the amnesia hazard end to end, on
// real processes: kill -9 a follower, wipe its data directory, start it
// again with the same command line. It must not vote or acknowledge
// anything (it reports "refused"), so with it beside any one other member
// nothing is acknowledged and nobody is elected, and every write the
// cluster acknowledged survives the loss of another member. Started again
// with --join (as the operator starts members of a cluster holding data)
// it is still refused. Rebuilt the documented way (reconfig remove: it is
// admitted by itself; add back as an observer; promote once caught up) it
// is a voter that counts in a quorum again.
func TestWipedVoterRefusesUntilRebuilt(t *testing.T) {
	var mu sync.Mutex
	joinFor := map[int]bool{}
	c := faults.StartT(t, faults.Options{
		Voters:   3,
		Reconfig: true,
		Args: func(m *faults.Member, args []string) []string {
			mu.Lock()
			defer mu.Unlock()
			if joinFor[m.ID] {
				args = append(args, "--join")
			}
			return args
		},
	})
	leader, err := c.WaitLeader(recoverTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitServing(recoverTimeout); err != nil {
		t.Fatal(err)
	}
	write(t, c.Addrs(), "/amnesia", "")
	w := startWriter(t, c)
	w.waitAcks(t, 20)
	var f, g int
	for _, id := range c.Voters() {
		switch {
		case id == leader:
		case f == 0:
			f = id
		default:
			g = id
		}
	}
	F, G, L := c.Member(f), c.Member(g), c.Member(leader)
	t.Logf("leader %d; wiping follower %d; the other follower is %d", leader, f, g)

	// kill -9 f, wipe its data directory, start it with the same flags.
	if err := F.Restart(true); err != nil {
		t.Fatal(err)
	}
	if err := F.WaitMode(recoverTimeout, "refused"); err != nil {
		t.Fatal(err)
	}
	if m := mntr(F); m["server_state"] != "refused" {
		t.Fatalf("mntr of the refused member: %v", m)
	}
	if !strings.Contains(F.Tail(50), "refusing to vote") {
		t.Errorf("the refused member's log does not say why:\n%s", F.Tail(20))
	}
	w.waitAcks(t, 10) // the other two carry on

	// g dies: the leader has only f beside it. f drops its appends and,
	// once the leader steps down and campaigns, its vote requests.
	// Nothing issued from now until g is back may be acknowledged.
	if err := G.Kill(); err != nil {
		t.Fatal(err)
	}
	gDown := time.Now()
	votes := waitRefusedVotes(t, F, 3, L)
	appends := mntrInt(F, "admission_refused_appends")
	if appends == 0 {
		t.Errorf("the refused member counted no dropped appends")
	}
	gUp := time.Now()
	if err := G.StartIfDown(); err != nil {
		t.Fatal(err)
	}
	if bad := w.ackedWithin(gDown, gUp); len(bad) > 0 {
		t.Fatalf("writes acknowledged with only the leader and the refused member up: %v", bad)
	}
	w.waitAcks(t, 10)

	// Another member is lost: the leader of the moment. The survivor and
	// f cannot elect anyone (f does not vote), so no acknowledged write is
	// lost to an amnesiac quorum.
	l2 := waitLeaderAmong(t, L, G)
	survivor := c.Member(leader + g - l2) // the one of {leader, g} that is not l2
	if err := c.Member(l2).Kill(); err != nil {
		t.Fatal(err)
	}
	lDown := time.Now()
	votes = waitRefusedVotes(t, F, 3, survivor)
	lUp := time.Now()
	if err := c.Member(l2).StartIfDown(); err != nil {
		t.Fatal(err)
	}
	if bad := w.ackedWithin(lDown, lUp); len(bad) > 0 {
		t.Fatalf("writes acknowledged with only one member and the refused member up: %v", bad)
	}
	w.waitAcks(t, 10)

	// Restarted with --join (the operator's way once a cluster holds
	// data), it is refused all the same.
	mu.Lock()
	joinFor[f] = true
	mu.Unlock()
	if err := F.Restart(false); err != nil {
		t.Fatal(err)
	}
	if err := F.WaitMode(recoverTimeout, "refused"); err != nil {
		t.Fatal(err)
	}

	// The rebuild: remove it (it is then admitted by itself and waits as
	// a new member), add it back as an observer, promote it once caught
	// up (faults.Cluster.Rebuild).
	if err := c.Rebuild(f, recoverTimeout); err != nil {
		t.Fatal(err)
	}
	w.waitAcks(t, 5)
	last := w.acked()
	waitReadOn(t, F, last[len(last)-1].path)

	// It is a full voter: with one of the others down, it makes the quorum.
	l3, err := c.WaitLeader(recoverTimeout) // every member serves again, f included
	if err != nil {
		t.Fatal(err)
	}
	var down int
	for _, id := range c.Voters() {
		if id != l3 && id != f {
			down = id
		}
	}
	if err := c.Member(down).Kill(); err != nil {
		t.Fatal(err)
	}
	w.waitAcks(t, 10)
	if err := c.Member(down).StartIfDown(); err != nil {
		t.Fatal(err)
	}

	// Every acknowledged write is there.
	w.halt()
	acked := w.acked()
	conn, err := faults.Connect(c.Addrs(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Sync("/amnesia"); err != nil {
		t.Fatal(err)
	}
	children, _, err := conn.Children("/amnesia")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, ch := range children {
		have["/amnesia/"+ch] = true
	}
	var lost []string
	for _, o := range acked {
		if !have[o.path] {
			lost = append(lost, o.path)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost: %v", len(lost), len(acked), lost)
	}
	t.Logf("%d writes acknowledged, all present; the wiped member %d dropped %d appends while alone with the leader and %d vote requests in all before it was restarted with --join",
		len(acked), f, appends, votes)
}

// waitLeaderAmong waits until exactly one of ms leads and returns it.
func waitLeaderAmong(t *testing.T, ms ...*faults.Member) int {
	t.Helper()
	var leader int
	if err := faults.WaitFor(recoverTimeout, "a leader", func() bool {
		leader = 0
		for _, m := range ms {
			if s, err := m.Srvr(); err == nil && s.Mode == "leader" {
				if leader != 0 {
					return false
				}
				leader = m.ID
			}
		}
		return leader != 0
	}); err != nil {
		t.Fatal(err)
	}
	return leader
}

// waitReadOn waits until member m serves path (without sync: its own
// state).
func waitReadOn(t *testing.T, m *faults.Member, path string) {
	t.Helper()
	if err := faults.WaitFor(recoverTimeout, fmt.Sprintf("member %d to serve %s", m.ID, path), func() bool {
		conn, err := faults.Connect([]string{m.ClientAddr}, 6*time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		ok, _, err := conn.Exists(path)
		return err == nil && ok
	}); err != nil {
		t.Fatal(err)
	}
}
