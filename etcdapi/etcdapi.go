// Package etcdapi serves the etcd v3 gRPC API (KV, Watch, Lease,
// Maintenance.Status, Cluster.MemberList, grpc health) from a Paddock
// server's replicated state: the keyspace lives in statemachine/etcdkv,
// writes are log entries proposed through the server, reads are served
// from the local replica after a linearizable barrier (unless
// serializable), and watches are fed from the server's apply path.
//
// See docs/ETCD.md for what is implemented and how it maps onto etcd.
package etcdapi

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	gproto "google.golang.org/protobuf/proto"

	"crypto/tls"
	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/replication"
	"github.com/paddockhq/paddock/server"
	"github.com/paddockhq/paddock/statemachine"
	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

// Version is the etcd server version reported by Maintenance.Status.
// kube-apiserver (v1.37, k8s.io/apiserver storage/feature) reads it for
// one decision only: RequestWatchProgress needs >= 3.5.13 (implemented).
// RangeStream, the one RPC etcd 3.7 added (and the only 3.7 feature the
// apiserver uses), is not gated on the version: with its EtcdRangeStream
// gate on (the 1.37 default) the apiserver tries it and falls back to
// paging for 10 minutes on Unimplemented. RangeStream is implemented as
// etcd 3.7.0 serves it (rangestream.go), so 3.7.0 is claimed.
const Version = "3.7.0"

// MaxRequestBytes is etcd's default request size limit (1.5 MiB).
const MaxRequestBytes = 1536 * 1024

// maxTxnOps is etcd's default --max-txn-ops.
const maxTxnOps = 128

// Config configures the etcd API.
type Config struct {
	// TLS, when set, serves TLS (with client certificate verification if
	// its ClientAuth asks for it).
	TLS *tls.Config
	// AdvertiseClientURL is this member's etcd URL in MemberList; default
	// derived from the listener.
	AdvertiseClientURL string
	// ProgressNotifyInterval is the period of progress notifications to
	// watches that asked for them; default 5s (what kube-apiserver expects).
	ProgressNotifyInterval time.Duration
	// RequestTimeout bounds a write's wait for its entry; default 10s.
	RequestTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// API is the etcd v3 gRPC front end of one Paddock server.
type API struct {
	pb.UnimplementedKVServer
	pb.UnimplementedWatchServer
	pb.UnimplementedLeaseServer
	pb.UnimplementedClusterServer
	pb.UnimplementedMaintenanceServer

	srv       *server.Server
	cfg       Config
	log       *slog.Logger
	grpc      *grpc.Server
	health    *health.Server
	clusterID uint64
	hub       *hub
	leases    *leaseTracker
	scheme    string

	// beforeChunk, when set (tests), runs before each RangeStream chunk
	// is read, outside every lock.
	beforeChunk atomic.Pointer[func(chunk int)]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	lnMu   sync.Mutex
	ln     net.Listener
}

// New attaches an etcd API to srv (installing its apply observer). Call
// Serve with a listener.
func New(srv *server.Server, cfg Config) *API {
	if cfg.ProgressNotifyInterval <= 0 {
		cfg.ProgressNotifyInterval = 5 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &API{srv: srv, cfg: cfg, log: cfg.Logger.With("component", "etcd"), ctx: ctx, cancel: cancel, scheme: "http"}
	h := fnv.New64a()
	h.Write([]byte("paddock/" + srv.ClusterID()))
	a.clusterID = h.Sum64()
	a.hub = newHub()
	a.leases = newLeaseTracker()
	srv.SetApplyObserver(observer{a})

	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRequestBytes + 512*1024),
		grpc.MaxSendMsgSize(1<<31 - 1),
		grpc.MaxConcurrentStreams(1<<32 - 1),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
		a.scheme = "https"
	}
	g := grpc.NewServer(opts...)
	pb.RegisterKVServer(g, a)
	pb.RegisterWatchServer(g, a)
	pb.RegisterLeaseServer(g, a)
	pb.RegisterClusterServer(g, a)
	pb.RegisterMaintenanceServer(g, a)
	pb.RegisterAuthServer(g, pb.UnimplementedAuthServer{})
	a.health = health.NewServer()
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, a.health)
	a.grpc = g

	a.wg.Add(1)
	go a.leaseLoop()
	return a
}

