// Package statemachine holds Paddock's replicated state: the znode tree and
// the session table, and the pure function that applies one log entry to
// them.
//
// Apply is deterministic: its only inputs are the state, the entry and the
// zxid (the entry's log index). Time comes from the entry (stamped by the
// proposer), sequence numbers from the parent's cversion, session ids and
// passwords from the entry. No clock, no randomness, no I/O: every replica
// that applies the same log reaches the same tree, byte for byte.
//
// Validation happens at apply time, in ZooKeeper's order
// (PrepRequestProcessor), against the state as it is when the entry is
// applied; the error it finds is the entry's result. A State is not safe for
// concurrent use: the server guards it (reads under a read lock, Apply under
// the write lock).
package statemachine

import (
	"sort"
	"strings"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

// Options select ZooKeeper features that are configuration, not protocol.
type Options struct {
	// ExtendedTypes allows TTL nodes (zookeeper.extendedTypesEnabled).
	// Without it createTTL answers Unimplemented, as ZooKeeper does.
	ExtendedTypes bool
	// SkipACL disables every ACL check (zookeeper.skipACL=yes). Unsafe.
	SkipACL bool
	// ReconfigEnabled mirrors reconfigEnabled; when false reconfig answers
	// ReconfigDisabled.
	ReconfigEnabled bool
	// EnforceQuota refuses creates and setData that would exceed a quota's
	// hard limit with QuotaExceeded (zookeeper.enforceQuota). Exceeded
	// limits are reported in Result.Warnings either way.
	EnforceQuota bool
}

// node is one znode. Its path is its key in State.nodes.
type node struct {
	data     []byte
	acl      *aclList
	stat     proto.StatPersisted
	children map[string]struct{}
}

// session is a live session as the log knows it. Liveness (when it was last
// heard from) is not here: that belongs to the server holding it.
type session struct {
	timeout    int32
	passwd     []byte
	ephemerals map[string]struct{}
}

// State is the znode tree plus the session table.
type State struct {
	opts       Options
	nodes      map[string]*node
	acls       aclCache
	sessions   map[int64]*session
	containers map[string]struct{}
	ttls       map[string]struct{}
	lastZxid   int64
	dataSize   int64
	etcd       *etcdkv.Store // the etcd v3 keyspace (etcd.go)
}

// New returns the state of an empty ZooKeeper database: the root, plus
// /zookeeper, /zookeeper/quota and /zookeeper/config as DataTree creates
// them (empty data, zero stats; the config node is READ_ACL_UNSAFE and, as
// in ZooKeeper, carries aversion -1).
func New(opts Options) *State {
	s := &State{opts: opts}
	s.reset()
	return s
}

func (s *State) reset() {
	s.nodes = make(map[string]*node)
	s.acls = newACLCache()
	s.sessions = make(map[int64]*session)
	s.containers = make(map[string]struct{})
	s.ttls = make(map[string]struct{})
	s.etcd = etcdkv.New()
	s.lastZxid = 0
	s.dataSize = 1 // the root's path
	open := s.acls.intern(proto.OpenACLUnsafe)
	s.nodes["/"] = &node{data: []byte{}, acl: open}
	s.addSystemNode(proto.ZooKeeperPath, open)
	s.addSystemNode(proto.QuotaPath, s.acls.intern(proto.OpenACLUnsafe))
	cfg := s.addSystemNode(proto.ConfigPath, s.acls.intern(proto.ReadACLUnsafe))
	cfg.stat.Aversion = -1
}

func (s *State) addSystemNode(path string, acl *aclList) *node {
	n := &node{data: []byte{}, acl: acl}
	s.nodes[path] = n
	s.dataSize += int64(len(path))
	s.link(path)
	return n
}

// link adds path to its parent's children.
func (s *State) link(path string) {
	p := s.nodes[parentOf(path)]
	if p.children == nil {
		p.children = make(map[string]struct{})
	}
	p.children[path[strings.LastIndexByte(path, '/')+1:]] = struct{}{}
}

// parentOf returns the parent path; the parent of a top-level node is "/".
func parentOf(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "/"
	}
	return path[:i]
}

// lookup finds a node; "" names the root, as ZooKeeper's parent of "/x" does.
func (s *State) lookup(path string) *node {
	if path == "" {
		path = "/"
	}
	return s.nodes[path]
}

// isSpecialPath reports the paths that cannot be deleted
// (DataTree.isSpecialPath).
func isSpecialPath(path string) bool {
	switch path {
	case "/", proto.ZooKeeperPath, proto.QuotaPath, proto.ConfigPath:
		return true
	}
	return false
}

