package etcdkv

import (
	"bytes"
	"fmt"
	"math/rand"
	"runtime"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	gproto "google.golang.org/protobuf/proto"

	"github.com/paddockhq/paddock/proto"
)

func body(t testing.TB, m gproto.Message) []byte {
	b, err := gproto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func snap(t testing.TB, s *Store) []byte {
	e := proto.NewEncoder(nil)
	if err := s.Snapshot(e, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	return e.Bytes()
}

// randomLog applies a seeded random sequence of puts, deletes, txns,
// leases and compactions, returning the entries so they can be replayed.
type entry struct {
	zxid int64
	op   Op
	body []byte
}

func randomLog(t testing.TB, seed int64, n int) []entry {
	r := rand.New(rand.NewSource(seed))
	var out []entry
	zxid := int64(1)
	var leases []int64
	keys := []string{"a", "b", "c", "d/1", "d/2", "e"}
	rev := int64(1)
	for i := 0; i < n; i++ {
		zxid += 1 + int64(r.Intn(3))
		k := keys[r.Intn(len(keys))]
		var e entry
		switch x := r.Intn(20); {
		case x < 8:
			req := &pb.PutRequest{Key: []byte(k), Value: []byte(fmt.Sprint(r.Intn(100)))}
			if len(leases) > 0 && r.Intn(3) == 0 {
				req.Lease = leases[r.Intn(len(leases))]
			}
			e = entry{zxid, OpPut, body(t, req)}
		case x < 11:
			e = entry{zxid, OpDeleteRange, body(t, &pb.DeleteRangeRequest{Key: []byte(k), RangeEnd: []byte{0}})}
		case x < 15:
			e = entry{zxid, OpTxn, body(t, &pb.TxnRequest{
				Compare: []*pb.Compare{{Key: []byte(k), Target: pb.Compare_VERSION, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Version{Version: 1}}},
				Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(k)}}}},
				Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("f")}}}},
			})}
		case x < 17:
			e = entry{zxid, OpLeaseGrant, body(t, &pb.LeaseGrantRequest{TTL: 5})}
			leases = append(leases, zxid)
		case x < 18 && len(leases) > 0:
			e = entry{zxid, OpLeaseKeepAlive, body(t, &pb.LeaseKeepAliveRequest{ID: leases[r.Intn(len(leases))]})}
		case x < 19 && len(leases) > 0:
			id := leases[r.Intn(len(leases))]
			e = entry{zxid, OpLeaseExpire, body(t, &pb.LeaseRevokeRequest{ID: id})}
			if r.Intn(2) == 0 {
				// Decided a few entries ago: stale if renewed since.
				e.body = ExpireBody(id, zxid-int64(r.Intn(20)))
			}
		default:
			e = entry{zxid, OpCompact, body(t, &pb.CompactionRequest{Revision: rev - int64(r.Intn(3))})}
		}
		out = append(out, e)
		// Track the revision the way the store does, approximately: the
		// compaction target only needs to be plausible.
		if e.op == OpPut || e.op == OpTxn {
			rev = zxid
		}
	}
	return out
}

// sameEventsAndAccounting checks that two stores hold the same watch
// event log (with prevKV) and report the same size and version count.
func sameEventsAndAccounting(t *testing.T, seed int64, a, b *Store) {
	t.Helper()
	ea, _, errA := a.EventsSince(a.CompactRev(), []byte{0}, []byte{0}, 1<<30, true)
	eb, _, errB := b.EventsSince(b.CompactRev(), []byte{0}, []byte{0}, 1<<30, true)
	if errA != nil || errB != nil || len(ea) != len(eb) {
		t.Fatalf("seed %d: event logs differ: %d vs %d (%v %v)", seed, len(ea), len(eb), errA, errB)
	}
	for i := range ea {
		if !gproto.Equal(ea[i], eb[i]) {
			t.Fatalf("seed %d: event %d differs: %v vs %v", seed, i, ea[i], eb[i])
		}
	}
	if a.Size() != b.Size() || a.Versions() != b.Versions() {
		t.Fatalf("seed %d: accounting differs: size %d/%d versions %d/%d", seed, a.Size(), b.Size(), a.Versions(), b.Versions())
	}
}

