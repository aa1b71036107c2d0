package etcdapi

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/paddockhq/paddock/internal/etcdref"
)

// The differential test runs the same seeded random sequence of KV, Txn,
// Compact and Watch operations against a real etcd 3.7 and against
// Paddock, and compares every response modulo revision numbering: each
// side's revisions are mapped to ordinals in the order they appear (etcd's
// are dense, Paddock's are zxids), so "the 5th revision" means the same
// thing on both.

type side struct {
	name string
	c    *clientv3.Client
	revs []int64
	ord  map[int64]int
}

func newSide(t *testing.T, name string, c *clientv3.Client) *side {
	s := &side{name: name, c: c, ord: map[int64]int{}}
	r, err := c.Get(context.Background(), "\x00")
	if err != nil {
		t.Fatal(err)
	}
	s.note(r.Header.Revision)
	return s
}

// note records a header revision; a new one must be above all before.
func (s *side) note(rev int64) {
	if _, ok := s.ord[rev]; ok {
		return
	}
	if n := len(s.revs); n > 0 && rev < s.revs[n-1] {
		return // rendered as "?" by norm, which fails the comparison
	}
	s.ord[rev] = len(s.revs)
	s.revs = append(s.revs, rev)
}

func (s *side) norm(rev int64) string {
	if rev == 0 {
		return "0"
	}
	if o, ok := s.ord[rev]; ok {
		return "r" + strconv.Itoa(o)
	}
	return fmt.Sprintf("?%d", rev)
}

// rev translates an ordinal to this side's revision.
func (s *side) rev(ord int) int64 {
	if ord < len(s.revs) {
		return s.revs[ord]
	}
	return s.revs[len(s.revs)-1] + 1000000 // a future revision
}

func (s *side) kv(kv *mvccpb.KeyValue) string {
	if kv == nil {
		return "nil"
	}
	return fmt.Sprintf("{%q=%q v%d c%s m%s}", kv.Key, kv.Value, kv.Version, s.norm(kv.CreateRevision), s.norm(kv.ModRevision))
}

func (s *side) kvs(kvs []*mvccpb.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = s.kv(kv)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (s *side) event(ev *clientv3.Event) string {
	t := "PUT"
	if ev.Type == mvccpb.DELETE {
		t = "DEL"
	}
	kv := s.kv(ev.Kv)
	if ev.Type == mvccpb.DELETE {
		kv = fmt.Sprintf("{%q m%s}", ev.Kv.Key, s.norm(ev.Kv.ModRevision))
	}
	return t + kv + " prev=" + s.kv(ev.PrevKv)
}

// op is one generated operation, rendered per side.
type op func(ctx context.Context, s *side) string

type gen struct {
	r *rand.Rand
	// s picks which gets are RangeStreams, from its own sequence so that
	// the rest of a seed's sequence is what it was before streams.
	s          *rand.Rand
	ref        *side // the side whose results steer generation (etcd)
	compactOrd int
	lastMod    map[string]int
}

var diffKeys = []string{"a", "b", "c", "p/1", "p/2", "p/3", "p/4", "q"}

func (g *gen) key() string { return diffKeys[g.r.Intn(len(diffKeys))] }
func (g *gen) val() string { return strconv.Itoa(g.r.Intn(5)) }

func (g *gen) curOrd() int { return len(g.ref.revs) - 1 }

func (g *gen) ordChoice() int {
	switch g.r.Intn(4) {
	case 0:
		return g.compactOrd + g.r.Intn(g.curOrd()-g.compactOrd+1)
	case 1:
		return g.r.Intn(g.curOrd() + 2) // may be compacted or future
	default:
		return g.curOrd()
	}
}

func render(s *side, err error, f func() string) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return f()
}

