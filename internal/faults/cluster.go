// Package faults runs a Paddock ensemble as separate `paddock server`
// processes on loopback and injects faults into it: kill -9, pause and
// resume (SIGSTOP/SIGCONT), restart with the data directory kept or
// wiped, and network partitions of any shape.
//
// Partitions are made with a TCP proxy in front of every member's peer
// port ([Door]): --peers (and --observers) name, for every member j, the
// address of j's door, which forwards to j's real --peer-addr. The door
// tells which member dialled from the peer handshake and applies the
// state of the directed [Link] from that member to j. Raft messages from i
// to j travel only on connections i dials, so cutting the links i→j and
// j→i separates the pair completely, while client ports stay reachable (a
// partitioned member still has its clients, as in a real network split
// between servers).
//
// Every process is started by this package and signalled only by its own
// PID. Nothing here asserts on time: waits take generous deadlines and
// return an error when they pass.
package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/proc"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

// Options configures an ensemble.
type Options struct {
	// Voters is the number of voting members (ids 1..Voters); 0 means 3.
	Voters int
	// Observers is the number of non-voting members (ids after the
	// voters), passed with --observers.
	Observers int
	// Dir holds one directory per member (data/ and server.log). Required.
	Dir string
	// ClusterID is --cluster-id; empty means "paddock-test".
	ClusterID string
	// TickTime is --tick-time; 0 leaves the server's default.
	TickTime time.Duration
	// ExtraArgs are appended to every member's command line.
	ExtraArgs []string
	// Reconfig starts the members with --reconfig-enabled and the super
	// digest of SuperPassword, for [Cluster.Reconfig] and
	// [Cluster.Rebuild].
	Reconfig bool
	// Binary is the paddock binary; empty means testserver.Binary().
	Binary string
	// Logf, if set, receives one line per fault injected and process
	// started, for the test log.
	Logf func(format string, args ...any)
	// EtcdAPI gives every member an etcd v3 API listener (--etcd-listen
	// on [Member.EtcdAddr]), allocated with the member's other ports so
	// that no proxy or door bound in between can take it.
	EtcdAPI bool
	// Args, if set, rewrites a member's command line (tests of this
	// package use it to run standalone servers).
	Args func(m *Member, args []string) []string
}

// Member is one server of the ensemble.
type Member struct {
	ID       int
	Observer bool
	// ClientAddr is --addr, PeerAddr is --peer-addr (the real listener,
	// behind the proxies).
	ClientAddr, PeerAddr string
	// EtcdAddr is --etcd-listen when Options.EtcdAPI is set, else empty;
	// it is kept across restarts.
	EtcdAddr string
	// Dir holds DataDir and LogFile.
	Dir, DataDir, LogFile string

	c *Cluster

	p      proc.Proc
	mu     sync.Mutex
	paused bool // guarded by mu
}

// Cluster is a running ensemble and its peer-link proxies.
type Cluster struct {
	Members []*Member // index i holds id i+1
	opts    Options
	bin     string
	links   map[[2]int]*Link
	doors   map[int]*Door
}

