package client

import (
	"context"
	"fmt"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// Op is one operation of a transaction (Multi) or of a batch of reads
// (MultiRead). Build it with CreateOp, CreateTTLOp, DeleteOp, SetOp,
// CheckOp, GetDataOp or GetChildrenOp.
type Op struct {
	kind    proto.OpCode
	path    string
	data    []byte
	acl     []ACL
	mode    CreateMode
	ttl     time.Duration
	version int32
}

// Path returns the path the operation acts on.
func (o Op) Path() string { return o.path }

// Type returns the operation's opcode.
func (o Op) Type() proto.OpCode { return o.kind }

// CreateOp creates a node (see Client.Create; ModeContainer makes a
// container). The result holds the created path and Stat.
func CreateOp(path string, data []byte, mode CreateMode, acl []ACL) Op {
	return Op{kind: proto.OpCreate2, path: path, data: data, mode: mode, acl: acl}
}

// CreateTTLOp creates a TTL node (see Client.CreateTTL).
func CreateTTLOp(path string, data []byte, mode CreateMode, acl []ACL, ttl time.Duration) Op {
	return Op{kind: proto.OpCreateTTL, path: path, data: data, mode: mode, acl: acl, ttl: ttl}
}

// DeleteOp deletes a node if its version matches.
func DeleteOp(path string, version int32) Op {
	return Op{kind: proto.OpDelete, path: path, version: version}
}

// SetOp sets a node's data if its version matches. The result holds the
// new Stat.
func SetOp(path string, data []byte, version int32) Op {
	return Op{kind: proto.OpSetData, path: path, data: data, version: version}
}

// CheckOp asserts a node's version without changing it; the transaction
// fails with ErrBadVersion or ErrNoNode if the assertion does not hold.
func CheckOp(path string, version int32) Op {
	return Op{kind: proto.OpCheck, path: path, version: version}
}

// GetDataOp reads a node's data in a MultiRead.
func GetDataOp(path string) Op { return Op{kind: proto.OpGetData, path: path} }

// GetChildrenOp lists a node's children in a MultiRead.
func GetChildrenOp(path string) Op { return Op{kind: proto.OpGetChildren, path: path} }

// OpResult is the outcome of one operation of a Multi or MultiRead.
type OpResult struct {
	// Type is the operation's opcode as the server reports it; proto.OpError
	// for a failed operation or, in a failed transaction, for every
	// operation.
	Type proto.OpCode
	// Err is nil on success. In a failed transaction the failing
	// operation carries its error, those before it nil, and those after it
	// ErrRuntimeInconsistency, as ZooKeeper reports them.
	Err error
	// Path is the created node's path (create operations).
	Path string
	// Stat is the node's Stat after a set, a TTL or container create, or
	// with the data read. Plain creates report only their path: servers
	// (ZooKeeper 3.8 and Paddock alike) answer them as "create", not
	// "create2".
	Stat *Stat
	// Data is the data read by GetDataOp.
	Data []byte
	// Children are the names listed by GetChildrenOp.
	Children []string
}

func (c *Client) subRequest(o Op) (proto.MultiOp, error) {
	sp := c.serverPath(o.path)
	seq := o.mode == ModePersistentSequential || o.mode == ModeEphemeralSequential || o.mode == ModePersistentSequentialWithTTL
	if err := checkPath(o.kind.String(), o.path, seq && (o.kind == proto.OpCreate2 || o.kind == proto.OpCreateTTL)); err != nil {
		return proto.MultiOp{}, err
	}
	switch o.kind {
	case proto.OpCreate2:
		kind := proto.OpCreate2
		if o.mode == ModeContainer {
			kind = proto.OpCreateContainer
		}
		if o.mode.IsTTL() {
			return proto.MultiOp{}, &OpError{Op: "create", Path: o.path, Err: fmt.Errorf("%w: mode %v needs CreateTTLOp", ErrBadArguments, o.mode)}
		}
		return proto.MultiOp{Type: kind, Req: &proto.CreateRequest{Path: sp, Data: o.data, Acl: orOpen(o.acl), Flags: int32(o.mode)}}, nil
	case proto.OpCreateTTL:
		return proto.MultiOp{Type: o.kind, Req: &proto.CreateTTLRequest{Path: sp, Data: o.data, Acl: orOpen(o.acl), Flags: int32(o.mode), Ttl: o.ttl.Milliseconds()}}, nil
	case proto.OpDelete:
		return proto.MultiOp{Type: o.kind, Req: &proto.DeleteRequest{Path: sp, Version: o.version}}, nil
	case proto.OpSetData:
		return proto.MultiOp{Type: o.kind, Req: &proto.SetDataRequest{Path: sp, Data: o.data, Version: o.version}}, nil
	case proto.OpCheck:
		return proto.MultiOp{Type: o.kind, Req: &proto.CheckVersionRequest{Path: sp, Version: o.version}}, nil
	case proto.OpGetData:
		return proto.MultiOp{Type: o.kind, Req: &proto.GetDataRequest{Path: sp}}, nil
	case proto.OpGetChildren:
		return proto.MultiOp{Type: o.kind, Req: &proto.GetChildrenRequest{Path: sp}}, nil
	}
	return proto.MultiOp{}, &OpError{Op: "multi", Path: o.path, Err: fmt.Errorf("%w: invalid operation", ErrBadArguments)}
}

func isRead(k proto.OpCode) bool { return k == proto.OpGetData || k == proto.OpGetChildren }

// Multi runs write operations as one atomic transaction: all of them are
// applied, with one zxid, or none. It returns one result per operation.
// When the transaction fails, the error is an *OpError naming the first
// failing operation's path and wrapping its cause (errors.Is(err,
// ErrBadVersion) and so on), and the results show which operation failed.
// An empty transaction succeeds without contacting the server.
func (c *Client) Multi(ctx context.Context, ops ...Op) ([]OpResult, error) {
	return c.multi(ctx, proto.OpMulti, "multi", ops)
}

// MultiRead runs GetDataOp and GetChildrenOp reads in one round trip.
// Unlike Multi it is not atomic and each read succeeds or fails on its own
// (see OpResult.Err); the returned error is only for the request as a
// whole. The reads set no watches.
func (c *Client) MultiRead(ctx context.Context, ops ...Op) ([]OpResult, error) {
	return c.multi(ctx, proto.OpMultiRead, "multiRead", ops)
}

func (c *Client) multi(ctx context.Context, op proto.OpCode, name string, ops []Op) ([]OpResult, error) {
	if len(ops) == 0 {
		return []OpResult{}, nil
	}
	req := &proto.MultiRequest{}
	for _, o := range ops {
		if isRead(o.kind) != (op == proto.OpMultiRead) {
			return nil, &OpError{Op: name, Path: o.path, Err: fmt.Errorf("%w: %v cannot be part of %s", ErrBadArguments, o.kind, name)}
		}
		sub, err := c.subRequest(o)
		if err != nil {
			return nil, err
		}
		req.Ops = append(req.Ops, sub)
	}
	var resp proto.MultiResponse
	if err := c.call(ctx, name, "", newRequest(op, req, &resp)); err != nil {
		return nil, err
	}
	results := make([]OpResult, len(resp.Results))
	var first error
	for i, r := range resp.Results {
		res := OpResult{Type: r.Type}
		if r.Type == proto.OpError {
			res.Err = codeErr(int32(r.Err))
		}
		switch x := r.Resp.(type) {
		case *proto.CreateResponse:
			res.Path = c.clientPath(x.Path)
		case *proto.Create2Response:
			res.Path = c.clientPath(x.Path)
			res.Stat = &x.Stat
		case *proto.SetDataResponse:
			res.Stat = &x.Stat
		case *proto.GetDataResponse:
			res.Data = x.Data
			res.Stat = &x.Stat
		case *proto.GetChildrenResponse:
			res.Children = x.Children
			if res.Children == nil {
				res.Children = []string{}
			}
		}
		if res.Err != nil && first == nil && op == proto.OpMulti {
			path := ""
			if i < len(ops) {
				path = ops[i].path
			}
			first = &OpError{Op: name, Path: path, Err: res.Err}
		}
		results[i] = res
	}
	return results, first
}