func (g *gen) next() (string, op) {
	switch n := g.r.Intn(100); {
	case n < 30:
		k, v, prev := g.key(), g.val(), g.r.Intn(2) == 0
		return "put " + k, func(ctx context.Context, s *side) string {
			var opts []clientv3.OpOption
			if prev {
				opts = append(opts, clientv3.WithPrevKV())
			}
			r, err := s.c.Put(ctx, k, v, opts...)
			if err == nil {
				s.note(r.Header.Revision)
			}
			return render(s, err, func() string { return "rev " + s.norm(r.Header.Revision) + " prev " + s.kv(r.PrevKv) })
		}
	case n < 40:
		k, prefix := g.key(), g.r.Intn(3) == 0
		if prefix {
			k = "p/"
		}
		return "delete " + k, func(ctx context.Context, s *side) string {
			opts := []clientv3.OpOption{clientv3.WithPrevKV()}
			if prefix {
				opts = append(opts, clientv3.WithPrefix())
			}
			r, err := s.c.Delete(ctx, k, opts...)
			if err == nil {
				s.note(r.Header.Revision)
			}
			return render(s, err, func() string {
				return fmt.Sprintf("rev %s deleted %d prev %s", s.norm(r.Header.Revision), r.Deleted, s.kvs(r.PrevKvs))
			})
		}
	case n < 65:
		return g.get()
	case n < 95:
		return g.txn()
	case n < 98:
		return g.get()
	default:
		ord := g.compactOrd + 1 + g.r.Intn(max(1, (g.curOrd()-g.compactOrd)/2))
		if g.r.Intn(3) == 0 {
			ord = g.compactOrd // refused: already compacted
		}
		valid := ord > g.compactOrd && ord <= g.curOrd()
		if valid {
			g.compactOrd = ord
		}
		return fmt.Sprintf("compact r%d", ord), func(ctx context.Context, s *side) string {
			r, err := s.c.Compact(ctx, s.rev(ord))
			return render(s, err, func() string { return "rev " + s.norm(r.Header.Revision) })
		}
	}
}

func (g *gen) getOpts() (string, []clientv3.OpOption, func(s *side) []clientv3.OpOption) {
	k := g.key()
	var opts []clientv3.OpOption
	desc := "get " + k
	switch g.r.Intn(4) {
	case 0:
		k = "p/"
		opts = append(opts, clientv3.WithPrefix())
		desc = "get prefix p/"
	case 1:
		opts = append(opts, clientv3.WithFromKey())
		desc += " fromkey"
	}
	if g.r.Intn(3) == 0 {
		l := int64(1 + g.r.Intn(3))
		opts = append(opts, clientv3.WithLimit(l))
		desc += fmt.Sprintf(" limit %d", l)
	}
	if g.r.Intn(4) == 0 {
		targets := []clientv3.SortTarget{clientv3.SortByKey, clientv3.SortByVersion, clientv3.SortByCreateRevision, clientv3.SortByModRevision, clientv3.SortByValue}
		tg := targets[g.r.Intn(len(targets))]
		order := clientv3.SortOrder(g.r.Intn(3))
		opts = append(opts, clientv3.WithSort(tg, order))
		desc += fmt.Sprintf(" sort %v %v", tg, order)
	}
	switch g.r.Intn(6) {
	case 0:
		opts = append(opts, clientv3.WithKeysOnly())
		desc += " keysonly"
	case 1:
		opts = append(opts, clientv3.WithCountOnly())
		desc += " countonly"
	}
	ord := -1
	if g.r.Intn(3) == 0 {
		ord = g.ordChoice()
		desc += fmt.Sprintf(" rev r%d", ord)
	}
	return desc + "\x00" + k, opts, func(s *side) []clientv3.OpOption {
		if ord >= 0 {
			return append(append([]clientv3.OpOption(nil), opts...), clientv3.WithRev(s.rev(ord)))
		}
		return opts
	}
}

func (g *gen) get() (string, op) {
	desc, _, optsFor := g.getOpts()
	desc, k, _ := strings.Cut(desc, "\x00")
	if g.s != nil && g.s.Intn(3) == 0 {
		return "stream " + desc, func(ctx context.Context, s *side) string { return renderStream(ctx, s, k, optsFor(s)...) }
	}
	return desc, func(ctx context.Context, s *side) string {
		r, err := s.c.Get(ctx, k, optsFor(s)...)
		return render(s, err, func() string {
			return fmt.Sprintf("rev %s count %d more %v kvs %s", s.norm(r.Header.Revision), r.Count, r.More, s.kvs(r.Kvs))
		})
	}
}

