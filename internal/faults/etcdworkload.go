package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdWorkloadOptions configures the etcd workload.
type EtcdWorkloadOptions struct {
	// Endpoints are the members' etcd client URLs; every KV client gets
	// them all (clientv3 balances and fails over between them).
	Endpoints []string
	// Prefix is where the keys live (Prefix + "k0" ...).
	Prefix string
	// Clients doing KV operations; 0 means 4.
	Clients int
	// OpTimeout abandons an operation (outcome unknown for writes); 0
	// means 3s.
	OpTimeout time.Duration
	// Seed drives the clients' choices.
	Seed uint64
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
	// Serializable makes Get and Range serializable (served by whichever
	// member answers, without the linearizable barrier): reads may then
	// be stale, which the check must catch — a test of the checker.
	Serializable bool
	// Leases adds two clients that grant 2 s leases, attaches a key to each
	// (under Prefix + "lease/"), keeps some alive for a while, revokes
	// some and abandons the rest; [EtcdWorkload.CheckLeases] then requires
	// every one of them gone, keys deleted, on every member. The KV
	// history is then checked with EtcdModelForeign (the lease keys move
	// the revision too).
	Leases bool
	// Compact, if not zero, runs two compactors (two kube-apiservers'
	// worth), each every Compact, shaped as kube-apiserver's
	// (k8s.io/apiserver storage/etcd3 compact.go): a Txn CAS on the
	// Version of compact_rev_key that puts the revision the previous
	// round saw, then, if the CAS won, Compact at that revision — one
	// interval behind the head. The revision is capped at the lowest
	// revision every watcher has reached, so the watchers' streams stay
	// complete (they are the reference the history is checked against).
	// Probes then start short watches on single members from revisions
	// around the compact revision (see checkProbes).
	Compact time.Duration
}

// compactRevKey is where the compactors keep their CAS, outside the
// watched prefix as kube-apiserver's is outside /registry.
const compactRevKey = "compact_rev_key"

// leaseTolerance is how much earlier than the bound a lease may be seen
// gone (see checkLeaseSafety).
const leaseTolerance = 50 * time.Millisecond

// EtcdWorkload runs etcd KV clients doing Put, Get, Range, Txn (CAS on
// mod_revision, as kube-apiserver's updates) and DeleteRange on a few
// keys, plus one watcher per member (a client with that member's
// endpoint alone, watching the prefix from revision 1 with prev_kv),
// optionally compactors and watch probes (EtcdWorkloadOptions.Compact)
// and lease clients (EtcdWorkloadOptions.Leases), recording everything
// for [EtcdWorkload.Check].
type EtcdWorkload struct {
	opts  EtcdWorkloadOptions
	clock *Clock

	mu       sync.Mutex
	ops      []EtcdOp
	leases   []*leaseRecord
	watchers []*etcdWatcher
	clients  []*clientv3.Client
	counts   map[string]int
	probes   []*watchProbe
	problems []string
	// leaseKeyGone is, per lease key, when a watcher first saw its
	// DELETE (clock time) and which.
	leaseKeyGone map[string]leaseGone
	// lastCompact is the highest revision a Compact succeeded at;
	// lastRev the highest header revision a client got (for the
	// probes' choice of start revisions).
	lastCompact, lastRev int64
}

// leaseRecord is one granted lease and the key put with it. Times are
// the workload's clock; only the lease's own client writes it, and it is
// read after Run returned.
type leaseRecord struct {
	id  clientv3.LeaseID
	key string
	ttl int64 // granted, seconds
	// renewals are the send times of the grant and of every keep-alive
	// that succeeded, in order.
	renewals []int64
	// revoked is when a revoke was sent (0: never).
	revoked int64
	// gone are the client's own observations that the lease had ended.
	gone []leaseGone
}

// leaseGone is an observation, at time at, that a lease had ended.
type leaseGone struct {
	at  int64
	how string
}

// watchProbe is one short watch on one member from a revision near the
// compact revision.
type watchProbe struct {
	member int
	from   int64
	start  int64 // when the watch was asked for
	// created is the header revision of the Created response (0: none
	// came).
	created int64
	// compacted is the CompactRevision of a compacted cancel (0: none).
	compacted int64
	end       int64
	err       string
	resps     []watchResp
}

// etcdWatcher is one member's watch stream as its client saw it.
type etcdWatcher struct {
	member   int
	mu       sync.Mutex
	resps    []watchResp
	problems []string
	lastRev  int64
}

type watchResp struct {
	header int64
	events []watchEvent
}

type watchEvent struct {
	put     bool
	key     int
	kv      EtcdKV
	prev    EtcdKV
	hasPrev bool
}

// NewEtcdWorkload prepares the workload.
func NewEtcdWorkload(o EtcdWorkloadOptions) *EtcdWorkload {
	if o.Clients == 0 {
		o.Clients = 4
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 3 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return &EtcdWorkload{opts: o, clock: NewClock(), counts: map[string]int{}, leaseKeyGone: map[string]leaseGone{}}
}

func (w *EtcdWorkload) key(i int) string { return w.opts.Prefix + "k" + strconv.Itoa(i) }

func (w *EtcdWorkload) keyIndex(k []byte) (int, bool) {
	s, ok := strings.CutPrefix(string(k), w.opts.Prefix+"k")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil && i >= 0 && i < EtcdKeys
}

func (w *EtcdWorkload) newClient(endpoints []string) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.clients = append(w.clients, c)
	w.mu.Unlock()
	return c, nil
}

// Run runs the clients and watchers until ctx is done, then waits for
// the watchers to catch up with the last write (see Check).
func (w *EtcdWorkload) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	// spawn runs f on a client of its own until ctx is done.
	spawn := func(f func(c *clientv3.Client)) error {
		c, err := w.newClient(w.opts.Endpoints)
		if err != nil {
			return err
		}
		wg.Go(func() { f(c) })
		return nil
	}
	for i := range w.opts.Clients {
		if err := spawn(func(c *clientv3.Client) { w.client(ctx, i, c) }); err != nil {
			return err
		}
	}
	for i := range leasers(w.opts.Leases) {
		if err := spawn(func(c *clientv3.Client) { w.leaser(ctx, c, i) }); err != nil {
			return err
		}
	}
	if w.opts.Compact > 0 {
		for i := range 2 {
			if err := spawn(func(c *clientv3.Client) { w.compactor(ctx, c, 100+i) }); err != nil {
				return err
			}
		}
		var probes []*clientv3.Client
		for _, ep := range w.opts.Endpoints {
			c, err := w.newClient([]string{ep})
			if err != nil {
				return err
			}
			probes = append(probes, c)
		}
		wg.Go(func() { w.prober(ctx, probes) })
	}
	wg.Wait()
	return nil
}

