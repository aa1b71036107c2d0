package etcdapi

import (
	"context"
	"net/url"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/paddockhq/paddock/statemachine"
)

// Range serves a read from the local replica: after a linearizable
// barrier unless the request is serializable. It never writes to the log,
// so reads never change the revision.
func (a *API) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	if !r.Serializable {
		if err := a.barrier(ctx); err != nil {
			return nil, err
		}
	}
	var resp *pb.RangeResponse
	var err error
	a.srv.ReadState(func(st *statemachine.State) { resp, err = st.Etcd().Range(r) })
	if err != nil {
		return nil, toGRPC(err)
	}
	a.fill(resp.Header)
	return resp, nil
}

// Put writes one key through the log.
func (a *API) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	res, err := a.submit(ctx, statemachine.OpEtcdPut, r)
	if err != nil {
		return nil, err
	}
	resp := res.Resp.(*pb.PutResponse)
	a.fill(resp.Header)
	return resp, nil
}

// DeleteRange deletes keys through the log.
func (a *API) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	res, err := a.submit(ctx, statemachine.OpEtcdDeleteRange, r)
	if err != nil {
		return nil, err
	}
	resp := res.Resp.(*pb.DeleteRangeResponse)
	a.fill(resp.Header)
	return resp, nil
}

// Txn runs a transaction as one log entry: compares and both branches are
// evaluated at apply time, so its effects (and the reads of its branch)
// are atomic, and all its events share one revision.
func (a *API) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, maxTxnOps); err != nil {
		return nil, err
	}
	if _, _, err := checkIntervals(r.Success); err != nil {
		return nil, err
	}
	if _, _, err := checkIntervals(r.Failure); err != nil {
		return nil, err
	}
	res, err := a.submit(ctx, statemachine.OpEtcdTxn, r)
	if err != nil {
		return nil, err
	}
	resp := res.Resp.(*pb.TxnResponse)
	a.fillTxn(resp)
	return resp, nil
}

func (a *API) fillTxn(t *pb.TxnResponse) {
	a.fill(t.Header)
	for _, r := range t.Responses {
		switch v := r.Response.(type) {
		case *pb.ResponseOp_ResponseRange:
			a.fill(v.ResponseRange.Header)
		case *pb.ResponseOp_ResponsePut:
			a.fill(v.ResponsePut.Header)
		case *pb.ResponseOp_ResponseDeleteRange:
			a.fill(v.ResponseDeleteRange.Header)
		case *pb.ResponseOp_ResponseTxn:
			a.fillTxn(v.ResponseTxn)
		}
	}
}

// Compact compacts the history up to r.Revision on every replica (a log
// entry). Physical is accepted: compaction is complete when the entry is
// applied.
func (a *API) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	res, err := a.submit(ctx, statemachine.OpEtcdCompact, r)
	if err != nil {
		return nil, err
	}
	resp := res.Resp.(*pb.CompactionResponse)
	a.fill(resp.Header)
	return resp, nil
}

// Status reports the version, the keyspace size, and raft positions.
func (a *API) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	rs := a.srv.Raft()
	var size, rev int64
	a.srv.ReadState(func(st *statemachine.State) { size, rev = st.Etcd().Size(), st.Etcd().Rev() })
	resp := &pb.StatusResponse{
		Header:           a.header(rev),
		Version:          Version,
		DbSize:           size,
		DbSizeInUse:      size,
		Leader:           rs.Leader,
		RaftIndex:        rs.Committed,
		RaftTerm:         rs.Term,
		RaftAppliedIndex: rs.Applied,
		StorageVersion:   Version, // a fresh etcd 3.7.0 reports 3.7.0 too
	}
	for _, m := range a.srv.Members() {
		if m.ID == rs.ID {
			resp.IsLearner = m.Observer
		}
	}
	if rs.Leader == 0 {
		resp.Errors = append(resp.Errors, "etcdserver: no leader")
	}
	return resp, nil
}

// MemberList lists the ensemble's members. A member's etcd client URL is
// this member's own for itself; for the others it is derived from their
// ZooKeeper client (or peer) host and this member's etcd port, which is
// right when every member serves the etcd API on the same port.
func (a *API) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if err := a.barrier(ctx); err != nil {
			return nil, err
		}
	}
	self := a.selfURL()
	port := ""
	if u, err := url.Parse(self); err == nil {
		port = u.Port()
	}
	rs := a.srv.Raft()
	resp := &pb.MemberListResponse{}
	var rev int64
	rev, _ = a.currentRev()
	resp.Header = a.header(rev)
	for _, m := range a.srv.Members() {
		pm := &pb.Member{ID: m.ID, Name: memberName(m.ID), IsLearner: m.Observer}
		if m.PeerAddr != "" {
			pm.PeerURLs = []string{"http://" + m.PeerAddr}
		}
		if m.ID == rs.ID {
			pm.ClientURLs = []string{self}
		} else if port != "" {
			host := hostOf(m.ClientAddr)
			if host == "" {
				host = hostOf(m.PeerAddr)
			}
			if host != "" {
				pm.ClientURLs = []string{a.scheme + "://" + joinHostPort(host, port)}
			}
		}
		resp.Members = append(resp.Members, pm)
	}
	return resp, nil
}

func (a *API) selfURL() string {
	if a.cfg.AdvertiseClientURL != "" {
		return a.cfg.AdvertiseClientURL
	}
	a.lnMu.Lock()
	defer a.lnMu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.scheme + "://" + a.ln.Addr().String()
}

func hostOf(addr string) string {
	if addr == "" {
		return ""
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	h := strings.TrimSuffix(strings.TrimPrefix(addr[:i], "["), "]")
	if h == "" || h == "0.0.0.0" || h == "::" {
		return ""
	}
	return h
}

func joinHostPort(h, p string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}