func (g *gen) txn() (string, op) {
	type cmpGen func(s *side) clientv3.Cmp
	var cmps []cmpGen
	var desc []string
	for i := g.r.Intn(3); i > 0; i-- {
		k := g.key()
		res := []string{"=", "!=", ">", "<"}[g.r.Intn(4)]
		switch g.r.Intn(4) {
		case 0:
			v := int64(g.r.Intn(4))
			cmps = append(cmps, func(s *side) clientv3.Cmp { return clientv3.Compare(clientv3.Version(k), res, v) })
			desc = append(desc, fmt.Sprintf("version(%s)%s%d", k, res, v))
		case 1:
			v := g.val()
			cmps = append(cmps, func(s *side) clientv3.Cmp { return clientv3.Compare(clientv3.Value(k), res, v) })
			desc = append(desc, fmt.Sprintf("value(%s)%s%s", k, res, v))
		default:
			create := g.r.Intn(2) == 0
			ord, ok := g.lastMod[k]
			if !ok || g.r.Intn(3) == 0 {
				ord = g.r.Intn(g.curOrd() + 1)
			}
			zero := g.r.Intn(5) == 0
			cmps = append(cmps, func(s *side) clientv3.Cmp {
				rev := s.rev(ord)
				if zero {
					rev = 0
				}
				if create {
					return clientv3.Compare(clientv3.CreateRevision(k), res, rev)
				}
				return clientv3.Compare(clientv3.ModRevision(k), res, rev)
			})
			desc = append(desc, fmt.Sprintf("rev(%s,create=%v)%sr%d/zero=%v", k, create, res, ord, zero))
		}
	}
	type opGen func(s *side) clientv3.Op
	branch := func() ([]opGen, string) {
		used := map[string]bool{}
		var ops []opGen
		var d []string
		for i := g.r.Intn(4); i > 0; i-- {
			k := g.key()
			switch g.r.Intn(3) {
			case 0:
				if used[k] {
					continue
				}
				used[k] = true
				v := g.val()
				ops = append(ops, func(s *side) clientv3.Op { return clientv3.OpPut(k, v, clientv3.WithPrevKV()) })
				d = append(d, "put "+k)
			case 1:
				if used[k] {
					continue
				}
				used[k] = true
				ops = append(ops, func(s *side) clientv3.Op { return clientv3.OpDelete(k, clientv3.WithPrevKV()) })
				d = append(d, "del "+k)
			default:
				gd, _, optsFor := g.getOpts()
				gd, gk, _ := strings.Cut(gd, "\x00")
				ops = append(ops, func(s *side) clientv3.Op { return clientv3.OpGet(gk, optsFor(s)...) })
				d = append(d, gd)
			}
		}
		return ops, strings.Join(d, "; ")
	}
	thenOps, thenDesc := branch()
	elseOps, elseDesc := branch()
	return fmt.Sprintf("txn if %v then [%s] else [%s]", desc, thenDesc, elseDesc), func(ctx context.Context, s *side) string {
		var cs []clientv3.Cmp
		for _, c := range cmps {
			cs = append(cs, c(s))
		}
		var th, el []clientv3.Op
		for _, o := range thenOps {
			th = append(th, o(s))
		}
		for _, o := range elseOps {
			el = append(el, o(s))
		}
		r, err := s.c.Txn(ctx).If(cs...).Then(th...).Else(el...).Commit()
		if err == nil {
			s.note(r.Header.Revision)
		}
		return render(s, err, func() string {
			var b strings.Builder
			fmt.Fprintf(&b, "rev %s ok %v", s.norm(r.Header.Revision), r.Succeeded)
			for _, rp := range r.Responses {
				switch {
				case rp.GetResponseRange() != nil:
					rr := rp.GetResponseRange()
					fmt.Fprintf(&b, " | range rev %s count %d more %v %s", s.norm(rr.Header.Revision), rr.Count, rr.More, s.kvs(rr.Kvs))
				case rp.GetResponsePut() != nil:
					pr := rp.GetResponsePut()
					fmt.Fprintf(&b, " | put rev %s prev %s", s.norm(pr.Header.Revision), s.kv(pr.PrevKv))
				case rp.GetResponseDeleteRange() != nil:
					dr := rp.GetResponseDeleteRange()
					fmt.Fprintf(&b, " | del rev %s n %d prev %s", s.norm(dr.Header.Revision), dr.Deleted, s.kvs(dr.PrevKvs))
				}
			}
			return b.String()
		})
	}
}