// Start starts every member of a new ensemble; it does not wait for a
// leader (see [Cluster.WaitServing]). On error everything started is
// stopped.
func Start(opts Options) (*Cluster, error) {
	if opts.Voters == 0 {
		opts.Voters = 3
	}
	if opts.Dir == "" {
		return nil, errors.New("faults: Options.Dir is required")
	}
	if opts.ClusterID == "" {
		opts.ClusterID = "paddock-test"
	}
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = testserver.Binary(); err != nil {
			return nil, err
		}
	}
	n := opts.Voters + opts.Observers
	// Client, peer, door and etcd ports all come from one allocation so
	// they are distinct: a door bound to an ephemeral port once took a
	// member's client port, which FreePorts had released a moment before
	// (and a member's etcd port, allocated apart, was once found taken
	// when the member restarted).
	ports, err := zkref.FreePorts(4 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, bin: bin, links: map[[2]int]*Link{}, doors: map[int]*Door{}}
	for i := range n {
		id := i + 1
		dir := filepath.Join(opts.Dir, fmt.Sprintf("m%d", id))
		m := &Member{
			ID: id, Observer: id > opts.Voters,
			ClientAddr: fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			PeerAddr:   fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			Dir:        dir, DataDir: filepath.Join(dir, "data"), LogFile: filepath.Join(dir, "server.log"),
			c: c,
		}
		if opts.EtcdAPI {
			m.EtcdAddr = fmt.Sprintf("127.0.0.1:%d", ports[3*n+i])
		}
		c.Members = append(c.Members, m)
	}
	for i, b := range c.Members {
		to := b.ID
		d, err := NewDoor(to, fmt.Sprintf("127.0.0.1:%d", ports[2*n+i]), b.PeerAddr, func(from int) *Link { return c.links[[2]int{from, to}] })
		if err != nil {
			c.Close()
			return nil, err
		}
		c.doors[to] = d
		for _, a := range c.Members {
			if a != b {
				c.links[[2]int{a.ID, to}] = &Link{From: a.ID, To: to, door: d}
			}
		}
	}
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// ErrNoEnsemble is returned by [Supported] when the paddock binary has no
// ensemble flags yet.
var ErrNoEnsemble = errors.New("faults: paddock server has no --peers flag (no ensemble support in this build)")

// Supported reports whether the paddock binary (built by testserver) can
// run an ensemble: nil if `paddock server --help` mentions --peers.
func Supported() error {
	bin, err := testserver.Binary()
	if err != nil {
		return err
	}
	out, _ := exec.Command(bin, "server", "--help").CombinedOutput()
	if !strings.Contains(string(out), "-peers") || !strings.Contains(string(out), "-server-id") {
		return ErrNoEnsemble
	}
	return nil
}

// StartT is Start for a test: the ensemble lives in t.TempDir() unless
// opts.Dir is set, is closed by t.Cleanup, and on failure the tail of
// every member's log is written to the test log. A missing cmd/paddock
// skips the test.
func StartT(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	if err := Supported(); errors.Is(err, testserver.ErrNoSource) || errors.Is(err, ErrNoEnsemble) {
		t.Skip(err)
	}
	c, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("%s", c.Tails(30))
			if dir, err := c.KeepLogs(); err == nil {
				t.Logf("faults: member logs kept in %s", dir)
			}
		}
	})
	return c
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf("faults: "+format, args...)
	}
}

// Member returns the member with the given id.
func (c *Cluster) Member(id int) *Member { return c.Members[id-1] }

