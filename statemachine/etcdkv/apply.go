package etcdkv

import (
	"bytes"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	gproto "google.golang.org/protobuf/proto"
)

// Op names an etcd operation carried by a log entry.
type Op int

// The operations. Their bodies are the etcdserverpb requests named.
const (
	OpPut            Op = iota + 1 // PutRequest
	OpDeleteRange                  // DeleteRangeRequest
	OpTxn                          // TxnRequest
	OpCompact                      // CompactionRequest
	OpLeaseGrant                   // LeaseGrantRequest
	OpLeaseRevoke                  // LeaseRevokeRequest (a client's revoke)
	OpLeaseExpire                  // LeaseRevokeRequest (the leader decided the lease expired)
	OpLeaseKeepAlive               // LeaseKeepAliveRequest
)

// Result is the outcome of one applied etcd entry.
type Result struct {
	// Resp is etcd's response (PutResponse, DeleteRangeResponse,
	// TxnResponse, CompactionResponse, LeaseGrantResponse,
	// LeaseRevokeResponse, LeaseKeepAliveResponse); nil when Err is set.
	// Its header carries the revision; the gRPC layer fills the rest.
	Resp gproto.Message
	// Err is the request's error (nothing changed).
	Err error
	// Changed reports that the entry changed the keyspace: Rev moved to
	// the entry's zxid and watchers have new events.
	Changed bool
	// Rev is the keyspace revision after the entry.
	Rev int64
	// Lease events, for the server's lease tracker. Granted carries the
	// grant's zxid as Renewed; KeptAlive is the lease a keep-alive
	// renewed, at the entry's zxid.
	Granted   *LeaseInfo
	Revoked   int64
	KeptAlive int64
	Compacted bool
}

// ExpireBody is the body of an OpLeaseExpire entry: etcd's
// LeaseRevokeRequest (field 1, the lease) and a field 2 of our own,
// always present, with renewed — the zxid of the lease's last renewal
// (Lease.Renewed) as the leader knew it when it found the lease expired.
// If the lease was renewed after that (a keep-alive already in the log
// ahead of the expiry, which the leader had not applied yet when it
// decided), the expiry is stale and changes nothing: that keep-alive
// succeeded, so the lease must live a TTL more. An expiry without field
// 2 (written before it existed) is unconditional.
func ExpireBody(id, renewed int64) []byte {
	b, _ := gproto.Marshal(&pb.LeaseRevokeRequest{ID: id})
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(renewed))
}

// expireStamp returns field 2 of an expiry's body (see ExpireBody).
func expireStamp(body []byte) (int64, bool) {
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return 0, false
		}
		body = body[n:]
		if num == 2 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(body)
			return int64(v), n >= 0
		}
		n = protowire.ConsumeFieldValue(num, typ, body)
		if n < 0 {
			return 0, false
		}
		body = body[n:]
	}
	return 0, false
}

// Apply applies one etcd entry at zxid.
func (s *Store) Apply(zxid int64, op Op, body []byte) Result {
	res := s.apply(zxid, op, body)
	if res.Err != nil {
		res.Resp = nil
	}
	res.Rev = s.rev
	return res
}

