package faults

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// WorkloadOptions configures the four workloads run against an ensemble.
type WorkloadOptions struct {
	// Addrs are the members' client addresses (every client gets all).
	Addrs []string
	// Root is the znode under which everything is created; it must not
	// exist yet.
	Root string
	// Clients per workload. Zero values get 3, 2, 2 and 3.
	RegisterClients, SequenceClients, CounterClients, LockClients int
	// SessionTimeout for every client; 0 means 6s.
	SessionTimeout time.Duration
	// OpTimeout abandons an operation (outcome unknown); 0 means 15s.
	OpTimeout time.Duration
	// Seed drives the clients' choices.
	Seed uint64
	// Clock is the shared time base; nil makes one.
	Clock *Clock
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// Workloads runs, against one ensemble, a compare-and-set register (with
// plain reads and sync-then-read), sequential unique ids, a counter and
// ephemeral-sequential locks, recording every operation for the checks.
type Workloads struct {
	opts WorkloadOptions
	acl  []zk.ACL

	mu       sync.Mutex
	reg      []RegOp
	seqs     []SeqOp
	incs     []IncOp
	locks    []LockHold
	obs      map[int][]observation // register client -> what it saw, in order
	clients  []*Client
	counts   map[string]int
	failures []string
}

// RegInput is a register operation: 'r' sync-then-read, 'c' setData with
// the expected version, 'w' setData with version -1.
type RegInput struct {
	Kind    byte
	Value   int64
	Version int32
}

// RegOutput is a register result: Result 'o' ok, 'b' bad version, 'u'
// unknown (the write may or may not have happened).
type RegOutput struct {
	Value   int64
	Version int32
	Result  byte
}

// RegOp is one recorded register operation; Return is MaxInt64 when the
// outcome is unknown.
type RegOp struct {
	Client       int
	In           RegInput
	Out          RegOutput
	Call, Return int64
}

// SeqOp is one create of a persistent-sequential node.
type SeqOp struct {
	Client       int
	Session      int64
	Token        string
	Name         string
	Unknown      bool
	Call, Return int64
}

// IncOp is one compare-and-set increment of the counter.
type IncOp struct {
	Client  int
	New     int64 // value written (acknowledged increments only)
	Unknown bool
}

// LockHold is one time a client held the lock: from the moment it saw
// its node lowest to the earlier of the start of its release and the
// first sign that its session was lost.
type LockHold struct {
	Client     int
	Session    int64
	Node       string
	Start, End int64
}

type observation struct {
	session int64
	mzxid   int64
	version int32
	what    string
	at      int64
}

func (o *WorkloadOptions) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.RegisterClients, 3)
	def(&o.SequenceClients, 2)
	def(&o.CounterClients, 2)
	def(&o.LockClients, 3)
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 6 * time.Second
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 15 * time.Second
	}
	if o.Clock == nil {
		o.Clock = NewClock()
	}
}

// NewWorkloads prepares the workloads; call Setup, then Run, then Check.
func NewWorkloads(opts WorkloadOptions) *Workloads {
	opts.defaults()
	return &Workloads{opts: opts, acl: zk.WorldACL(zk.PermAll), obs: map[int][]observation{},
		counts: map[string]int{}}
}

func (w *Workloads) logf(format string, args ...any) {
	if w.opts.Logf != nil {
		w.opts.Logf(format, args...)
	}
}

func (w *Workloads) p(parts ...string) string {
	return path.Join(append([]string{w.opts.Root}, parts...)...)
}

func (w *Workloads) count(name string) {
	w.mu.Lock()
	w.counts[name]++
	w.mu.Unlock()
}

