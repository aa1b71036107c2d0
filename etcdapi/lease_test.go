package etcdapi

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLeases(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	c := e.cli
	g, err := c.Grant(ctx, 2)
	if err != nil || g.TTL != 2 || g.ID == 0 {
		t.Fatalf("grant: %v %+v", err, g)
	}
	g1, _ := c.Grant(ctx, 1) // raised to the minimum TTL
	if g1.TTL != 2 {
		t.Fatalf("min ttl: %d", g1.TTL)
	}
	if _, err := c.Grant(ctx, 10000000000); !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
		t.Fatalf("ttl too large: %v", err)
	}
	wch := c.Watch(ctx, "/l/", clientv3.WithPrefix())
	c.Put(ctx, "/l/a", "a", clientv3.WithLease(g.ID))
	c.Put(ctx, "/l/b", "b", clientv3.WithLease(g.ID))
	c.Put(ctx, "/l/c", "c", clientv3.WithLease(g1.ID))
	ttl, err := c.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 2 || len(ttl.Keys) != 2 || ttl.TTL < 1 {
		t.Fatalf("ttl: %v %+v", err, ttl)
	}
	ls, _ := c.Leases(ctx)
	if len(ls.Leases) != 2 {
		t.Fatalf("leases: %+v", ls)
	}
	// Keep g alive; let g1 expire.
	ka, err := c.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ka {
		}
	}()
	var evs []*clientv3.Event
	deadline := time.After(10 * time.Second)
	for len(evs) < 4 {
		select {
		case r := <-wch:
			evs = append(evs, r.Events...)
		case <-deadline:
			t.Fatalf("lease did not expire: %d events", len(evs))
		}
	}
	if ev := evs[3]; ev.Type != mvccpb.DELETE || string(ev.Kv.Key) != "/l/c" {
		t.Fatalf("expiry event: %+v", ev)
	}
	time.Sleep(2500 * time.Millisecond) // g would have expired without the keep-alives
	if r, _ := c.Get(ctx, "/l/", clientv3.WithPrefix()); r.Count != 2 {
		t.Fatalf("kept-alive keys: %d", r.Count)
	}
	gone, _ := c.TimeToLive(ctx, g1.ID)
	if gone.TTL != -1 {
		t.Fatalf("expired lease ttl %d", gone.TTL)
	}
	// Revoke deletes the keys in one revision.
	rv, err := c.Revoke(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := <-wch
	if len(r.Events) != 2 || r.Events[0].Kv.ModRevision != rv.Header.Revision || r.Events[1].Kv.ModRevision != rv.Header.Revision {
		t.Fatalf("revoke events: %+v", r.Events)
	}
	if _, err := c.Revoke(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
}

// TestLeaseKeepAliveAtExpiry renews many leases once each, at about the
// moment the leader finds them expired. A keep-alive that succeeds must
// keep its lease for a TTL from then (etcd's lessor makes a renewal of a
// lease whose expiry is under way wait for it and fail): here the leader
// may already have proposed the expiry when the keep-alive entry, ahead of
// it in the log, applies — that expiry must then change nothing.
func TestLeaseKeepAliveAtExpiry(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	const n = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var early []string
	renewed := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Staggered, so the deadlines fall at every phase of the
			// leader's 100 ms expiry check.
			time.Sleep(time.Duration(i) * time.Millisecond)
			g, err := e.cli.Grant(ctx, 2)
			if err != nil {
				t.Error(err)
				return
			}
			// The deadline is 2 s after the grant applied, just before
			// its answer: renew from 100 ms before it to 20 ms after.
			time.Sleep(2*time.Second - time.Duration(rand.IntN(120)-20)*time.Millisecond)
			sent := time.Now()
			if _, err := e.cli.KeepAliveOnce(ctx, g.ID); err != nil {
				return // too late: it had expired
			}
			mu.Lock()
			renewed++
			mu.Unlock()
			time.Sleep(time.Until(sent.Add(1500 * time.Millisecond)))
			ttl, err := e.cli.TimeToLive(ctx, g.ID)
			if err != nil || ttl.TTL == -1 {
				mu.Lock()
				early = append(early, fmt.Sprintf("lease %x: renewed at %v, gone 1.5 s later (%v)", g.ID, sent.Format("15:04:05.000"), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d leases renewed at their deadline", renewed, n)
	if len(early) > 0 {
		t.Fatalf("%d leases expired within their TTL after a keep-alive succeeded:\n%s", len(early), strings.Join(early, "\n"))
	}
}