func (s *Store) apply(zxid int64, op Op, body []byte) Result {
	var res Result
	unmarshal := func(m gproto.Message) bool {
		if err := gproto.Unmarshal(body, m); err != nil {
			res.Err = ErrBadRequest
			return false
		}
		return true
	}
	switch op {
	case OpPut:
		var r pb.PutRequest
		if !unmarshal(&r) {
			return res
		}
		t := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &r}}}}
		tr, err := s.txn(zxid, t, &res)
		if err != nil {
			res.Err = err
			return res
		}
		res.Resp = tr.Responses[0].GetResponsePut()
	case OpDeleteRange:
		var r pb.DeleteRangeRequest
		if !unmarshal(&r) {
			return res
		}
		t := &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &r}}}}
		tr, err := s.txn(zxid, t, &res)
		if err != nil {
			res.Err = err
			return res
		}
		res.Resp = tr.Responses[0].GetResponseDeleteRange()
	case OpTxn:
		var r pb.TxnRequest
		if !unmarshal(&r) {
			return res
		}
		tr, err := s.txn(zxid, &r, &res)
		if err != nil {
			res.Err = err
			return res
		}
		res.Resp = tr
	case OpCompact:
		var r pb.CompactionRequest
		if !unmarshal(&r) {
			return res
		}
		if r.Revision <= s.compactRev {
			res.Err = ErrCompacted
			return res
		}
		if r.Revision > s.rev {
			res.Err = ErrFutureRev
			return res
		}
		s.compact(r.Revision)
		res.Compacted = true
		res.Resp = &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: s.rev}}
	case OpLeaseGrant:
		var r pb.LeaseGrantRequest
		if !unmarshal(&r) {
			return res
		}
		if r.TTL > MaxLeaseTTL {
			res.Err = ErrLeaseTTLTooBig
			return res
		}
		id := r.ID
		if id == 0 {
			id = zxid
			for s.leases[id] != nil || id == 0 {
				id++
			}
		} else if s.leases[id] != nil {
			res.Err = ErrLeaseExists
			return res
		}
		ttl := max(r.TTL, MinLeaseTTL)
		s.leases[id] = &Lease{ID: id, TTL: ttl, Renewed: zxid, keys: map[string]struct{}{}}
		res.Granted = &LeaseInfo{ID: id, TTL: ttl, Renewed: zxid}
		res.Resp = &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: s.rev}, ID: id, TTL: ttl}
	case OpLeaseRevoke, OpLeaseExpire:
		var r pb.LeaseRevokeRequest
		if !unmarshal(&r) {
			return res
		}
		l := s.leases[r.ID]
		if l == nil {
			res.Err = ErrLeaseNotFound
			return res
		}
		if op == OpLeaseExpire {
			if stamp, ok := expireStamp(body); ok && l.Renewed > stamp {
				// Renewed since the leader decided: stale.
				res.Resp = &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: s.rev}}
				return res
			}
		}
		w := &writer{s: s, zxid: zxid}
		keys := make([]string, 0, len(l.keys))
		for k := range l.keys {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w.delete(s.get(k))
		}
		delete(s.leases, r.ID)
		w.finish(&res)
		res.Revoked = r.ID
		res.Resp = &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: s.rev}}
	case OpLeaseKeepAlive:
		var r pb.LeaseKeepAliveRequest
		if !unmarshal(&r) {
			return res
		}
		resp := &pb.LeaseKeepAliveResponse{Header: &pb.ResponseHeader{Revision: s.rev}, ID: r.ID}
		if l := s.leases[r.ID]; l != nil {
			resp.TTL = l.TTL
			l.Renewed = zxid
			res.KeptAlive = r.ID
		}
		res.Resp = resp
	default:
		res.Err = ErrBadRequest
	}
	return res
}

// writer applies the changes of one entry at revision zxid.
type writer struct {
	s       *Store
	zxid    int64
	sub     int32
	changed bool
}

// cur is the revision reads inside the entry see.
func (w *writer) cur() int64 {
	if w.changed {
		return w.zxid
	}
	return w.s.rev
}

func (w *writer) add(k *keyEntry, v version) {
	s := w.s
	v.rev, v.sub = w.zxid, w.sub
	w.sub++
	w.changed = true
	k = s.mutable(k)
	k.vs = append(k.vs, v)
	s.events = append(s.events, eventRef{k: k, rev: v.rev, sub: v.sub})
	s.size += int64(len(v.value)) + versionOverhead
	s.versions++
}

func (w *writer) put(key []byte, value []byte, lease int64) {
	s := w.s
	k := s.get(string(key))
	if k == nil {
		k = &keyEntry{key: string(key), gen: s.gen}
		s.tree.ReplaceOrInsert(k)
		s.size += int64(len(key))
	}
	v := version{create: w.zxid, ver: 1, lease: lease, value: value}
	if old := k.latest(); old != nil {
		v.create, v.ver = old.create, old.ver+1
		if old.lease != 0 && old.lease != lease {
			if l := s.leases[old.lease]; l != nil {
				delete(l.keys, k.key)
			}
		}
	}
	if lease != 0 {
		if l := s.leases[lease]; l != nil {
			l.keys[k.key] = struct{}{}
		}
	}
	w.add(k, v)
}

