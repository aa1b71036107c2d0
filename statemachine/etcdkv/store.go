// Package etcdkv is the etcd v3 keyspace inside Paddock's replicated state
// machine: ordered keys with an MVCC history window, one revision space
// (the zxid of the last entry that changed the keyspace), compaction, and
// leases. It sits next to the ZooKeeper tree in statemachine.State and is
// changed only by Apply, which is deterministic: the same log gives the
// same keyspace on every replica.
//
// Entry bodies are etcd's own protobuf requests (etcdserverpb): Put,
// DeleteRange, Txn, Compaction, LeaseGrant, LeaseRevoke (client revoke and
// leader-decided expiry) and LeaseKeepAlive. Their field numbers are
// etcd's public wire contract, so the log format is as stable as etcd's
// API. Results are etcd's responses.
//
// Revisions. Every entry that changes the keyspace is one revision: its
// zxid. All changes of one entry (a Txn, a DeleteRange of many keys, the
// keys of a revoked lease) share it and are ordered by a sub-revision, as
// in etcd. Revisions are monotonic but not dense (ZooKeeper writes and
// internal entries take zxids too). Reads never change the revision.
//
// History. Per key, a chain of versions: every version with revision >=
// the compact revision, plus the newest one below it. Range at revision R
// reads the newest version <= R. Compact(R) drops the rest and is itself a
// log entry, so every replica compacts at the same point. The watch event
// log is every version with revision >= the compact revision, in
// (revision, sub) order: a watch may resume from any revision not below
// the compact revision, including deletions at exactly that revision.
//
// A Store is not safe for concurrent use; statemachine's caller guards it.
package etcdkv