// learn updates the generator's view from the reference's answer.
func (g *gen) learn(ctx context.Context) {
	r, err := g.ref.c.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithSerializable())
	if err != nil {
		return
	}
	g.lastMod = map[string]int{}
	for _, kv := range r.Kvs {
		if o, ok := g.ref.ord[kv.ModRevision]; ok {
			g.lastMod[string(kv.Key)] = o
		}
	}
}

// collectWatch reads a watch until an event for key "zz-end" arrives,
// checking that no revision is split across responses.
func collectWatch(t *testing.T, s *side, wch clientv3.WatchChan) []string {
	t.Helper()
	var out []string
	lastRev := int64(0)
	for {
		select {
		case r, ok := <-wch:
			if !ok {
				t.Fatalf("%s: watch closed", s.name)
			}
			if err := r.Err(); err != nil {
				return append(out, "error: "+err.Error())
			}
			if len(r.Events) > 0 {
				if r.Events[0].Kv.ModRevision <= lastRev {
					t.Fatalf("%s: revision %d split or repeated across responses (last %d)", s.name, r.Events[0].Kv.ModRevision, lastRev)
				}
				lastRev = r.Events[len(r.Events)-1].Kv.ModRevision
			}
			for _, ev := range r.Events {
				if string(ev.Kv.Key) == "zz-end" {
					return out
				}
				out = append(out, s.norm(ev.Kv.ModRevision)+" "+s.event(ev))
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: watch stalled after %d events", s.name, len(out))
		}
	}
}

func TestDifferentialAgainstEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	steps := 400
	if v := os.Getenv("PADDOCK_DIFF_STEPS"); v != "" {
		steps, _ = strconv.Atoi(v)
	}
	seeds := []int64{1, 2, 3}
	if v := os.Getenv("PADDOCK_DIFF_SEED"); v != "" {
		s, _ := strconv.ParseInt(v, 10, 64)
		seeds = []int64{s}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { runDifferential(t, seed, steps) })
	}
}