// Serve serves the API on ln until Close.
func (a *API) Serve(ln net.Listener) error {
	a.lnMu.Lock()
	a.ln = ln
	a.lnMu.Unlock()
	err := a.grpc.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Close stops serving: streams end, in-flight calls are cancelled.
func (a *API) Close() {
	a.cancel()
	a.health.Shutdown()
	a.grpc.Stop()
	a.wg.Wait()
	a.srv.SetApplyObserver(nil)
	a.hub.notify()
}

// header returns a response header at revision rev.
func (a *API) header(rev int64) *pb.ResponseHeader {
	rs := a.srv.Raft()
	return &pb.ResponseHeader{ClusterId: a.clusterID, MemberId: rs.ID, Revision: rev, RaftTerm: rs.Term}
}

func (a *API) fill(h *pb.ResponseHeader) *pb.ResponseHeader {
	if h == nil {
		h = &pb.ResponseHeader{}
	}
	rs := a.srv.Raft()
	h.ClusterId, h.MemberId, h.RaftTerm = a.clusterID, rs.ID, rs.Term
	return h
}

// currentRev reads the keyspace revision.
func (a *API) currentRev() (rev, compact int64) {
	a.srv.ReadState(func(st *statemachine.State) { rev, compact = st.Etcd().Rev(), st.Etcd().CompactRev() })
	return
}

// toGRPC maps keyspace and server errors to etcd's rpctypes errors.
func toGRPC(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, etcdkv.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, etcdkv.ErrFutureRev):
		return rpctypes.ErrGRPCFutureRev
	case errors.Is(err, etcdkv.ErrKeyNotFound):
		return rpctypes.ErrGRPCKeyNotFound
	case errors.Is(err, etcdkv.ErrLeaseNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	case errors.Is(err, etcdkv.ErrLeaseExists):
		return rpctypes.ErrGRPCLeaseExist
	case errors.Is(err, etcdkv.ErrLeaseTTLTooBig):
		return rpctypes.ErrGRPCLeaseTTLTooLarge
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return rpctypes.ErrGRPCTimeout
	case errors.Is(err, replication.ErrNoLeader):
		return rpctypes.ErrGRPCNoLeader
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if err.Error() == "server: closing" {
		return rpctypes.ErrGRPCStopped
	}
	return status.Error(codes.Unavailable, "etcdserver: "+err.Error())
}

// submit proposes an etcd entry and waits for its keyspace result.
func (a *API) submit(ctx context.Context, op proto.OpCode, req gproto.Message) (etcdkv.Result, error) {
	body, err := gproto.Marshal(req)
	if err != nil {
		return etcdkv.Result{}, status.Error(codes.InvalidArgument, err.Error())
	}
	return a.submitBody(ctx, op, body)
}

// submitBody is submit with the entry's body already encoded.
func (a *API) submitBody(ctx context.Context, op proto.OpCode, body []byte) (etcdkv.Result, error) {
	if len(body) > MaxRequestBytes {
		return etcdkv.Result{}, rpctypes.ErrGRPCRequestTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	if a.srv.Raft().Leader == 0 {
		// Give an election a moment before failing.
		for i := 0; i < 40 && a.srv.Raft().Leader == 0 && ctx.Err() == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	}
	res, err := a.srv.SubmitEntry(ctx, &statemachine.Entry{Op: op, Body: body})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return etcdkv.Result{}, rpctypes.ErrGRPCTimeout
		}
		return etcdkv.Result{}, toGRPC(err)
	}
	if res.Etcd == nil {
		return etcdkv.Result{}, status.Error(codes.Internal, "etcdserver: entry has no etcd result")
	}
	if res.Etcd.Err != nil {
		return *res.Etcd, toGRPC(res.Etcd.Err)
	}
	return *res.Etcd, nil
}

// barrier makes the next local read linearizable.
func (a *API) barrier(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	if err := a.srv.Barrier(ctx); err != nil {
		if ctx.Err() != nil {
			return rpctypes.ErrGRPCTimeout
		}
		return toGRPC(err)
	}
	return nil
}

// memberName is the etcd member name of server id.
func memberName(id uint64) string { return "paddock-" + strconv.FormatUint(id, 10) }

// observer is the server's ApplyObserver: it wakes watchers and keeps the
// lease tracker in step with the log.
type observer struct{ a *API }

func (o observer) Applied(index uint64, e *statemachine.Entry, res *statemachine.Result) {
	r := res.Etcd
	if r == nil {
		return
	}
	now := time.Now()
	if r.Granted != nil {
		o.a.leases.grant(*r.Granted, now)
	}
	if r.KeptAlive != 0 {
		o.a.leases.renew(r.KeptAlive, res.Zxid, now)
	}
	if r.Revoked != 0 {
		o.a.leases.remove(r.Revoked)
	}
	if r.Changed || r.Compacted {
		o.a.hub.notify()
	}
}

func (o observer) Restored(st *statemachine.State) {
	o.a.leases.reset(st.Etcd(), time.Now())
	o.a.hub.notify()
}
