package faults

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// kv is a present key as a response shows it.
func kv(value, version, mod, create int64) EtcdKV {
	return EtcdKV{Exists: true, Value: value, Version: version, ModRev: mod, Create: create}
}

func get(key int, rev int64, k EtcdKV) EtcdOutput {
	o := EtcdOutput{Rev: rev}
	o.KVs[key] = k
	return o
}

// TestEtcdModel feeds hand-made histories to the checker: the legal ones
// must pass and each kind of violation must be caught.
func TestEtcdModel(t *testing.T) {
	unknown := EtcdOutput{Unknown: true}
	op := func(client int, in EtcdInput, out EtcdOutput, call, ret int64) EtcdOp {
		if out.Unknown {
			ret = unknownReturn
		}
		return EtcdOp{Client: client, In: in, Out: out, Call: call, Return: ret}
	}
	put := func(key int, v int64) EtcdInput { return EtcdInput{Kind: 'p', Key: key, Value: v} }
	cas := func(key int, mod, v int64) EtcdInput { return EtcdInput{Kind: 'c', Key: key, ModRev: mod, Value: v} }
	g := func(key int) EtcdInput { return EtcdInput{Kind: 'g', Key: key} }
	del := func(key int) EtcdInput { return EtcdInput{Kind: 'd', Key: key} }
	tests := []struct {
		name  string
		ops   []EtcdOp
		legal bool
	}{
		{"put then read", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(1, g(0), get(0, 5, kv(10, 1, 5, 5)), 2, 3),
		}, true},
		{"stale read after acknowledged put", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(1, g(0), get(0, 1, EtcdKV{}), 2, 3),
		}, false},
		{"concurrent read may see either", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 10),
			op(1, g(0), get(0, 1, EtcdKV{}), 1, 2),
			op(2, g(0), get(0, 5, kv(10, 1, 5, 5)), 3, 4),
		}, true},
		{"revision must grow", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(0, put(1, 11), EtcdOutput{Rev: 5}, 2, 3),
		}, false},
		{"read bumps nothing", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(1, g(1), get(1, 6, EtcdKV{}), 2, 3),
		}, false},
		{"cas on mod revision", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(0, cas(0, 5, 11), EtcdOutput{Rev: 7, Succeeded: true}, 2, 3),
			op(1, cas(0, 5, 12), get(0, 7, kv(11, 2, 7, 5)), 4, 5),
		}, true},
		{"two cas from the same revision both succeed", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(0, cas(0, 5, 11), EtcdOutput{Rev: 7, Succeeded: true}, 2, 3),
			op(1, cas(0, 5, 12), EtcdOutput{Rev: 8, Succeeded: true}, 2, 3),
		}, false},
		{"create-if-absent", []EtcdOp{
			op(0, cas(1, 0, 20), EtcdOutput{Rev: 3, Succeeded: true}, 0, 1),
			op(1, cas(1, 0, 21), get(1, 3, kv(20, 1, 3, 3)), 2, 3),
		}, true},
		{"unknown put applied later seen", []EtcdOp{
			op(0, put(0, 10), unknown, 0, 0),
			op(1, g(0), get(0, 9, kv(10, 1, 9, 9)), 5, 6),
		}, true},
		{"unknown put never applied", []EtcdOp{
			op(0, put(0, 10), unknown, 0, 0),
			op(1, g(0), get(0, 1, EtcdKV{}), 5, 6),
		}, true},
		{"value nobody wrote", []EtcdOp{
			op(0, put(0, 10), unknown, 0, 0),
			op(1, g(0), get(0, 9, kv(99, 1, 9, 9)), 5, 6),
		}, false},
		{"delete then version restarts", []EtcdOp{
			op(0, put(2, 1), EtcdOutput{Rev: 2}, 0, 1),
			op(0, del(2), EtcdOutput{Rev: 3, Deleted: 1}, 2, 3),
			op(0, del(2), EtcdOutput{Rev: 3}, 4, 5),
			op(0, put(2, 2), EtcdOutput{Rev: 4}, 6, 7),
			op(1, g(2), get(2, 4, kv(2, 1, 4, 4)), 8, 9),
		}, true},
		{"lost delete", []EtcdOp{
			op(0, put(2, 1), EtcdOutput{Rev: 2}, 0, 1),
			op(0, del(2), EtcdOutput{Rev: 3, Deleted: 1}, 2, 3),
			op(1, g(2), get(2, 3, kv(1, 1, 2, 2)), 4, 5),
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := CheckEtcd(tc.ops, false, 0)
			if got := res == porcupine.Ok; got != tc.legal {
				t.Fatalf("linearizable = %v (%v), want %v", got, res, tc.legal)
			}
		})
	}
}

