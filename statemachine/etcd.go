package statemachine

import (
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

// Opcodes of the etcd v3 keyspace (package etcdkv). Like the ensemble's
// internal opcodes they are negative, outside ZooKeeper's space; the body
// is etcd's protobuf request. They need no ZooKeeper session.
const (
	OpEtcdPut            proto.OpCode = -200
	OpEtcdDeleteRange    proto.OpCode = -201
	OpEtcdTxn            proto.OpCode = -202
	OpEtcdCompact        proto.OpCode = -203
	OpEtcdLeaseGrant     proto.OpCode = -204
	OpEtcdLeaseRevoke    proto.OpCode = -205
	OpEtcdLeaseExpire    proto.OpCode = -206
	OpEtcdLeaseKeepAlive proto.OpCode = -207
)

var etcdOps = map[proto.OpCode]etcdkv.Op{
	OpEtcdPut:            etcdkv.OpPut,
	OpEtcdDeleteRange:    etcdkv.OpDeleteRange,
	OpEtcdTxn:            etcdkv.OpTxn,
	OpEtcdCompact:        etcdkv.OpCompact,
	OpEtcdLeaseGrant:     etcdkv.OpLeaseGrant,
	OpEtcdLeaseRevoke:    etcdkv.OpLeaseRevoke,
	OpEtcdLeaseExpire:    etcdkv.OpLeaseExpire,
	OpEtcdLeaseKeepAlive: etcdkv.OpLeaseKeepAlive,
}

// IsEtcdOp reports whether op is an etcd keyspace opcode.
func IsEtcdOp(op proto.OpCode) bool {
	_, ok := etcdOps[op]
	return ok
}

// Etcd returns the etcd keyspace. Callers hold the same lock as for any
// other read of the state.
func (s *State) Etcd() *etcdkv.Store { return s.etcd }

// applyEtcd applies an etcd opcode; ok is false for any other opcode.
func (s *State) applyEtcd(t *txn, res *Result) bool {
	op, ok := etcdOps[t.e.Op]
	if !ok {
		return false
	}
	r := s.etcd.Apply(t.zxid, op, t.e.Body)
	res.Etcd = &r
	return true
}