// seen records a header revision a client got.
func (w *EtcdWorkload) seen(rev int64) {
	w.mu.Lock()
	w.lastRev = max(w.lastRev, rev)
	w.mu.Unlock()
}

// watchFloor is the lowest revision every watcher has reached: a
// compaction up to it leaves every watcher able to resume.
func (w *EtcdWorkload) watchFloor() int64 {
	w.mu.Lock()
	ws := w.watchers
	w.mu.Unlock()
	floor := int64(-1)
	for _, ew := range ws {
		ew.mu.Lock()
		if floor < 0 || ew.lastRev < floor {
			floor = ew.lastRev
		}
		ew.mu.Unlock()
	}
	return max(floor, 0)
}

// compactor compacts as kube-apiserver's compactor does (storage/etcd3
// Compact and its loop): every interval, a Txn CAS on compact_rev_key's
// Version puts the revision the previous round saw; if it wins (and that
// revision is not 0), Compact at it; the next round's revision is this
// round's header revision. A lost CAS (another compactor won) takes the
// key's version; a failed Txn keeps the version and the revision. The
// revision is capped at watchFloor (see EtcdWorkloadOptions.Compact).
// One round in four also compacts, first, at the newest revision already
// compacted (a stale compactor), which must answer ErrCompacted.
func (w *EtcdWorkload) compactor(ctx context.Context, c *clientv3.Client, id int) {
	rng := rand.New(rand.NewPCG(w.opts.Seed, 0xc0ac7+uint64(id)))
	var version, rev int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.opts.Compact):
		}
		target := min(rev, w.watchFloor())
		in := EtcdInput{Kind: 'k', Version: version, Value: target}
		op := EtcdOp{Client: id, In: in, Call: w.clock.Now()}
		octx, cancel := context.WithTimeout(ctx, w.opts.OpTimeout)
		r, err := c.Txn(octx).If(clientv3.Compare(clientv3.Version(compactRevKey), "=", version)).
			Then(clientv3.OpPut(compactRevKey, strconv.FormatInt(target, 10))).Else(clientv3.OpGet(compactRevKey)).Commit()
		cancel()
		op.Return = w.clock.Now()
		if err != nil {
			op.Out, op.Return = EtcdOutput{Unknown: true}, unknownReturn
			w.record(op, "compact txn unknown")
			continue
		}
		op.Out = EtcdOutput{Rev: r.Header.Revision, Succeeded: r.Succeeded}
		if !r.Succeeded {
			if len(r.Responses) == 1 {
				if kvs := r.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
					op.Out.CompactKey = kvOf(kvs[0])
				}
			}
			w.record(op, "compact txn lost")
			version, rev = op.Out.CompactKey.Version, r.Header.Revision
			w.seen(rev)
			continue
		}
		w.record(op, "compact txn won")
		version++
		rev = r.Header.Revision
		w.seen(rev)
		if target == 0 {
			continue
		}
		w.mu.Lock()
		stale := w.lastCompact
		w.mu.Unlock()
		if stale > 0 && rng.IntN(4) == 0 {
			// A stale compactor (an apiserver with an old revision):
			// Compact at the newest revision known compacted, which
			// must fail with ErrCompacted.
			w.compact(ctx, c, id, stale)
		}
		w.compact(ctx, c, id, target)
	}
}

// compact issues Compact(target) and records it ('x').
func (w *EtcdWorkload) compact(ctx context.Context, c *clientv3.Client, id int, target int64) {
	in := EtcdInput{Kind: 'x', AtRev: target}
	op := EtcdOp{Client: id, In: in, Call: w.clock.Now()}
	octx, cancel := context.WithTimeout(ctx, w.opts.OpTimeout)
	cr, err := c.Compact(octx, target)
	cancel()
	op.Return = w.clock.Now()
	switch {
	case err == nil:
		op.Out = EtcdOutput{Rev: cr.Header.Revision}
		w.record(op, "compact ok")
		w.mu.Lock()
		w.lastCompact = max(w.lastCompact, target)
		w.mu.Unlock()
	case errors.Is(err, rpctypes.ErrCompacted):
		op.Out = EtcdOutput{Compacted: true}
		w.record(op, "compact compacted")
	case errors.Is(err, rpctypes.ErrFutureRev):
		w.problem(fmt.Sprintf("compact %d: %v, but a client had seen that revision", target, err))
	default:
		op.Out, op.Return = EtcdOutput{Unknown: true}, unknownReturn
		w.record(op, "compact unknown")
	}
}

// record adds an operation to the history and counts it.
func (w *EtcdWorkload) record(op EtcdOp, what string) {
	w.mu.Lock()
	w.ops = append(w.ops, op)
	w.counts[what]++
	w.mu.Unlock()
}

func (w *EtcdWorkload) problem(p string) {
	w.mu.Lock()
	w.problems = append(w.problems, p)
	w.mu.Unlock()
}

// prober starts one short watch after another, each on one member (a
// client with that member alone, in turn), from a revision around the
// compact revision: just below it, at it, just above it, or anywhere
// from a little below it to the newest revision seen.
func (w *EtcdWorkload) prober(ctx context.Context, cs []*clientv3.Client) {
	rng := rand.New(rand.NewPCG(w.opts.Seed, 0x9e0be))
	for i := 0; ctx.Err() == nil; i++ {
		w.mu.Lock()
		compact, last := w.lastCompact, w.lastRev
		w.mu.Unlock()
		if last == 0 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		var from int64
		switch x := rng.IntN(10); {
		case x < 3 && compact > 1:
			from = compact - 1
		case x < 5 && compact > 0:
			from = compact
		case x < 6 && compact > 0:
			from = compact + 1
		default:
			lo := max(compact-50, 1)
			from = lo + rng.Int64N(max(last-lo, 0)+1)
		}
		m := i % len(cs)
		p := w.probe(ctx, cs[m], m+1, from)
		w.mu.Lock()
		w.probes = append(w.probes, p)
		w.mu.Unlock()
		time.Sleep(time.Duration(50+rng.IntN(100)) * time.Millisecond)
	}
}