// TestEtcdWatchCheck feeds hand-made watch streams to the watch checks.
func TestEtcdWatchCheck(t *testing.T) {
	putEv := func(key int, value, version, mod, create int64, prev *EtcdKV) watchEvent {
		ev := watchEvent{put: true, key: key, kv: kv(value, version, mod, create)}
		if prev != nil {
			ev.prev, ev.hasPrev = *prev, true
		}
		return ev
	}
	first := kv(10, 1, 2, 2)
	good := []watchResp{
		{events: []watchEvent{putEv(0, 10, 1, 2, 2, nil)}},
		{events: []watchEvent{putEv(0, 11, 2, 3, 2, &first)}},
	}
	ops := []EtcdOp{
		{Client: 0, In: EtcdInput{Kind: 'p', Key: 0, Value: 10}, Out: EtcdOutput{Rev: 2}},
		{Client: 0, In: EtcdInput{Kind: 'p', Key: 0, Value: 11}, Out: EtcdOutput{Rev: 3}},
		{Client: 1, In: EtcdInput{Kind: 'g', Key: 0}, Out: get(0, 2, first)},
	}
	tests := []struct {
		name    string
		streams [][]watchResp
		ops     []EtcdOp
		ok      bool
	}{
		{"agreeing streams", [][]watchResp{good, good}, ops, true},
		{"gap", [][]watchResp{good, good[:1]}, ops, false},
		{"duplicate", [][]watchResp{good, append(append([]watchResp{}, good...), good[1])}, ops, false},
		{"reordered", [][]watchResp{good, {good[1], good[0]}}, ops, false},
		{"wrong prev_kv", [][]watchResp{good, {good[0], {events: []watchEvent{putEv(0, 11, 2, 3, 2, nil)}}}}, ops, false},
		{"acknowledged write missing", [][]watchResp{good[:1], good[:1]}, ops, false},
		{"read disagrees", [][]watchResp{good, good}, append(append([]EtcdOp{}, ops...),
			EtcdOp{Client: 1, In: EtcdInput{Kind: 'g', Key: 0}, Out: get(0, 3, first)}), false},
		{"read of the past agrees", [][]watchResp{good, good}, append(append([]EtcdOp{}, ops...),
			EtcdOp{Client: 1, In: EtcdInput{Kind: 'h', AtRev: 2}, Out: get(0, 3, first)}), true},
		{"read of the past disagrees", [][]watchResp{good, good}, append(append([]EtcdOp{}, ops...),
			EtcdOp{Client: 1, In: EtcdInput{Kind: 'h', AtRev: 2}, Out: get(0, 3, kv(11, 2, 3, 2))}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewEtcdWorkload(EtcdWorkloadOptions{})
			for i, s := range tc.streams {
				w.watchers = append(w.watchers, &etcdWatcher{member: i + 1, resps: s})
			}
			r := &EtcdReport{Counts: map[string]int{}}
			w.checkWatches(tc.ops, r)
			if r.OK() != tc.ok {
				t.Fatalf("ok = %v, want %v: %v", r.OK(), tc.ok, r.Violations)
			}
		})
	}
}