// Voters returns the ids of the voting members.
func (c *Cluster) Voters() []int {
	var ids []int
	for _, m := range c.Members {
		if !m.Observer {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// IDs returns every member's id.
func (c *Cluster) IDs() []int {
	ids := make([]int, len(c.Members))
	for i, m := range c.Members {
		ids[i] = m.ID
	}
	return ids
}

// Addrs returns every member's client address, in id order.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Members))
	for i, m := range c.Members {
		addrs[i] = m.ClientAddr
	}
	return addrs
}

// ConnectString is Addrs joined by commas.
func (c *Cluster) ConnectString() string { return strings.Join(c.Addrs(), ",") }

// Link returns the link from member from to member to.
func (c *Cluster) Link(from, to int) *Link { return c.links[[2]int{from, to}] }

// Args returns member m's command line (without the binary).
func (m *Member) Args() []string {
	c := m.c
	peerList := func(observers bool) string {
		var parts []string
		for _, o := range c.Members {
			if o.Observer != observers {
				continue
			}
			parts = append(parts, fmt.Sprintf("%d=%s", o.ID, c.doors[o.ID].Addr))
		}
		return strings.Join(parts, ",")
	}
	args := []string{"server",
		"--server-id", strconv.Itoa(m.ID),
		"--addr", m.ClientAddr,
		"--peer-addr", m.PeerAddr,
		"--peers", peerList(false),
	}
	if c.opts.Observers > 0 {
		args = append(args, "--observers", peerList(true))
	}
	args = append(args, "--cluster-id", c.opts.ClusterID, "--data-dir", m.DataDir,
		"--4lw-whitelist", "*")
	if c.opts.TickTime > 0 {
		args = append(args, "--tick-time", strconv.FormatInt(c.opts.TickTime.Milliseconds(), 10))
	}
	if c.opts.Reconfig {
		args = append(args, "--reconfig-enabled", "--super-digest", SuperDigest)
	}
	if m.EtcdAddr != "" {
		args = append(args, "--etcd-listen", m.EtcdAddr)
	}
	args = append(args, c.opts.ExtraArgs...)
	if c.opts.Args != nil {
		args = c.opts.Args(m, args)
	}
	return args
}

func (m *Member) start() error {
	if err := os.MkdirAll(m.DataDir, 0o755); err != nil {
		return err
	}
	if err := m.p.Start(m.LogFile, m.c.bin, m.Args()); err != nil {
		return fmt.Errorf("faults: member %d: %w", m.ID, err)
	}
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
	m.c.logf("member %d started, pid %d", m.ID, m.p.PID())
	return nil
}

// PID returns the current process id (0 if never started).
func (m *Member) PID() int { return m.p.PID() }

// Running reports whether the process is alive (paused counts as alive).
func (m *Member) Running() bool { return m.p.Running() }

// Paused reports whether the process is stopped with SIGSTOP.
func (m *Member) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused
}

// ExitError returns how the last process exited (nil while running).
func (m *Member) ExitError() error { return m.p.ExitError() }

// Up reports whether the member runs and is not paused.
func (m *Member) Up() bool { return m.Running() && !m.Paused() }

func (m *Member) signal(sig syscall.Signal) error { return m.p.Signal(sig) }

func (m *Member) wait(d time.Duration) bool { return m.p.Wait(d) }

// Kill sends SIGKILL and waits for the process to exit.
func (m *Member) Kill() error {
	if !m.Running() {
		return nil
	}
	m.c.logf("kill -9 member %d (pid %d)", m.ID, m.PID())
	if err := m.signal(syscall.SIGKILL); err != nil {
		return err
	}
	if !m.wait(30 * time.Second) {
		return fmt.Errorf("faults: member %d (pid %d) still alive 30s after SIGKILL", m.ID, m.PID())
	}
	return nil
}

// Stop sends SIGTERM (resuming a paused process first) and waits; after
// 20s it kills.
func (m *Member) Stop() error {
	if !m.Running() {
		return nil
	}
	m.c.logf("stop member %d (pid %d)", m.ID, m.PID())
	if err := m.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if m.Paused() {
		m.Resume()
	}
	if m.wait(20 * time.Second) {
		return nil
	}
	return m.Kill()
}

// Pause sends SIGSTOP.
func (m *Member) Pause() error {
	if !m.Running() || m.Paused() {
		return nil
	}
	m.c.logf("pause member %d (pid %d)", m.ID, m.PID())
	if err := m.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	m.mu.Lock()
	m.paused = true
	m.mu.Unlock()
	return nil
}

// Resume sends SIGCONT.
func (m *Member) Resume() error {
	if !m.Paused() {
		return nil
	}
	m.c.logf("resume member %d (pid %d)", m.ID, m.PID())
	if err := m.signal(syscall.SIGCONT); err != nil {
		return err
	}
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
	return nil
}

// Restart kills the process if it runs and starts it again with the same
// addresses; with wipe the data directory is emptied first.
func (m *Member) Restart(wipe bool) error {
	if err := m.Kill(); err != nil {
		return err
	}
	if wipe {
		m.c.logf("wipe data dir of member %d", m.ID)
		if err := os.RemoveAll(m.DataDir); err != nil {
			return err
		}
	}
	return m.start()
}

// StartIfDown starts the member if its process is not running (data kept).
func (m *Member) StartIfDown() error {
	if m.Running() {
		return nil
	}
	return m.start()
}

// Starts reports how many times the member's process has been started.
func (m *Member) Starts() int { return m.p.Starts() }

// Srvr is a member's answer to the `srvr` four-letter word.
type Srvr struct {
	Mode string // leader, follower, observer, standalone, or "" if none
	Zxid int64  // -1 if absent
	Raw  string
}

var (
	modeRe = regexp.MustCompile(`(?m)^Mode:\s*(\S+)`)
	zxidRe = regexp.MustCompile(`(?m)^Zxid:\s*(0x[0-9a-fA-F]+|\d+)`)
)

// ParseSrvr extracts the mode and zxid from a `srvr` reply.
func ParseSrvr(raw string) Srvr {
	s := Srvr{Zxid: -1, Raw: raw}
	if mm := modeRe.FindStringSubmatch(raw); mm != nil {
		s.Mode = mm[1]
	}
	if mm := zxidRe.FindStringSubmatch(raw); mm != nil {
		if v, err := strconv.ParseInt(mm[1], 0, 64); err == nil {
			s.Zxid = v
		}
	}
	return s
}

// Srvr asks the member for `srvr`. A paused or dead member is not asked.
func (m *Member) Srvr() (Srvr, error) {
	if !m.Up() {
		return Srvr{Zxid: -1}, fmt.Errorf("member %d is down", m.ID)
	}
	raw, err := zkref.FourLetter(m.ClientAddr, "srvr", 2*time.Second)
	if err != nil {
		return Srvr{Zxid: -1}, err
	}
	return ParseSrvr(raw), nil
}

// Serving reports whether the member answers srvr with a serving mode.
func (m *Member) Serving() bool {
	s, err := m.Srvr()
	return err == nil && servingMode(s.Mode)
}

func servingMode(mode string) bool {
	switch mode {
	case "leader", "follower", "observer", "standalone":
		return true
	}
	return false
}

// Modes asks every live member for its mode; members that do not answer
// are absent from the map.
func (c *Cluster) Modes() map[int]string {
	out := map[int]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := m.Srvr(); err == nil {
				mu.Lock()
				out[m.ID] = s.Mode
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// Leader returns the id of a member that reports Mode: leader, or 0. A
// deposed leader cut off from the others may still say leader for a
// while; with several claimants the one in the largest connected group
// is not known here, so the lowest id is returned and Leaders lists all.
func (c *Cluster) Leader() int {
	l := c.Leaders()
	if len(l) == 0 {
		return 0
	}
	return l[0]
}

// Leaders returns every member that currently reports Mode: leader.
func (c *Cluster) Leaders() []int {
	var ids []int
	for id, mode := range c.Modes() {
		if mode == "leader" || mode == "standalone" {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

// WaitFor polls cond every 100ms until it returns true or timeout passes.
func WaitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("faults: gave up after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitLeader waits until exactly one member reports leader and every
// voter that is up reports leader or follower; it returns the leader.
func (c *Cluster) WaitLeader(timeout time.Duration) (int, error) {
	var leader int
	err := WaitFor(timeout, "one leader", func() bool {
		modes := c.Modes()
		leader = 0
		for _, m := range c.Members {
			if !m.Up() {
				continue
			}
			mode := modes[m.ID]
			switch {
			case mode == "leader" || mode == "standalone":
				if leader != 0 {
					return false
				}
				leader = m.ID
			case !servingMode(mode):
				return false
			}
		}
		return leader != 0
	})
	if err != nil {
		return 0, fmt.Errorf("%w (modes %v)", err, c.Modes())
	}
	return leader, nil
}

// WaitServing waits until each listed member (all if none) runs and
// reports a serving mode.
func (c *Cluster) WaitServing(timeout time.Duration, ids ...int) error {
	if len(ids) == 0 {
		ids = c.IDs()
	}
	err := WaitFor(timeout, fmt.Sprintf("members %v serving", ids), func() bool {
		for _, id := range ids {
			if !c.Member(id).Serving() {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w (modes %v, exited %v)", err, c.Modes(), c.exited())
	}
	return nil
}

func (c *Cluster) exited() map[int]string {
	out := map[int]string{}
	for _, m := range c.Members {
		if !m.Running() && m.PID() != 0 {
			out[m.ID] = fmt.Sprint(m.ExitError())
		}
	}
	return out
}

// WaitCaughtUp waits until every up member reports the same zxid as the
// leader (with no writes in flight this is "all members applied
// everything").
func (c *Cluster) WaitCaughtUp(timeout time.Duration) error {
	return WaitFor(timeout, "members caught up", func() bool {
		var z int64 = -2
		for _, m := range c.Members {
			if !m.Up() {
				continue
			}
			s, err := m.Srvr()
			if err != nil || s.Zxid < 0 {
				return false
			}
			if z != -2 && s.Zxid != z {
				return false
			}
			z = s.Zxid
		}
		return true
	})
}

// Partition cuts every link between members in different groups, in
// both directions, with the given state (LinkDown or LinkBlackhole).
// Members in no group keep all their links. Earlier cuts stay.
func (c *Cluster) Partition(state LinkState, groups ...[]int) {
	c.logf("partition %v (%s)", groups, state)
	group := map[int]int{}
	for g, ids := range groups {
		for _, id := range ids {
			group[id] = g + 1
		}
	}
	for k, l := range c.links {
		ga, gb := group[k[0]], group[k[1]]
		if ga != 0 && gb != 0 && ga != gb {
			l.Set(state)
		}
	}
}

// Isolate cuts member id off from every other member.
func (c *Cluster) Isolate(state LinkState, id int) {
	var rest []int
	for _, m := range c.Members {
		if m.ID != id {
			rest = append(rest, m.ID)
		}
	}
	c.Partition(state, []int{id}, rest)
}

// Heal restores every link.
func (c *Cluster) Heal() {
	c.logf("heal all links")
	for _, l := range c.links {
		l.Set(LinkUp)
	}
}

// HealAll heals the network, resumes paused members and starts dead ones
// (data kept).
func (c *Cluster) HealAll() error {
	c.Heal()
	for _, m := range c.Members {
		if err := m.Resume(); err != nil {
			return err
		}
		if err := m.StartIfDown(); err != nil {
			return err
		}
	}
	return nil
}

// Cut reports the links that are not up, as "i->j" strings.
func (c *Cluster) Cut() []string {
	var out []string
	for k, l := range c.links {
		if l.State() != LinkUp {
			out = append(out, fmt.Sprintf("%d->%d", k[0], k[1]))
		}
	}
	sort.Strings(out)
	return out
}

// Close kills every member process and closes the proxies.
func (c *Cluster) Close() {
	for _, m := range c.Members {
		if m.Running() {
			m.signal(syscall.SIGKILL)
			m.signal(syscall.SIGCONT)
			m.wait(30 * time.Second)
		}
	}
	for _, d := range c.doors {
		d.Close()
	}
}

// Tail returns the last n lines of the member's log.
func (m *Member) Tail(n int) string { return proc.TailFile(m.LogFile, n) }

// Tails returns the last n lines of every member's log, labelled.
func (c *Cluster) Tails(n int) string {
	var b strings.Builder
	for _, m := range c.Members {
		fmt.Fprintf(&b, "---- member %d (%s) last %d lines of %s\n%s\n", m.ID, m.ClientAddr, n, m.LogFile, m.Tail(n))
	}
	return b.String()
}

// KeepLogs copies every member's log to a new directory under the system
// temporary directory (which outlives the test) and returns it.
func (c *Cluster) KeepLogs() (string, error) {
	dir, err := os.MkdirTemp("", "paddock-ensemble-logs-")
	if err != nil {
		return "", err
	}
	for _, m := range c.Members {
		if b, err := os.ReadFile(m.LogFile); err == nil {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("member%d.log", m.ID)), b, 0o644)
		}
	}
	return dir, nil
}
