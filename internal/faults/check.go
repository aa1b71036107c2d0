package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/go-zookeeper/zk"
)

// RegisterModel is the porcupine model of the compare-and-set register.
var RegisterModel = porcupine.Model{
	Init:              func() any { return regState{} },
	Step:              regStep,
	Equal:             func(a, b any) bool { return a.(regState) == b.(regState) },
	DescribeOperation: describeReg,
	DescribeState: func(s any) string {
		st := s.(regState)
		return fmt.Sprintf("%d v%d", st.Value, st.Version)
	},
}

// CheckRegister checks a register history for linearizability.
func CheckRegister(ops []RegOp, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	hist := make([]porcupine.Operation, len(ops))
	for i, o := range ops {
		hist[i] = porcupine.Operation{ClientId: o.Client, Input: o.In, Output: o.Out, Call: o.Call, Return: o.Return}
	}
	return porcupine.CheckOperationsVerbose(RegisterModel, hist, timeout)
}

// VisualizeTo writes porcupine's HTML visualisation of the failed
// register check (if any) to file and returns the file name.
func (r *Report) VisualizeTo(dir string) (string, error) {
	info, ok := r.linInfo.(porcupine.LinearizationInfo)
	if !ok {
		return "", nil
	}
	f := filepath.Join(dir, "register-linearizability.html")
	fh, err := os.Create(f)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	return f, porcupine.Visualize(RegisterModel, info, fh)
}

func (w *Workloads) checkRegister(conn *zk.Conn, r *Report, timeout time.Duration) {
	clk := w.opts.Clock
	var final RegOp
	err := retry(func() error {
		call := clk.Now()
		if _, err := conn.Sync(w.p("reg")); err != nil {
			return err
		}
		data, st, err := conn.Get(w.p("reg"))
		if err != nil {
			return err
		}
		v, err := strconv.ParseInt(string(data), 10, 64)
		if err != nil {
			return err
		}
		final = RegOp{Client: 1000, In: RegInput{Kind: 'r'}, Out: RegOutput{Value: v, Version: st.Version, Result: 'o'},
			Call: call, Return: clk.Now()}
		return nil
	})
	if err != nil {
		r.Violations = append(r.Violations, fmt.Sprintf("register: final read: %v", err))
		return
	}
	w.mu.Lock()
	ops := append(append([]RegOp(nil), w.reg...), final)
	w.mu.Unlock()
	r.RegisterOps = len(ops)
	res, info := CheckRegister(ops, timeout)
	switch res {
	case porcupine.Illegal:
		r.linInfo = info
		r.Violations = append(r.Violations, fmt.Sprintf("register: history of %d operations (writes and sync-then-read, final value %d v%d) is not linearizable",
			len(ops), final.Out.Value, final.Out.Version))
	case porcupine.Unknown:
		r.Inconclusive = append(r.Inconclusive, fmt.Sprintf("register: porcupine gave up after %v on %d operations", timeout, len(ops)))
	}
	// The last acknowledged write must not be lost: covered by
	// linearizability with the final read, but said plainly too.
	var lastAck *RegOp
	for i := range ops {
		o := &ops[i]
		if o.In.Kind != 'r' && o.Out.Result == 'o' && (lastAck == nil || o.Out.Version > lastAck.Out.Version) {
			lastAck = o
		}
	}
	if lastAck != nil && final.Out.Version < lastAck.Out.Version {
		r.Violations = append(r.Violations, fmt.Sprintf("register: acknowledged write of %d at version %d lost: final version %d",
			lastAck.In.Value, lastAck.Out.Version, final.Out.Version))
	}
}