// TestEtcdModelForeign: with other keys moving the revision, a read may
// see a higher revision than the model's last write, but values still
// must not go stale.
func TestEtcdModelForeign(t *testing.T) {
	put := EtcdOp{Client: 0, In: EtcdInput{Kind: 'p', Key: 0, Value: 10}, Out: EtcdOutput{Rev: 5}, Call: 0, Return: 1}
	tests := []struct {
		name  string
		read  EtcdOutput
		legal bool
	}{
		{"revision moved by others", get(0, 9, kv(10, 1, 5, 5)), true},
		{"stale value", get(0, 9, EtcdKV{}), false},
		{"revision went back", get(0, 4, kv(10, 1, 5, 5)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ops := []EtcdOp{put, {Client: 1, In: EtcdInput{Kind: 'g', Key: 0}, Out: tc.read, Call: 2, Return: 3}}
			res, _ := CheckEtcd(ops, true, 0)
			if got := res == porcupine.Ok; got != tc.legal {
				t.Fatalf("linearizable = %v, want %v", got, tc.legal)
			}
		})
	}
}

// TestEtcdModelCompaction: compactions, reads of the past and the
// compactor's compact_rev_key CAS in the model.
func TestEtcdModelCompaction(t *testing.T) {
	op := func(client int, in EtcdInput, out EtcdOutput, call, ret int64) EtcdOp {
		if out.Unknown {
			ret = unknownReturn
		}
		return EtcdOp{Client: client, In: in, Out: out, Call: call, Return: ret}
	}
	put := func(key int, v int64) EtcdInput { return EtcdInput{Kind: 'p', Key: key, Value: v} }
	compact := func(rev int64) EtcdInput { return EtcdInput{Kind: 'x', AtRev: rev} }
	past := func(rev int64) EtcdInput { return EtcdInput{Kind: 'h', AtRev: rev} }
	ckTxn := func(version, v int64) EtcdInput { return EtcdInput{Kind: 'k', Version: version, Value: v} }
	lost := func(rev int64, k EtcdKV) EtcdOutput { return EtcdOutput{Rev: rev, CompactKey: k} }
	ok := func(rev int64) EtcdOutput { return EtcdOutput{Rev: rev} }
	won := func(rev int64) EtcdOutput { return EtcdOutput{Rev: rev, Succeeded: true} }
	compacted := EtcdOutput{Compacted: true}
	unknown := EtcdOutput{Unknown: true}
	base := []EtcdOp{
		op(0, put(0, 10), ok(3), 0, 1),
		op(0, put(0, 11), ok(5), 2, 3),
	}
	tests := []struct {
		name  string
		ops   []EtcdOp
		legal bool
	}{
		{"read above the compaction answers", []EtcdOp{
			op(1, compact(5), ok(5), 4, 5),
			op(2, past(5), ok(5), 6, 7),
		}, true},
		{"read below a completed compaction answers", []EtcdOp{
			op(1, compact(5), ok(5), 4, 5),
			op(2, past(3), ok(5), 6, 7),
		}, false},
		{"read below a completed compaction fails", []EtcdOp{
			op(1, compact(5), ok(5), 4, 5),
			op(2, past(3), compacted, 6, 7),
		}, true},
		{"read at the compact revision fails", []EtcdOp{
			op(1, compact(5), ok(5), 4, 5),
			op(2, past(5), compacted, 6, 7),
		}, false},
		{"read compacted before any compaction", []EtcdOp{
			op(2, past(3), compacted, 4, 5),
		}, false},
		{"read concurrent with the compaction may go either way", []EtcdOp{
			op(1, compact(5), ok(5), 4, 9),
			op(2, past(3), ok(5), 5, 6),
			op(3, past(3), compacted, 7, 8),
		}, true},
		{"compaction does not come undone", []EtcdOp{
			op(1, compact(5), ok(5), 4, 9),
			op(2, past(3), compacted, 5, 6),
			op(3, past(3), ok(5), 7, 8),
		}, false},
		{"unknown compaction may have applied", []EtcdOp{
			op(1, compact(5), unknown, 4, 0),
			op(2, past(3), ok(5), 5, 6),
			op(3, past(3), compacted, 7, 8),
		}, true},
		{"compact twice at one revision", []EtcdOp{
			op(1, compact(5), ok(5), 4, 5),
			op(2, compact(5), ok(5), 6, 7),
		}, false},
		{"compact again at one revision fails", []EtcdOp{
			op(1, compact(5), ok(5), 4, 5),
			op(2, compact(5), compacted, 6, 7),
			op(2, compact(3), compacted, 8, 9),
		}, true},
		{"compact fails with nothing compacted", []EtcdOp{
			op(1, compact(5), compacted, 4, 5),
		}, false},
		{"compact beyond the revision", []EtcdOp{
			op(1, compact(9), ok(5), 4, 5),
		}, false},
		{"compaction moves the revision", []EtcdOp{
			op(1, compact(5), ok(6), 4, 5),
		}, false},
		{"compactor CAS: one wins, the other sees it", []EtcdOp{
			op(1, ckTxn(0, 5), won(6), 4, 5),
			op(2, ckTxn(0, 5), lost(6, kv(5, 1, 6, 6)), 6, 7),
			op(2, ckTxn(1, 6), won(8), 8, 9),
		}, true},
		{"compactor CAS: both win", []EtcdOp{
			op(1, ckTxn(0, 5), won(6), 4, 5),
			op(2, ckTxn(0, 5), won(8), 6, 7),
		}, false},
		{"compactor CAS: lost with the version it compared", []EtcdOp{
			op(1, ckTxn(0, 5), won(6), 4, 5),
			op(2, ckTxn(1, 5), lost(6, kv(5, 1, 6, 6)), 6, 7),
		}, false},
		{"compactor CAS: unknown then seen", []EtcdOp{
			op(1, ckTxn(0, 5), unknown, 4, 0),
			op(1, ckTxn(0, 5), lost(7, kv(5, 1, 7, 7)), 6, 7),
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ops := append(append([]EtcdOp{}, base...), tc.ops...)
			res, _ := CheckEtcd(ops, false, 0)
			if got := res == porcupine.Ok; got != tc.legal {
				t.Fatalf("linearizable = %v (%v), want %v", got, res, tc.legal)
			}
		})
	}
}