func (w *writer) delete(k *keyEntry) bool {
	if k == nil {
		return false
	}
	old := k.latest()
	if old == nil {
		return false
	}
	if old.lease != 0 {
		if l := w.s.leases[old.lease]; l != nil {
			delete(l.keys, k.key)
		}
	}
	w.add(k, version{})
	return true
}

func (w *writer) finish(res *Result) {
	if w.changed {
		w.s.rev = w.zxid
		res.Changed = true
	}
}

// txn evaluates and executes a transaction atomically: every check of the
// chosen branches runs before any change, so an error leaves the keyspace
// as it was.
func (s *Store) txn(zxid int64, r *pb.TxnRequest, res *Result) (*pb.TxnResponse, error) {
	path := s.comparePath(r)
	if err := s.checkTxn(r, path); err != nil {
		return nil, err
	}
	w := &writer{s: s, zxid: zxid}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}}
	if _, err := s.execTxn(w, r, path, resp); err != nil {
		// Checked above; an error here would be a bug. Nothing is
		// partially applied only if it happens before the first write,
		// which checkTxn guarantees for the errors execTxn can return.
		return nil, err
	}
	w.finish(res)
	resp.Header.Revision = w.cur()
	return resp, nil
}

// comparePath evaluates the compares of r and of the nested txns on the
// chosen branches, depth first, against the keyspace before the txn (as
// etcd does).
func (s *Store) comparePath(r *pb.TxnRequest) []bool {
	ok := true
	for _, c := range r.Compare {
		if !s.compare(c) {
			ok = false
			break
		}
	}
	path := []bool{ok}
	ops := r.Success
	if !ok {
		ops = r.Failure
	}
	for _, op := range ops {
		if t := op.GetRequestTxn(); t != nil {
			path = append(path, s.comparePath(t)...)
		}
	}
	return path
}

