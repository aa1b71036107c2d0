package zkdata

import (
	"sort"
	"strings"

	"github.com/paddockhq/paddock/proto"
)

// znode is a node of the replayed tree.
type znode struct {
	data     []byte
	acl      []proto.ACL
	stat     proto.StatPersisted
	children map[string]struct{}
}

// Tree is ZooKeeper's DataTree as far as restoring it needs: nodes with
// their persisted stats and ACLs, the session table and the ephemeral
// index. The root is keyed "" as in ZooKeeper; "/" is accepted for it.
type Tree struct {
	nodes      map[string]*znode
	sessions   map[int64]int32
	ephemerals map[int64]map[string]struct{}
	// LastZxid is ZooKeeper's lastProcessedZxid.
	LastZxid int64
	// Tolerated counts txns whose error ZooKeeper ignores during replay
	// (NodeExists on create, NoNode on delete/setData/setACL), by error.
	Tolerated map[proto.ErrCode]int
}

func newTree() *Tree {
	return &Tree{
		nodes:      make(map[string]*znode),
		sessions:   make(map[int64]int32),
		ephemerals: make(map[int64]map[string]struct{}),
		Tolerated:  make(map[proto.ErrCode]int),
	}
}

// treeFromSnapshot builds the tree a snapshot describes
// (DataTree.deserialize).
func treeFromSnapshot(s *Snapshot) (*Tree, error) {
	t := newTree()
	for _, ss := range s.Sessions {
		t.sessions[ss.ID] = ss.Timeout
	}
	for _, sn := range s.Nodes {
		acl, _ := s.ACL(sn.ACLID) // checked while decoding
		path := sn.Path
		if path == "/" {
			path = ""
		}
		n := &znode{data: sn.Data, acl: acl, stat: sn.Stat}
		t.nodes[path] = n
		if path == "" {
			continue
		}
		i := strings.LastIndexByte(path, '/')
		t.nodes[path[:i]].addChild(path[i+1:])
		t.indexEphemeral(path, sn.Stat.EphemeralOwner)
	}
	t.LastZxid = s.Zxid
	return t, nil
}

func (n *znode) addChild(name string) {
	if n.children == nil {
		n.children = make(map[string]struct{})
	}
	n.children[name] = struct{}{}
}

func (t *Tree) get(path string) *znode {
	if path == "/" {
		path = ""
	}
	return t.nodes[path]
}

func (t *Tree) indexEphemeral(path string, owner int64) {
	if !proto.IsEphemeralOwner(owner) {
		return
	}
	set := t.ephemerals[owner]
	if set == nil {
		set = make(map[string]struct{})
		t.ephemerals[owner] = set
	}
	set[path] = struct{}{}
}

// splitPath splits as ZooKeeper does: parent is everything before the last
// slash ("" for a top-level node), child the rest.
func splitPath(path string) (parent, child string, ok bool) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", "", false
	}
	return path[:i], path[i+1:], true
}

// createNode is DataTree.createNode, including its replay rule: the parent's
// cversion and pzxid only move forward.
func (t *Tree) createNode(path string, data []byte, acl []proto.ACL, owner int64, parentCVersion int32, zxid, time int64) proto.ErrCode {
	parentName, child, ok := splitPath(path)
	if !ok {
		return proto.ErrNoNode
	}
	parent := t.nodes[parentName]
	if parent == nil {
		return proto.ErrNoNode
	}
	if _, exists := parent.children[child]; exists {
		return proto.ErrNodeExists
	}
	if parentCVersion == -1 {
		parentCVersion = parent.stat.Cversion + 1
	}
	if parentCVersion > parent.stat.Cversion {
		parent.stat.Cversion = parentCVersion
		parent.stat.Pzxid = zxid
	}
	parent.addChild(child)
	t.nodes[path] = &znode{data: data, acl: acl, stat: proto.StatPersisted{
		Czxid: zxid, Mzxid: zxid, Pzxid: zxid, Ctime: time, Mtime: time, EphemeralOwner: owner,
	}}
	t.indexEphemeral(path, owner)
	return proto.ErrOK
}

// deleteNode is DataTree.deleteNode: the parent forgets the child and its
// pzxid moves forward even when the child is already gone.
func (t *Tree) deleteNode(path string, zxid int64) proto.ErrCode {
	parentName, child, ok := splitPath(path)
	if !ok {
		return proto.ErrNoNode
	}
	parent := t.nodes[parentName]
	if parent == nil {
		return proto.ErrNoNode
	}
	delete(parent.children, child)
	if zxid > parent.stat.Pzxid {
		parent.stat.Pzxid = zxid
	}
	n := t.nodes[path]
	if n == nil || path == "" {
		return proto.ErrNoNode
	}
	delete(t.nodes, path)
	if owner := n.stat.EphemeralOwner; proto.IsEphemeralOwner(owner) {
		if set := t.ephemerals[owner]; set != nil {
			delete(set, path)
		}
	}
	return proto.ErrOK
}

func (t *Tree) setData(path string, data []byte, version int32, zxid, time int64) proto.ErrCode {
	n := t.get(path)
	if n == nil {
		return proto.ErrNoNode
	}
	n.data = data
	n.stat.Mtime, n.stat.Mzxid, n.stat.Version = time, zxid, version
	return proto.ErrOK
}

func (t *Tree) setACL(path string, acl []proto.ACL, version int32) proto.ErrCode {
	n := t.get(path)
	if n == nil {
		return proto.ErrNoNode
	}
	n.stat.Aversion, n.acl = version, acl
	return proto.ErrOK
}