// TestEtcdProbeCheck feeds hand-made probes (short watches around the
// compact revision) to checkProbes.
func TestEtcdProbeCheck(t *testing.T) {
	putEv := func(key int, value, version, mod, create int64, prev *EtcdKV) watchEvent {
		ev := watchEvent{put: true, key: key, kv: kv(value, version, mod, create)}
		if prev != nil {
			ev.prev, ev.hasPrev = *prev, true
		}
		return ev
	}
	first := kv(10, 1, 2, 2)
	r2 := watchResp{events: []watchEvent{putEv(0, 10, 1, 2, 2, nil)}}
	r3 := watchResp{events: []watchEvent{putEv(0, 11, 2, 3, 2, &first)}}
	r3bare := watchResp{events: []watchEvent{putEv(0, 11, 2, 3, 2, nil)}}
	r5 := watchResp{events: []watchEvent{putEv(1, 12, 1, 5, 5, nil)}}
	stream := []watchResp{r2, r3, r5}
	// Compact(3) answers at time 10; a write issued at 11 took revision 5.
	ops := []EtcdOp{
		{Client: 0, In: EtcdInput{Kind: 'p', Key: 0, Value: 10}, Out: EtcdOutput{Rev: 2}, Call: 0, Return: 1},
		{Client: 0, In: EtcdInput{Kind: 'p', Key: 0, Value: 11}, Out: EtcdOutput{Rev: 3}, Call: 2, Return: 3},
		{Client: 1, In: EtcdInput{Kind: 'x', AtRev: 3}, Out: EtcdOutput{Rev: 3}, Call: 4, Return: 10},
		{Client: 0, In: EtcdInput{Kind: 'p', Key: 1, Value: 12}, Out: EtcdOutput{Rev: 5}, Call: 11, Return: 12},
	}
	tests := []struct {
		name string
		p    watchProbe
		ok   bool
	}{
		{"from the compact revision, without prev_kv there", watchProbe{from: 3, created: 5, end: 20, resps: []watchResp{r3bare, r5}}, true},
		{"from the compact revision, with prev_kv", watchProbe{from: 3, created: 5, end: 20, resps: []watchResp{r3, r5}}, true},
		{"below a compaction the member had applied, streaming", watchProbe{from: 2, created: 5, end: 20, resps: stream}, false},
		{"below a compaction the member had not applied yet", watchProbe{from: 2, created: 3, end: 20, resps: stream[:2]}, true},
		{"cancelled, compact revision above the start", watchProbe{from: 2, compacted: 3, end: 20}, true},
		{"cancelled, compact revision at the start", watchProbe{from: 3, compacted: 3, end: 20}, false},
		{"cancelled at a revision nobody compacted to", watchProbe{from: 2, compacted: 4, end: 20}, false},
		{"cancelled at a compaction asked for later", watchProbe{from: 2, compacted: 3, end: 3}, false},
		{"missed a revision", watchProbe{from: 2, created: 3, end: 20, resps: []watchResp{r2, r5}}, false},
		{"prev_kv missing away from the compact revision", watchProbe{from: 2, created: 3, end: 20, resps: []watchResp{r2, r3bare}}, false},
		{"a revision out of order", watchProbe{from: 3, created: 5, end: 20, resps: []watchResp{r5, r3}}, false},
		{"failed probe", watchProbe{from: 2, err: "no leader"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewEtcdWorkload(EtcdWorkloadOptions{})
			w.watchers = []*etcdWatcher{{member: 1, resps: stream}}
			p := tc.p
			p.member = 1
			w.probes = []*watchProbe{&p}
			r := &EtcdReport{Counts: map[string]int{}}
			canonical := w.checkWatches(ops, r)
			if !r.OK() {
				t.Fatalf("watch check: %v", r.Violations)
			}
			w.checkProbes(ops, canonical, r)
			if r.OK() != tc.ok {
				t.Fatalf("ok = %v, want %v: %v", r.OK(), tc.ok, r.Violations)
			}
		})
	}
}