func (s *Store) compare(c *pb.Compare) bool {
	var kvs []*mvccpb.KeyValue
	s.rangeKeys(c.Key, normEnd(c.RangeEnd), func(k *keyEntry) bool {
		if v := k.latest(); v != nil {
			kvs = append(kvs, kvOf(k, v, false))
		}
		return true
	})
	if len(kvs) == 0 {
		if c.Target == pb.Compare_VALUE {
			// A missing key has no value to compare (etcd: always false).
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, kv := range kvs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var r int
	switch c.Target {
	case pb.Compare_VALUE:
		r = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		r = cmp64(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		r = cmp64(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		r = cmp64(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		r = cmp64(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return r == 0
	case pb.Compare_NOT_EQUAL:
		return r != 0
	case pb.Compare_GREATER:
		return r > 0
	case pb.Compare_LESS:
		return r < 0
	}
	return true
}

// checkTxn validates the chosen branches before anything is written:
// range revisions, leases of puts, and ignore_value/ignore_lease keys.
// It returns how many path entries the nested txns consumed.
func (s *Store) checkTxn(r *pb.TxnRequest, path []bool) error {
	_, err := s.checkTxnN(r, path)
	return err
}

func (s *Store) checkTxnN(r *pb.TxnRequest, path []bool) (int, error) {
	ops := r.Success
	if !path[0] {
		ops = r.Failure
	}
	n := 0
	for _, op := range ops {
		switch {
		case op.GetRequestRange() != nil:
			if err := s.checkRev(op.GetRequestRange().Revision, s.rev); err != nil {
				return 0, err
			}
		case op.GetRequestPut() != nil:
			p := op.GetRequestPut()
			if p.Lease != 0 && s.leases[p.Lease] == nil {
				return 0, ErrLeaseNotFound
			}
			if p.IgnoreValue || p.IgnoreLease {
				if k := s.get(string(p.Key)); k == nil || k.latest() == nil {
					return 0, ErrKeyNotFound
				}
			}
		case op.GetRequestTxn() != nil:
			m, err := s.checkTxnN(op.GetRequestTxn(), path[1:])
			if err != nil {
				return 0, err
			}
			n += m + 1
			path = path[m+1:]
		}
	}
	return n, nil
}

func (s *Store) execTxn(w *writer, r *pb.TxnRequest, path []bool, resp *pb.TxnResponse) (int, error) {
	ops := r.Success
	resp.Succeeded = path[0]
	if !path[0] {
		ops = r.Failure
	}
	n := 0
	resp.Responses = make([]*pb.ResponseOp, len(ops))
	for i, op := range ops {
		switch {
		case op.GetRequestRange() != nil:
			rr, err := s.rangeAt(op.GetRequestRange(), w.cur(), true)
			if err != nil {
				return 0, err
			}
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}}
		case op.GetRequestPut() != nil:
			p := op.GetRequestPut()
			pr := &pb.PutResponse{Header: &pb.ResponseHeader{}}
			val, lease := p.Value, p.Lease
			var prev *mvccpb.KeyValue
			if k := s.get(string(p.Key)); k != nil {
				if v := k.latest(); v != nil {
					prev = kvOf(k, v, false)
				}
			}
			if p.IgnoreValue && prev != nil {
				val = prev.Value
			}
			if p.IgnoreLease && prev != nil {
				lease = prev.Lease
			}
			if p.PrevKv {
				pr.PrevKv = prev
			}
			w.put(p.Key, val, lease)
			pr.Header.Revision = w.cur()
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: pr}}
		case op.GetRequestDeleteRange() != nil:
			d := op.GetRequestDeleteRange()
			dr := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
			var victims []*keyEntry
			s.rangeKeys(d.Key, normEnd(d.RangeEnd), func(k *keyEntry) bool {
				if k.latest() != nil {
					victims = append(victims, k)
				}
				return true
			})
			for _, k := range victims {
				if d.PrevKv {
					dr.PrevKvs = append(dr.PrevKvs, kvOf(k, k.latest(), false))
				}
				if w.delete(k) {
					dr.Deleted++
				}
			}
			dr.Header.Revision = w.cur()
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}}
		case op.GetRequestTxn() != nil:
			sub := &pb.TxnResponse{Header: &pb.ResponseHeader{}}
			m, err := s.execTxn(w, op.GetRequestTxn(), path[1:], sub)
			if err != nil {
				return 0, err
			}
			sub.Header.Revision = w.cur()
			n += m + 1
			path = path[m+1:]
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: sub}}
		default:
			resp.Responses[i] = &pb.ResponseOp{}
		}
	}
	return n, nil
}

// compact drops the history below rev: per key, every version older than
// the newest one <= rev; a key whose newest such version is a tombstone
// below rev goes entirely unless it has newer versions. Only keys with a
// version in [old compact revision, rev] can have anything to drop (any
// other key's versions are all either the one kept below the old compact
// revision or above rev).
func (s *Store) compact(rev int64) {
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].rev >= rev })
	j := sort.Search(len(s.events), func(j int) bool { return s.events[j].rev > rev })
	// The current entries: an event may point at an entry that a
	// copy-on-write replaced (keyEntry); its current one is in the tree.
	touched := map[*keyEntry]struct{}{}
	for _, ref := range s.events[:j] {
		touched[ref.k.current()] = struct{}{}
	}
	s.events = append([]eventRef(nil), s.events[i:]...)
	for k := range touched {
		j := sort.Search(len(k.vs), func(j int) bool { return k.vs[j].rev > rev }) - 1
		if j < 0 {
			continue
		}
		if !k.vs[j].live() && k.vs[j].rev < rev {
			j++
		}
		if j == 0 {
			continue
		}
		for _, v := range k.vs[:j] {
			s.size -= int64(len(v.value)) + versionOverhead
			s.versions--
		}
		if j == len(k.vs) {
			s.tree.Delete(k)
			s.size -= int64(len(k.key))
			continue
		}
		nk := s.mutable(k)
		nk.vs = append([]version(nil), k.vs[j:]...)
	}
	// Kept events point at current entries, so no superseded entry keeps
	// the dropped versions' values alive.
	for n := range s.events {
		if k := s.events[n].k; k.next != nil {
			s.events[n].k = k.current()
		}
	}
	s.compactRev = rev
}