func (w *Workloads) fail(format string, args ...any) {
	w.mu.Lock()
	w.failures = append(w.failures, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

// Setup creates the root and the workloads' nodes, retrying for up to
// two minutes (the ensemble may still be electing).
func (w *Workloads) Setup() error {
	nodes := []struct{ path, data string }{
		{w.opts.Root, ""}, {w.p("reg"), "0"}, {w.p("seq"), ""}, {w.p("counter"), "0"}, {w.p("locks"), ""},
	}
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		conn, err := Connect(w.opts.Addrs, w.opts.SessionTimeout)
		if err != nil {
			last = err
			continue
		}
		ok := true
		for _, n := range nodes {
			_, err := conn.Create(n.path, []byte(n.data), 0, w.acl)
			if err != nil && !errors.Is(err, zk.ErrNodeExists) {
				last, ok = err, false
				break
			}
		}
		conn.Close()
		if ok {
			// A retried create that did apply, then reported
			// NodeExists, has the same data: the initial state is known.
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("faults: workload setup: %w", last)
}

func (w *Workloads) newClient(id int) *Client {
	c := &Client{ID: id, Addrs: w.opts.Addrs, SessionTimeout: w.opts.SessionTimeout,
		OpTimeout: w.opts.OpTimeout, Clock: w.opts.Clock}
	w.mu.Lock()
	w.clients = append(w.clients, c)
	w.mu.Unlock()
	return c
}

// Run runs every workload's clients until ctx is done, then closes them.
func (w *Workloads) Run(ctx context.Context) {
	var wg sync.WaitGroup
	id := 0
	spawn := func(n int, f func(ctx context.Context, c *Client, rng *rand.Rand)) {
		for range n {
			c := w.newClient(id)
			rng := rand.New(rand.NewPCG(w.opts.Seed, uint64(id)))
			id++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				f(ctx, c, rng)
			}()
		}
	}
	spawn(w.opts.RegisterClients, w.runRegister)
	spawn(w.opts.SequenceClients, w.runSequence)
	spawn(w.opts.CounterClients, w.runCounter)
	spawn(w.opts.LockClients, w.runLocks)
	wg.Wait()
}

// pause sleeps briefly between operations (so histories stay checkable)
// and reports whether ctx is still live.
func pause(ctx context.Context, rng *rand.Rand) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Duration(5+rng.IntN(20)) * time.Millisecond):
		return true
	}
}

// backoff waits after an error.
func backoff(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(200 * time.Millisecond):
		return true
	}
}

// ---------------------------------------------------------------------------
// Register

func (w *Workloads) observe(client int, o observation) {
	w.mu.Lock()
	w.obs[client] = append(w.obs[client], o)
	w.mu.Unlock()
}

func (w *Workloads) recordReg(op RegOp) {
	w.mu.Lock()
	w.reg = append(w.reg, op)
	w.mu.Unlock()
}

func (w *Workloads) runRegister(ctx context.Context, c *Client, rng *rand.Rand) {
	regPath := w.p("reg")
	var seen int32 = 0 // last version this client saw
	k := int64(0)
	for pause(ctx, rng) {
		clk := w.opts.Clock
		switch r := rng.IntN(10); {
		case r < 2: // plain read: session order only
			var data []byte
			var st *zk.Stat
			session, err := c.Do(func(conn *zk.Conn) (e error) { data, st, e = conn.Get(regPath); return })
			if err != nil {
				w.count("reg.read.err")
				backoff(ctx)
				continue
			}
			seen = st.Version
			w.observe(c.ID, observation{session, st.Mzxid, st.Version, "read " + string(data), clk.Now()})
			w.count("reg.read")
		case r < 6: // sync, then read
			var data []byte
			var st *zk.Stat
			call := clk.Now()
			session, err := c.Do(func(conn *zk.Conn) (e error) {
				if _, e = conn.Sync(regPath); e != nil {
					return e
				}
				data, st, e = conn.Get(regPath)
				return
			})
			ret := clk.Now()
			if err != nil {
				w.count("reg.sread.err")
				backoff(ctx)
				continue
			}
			v, perr := strconv.ParseInt(string(data), 10, 64)
			if perr != nil {
				w.fail("register: read %q: %v", data, perr)
				continue
			}
			seen = st.Version
			w.recordReg(RegOp{Client: c.ID, In: RegInput{Kind: 'r'}, Out: RegOutput{Value: v, Version: st.Version, Result: 'o'}, Call: call, Return: ret})
			w.observe(c.ID, observation{session, st.Mzxid, st.Version, "sync+read " + string(data), ret})
			w.count("reg.sread")
		default: // write: CAS on the last seen version, or blind
			k++
			val := int64(c.ID+1)*1_000_000_000 + k
			in := RegInput{Kind: 'c', Value: val, Version: seen}
			if r == 9 {
				in = RegInput{Kind: 'w', Value: val, Version: -1}
			}
			var st *zk.Stat
			call := clk.Now()
			session, err := c.Do(func(conn *zk.Conn) (e error) {
				st, e = conn.Set(regPath, []byte(strconv.FormatInt(val, 10)), in.Version)
				return
			})
			ret := clk.Now()
			op := RegOp{Client: c.ID, In: in, Call: call, Return: ret}
			switch {
			case err == nil:
				op.Out = RegOutput{Value: val, Version: st.Version, Result: 'o'}
				seen = st.Version
				w.observe(c.ID, observation{session, st.Mzxid, st.Version, fmt.Sprintf("set %d", val), ret})
				w.count("reg.write.ok")
			case errors.Is(err, zk.ErrBadVersion):
				op.Out = RegOutput{Result: 'b'}
				w.count("reg.write.badversion")
			case Unknown(err):
				op.Out = RegOutput{Result: 'u'}
				op.Return = math.MaxInt64
				w.count("reg.write.unknown")
			default:
				w.fail("register: set: unexpected %v", err)
				continue
			}
			w.recordReg(op)
			if err != nil && Unknown(err) {
				backoff(ctx)
			}
		}
	}
}

