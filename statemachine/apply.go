package statemachine

import (
	"fmt"
	"strings"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

// Change is one primitive change to the tree, from which the server derives
// watch events: NodeCreated, NodeDeleted and NodeDataChanged name the node,
// NodeChildrenChanged names the parent. Changes come in the order
// ZooKeeper's DataTree triggers its watches.
type Change struct {
	Type proto.EventType
	Path string
	// ACL is the ACL of the node the event is about (the parent's for
	// NodeChildrenChanged) at the time of the change. A watcher receives
	// the event only if it may READ that node (ZooKeeper 3.8.4+/3.9.2+,
	// ServerCnxn.process), so a watch never leaks a change it cannot see.
	ACL []proto.ACL
}

// Result is the outcome of applying one entry.
type Result struct {
	// Zxid is the entry's zxid.
	Zxid int64
	// Err is the reply header's error. A multi answers 0 here and carries
	// per-op errors in its MultiResponse, as ZooKeeper does.
	Err proto.ErrCode
	// Resp is the reply body, or nil when the reply has none.
	Resp proto.Record
	// Changes are the watch triggers, in order.
	Changes []Change
	// ClosedSession is the id of a session this entry ended, or 0.
	ClosedSession int64
	// Warnings are messages for the server's log, such as exceeded quota
	// limits. They do not affect the outcome.
	Warnings []string
	// Etcd is the outcome of an etcd keyspace entry (etcd.go), else nil.
	Etcd *etcdkv.Result
}

// txn collects the effects of one entry so a failed multi can be undone.
type txn struct {
	zxid     int64
	e        *Entry
	changes  []Change
	undo     []func()
	onCommit []func()
	warnings []string
}

// Apply applies one committed entry at the given zxid and returns its
// result. It never fails: a request that ZooKeeper would refuse produces an
// error result and leaves the tree as it was (but still consumes its zxid,
// as ZooKeeper's error txns do).
func (s *State) Apply(zxid int64, e *Entry) Result {
	if zxid > s.lastZxid {
		s.lastZxid = zxid
	}
	t := &txn{zxid: zxid, e: e}
	res := s.apply(t, e)
	res.Warnings = t.warnings
	return res
}

func (s *State) apply(t *txn, e *Entry) Result {
	zxid := t.zxid
	res := Result{Zxid: zxid}
	if s.applyEnsemble(t, &res) || s.applyEtcd(t, &res) {
		return res
	}
	switch e.Op {
	case proto.OpCreateSession:
		res.Err = s.createSession(e)
		return res
	case proto.OpCloseSession:
		if _, ok := s.sessions[e.Session]; !ok {
			res.Err = proto.ErrSessionExpired
			return res
		}
		s.closeSession(t, e.Session)
		t.commit()
		res.Changes, res.ClosedSession = t.changes, e.Session
		return res
	case proto.OpSync:
		return res
	case proto.OpDeleteContainer:
		path := string(e.Body)
		if res.Err = s.collectable(path, e.Time); res.Err == proto.ErrOK {
			s.deleteNode(t, path)
			t.commit()
		}
		res.Changes = t.changes
		return res
	}
	// Every client write needs a live session (SessionTracker.checkSession):
	// a request that was proposed before its session expired finds it gone.
	if _, ok := s.sessions[e.Session]; !ok {
		res.Err = proto.ErrSessionExpired
		return res
	}
	switch e.Op {
	case proto.OpMulti:
		var req proto.MultiRequest
		if err := proto.Unmarshal(e.Body, &req); err != nil {
			res.Err = proto.ErrMarshallingError
			return res
		}
		res.Resp = s.multi(t, &req)
		res.Changes = t.changes
		return res
	case proto.OpReconfig:
		if !s.opts.ReconfigEnabled {
			res.Err = proto.ErrReconfigDisabled
		} else {
			// A standalone server does not reconfigure (PrepRequestProcessor
			// answers Unimplemented when it is not a leader).
			res.Err = proto.ErrUnimplemented
		}
		return res
	}
	var req proto.Record
	switch e.Op {
	case proto.OpSetACL:
		req = &proto.SetACLRequest{}
	case proto.OpGetData, proto.OpGetChildren:
	default:
		req = proto.NewMultiSubRequest(e.Op)
	}
	if req == nil {
		res.Err = proto.ErrUnimplemented
		return res
	}
	if err := proto.Unmarshal(e.Body, req); err != nil {
		res.Err = proto.ErrMarshallingError
		return res
	}
	resp, code := s.writeOp(t, e.Op, req)
	t.commit()
	if code != proto.ErrOK {
		res.Err = code
		return res
	}
	res.Changes = t.changes
	switch e.Op {
	case proto.OpCheck:
		// A check outside a multi answers with the node's stat, as
		// FinalRequestProcessor does (SetDataResponse).
		if n := s.nodes[req.(*proto.CheckVersionRequest).Path]; n != nil {
			resp = &proto.SetDataResponse{Stat: n.wireStat()}
		}
	case proto.OpSetACL:
		resp = &proto.SetACLResponse{Stat: resp.(*proto.SetDataResponse).Stat}
	}
	res.Resp = resp
	return res
}

func (s *State) createSession(e *Entry) proto.ErrCode {
	if _, ok := s.sessions[e.Session]; ok {
		return proto.ErrNodeExists
	}
	var body SessionBody
	if err := proto.Unmarshal(e.Body, &body); err != nil {
		return proto.ErrMarshallingError
	}
	s.sessions[e.Session] = &session{timeout: body.Timeout, passwd: body.Passwd, ephemerals: make(map[string]struct{})}
	return proto.ErrOK
}

// closeSession deletes a session's ephemerals (sorted, for determinism) and
// forgets it (DataTree.killSession).
func (s *State) closeSession(t *txn, id int64) {
	ss := s.sessions[id]
	for _, p := range sortedKeys(ss.ephemerals) {
		s.deleteNode(t, p)
	}
	delete(s.sessions, id)
}

// writeOp runs one create/delete/setData/setACL/check, returning the
// response as a multi sub-result would carry it.
func (s *State) writeOp(t *txn, op proto.OpCode, req proto.Record) (proto.Record, proto.ErrCode) {
	switch r := req.(type) {
	case *proto.CreateRequest:
		return s.create(t, op, r.Path, r.Data, r.Acl, r.Flags, -1)
	case *proto.CreateTTLRequest:
		return s.create(t, op, r.Path, r.Data, r.Acl, r.Flags, r.Ttl)
	case *proto.DeleteRequest:
		return nil, s.delete(t, r)
	case *proto.SetDataRequest:
		return s.setData(t, r)
	case *proto.SetACLRequest:
		return s.setACL(t, r)
	case *proto.CheckVersionRequest:
		return nil, s.check(t, r)
	}
	return nil, proto.ErrUnimplemented
}

// createMode decodes a create flag (CreateMode.fromFlag).
type createMode struct {
	ephemeral, sequential, container, ttl bool
}

func modeOf(flags int32) (createMode, bool) {
	switch flags {
	case proto.ModePersistent:
		return createMode{}, true
	case proto.ModeEphemeral:
		return createMode{ephemeral: true}, true
	case proto.ModePersistentSequential:
		return createMode{sequential: true}, true
	case proto.ModeEphemeralSequential:
		return createMode{ephemeral: true, sequential: true}, true
	case proto.ModeContainer:
		return createMode{container: true}, true
	case proto.ModePersistentWithTTL:
		return createMode{ttl: true}, true
	case proto.ModePersistentSequentialTTL:
		return createMode{ttl: true, sequential: true}, true
	}
	return createMode{}, false
}

// create follows PrepRequestProcessor.pRequest2TxnCreate step by step: the
// order of the checks decides which error a bad request gets.
func (s *State) create(t *txn, op proto.OpCode, path string, data []byte, acl []proto.ACL, flags int32, ttl int64) (proto.Record, proto.ErrCode) {
	mode, ok := modeOf(flags)
	if !ok {
		return nil, proto.ErrBadArguments
	}
	if mode.ttl && !s.opts.ExtendedTypes {
		return nil, proto.ErrUnimplemented
	}
	if mode.ttl {
		if ttl <= 0 || ttl > proto.MaxTTL {
			return nil, proto.ErrBadArguments
		}
	} else if ttl >= 0 {
		return nil, proto.ErrBadArguments
	}
	slash := strings.LastIndexByte(path, '/')
	if slash < 0 || strings.IndexByte(path, 0) >= 0 {
		return nil, proto.ErrBadArguments
	}
	parentPath := path[:slash]
	fixed, code := fixupACL(acl, t.e.Auth)
	if code != proto.ErrOK {
		return nil, code
	}
	parent := s.lookup(parentPath)
	if parent == nil {
		return nil, proto.ErrNoNode
	}
	if code := s.checkACL(parent.acl.acl, proto.PermCreate, t.e.Auth); code != proto.ErrOK {
		return nil, code
	}
	if mode.sequential {
		path += fmt.Sprintf("%010d", parent.stat.Cversion)
	}
	if proto.ValidatePath(path) != nil {
		return nil, proto.ErrBadArguments
	}
	if s.nodes[path] != nil {
		return nil, proto.ErrNodeExists
	}
	if proto.IsEphemeralOwner(parent.stat.EphemeralOwner) {
		return nil, proto.ErrNoChildrenForEphemerals
	}
	if code := s.checkQuota(t, path, int64(len(data)), 1); code != proto.ErrOK {
		return nil, code
	}

	// The node's kind comes from the opcode for containers and from the
	// flags otherwise, as the txn ZooKeeper logs for each op does.
	var owner int64
	switch {
	case op == proto.OpCreateContainer:
		owner = proto.ContainerOwner
	case op == proto.OpCreateTTL:
		owner = proto.TTLOwner(ttl)
	case mode.ephemeral:
		owner = t.e.Session
	}
	if parentPath == "" {
		parentPath = "/"
	}
	n := &node{
		data: data,
		acl:  s.acls.intern(fixed),
		stat: proto.StatPersisted{
			Czxid: t.zxid, Mzxid: t.zxid, Pzxid: t.zxid,
			Ctime: t.e.Time, Mtime: t.e.Time,
			EphemeralOwner: owner,
		},
	}
	s.insertNode(t, path, parentPath, parent, n)
	if op == proto.OpCreate {
		return &proto.CreateResponse{Path: path}, proto.ErrOK
	}
	return &proto.Create2Response{Path: path, Stat: n.wireStat()}, proto.ErrOK
}

// insertNode links a new node under its parent: parent cversion+1 and
// pzxid = zxid (DataTree.createNode), indexes it, and records the undo.
func (s *State) insertNode(t *txn, path, parentPath string, parent *node, n *node) {
	oldCversion, oldPzxid := parent.stat.Cversion, parent.stat.Pzxid
	parent.stat.Cversion++
	parent.stat.Pzxid = t.zxid
	s.nodes[path] = n
	s.link(path)
	s.dataSize += int64(len(path) + len(n.data))
	s.index(path, n.stat.EphemeralOwner, true)
	t.changes = append(t.changes,
		Change{Type: proto.EventNodeCreated, Path: path, ACL: n.acl.acl},
		Change{Type: proto.EventNodeChildrenChanged, Path: parentPath, ACL: parent.acl.acl})
	t.undo = append(t.undo, func() {
		s.index(path, n.stat.EphemeralOwner, false)
		s.dataSize -= int64(len(path) + len(n.data))
		delete(parent.children, path[strings.LastIndexByte(path, '/')+1:])
		delete(s.nodes, path)
		s.acls.release(n.acl)
		parent.stat.Cversion, parent.stat.Pzxid = oldCversion, oldPzxid
	})
	s.quotaCreated(t, path, parentPath, n)
}

// index adds or removes a node from the container, TTL and ephemeral sets.
func (s *State) index(path string, owner int64, add bool) {
	var set map[string]struct{}
	switch {
	case owner == 0:
		return
	case owner == proto.ContainerOwner:
		set = s.containers
	case proto.IsTTLOwner(owner):
		set = s.ttls
	default:
		ss := s.sessions[owner]
		if ss == nil {
			return
		}
		set = ss.ephemerals
	}
	if add {
		set[path] = struct{}{}
	} else {
		delete(set, path)
	}
}

// delete follows the delete branch of PrepRequestProcessor.pRequest2Txn.
func (s *State) delete(t *txn, r *proto.DeleteRequest) proto.ErrCode {
	path := r.Path
	slash := strings.LastIndexByte(path, '/')
	if slash < 0 || strings.IndexByte(path, 0) >= 0 || isSpecialPath(path) {
		return proto.ErrBadArguments
	}
	parent := s.lookup(path[:slash])
	if parent == nil {
		return proto.ErrNoNode
	}
	if code := s.checkACL(parent.acl.acl, proto.PermDelete, t.e.Auth); code != proto.ErrOK {
		return code
	}
	n := s.nodes[path]
	if n == nil {
		return proto.ErrNoNode
	}
	if r.Version != -1 && r.Version != n.stat.Version {
		return proto.ErrBadVersion
	}
	if len(n.children) > 0 {
		return proto.ErrNotEmpty
	}
	s.deleteNode(t, path)
	return proto.ErrOK
}

// deleteNode unlinks a childless node: the parent's pzxid moves to zxid but
// its cversion does not change (DataTree.deleteNode).
func (s *State) deleteNode(t *txn, path string) {
	n := s.nodes[path]
	parentPath := parentOf(path)
	parent := s.nodes[parentPath]
	name := path[strings.LastIndexByte(path, '/')+1:]
	oldPzxid := parent.stat.Pzxid
	if t.zxid > parent.stat.Pzxid {
		parent.stat.Pzxid = t.zxid
	}
	delete(parent.children, name)
	delete(s.nodes, path)
	s.dataSize -= int64(len(path) + len(n.data))
	s.index(path, n.stat.EphemeralOwner, false)
	t.changes = append(t.changes,
		Change{Type: proto.EventNodeDeleted, Path: path, ACL: n.acl.acl},
		Change{Type: proto.EventNodeChildrenChanged, Path: parentPath, ACL: parent.acl.acl})
	// The ACL reference is kept until the txn is final, so an undo can
	// restore the node with the same interned list.
	t.undo = append(t.undo, func() {
		s.nodes[path] = n
		s.link(path)
		s.dataSize += int64(len(path) + len(n.data))
		s.index(path, n.stat.EphemeralOwner, true)
		parent.stat.Pzxid = oldPzxid
	})
	t.commitHooks(func() { s.acls.release(n.acl) })
	if prefix := s.quotaPrefix(path); prefix != "" {
		s.updateQuotaStat(t, prefix, -int64(len(n.data)), -1)
	}
}

// commitHooks defers work that must wait until the txn cannot be undone.
func (t *txn) commitHooks(f func()) { t.onCommit = append(t.onCommit, f) }

func (s *State) setData(t *txn, r *proto.SetDataRequest) (proto.Record, proto.ErrCode) {
	if proto.ValidatePath(r.Path) != nil {
		return nil, proto.ErrBadArguments
	}
	n := s.nodes[r.Path]
	if n == nil {
		return nil, proto.ErrNoNode
	}
	if code := s.checkACL(n.acl.acl, proto.PermWrite, t.e.Auth); code != proto.ErrOK {
		return nil, code
	}
	if code := s.checkQuota(t, r.Path, int64(len(r.Data)-len(n.data)), 0); code != proto.ErrOK {
		return nil, code
	}
	if r.Version != -1 && r.Version != n.stat.Version {
		return nil, proto.ErrBadVersion
	}
	old, oldStat := n.data, n.stat
	n.data = r.Data
	n.stat.Version++
	n.stat.Mtime = t.e.Time
	n.stat.Mzxid = t.zxid
	s.dataSize += int64(len(r.Data) - len(old))
	t.changes = append(t.changes, Change{Type: proto.EventNodeDataChanged, Path: r.Path, ACL: n.acl.acl})
	t.undo = append(t.undo, func() {
		s.dataSize -= int64(len(r.Data) - len(old))
		n.data, n.stat = old, oldStat
	})
	if prefix := s.quotaPrefix(r.Path); prefix != "" {
		s.updateQuotaStat(t, prefix, int64(len(r.Data)-len(old)), 0)
	}
	return &proto.SetDataResponse{Stat: n.wireStat()}, proto.ErrOK
}

func (s *State) setACL(t *txn, r *proto.SetACLRequest) (proto.Record, proto.ErrCode) {
	if proto.ValidatePath(r.Path) != nil {
		return nil, proto.ErrBadArguments
	}
	fixed, code := fixupACL(r.Acl, t.e.Auth)
	if code != proto.ErrOK {
		return nil, code
	}
	n := s.nodes[r.Path]
	if n == nil {
		return nil, proto.ErrNoNode
	}
	if code := s.checkACL(n.acl.acl, proto.PermAdmin, t.e.Auth); code != proto.ErrOK {
		return nil, code
	}
	if r.Version != -1 && r.Version != n.stat.Aversion {
		return nil, proto.ErrBadVersion
	}
	old, oldAversion := n.acl, n.stat.Aversion
	n.acl = s.acls.intern(fixed)
	n.stat.Aversion++
	t.undo = append(t.undo, func() {
		s.acls.release(n.acl)
		n.acl, n.stat.Aversion = old, oldAversion
	})
	t.commitHooks(func() { s.acls.release(old) })
	return &proto.SetDataResponse{Stat: n.wireStat()}, proto.ErrOK
}

func (s *State) check(t *txn, r *proto.CheckVersionRequest) proto.ErrCode {
	if proto.ValidatePath(r.Path) != nil {
		return proto.ErrBadArguments
	}
	n := s.nodes[r.Path]
	if n == nil {
		return proto.ErrNoNode
	}
	if code := s.checkACL(n.acl.acl, proto.PermRead, t.e.Auth); code != proto.ErrOK {
		return code
	}
	if r.Version != -1 && r.Version != n.stat.Version {
		return proto.ErrBadVersion
	}
	return proto.ErrOK
}

// multi applies the sub-ops in order, each seeing the effects of the ones
// before it. On the first failure everything is undone and the results take
// ZooKeeper's error layout: OK for the ops before, the real error for the
// failing op, RuntimeInconsistency for the ops after
// (DataTree.processTxn, MultiResponse).
func (s *State) multi(t *txn, req *proto.MultiRequest) *proto.MultiResponse {
	resp := &proto.MultiResponse{Results: make([]proto.MultiResult, len(req.Ops))}
	failed := -1
	var failCode proto.ErrCode
	for i, op := range req.Ops {
		var (
			r    proto.Record
			code proto.ErrCode
		)
		op = multiSubOp(op)
		if op.Type == proto.OpGetData || op.Type == proto.OpGetChildren {
			code = proto.ErrBadArguments
		} else {
			r, code = s.writeOp(t, op.Type, op.Req)
		}
		if code != proto.ErrOK {
			failed, failCode = i, code
			break
		}
		resp.Results[i] = proto.MultiResult{Type: resultType(op.Type), Resp: r}
	}
	if failed < 0 {
		t.commit()
		return resp
	}
	t.rollback()
	for i := range resp.Results {
		code := proto.ErrOK
		switch {
		case i == failed:
			code = failCode
		case i > failed:
			code = proto.ErrRuntimeInconsistency
		}
		resp.Results[i] = proto.MultiResult{Type: proto.OpError, Err: code}
	}
	return resp
}

// multiSubOp reproduces how ZooKeeper's MultiOperationRecord rebuilds a
// create sub-op from its flags (Op.create): whatever create opcode the client
// sent, container flags make it createContainer and anything else a plain
// create (so a create2 sub-op answers with a path only); a createTTL sub-op
// without TTL flags becomes a plain create.
func multiSubOp(op proto.MultiOp) proto.MultiOp {
	switch r := op.Req.(type) {
	case *proto.CreateRequest:
		mode, _ := modeOf(r.Flags)
		switch {
		case mode.container:
			op.Type = proto.OpCreateContainer
		case mode.ttl:
			// Java casts this CreateRequest to a CreateTTLRequest and
			// fails; refuse it as a bad TTL.
			op.Type = proto.OpCreateTTL
			op.Req = &proto.CreateTTLRequest{Path: r.Path, Data: r.Data, Acl: r.Acl, Flags: r.Flags, Ttl: -1}
		default:
			op.Type = proto.OpCreate
		}
	case *proto.CreateTTLRequest:
		if mode, _ := modeOf(r.Flags); !mode.ttl {
			op.Type = proto.OpCreate
			op.Req = &proto.CreateRequest{Path: r.Path, Data: r.Data, Acl: r.Acl, Flags: r.Flags}
		}
	}
	return op
}

// resultType is the op type a multi result reports: TTL and container
// creates answer as create2 (OpResult.CreateResult with a stat).
func resultType(op proto.OpCode) proto.OpCode {
	switch op {
	case proto.OpCreateTTL, proto.OpCreateContainer:
		return proto.OpCreate2
	}
	return op
}

// rollback undoes the txn's effects in reverse order and drops its changes.
func (t *txn) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo, t.onCommit, t.changes = nil, nil, nil
}

// commit makes the txn final.
func (t *txn) commit() {
	for _, f := range t.onCommit {
		f()
	}
	t.undo, t.onCommit = nil, nil
}
