package etcdapi

import (
	"context"
	"errors"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/paddockhq/paddock/statemachine"
	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

// Leases live in the replicated keyspace (grant, revoke, attached keys).
// Their clocks do not: every member tracks a deadline per lease, set when
// it applies the grant or a keep-alive entry, and only the leader acts on
// it, proposing a LeaseExpire entry (which deletes the attached keys, one
// revision, DELETE events) — as ZooKeeper session expiry is decided by the
// leader and logged. A member that becomes leader restarts every lease's
// full TTL (etcd's lessor promotion does the same), so a lease never
// expires early because of a leader change. Keep-alives are log entries
// (one per renewal), which is what lets any member take them and lets the
// next leader know about them.
//
// An expiry entry names the last renewal the leader had applied when it
// decided (etcdkv.ExpireBody): a keep-alive can be in the log ahead of the
// expiry yet not applied when the leader looked, and it answers the
// client with the full TTL; the expiry that follows it is then stale and
// changes nothing (etcd's lessor gets the same by making a renewal of an
// expired lease wait for the revocation and fail).

type trackedLease struct {
	ttl      int64
	renewed  int64 // zxid of the last renewal applied (Lease.Renewed)
	deadline time.Time
	proposed time.Time // when an expiry was last proposed
}

// expiry is a lease found expired and the renewal it was last renewed by.
type expiry struct{ id, renewed int64 }

type leaseTracker struct {
	mu     sync.Mutex
	leases map[int64]*trackedLease
}

func newLeaseTracker() *leaseTracker { return &leaseTracker{leases: map[int64]*trackedLease{}} }

func (t *leaseTracker) reset(st *etcdkv.Store, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leases = map[int64]*trackedLease{}
	for _, l := range st.Leases() {
		t.leases[l.ID] = &trackedLease{ttl: l.TTL, renewed: l.Renewed, deadline: now.Add(time.Duration(l.TTL) * time.Second)}
	}
}

func (t *leaseTracker) grant(l etcdkv.LeaseInfo, now time.Time) {
	t.mu.Lock()
	t.leases[l.ID] = &trackedLease{ttl: l.TTL, renewed: l.Renewed, deadline: now.Add(time.Duration(l.TTL) * time.Second)}
	t.mu.Unlock()
}

// renew records a keep-alive of lease id applied at zxid.
func (t *leaseTracker) renew(id, zxid int64, now time.Time) {
	t.mu.Lock()
	if l := t.leases[id]; l != nil {
		l.deadline = now.Add(time.Duration(l.ttl) * time.Second)
		l.renewed = zxid
	}
	t.mu.Unlock()
}

func (t *leaseTracker) remove(id int64) {
	t.mu.Lock()
	delete(t.leases, id)
	t.mu.Unlock()
}

func (t *leaseTracker) refreshAll(now time.Time) {
	t.mu.Lock()
	for _, l := range t.leases {
		l.deadline = now.Add(time.Duration(l.ttl) * time.Second)
		l.proposed = time.Time{}
	}
	t.mu.Unlock()
}

// expired returns the leases past their deadline whose expiry was not
// proposed in the last retry period, marking them proposed.
func (t *leaseTracker) expired(now time.Time, retry time.Duration) []expiry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []expiry
	for id, l := range t.leases {
		if now.After(l.deadline) && now.Sub(l.proposed) > retry {
			l.proposed = now
			out = append(out, expiry{id, l.renewed})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (t *leaseTracker) remaining(id int64, now time.Time) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.leases[id]
	if l == nil {
		return 0, false
	}
	d := l.deadline.Sub(now)
	if d <= 0 {
		return 0, true
	}
	return int64(math.Ceil(d.Seconds())), true
}

// leaseLoop is the leader's expiry check.
func (a *API) leaseLoop() {
	defer a.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	wasLeader := false
	for {
		select {
		case <-a.ctx.Done():
			return
		case now := <-t.C:
			if !a.srv.Raft().IsLeader {
				wasLeader = false
				continue
			}
			if !wasLeader {
				wasLeader = true
				a.leases.refreshAll(now)
				continue
			}
			for _, x := range a.leases.expired(now, 2*time.Second) {
				a.log.Info("lease expired", "lease", x.id)
				go func() {
					_, err := a.submitBody(a.ctx, statemachine.OpEtcdLeaseExpire, etcdkv.ExpireBody(x.id, x.renewed))
					if err != nil && a.ctx.Err() == nil {
						a.log.Debug("lease expiry not applied", "lease", x.id, "err", err)
					}
				}()
			}
		}
	}
}

// LeaseGrant creates a lease (a log entry; the ID is the entry's zxid
// unless the client chose one).
func (a *API) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	res, err := a.submit(ctx, statemachine.OpEtcdLeaseGrant, r)
	if err != nil {
		return nil, err
	}
	resp := res.Resp.(*pb.LeaseGrantResponse)
	a.fill(resp.Header)
	return resp, nil
}

// LeaseRevoke deletes a lease and its keys (a log entry).
func (a *API) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	res, err := a.submit(ctx, statemachine.OpEtcdLeaseRevoke, r)
	if err != nil {
		return nil, err
	}
	resp := res.Resp.(*pb.LeaseRevokeResponse)
	a.fill(resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews leases: each request is a keep-alive entry, and
// the answer carries the granted TTL (0 for an unknown lease).
func (a *API) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := a.submit(stream.Context(), statemachine.OpEtcdLeaseKeepAlive, &pb.LeaseKeepAliveRequest{ID: req.ID})
		if err != nil {
			return err
		}
		resp := res.Resp.(*pb.LeaseKeepAliveResponse)
		a.fill(resp.Header)
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// LeaseTimeToLive reports a lease's remaining TTL as this member's tracker
// sees it (exact on the leader, which decides expiry), its granted TTL
// and, if asked, its keys. An unknown lease answers TTL -1, as etcd does.
func (a *API) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := a.barrier(ctx); err != nil {
		return nil, err
	}
	var granted, rev int64
	var keys []string
	var ok bool
	a.srv.ReadState(func(st *statemachine.State) {
		granted, keys, ok = st.Etcd().Lease(r.ID)
		rev = st.Etcd().Rev()
	})
	resp := &pb.LeaseTimeToLiveResponse{Header: a.header(rev), ID: r.ID, TTL: -1}
	if !ok {
		return resp, nil
	}
	resp.GrantedTTL = granted
	resp.TTL = granted
	if left, tracked := a.leases.remaining(r.ID, time.Now()); tracked {
		resp.TTL = min(left, granted)
	}
	if r.Keys {
		for _, k := range keys {
			resp.Keys = append(resp.Keys, []byte(k))
		}
	}
	return resp, nil
}

// LeaseLeases lists the leases.
func (a *API) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := a.barrier(ctx); err != nil {
		return nil, err
	}
	var ls []etcdkv.LeaseInfo
	var rev int64
	a.srv.ReadState(func(st *statemachine.State) { ls, rev = st.Etcd().Leases(), st.Etcd().Rev() })
	resp := &pb.LeaseLeasesResponse{Header: a.header(rev)}
	for _, l := range ls {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: l.ID})
	}
	return resp, nil
}