// RegisterModel is the porcupine model of the register: state is
// (value, version); reads must see both; a conditional set succeeds
// exactly when the version matches and bumps it by one.
type regState struct {
	Value   int64
	Version int32
}

func regStep(state, input, output any) (bool, any) {
	st, in, out := state.(regState), input.(RegInput), output.(RegOutput)
	switch in.Kind {
	case 'r':
		return out.Value == st.Value && out.Version == st.Version, st
	case 'c', 'w':
		match := in.Kind == 'w' || in.Version == st.Version
		next := regState{Value: in.Value, Version: st.Version + 1}
		switch out.Result {
		case 'u':
			if match {
				return true, next
			}
			return true, st
		case 'b':
			return !match, st
		default:
			return match && out.Version == next.Version, next
		}
	}
	return false, st
}

func describeReg(input, output any) string {
	in, out := input.(RegInput), output.(RegOutput)
	switch in.Kind {
	case 'r':
		return fmt.Sprintf("sync+get -> %d v%d", out.Value, out.Version)
	case 'c':
		return fmt.Sprintf("set(%d, v%d) -> %c v%d", in.Value, in.Version, out.Result, out.Version)
	default:
		return fmt.Sprintf("set(%d, -1) -> %c v%d", in.Value, out.Result, out.Version)
	}
}

// ---------------------------------------------------------------------------
// Sequential ids

func (w *Workloads) runSequence(ctx context.Context, c *Client, rng *rand.Rand) {
	k := 0
	for pause(ctx, rng) {
		k++
		token := fmt.Sprintf("c%d-%d", c.ID, k)
		var name string
		call := w.opts.Clock.Now()
		session, err := c.Do(func(conn *zk.Conn) (e error) {
			name, e = conn.Create(w.p("seq", "n-"), []byte(token), zk.FlagSequence, w.acl)
			return
		})
		ret := w.opts.Clock.Now()
		op := SeqOp{Client: c.ID, Session: session, Token: token, Name: path.Base(name), Call: call, Return: ret}
		switch {
		case err == nil:
			w.count("seq.ok")
		case Unknown(err):
			op.Unknown, op.Return = true, math.MaxInt64
			w.count("seq.unknown")
		default:
			w.fail("sequence: create: unexpected %v", err)
			continue
		}
		w.mu.Lock()
		w.seqs = append(w.seqs, op)
		w.mu.Unlock()
		if err != nil {
			backoff(ctx)
		}
	}
}

// seqNumber parses the 10-digit suffix of a sequential node's name.
func seqNumber(name string) (int64, bool) {
	if len(name) < 10 {
		return 0, false
	}
	n, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
	return n, err == nil
}

// ---------------------------------------------------------------------------
// Counter

func (w *Workloads) runCounter(ctx context.Context, c *Client, rng *rand.Rand) {
	p := w.p("counter")
	for pause(ctx, rng) {
		var data []byte
		var st *zk.Stat
		if _, err := c.Do(func(conn *zk.Conn) (e error) { data, st, e = conn.Get(p); return }); err != nil {
			backoff(ctx)
			continue
		}
		v, perr := strconv.ParseInt(string(data), 10, 64)
		if perr != nil {
			w.fail("counter: read %q: %v", data, perr)
			continue
		}
		_, err := c.Do(func(conn *zk.Conn) error {
			_, e := conn.Set(p, []byte(strconv.FormatInt(v+1, 10)), st.Version)
			return e
		})
		switch {
		case err == nil:
			w.mu.Lock()
			w.incs = append(w.incs, IncOp{Client: c.ID, New: v + 1})
			w.mu.Unlock()
			w.count("counter.ok")
		case errors.Is(err, zk.ErrBadVersion):
			w.count("counter.retry")
		case Unknown(err):
			w.mu.Lock()
			w.incs = append(w.incs, IncOp{Client: c.ID, New: v + 1, Unknown: true})
			w.mu.Unlock()
			w.count("counter.unknown")
			backoff(ctx)
		default:
			w.fail("counter: set: unexpected %v", err)
		}
	}
}

// ---------------------------------------------------------------------------
// Locks

