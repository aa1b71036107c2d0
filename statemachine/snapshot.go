package statemachine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

// Snapshot format (all jute encoding, integrity is the caller's: the
// replication layer checksums the whole file):
//
//	"PDST" int version=1 long lastZxid
//	int sessionCount { long id; int timeout; buffer passwd }
//	long nodeCount { ustring path; buffer data; vector<ACL> acl; StatPersisted stat }  // pre-order, parents first
//	"PDKV" etcd keyspace section (etcdkv.Store.Snapshot)               // version 2 and later
//	"PDND"
//
// Version 3's etcd section has each lease's last renewal (etcdkv format
// 2); version 2's lacks it (format 1). Version 1 snapshots (no etcd
// section) are still read: their keyspace is empty.
const (
	snapMagic   = "PDST"
	snapEtcd    = "PDKV"
	snapEnd     = "PDND"
	snapVersion = 3
)

// Snapshot writes the whole state. Nodes are written parents first, children
// sorted, so equal states give equal bytes.
func (s *State) Snapshot(w io.Writer) error {
	c := s.Capture()
	defer c.Release()
	return c.Write(w)
}

// Capture is the state frozen at its last applied zxid, to be written by
// Write while apply goes on (on another goroutine, without the state's
// lock). Taking it costs a shallow copy of each znode's record (data and
// ACLs are shared: apply replaces them, never writes into them) and O(1)
// for the etcd keyspace (etcdkv.View); the sorting and encoding, which
// are most of a snapshot's cost, happen in Write.
type Capture struct {
	lastZxid int64
	sessions []SessionInfo
	nodes    []nodeRecord
	etcd     *etcdkv.View
}

type nodeRecord struct {
	path string
	data []byte
	acl  []proto.ACL
	stat proto.StatPersisted
}

// Capture freezes the state for a snapshot. The caller holds the state's
// write guard or is its only writer (no Apply may run during the call),
// and calls Release, under the same guard, once the capture is written.
func (s *State) Capture() *Capture {
	c := &Capture{lastZxid: s.lastZxid, sessions: s.Sessions(), nodes: make([]nodeRecord, 0, len(s.nodes)), etcd: s.etcd.View()}
	for path, n := range s.nodes {
		c.nodes = append(c.nodes, nodeRecord{path: path, data: n.data, acl: n.acl.acl, stat: n.stat})
	}
	return c
}

// Release tells the state the capture is written: changes stop paying
// for copy-on-write (etcdkv.View.Release). The caller holds the state's
// write guard.
func (c *Capture) Release() { c.etcd.Release() }

// preorder orders paths as a depth-first walk from the root with children
// sorted by name: component by component, a path's end or its '/' sorts
// before any other byte (paths hold no NUL).
func preorder(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return -1
		}
		if y == '/' {
			return 1
		}
		return int(x) - int(y)
	}
	return len(a) - len(b)
}

// Write writes the captured state in the snapshot format. It may run
// concurrently with changes to the State it was captured from.
func (c *Capture) Write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	e := proto.NewEncoder(make([]byte, 0, 1<<12))
	flush := func() error {
		_, err := bw.Write(e.Bytes())
		e.Reset()
		return err
	}
	e.Raw([]byte(snapMagic))
	e.Int(snapVersion)
	e.Long(c.lastZxid)
	e.Int(int32(len(c.sessions)))
	for _, ss := range c.sessions {
		e.Long(ss.ID)
		e.Int(ss.Timeout)
		e.Buffer(ss.Passwd)
	}
	slices.SortFunc(c.nodes, func(a, b nodeRecord) int { return preorder(a.path, b.path) })
	e.Long(int64(len(c.nodes)))
	for i := range c.nodes {
		n := &c.nodes[i]
		e.String(n.path)
		e.Buffer(n.data)
		e.Int(int32(len(n.acl)))
		for j := range n.acl {
			n.acl[j].Encode(e)
		}
		n.stat.Encode(e)
		if e.Len() > 1<<15 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	e.Raw([]byte(snapEtcd))
	if err := c.etcd.Snapshot(e, flush); err != nil {
		return err
	}
	e.Raw([]byte(snapEnd))
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// Restore replaces the state with a snapshot written by Snapshot. On error
// the state is left empty-but-valid, never half loaded.
func (s *State) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.restore(b); err != nil {
		s.reset()
		return fmt.Errorf("statemachine: bad snapshot: %w", err)
	}
	return nil
}

func (s *State) restore(b []byte) error {
	if len(b) < 8 || string(b[:4]) != snapMagic {
		return errors.New("bad magic")
	}
	d := proto.NewDecoder(b[4:])
	version := d.Int()
	if version < 1 || version > snapVersion {
		return fmt.Errorf("unsupported version %d", version)
	}
	s.etcd = etcdkv.New()
	s.nodes = make(map[string]*node)
	s.acls = newACLCache()
	s.sessions = make(map[int64]*session)
	s.containers = make(map[string]struct{})
	s.ttls = make(map[string]struct{})
	s.dataSize = 0
	s.lastZxid = d.Long()
	nsessions := d.VectorLen()
	for i := 0; i < nsessions && d.Err() == nil; i++ {
		id := d.Long()
		ss := &session{timeout: d.Int(), passwd: d.Buffer(), ephemerals: make(map[string]struct{})}
		s.sessions[id] = ss
	}
	count := d.Long()
	if count < 1 || count > int64(d.Remaining()) {
		return fmt.Errorf("bad node count %d", count)
	}
	for i := int64(0); i < count && d.Err() == nil; i++ {
		path := d.String()
		n := &node{data: d.Buffer()}
		nacl := d.VectorLen()
		acl := make([]proto.ACL, max(nacl, 0))
		for j := range acl {
			acl[j].Decode(d)
		}
		n.stat.Decode(d)
		if d.Err() != nil {
			break
		}
		if i == 0 {
			if path != "/" {
				return errors.New("first node is not the root")
			}
		} else {
			if proto.ValidatePath(path) != nil || s.nodes[path] != nil || s.nodes[parentOf(path)] == nil {
				return fmt.Errorf("bad node path %q", path)
			}
		}
		n.acl = s.acls.intern(acl)
		s.nodes[path] = n
		if i > 0 {
			s.link(path)
		}
		s.dataSize += int64(len(path) + len(n.data))
		if owner := n.stat.EphemeralOwner; proto.IsEphemeralOwner(owner) && s.sessions[owner] == nil {
			return fmt.Errorf("ephemeral %q of unknown session 0x%x", path, owner)
		}
		s.index(path, n.stat.EphemeralOwner, true)
	}
	if err := d.Err(); err != nil {
		return err
	}
	if version >= 2 {
		m := d.Rest()
		if len(m) < 4 || string(m[:4]) != snapEtcd {
			return errors.New("missing etcd section")
		}
		d = proto.NewDecoder(m[4:])
		format := etcdkv.SnapshotFormat
		if version == 2 {
			format = 1
		}
		if err := s.etcd.Restore(d, format); err != nil {
			return err
		}
	}
	if rest := d.Rest(); string(rest) != snapEnd {
		return errors.New("missing end marker")
	}
	return nil
}

// SortedPaths returns every path in the tree, sorted. It is meant for
// tests and exports, not the request path.
func (s *State) SortedPaths() []string {
	out := make([]string, 0, len(s.nodes))
	for p := range s.nodes {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
