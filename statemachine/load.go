package statemachine

import (
	"errors"
	"fmt"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

// Loader builds a State from outside the log: an import of another
// server's data (Apache ZooKeeper's snapshots and logs). It places nodes
// with the exact stats, ACLs and data it is given, instead of deriving them
// by applying requests. Apply is not involved.
//
// Sessions come first, then nodes parents first, starting with the root;
// Finish checks the result and returns the State.
type Loader struct {
	s        *State
	finished bool
}

// NewLoader returns a Loader of an empty state (no nodes, no sessions).
func NewLoader(opts Options) *Loader {
	s := &State{opts: opts}
	s.nodes = make(map[string]*node)
	s.acls = newACLCache()
	s.sessions = make(map[int64]*session)
	s.containers = make(map[string]struct{})
	s.ttls = make(map[string]struct{})
	s.etcd = etcdkv.New()
	return &Loader{s: s}
}

// LoadSession adds a live session with its negotiated timeout (ms) and
// password (what a reconnecting client must present).
func (l *Loader) LoadSession(id int64, timeout int32, passwd []byte) error {
	if l.finished {
		return errors.New("statemachine: loader already finished")
	}
	if !proto.IsEphemeralOwner(id) {
		return fmt.Errorf("statemachine: load: 0x%x cannot be a session id", id)
	}
	if _, dup := l.s.sessions[id]; dup {
		return fmt.Errorf("statemachine: load: session 0x%x twice", id)
	}
	l.s.sessions[id] = &session{timeout: timeout, passwd: append([]byte(nil), passwd...), ephemerals: make(map[string]struct{})}
	return nil
}

// LoadNode adds a node. stat is stored as given: in particular Cversion is
// the count of child creations (ZooKeeper's persisted cversion, which is
// also what its snapshots hold), not the value clients see; the node's
// dataLength and numChildren follow from data and the nodes loaded under
// it. An ephemeral's owner must have been loaded with LoadSession first.
func (l *Loader) LoadNode(path string, data []byte, acl []proto.ACL, stat proto.StatPersisted) error {
	s := l.s
	if l.finished {
		return errors.New("statemachine: loader already finished")
	}
	switch {
	case path == "/":
		if s.nodes["/"] != nil {
			return errors.New("statemachine: load: root loaded twice")
		}
	case len(s.nodes) == 0:
		return fmt.Errorf("statemachine: load: %q before the root", path)
	case proto.ValidatePath(path) != nil:
		return fmt.Errorf("statemachine: load: invalid path %q", path)
	case s.nodes[path] != nil:
		return fmt.Errorf("statemachine: load: %q loaded twice", path)
	case s.nodes[parentOf(path)] == nil:
		return fmt.Errorf("statemachine: load: %q before its parent", path)
	case proto.IsEphemeralOwner(s.nodes[parentOf(path)].stat.EphemeralOwner):
		return fmt.Errorf("statemachine: load: %q is the child of an ephemeral node", path)
	}
	owner := stat.EphemeralOwner
	if proto.IsEphemeralOwner(owner) && s.sessions[owner] == nil {
		return fmt.Errorf("statemachine: load: ephemeral %q of unknown session 0x%x", path, owner)
	}
	n := &node{data: data, acl: s.acls.intern(acl), stat: stat}
	s.nodes[path] = n
	if path != "/" {
		s.link(path)
	}
	s.dataSize += int64(len(path) + len(data))
	s.index(path, owner, true)
	return nil
}

// Finish ends the load with the zxid the state has reached. System nodes
// the input lacked (/zookeeper, /zookeeper/quota, /zookeeper/config) are
// added as New creates them.
func (l *Loader) Finish(lastZxid int64) (*State, error) {
	s := l.s
	if l.finished {
		return nil, errors.New("statemachine: loader already finished")
	}
	if s.nodes["/"] == nil {
		return nil, errors.New("statemachine: load: no root node")
	}
	if s.nodes[proto.ZooKeeperPath] == nil {
		s.addSystemNode(proto.ZooKeeperPath, s.acls.intern(proto.OpenACLUnsafe))
	}
	if s.nodes[proto.QuotaPath] == nil {
		s.addSystemNode(proto.QuotaPath, s.acls.intern(proto.OpenACLUnsafe))
	}
	if s.nodes[proto.ConfigPath] == nil {
		cfg := s.addSystemNode(proto.ConfigPath, s.acls.intern(proto.ReadACLUnsafe))
		cfg.stat.Aversion = -1
	}
	s.lastZxid = lastZxid
	l.finished = true
	return s, nil
}

// NodeInfo is a read-only view of one node, for exports and tests.
type NodeInfo struct {
	Path string
	Data []byte
	ACL  []proto.ACL
	// Stat is what clients see (cversion counts changes, ephemeralOwner
	// is 0 for containers and TTL nodes).
	Stat proto.Stat
	// Persisted is the stored stat (cversion counts child creations,
	// ephemeralOwner keeps the container and TTL markers).
	Persisted proto.StatPersisted
}

// Node returns a copy of one node's data, ACL and stats.
func (s *State) Node(path string) (NodeInfo, bool) {
	n := s.nodes[path]
	if n == nil {
		return NodeInfo{}, false
	}
	return NodeInfo{
		Path:      path,
		Data:      append([]byte(nil), n.data...),
		ACL:       append([]proto.ACL(nil), n.acl.acl...),
		Stat:      n.wireStat(),
		Persisted: n.stat,
	}, true
}
