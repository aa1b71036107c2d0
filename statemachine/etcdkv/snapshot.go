package etcdkv

import (
	"errors"
	"fmt"
	"sort"

	"github.com/google/btree"
	"github.com/paddockhq/paddock/proto"
)

// Snapshot section (jute encoding, inside statemachine's snapshot):
//
//	long rev; long compactRev
//	long keyCount { ustring key; int n { long rev; int sub; long create; long version; long lease; buffer value } }  // keys in order, versions oldest first
//	int leaseCount { long id; long ttl; long renewed }                                                                // by id
//
// renewed (Lease.Renewed) is there from format 2 on (statemachine
// snapshot version 3); format 1 restores it as 0. Lease key sets and the
// watch event log are derived on restore.

// Snapshot appends the keyspace to e, calling flush whenever e grows large.
func (s *Store) Snapshot(e *proto.Encoder, flush func() error) error {
	return writeSnapshot(s.tree, s.rev, s.compactRev, s.Leases(), e, flush)
}

// View is the keyspace frozen at one revision, for a snapshot written
// while apply goes on: it shares the store's B-tree copy-on-write (btree
// Clone) and its entries (keyEntry), so taking one costs O(leases), not
// O(keys). A View is read by one goroutine; the Store may be changed
// concurrently by another.
type View struct {
	store           *Store
	tree            *btree.BTreeG[*keyEntry]
	rev, compactRev int64
	leases          []LeaseInfo
}

// View freezes the keyspace. The caller must hold the store's write
// guard (Clone may not run concurrently with a change), and must Release
// the view, under the same guard, once it is written: until then every
// change copies what it changes.
func (s *Store) View() *View {
	v := &View{store: s, tree: s.tree.Clone(), rev: s.rev, compactRev: s.compactRev, leases: s.Leases()}
	s.gen++ // every entry in the tree is now shared with v
	s.views++
	return v
}

// Release ends the view: the store stops copying entries on write for it.
// The caller holds the store's write guard; the view is not used again.
// Releasing twice is a no-op.
func (v *View) Release() {
	if v.store != nil {
		v.store.views--
		v.store = nil
	}
}

// Snapshot appends the frozen keyspace to e, as Store.Snapshot would have
// at the moment the view was taken.
func (v *View) Snapshot(e *proto.Encoder, flush func() error) error {
	return writeSnapshot(v.tree, v.rev, v.compactRev, v.leases, e, flush)
}

func writeSnapshot(tree *btree.BTreeG[*keyEntry], rev, compactRev int64, leases []LeaseInfo, e *proto.Encoder, flush func() error) error {
	e.Long(rev)
	e.Long(compactRev)
	e.Long(int64(tree.Len()))
	var err error
	tree.Ascend(func(k *keyEntry) bool {
		e.String(k.key)
		e.Int(int32(len(k.vs)))
		for i := range k.vs {
			v := &k.vs[i]
			e.Long(v.rev)
			e.Int(v.sub)
			e.Long(v.create)
			e.Long(v.ver)
			e.Long(v.lease)
			e.Buffer(v.value)
		}
		if e.Len() > 1<<15 {
			err = flush()
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	e.Int(int32(len(leases)))
	for _, l := range leases {
		e.Long(l.ID)
		e.Long(l.TTL)
		e.Long(l.Renewed)
	}
	return nil
}

// SnapshotFormat is the format Snapshot writes: 2, with each lease's
// last renewal; format 1 lacked it.
const SnapshotFormat = 2

// Restore replaces the keyspace with a section written by Snapshot in
// the given format (1 or SnapshotFormat).
func (s *Store) Restore(d *proto.Decoder, format int) error {
	n := New()
	n.rev = d.Long()
	n.compactRev = d.Long()
	count := d.Long()
	if count < 0 || count > int64(d.Remaining()) {
		return fmt.Errorf("etcdkv: bad key count %d", count)
	}
	var prev string
	for i := int64(0); i < count && d.Err() == nil; i++ {
		k := &keyEntry{key: d.String()}
		if i > 0 && k.key <= prev {
			return errors.New("etcdkv: keys out of order")
		}
		prev = k.key
		nv := d.VectorLen()
		if nv <= 0 {
			return fmt.Errorf("etcdkv: key %q without versions", k.key)
		}
		k.vs = make([]version, nv)
		for j := range k.vs {
			v := &k.vs[j]
			v.rev, v.sub, v.create, v.ver, v.lease = d.Long(), d.Int(), d.Long(), d.Long(), d.Long()
			v.value = d.Buffer()
			if v.value == nil && v.ver != 0 {
				v.value = []byte{}
			}
			n.size += int64(len(v.value)) + versionOverhead
			n.versions++
			if v.rev >= n.compactRev {
				n.events = append(n.events, eventRef{k: k, rev: v.rev, sub: v.sub})
			}
		}
		n.size += int64(len(k.key))
		n.tree.ReplaceOrInsert(k)
	}
	nl := d.VectorLen()
	for i := 0; i < nl && d.Err() == nil; i++ {
		id, ttl := d.Long(), d.Long()
		var renewed int64
		if format >= 2 {
			renewed = d.Long()
		}
		n.leases[id] = &Lease{ID: id, TTL: ttl, Renewed: renewed, keys: map[string]struct{}{}}
	}
	if err := d.Err(); err != nil {
		return err
	}
	n.tree.Ascend(func(k *keyEntry) bool {
		if v := k.latest(); v != nil && v.lease != 0 {
			if l := n.leases[v.lease]; l != nil {
				l.keys[k.key] = struct{}{}
			}
		}
		return true
	})
	sort.Slice(n.events, func(i, j int) bool {
		a, b := n.events[i], n.events[j]
		return a.rev < b.rev || (a.rev == b.rev && a.sub < b.sub)
	})
	*s = *n
	return nil
}