func (w *Workloads) runLocks(ctx context.Context, c *Client, rng *rand.Rand) {
	dir := w.p("locks")
	k := 0
	// giveUp drops the session (its ephemeral goes with it) after an
	// error that leaves our node's fate unknown.
	giveUp := func() {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		if conn != nil {
			c.drop(conn)
		}
		backoff(ctx)
	}
	for pause(ctx, rng) {
		k++
		var name string
		session, err := c.Do(func(conn *zk.Conn) (e error) {
			name, e = conn.Create(dir+"/l-", []byte(fmt.Sprintf("c%d-%d", c.ID, k)), zk.FlagEphemeralSequential, w.acl)
			return
		})
		if err != nil {
			w.count("lock.create.err")
			giveUp()
			continue
		}
		mine := path.Base(name)
		acquired := false
		for !acquired && ctx.Err() == nil {
			since := w.opts.Clock.Now()
			var kids []string
			s2, err := c.Do(func(conn *zk.Conn) (e error) { kids, _, e = conn.Children(dir); return })
			if err != nil || s2 != session {
				break
			}
			sort.Strings(kids) // one prefix, 10-digit suffixes: lexical = numeric
			idx := sort.SearchStrings(kids, mine)
			if idx == len(kids) || kids[idx] != mine {
				// Our node is gone: the session expired under us.
				w.count("lock.node.lost")
				break
			}
			if idx == 0 {
				start := w.opts.Clock.Now()
				hold := &LockHold{Client: c.ID, Session: session, Node: mine, Start: start, End: -1}
				var hmu sync.Mutex
				c.mu.Lock()
				lostSince := c.lostAt >= since
				c.mu.Unlock()
				if lostSince || !c.WatchLoss(func(at int64) {
					hmu.Lock()
					if hold.End < 0 {
						hold.End = at
					}
					hmu.Unlock()
				}) {
					w.count("lock.acquired.suspect")
					break
				}
				acquired = true
				w.count("lock.acquired")
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(20+rng.IntN(150)) * time.Millisecond):
				}
				rel := w.opts.Clock.Now()
				hmu.Lock()
				if hold.End < 0 || hold.End > rel {
					hold.End = rel
				}
				h := *hold
				hmu.Unlock()
				w.mu.Lock()
				w.locks = append(w.locks, h)
				w.mu.Unlock()
				break
			}
			// Wait for the predecessor to go. The recipe sets an exists
			// watch; this polls instead, because go-zookeeper v1.0.4 has
			// a data race (recvLoop vs sendSetWatches on lastZxid,
			// go-zookeeper/zk PR #35) that fires under -race whenever a
			// session with watches reconnects. Watches are covered by the
			// differential test.
			pred := dir + "/" + kids[idx-1]
			for ctx.Err() == nil {
				var ok bool
				if _, err := c.Do(func(conn *zk.Conn) (e error) { ok, _, e = conn.Exists(pred); return }); err != nil || !ok {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		// Release (or abandon) our node.
		if _, err := c.Do(func(conn *zk.Conn) error { return conn.Delete(name, -1) }); err != nil &&
			!errors.Is(err, zk.ErrNoNode) {
			giveUp()
		}
	}
}

// ---------------------------------------------------------------------------
// Checks

// Report is the outcome of [Workloads.Check].
type Report struct {
	// Violations are consistency failures; empty means the run passed.
	Violations []string
	// Inconclusive notes checks that could not decide (porcupine timed
	// out); they are not failures.
	Inconclusive []string
	// Counts are per-outcome operation counts.
	Counts map[string]int
	// RegisterOps is the size of the register history checked.
	RegisterOps int
	// Linearization, when the register check failed, is porcupine's
	// info for porcupine.Visualize.
	linInfo any
}

// OK reports whether no violation was found.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

func (r *Report) String() string {
	var b strings.Builder
	keys := make([]string, 0, len(r.Counts))
	for k := range r.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, r.Counts[k])
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "\n  VIOLATION: %s", v)
	}
	for _, v := range r.Inconclusive {
		fmt.Fprintf(&b, "\n  inconclusive: %s", v)
	}
	return b.String()
}

// Check reads the final state through a fresh session (after sync) and
// checks every history. Call it after the faults are healed and Run has
// returned. checkTimeout bounds porcupine.
func (w *Workloads) Check(checkTimeout time.Duration) *Report {
	r := &Report{Counts: map[string]int{}}
	w.mu.Lock()
	for k, v := range w.counts {
		r.Counts[k] = v
	}
	r.Violations = append(r.Violations, w.failures...)
	w.mu.Unlock()
	conn, err := Connect(w.opts.Addrs, w.opts.SessionTimeout)
	if err != nil {
		r.Violations = append(r.Violations, fmt.Sprintf("final session: %v", err))
		return r
	}
	defer conn.Close()
	w.checkRegister(conn, r, checkTimeout)
	w.checkSessionOrder(r)
	w.checkSequence(conn, r)
	w.checkCounter(conn, r)
	w.checkLocks(r)
	return r
}

// retry runs f until it succeeds, for up to a minute (the final reads
// happen after heal, but a member may still be catching up).
func retry(f func() error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