import (
	"bytes"
	"errors"
	"sort"

	"github.com/google/btree"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Errors returned by apply and reads; the gRPC layer maps each to etcd's
// rpctypes error of the same meaning, word for word.
var (
	ErrCompacted      = errors.New("mvcc: required revision has been compacted")
	ErrFutureRev      = errors.New("mvcc: required revision is a future revision")
	ErrKeyNotFound    = errors.New("etcdserver: key not found")
	ErrLeaseNotFound  = errors.New("lease not found")
	ErrLeaseExists    = errors.New("lease already exists")
	ErrLeaseTTLTooBig = errors.New("too large lease TTL")
	ErrBadRequest     = errors.New("etcdkv: malformed request")
)

const (
	// MinLeaseTTL is the smallest TTL a lease gets, in seconds (etcd's
	// minimum for its default election timeout: 1.5 elections, rounded up).
	MinLeaseTTL = 2
	// MaxLeaseTTL is etcd's largest lease TTL in seconds.
	MaxLeaseTTL = 9000000000
)

// version is one version of a key. ver == 0 marks a tombstone (the key was
// deleted at rev).
type version struct {
	rev    int64
	sub    int32
	create int64
	ver    int64
	lease  int64
	value  []byte
}

func (v *version) live() bool { return v.ver != 0 }

// keyEntry is a key and its history, oldest first.
//
// Copy-on-write: while a View is out (a snapshot being written on another
// goroutine), an entry whose gen is older than its store's gen is shared
// with it, so apply never writes its fields; it puts a copy with the
// current gen in the tree first (Store.mutable). Once every view is
// released, entries are written in place again. A copy shares vs's backing array, which
// is safe because versions are only ever appended past a view's length,
// never written in place; compaction builds a new array.
type keyEntry struct {
	key string
	vs  []version
	gen uint64
	// next is the copy that replaced this entry in the tree, if one did.
	// Apply writes it on a shared entry, which is race-free because a
	// View never reads it; current follows it.
	next *keyEntry
}

// current is the entry that holds k's key in the tree now: k itself, or
// the copy that replaced it (event refs may point at superseded entries).
func (k *keyEntry) current() *keyEntry {
	for k.next != nil {
		k = k.next
	}
	return k
}

// at returns the newest version with rev <= r, or nil.
func (k *keyEntry) at(r int64) *version {
	i := sort.Search(len(k.vs), func(i int) bool { return k.vs[i].rev > r })
	if i == 0 {
		return nil
	}
	return &k.vs[i-1]
}

// latest returns the newest version if the key is live, else nil.
func (k *keyEntry) latest() *version {
	if len(k.vs) == 0 || !k.vs[len(k.vs)-1].live() {
		return nil
	}
	return &k.vs[len(k.vs)-1]
}

// find returns the index of the version (rev, sub).
func (k *keyEntry) find(rev int64, sub int32) int {
	i := sort.Search(len(k.vs), func(i int) bool {
		v := &k.vs[i]
		return v.rev > rev || (v.rev == rev && v.sub >= sub)
	})
	if i < len(k.vs) && k.vs[i].rev == rev && k.vs[i].sub == sub {
		return i
	}
	return -1
}

// eventRef points at one version: the event that created it.
type eventRef struct {
	k   *keyEntry
	rev int64
	sub int32
}

// Lease is a granted lease.
type Lease struct {
	ID  int64
	TTL int64 // granted TTL, seconds
	// Renewed is the zxid of the lease's grant or of its last keep-alive:
	// an expiry decided before it is stale (see ExpireBody).
	Renewed int64
	// keys are the live keys attached to the lease.
	keys map[string]struct{}
}

// Store is the etcd keyspace.
type Store struct {
	tree       *btree.BTreeG[*keyEntry]
	gen        uint64 // bumped by View: entries of older gens may be shared
	views      int    // views taken and not yet released
	rev        int64
	compactRev int64
	events     []eventRef
	leases     map[int64]*Lease
	size       int64 // approximate bytes of keys and values held
	versions   int64
}

func lessKey(a, b *keyEntry) bool { return a.key < b.key }

// New returns an empty keyspace at revision 1 (as a fresh etcd).
func New() *Store {
	return &Store{tree: btree.NewG(32, lessKey), rev: 1, leases: map[int64]*Lease{}}
}

// Rev is the current revision: the zxid of the last entry that changed
// the keyspace (1 while it never changed).
func (s *Store) Rev() int64 { return s.rev }

// CompactRev is the revision of the last compaction (0 if none).
func (s *Store) CompactRev() int64 { return s.compactRev }

// Size is an approximation of the bytes held (keys, values and per-version
// overhead), reported as etcd's db size.
func (s *Store) Size() int64 { return s.size }

// Keys is the number of keys with any retained history.
func (s *Store) Keys() int { return s.tree.Len() }

// Versions is the number of retained versions (including tombstones).
func (s *Store) Versions() int64 { return s.versions }

// Events is the number of events retained for watch replay.
func (s *Store) Events() int { return len(s.events) }

// versionOverhead approximates the per-version bookkeeping bytes (the
// version struct, its event ref and tree share).
const versionOverhead = 80

// mutable returns k if apply may write it, else a private copy of it put
// in k's place in the tree (see keyEntry). Event refs to the old entry stay
// valid: it still holds every version it held.
func (s *Store) mutable(k *keyEntry) *keyEntry {
	if k.gen == s.gen || s.views == 0 {
		return k
	}
	nk := &keyEntry{key: k.key, vs: k.vs, gen: s.gen}
	s.tree.ReplaceOrInsert(nk)
	k.next = nk
	return nk
}

func (s *Store) get(key string) *keyEntry {
	k, _ := s.tree.Get(&keyEntry{key: key})
	return k
}

// rangeKeys calls f for each key entry in [key, end) in key order; end nil
// means the single key, end empty (from "\x00") means every key >= key.
func (s *Store) rangeKeys(key, end []byte, f func(*keyEntry) bool) {
	if end == nil {
		if k := s.get(string(key)); k != nil {
			f(k)
		}
		return
	}
	pivot := &keyEntry{key: string(key)}
	if len(end) == 0 {
		s.tree.AscendGreaterOrEqual(pivot, f)
		return
	}
	if bytes.Compare(key, end) >= 0 {
		return
	}
	s.tree.AscendRange(pivot, &keyEntry{key: string(end)}, f)
}

// normEnd turns a request's range_end into rangeKeys' form: nil for a
// single key, empty for ">= key" ("\x00").
func normEnd(end []byte) []byte {
	if len(end) == 0 {
		return nil
	}
	if len(end) == 1 && end[0] == 0 {
		return []byte{}
	}
	return end
}

// InRange reports whether key is in the watch/request range (key, end),
// end in request form.
func InRange(k, key, end []byte) bool {
	end = normEnd(end)
	if end == nil {
		return bytes.Equal(k, key)
	}
	if bytes.Compare(k, key) < 0 {
		return false
	}
	return len(end) == 0 || bytes.Compare(k, end) < 0
}

func kvOf(k *keyEntry, v *version, keysOnly bool) *mvccpb.KeyValue {
	kv := &mvccpb.KeyValue{Key: []byte(k.key), CreateRevision: v.create, ModRevision: v.rev, Version: v.ver, Lease: v.lease}
	if !keysOnly {
		kv.Value = v.value
	}
	return kv
}

// Range answers a RangeRequest at the current revision (or req.Revision).
func (s *Store) Range(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return s.rangeAt(r, s.rev, true)
}

// RangePage answers r like Range but reads no further than it must: with a
// limit it stops after limit+1 keys (one more than it returns, to set More),
// and Count is the number of keys it read, not the range's total (etcd's
// range without a total count, which its RangeStream reads each chunk
// with). Without a limit, or with count_only, it is Range.
func (s *Store) RangePage(r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return s.rangeAt(r, s.rev, false)
}

// checkRev validates a read revision against the window.
func (s *Store) checkRev(rev, cur int64) error {
	switch {
	case rev == 0:
		return nil
	case rev > cur:
		return ErrFutureRev
	case rev < s.compactRev:
		return ErrCompacted
	}
	return nil
}

func defaultOrdering(r *pb.RangeRequest) bool {
	return r.SortOrder == pb.RangeRequest_NONE || (r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)
}

func hasRevFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// rangeAt runs a range whose "current" revision is cur (inside a txn that
// already wrote, cur is the txn's own revision). Without total, a limited
// range stops at limit+1 keys and counts only those.
func (s *Store) rangeAt(r *pb.RangeRequest, cur int64, total bool) (*pb.RangeResponse, error) {
	if err := s.checkRev(r.Revision, cur); err != nil {
		return nil, err
	}
	rev := r.Revision
	if rev == 0 {
		rev = cur
	}
	limit := r.Limit
	if !defaultOrdering(r) || hasRevFilters(r) {
		limit = 0
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: cur}}
	var kvs []*mvccpb.KeyValue
	count := int64(0)
	s.rangeKeys(r.Key, normEnd(r.RangeEnd), func(k *keyEntry) bool {
		if !total && !r.CountOnly && limit > 0 && int64(len(kvs)) > limit {
			return false
		}
		v := k.at(rev)
		if v == nil || !v.live() {
			return true
		}
		count++
		if r.CountOnly || (limit > 0 && int64(len(kvs)) > limit) {
			return true
		}
		kvs = append(kvs, kvOf(k, v, r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE))
		return true
	})
	resp.Count = count
	if r.CountOnly {
		return resp, nil
	}
	kvs = filterKVs(kvs, r)
	sortKVs(kvs, r)
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

func filterKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) []*mvccpb.KeyValue {
	if !hasRevFilters(r) {
		return kvs
	}
	out := kvs[:0]
	for _, kv := range kvs {
		switch {
		case r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision:
		case r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision:
		case r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision:
		case r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision:
		default:
			out = append(out, kv)
		}
	}
	return out
}

func sortKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) {
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if order == pb.RangeRequest_NONE || (r.SortTarget == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND) {
		return
	}
	var less func(a, b *mvccpb.KeyValue) int
	switch r.SortTarget {
	case pb.RangeRequest_KEY:
		less = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Key, b.Key) }
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) int { return cmp64(a.Version, b.Version) }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) int { return cmp64(a.CreateRevision, b.CreateRevision) }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) int { return cmp64(a.ModRevision, b.ModRevision) }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) int { return bytes.Compare(a.Value, b.Value) }
	default:
		return
	}
	// Not stable, as etcd's sort: keys that tie come out in the order
	// Go's pdqsort leaves them, from the same (key-ordered) input, so a
	// range of more than 12 keys with equal sort values lists them as
	// etcd does, not in key order.
	if order == pb.RangeRequest_DESCEND {
		sort.Slice(kvs, func(i, j int) bool { return less(kvs[j], kvs[i]) < 0 })
	} else {
		sort.Slice(kvs, func(i, j int) bool { return less(kvs[i], kvs[j]) < 0 })
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Lease returns a lease and its attached keys (sorted).
func (s *Store) Lease(id int64) (ttl int64, keys []string, ok bool) {
	l := s.leases[id]
	if l == nil {
		return 0, nil, false
	}
	for k := range l.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return l.TTL, keys, true
}

// LeaseInfo is a lease's id, granted TTL and the zxid of its last
// renewal (grant or keep-alive).
type LeaseInfo struct{ ID, TTL, Renewed int64 }

// Leases lists the leases, by id.
func (s *Store) Leases() []LeaseInfo {
	out := make([]LeaseInfo, 0, len(s.leases))
	for id, l := range s.leases {
		out = append(out, LeaseInfo{ID: id, TTL: l.TTL, Renewed: l.Renewed})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Event is one watch event with the revision it belongs to.
type Event struct {
	Rev int64
	Ev  *mvccpb.Event
}

// EventsSince returns the events with revision >= from whose key is in
// (key, end) (request form), at most about max of them without splitting
// a revision, and the revision the caller should continue from. It fails
// with ErrCompacted when from is below the compact revision. prevKV asks
// for each event's previous key-value.
func (s *Store) EventsSince(from int64, key, end []byte, max int, prevKV bool) ([]*mvccpb.Event, int64, error) {
	if from < s.compactRev {
		return nil, from, ErrCompacted
	}
	if from > s.rev {
		return nil, from, nil
	}
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].rev >= from })
	var out []*mvccpb.Event
	next := s.rev + 1
	for ; i < len(s.events); i++ {
		ref := s.events[i]
		if len(out) >= max && ref.rev != s.events[i-1].rev {
			next = ref.rev
			break
		}
		if !InRange([]byte(ref.k.key), key, end) {
			continue
		}
		j := ref.k.find(ref.rev, ref.sub)
		if j < 0 {
			continue // cannot happen: events and chains are pruned together
		}
		v := &ref.k.vs[j]
		ev := &mvccpb.Event{}
		if v.live() {
			ev.Type = mvccpb.Event_PUT
			ev.Kv = kvOf(ref.k, v, false)
		} else {
			ev.Type = mvccpb.Event_DELETE
			ev.Kv = &mvccpb.KeyValue{Key: []byte(ref.k.key), ModRevision: v.rev}
		}
		if prevKV && j > 0 && ref.k.vs[j-1].live() {
			ev.PrevKv = kvOf(ref.k, &ref.k.vs[j-1], false)
		}
		out = append(out, ev)
	}
	return out, next, nil
}