// Two stores fed the same log are identical, byte for byte; a store
// restored from a snapshot taken midway and fed the rest ends identical
// too, including its watch event log.
func TestDeterminismAndSnapshot(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		log := randomLog(t, seed, 400)
		a, b := New(), New()
		var mid []byte
		for i, e := range log {
			ra, rb := a.Apply(e.zxid, e.op, e.body), b.Apply(e.zxid, e.op, e.body)
			if ra.Rev != rb.Rev || (ra.Err == nil) != (rb.Err == nil) {
				t.Fatalf("seed %d entry %d: results differ", seed, i)
			}
			if i == len(log)/2 {
				mid = snap(t, a)
			}
		}
		if !bytes.Equal(snap(t, a), snap(t, b)) {
			t.Fatalf("seed %d: replicas differ", seed)
		}
		c := New()
		if err := c.Restore(proto.NewDecoder(mid), SnapshotFormat); err != nil {
			t.Fatal(err)
		}
		for _, e := range log[len(log)/2+1:] {
			c.Apply(e.zxid, e.op, e.body)
		}
		if !bytes.Equal(snap(t, a), snap(t, c)) {
			t.Fatalf("seed %d: restored replica differs", seed)
		}
		sameEventsAndAccounting(t, seed, a, c)
	}
}

// A failed txn check changes nothing and does not move the revision.
func TestTxnErrorIsAtomic(t *testing.T) {
	s := New()
	s.Apply(10, OpPut, body(t, &pb.PutRequest{Key: []byte("a"), Value: []byte("1")}))
	before := snap(t, s)
	res := s.Apply(11, OpTxn, body(t, &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("b"), Value: []byte("x")}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Lease: 99}}},
	}}))
	if res.Err != ErrLeaseNotFound || res.Rev != 10 || !bytes.Equal(before, snap(t, s)) {
		t.Fatalf("failed txn: %+v", res)
	}
}

// Memory per key for Kubernetes-like objects: run with -v to see the
// figures (docs/ETCD.md quotes them).
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	for _, size := range []int{1024, 2048, 4096} {
		const n = 20000
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		s := New()
		val := bytes.Repeat([]byte("x"), size)
		for i := 0; i < n; i++ {
			req := &pb.PutRequest{Key: []byte(fmt.Sprintf("/registry/pods/namespace-%03d/pod-%06d", i%100, i)), Value: val}
			s.Apply(int64(i+2), OpPut, body(t, req))
		}
		// One update per key, then compaction of the first versions: the
		// steady state of a compacted keyspace is one version per key.
		for i := 0; i < n; i++ {
			req := &pb.PutRequest{Key: []byte(fmt.Sprintf("/registry/pods/namespace-%03d/pod-%06d", i%100, i)), Value: val}
			s.Apply(int64(n+i+2), OpPut, body(t, req))
		}
		s.Apply(int64(2*n+2), OpCompact, body(t, &pb.CompactionRequest{Revision: int64(2*n + 1)}))
		runtime.GC()
		runtime.ReadMemStats(&m1)
		per := float64(m1.HeapAlloc-m0.HeapAlloc) / n
		t.Logf("value %d B: %.0f bytes/key on the heap (%.0f overhead), %d versions, Size()=%d", size, per, per-float64(size), s.Versions(), s.Size())
		runtime.KeepAlive(s)
	}
}

// A version kept below one compaction is dropped by the next one once a
// newer version sits at or below it (found by the differential test: the
// event at the compact revision must have no prev_kv, as in etcd).
func TestCompactDropsVersionKeptByEarlierCompaction(t *testing.T) {
	s := New()
	put := func(z int64) { s.Apply(z, OpPut, body(t, &pb.PutRequest{Key: []byte("k"), Value: []byte{byte(z)}})) }
	put(10)
	s.Apply(11, OpCompact, body(t, &pb.CompactionRequest{Revision: 10}))
	put(20)
	s.Apply(21, OpCompact, body(t, &pb.CompactionRequest{Revision: 20}))
	if s.Versions() != 1 {
		t.Fatalf("versions %d, want 1", s.Versions())
	}
	evs, _, err := s.EventsSince(20, []byte("k"), nil, 10, true)
	if err != nil || len(evs) != 1 || evs[0].PrevKv != nil {
		t.Fatalf("event at compact revision: %v %+v", err, evs)
	}
}