func runDifferential(t *testing.T, seed int64, steps int) {
	refURL := etcdref.Start(t)
	refCli, err := clientv3.New(clientv3.Config{Endpoints: []string{refURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer refCli.Close()
	p := startPaddock(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sides := []*side{newSide(t, "etcd", refCli), newSide(t, "paddock", p.cli)}
	g := &gen{r: rand.New(rand.NewSource(seed)), s: rand.New(rand.NewSource(seed + 1000)), ref: sides[0]}
	// A watch over everything, open from the start, on each side.
	var wchs []clientv3.WatchChan
	for _, s := range sides {
		wchs = append(wchs, s.c.Watch(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithPrevKV(), clientv3.WithRev(s.revs[0]+1)))
	}
	var history []string
	for i := 0; i < steps; i++ {
		g.learn(ctx)
		desc, o := g.next()
		history = append(history, desc)
		var got []string
		for _, s := range sides {
			got = append(got, o(ctx, s))
		}
		if got[0] != got[1] {
			t.Fatalf("step %d: %s\n etcd:    %s\n paddock: %s\nhistory:\n  %s", i, desc, got[0], got[1], strings.Join(history, "\n  "))
		}
		if len(sides[0].revs) != len(sides[1].revs) {
			t.Fatalf("step %d: %s: revision counts differ: etcd %d, paddock %d", i, desc, len(sides[0].revs), len(sides[1].revs))
		}
	}
	for _, s := range sides {
		if _, err := s.c.Put(ctx, "zz-end", "x"); err != nil {
			t.Fatal(err)
		}
	}
	var evs [][]string
	for i, s := range sides {
		evs = append(evs, collectWatch(t, s, wchs[i]))
	}
	if a, b := strings.Join(evs[0], "\n"), strings.Join(evs[1], "\n"); a != b {
		t.Fatalf("live watch streams differ:\n etcd:\n%s\n paddock:\n%s", a, b)
	}
	// Resume from the compact revision (or the start) on both.
	evs = nil
	for _, s := range sides {
		from := s.rev(g.compactOrd)
		if g.compactOrd == 0 {
			from++
		}
		wch := s.c.Watch(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithPrevKV(), clientv3.WithRev(from))
		evs = append(evs, collectWatch(t, s, wch))
	}
	if a, b := strings.Join(evs[0], "\n"), strings.Join(evs[1], "\n"); a != b {
		t.Fatalf("resumed watch streams (from r%d) differ:\n etcd:\n%s\n paddock:\n%s", g.compactOrd, a, b)
	}
	t.Logf("seed %d: %d steps, %d revisions, compacted at r%d, %d watch events", seed, steps, len(sides[0].revs), g.compactOrd, len(evs[0]))
}

// renderStream runs a RangeStream and renders its chunks: how many kvs
// each holds, which carry a header, and the merged result.
func renderStream(ctx context.Context, s *side, key string, opts ...clientv3.OpOption) string {
	ch, err := s.c.GetStream(ctx, key, opts...)
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	var kvs []*mvccpb.KeyValue
	for r := range ch {
		if err := r.Err(); err != nil {
			fmt.Fprintf(&b, " error: %v", err)
			break
		}
		fmt.Fprintf(&b, " [%d", len(r.Kvs))
		if r.Header != nil {
			fmt.Fprintf(&b, " rev %s count %d more %v", s.norm(r.Header.Revision), r.Count, r.More)
		} else if r.Count != 0 || r.More {
			fmt.Fprintf(&b, " count %d more %v without header", r.Count, r.More)
		}
		b.WriteString("]")
		kvs = append(kvs, r.Kvs...)
	}
	return "chunks" + b.String() + " kvs " + s.kvs(kvs)
}

// TestDifferentialRangeStream compares RangeStream chunk by chunk with a
// real etcd over a keyspace big enough for several chunks, values large
// enough for the chunk size to be held, a history and a compaction.
func TestDifferentialRangeStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real etcd")
	}
	refURL := etcdref.Start(t)
	refCli, err := clientv3.New(clientv3.Config{Endpoints: []string{refURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer refCli.Close()
	p := startPaddock(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sides := []*side{newSide(t, "etcd", refCli), newSide(t, "paddock", p.cli)}
	write := func(f func(s *side) (int64, error)) {
		for _, s := range sides {
			rev, err := f(s)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			s.note(rev)
		}
	}
	for i := range 200 {
		v := strings.Repeat(strconv.Itoa(i%10), 100)
		if i >= 100 {
			v = strings.Repeat(v, 200) // 20,000 bytes
		}
		write(func(s *side) (int64, error) {
			r, err := s.c.Put(ctx, fmt.Sprintf("/d/%03d", i), v)
			if err != nil {
				return 0, err
			}
			return r.Header.Revision, nil
		})
	}
	compactOrd := len(sides[0].revs) - 1
	for i := 0; i < 200; i += 9 {
		write(func(s *side) (int64, error) {
			r, err := s.c.Put(ctx, fmt.Sprintf("/d/%03d", i), fmt.Sprint("changed ", i))
			if err != nil {
				return 0, err
			}
			return r.Header.Revision, nil
		})
	}
	midOrd := len(sides[0].revs) - 1
	for i := 4; i < 200; i += 13 {
		write(func(s *side) (int64, error) {
			r, err := s.c.Delete(ctx, fmt.Sprintf("/d/%03d", i))
			if err != nil {
				return 0, err
			}
			return r.Header.Revision, nil
		})
	}
	for _, s := range sides {
		if _, err := s.c.Compact(ctx, s.rev(compactOrd)); err != nil {
			t.Fatal(err)
		}
	}
	at := func(ord int) func(s *side) []clientv3.OpOption {
		return func(s *side) []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithRev(s.rev(ord))} }
	}
	cases := []struct {
		name string
		key  string
		opts []clientv3.OpOption
		rev  func(s *side) []clientv3.OpOption
	}{
		{"prefix", "/d/", []clientv3.OpOption{clientv3.WithPrefix()}, nil},
		{"limit 1", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(1)}, nil},
		{"limit 10", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(10)}, nil},
		{"limit 11", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(11)}, nil},
		{"limit 150", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(150)}, nil},
		{"limit -1", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(-1)}, nil},
		{"keys only", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}, nil},
		{"count only", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}, nil},
		{"count only limit", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithLimit(3)}, nil},
		{"revision", "/d/", []clientv3.OpOption{clientv3.WithPrefix()}, at(midOrd)},
		{"compact revision", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(25)}, at(compactOrd)},
		{"compacted revision", "/d/", []clientv3.OpOption{clientv3.WithPrefix()}, at(compactOrd - 1)},
		{"future revision", "/d/", []clientv3.OpOption{clientv3.WithPrefix()}, at(len(sides[0].revs) + 5)},
		{"from key", "/d/150", []clientv3.OpOption{clientv3.WithFromKey()}, nil},
		{"range", "/d/020", []clientv3.OpOption{clientv3.WithRange("/d/120")}, nil},
		{"key", "/d/007", nil, nil},
		{"missing key", "/d/004", nil, nil},
		{"empty", "/e/", []clientv3.OpOption{clientv3.WithPrefix()}, nil},
		{"serializable", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSerializable()}, nil},
		{"sort by value, no order", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortNone)}, nil},
		{"sort by mod descending", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)}, nil},
		{"revision filter", "/d/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithMinModRev(2)}, nil},
		{"empty key", "", nil, nil},
	}
	for _, tc := range cases {
		var got []string
		for _, s := range sides {
			opts := tc.opts
			if tc.rev != nil {
				opts = append(append([]clientv3.OpOption(nil), opts...), tc.rev(s)...)
			}
			got = append(got, renderStream(ctx, s, tc.key, opts...))
		}
		if got[0] != got[1] {
			t.Fatalf("stream %s:\n etcd:    %s\n paddock: %s", tc.name, firstDiff(got[0], got[1]), firstDiff(got[1], got[0]))
		}
		t.Logf("stream %s: %.200s", tc.name, got[0])
		// The same request as a Range, with every sort (ties on values
		// and versions over more than 12 keys).
		for si, so := range [][]clientv3.OpOption{nil,
			{clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)},
			{clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend)},
			{clientv3.WithSort(clientv3.SortByVersion, clientv3.SortNone)},
			{clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)},
			{clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)},
		} {
			got = got[:0]
			for _, s := range sides {
				opts := append(append([]clientv3.OpOption(nil), tc.opts...), so...)
				if tc.rev != nil {
					opts = append(opts, tc.rev(s)...)
				}
				r, err := s.c.Get(ctx, tc.key, opts...)
				got = append(got, render(s, err, func() string {
					return fmt.Sprintf("rev %s count %d more %v kvs %s", s.norm(r.Header.Revision), r.Count, r.More, s.kvs(r.Kvs))
				}))
			}
			if got[0] != got[1] {
				t.Fatalf("range %s (sort case %d):\n etcd:    %s\n paddock: %s", tc.name, si, firstDiff(got[0], got[1]), firstDiff(got[1], got[0]))
			}
		}
	}
}

// firstDiff is a, from a little before where it first differs from b.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-150)
	return fmt.Sprintf("...(%d bytes)%.400s", from, a[from:])
}