// setCversionPzxid is DataTree.setCversionPzxid, the fix-up after a
// replayed create met an existing node.
func (t *Tree) setCversionPzxid(path string, cversion int32, zxid int64) proto.ErrCode {
	path = strings.TrimSuffix(path, "/")
	n := t.nodes[path]
	if n == nil {
		return proto.ErrNoNode
	}
	if cversion == -1 {
		cversion = n.stat.Cversion + 1
	}
	if cversion > n.stat.Cversion {
		n.stat.Cversion, n.stat.Pzxid = cversion, zxid
	}
	return proto.ErrOK
}

// killSession deletes a session's ephemerals (DataTree.killSession): the
// paths the txn names first, then any others the tree still indexes.
func (t *Tree) killSession(session, zxid int64, paths2Delete []string, fromTxn bool) {
	local := t.ephemerals[session]
	delete(t.ephemerals, session)
	if fromTxn {
		for _, p := range paths2Delete {
			t.deleteNode(p, zxid)
			delete(local, p)
		}
	}
	for _, p := range sortedSet(local) {
		t.deleteNode(p, zxid)
	}
}

// Apply replays one logged txn the way FileTxnSnapLog.processTransaction
// and DataTree.processTxn do during a restore. Errors ZooKeeper ignores
// there are counted in Tolerated; Apply itself cannot fail.
func (t *Tree) Apply(txn *Txn) {
	h := &txn.Header
	switch txn.Type() {
	case proto.OpCreateSession:
		t.sessions[h.ClientId] = txn.Record.(*proto.CreateSessionTxn).TimeOut
	case proto.OpCloseSession:
		delete(t.sessions, h.ClientId)
		if r, ok := txn.Record.(*proto.CloseSessionTxn); ok && r != nil {
			t.killSession(h.ClientId, h.Zxid, r.Paths2Delete, true)
		} else {
			t.killSession(h.ClientId, h.Zxid, nil, false)
		}
	case proto.OpMulti:
		failed := false
		for _, s := range txn.Sub {
			if s.Type == proto.OpError {
				failed = true
			}
		}
		// A multi that failed was logged with its error: it changed
		// nothing, and its sub-txns all become errors on replay.
		if !failed {
			for _, s := range txn.Sub {
				t.applyOp(h, s.Type, s.Record)
			}
		}
	default:
		t.applyOp(h, txn.Type(), txn.Record)
	}
	if h.Zxid > t.LastZxid {
		t.LastZxid = h.Zxid
	}
}

// applyOp is the body of DataTree.processTxn for one (sub-)txn, with the
// create NodeExists fix-up.
func (t *Tree) applyOp(h *proto.TxnHeader, op proto.OpCode, rec proto.Record) {
	var code proto.ErrCode
	switch r := rec.(type) {
	case *proto.CreateTxn:
		owner := int64(0)
		if r.Ephemeral {
			owner = h.ClientId
		}
		code = t.createNode(r.Path, r.Data, r.Acl, owner, r.ParentCVersion, h.Zxid, h.Time)
		if code == proto.ErrNodeExists && op == proto.OpCreate {
			if parent, _, ok := splitPath(r.Path); ok {
				t.setCversionPzxid(parent, r.ParentCVersion, h.Zxid)
			}
		}
	case *proto.CreateTTLTxn:
		code = t.createNode(r.Path, r.Data, r.Acl, proto.TTLOwner(r.Ttl), r.ParentCVersion, h.Zxid, h.Time)
	case *proto.CreateContainerTxn:
		code = t.createNode(r.Path, r.Data, r.Acl, proto.ContainerOwner, r.ParentCVersion, h.Zxid, h.Time)
	case *proto.DeleteTxn:
		code = t.deleteNode(r.Path, h.Zxid)
	case *proto.SetDataTxn:
		code = t.setData(r.Path, r.Data, r.Version, h.Zxid, h.Time)
	case *proto.SetACLTxn:
		code = t.setACL(r.Path, r.Acl, r.Version)
	}
	if code != proto.ErrOK {
		t.Tolerated[code]++
	}
}

// dropDeadSessions removes the ephemerals of sessions missing from the
// session table, as ZooKeeperServer.loadData does after a restore (at the
// last zxid), and returns how many sessions that was.
func (t *Tree) dropDeadSessions() int {
	dead := 0
	for _, owner := range sortedOwners(t.ephemerals) {
		if _, live := t.sessions[owner]; !live {
			t.killSession(owner, t.LastZxid, nil, false)
			dead++
		}
	}
	return dead
}

// Sessions returns the session table, ordered by id.
func (t *Tree) Sessions() []Session {
	out := make([]Session, 0, len(t.sessions))
	for id, to := range t.sessions {
		out = append(out, Session{ID: id, Timeout: to})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// NodeCount is the number of znodes, the root included once.
func (t *Tree) NodeCount() int { return len(t.nodes) }

// Walk visits every node parents first, children in sorted order, the root
// as "/".
func (t *Tree) Walk(f func(path string, data []byte, acl []proto.ACL, stat proto.StatPersisted) error) error {
	var walk func(key string) error
	walk = func(key string) error {
		n := t.nodes[key]
		path := key
		if path == "" {
			path = "/"
		}
		if err := f(path, n.data, n.acl, n.stat); err != nil {
			return err
		}
		for _, c := range sortedSet(n.children) {
			if err := walk(key + "/" + c); err != nil {
				return err
			}
		}
		return nil
	}
	if t.nodes[""] == nil {
		return nil
	}
	return walk("")
}

func sortedSet(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedOwners(m map[int64]map[string]struct{}) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func sortLogs(l []LogFile) {
	sort.Slice(l, func(i, j int) bool { return l[i].Zxid < l[j].Zxid })
}