// TestStaleLeaseExpiry: an expiry names the last renewal the leader had
// applied when it decided. One decided before a keep-alive that is ahead
// of it in the log changes nothing (that keep-alive answered the full
// TTL); one decided after the last renewal, or one without the stamp
// (from an older leader), expires the lease. A snapshot keeps what the
// decision needs.
func TestStaleLeaseExpiry(t *testing.T) {
	s := New()
	if r := s.Apply(10, OpLeaseGrant, body(t, &pb.LeaseGrantRequest{ID: 7, TTL: 5})); r.Err != nil || r.Granted == nil || r.Granted.Renewed != 10 {
		t.Fatalf("grant: %+v", r)
	}
	s.Apply(11, OpPut, body(t, &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 7}))
	ka := s.Apply(12, OpLeaseKeepAlive, body(t, &pb.LeaseKeepAliveRequest{ID: 7}))
	if ka.KeptAlive != 7 || ka.Resp.(*pb.LeaseKeepAliveResponse).TTL != 5 {
		t.Fatalf("keep-alive: %+v", ka)
	}
	mid := snap(t, s)
	for _, st := range []*Store{s, func() *Store {
		c := New()
		if err := c.Restore(proto.NewDecoder(mid), SnapshotFormat); err != nil {
			t.Fatal(err)
		}
		return c
	}()} {
		// Decided when the grant (10) was the last renewal applied.
		r := st.Apply(13, OpLeaseExpire, ExpireBody(7, 10))
		if r.Err != nil || r.Changed || r.Revoked != 0 {
			t.Fatalf("stale expiry applied: %+v", r)
		}
		if _, keys, ok := st.Lease(7); !ok || len(keys) != 1 {
			t.Fatalf("lease after a stale expiry: %v %v", ok, keys)
		}
		// Decided after the keep-alive.
		r = st.Apply(14, OpLeaseExpire, ExpireBody(7, 12))
		if r.Err != nil || !r.Changed || r.Revoked != 7 {
			t.Fatalf("expiry not applied: %+v", r)
		}
		if got, _ := st.Range(&pb.RangeRequest{Key: []byte("k")}); len(got.Kvs) != 0 {
			t.Fatal("key of the expired lease still there")
		}
	}
	// No stamp: unconditional.
	s.Apply(15, OpLeaseGrant, body(t, &pb.LeaseGrantRequest{ID: 8, TTL: 5}))
	s.Apply(16, OpLeaseKeepAlive, body(t, &pb.LeaseKeepAliveRequest{ID: 8}))
	if r := s.Apply(17, OpLeaseExpire, body(t, &pb.LeaseRevokeRequest{ID: 8})); r.Revoked != 8 {
		t.Fatalf("unstamped expiry: %+v", r)
	}
	// The stamp is a field of our own: etcd's decoder still reads the
	// lease.
	var req pb.LeaseRevokeRequest
	if err := gproto.Unmarshal(ExpireBody(9, 0), &req); err != nil || req.ID != 9 {
		t.Fatalf("expiry body as etcd's request: %v %+v", err, &req)
	}
	if stamp, ok := expireStamp(ExpireBody(9, 0)); !ok || stamp != 0 {
		t.Fatalf("zero stamp: %d %v", stamp, ok)
	}
}

// A View is the keyspace as it was when taken, however the store changes
// afterwards (puts, deletes, lease expiry, compaction), and taking views
// changes nothing the store itself answers: its snapshot and its watch
// event log (with prevKV) equal those of a twin that never took one. The
// views are written while the store applies, on another goroutine, so
// `go test -race` checks that apply never writes what a view reads.
func TestViewIsFrozenWhileApplyGoesOn(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		log := randomLog(t, seed, 600)
		a, twin := New(), New()
		type taken struct {
			want []byte
			view *View
			done chan []byte
		}
		var views []taken
		// check waits for (or, unless wait, polls) each view's bytes and
		// releases it on this goroutine, the store's only writer, as the
		// server does under its lock; later changes write in place again.
		check := func(wait bool) {
			kept := views[:0]
			for _, tk := range views {
				var got []byte
				if wait {
					got = <-tk.done
				} else {
					select {
					case got = <-tk.done:
					default:
						kept = append(kept, tk)
						continue
					}
				}
				if !bytes.Equal(got, tk.want) {
					t.Fatalf("seed %d: a view is not the keyspace as it was when taken", seed)
				}
				tk.view.Release()
			}
			views = kept
		}
		for i, e := range log {
			a.Apply(e.zxid, e.op, e.body)
			twin.Apply(e.zxid, e.op, e.body)
			check(false)
			if i%50 == 25 {
				tk := taken{want: snap(t, a), done: make(chan []byte, 1)}
				v := a.View()
				tk.view = v
				go func() {
					enc := proto.NewEncoder(nil)
					if err := v.Snapshot(enc, func() error { return nil }); err != nil {
						panic(err)
					}
					tk.done <- enc.Bytes()
				}()
				views = append(views, tk)
			}
		}
		check(true)
		if !bytes.Equal(snap(t, a), snap(t, twin)) {
			t.Fatalf("seed %d: taking views changed the keyspace", seed)
		}
		sameEventsAndAccounting(t, seed, a, twin)
	}
}
