package client

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// The core suite runs unchanged against Paddock and against Apache
// ZooKeeper 3.8: the second run proves the client itself is right.
var coreTests = []struct {
	name string
	f    func(t *testing.T, e env)
}{
	{"CRUD", testCRUD},
	{"Modes", testModes},
	{"Multi", testMulti},
	{"MultiRead", testMultiRead},
	{"OneShotWatches", testOneShotWatches},
	{"PersistentWatches", testPersistentWatches},
	{"RemoveWatches", testRemoveWatches},
	{"EventsBeforeData", testEventsBeforeData},
	{"AuthACL", testAuthACL},
	{"Chroot", testChroot},
	{"Misc", testMisc},
	{"Pipelining", testPipelining},
	{"Expiry", testExpiry},
	{"Close", testClose},
	{"SessionEvents", testSessionEvents},
}

func runCore(t *testing.T, e env) {
	for _, tc := range coreTests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, e) })
	}
}

func TestCorePaddock(t *testing.T)   { runCore(t, startPaddock(t)) }
func TestCoreZooKeeper(t *testing.T) { runCore(t, startZooKeeper(t)) }

func testCRUD(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	base := unique(t)
	p, st, err := c.Create(ctx, base, []byte("v0"), ModePersistent, nil)
	if err != nil || p != base || st.Version != 0 || st.DataLength != 2 {
		t.Fatalf("create: %q %+v %v", p, st, err)
	}
	_, _, err = c.Create(ctx, base, nil, ModePersistent, nil)
	wantErr(t, err, ErrNodeExists)
	wantErr(t, err, proto.ErrNodeExists)
	_, _, err = c.Create(ctx, base+"/missing/child", nil, ModePersistent, nil)
	wantErr(t, err, ErrNoNode)
	_, _, err = c.Create(ctx, "bad", nil, ModePersistent, nil)
	wantErr(t, err, ErrInvalidPath)

	data, st2, err := c.Get(ctx, base)
	if err != nil || string(data) != "v0" || st2.Czxid != st.Czxid {
		t.Fatalf("get: %q %+v %v", data, st2, err)
	}
	st3, err := c.Set(ctx, base, []byte("v1"), 0)
	if err != nil || st3.Version != 1 {
		t.Fatalf("set: %+v %v", st3, err)
	}
	_, err = c.Set(ctx, base, []byte("v2"), 0)
	wantErr(t, err, ErrBadVersion)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "setData" || oe.Path != base {
		t.Fatalf("error %#v is not an OpError for setData %s", err, base)
	}
	ok, st4, err := c.Exists(ctx, base)
	if err != nil || !ok || st4.Version != 1 {
		t.Fatalf("exists: %v %+v %v", ok, st4, err)
	}
	ok, st4, err = c.Exists(ctx, base+"/nope")
	if err != nil || ok || st4 != nil {
		t.Fatalf("exists missing: %v %+v %v", ok, st4, err)
	}
	_, _, err = c.Get(ctx, base+"/nope")
	wantErr(t, err, ErrNoNode)

	for _, n := range []string{"b", "a", "c"} {
		created(t)(c.Create(ctx, base+"/"+n, nil, ModePersistent, nil))
	}
	kids, pst, err := c.Children(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(kids)
	if !slices.Equal(kids, []string{"a", "b", "c"}) || pst.NumChildren != 3 {
		t.Fatalf("children %v %+v", kids, pst)
	}
	wantErr(t, c.Delete(ctx, base, AnyVersion), ErrNotEmpty)
	wantErr(t, c.Delete(ctx, base+"/a", 5), ErrBadVersion)
	if err := c.Delete(ctx, base+"/a", 0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Delete(ctx, base+"/a", AnyVersion), ErrNoNode)
	if err := c.EnsurePath(ctx, base+"/x/y/z", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsurePath(ctx, base+"/x/y/z", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := c.GetAllChildrenNumber(ctx, base); err != nil || n != 5 {
		t.Fatalf("getAllChildrenNumber: %d %v", n, err)
	}
	if err := c.DeleteAll(ctx, base); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := c.Exists(ctx, base); ok {
		t.Fatal("DeleteAll left the node")
	}
	// Empty and nil data both read back as empty.
	created(t)(c.Create(ctx, base, nil, ModePersistent, nil))
	if d, _, err := c.Get(ctx, base); err != nil || len(d) != 0 {
		t.Fatalf("empty data: %q %v", d, err)
	}
}

func testModes(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	base := unique(t)
	created(t)(c.Create(ctx, base, nil, ModePersistent, nil))

	_, st, err := c.Create(ctx, base+"/eph", []byte("e"), ModeEphemeral, nil)
	if err != nil || st.EphemeralOwner != c.SessionID() {
		t.Fatalf("ephemeral: %+v %v (session 0x%x)", st, err, c.SessionID())
	}
	_, _, err = c.Create(ctx, base+"/eph/child", nil, ModePersistent, nil)
	wantErr(t, err, ErrNoChildrenForEphemerals)

	p1 := created(t)(c.Create(ctx, base+"/seq-", nil, ModePersistentSequential, nil))
	p2 := created(t)(c.Create(ctx, base+"/seq-", nil, ModeEphemeralSequential, nil))
	if p1 != base+"/seq-0000000001" || p2 != base+"/seq-0000000002" {
		t.Fatalf("sequential names %q %q", p1, p2)
	}
	// A sequential node may be named by its parent's path and a slash.
	created(t)(c.Create(ctx, base+"/q", nil, ModePersistent, nil))
	p3, _, err := c.Create(ctx, base+"/q/", nil, ModePersistentSequential, nil)
	if err != nil || p3 != base+"/q/0000000000" {
		t.Fatalf("sequential under parent: %q %v", p3, err)
	}

	// Clients see ephemeralOwner 0 for containers and TTL nodes
	// (DataNode.copyStat shows only real sessions).
	created(t)(c.CreateContainer(ctx, base+"/container", nil, nil))
	_, st, err = c.CreateTTL(ctx, base+"/ttl", nil, ModePersistentWithTTL, nil, time.Hour)
	if err != nil || st.EphemeralOwner != 0 {
		t.Fatalf("ttl: %+v %v", st, err)
	}
	pt, _, err := c.CreateTTL(ctx, base+"/ttlseq-", nil, ModePersistentSequentialWithTTL, nil, time.Hour)
	if err != nil || len(pt) != len(base+"/ttlseq-")+10 {
		t.Fatalf("ttl sequential: %q %v", pt, err)
	}
	_, _, err = c.Create(ctx, base+"/x", nil, ModePersistentWithTTL, nil)
	wantErr(t, err, ErrBadArguments)

	// The ephemerals go with the session.
	eph, err := c.GetEphemerals(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(eph)
	if !slices.Equal(eph, []string{base + "/eph", p2}) {
		t.Fatalf("getEphemerals %v", eph)
	}
	c.Close()
	c2 := connect(t, e.addr)
	if ok, _, _ := c2.Exists(ctx, base+"/eph"); ok {
		t.Fatal("ephemeral survived Close")
	}
}

func testMulti(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	base := unique(t)
	created(t)(c.Create(ctx, base, nil, ModePersistent, nil))
	res, err := c.Multi(ctx,
		CreateOp(base+"/a", []byte("a"), ModePersistent, nil),
		CreateOp(base+"/s-", nil, ModePersistentSequential, nil),
		SetOp(base+"/a", []byte("a2"), 0),
		CheckOp(base+"/a", 1),
		CreateOp(base+"/d", nil, ModePersistent, nil),
		DeleteOp(base+"/d", 0),
		CreateTTLOp(base+"/ttl", nil, ModePersistentWithTTL, nil, time.Hour),
		CreateOp(base+"/c", nil, ModeContainer, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Plain creates report their path only (type create, as ZooKeeper 3.8
	// answers create2 sub-operations); TTL and container creates their Stat.
	if len(res) != 8 || res[0].Path != base+"/a" || res[1].Path != base+"/s-0000000001" ||
		res[2].Stat == nil || res[2].Stat.Version != 1 || res[6].Stat == nil || res[6].Stat.Mzxid != res[2].Stat.Mzxid {
		t.Fatalf("results %+v", res)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("result %d: %v", i, r.Err)
		}
	}
	// A failing transaction: nothing applied; ZooKeeper's error layout.
	res, err = c.Multi(ctx,
		CreateOp(base+"/b", nil, ModePersistent, nil),
		SetOp(base+"/a", nil, 7),
		DeleteOp(base+"/a", AnyVersion),
	)
	wantErr(t, err, ErrBadVersion)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Path != base+"/a" {
		t.Fatalf("multi error %v", err)
	}
	if len(res) != 3 || res[0].Err != nil || !errors.Is(res[1].Err, ErrBadVersion) || !errors.Is(res[2].Err, ErrRuntimeInconsistency) {
		t.Fatalf("failed results %+v", res)
	}
	if ok, _, _ := c.Exists(ctx, base+"/b"); ok {
		t.Fatal("failed multi applied its first op")
	}
	if res, err := c.Multi(ctx); err != nil || len(res) != 0 {
		t.Fatalf("empty multi: %v %v", res, err)
	}
	if _, err := c.Multi(ctx, GetDataOp(base)); !errors.Is(err, ErrBadArguments) {
		t.Fatalf("read op in multi: %v", err)
	}
}

func testMultiRead(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	base := unique(t)
	created(t)(c.Create(ctx, base, []byte("root"), ModePersistent, nil))
	created(t)(c.Create(ctx, base+"/k", []byte("kid"), ModePersistent, nil))
	res, err := c.MultiRead(ctx, GetDataOp(base), GetChildrenOp(base), GetDataOp(base+"/nope"), GetDataOp(base+"/k"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || string(res[0].Data) != "root" || !slices.Equal(res[1].Children, []string{"k"}) ||
		!errors.Is(res[2].Err, ErrNoNode) || string(res[3].Data) != "kid" || res[3].Stat == nil {
		t.Fatalf("multiRead %+v", res)
	}
}

func testOneShotWatches(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	w := connect(t, e.addr)
	base := unique(t)

	ok, _, exCh, err := c.ExistsW(ctx, base)
	if err != nil || ok {
		t.Fatal(ok, err)
	}
	created(t)(w.Create(ctx, base, []byte("1"), ModePersistent, nil))
	ev := recv(t, exCh)
	wantEvent(t, ev, EventNodeCreated, base)
	if ev.State != StateConnected || ev.Zxid == 0 {
		t.Fatalf("event %+v", ev)
	}
	if _, ok := <-exCh; ok {
		t.Fatal("channel not closed after its event")
	}

	_, _, dataCh := must3(t)(c.GetW(ctx, base))
	_, _, exCh2 := must3(t)(existsW3(c.ExistsW(ctx, base)))
	_, _, childCh := must3(t)(c.ChildrenW(ctx, base))
	stat2(t)(w.Set(ctx, base, []byte("2"), AnyVersion))
	wantEvent(t, recv(t, dataCh), EventNodeDataChanged, base)
	wantEvent(t, recv(t, exCh2), EventNodeDataChanged, base)
	noEvent(t, childCh, 100*time.Millisecond)
	created(t)(w.Create(ctx, base+"/k", nil, ModePersistent, nil))
	wantEvent(t, recv(t, childCh), EventNodeChildrenChanged, base)

	// Deletion fires data and child watches.
	_, _, dataCh = must3(t)(c.GetW(ctx, base+"/k"))
	_, _, childCh = must3(t)(c.ChildrenW(ctx, base+"/k"))
	_, _, parentCh := must3(t)(c.ChildrenW(ctx, base))
	if err := w.Delete(ctx, base+"/k", AnyVersion); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, recv(t, dataCh), EventNodeDeleted, base+"/k")
	wantEvent(t, recv(t, childCh), EventNodeDeleted, base+"/k")
	wantEvent(t, recv(t, parentCh), EventNodeChildrenChanged, base)

	// No watch is set when the call fails.
	if _, _, _, err := c.GetW(ctx, base+"/nope"); !errors.Is(err, ErrNoNode) {
		t.Fatal(err)
	}
	if err := c.CheckWatches(ctx, base+"/nope", WatcherData); !errors.Is(err, ErrNoWatcher) {
		t.Fatalf("checkWatches: %v", err)
	}
}

// must3 unpacks (a, b, ch, err) results in tests.
func must3(t *testing.T) func(a, b any, ch <-chan Event, err error) (any, any, <-chan Event) {
	return func(a, b any, ch <-chan Event, err error) (any, any, <-chan Event) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b, ch
	}
}

func existsW3(ok bool, st *Stat, ch <-chan Event, err error) (any, any, <-chan Event, error) {
	return ok, st, ch, err
}

func testPersistentWatches(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	w := connect(t, e.addr)
	base := unique(t)

	pw, err := c.AddWatch(ctx, base, WatchPersistent)
	if err != nil {
		t.Fatal(err)
	}
	// ZooKeeper 3.8 keeps one mode per (connection, path), so the
	// recursive watch on the same path goes on a second client.
	c2 := connect(t, e.addr)
	rw, err := c2.AddWatch(ctx, base, WatchPersistentRecursive)
	if err != nil {
		t.Fatal(err)
	}
	created(t)(w.Create(ctx, base, nil, ModePersistent, nil))
	created(t)(w.Create(ctx, base+"/a", nil, ModePersistent, nil))
	created(t)(w.Create(ctx, base+"/a/b", nil, ModePersistent, nil))
	stat2(t)(w.Set(ctx, base+"/a/b", []byte("x"), AnyVersion))
	stat2(t)(w.Set(ctx, base, []byte("x"), AnyVersion))
	if err := w.Delete(ctx, base+"/a/b", AnyVersion); err != nil {
		t.Fatal(err)
	}
	// Persistent: the node's own events, children changes included, and
	// it stays armed.
	pe := pw.Events()
	wantEvent(t, recvNode(t, pe), EventNodeCreated, base)
	wantEvent(t, recvNode(t, pe), EventNodeChildrenChanged, base)
	wantEvent(t, recvNode(t, pe), EventNodeDataChanged, base)
	// Recursive: every descendant, never NodeChildrenChanged.
	re := rw.Events()
	for _, want := range []struct {
		typ  EventType
		path string
	}{
		{EventNodeCreated, base}, {EventNodeCreated, base + "/a"}, {EventNodeCreated, base + "/a/b"},
		{EventNodeDataChanged, base + "/a/b"}, {EventNodeDataChanged, base}, {EventNodeDeleted, base + "/a/b"},
	} {
		wantEvent(t, recvNode(t, re), want.typ, want.path)
	}
	if e.kind == "paddock" { // ZooKeeper 3.8 cannot check persistent watches
		if err := c2.CheckWatches(ctx, base, WatcherPersistentRecursive); err != nil {
			t.Fatalf("checkWatches: %v", err)
		}
	}
	if err := rw.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, recvNode(t, re), EventPersistentWatchRemoved, base)
	if _, ok := <-re; ok {
		t.Fatal("recursive stream not closed after removal")
	}
	created(t)(w.Create(ctx, base+"/after", nil, ModePersistent, nil))
	wantEvent(t, recvNode(t, pe), EventNodeChildrenChanged, base)
	c.Close()
	ev := recvNode(t, pe)
	if ev.Type != EventNotWatching || !errors.Is(ev.Err, ErrClosed) {
		t.Fatalf("after close: %+v", ev)
	}
	if _, ok := <-pe; ok {
		t.Fatal("stream not closed after Close")
	}
}

func testRemoveWatches(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	base := unique(t)
	created(t)(c.Create(ctx, base, nil, ModePersistent, nil))
	_, _, d1 := must3(t)(c.GetW(ctx, base))
	_, _, d2 := must3(t)(existsW3(c.ExistsW(ctx, base)))
	_, _, ch := must3(t)(c.ChildrenW(ctx, base))
	if err := c.CheckWatches(ctx, base, WatcherData); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveWatches(ctx, base, WatcherData, false); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, recv(t, d1), EventDataWatchRemoved, base)
	wantEvent(t, recv(t, d2), EventDataWatchRemoved, base)
	wantErr(t, c.RemoveWatches(ctx, base, WatcherData, false), ErrNoWatcher)
	wantErr(t, c.CheckWatches(ctx, base, WatcherData), ErrNoWatcher)
	// The child watch is untouched, then removed with Any.
	if err := c.CheckWatches(ctx, base, WatcherChildren); err != nil {
		t.Fatal(err)
	}
	pw := watcher2(t)(c.AddWatch(ctx, base, WatchPersistent))
	if err := c.RemoveWatches(ctx, base, WatcherAny, false); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, recv(t, ch), EventChildWatchRemoved, base)
	wantEvent(t, recvNode(t, pw.Events()), EventPersistentWatchRemoved, base)
	// The server no longer fires anything.
	stat2(t)(c.Set(ctx, base, []byte("x"), AnyVersion))
	created(t)(c.Create(ctx, base+"/k", nil, ModePersistent, nil))
	if _, _, err := c.Get(ctx, base); err != nil { // a round trip after any event would have come
		t.Fatal(err)
	}
	for _, x := range []<-chan Event{d1, d2, ch} {
		if ev, ok := <-x; ok {
			t.Fatalf("event after removal: %v", ev)
		}
	}
}

// testEventsBeforeData checks ZooKeeper's ordering promise through the
// client: once a read returns data written by another client, the event
// for that write is already on the watch channel.
func testEventsBeforeData(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	w := connect(t, e.addr)
	base := unique(t)
	created(t)(c.Create(ctx, base, []byte("0"), ModePersistent, nil))
	pw := watcher2(t)(c.AddWatch(ctx, base, WatchPersistent))
	for i := 1; i <= 20; i++ {
		_, _, ch := must3(t)(c.GetW(ctx, base))
		v := []byte{byte('0' + i%10)}
		stat2(t)(w.Set(ctx, base, v, AnyVersion))
		for {
			data, _, err := c.Get(ctx, base)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(data, v) {
				break
			}
		}
		select {
		case ev := <-ch:
			wantEvent(t, ev, EventNodeDataChanged, base)
		default:
			t.Fatalf("round %d: new data read before its one-shot event", i)
		}
		select {
		case ev := <-pw.Events():
			wantEvent(t, ev, EventNodeDataChanged, base)
		default:
			t.Fatalf("round %d: new data read before its persistent event", i)
		}
	}
}

func testAuthACL(t *testing.T, e env) {
	ctx := ctxT(t)
	base := unique(t)
	alice := connect(t, e.addr, WithDigestAuth("alice", "secret"))
	anon := connect(t, e.addr)
	created(t)(alice.Create(ctx, base, []byte("private"), ModePersistent, DigestACL(PermAll, "alice", "secret")))
	created(t)(alice.Create(ctx, base+"/creator", nil, ModePersistent, AuthACL(PermAll)))
	_, _, err := anon.Get(ctx, base)
	wantErr(t, err, ErrNoAuth)
	_, _, err = anon.Create(ctx, base+"/x", nil, ModePersistent, nil)
	wantErr(t, err, ErrNoAuth)
	if d, _, err := alice.Get(ctx, base); err != nil || string(d) != "private" {
		t.Fatalf("alice get: %q %v", d, err)
	}
	acl, st, err := alice.GetACL(ctx, base+"/creator")
	if err != nil || len(acl) != 1 || acl[0].Id.Scheme != "digest" || acl[0].Id.Id != DigestID("alice", "secret") {
		t.Fatalf("getACL %+v %v", acl, err)
	}
	if _, err := alice.SetACL(ctx, base+"/creator", WorldACL(PermRead), st.Aversion+1); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("setACL bad version: %v", err)
	}
	st2, err := alice.SetACL(ctx, base+"/creator", WorldACL(PermRead), st.Aversion)
	if err != nil || st2.Aversion != st.Aversion+1 {
		t.Fatalf("setACL %+v %v", st2, err)
	}
	_, err = anon.Set(ctx, base+"/creator", nil, AnyVersion)
	wantErr(t, err, ErrNoAuth)
	// AuthACL needs an authenticated session.
	_, _, err = anon.Create(ctx, unique(t), nil, ModePersistent, AuthACL(PermAll))
	wantErr(t, err, ErrInvalidACL)

	// AddAuth at run time, and WhoAmI.
	if err := anon.AddAuth(ctx, "digest", []byte("alice:secret")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.Get(ctx, base); err != nil {
		t.Fatalf("after addAuth: %v", err)
	}
	ids, err := anon.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, id := range ids {
		if id.AuthScheme == "digest" && id.User == "alice" {
			found = true
		}
	}
	if !found {
		t.Fatalf("whoAmI %+v", ids)
	}
}

func testChroot(t *testing.T, e env) {
	ctx := ctxT(t)
	root := unique(t)
	plain := connect(t, e.addr)
	created(t)(plain.Create(ctx, root, nil, ModePersistent, nil))
	c := connect(t, e.addr+root)
	if c.Chroot() != root {
		t.Fatalf("chroot %q", c.Chroot())
	}
	p, _, err := c.Create(ctx, "/a", []byte("x"), ModePersistent, nil)
	if err != nil || p != "/a" {
		t.Fatalf("create in chroot: %q %v", p, err)
	}
	if d, _, err := plain.Get(ctx, root+"/a"); err != nil || string(d) != "x" {
		t.Fatalf("seen from outside: %q %v", d, err)
	}
	kids, _, err := c.Children(ctx, "/")
	if err != nil || !slices.Equal(kids, []string{"a"}) {
		t.Fatalf("children of chroot: %v %v", kids, err)
	}
	_, _, ch := must3(t)(c.GetW(ctx, "/a"))
	rw := watcher2(t)(c.AddWatch(ctx, "/", WatchPersistentRecursive))
	stat2(t)(plain.Set(ctx, root+"/a", []byte("y"), AnyVersion))
	wantEvent(t, recv(t, ch), EventNodeDataChanged, "/a")
	wantEvent(t, recvNode(t, rw.Events()), EventNodeDataChanged, "/a")
	res, err := c.Multi(ctx, CreateOp("/s-", nil, ModeEphemeralSequential, nil))
	if err != nil || res[0].Path != "/s-0000000001" {
		t.Fatalf("multi in chroot: %+v %v", res, err)
	}
	eph, err := c.GetEphemerals(ctx, "/")
	if err != nil || !slices.Equal(eph, []string{"/s-0000000001"}) {
		t.Fatalf("getEphemerals in chroot: %v %v", eph, err)
	}
	// The option form, and the chroot stays on the config node.
	c2 := connect(t, e.addr, WithChroot(root))
	if ok, _, err := c2.Exists(ctx, "/a"); err != nil || !ok {
		t.Fatalf("WithChroot: %v %v", ok, err)
	}
	if _, _, err := c2.GetConfig(ctx); err != nil && !errors.Is(err, ErrNoNode) {
		t.Fatalf("getConfig under chroot: %v", err)
	}
}

func testMisc(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	base := unique(t)
	created(t)(c.Create(ctx, base, nil, ModePersistent, nil))
	if err := c.Sync(ctx, base); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetConfig(ctx); err != nil {
		t.Fatalf("getConfig: %v", err)
	}
	// Apache ZooKeeper answers the standalone check only from 3.9 on.
	if e.kind == "paddock" {
		if err := c.Check(ctx, base, 0); err != nil {
			t.Fatalf("check: %v", err)
		}
		wantErr(t, c.Check(ctx, base, 3), ErrBadVersion)
		wantErr(t, c.Check(ctx, base+"/nope", AnyVersion), ErrNoNode)
	}
	// A reconfig on a standalone server is refused, with a ZooKeeper code.
	_, _, err := c.IncrementalReconfig(ctx, nil, []string{"9"}, -1)
	if err == nil || ErrorCode(err) == proto.ErrSystemError {
		t.Fatalf("reconfig on standalone: %v", err)
	}
	if c.SessionTimeout() != 4*time.Second || c.Server() != e.addr || len(c.SessionPassword()) != 16 {
		t.Fatalf("session: %v %q %x", c.SessionTimeout(), c.Server(), c.SessionPassword())
	}
	if c.LastZxid() == 0 {
		t.Fatal("lastZxid not tracked")
	}
}

func testPipelining(t *testing.T, e env) {
	ctx := ctxT(t)
	c := connect(t, e.addr)
	base := unique(t)
	created(t)(c.Create(ctx, base, nil, ModePersistent, nil))
	const n = 200
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := c.Create(ctx, base+"/n-", []byte{byte(i)}, ModePersistentSequential, nil)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if k, _, err := c.Children(ctx, base); err != nil || len(k) != n {
		t.Fatalf("%d children, %v", len(k), err)
	}
}

func testExpiry(t *testing.T, e env) {
	ctx := ctxT(t)
	states := make(chan State, 16)
	c := connect(t, e.addr, WithStateCallback(func(s State) { states <- s }), WithSessionEvents())
	if s := <-states; s != StateConnected {
		t.Fatalf("first state %v", s)
	}
	base := unique(t)
	created(t)(c.Create(ctx, base, nil, ModeEphemeral, nil))
	_, _, ch := must3(t)(c.GetW(ctx, base))
	pw := watcher2(t)(c.AddWatch(ctx, "/", WatchPersistentRecursive))

	// Take over the session with a second client and close it: the server
	// ends the session, so the first client learns it expired when it
	// reconnects. The first client may win the session back before the
	// thief's close goes out (its reconnect closes the thief's
	// connection, and the close is lost), so take it over again until the
	// close lands; the deadline is only a guard against a hang.
	deadline := time.Now().Add(2 * time.Minute)
	for expired := false; !expired; {
		if time.Now().After(deadline) {
			t.Fatal("the session never expired")
		}
		thief, err := Connect(ctx, []string{e.addr}, WithSession(c.SessionID(), c.SessionPassword()), WithSessionTimeout(4*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if thief.SessionID() != c.SessionID() {
			t.Fatalf("resumed 0x%x, want 0x%x", thief.SessionID(), c.SessionID())
		}
		thief.Close()
		wait := time.After(5 * time.Second)
	drain:
		for {
			select {
			case s := <-states:
				if s == StateExpired {
					expired = true
					break drain
				}
				if s != StateDisconnected && s != StateConnected {
					t.Fatalf("state %v before Expired", s)
				}
			case <-wait:
				break drain
			}
		}
	}
	ev := recv(t, ch)
	if ev.Type != EventNotWatching || !errors.Is(ev.Err, ErrSessionExpired) {
		t.Fatalf("one-shot watch after expiry: %+v", ev)
	}
	for ev := range pw.Events() {
		if ev.Type == EventNotWatching {
			break
		}
	}
	// The session stream ends with Expired; before it only connection
	// changes and watch events.
	var last Event
	for {
		ev, err := c.SessionEvents().Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if last.Type == EventNone && last.State == StateExpired {
			t.Fatalf("event %+v after Expired", ev)
		}
		if ev.Type == EventNone && ev.State != StateConnected && ev.State != StateDisconnected && ev.State != StateExpired {
			t.Fatalf("session event %+v before Expired", ev)
		}
		last = ev
	}
	wantState(t, last, StateExpired)
	_, _, err := c.Get(ctx, "/")
	wantErr(t, err, ErrSessionExpired)
	if err := c.WaitConnected(ctx); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("WaitConnected after expiry: %v", err)
	}
	c2, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.SessionID() == c.SessionID() {
		t.Fatal("NewSession reused the session")
	}
	if ok, _, _ := c2.Exists(ctx, base); ok {
		t.Fatal("ephemeral of the expired session still exists")
	}
}

func testClose(t *testing.T, e env) {
	ctx := ctxT(t)
	var states []State
	done := make(chan struct{})
	c, err := Connect(ctx, []string{e.addr}, WithStateCallback(func(s State) {
		states = append(states, s)
		if s == StateClosed {
			close(done)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	<-done
	if !slices.Equal(states, []State{StateConnected, StateClosed}) {
		t.Fatalf("states %v", states)
	}
	_, _, err = c.Get(ctx, "/")
	wantErr(t, err, ErrClosed)
	if c.State() != StateClosed {
		t.Fatal(c.State())
	}
}