// checkSessionOrder: within one session, the register's mzxid and
// version as observed by reads and by the client's own acknowledged
// writes never go backwards (monotonic reads, read-your-writes), across
// reconnections to other members.
func (w *Workloads) checkSessionOrder(r *Report) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for client, obs := range w.obs {
		for i := 1; i < len(obs); i++ {
			a, b := obs[i-1], obs[i]
			if a.session != b.session {
				continue
			}
			if b.mzxid < a.mzxid || b.version < a.version {
				r.Violations = append(r.Violations, fmt.Sprintf(
					"session order: client %d session 0x%x saw %s (mzxid 0x%x v%d) at %v, then %s (mzxid 0x%x v%d) at %v",
					client, a.session, a.what, a.mzxid, a.version, time.Duration(a.at), b.what, b.mzxid, b.version, time.Duration(b.at)))
			}
		}
	}
}

// checkSequence: every acknowledged create is present with its own data;
// no request was applied twice; sequence numbers are unique, follow the
// zxid order, follow real time, and increase within a session.
func (w *Workloads) checkSequence(conn *zk.Conn, r *Report) {
	type node struct {
		name  string
		seq   int64
		czxid int64
		token string
	}
	var nodes []node
	err := retry(func() error {
		nodes = nodes[:0]
		if _, err := conn.Sync(w.p("seq")); err != nil {
			return err
		}
		kids, _, err := conn.Children(w.p("seq"))
		if err != nil {
			return err
		}
		for _, k := range kids {
			data, st, err := conn.Get(w.p("seq", k))
			if err != nil {
				return err
			}
			n, ok := seqNumber(k)
			if !ok {
				return fmt.Errorf("bad sequential name %q", k)
			}
			nodes = append(nodes, node{k, n, st.Czxid, string(data)})
		}
		return nil
	})
	if err != nil {
		r.Violations = append(r.Violations, fmt.Sprintf("sequence: final listing: %v", err))
		return
	}
	bad := func(f string, a ...any) { r.Violations = append(r.Violations, "sequence: "+fmt.Sprintf(f, a...)) }
	byToken := map[string]node{}
	for _, n := range nodes {
		if o, dup := byToken[n.token]; dup {
			bad("request %s applied twice: %s and %s", n.token, o.name, n.name)
		}
		byToken[n.token] = n
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].seq < nodes[j].seq })
	for i := 1; i < len(nodes); i++ {
		if nodes[i].czxid <= nodes[i-1].czxid {
			bad("%s (czxid 0x%x) sorts after %s (czxid 0x%x) but was created no later",
				nodes[i].name, nodes[i].czxid, nodes[i-1].name, nodes[i-1].czxid)
		}
	}
	w.mu.Lock()
	ops := append([]SeqOp(nil), w.seqs...)
	w.mu.Unlock()
	var acked []SeqOp
	for _, o := range ops {
		if o.Unknown {
			continue
		}
		n, ok := byToken[o.Token]
		switch {
		case !ok:
			bad("acknowledged create %s -> %s lost", o.Token, o.Name)
		case n.name != o.Name:
			bad("create %s was answered %s but stored as %s", o.Token, o.Name, n.name)
		}
		acked = append(acked, o)
	}
	// Real-time order: an acknowledged create that returned before
	// another was called has the smaller number.
	sort.Slice(acked, func(i, j int) bool { return acked[i].Return < acked[j].Return })
	var maxBefore int64 = -1
	var maxName string
	byCall := append([]SeqOp(nil), acked...)
	sort.Slice(byCall, func(i, j int) bool { return byCall[i].Call < byCall[j].Call })
	j := 0
	for _, o := range byCall {
		for j < len(acked) && acked[j].Return < o.Call {
			if n, _ := seqNumber(acked[j].Name); n > maxBefore {
				maxBefore, maxName = n, acked[j].Name
			}
			j++
		}
		if n, _ := seqNumber(o.Name); n <= maxBefore {
			bad("%s (%s) was called after %s returned but has a smaller number", o.Name, o.Token, maxName)
		}
	}
	// Within a session, numbers increase.
	last := map[int64]SeqOp{}
	for _, o := range ops {
		if o.Unknown {
			continue
		}
		if p, ok := last[o.Session]; ok {
			a, _ := seqNumber(p.Name)
			b, _ := seqNumber(o.Name)
			if b <= a {
				bad("session 0x%x created %s after %s", o.Session, o.Name, p.Name)
			}
		}
		last[o.Session] = o
	}
	r.Counts["seq.final"] = len(nodes)
}

