// Package etcd tests the etcd v3 API of real `paddock server` processes
// with etcd's own Go client: plain and TLS (client certificates) on a
// standalone server, and a 3-member ensemble where a lease expires across
// a leader change.
package etcd

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/paddockhq/paddock/internal/faults"
	"github.com/paddockhq/paddock/internal/testpki"
	"github.com/paddockhq/paddock/internal/testserver"
)

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitPort(t testing.TB, addr string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never accepted", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func client(t testing.TB, tc *tls.Config, endpoints ...string) *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, TLS: tc, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestStandalonePlain(t *testing.T) {
	addr := freeAddr(t)
	srv := testserver.Start(t, testserver.Options{ExtraArgs: []string{"--etcd-listen", addr}})
	waitPort(t, addr)
	c := client(t, nil, "http://"+addr)
	ctx := ctxT(t, 30*time.Second)
	wch := c.Watch(ctx, "/k/", clientv3.WithPrefix())
	p, err := c.Put(ctx, "/k/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	r := <-wch
	if len(r.Events) != 1 || r.Events[0].Kv.ModRevision != p.Header.Revision {
		t.Fatalf("watch: %+v", r)
	}
	// A restart keeps keys, revisions and the compaction point (snapshot
	// and log replay).
	c.Put(ctx, "/k/a", "2")
	if _, err := c.Compact(ctx, p.Header.Revision); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Get(ctx, "/k/a")
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitPort(t, addr)
	c2 := client(t, nil, "http://"+addr)
	after, err := c2.Get(ctx, "/k/a")
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision != before.Header.Revision || string(after.Kvs[0].Value) != "2" || after.Kvs[0].Version != 2 {
		t.Fatalf("after restart: %+v, before %+v", after, before)
	}
	if _, err := c2.Compact(ctx, p.Header.Revision); err == nil {
		t.Fatal("compaction point lost across restart")
	}
}

func TestStandaloneTLSClientCerts(t *testing.T) {
	ca := testpki.New(t)
	srv, cli := ca.Issue(t, "server", testpki.Server), ca.Issue(t, "client", testpki.Server)
	addr := freeAddr(t)
	testserver.Start(t, testserver.Options{ExtraArgs: []string{"--etcd-listen", addr,
		"--etcd-tls-cert", srv.Cert, "--etcd-tls-key", srv.Key, "--etcd-tls-ca", ca.File}})
	waitPort(t, addr)
	pool, cc := ca.Pool(), cli.Pair
	ctx := ctxT(t, 30*time.Second)
	c := client(t, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cc}}, "https://"+addr)
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx, "https://"+addr)
	if err != nil || st.Version == "" {
		t.Fatalf("status: %v", err)
	}
	// Without a client certificate the handshake is refused.
	nc := client(t, &tls.Config{RootCAs: pool}, "https://"+addr)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := nc.Get(sctx, "k"); err == nil {
		t.Fatal("a client without a certificate was served")
	}
}

// A lease granted through one member expires after the leader that
// tracked it is killed: the new leader restarts its TTL and expires it,
// deleting its keys with DELETE events every member's watchers see.
func TestEnsembleLeaseExpiresAcrossLeaderChange(t *testing.T) {
	c := faults.StartT(t, faults.Options{Voters: 3, TickTime: 200 * time.Millisecond, EtcdAPI: true})
	leader, err := c.WaitLeader(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 3; id++ {
		waitPort(t, c.Member(id).EtcdAddr)
	}
	follower := 1 + leader%3
	other := 1 + follower%3
	if other == leader {
		other = 1 + other%3
	}
	ctx := ctxT(t, 90*time.Second)
	fc := client(t, nil, "http://"+c.Member(follower).EtcdAddr)
	oc := client(t, nil, "http://"+c.Member(other).EtcdAddr)
	// Membership through the etcd API.
	ml, err := fc.MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list: %v %+v", err, ml)
	}
	// Grant and attach through a follower.
	g, err := fc.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	p, err := fc.Put(ctx, "/lease/k", "v", clientv3.WithLease(g.ID))
	if err != nil {
		t.Fatal(err)
	}
	// Linearizable read on the other follower sees it at once.
	gr, err := oc.Get(ctx, "/lease/k")
	if err != nil || len(gr.Kvs) != 1 || gr.Header.Revision < p.Header.Revision {
		t.Fatalf("read on other follower: %v %+v", err, gr)
	}
	wch := oc.Watch(ctx, "/lease/", clientv3.WithPrefix(), clientv3.WithRev(p.Header.Revision+1))
	killedAt := time.Now()
	if err := c.Member(leader).Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed leader %d", leader)
	newLeader, err := c.WaitLeader(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader %d", newLeader)
	select {
	case r := <-wch:
		if len(r.Events) != 1 || r.Events[0].Type != mvccpb.DELETE || string(r.Events[0].Kv.Key) != "/lease/k" {
			t.Fatalf("expiry: %+v (err %v)", r.Events, r.Err())
		}
		t.Logf("lease expired %v after the leader was killed", time.Since(killedAt).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("lease never expired after the leader change")
	}
	for _, id := range []int{follower, other} {
		cc := client(t, nil, "http://"+c.Member(id).EtcdAddr)
		r, err := cc.Get(ctx, "/lease/k")
		if err != nil || r.Count != 0 {
			t.Fatalf("member %d still has the key: %v %+v", id, err, r)
		}
		ttl, err := cc.TimeToLive(ctx, g.ID)
		if err != nil || ttl.TTL != -1 {
			t.Fatalf("member %d lease: %v %+v", id, err, ttl)
		}
	}
	_ = strconv.Itoa
}
