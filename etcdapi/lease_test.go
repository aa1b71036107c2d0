package etcdapi

import (
	"errors"
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