// TestEtcdLeaseSafety feeds hand-made lease records to checkLeaseSafety.
func TestEtcdLeaseSafety(t *testing.T) {
	s := func(d float64) int64 { return int64(d * float64(time.Second)) }
	tests := []struct {
		name    string
		l       leaseRecord
		keyGone int64 // a watcher saw the key's DELETE then (0: never)
		ok      bool
	}{
		{"expired after TTL past the last keep-alive", leaseRecord{ttl: 2, renewals: []int64{0, s(1)}, gone: []leaseGone{{at: s(3.1)}}}, 0, true},
		{"expired early", leaseRecord{ttl: 2, renewals: []int64{0, s(1)}, gone: []leaseGone{{at: s(2.5)}}}, 0, false},
		{"key deleted early", leaseRecord{ttl: 2, renewals: []int64{0, s(1)}}, s(2.5), false},
		{"key deleted in time", leaseRecord{ttl: 2, renewals: []int64{0, s(1)}}, s(3.2), true},
		{"within the tolerance", leaseRecord{ttl: 2, renewals: []int64{0, s(1)}, gone: []leaseGone{{at: s(2.96)}}}, 0, true},
		{"just past the tolerance", leaseRecord{ttl: 2, renewals: []int64{0, s(1)}, gone: []leaseGone{{at: s(2.94)}}}, 0, false},
		{"revoked before", leaseRecord{ttl: 2, renewals: []int64{0, s(1)}, revoked: s(2), gone: []leaseGone{{at: s(2.1)}}}, s(2.2), true},
		{"gone before the revoke was sent", leaseRecord{ttl: 2, renewals: []int64{0, s(1)}, revoked: s(2.8), gone: []leaseGone{{at: s(2.5)}}}, 0, false},
		{"renewed after it was seen gone", leaseRecord{ttl: 2, renewals: []int64{0, s(3)}, gone: []leaseGone{{at: s(2.5)}}}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewEtcdWorkload(EtcdWorkloadOptions{})
			l := tc.l
			l.key = "lease/0"
			w.leases = []*leaseRecord{&l}
			if tc.keyGone != 0 {
				w.leaseKeyGone[l.key] = leaseGone{at: tc.keyGone, how: "DELETE"}
			}
			r := &EtcdReport{Counts: map[string]int{}}
			w.checkLeaseSafety(r)
			if r.OK() != tc.ok {
				t.Fatalf("ok = %v, want %v: %v", r.OK(), tc.ok, r.Violations)
			}
		})
	}
}
