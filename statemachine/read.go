package statemachine

import (
	"sort"
	"strings"

	"github.com/paddockhq/paddock/proto"
)

// Read answers a read request from the local tree, as FinalRequestProcessor
// does: exists, getData, getChildren, getChildren2, getACL,
// getAllChildrenNumber, getEphemerals and multiRead. It does not register
// watches; the server does that from the request's watch flag (exists
// registers one even when it answers NoNode).
func (s *State) Read(session int64, auth []proto.Id, op proto.OpCode, req proto.Record) (proto.Record, proto.ErrCode) {
	switch r := req.(type) {
	case *proto.ExistsRequest:
		if strings.IndexByte(r.Path, 0) >= 0 {
			return nil, proto.ErrBadArguments
		}
		// Like ZooKeeper 3.8.0, exists needs no permission: anyone may
		// stat a node (checked against READ only from 3.8.4/3.9.2 on).
		n := s.nodes[r.Path]
		if n == nil {
			return nil, proto.ErrNoNode
		}
		return &proto.ExistsResponse{Stat: n.wireStat()}, proto.ErrOK
	case *proto.GetDataRequest:
		n, code := s.readable(r.Path, proto.PermRead, auth)
		if code != proto.ErrOK {
			return nil, code
		}
		return &proto.GetDataResponse{Data: n.data, Stat: n.wireStat()}, proto.ErrOK
	case *proto.GetChildrenRequest:
		n, code := s.readable(r.Path, proto.PermRead, auth)
		if code != proto.ErrOK {
			return nil, code
		}
		return &proto.GetChildrenResponse{Children: childNames(n)}, proto.ErrOK
	case *proto.GetChildren2Request:
		n, code := s.readable(r.Path, proto.PermRead, auth)
		if code != proto.ErrOK {
			return nil, code
		}
		return &proto.GetChildren2Response{Children: childNames(n), Stat: n.wireStat()}, proto.ErrOK
	case *proto.GetACLRequest:
		n, code := s.readable(r.Path, proto.PermRead|proto.PermAdmin, auth)
		if code != proto.ErrOK {
			return nil, code
		}
		acl := n.acl.acl
		if s.checkACL(acl, proto.PermAdmin, auth) != proto.ErrOK {
			// Without ADMIN, digest ids are masked to user:x.
			masked := make([]proto.ACL, len(acl))
			for i, a := range acl {
				if a.Id.Scheme == "digest" {
					user, _, _ := strings.Cut(a.Id.Id, ":")
					a.Id.Id = user + ":x"
				}
				masked[i] = a
			}
			acl = masked
		}
		return &proto.GetACLResponse{Acl: acl, Stat: n.wireStat()}, proto.ErrOK
	case *proto.GetAllChildrenNumberRequest:
		n, code := s.readable(r.Path, proto.PermRead, auth)
		if code != proto.ErrOK {
			return nil, code
		}
		return &proto.GetAllChildrenNumberResponse{TotalNumber: int32(s.descendants(r.Path, n))}, proto.ErrOK
	case *proto.GetEphemeralsRequest:
		var out []string
		prefix := strings.TrimSpace(r.PrefixPath)
		for _, p := range s.Ephemerals(session) {
			if prefix == "" || prefix == "/" || strings.HasPrefix(p, r.PrefixPath) {
				out = append(out, p)
			}
		}
		return &proto.GetEphemeralsResponse{Ephemerals: out}, proto.ErrOK
	case *proto.MultiRequest:
		resp := &proto.MultiResponse{}
		for _, sub := range r.Ops {
			var res proto.MultiResult
			switch sub.Type {
			case proto.OpGetData, proto.OpGetChildren:
				rec, code := s.Read(session, auth, sub.Type, sub.Req)
				if code != proto.ErrOK {
					res = proto.MultiResult{Type: proto.OpError, Err: code}
				} else {
					res = proto.MultiResult{Type: sub.Type, Resp: rec}
				}
			default:
				res = proto.MultiResult{Type: proto.OpError, Err: proto.ErrBadArguments}
			}
			resp.Results = append(resp.Results, res)
		}
		return resp, proto.ErrOK
	}
	return nil, proto.ErrUnimplemented
}

// readable finds a node and checks a permission on it.
func (s *State) readable(path string, perm int32, auth []proto.Id) (*node, proto.ErrCode) {
	n := s.nodes[path]
	if n == nil {
		return nil, proto.ErrNoNode
	}
	if code := s.checkACL(n.acl.acl, perm, auth); code != proto.ErrOK {
		return nil, code
	}
	return n, proto.ErrOK
}

// childNames lists a node's children. ZooKeeper returns them in hash-set
// order, which clients must not rely on; sorted is as good and stable.
func childNames(n *node) []string {
	out := make([]string, 0, len(n.children))
	for c := range n.children {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// descendants counts every node below path (DataTree.getAllChildrenNumber).
func (s *State) descendants(path string, n *node) int {
	if path == "/" {
		return len(s.nodes) - 1
	}
	total := 0
	for c := range n.children {
		cp := path + "/" + c
		total += 1 + s.descendants(cp, s.nodes[cp])
	}
	return total
}