// wireStat is the Stat clients see, translated as ZooKeeper's
// DataNode.copyStat does:
//   - the stored cversion counts child creations (it names sequential
//     children); clients see creations plus deletions, which is
//     2*cversion - numChildren (so /zookeeper, with two children and no
//     creations, shows -2, and the fresh root -1);
//   - container and TTL markers stay internal: ephemeralOwner is reported
//     only for real session owners, 0 otherwise.
func (n *node) wireStat() proto.Stat {
	nc := int32(len(n.children))
	st := proto.StatFromPersisted(&n.stat, int32(len(n.data)), nc)
	st.Cversion = n.stat.Cversion*2 - nc
	if !proto.IsEphemeralOwner(st.EphemeralOwner) {
		st.EphemeralOwner = 0
	}
	return st
}

// LastZxid returns the zxid of the last applied entry: what ZooKeeper calls
// lastProcessedZxid and puts in every reply header.
func (s *State) LastZxid() int64 { return s.lastZxid }

// SessionInfo describes a live session.
type SessionInfo struct {
	ID         int64
	Timeout    int32
	Passwd     []byte
	Ephemerals int
}

// Sessions lists the live sessions, ordered by id.
func (s *State) Sessions() []SessionInfo {
	out := make([]SessionInfo, 0, len(s.sessions))
	for id, ss := range s.sessions {
		out = append(out, SessionInfo{ID: id, Timeout: ss.timeout, Passwd: ss.passwd, Ephemerals: len(ss.ephemerals)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Session returns one live session.
func (s *State) Session(id int64) (SessionInfo, bool) {
	ss, ok := s.sessions[id]
	if !ok {
		return SessionInfo{}, false
	}
	return SessionInfo{ID: id, Timeout: ss.timeout, Passwd: ss.passwd, Ephemerals: len(ss.ephemerals)}, true
}

// Ephemerals returns the paths of a session's ephemeral nodes, sorted.
func (s *State) Ephemerals(session int64) []string {
	ss, ok := s.sessions[session]
	if !ok {
		return nil
	}
	return sortedKeys(ss.ephemerals)
}

// NodeState tells the setWatches replay what it needs about a path.
func (s *State) NodeState(path string) (exists bool, mzxid, pzxid int64) {
	n := s.nodes[path]
	if n == nil {
		return false, 0, 0
	}
	return true, n.stat.Mzxid, n.stat.Pzxid
}

// Stats are the figures the monitoring commands report.
type Stats struct {
	// NodeCount is ZooKeeper's znode_count (see Stats).
	NodeCount      int
	EphemeralCount int
	// ApproxDataSize is ZooKeeper's approximate_data_size: the sum of path
	// lengths and data lengths.
	ApproxDataSize int64
	Sessions       int
}

// NodeCount returns the number of znodes (without Stats' double-counted
// root), cheaply.
func (s *State) NodeCount() int { return len(s.nodes) }

// Stats returns the current figures.
func (s *State) Stats() Stats {
	eph := 0
	for _, ss := range s.sessions {
		eph += len(ss.ephemerals)
	}
	// ZooKeeper's node map holds the root twice (as "" and "/"), and its
	// znode_count reports that size; monitoring compares against it.
	return Stats{NodeCount: len(s.nodes) + 1, EphemeralCount: eph, ApproxDataSize: s.dataSize, Sessions: len(s.sessions)}
}

// GCCandidates returns up to max nodes that the container manager should
// delete at time now (ms): containers whose last child went (cversion > 0,
// no children), and TTL nodes without children unmodified for longer than
// their TTL (ContainerManager.getCandidates). The deletion itself is an
// OpDeleteContainer entry, which checks the same conditions again at apply.
func (s *State) GCCandidates(now int64, max int) []string {
	var out []string
	for _, set := range []map[string]struct{}{s.containers, s.ttls} {
		for _, p := range sortedKeys(set) {
			if len(out) >= max {
				return out
			}
			if s.collectable(p, now) == proto.ErrOK {
				out = append(out, p)
			}
		}
	}
	return out
}

// collectable decides whether GC may delete path at time now.
func (s *State) collectable(path string, now int64) proto.ErrCode {
	n := s.nodes[path]
	if n == nil {
		return proto.ErrNoNode
	}
	if len(n.children) > 0 {
		return proto.ErrNotEmpty
	}
	owner := n.stat.EphemeralOwner
	switch {
	case owner == proto.ContainerOwner:
		if n.stat.Cversion > 0 {
			return proto.ErrOK
		}
	case proto.IsTTLOwner(owner):
		if now-n.stat.Mtime > proto.TTLOf(owner) {
			return proto.ErrOK
		}
	}
	return proto.ErrBadVersion
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
