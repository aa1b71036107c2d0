package etcdapi

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestKVBasics(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	c := e.cli
	g0, err := c.Get(ctx, "health")
	if err != nil {
		t.Fatal(err)
	}
	if g0.Header.Revision != 1 || g0.Count != 0 {
		t.Fatalf("empty store: rev %d count %d", g0.Header.Revision, g0.Count)
	}
	p1, err := c.Put(ctx, "/a/1", "one")
	if err != nil {
		t.Fatal(err)
	}
	r1 := p1.Header.Revision
	if r1 <= 1 {
		t.Fatalf("put revision %d", r1)
	}
	p2, err := c.Put(ctx, "/a/1", "uno", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if p2.PrevKv == nil || string(p2.PrevKv.Value) != "one" || p2.PrevKv.ModRevision != r1 {
		t.Fatalf("prev kv %v", p2.PrevKv)
	}
	for i := 2; i <= 5; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("/a/%d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	c.Put(ctx, "/b", "b")
	g, err := c.Get(ctx, "/a/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if g.Count != 5 || len(g.Kvs) != 5 || string(g.Kvs[0].Value) != "uno" || g.Kvs[0].Version != 2 || g.Kvs[0].CreateRevision != r1 {
		t.Fatalf("prefix get: %+v", g)
	}
	// Reads do not bump the revision.
	g2, _ := c.Get(ctx, "/a/", clientv3.WithPrefix())
	if g2.Header.Revision != g.Header.Revision {
		t.Fatalf("read bumped revision %d -> %d", g.Header.Revision, g2.Header.Revision)
	}
	// Limit, count, more.
	gl, err := c.Get(ctx, "/a/", clientv3.WithPrefix(), clientv3.WithLimit(2))
	if err != nil || len(gl.Kvs) != 2 || !gl.More || gl.Count != 5 {
		t.Fatalf("limit: %v %+v", err, gl)
	}
	// Sort descending by key.
	gs, err := c.Get(ctx, "/a/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	if err != nil || string(gs.Kvs[0].Key) != "/a/5" {
		t.Fatalf("sort: %v %+v", err, gs)
	}
	// Keys only, count only.
	gk, _ := c.Get(ctx, "/a/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if len(gk.Kvs) != 5 || gk.Kvs[0].Value != nil {
		t.Fatalf("keys only %+v", gk)
	}
	gc, _ := c.Get(ctx, "/a/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if gc.Count != 5 || len(gc.Kvs) != 0 {
		t.Fatalf("count only %+v", gc)
	}
	// Get at an old revision.
	old, err := c.Get(ctx, "/a/1", clientv3.WithRev(r1))
	if err != nil || string(old.Kvs[0].Value) != "one" {
		t.Fatalf("old rev: %v %+v", err, old)
	}
	// Future revision.
	if _, err := c.Get(ctx, "/a/1", clientv3.WithRev(g.Header.Revision+1000)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Fatalf("future rev: %v", err)
	}
	// Serializable.
	if gs, err := c.Get(ctx, "/a/1", clientv3.WithSerializable()); err != nil || len(gs.Kvs) != 1 {
		t.Fatalf("serializable %v", err)
	}
	// Delete with prev kv.
	d, err := c.Delete(ctx, "/a/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || d.Deleted != 5 || len(d.PrevKvs) != 5 {
		t.Fatalf("delete: %v %+v", err, d)
	}
	dn, _ := c.Delete(ctx, "/nothing")
	if dn.Deleted != 0 || dn.Header.Revision != d.Header.Revision {
		t.Fatalf("empty delete changed revision: %d vs %d", dn.Header.Revision, d.Header.Revision)
	}
	// Recreate: version restarts, create revision is new.
	p3, _ := c.Put(ctx, "/a/1", "again")
	g3, _ := c.Get(ctx, "/a/1")
	if g3.Kvs[0].Version != 1 || g3.Kvs[0].CreateRevision != p3.Header.Revision {
		t.Fatalf("recreated: %+v", g3.Kvs[0])
	}
	// Errors, word for word.
	if _, err := c.Put(ctx, "", "x"); !errors.Is(err, rpctypes.ErrEmptyKey) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := c.Put(ctx, "/none", "", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrKeyNotFound) {
		t.Fatalf("ignore value on missing key: %v", err)
	}
	if _, err := c.Put(ctx, "/x", "v", clientv3.WithLease(12345)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("missing lease: %v", err)
	}
	// ignore_value keeps the value.
	if _, err := c.Put(ctx, "/a/1", "", clientv3.WithIgnoreValue()); err != nil {
		t.Fatal(err)
	}
	if g, _ := c.Get(ctx, "/a/1"); string(g.Kvs[0].Value) != "again" || g.Kvs[0].Version != 2 {
		t.Fatalf("ignore value: %+v", g.Kvs[0])
	}
	// Get from-key.
	gf, _ := c.Get(ctx, "/a", clientv3.WithFromKey())
	if gf.Count != 2 {
		t.Fatalf("from key count %d", gf.Count)
	}
	_ = mvccpb.PUT
}

// The four transaction shapes kube-apiserver uses.
func TestKubernetesTxnShapes(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	c := e.cli
	key := "/registry/pods/default/p"
	// Create if absent.
	tr, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, "v1")).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("create: %v %+v", err, tr)
	}
	rev1 := tr.Header.Revision
	tr, _ = c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).Then(clientv3.OpPut(key, "v1")).Commit()
	if tr.Succeeded {
		t.Fatal("second create succeeded")
	}
	// CAS update with Else Get.
	tr, err = c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev1)).Then(clientv3.OpPut(key, "v2")).Else(clientv3.OpGet(key)).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("update: %v %+v", err, tr)
	}
	rev2 := tr.Header.Revision
	tr, err = c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev1)).Then(clientv3.OpPut(key, "v3")).Else(clientv3.OpGet(key)).Commit()
	if err != nil || tr.Succeeded {
		t.Fatalf("stale update: %v %+v", err, tr)
	}
	got := tr.Responses[0].GetResponseRange()
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v2" || got.Kvs[0].ModRevision != rev2 || tr.Header.Revision != rev2 {
		t.Fatalf("else get: %+v (header %d)", got, tr.Header.Revision)
	}
	// CAS delete.
	tr, err = c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev2)).Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
	if err != nil || !tr.Succeeded || tr.Responses[0].GetResponseDeleteRange().Deleted != 1 {
		t.Fatalf("delete: %v %+v", err, tr)
	}
	// compact_rev_key Version CAS + Compact.
	ck := "compact_rev_key"
	tr, err = c.Txn(ctx).If(clientv3.Compare(clientv3.Version(ck), "=", 0)).Then(clientv3.OpPut(ck, fmt.Sprint(rev2))).Else(clientv3.OpGet(ck)).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("compact key: %v %+v", err, tr)
	}
	if _, err := c.Compact(ctx, rev2); err != nil {
		t.Fatal(err)
	}
	tr, err = c.Txn(ctx).If(clientv3.Compare(clientv3.Version(ck), "=", 0)).Then(clientv3.OpPut(ck, "x")).Else(clientv3.OpGet(ck)).Commit()
	if err != nil || tr.Succeeded || tr.Responses[0].GetResponseRange().Kvs[0].Version != 1 {
		t.Fatalf("compact key second: %v %+v", err, tr)
	}
	if _, err := c.Get(ctx, key, clientv3.WithRev(rev1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read below compact: %v", err)
	}
	if _, err := c.Compact(ctx, rev1); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("compact twice: %v", err)
	}
	// Duplicate keys and too many ops are refused.
	if _, err := c.Txn(ctx).Then(clientv3.OpPut("k", "1"), clientv3.OpPut("k", "2")).Commit(); !errors.Is(err, rpctypes.ErrDuplicateKey) {
		t.Fatalf("duplicate: %v", err)
	}
	ops := make([]clientv3.Op, 129)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprint("k", i), "v")
	}
	if _, err := c.Txn(ctx).Then(ops...).Commit(); !errors.Is(err, rpctypes.ErrTooManyOps) {
		t.Fatalf("too many ops: %v", err)
	}
	// Value compare on a missing key fails; nested txn.
	tr, _ = c.Txn(ctx).If(clientv3.Compare(clientv3.Value("/missing"), "=", "")).Then(clientv3.OpPut("t", "then")).Else(
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision("/missing"), "=", 0)}, []clientv3.Op{clientv3.OpPut("n", "nested")}, nil),
		clientv3.OpGet("n")).Commit()
	if tr.Succeeded || !tr.Responses[0].GetResponseTxn().Succeeded {
		t.Fatalf("nested: %+v", tr)
	}
	if rr := tr.Responses[1].GetResponseRange(); len(rr.Kvs) != 1 || string(rr.Kvs[0].Value) != "nested" {
		t.Fatalf("range after nested put in the same txn: %+v", rr)
	}
}