// probe watches the prefix on one member from revision from for up to
// 300 ms after it is created (1 s in all).
func (w *EtcdWorkload) probe(ctx context.Context, c *clientv3.Client, member int, from int64) *watchProbe {
	p := &watchProbe{member: member, from: from, start: w.clock.Now()}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var until <-chan time.Time
	wch := c.Watch(clientv3.WithRequireLeader(wctx), w.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(from),
		clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
loop:
	for {
		select {
		case <-until:
			break loop
		case resp, ok := <-wch:
			if !ok {
				if p.err == "" && p.compacted == 0 {
					p.err = "watch closed"
					if err := wctx.Err(); err != nil {
						p.err = err.Error()
					}
				}
				break loop
			}
			if resp.CompactRevision != 0 {
				p.compacted = resp.CompactRevision
				break loop
			}
			if err := resp.Err(); err != nil {
				p.err = err.Error()
				break loop
			}
			if resp.Created {
				p.created = max(resp.Header.Revision, 1)
				until = time.After(300 * time.Millisecond)
				continue
			}
			if r, ok := w.watchResp(resp); ok {
				p.resps = append(p.resps, r)
			}
		}
	}
	p.end = w.clock.Now()
	return p
}

// StartWatchers starts one watcher per member; they run until ctx is
// done.
func (w *EtcdWorkload) StartWatchers(ctx context.Context) error {
	for i, ep := range w.opts.Endpoints {
		c, err := w.newClient([]string{ep})
		if err != nil {
			return err
		}
		ew := &etcdWatcher{member: i + 1}
		w.mu.Lock()
		w.watchers = append(w.watchers, ew)
		w.mu.Unlock()
		go w.watch(ctx, c, ew)
	}
	return nil
}

// watch keeps one watch on the prefix from revision 1; clientv3 resumes
// it from the next revision after a broken stream. If the stream ends
// anyway (canceled), it is re-established from the last revision seen + 1.
func (w *EtcdWorkload) watch(ctx context.Context, c *clientv3.Client, ew *etcdWatcher) {
	next := int64(1)
	for ctx.Err() == nil {
		wch := c.Watch(clientv3.WithRequireLeader(ctx), w.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(next), clientv3.WithPrevKV())
		for resp := range wch {
			if err := resp.Err(); err != nil {
				ew.mu.Lock()
				if resp.CompactRevision != 0 {
					ew.problems = append(ew.problems, fmt.Sprintf("member %d: watch compacted at %d", ew.member, resp.CompactRevision))
				}
				ew.mu.Unlock()
				break
			}
			if len(resp.Events) == 0 {
				continue
			}
			now := w.clock.Now()
			r, _ := w.watchResp(resp)
			for _, ev := range resp.Events {
				if k := string(ev.Kv.Key); ev.Type == mvccpb.DELETE && strings.HasPrefix(k, w.opts.Prefix+"lease/") {
					w.mu.Lock()
					if g, ok := w.leaseKeyGone[k]; !ok || now < g.at {
						w.leaseKeyGone[k] = leaseGone{at: now, how: fmt.Sprintf("DELETE of its key seen by watcher %d", ew.member)}
					}
					w.mu.Unlock()
				}
			}
			ew.mu.Lock()
			last := resp.Events[len(resp.Events)-1].Kv.ModRevision
			if last > ew.lastRev {
				ew.lastRev = last
			}
			ew.resps = append(ew.resps, r)
			ew.mu.Unlock()
			next = last + 1
		}
		if ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// watchResp converts a watch response's events on the model's keys (the
// lease keys and the done marker are left out); ok is false if none
// was.
func (w *EtcdWorkload) watchResp(resp clientv3.WatchResponse) (watchResp, bool) {
	r := watchResp{header: resp.Header.Revision}
	for _, ev := range resp.Events {
		k, ok := w.keyIndex(ev.Kv.Key)
		if !ok {
			continue
		}
		we := watchEvent{put: ev.Type == mvccpb.PUT, key: k, kv: kvOf(ev.Kv)}
		if ev.Type == mvccpb.DELETE {
			we.kv = EtcdKV{ModRev: ev.Kv.ModRevision}
		}
		if ev.PrevKv != nil {
			we.prev, we.hasPrev = kvOf(ev.PrevKv), true
		}
		r.events = append(r.events, we)
	}
	return r, len(r.events) > 0
}

func kvOf(kv *mvccpb.KeyValue) EtcdKV {
	v, _ := strconv.ParseInt(string(kv.Value), 10, 64)
	return EtcdKV{Exists: true, Value: v, Version: kv.Version, ModRev: kv.ModRevision, Create: kv.CreateRevision}
}

func (w *EtcdWorkload) client(ctx context.Context, id int, c *clientv3.Client) {
	rng := rand.New(rand.NewPCG(w.opts.Seed, uint64(id)))
	seq := int64(0)
	// modSeen is the last mod revision this client saw per key (0:
	// absent), what its CAS compares against.
	var modSeen [EtcdKeys]int64
	// revsSeen are header revisions this client got, for reads of the
	// past ('h'); half of those go to the edge of the newest compaction
	// instead.
	var revsSeen []int64
	for ctx.Err() == nil {
		key := rng.IntN(EtcdKeys)
		in := EtcdInput{Key: key}
		switch x := rng.IntN(100); {
		case x < 25:
			in.Kind = 'g'
		case x < 35:
			in.Kind = 'r'
		case x < 40 && len(revsSeen) > 0:
			in.Kind = 'h'
			in.AtRev = revsSeen[rng.IntN(len(revsSeen))]
			w.mu.Lock()
			compact := w.lastCompact
			w.mu.Unlock()
			if compact > 1 && rng.IntN(2) == 0 {
				// Right at the compaction's edge: just below the
				// newest compact revision known, or at it.
				in.AtRev = compact - int64(rng.IntN(2))
			}
		case x < 40:
			in.Kind = 'r'
		case x < 60:
			in.Kind = 'p'
		case x < 90:
			in.Kind = 'c'
			in.ModRev = modSeen[key]
		default:
			in.Kind = 'd'
		}
		if in.Kind == 'p' || in.Kind == 'c' {
			seq++
			in.Value = int64(id+1)*1_000_000_000 + seq
		}
		op := EtcdOp{Client: id, In: in, Call: w.clock.Now()}
		octx, cancel := context.WithTimeout(ctx, w.opts.OpTimeout)
		out, err := w.do(octx, c, in)
		cancel()
		op.Return = w.clock.Now()
		w.mu.Lock()
		kind := string(in.Kind)
		switch {
		case err == nil:
			op.Out = out
			w.ops = append(w.ops, op)
			w.counts[kind+" ok"]++
			w.lastRev = max(w.lastRev, out.Rev)
		case in.Kind == 'h' && errors.Is(err, rpctypes.ErrCompacted):
			// An outcome the model checks: AtRev was below the compact
			// revision.
			op.Out = EtcdOutput{Compacted: true}
			w.ops = append(w.ops, op)
			w.counts[kind+" compacted"]++
		case in.Kind == 'g' || in.Kind == 'r' || in.Kind == 'h':
			w.counts[kind+" failed"]++ // a failed read has no effect
		// Every failed write is open: through a balancing client even
		// "no leader" may come from a member that had forwarded it.
		default:
			op.Out = EtcdOutput{Unknown: true}
			op.Return = unknownReturn
			w.ops = append(w.ops, op)
			w.counts[kind+" unknown"]++
		}
		w.mu.Unlock()
		if err == nil {
			if len(revsSeen) < 200 {
				revsSeen = append(revsSeen, out.Rev)
			} else {
				revsSeen[rng.IntN(len(revsSeen))] = out.Rev
			}
			switch in.Kind {
			case 'g':
				modSeen[key] = out.KVs[key].ModRev
			case 'r':
				for i := range modSeen {
					modSeen[i] = out.KVs[i].ModRev
				}
			case 'p':
				modSeen[key] = out.Rev
			case 'c':
				if out.Succeeded {
					modSeen[key] = out.Rev
				} else {
					modSeen[key] = out.KVs[key].ModRev
				}
			case 'd':
				modSeen[key] = 0
			}
		} else if ctx.Err() == nil && !errors.Is(err, rpctypes.ErrCompacted) {
			// Back off while the ensemble is unavailable (ErrCompacted
			// is an answer, not that).
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// leasers is how many lease clients run.
func leasers(on bool) int {
	if on {
		return 2
	}
	return 0
}

// leaser grants leases one after another. Each gets a key; it is then
// kept alive for 0-2 s (a keep-alive every 500 ms, each followed, half
// the time, by a TimeToLive and a Get of the key), and revoked (a third)
// or abandoned to expire. It records when each grant and keep-alive that
// succeeded was sent and every sign that the lease had ended (a
// keep-alive answering "lease not found", TimeToLive -1, the key gone),
// for checkLeaseSafety.
func (w *EtcdWorkload) leaser(ctx context.Context, c *clientv3.Client, id int) {
	rng := rand.New(rand.NewPCG(w.opts.Seed, 0x1ea5e+uint64(id)))
	for n := 0; ctx.Err() == nil; n++ {
		sent := w.clock.Now()
		octx, cancel := context.WithTimeout(ctx, w.opts.OpTimeout)
		g, err := c.Grant(octx, 2)
		cancel()
		if err != nil {
			w.count("lease grant failed")
			time.Sleep(250 * time.Millisecond)
			continue
		}
		rec := &leaseRecord{id: g.ID, key: fmt.Sprintf("%slease/%d-%d", w.opts.Prefix, id, n), ttl: g.TTL, renewals: []int64{sent}}
		w.mu.Lock()
		w.leases = append(w.leases, rec)
		w.counts["lease granted"]++
		w.mu.Unlock()
		gone := func(how string) {
			rec.gone = append(rec.gone, leaseGone{at: w.clock.Now(), how: how})
		}
		octx, cancel = context.WithTimeout(ctx, w.opts.OpTimeout)
		_, err = c.Put(octx, rec.key, "1", clientv3.WithLease(g.ID))
		cancel()
		put := err == nil
		if !put {
			w.count("lease put failed")
		}
		until := time.Now().Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		for time.Now().Before(until) && ctx.Err() == nil {
			sent := w.clock.Now()
			octx, cancel = context.WithTimeout(ctx, w.opts.OpTimeout)
			_, err := c.KeepAliveOnce(octx, g.ID)
			switch {
			case err == nil:
				rec.renewals = append(rec.renewals, sent)
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				gone("a keep-alive answered lease not found")
				w.count("lease keep-alive not found")
			default:
				w.count("lease keep-alive failed")
			}
			if rng.IntN(2) == 0 {
				if ttl, err := c.TimeToLive(octx, g.ID); err == nil && ttl.TTL == -1 {
					gone("TimeToLive answered -1")
				}
				if got, err := c.Get(octx, rec.key); put && err == nil && len(got.Kvs) == 0 {
					gone("a Get no longer found its key")
				}
			}
			cancel()
			time.Sleep(500 * time.Millisecond)
		}
		if rng.IntN(3) == 0 {
			rec.revoked = w.clock.Now()
			octx, cancel = context.WithTimeout(ctx, w.opts.OpTimeout)
			if _, err := c.Revoke(octx, g.ID); err != nil {
				w.count("lease revoke failed")
			} else {
				w.count("lease revoked")
			}
			cancel()
		}
	}
}

// checkLeaseSafety checks that no lease ended early. etcd's guarantee is
// that a lease lives at least its TTL past the last renewal the server
// made (the grant, or a keep-alive it answered): the lessor sets the
// expiry to renewal time + TTL, expires nothing before it, and a leader
// change only extends it (a new leader restarts every lease's TTL).
// Paddock promises the same (docs/ETCD.md, Leases). The client cannot
// see the server's renewal time, but the server renews after the request
// was sent, so the send time is a conservative stand-in: if the lease is
// seen gone at T (a watcher receiving its key's DELETE, a keep-alive
// answering "lease not found", TimeToLive -1, a Get missing its key, each
// timed when the client had the answer — later than the expiry itself),
// then T >= S + TTL - leaseTolerance, S being the send time of the last
// grant or keep-alive sent before T that succeeded. Every process runs on
// one machine and measures intervals with a monotonic clock, so the only
// slack needed is clock-rate error and timer granularity (a few ms over
// a 2 s TTL); leaseTolerance is 50 ms. Sightings after a revoke was sent
// prove nothing and are skipped. A keep-alive sent after the lease was
// seen gone must not succeed either (a lease never comes back).
func (w *EtcdWorkload) checkLeaseSafety(r *EtcdReport) {
	w.mu.Lock()
	leases := append([]*leaseRecord(nil), w.leases...)
	keyGone := maps.Clone(w.leaseKeyGone)
	w.mu.Unlock()
	for _, l := range leases {
		gone := append([]leaseGone(nil), l.gone...)
		if g, ok := keyGone[l.key]; ok {
			gone = append(gone, g)
		}
		for _, g := range gone {
			if l.revoked != 0 && g.at >= l.revoked {
				continue
			}
			r.Counts["lease end seen"]++
			var last int64 = -1
			for _, s := range l.renewals {
				if s < g.at {
					last = s
				} else {
					r.Violations = append(r.Violations, fmt.Sprintf("lease %x: a keep-alive sent at %v succeeded after it was seen gone at %v (%s)",
						l.id, time.Duration(s), time.Duration(g.at), g.how))
				}
			}
			if last < 0 {
				continue // seen gone before it was granted: cannot be (the grant answered), and the loop above said so
			}
			end := last + int64(time.Duration(l.ttl)*time.Second)
			if m := time.Duration(g.at - end); r.Counts["lease end seen"] == 1 || m < r.LeaseMargin {
				r.LeaseMargin = m
			}
			if g.at < end-int64(leaseTolerance) {
				r.Violations = append(r.Violations, fmt.Sprintf("lease %x (TTL %ds): gone early, at %v (%s), %v after its last renewal was sent (at %v)",
					l.id, l.ttl, time.Duration(g.at), g.how, time.Duration(g.at-last), time.Duration(last)))
			}
		}
	}
}

func (w *EtcdWorkload) count(what string) {
	w.mu.Lock()
	w.counts[what]++
	w.mu.Unlock()
}

// CheckLeases waits until every lease granted is gone and its key
// deleted, as every member sees it: TimeToLive answers TTL -1 and a Get
// of the key finds nothing, through a client with that member alone. Call
// after Finish and before the watchers stop (they time the lease keys'
// DELETEs for the safety check in Check). Nothing keeps the leases alive any more, so each must
// expire (its expiry decided by whichever member leads, through the log)
// or have been revoked; the wait is generous (liveness, not speed).
func (w *EtcdWorkload) CheckLeases(timeout time.Duration) []string {
	w.mu.Lock()
	leases := append([]*leaseRecord(nil), w.leases...)
	w.mu.Unlock()
	deadline := time.Now().Add(timeout)
	var problems []string
	for i, ep := range w.opts.Endpoints {
		c, err := w.newClient([]string{ep})
		if err != nil {
			return []string{err.Error()}
		}
		for _, l := range leases {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), w.opts.OpTimeout)
				ttl, err1 := c.TimeToLive(ctx, l.id)
				got, err2 := c.Get(ctx, l.key)
				cancel()
				if err1 == nil && err2 == nil && ttl.TTL == -1 && len(got.Kvs) == 0 {
					break
				}
				if time.Now().After(deadline) {
					what := fmt.Sprintf("errors %v, %v", err1, err2)
					if err1 == nil && err2 == nil {
						what = fmt.Sprintf("TTL %d, %d keys", ttl.TTL, len(got.Kvs))
					}
					problems = append(problems, fmt.Sprintf("member %d: lease %x (key %s) still there: %s", i+1, l.id, l.key, what))
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	return problems
}

// unknownReturn is the return time of an operation whose outcome is open.
const unknownReturn = int64(1<<63 - 1)

func (w *EtcdWorkload) do(ctx context.Context, c *clientv3.Client, in EtcdInput) (EtcdOutput, error) {
	var out EtcdOutput
	k := w.key(in.Key)
	switch in.Kind {
	case 'g':
		var opts []clientv3.OpOption
		if w.opts.Serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		r, err := c.Get(ctx, k, opts...)
		if err != nil {
			return out, err
		}
		out.Rev = r.Header.Revision
		if len(r.Kvs) == 1 {
			out.KVs[in.Key] = kvOf(r.Kvs[0])
		}
	case 'r', 'h':
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if w.opts.Serializable {
			opts = append(opts, clientv3.WithSerializable())
		}
		if in.Kind == 'h' {
			opts = append(opts, clientv3.WithRev(in.AtRev))
		}
		r, err := c.Get(ctx, w.opts.Prefix+"k", opts...)
		if err != nil {
			return out, err
		}
		out.Rev = r.Header.Revision
		for _, kv := range r.Kvs {
			if i, ok := w.keyIndex(kv.Key); ok {
				out.KVs[i] = kvOf(kv)
			}
		}
	case 'p':
		r, err := c.Put(ctx, k, strconv.FormatInt(in.Value, 10))
		if err != nil {
			return out, err
		}
		out.Rev = r.Header.Revision
	case 'c':
		r, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", in.ModRev)).
			Then(clientv3.OpPut(k, strconv.FormatInt(in.Value, 10))).Else(clientv3.OpGet(k)).Commit()
		if err != nil {
			return out, err
		}
		out.Rev, out.Succeeded = r.Header.Revision, r.Succeeded
		if !r.Succeeded && len(r.Responses) == 1 {
			if kvs := r.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
				out.KVs[in.Key] = kvOf(kvs[0])
			}
		}
	case 'd':
		r, err := c.Delete(ctx, k)
		if err != nil {
			return out, err
		}
		out.Rev, out.Deleted = r.Header.Revision, r.Deleted
	}
	return out, nil
}

// Finish writes a marker key through any member and waits until every
// watcher has seen it, so the watch streams cover the whole history.
func (w *EtcdWorkload) Finish(timeout time.Duration) (int64, error) {
	c, err := w.newClient(w.opts.Endpoints)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(timeout)
	var rev int64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), w.opts.OpTimeout)
		r, err := c.Put(ctx, w.opts.Prefix+"done", "1")
		cancel()
		if err == nil {
			rev = r.Header.Revision
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("marker write: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, ew := range w.watchers {
		for {
			ew.mu.Lock()
			seen := ew.lastRev
			ew.mu.Unlock()
			if seen >= rev {
				break
			}
			if time.Now().After(deadline) {
				return rev, fmt.Errorf("watcher on member %d stopped at revision %d, marker at %d", ew.member, seen, rev)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return rev, nil
}

// Close closes every client.
func (w *EtcdWorkload) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.clients {
		c.Close()
	}
}

// EtcdReport is the outcome of [EtcdWorkload.Check].
type EtcdReport struct {
	Ops          int
	Counts       map[string]int
	WatchEvents  int
	Violations   []string
	Inconclusive []string
	// LeaseMargin is how far the closest lease end seen was past its
	// bound (checkLeaseSafety); negative past the tolerance is a
	// violation. Meaningful when Counts["lease end seen"] > 0.
	LeaseMargin time.Duration
	linInfo     any
	foreign     bool
}

// OK reports whether no violation was found.
func (r *EtcdReport) OK() bool { return len(r.Violations) == 0 }

func (r *EtcdReport) String() string {
	keys := make([]string, 0, len(r.Counts))
	for k := range r.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.Counts[k]))
	}
	s := fmt.Sprintf("%d operations (%s), %d watch events per watcher", r.Ops, strings.Join(parts, " "), r.WatchEvents)
	if r.Counts["lease end seen"] > 0 {
		s += fmt.Sprintf("; closest lease end %v after its TTL past the renewal", r.LeaseMargin)
	}
	if len(r.Inconclusive) > 0 {
		s += "; inconclusive: " + strings.Join(r.Inconclusive, "; ")
	}
	return s
}

// VisualizeTo writes porcupine's visualisation of a failed check into dir.
func (r *EtcdReport) VisualizeTo(dir string) (string, error) {
	info, ok := r.linInfo.(porcupine.LinearizationInfo)
	if !ok {
		return "", nil
	}
	f := dir + "/etcd-linearizability.html"
	m := EtcdModel
	if r.foreign {
		m = EtcdModelForeign
	}
	return f, porcupine.VisualizePath(m, info, f)
}

// Check checks the recorded history: the watch streams (see
// checkWatches) against each other and against the acknowledged
// operations, the watch probes against the compactions and the streams
// (checkProbes), with leases that none ended early (checkLeaseSafety),
// then linearizability, compactions included, against EtcdModel
// (porcupine). Call after Run returned, Finish succeeded and, with
// leases, CheckLeases returned, the watchers stopped.
func (w *EtcdWorkload) Check(timeout time.Duration) *EtcdReport {
	w.mu.Lock()
	ops := append([]EtcdOp(nil), w.ops...)
	counts := map[string]int{}
	for k, v := range w.counts {
		counts[k] = v
	}
	w.mu.Unlock()
	r := &EtcdReport{Ops: len(ops), Counts: counts, foreign: w.opts.Leases}
	r.Violations = append(r.Violations, w.problems...)
	canonical := w.checkWatches(ops, r)
	if canonical != nil {
		w.checkProbes(ops, canonical, r)
	}
	if w.opts.Leases {
		w.checkLeaseSafety(r)
	}
	ops = resolveUnknown(ops, canonical, r)
	res, info := CheckEtcd(ops, w.opts.Leases, timeout)
	switch res {
	case porcupine.Illegal:
		r.linInfo = info
		r.Violations = append(r.Violations, fmt.Sprintf("history of %d operations is not linearizable", len(ops)))
	case porcupine.Unknown:
		r.Inconclusive = append(r.Inconclusive, fmt.Sprintf("porcupine gave up after %v on %d operations", timeout, len(ops)))
	}
	return r
}

// resolveUnknown settles the writes whose outcome the client did not
// learn, from the watch streams (which checkWatches found complete and in
// agreement up to the final marker). Values are unique per write, so a
// put or txn whose value appears at revision R took effect at R: it
// becomes an acknowledged write at R (its return time stays open). One
// whose value never appears had no effect any recorded operation could
// see — it was not applied, or its compare failed (which changes
// nothing), or it landed after the marker, which every recorded operation
// preceded — and leaves the history. Unknown deletes stay open (nothing identifies
// them); the model explores both outcomes. Without this, each open write
// doubles the states porcupine tracks from its call on, and a schedule
// with a long unavailability produces dozens.
func resolveUnknown(ops []EtcdOp, canonical map[int64]revEvents, r *EtcdReport) []EtcdOp {
	if canonical == nil {
		return ops
	}
	applied := map[int64]int64{} // value -> revision
	for rev, evs := range canonical {
		for _, ev := range evs {
			if ev.put {
				applied[ev.kv.Value] = rev
			}
		}
	}
	out := ops[:0:0]
	for _, o := range ops {
		if o.Out.Unknown && (o.In.Kind == 'p' || o.In.Kind == 'c') {
			rev, ok := applied[o.In.Value]
			if !ok {
				r.Counts["unknown write: no effect"]++
				continue
			}
			r.Counts["unknown write: applied"]++
			o.Out = EtcdOutput{Rev: rev, Succeeded: true}
		}
		out = append(out, o)
	}
	return out
}

// checkProbes checks the short watches started around the compact
// revision (prober) against the compactions and the watchers' (complete)
// history:
//   - a probe cancelled as compacted names a compact revision above its
//     start revision, at which some compactor had asked to compact by
//     then;
//   - a probe that was not cancelled must not have been started below a
//     compaction its member had applied: a compaction that answered ok
//     precedes in the log every write issued after that answer, so a
//     Created header at or above the revision of such a write means the
//     member had applied it — the watch should have been cancelled;
//   - the events a probe got are exactly the history's from its start
//     revision on, revision by revision, in order (with prev_kv, except
//     on the events at the start revision if it is a compact revision).
func (w *EtcdWorkload) checkProbes(ops []EtcdOp, canonical map[int64]revEvents, r *EtcdReport) {
	w.mu.Lock()
	probes := append([]*watchProbe(nil), w.probes...)
	w.mu.Unlock()
	asked := map[int64]int64{} // compact revision -> earliest call
	type compactDone struct{ rev, ret int64 }
	var done []compactDone
	type write struct{ call, rev int64 }
	var writes []write
	for _, o := range ops {
		if o.Out.Unknown {
			if o.In.Kind == 'x' {
				if c, ok := asked[o.In.AtRev]; !ok || o.Call < c {
					asked[o.In.AtRev] = o.Call
				}
			}
			continue
		}
		switch o.In.Kind {
		case 'x':
			if c, ok := asked[o.In.AtRev]; !ok || o.Call < c {
				asked[o.In.AtRev] = o.Call
			}
			if !o.Out.Compacted {
				done = append(done, compactDone{o.In.AtRev, o.Return})
			}
		case 'p', 'k':
			if o.Out.Succeeded || o.In.Kind == 'p' {
				writes = append(writes, write{o.Call, o.Out.Rev})
			}
		case 'c':
			if o.Out.Succeeded {
				writes = append(writes, write{o.Call, o.Out.Rev})
			}
		case 'd':
			if o.Out.Deleted > 0 {
				writes = append(writes, write{o.Call, o.Out.Rev})
			}
		}
	}
	// after[i]: the lowest revision of a write issued after done[i]
	// answered (0: none).
	after := make([]int64, len(done))
	for i, d := range done {
		for _, wr := range writes {
			if wr.call > d.ret && (after[i] == 0 || wr.rev < after[i]) {
				after[i] = wr.rev
			}
		}
	}
	revs := make([]int64, 0, len(canonical))
	for rev := range canonical {
		revs = append(revs, rev)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	bad := 0
	violation := func(p *watchProbe, format string, args ...any) {
		if bad < 20 {
			r.Violations = append(r.Violations, fmt.Sprintf("probe on member %d from %d at %v: ", p.member, p.from, time.Duration(p.start))+fmt.Sprintf(format, args...))
		}
		bad++
	}
	for _, p := range probes {
		switch {
		case p.compacted != 0:
			r.Counts["probe compacted"]++
			if p.compacted <= p.from {
				violation(p, "cancelled as compacted at %d", p.compacted)
			}
			if c, ok := asked[p.compacted]; !ok || c > p.end {
				violation(p, "cancelled as compacted at %d, which no compactor had asked for", p.compacted)
			}
		case p.err != "":
			r.Counts["probe failed: "+p.err]++
		case p.created == 0:
			r.Counts["probe not created"]++
		default:
			r.Counts["probe streamed"]++
			for i, d := range done {
				if d.rev > p.from && after[i] != 0 && after[i] <= p.created {
					violation(p, "not cancelled, although the member (at revision %d when the watch was created) had applied the compaction at %d (answered at %v; revision %d was written after it)",
						p.created, d.rev, time.Duration(d.ret), after[i])
					break
				}
			}
		}
		// The events, against the history from p.from on.
		i := sort.Search(len(revs), func(i int) bool { return revs[i] >= p.from })
		var cur int64
		var got revEvents
		check := func() bool {
			if got == nil {
				return true
			}
			if i >= len(revs) || revs[i] != cur {
				want := "nothing"
				if i < len(revs) {
					want = fmt.Sprintf("revision %d", revs[i])
				}
				violation(p, "got revision %d where the history has %s next", cur, want)
				return false
			}
			want := canonical[cur]
			if _, compactedHere := asked[cur]; cur == p.from && compactedHere && len(want) == len(got) {
				// A watch from the compact revision itself gets that
				// revision's events without prev_kv: the previous
				// versions are compacted (etcd reads prev_kv at rev-1,
				// which then fails; Paddock keeps, per key, only the
				// newest version at or below the compact revision).
				want = append(revEvents(nil), want...)
				for k := range want {
					if !got[k].hasPrev {
						want[k].prev, want[k].hasPrev = EtcdKV{}, false
					}
				}
			}
			if !want.equal(got) {
				violation(p, "revision %d: got %v, the history has %v", cur, got, canonical[cur])
				return false
			}
			i++
			return true
		}
		ok := true
		for _, resp := range p.resps {
			for _, ev := range resp.events {
				if ok && ev.kv.ModRev != cur {
					ok = check()
					cur, got = ev.kv.ModRev, nil
				}
				got = append(got, ev)
			}
		}
		if ok {
			check()
		}
	}
}

// revEvents is what one revision did, as a watch showed it.
type revEvents []watchEvent

func (a revEvents) equal(b revEvents) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkWatches checks every watcher's stream and the streams together:
//   - ordered and atomic: revisions strictly increase from response to
//     response and never decrease within one (a revision is never split);
//   - unique: no (revision, key) twice;
//   - prev_kv: each event's previous value is the key's value after its
//     previous event in the stream (or absent), and versions and create
//     revisions follow (version 1 and create == mod on a create);
//   - agreement and gaplessness: every watcher saw, for every revision, the
//     same events, and every watcher saw every revision that any watcher
//     saw (all of them reached the final marker);
//   - agreement with the operations: every acknowledged write appears at
//     its revision with its value; every event is a write some client
//     issued; every acknowledged read matches the keyspace the events
//     give at the read's header revision.
func (w *EtcdWorkload) checkWatches(ops []EtcdOp, r *EtcdReport) map[int64]revEvents {
	var canonical map[int64]revEvents
	var canonicalFrom int
	for _, ew := range w.watchers {
		ew.mu.Lock()
		resps := ew.resps
		r.Violations = append(r.Violations, ew.problems...)
		ew.mu.Unlock()
		byRev := map[int64]revEvents{}
		var last int64
		state := map[int]EtcdKV{}
		n := 0
		for _, resp := range resps {
			if len(resp.events) == 0 {
				continue
			}
			first := resp.events[0].kv.ModRev
			if first <= last {
				r.Violations = append(r.Violations, fmt.Sprintf("watcher %d: response starting at revision %d after revision %d (order/atomicity)", ew.member, first, last))
			}
			for _, ev := range resp.events {
				rev := ev.kv.ModRev
				if rev < last || rev < first {
					r.Violations = append(r.Violations, fmt.Sprintf("watcher %d: revision %d after %d in one response", ew.member, rev, last))
				}
				for _, o := range byRev[rev] {
					if o.key == ev.key {
						r.Violations = append(r.Violations, fmt.Sprintf("watcher %d: key k%d twice at revision %d", ew.member, ev.key, rev))
					}
				}
				prev, had := state[ev.key]
				if ev.hasPrev != had || had && ev.prev != prev {
					r.Violations = append(r.Violations, fmt.Sprintf("watcher %d: k%d at %d: prev_kv %v (present %v), stream had %v (present %v)",
						ew.member, ev.key, rev, ev.prev, ev.hasPrev, prev, had))
				}
				if ev.put {
					wantVersion, wantCreate := int64(1), rev
					if had {
						wantVersion, wantCreate = prev.Version+1, prev.Create
					}
					if ev.kv.Version != wantVersion || ev.kv.Create != wantCreate {
						r.Violations = append(r.Violations, fmt.Sprintf("watcher %d: k%d at %d: version %d create %d, want %d and %d",
							ew.member, ev.key, rev, ev.kv.Version, ev.kv.Create, wantVersion, wantCreate))
					}
					state[ev.key] = ev.kv
				} else {
					delete(state, ev.key)
				}
				byRev[rev] = append(byRev[rev], ev)
				last = rev
				n++
			}
		}
		if canonical == nil {
			canonical, canonicalFrom, r.WatchEvents = byRev, ew.member, n
			continue
		}
		for rev, evs := range byRev {
			if c, ok := canonical[rev]; !ok {
				r.Violations = append(r.Violations, fmt.Sprintf("watcher %d saw revision %d, watcher %d did not", ew.member, rev, canonicalFrom))
			} else if !c.equal(evs) {
				r.Violations = append(r.Violations, fmt.Sprintf("revision %d: watcher %d saw %v, watcher %d saw %v", rev, ew.member, evs, canonicalFrom, c))
			}
		}
		for rev := range canonical {
			if _, ok := byRev[rev]; !ok {
				r.Violations = append(r.Violations, fmt.Sprintf("watcher %d missed revision %d (watcher %d saw it)", ew.member, rev, canonicalFrom))
			}
		}
	}
	if canonical == nil {
		return nil
	}
	// Writes: acknowledged ones at their revision; events only from
	// issued writes.
	issued := map[int64]int{} // value -> key
	for _, o := range ops {
		if o.In.Kind == 'p' || o.In.Kind == 'c' {
			issued[o.In.Value] = o.In.Key
		}
	}
	for rev, evs := range canonical {
		for _, ev := range evs {
			if ev.put {
				if k, ok := issued[ev.kv.Value]; !ok || k != ev.key {
					r.Violations = append(r.Violations, fmt.Sprintf("revision %d: k%d=%d was never written by a client", rev, ev.key, ev.kv.Value))
				}
			}
		}
	}
	findAt := func(rev int64, key int) (watchEvent, bool) {
		for _, ev := range canonical[rev] {
			if ev.key == key {
				return ev, true
			}
		}
		return watchEvent{}, false
	}
	for _, o := range ops {
		if o.Out.Unknown {
			continue
		}
		switch {
		case o.In.Kind == 'p' || o.In.Kind == 'c' && o.Out.Succeeded:
			ev, ok := findAt(o.Out.Rev, o.In.Key)
			if !ok || !ev.put || ev.kv.Value != o.In.Value {
				r.Violations = append(r.Violations, fmt.Sprintf("acknowledged %s missing from the watch at revision %d", describeEtcd(o.In, o.Out), o.Out.Rev))
			}
		case o.In.Kind == 'd' && o.Out.Deleted == 1:
			ev, ok := findAt(o.Out.Rev, o.In.Key)
			if !ok || ev.put {
				r.Violations = append(r.Violations, fmt.Sprintf("acknowledged %s missing from the watch at revision %d", describeEtcd(o.In, o.Out), o.Out.Rev))
			}
		}
	}
	// Reads against the keyspace the events give at their revision.
	revs := make([]int64, 0, len(canonical))
	for rev := range canonical {
		revs = append(revs, rev)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	type snap struct {
		rev int64
		kvs [EtcdKeys]EtcdKV
	}
	snaps := []snap{{rev: 0}}
	for _, rev := range revs {
		s := snaps[len(snaps)-1]
		s.rev = rev
		for _, ev := range canonical[rev] {
			if ev.put {
				s.kvs[ev.key] = ev.kv
			} else {
				s.kvs[ev.key] = EtcdKV{}
			}
		}
		snaps = append(snaps, s)
	}
	at := func(rev int64) [EtcdKeys]EtcdKV {
		i := sort.Search(len(snaps), func(i int) bool { return snaps[i].rev > rev })
		return snaps[i-1].kvs
	}
	bad := 0
	for _, o := range ops {
		if o.Out.Unknown || o.Out.Compacted {
			continue
		}
		var keys []int
		switch {
		case o.In.Kind == 'g' || o.In.Kind == 'c' && !o.Out.Succeeded:
			keys = []int{o.In.Key}
		case o.In.Kind == 'r' || o.In.Kind == 'h':
			for k := range EtcdKeys {
				keys = append(keys, k)
			}
		}
		readAt := o.Out.Rev
		if o.In.Kind == 'h' {
			readAt = o.In.AtRev
		}
		want := at(readAt)
		for _, k := range keys {
			if o.Out.KVs[k] != want[k] && bad < 20 {
				bad++
				r.Violations = append(r.Violations, fmt.Sprintf("%s: the watch gives k%d %s at revision %d",
					describeEtcd(o.In, o.Out), k, describeKV(want[k]), readAt))
			}
		}
	}
	return canonical
}