// checkCounter: the final value counts every acknowledged increment and
// at most the unknown ones too; no two acknowledged increments wrote the
// same value (a lost update).
func (w *Workloads) checkCounter(conn *zk.Conn, r *Report) {
	var final int64
	err := retry(func() error {
		if _, err := conn.Sync(w.p("counter")); err != nil {
			return err
		}
		data, _, err := conn.Get(w.p("counter"))
		if err != nil {
			return err
		}
		final, err = strconv.ParseInt(string(data), 10, 64)
		return err
	})
	if err != nil {
		r.Violations = append(r.Violations, fmt.Sprintf("counter: final read: %v", err))
		return
	}
	w.mu.Lock()
	incs := append([]IncOp(nil), w.incs...)
	w.mu.Unlock()
	acked, unknown := int64(0), int64(0)
	seen := map[int64]IncOp{}
	for _, o := range incs {
		if o.Unknown {
			unknown++
			continue
		}
		acked++
		if p, dup := seen[o.New]; dup {
			r.Violations = append(r.Violations, fmt.Sprintf("counter: clients %d and %d both acknowledged incrementing to %d (lost update)", p.Client, o.Client, o.New))
		}
		seen[o.New] = o
		if o.New > final {
			r.Violations = append(r.Violations, fmt.Sprintf("counter: acknowledged increment to %d lost (final %d)", o.New, final))
		}
	}
	if final < acked || final > acked+unknown {
		r.Violations = append(r.Violations, fmt.Sprintf("counter: final %d, want between %d acknowledged and %d acknowledged+unknown", final, acked, acked+unknown))
	}
	r.Counts["counter.final"] = int(final)
}

// checkLocks: no two sessions held the lock at overlapping times, where a
// hold lasts from seeing one's node lowest to the earlier of releasing and
// losing the connection.
func (w *Workloads) checkLocks(r *Report) {
	w.mu.Lock()
	holds := append([]LockHold(nil), w.locks...)
	w.mu.Unlock()
	sort.Slice(holds, func(i, j int) bool { return holds[i].Start < holds[j].Start })
	for i := 1; i < len(holds); i++ {
		for k := i - 1; k >= 0 && k >= i-8; k-- {
			a, b := holds[k], holds[i]
			if a.Session != b.Session && b.Start < a.End {
				r.Violations = append(r.Violations, fmt.Sprintf(
					"lock: held by session 0x%x (client %d, %s) during [%v, %v] and by session 0x%x (client %d, %s) from %v",
					a.Session, a.Client, a.Node, time.Duration(a.Start), time.Duration(a.End), b.Session, b.Client, b.Node, time.Duration(b.Start)))
			}
		}
	}
	r.Counts["lock.holds"] = len(holds)
}

// Digest reads the workloads' final state from one member only (no
// sync): register, counter and the sequential ids. After the ensemble has
// caught up every member must give the same digest.
func (w *Workloads) Digest(addr string) (string, error) {
	conn, err := Connect([]string{addr}, w.opts.SessionTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	reg, rst, err := conn.Get(w.p("reg"))
	if err != nil {
		return "", err
	}
	ctr, _, err := conn.Get(w.p("counter"))
	if err != nil {
		return "", err
	}
	kids, sst, err := conn.Children(w.p("seq"))
	if err != nil {
		return "", err
	}
	sort.Strings(kids)
	last := ""
	if len(kids) > 0 {
		last = kids[len(kids)-1]
	}
	return fmt.Sprintf("reg=%s v%d mzxid=0x%x counter=%s seq=%d last=%s pzxid=0x%x",
		reg, rst.Version, rst.Mzxid, ctr, len(kids), last, sst.Pzxid), nil
}
