package server

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/proto"
)

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// connectZK opens a go-zookeeper session and waits until it is connected.
// The returned dialer lets a test cut the TCP connection under the client.
func connectZK(t testing.TB, addr string, timeout time.Duration) (*zk.Conn, <-chan zk.Event, *cutDialer) {
	t.Helper()
	d := &cutDialer{}
	c, ev, err := zk.Connect([]string{addr}, timeout, zk.WithLogger(nopLogger{}), zk.WithDialer(d.dial))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	deadline := time.After(10 * time.Second)
	for c.State() != zk.StateHasSession {
		select {
		case <-ev:
		case <-deadline:
			t.Fatalf("no session, state %v", c.State())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return c, ev, d
}

// cutDialer records the connections go-zookeeper dials, and can refuse
// new ones.
type cutDialer struct {
	mu      sync.Mutex
	conns   []net.Conn
	blocked bool
}

func (d *cutDialer) setBlocked(b bool) {
	d.mu.Lock()
	d.blocked = b
	d.mu.Unlock()
}

func (d *cutDialer) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	d.mu.Lock()
	blocked := d.blocked
	d.mu.Unlock()
	if blocked {
		time.Sleep(20 * time.Millisecond)
		return nil, errors.New("blocked by test")
	}
	c, err := net.DialTimeout(network, address, timeout)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

// cut closes the client's current TCP connection.
func (d *cutDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

var acl = zk.WorldACL(zk.PermAll)

func mustStr(t testing.TB) func(string, error) string {
	return func(v string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func mustStat(t testing.TB) func(*zk.Stat, error) *zk.Stat {
	return func(v *zk.Stat, err error) *zk.Stat {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t testing.TB, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Fatalf("got error %v, want %v", got, want)
	}
}

func nextEvent(t testing.TB, ch <-chan zk.Event) zk.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event")
	}
	return zk.Event{}
}

func TestZKCrudAndErrors(t *testing.T) {
	s := startServer(t, nil)
	c, _, _ := connectZK(t, s.Addr().String(), 2*time.Second)

	if p := mustStr(t)(c.Create("/a", []byte("1"), 0, acl)); p != "/a" {
		t.Fatalf("create returned %q", p)
	}
	_, err := c.Create("/a", nil, 0, acl)
	wantErr(t, err, zk.ErrNodeExists)
	_, err = c.Create("/missing/child", nil, 0, acl)
	wantErr(t, err, zk.ErrNoNode)
	_, err = c.Create("bad", nil, 0, acl)
	wantErr(t, err, zk.ErrInvalidPath) // client-side check
	_, err = c.Create("/emptyacl", nil, 0, nil)
	wantErr(t, err, zk.ErrInvalidACL)

	data, st := must2(t)(c.Get("/a"))
	if string(data) != "1" || st.Version != 0 || st.Czxid == 0 || st.DataLength != 1 {
		t.Fatalf("get: %q %+v", data, st)
	}
	st2 := mustStat(t)(c.Set("/a", []byte("22"), 0))
	if st2.Version != 1 || st2.Mzxid <= st.Mzxid {
		t.Fatalf("set stat %+v", st2)
	}
	_, err = c.Set("/a", nil, 0)
	wantErr(t, err, zk.ErrBadVersion)
	_, err = c.Set("/nope", nil, -1)
	wantErr(t, err, zk.ErrNoNode)

	ok, st3, err := c.Exists("/a")
	if err != nil || !ok || st3.Version != 1 {
		t.Fatalf("exists: %v %v %+v", ok, err, st3)
	}
	if ok, _, err := c.Exists("/nope"); ok || err != nil {
		t.Fatalf("exists missing: %v %v", ok, err)
	}

	mustStr(t)(c.Create("/a/b", nil, 0, acl))
	wantErr(t, c.Delete("/a", -1), zk.ErrNotEmpty)
	wantErr(t, c.Delete("/a/b", 5), zk.ErrBadVersion)
	wantErr(t, c.Delete("/zookeeper", -1), zk.ErrBadArguments)
	children, cst := must2s(t)(c.Children("/a"))
	if len(children) != 1 || children[0] != "b" || cst.NumChildren != 1 {
		t.Fatalf("children %v %+v", children, cst)
	}
	if err := c.Delete("/a/b", -1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Delete("/a/b", -1), zk.ErrNoNode)

	// ACLs.
	acls, ast, err := c.GetACL("/a")
	if err != nil || len(acls) != 1 || acls[0].Scheme != "world" || ast.Aversion != 0 {
		t.Fatalf("getACL %v %+v %v", acls, ast, err)
	}
	mustStat(t)(c.SetACL("/a", zk.WorldACL(zk.PermRead), 0))
	_, err = c.SetACL("/a", acl, 0)
	wantErr(t, err, zk.ErrNoAuth) // no ADMIN any more
	_, err = c.Set("/a", nil, -1)
	wantErr(t, err, zk.ErrNoAuth)

	// sync.
	if p, err := c.Sync("/a"); err != nil || p != "/a" {
		t.Fatalf("sync %q %v", p, err)
	}

	// Ephemeral parents cannot have children.
	mustStr(t)(c.Create("/eph", nil, zk.FlagEphemeral, acl))
	_, err = c.Create("/eph/child", nil, 0, acl)
	wantErr(t, err, zk.ErrNoChildrenForEphemerals)
}

func must2(t testing.TB) func([]byte, *zk.Stat, error) ([]byte, *zk.Stat) {
	return func(b []byte, st *zk.Stat, err error) ([]byte, *zk.Stat) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b, st
	}
}

func must2s(t testing.TB) func([]string, *zk.Stat, error) ([]string, *zk.Stat) {
	return func(b []string, st *zk.Stat, err error) ([]string, *zk.Stat) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b, st
	}
}

func TestZKCreateModes(t *testing.T) {
	s := startServer(t, nil)
	c, _, _ := connectZK(t, s.Addr().String(), 2*time.Second)
	mustStr(t)(c.Create("/seq", nil, 0, acl))
	p1 := mustStr(t)(c.Create("/seq/n-", nil, zk.FlagSequence, acl))
	p2 := mustStr(t)(c.Create("/seq/n-", nil, zk.FlagSequence|zk.FlagEphemeral, acl))
	if p1 != "/seq/n-0000000000" || p2 != "/seq/n-0000000001" {
		t.Fatalf("sequential names %q %q", p1, p2)
	}
	_, st := must2(t)(c.Get(p2))
	if st.EphemeralOwner != c.SessionID() {
		t.Fatalf("ephemeral owner %x, session %x", st.EphemeralOwner, c.SessionID())
	}
	// Container (opcode 19): removed by GC once its last child goes.
	mustStr(t)(c.CreateContainer("/box", nil, zk.FlagTTL&0|4, acl))
	mustStr(t)(c.Create("/box/item", nil, 0, acl))
	if err := c.Delete("/box/item", -1); err != nil {
		t.Fatal(err)
	}
	waitGone(t, c, "/box")
	// TTL (opcode 21): removed once unmodified for longer than the TTL.
	mustStr(t)(c.CreateTTL("/ttl", nil, zk.FlagTTL, acl, 200*time.Millisecond))
	waitGone(t, c, "/ttl")
}

func waitGone(t testing.TB, c *zk.Conn, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _, err := c.Exists(path); err == nil && !ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s was not collected", path)
}

func TestZKWatches(t *testing.T) {
	s := startServer(t, nil)
	c, _, _ := connectZK(t, s.Addr().String(), 2*time.Second)
	w, _, _ := connectZK(t, s.Addr().String(), 2*time.Second)

	// exists on a missing node → NodeCreated.
	_, _, ch, err := w.ExistsW("/n")
	if err != nil {
		t.Fatal(err)
	}
	mustStr(t)(c.Create("/n", nil, 0, acl))
	if ev := nextEvent(t, ch); ev.Type != zk.EventNodeCreated || ev.Path != "/n" {
		t.Fatalf("event %+v", ev)
	}
	// getData → NodeDataChanged, once.
	_, _, ch, err = w.GetW("/n")
	if err != nil {
		t.Fatal(err)
	}
	mustStat(t)(c.Set("/n", []byte("x"), -1))
	if ev := nextEvent(t, ch); ev.Type != zk.EventNodeDataChanged {
		t.Fatalf("event %+v", ev)
	}
	// getChildren → NodeChildrenChanged.
	_, _, ch, err = w.ChildrenW("/n")
	if err != nil {
		t.Fatal(err)
	}
	mustStr(t)(c.Create("/n/k", nil, 0, acl))
	if ev := nextEvent(t, ch); ev.Type != zk.EventNodeChildrenChanged || ev.Path != "/n" {
		t.Fatalf("event %+v", ev)
	}
	// Delete fires data and child watches on the node.
	_, _, dch, _ := w.GetW("/n/k")
	_, _, cch, _ := w.ChildrenW("/n/k")
	if err := c.Delete("/n/k", -1); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, dch); ev.Type != zk.EventNodeDeleted {
		t.Fatalf("event %+v", ev)
	}
	if ev := nextEvent(t, cch); ev.Type != zk.EventNodeDeleted {
		t.Fatalf("event %+v", ev)
	}
}

// A client sees the watch event before the reply that reflects the change.
func TestEventBeforeResponse(t *testing.T) {
	eventBeforeResponse(t, startServer(t, nil).Addr().String())
}

func eventBeforeResponse(t *testing.T, addr string) {
	writer := newRaw(t, addr)
	reader := newRaw(t, addr)
	writer.create("/o", nil, 0)
	for i := 0; i < 50; i++ {
		var gd proto.GetDataResponse
		if err := reader.call(proto.OpGetData, &proto.GetDataRequest{Path: "/o", Watch: true}, &gd); err != proto.ErrOK {
			t.Fatal(err)
		}
		before := gd.Stat.Version
		// The writer changes the node; the reader polls until it sees the
		// new version, and must have received the event by then.
		wx := writer.send(proto.OpSetData, &proto.SetDataRequest{Path: "/o", Data: []byte{byte(i)}, Version: -1})
		for {
			var gd2 proto.GetDataResponse
			reader.call(proto.OpGetData, &proto.GetDataRequest{Path: "/o"}, &gd2)
			if gd2.Stat.Version > before {
				evs := reader.takeEvents()
				if len(evs) != 1 || evs[0].Type != int32(proto.EventNodeDataChanged) {
					t.Fatalf("iteration %d: saw version %d with events %+v", i, gd2.Stat.Version, evs)
				}
				break
			}
		}
		writer.recv(wx, nil)
		if evs := reader.takeEvents(); len(evs) != 0 {
			t.Fatalf("late events %+v", evs)
		}
	}
	// The writer's own watch fires before its own write's reply.
	var gd proto.GetDataResponse
	writer.call(proto.OpGetData, &proto.GetDataRequest{Path: "/o", Watch: true}, &gd)
	writer.call(proto.OpSetData, &proto.SetDataRequest{Path: "/o", Version: -1}, &proto.SetDataResponse{})
	if evs := writer.takeEvents(); len(evs) != 1 {
		t.Fatalf("writer events %+v", evs)
	}
}

// Every opcode go-zookeeper lacks, over the raw protocol.
// A bad TTL answers BADARGUMENTS.
func TestBadTTL(t *testing.T) {
	c := newRaw(t, startServer(t, nil).Addr().String())
	var c2 proto.Create2Response
	if err := c.call(proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/t2", Acl: openACL, Flags: proto.ModePersistentWithTTL, Ttl: 0}, &c2); err != proto.ErrBadArguments {
		t.Fatalf("createTTL ttl 0: %v", err)
	}
}

// A standalone check answers SetDataResponse{stat}, as
// FinalRequestProcessor means to (ZooKeeper itself fails to serialize the
// null stat and sends nothing; clients only send check inside multi).
func TestStandaloneCheck(t *testing.T) {
	c := newRaw(t, startServer(t, nil).Addr().String())
	c.create("/c", []byte("x"), 0)
	var sd proto.SetDataResponse
	if err := c.call(proto.OpCheck, &proto.CheckVersionRequest{Path: "/c", Version: 0}, &sd); err != proto.ErrOK || sd.Stat.DataLength != 1 {
		t.Fatalf("check %v %+v", err, sd)
	}
}

func TestRawOpcodes(t *testing.T) { rawOpcodes(t, startServer(t, nil).Addr().String()) }

func rawOpcodes(t *testing.T, addr string) {
	c := newRaw(t, addr)

	// create2 / createContainer / createTTL answer Create2Response.
	var c2 proto.Create2Response
	if err := c.call(proto.OpCreate2, &proto.CreateRequest{Path: "/c2", Data: []byte("d"), Acl: openACL}, &c2); err != proto.ErrOK || c2.Path != "/c2" || c2.Stat.DataLength != 1 {
		t.Fatalf("create2 %v %+v", err, c2)
	}
	if c.lastHdr.Zxid != c2.Stat.Czxid {
		t.Fatalf("reply zxid %d, czxid %d", c.lastHdr.Zxid, c2.Stat.Czxid)
	}
	// (ZooKeeper shows ephemeralOwner 0 for containers and TTL nodes on the
	// wire, DataNode.getClientEphemeralOwner; the statemachine owns that.)
	if err := c.call(proto.OpCreateContainer, &proto.CreateRequest{Path: "/cc", Acl: openACL, Flags: proto.ModeContainer}, &c2); err != proto.ErrOK || c2.Path != "/cc" {
		t.Fatalf("createContainer %v %+v", err, c2)
	}
	if err := c.call(proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/t", Acl: openACL, Flags: proto.ModePersistentWithTTL, Ttl: 100000}, &c2); err != proto.ErrOK {
		t.Fatalf("createTTL %v", err)
	}
	// (A bad TTL is tested in TestBadTTL only: ZooKeeper 3.8 answers it
	// with nothing at all, an NPE in FinalRequestProcessor.)
	// (A successful standalone check is tested in TestBadTTL's sibling
	// TestStandaloneCheck: ZooKeeper NPEs on it and never answers.)
	if err := c.call(proto.OpCheck, &proto.CheckVersionRequest{Path: "/c2", Version: 3}, nil); err != proto.ErrBadVersion {
		t.Fatalf("check bad version: %v", err)
	}
	// getChildren2, getAllChildrenNumber, getEphemerals.
	c.create("/c2/x", nil, 0)
	c.create("/c2/x/y", nil, 0)
	c.create("/e1", nil, proto.ModeEphemeral)
	c.create("/c2/e2", nil, proto.ModeEphemeral)
	var gc2 proto.GetChildren2Response
	if err := c.call(proto.OpGetChildren2, &proto.GetChildren2Request{Path: "/c2"}, &gc2); err != proto.ErrOK || len(gc2.Children) != 2 || gc2.Stat.NumChildren != 2 {
		t.Fatalf("getChildren2 %v %+v", err, gc2)
	}
	var n proto.GetAllChildrenNumberResponse
	if err := c.call(proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: "/c2"}, &n); err != proto.ErrOK || n.TotalNumber != 3 {
		t.Fatalf("getAllChildrenNumber %v %+v", err, n)
	}
	var eph proto.GetEphemeralsResponse
	if err := c.call(proto.OpGetEphemerals, &proto.GetEphemeralsRequest{PrefixPath: "/"}, &eph); err != proto.ErrOK || len(eph.Ephemerals) != 2 {
		t.Fatalf("getEphemerals %v %+v", err, eph)
	}
	if err := c.call(proto.OpGetEphemerals, &proto.GetEphemeralsRequest{PrefixPath: "/c2"}, &eph); err != proto.ErrOK || len(eph.Ephemerals) != 1 || eph.Ephemerals[0] != "/c2/e2" {
		t.Fatalf("getEphemerals prefix %v %+v", err, eph)
	}
	// whoAmI lists the implicit ip id, then digest ids after auth.
	var who proto.WhoAmIResponse
	if err := c.call(proto.OpWhoAmI, nil, &who); err != proto.ErrOK || len(who.ClientInfo) != 1 || who.ClientInfo[0] != (proto.ClientInfo{AuthScheme: "ip", User: "127.0.0.1"}) {
		t.Fatalf("whoAmI %v %+v", err, who)
	}
	if err := c.call(proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte("bob:secret")}, nil); err != proto.ErrOK || c.lastHdr.Zxid != 0 {
		t.Fatalf("auth %v %+v", err, c.lastHdr)
	}
	c.call(proto.OpWhoAmI, nil, &who)
	// ZooKeeper keeps auth ids in a hash set: the order is unspecified.
	if len(who.ClientInfo) != 2 || !slices.Contains(who.ClientInfo, proto.ClientInfo{AuthScheme: "digest", User: "bob"}) {
		t.Fatalf("whoAmI after auth %+v", who)
	}
	// sync answers its path.
	var sr proto.SyncResponse
	if err := c.call(proto.OpSync, &proto.SyncRequest{Path: "/c2"}, &sr); err != proto.ErrOK || sr.Path != "/c2" {
		t.Fatalf("sync %v %+v", err, sr)
	}
	// ping answers xid -2 with the last zxid.
	xid := c.send(proto.OpPing, nil)
	syncZxid := c.lastHdr.Zxid
	if xid != proto.XidPing || c.recv(proto.XidPing, nil) != proto.ErrOK || c.lastHdr.Zxid != syncZxid {
		t.Fatalf("ping %+v", c.lastHdr)
	}
	// reconfig is disabled.
	if err := c.call(proto.OpReconfig, &proto.ReconfigRequest{CurConfigId: -1}, nil); err != proto.ErrReconfigDisabled {
		t.Fatalf("reconfig %v", err)
	}
	// multiRead: per-op results, header OK.
	var mr proto.MultiResponse
	req := &proto.MultiRequest{Ops: []proto.MultiOp{
		{Type: proto.OpGetData, Req: &proto.GetDataRequest{Path: "/c2"}},
		{Type: proto.OpGetChildren, Req: &proto.GetChildrenRequest{Path: "/nope"}},
		{Type: proto.OpGetChildren, Req: &proto.GetChildrenRequest{Path: "/c2"}},
	}}
	if err := c.call(proto.OpMultiRead, req, &mr); err != proto.ErrOK || len(mr.Results) != 3 ||
		mr.Results[0].Type != proto.OpGetData || mr.Results[1].Err != proto.ErrNoNode || mr.Results[2].Type != proto.OpGetChildren {
		t.Fatalf("multiRead %v %+v", err, mr)
	}
	// Unknown opcodes: UNIMPLEMENTED, then the connection closes.
	if err := c.call(proto.OpCode(77), nil, nil); err != proto.ErrUnimplemented {
		t.Fatalf("unknown op %v", err)
	}
	expectClosed(t, c.nc)
}

// A failed multi: ops before the failure answer OK(0), the failing op its
// error, later ops RUNTIMEINCONSISTENCY; the header says 0; nothing applied.
func TestMultiErrorLayout(t *testing.T) { multiErrorLayout(t, startServer(t, nil).Addr().String()) }

func multiErrorLayout(t *testing.T, addr string) {
	c := newRaw(t, addr)
	c.create("/m", nil, 0)
	var mr proto.MultiResponse
	req := &proto.MultiRequest{Ops: []proto.MultiOp{
		{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/m/a", Acl: openACL}},
		{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: "/m", Version: 7}},
		{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/m", Version: -1}},
	}}
	if err := c.call(proto.OpMulti, req, &mr); err != proto.ErrOK {
		t.Fatalf("header err %v", err)
	}
	want := []proto.ErrCode{proto.ErrOK, proto.ErrBadVersion, proto.ErrRuntimeInconsistency}
	for i, r := range mr.Results {
		if r.Type != proto.OpError || r.Err != want[i] {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	var st proto.ExistsResponse
	if err := c.call(proto.OpExists, &proto.ExistsRequest{Path: "/m/a"}, &st); err != proto.ErrNoNode {
		t.Fatalf("failed multi applied: %v", err)
	}
	// A successful multi with go-zookeeper: one zxid for all.
	zc, _, _ := connectZK(t, addr, 2*time.Second)
	res, err := zc.Multi(
		&zk.CreateRequest{Path: "/m/b", Acl: acl},
		&zk.SetDataRequest{Path: "/m", Data: []byte("x"), Version: 0},
		&zk.CheckVersionRequest{Path: "/m", Version: 1},
		&zk.DeleteRequest{Path: "/m/b", Version: -1},
	)
	if err != nil || len(res) != 4 || res[0].String != "/m/b" {
		t.Fatalf("multi %v %+v", err, res)
	}
	_, err = zc.Multi(&zk.CreateRequest{Path: "/m", Acl: acl})
	wantErr(t, err, zk.ErrNodeExists)
}

// Persistent and recursive watches (addWatch), checkWatches and
// removeWatches.
func TestPersistentWatchesAndRemoval(t *testing.T) {
	persistentWatches(t, startServer(t, nil).Addr().String())
}

func persistentWatches(t *testing.T, addr string) {
	w := newRaw(t, addr)
	c := newRaw(t, addr)
	var er proto.ErrorResponse
	if err := w.call(proto.OpAddWatch, &proto.AddWatchRequest{Path: "/p", Mode: proto.AddWatchPersistent}, &er); err != proto.ErrOK || er.Err != 0 {
		t.Fatalf("addWatch %v", err)
	}
	if err := w.call(proto.OpAddWatch, &proto.AddWatchRequest{Path: "/r", Mode: proto.AddWatchPersistentRecursive}, &er); err != proto.ErrOK {
		t.Fatalf("addWatch recursive %v", err)
	}
	c.create("/p", nil, 0)
	c.create("/p/kid", nil, 0)
	c.call(proto.OpSetData, &proto.SetDataRequest{Path: "/p", Version: -1}, nil)
	c.create("/r", nil, 0)
	c.create("/r/a", nil, 0)
	c.create("/r/a/b", nil, 0)
	c.call(proto.OpSetData, &proto.SetDataRequest{Path: "/r/a/b", Version: -1}, nil)
	c.call(proto.OpDelete, &proto.DeleteRequest{Path: "/r/a/b", Version: -1}, nil)
	want := []struct {
		typ  proto.EventType
		path string
	}{
		{proto.EventNodeCreated, "/p"},
		{proto.EventNodeChildrenChanged, "/p"},
		{proto.EventNodeDataChanged, "/p"},
		{proto.EventNodeCreated, "/r"},
		{proto.EventNodeCreated, "/r/a"},
		{proto.EventNodeCreated, "/r/a/b"},
		{proto.EventNodeDataChanged, "/r/a/b"},
		{proto.EventNodeDeleted, "/r/a/b"},
	}
	for i, wnt := range want {
		ev := w.waitEvent()
		if ev.Type != int32(wnt.typ) || ev.Path != wnt.path || ev.State != proto.StateSyncConnected {
			t.Fatalf("event %d: %+v, want %v %s", i, ev, wnt.typ, wnt.path)
		}
	}
	// checkWatches / removeWatches.
	// (WatcherType Persistent=4 is checkable from 3.9; 3.8 answers
	// MarshallingError, so the shared scenario uses Any.)
	if err := w.call(proto.OpCheckWatches, &proto.CheckWatchesRequest{Path: "/p", Type: proto.WatcherAny}, nil); err != proto.ErrOK {
		t.Fatalf("checkWatches %v", err)
	}
	if err := w.call(proto.OpCheckWatches, &proto.CheckWatchesRequest{Path: "/nowatch", Type: proto.WatcherData}, nil); err != proto.ErrNoWatcher {
		t.Fatalf("checkWatches data %v", err)
	}
	if err := w.call(proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: "/r", Type: proto.WatcherAny}, nil); err != proto.ErrOK {
		t.Fatalf("removeWatches %v", err)
	}
	if err := w.call(proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: "/r", Type: proto.WatcherAny}, nil); err != proto.ErrNoWatcher {
		t.Fatalf("removeWatches again %v", err)
	}
	// An unknown WatcherType: WatcherType.fromInt throws → MarshallingError.
	if err := w.call(proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: "/r", Type: 9}, nil); err != proto.ErrMarshallingError {
		t.Fatalf("removeWatches type 9: %v", err)
	}
	if err := w.call(proto.OpAddWatch, &proto.AddWatchRequest{Path: "/r", Mode: 5}, nil); err != proto.ErrMarshallingError {
		t.Fatalf("addWatch mode 5: %v", err)
	}
	// The server sends no *WatchRemoved event (the client library makes
	// those); a change under /r now fires nothing.
	c.create("/r/z", nil, 0)
	var st proto.ExistsResponse
	w.call(proto.OpExists, &proto.ExistsRequest{Path: "/r/z"}, &st)
	if evs := w.takeEvents(); len(evs) != 0 {
		t.Fatalf("events after removal: %+v", evs)
	}
}

// setWatches after a reconnect replays what the client missed.
func TestSetWatchesReplay(t *testing.T) { setWatchesReplay(t, startServer(t, nil).Addr().String()) }

func setWatchesReplay(t *testing.T, addr string) {
	c := newRaw(t, addr)
	c.create("/same", nil, 0)
	c.create("/changed", nil, 0)
	c.create("/kids", nil, 0)
	c.create("/gone", nil, 0)
	rel := c.lastHdr.Zxid
	c.call(proto.OpSetData, &proto.SetDataRequest{Path: "/changed", Version: -1}, nil)
	c.create("/kids/k", nil, 0)
	c.call(proto.OpDelete, &proto.DeleteRequest{Path: "/gone", Version: -1}, nil)
	c.create("/born", nil, 0)

	w := newRaw(t, addr)
	err := w.call(proto.OpSetWatches2, &proto.SetWatches2{
		RelativeZxid:      rel,
		DataWatches:       []string{"/same", "/changed", "/gone"},
		ExistWatches:      []string{"/born", "/unborn"},
		ChildWatches:      []string{"/kids", "/same", "/gone"},
		PersistentWatches: []string{"/pp"}, PersistentRecursiveWatches: []string{"/rr"},
	}, nil)
	if err != proto.ErrOK {
		t.Fatal(err)
	}
	// DataTree.setWatches walks data, then exist, then child watches.
	var got []string
	for _, ev := range w.takeEvents() {
		got = append(got, fmt.Sprintf("%s %d", ev.Path, ev.Type))
	}
	want := []string{"/changed 3", "/gone 2", "/born 1", "/kids 4", "/gone 2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	// The re-registered watches fire.
	c.call(proto.OpSetData, &proto.SetDataRequest{Path: "/same", Version: -1}, nil)
	if ev := w.waitEvent(); ev.Path != "/same" || ev.Type != int32(proto.EventNodeDataChanged) {
		t.Fatalf("event %+v", ev)
	}
	c.create("/unborn", nil, 0)
	if ev := w.waitEvent(); ev.Path != "/unborn" || ev.Type != int32(proto.EventNodeCreated) {
		t.Fatalf("event %+v", ev)
	}
	c.create("/rr", nil, 0)
	if ev := w.waitEvent(); ev.Path != "/rr" || ev.Type != int32(proto.EventNodeCreated) {
		t.Fatalf("event %+v", ev)
	}
}

func TestAuthAndACL(t *testing.T) {
	super := digestID("super:test")
	s := startServer(t, func(c *Config) { c.SuperDigest = super })
	addr := s.Addr().String()
	c, _, _ := connectZK(t, addr, 2*time.Second)
	if err := c.AddAuth("digest", []byte("bob:pw")); err != nil {
		t.Fatal(err)
	}
	mustStr(t)(c.Create("/bob", nil, 0, zk.DigestACL(zk.PermAll, "bob", "pw")))
	mustStr(t)(c.Create("/creator", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "auth"}}))
	acls, _, err := c.GetACL("/creator")
	if err != nil || len(acls) != 1 || acls[0].Scheme != "digest" || acls[0].ID != digestID("bob:pw") {
		t.Fatalf("auth ACL fix-up: %+v %v", acls, err)
	}

	other, _, _ := connectZK(t, addr, 2*time.Second)
	_, _, err = other.Get("/bob")
	wantErr(t, err, zk.ErrNoAuth)
	// Without ADMIN, digest ids are masked.
	acls, _, err = other.GetACL("/bob")
	if err != nil && !errors.Is(err, zk.ErrNoAuth) {
		t.Fatal(err)
	}
	// super bypasses ACLs.
	if err := other.AddAuth("digest", []byte("super:test")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Get("/bob"); err != nil {
		t.Fatalf("super get: %v", err)
	}
	// An unknown scheme fails auth and closes the connection.
	r := newRaw(t, addr)
	if err := r.call(proto.OpAuth, &proto.AuthPacket{Scheme: "kerberos", Auth: []byte("x")}, nil); err != proto.ErrAuthFailed {
		t.Fatalf("auth: %v", err)
	}
	expectClosed(t, r.nc)
	// ip ACLs match the implicit ip id.
	mustStr(t)(c.Create("/lo", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "ip", ID: "127.0.0.0/8"}}))
	if _, _, err := other.Get("/lo"); err != nil {
		t.Fatalf("ip acl: %v", err)
	}
}

// An expired session loses its ephemerals; its client learns it is expired.
func TestSessionExpiry(t *testing.T) {
	// tick 100ms: minimum 200ms; the observer r asks for 30s.
	s := startServer(t, func(c *Config) { c.MaxSessionTimeout = 30 * time.Second })
	addr := s.Addr().String()
	r := newRaw(t, addr)
	r2 := &rawClient{t: t, nc: dial(t, addr)}
	r2.r = newReader(r2.nc)
	r2.connect(proto.ConnectRequest{TimeOut: 300})
	r2.create("/eph", nil, proto.ModeEphemeral)
	var gd proto.GetDataResponse
	r.call(proto.OpGetData, &proto.GetDataRequest{Path: "/eph", Watch: true}, &gd)

	// r2 goes silent: no pings. Its session expires, /eph goes away, the
	// watcher is told, and the server closes r2's connection.
	ev := r.waitEvent()
	if ev.Type != int32(proto.EventNodeDeleted) || ev.Path != "/eph" {
		t.Fatalf("event %+v", ev)
	}
	expectClosed(t, r2.nc)
	// Reconnecting with the expired session is answered expired.
	r3 := &rawClient{t: t, nc: dial(t, addr)}
	r3.r = newReader(r3.nc)
	if resp := r3.connect(proto.ConnectRequest{TimeOut: 300, SessionId: r2.sid, Passwd: r2.passwd}); resp.TimeOut != 0 || resp.SessionId != 0 {
		t.Fatalf("expired session answered %+v", resp)
	}
	// go-zookeeper sees StateExpired when it comes back after its
	// session expired.
	zc, events, d := connectZK(t, addr, 300*time.Millisecond)
	mustStr(t)(zc.Create("/zk-eph", nil, zk.FlagEphemeral, acl))
	d.setBlocked(true)
	d.cut()
	time.Sleep(time.Second) // > timeout: the server expires the session
	d.setBlocked(false)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateExpired {
				if err := r.call(proto.OpExists, &proto.ExistsRequest{Path: "/zk-eph"}, &proto.ExistsResponse{}); err != proto.ErrNoNode {
					t.Fatalf("ephemeral of expired session: %v", err)
				}
				return
			}
		case <-deadline:
			t.Fatal("go-zookeeper never saw StateExpired")
		}
	}
}

// A client that reconnects with its session id and password keeps its
// session and ephemerals; the old connection is closed.
func TestReconnectKeepsSession(t *testing.T) {
	s := startServer(t, nil)
	addr := s.Addr().String()
	r := newRaw(t, addr)
	r.create("/mine", nil, proto.ModeEphemeral)
	r2 := &rawClient{t: t, nc: dial(t, addr)}
	r2.r = newReader(r2.nc)
	resp := r2.connect(proto.ConnectRequest{TimeOut: 1000, SessionId: r.sid, Passwd: r.passwd, LastZxidSeen: r.lastHdr.Zxid})
	if resp.SessionId != r.sid || resp.TimeOut != 1000 {
		t.Fatalf("reconnect answered %+v", resp)
	}
	expectClosed(t, r.nc)
	var eph proto.GetEphemeralsResponse
	if err := r2.call(proto.OpGetEphemerals, &proto.GetEphemeralsRequest{}, &eph); err != proto.ErrOK || len(eph.Ephemerals) != 1 {
		t.Fatalf("ephemerals after reconnect: %v %+v", err, eph)
	}

	// go-zookeeper: cut the TCP connection; the client reconnects with its
	// session, keeps its ephemeral and re-arms its watch (setWatches).
	zc, _, d := connectZK(t, addr, 2*time.Second)
	mustStr(t)(zc.Create("/zeph", nil, zk.FlagEphemeral, acl))
	_, _, ch, err := zc.GetW("/zeph")
	if err != nil {
		t.Fatal(err)
	}
	sid := zc.SessionID()
	d.cut()
	time.Sleep(50 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for zc.State() != zk.StateHasSession && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if zc.SessionID() != sid {
		t.Fatalf("session changed %x → %x", sid, zc.SessionID())
	}
	if ok, _, err := zc.Exists("/zeph"); err != nil || !ok {
		t.Fatalf("ephemeral lost: %v %v", ok, err)
	}
	newRaw(t, addr).call(proto.OpSetData, &proto.SetDataRequest{Path: "/zeph", Version: -1}, nil)
	for {
		ev := nextEvent(t, ch)
		if ev.Type == zk.EventNodeDataChanged {
			break
		}
	}
}

// Sessions survive a restart: a client reconnecting in time keeps its
// ephemerals; the data is still there.
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *Config) { c.DataDir = dir; c.MaxSessionTimeout = 5 * time.Second }
	s := startServer(t, cfg)
	r := newRaw(t, s.Addr().String())
	r.create("/persist", []byte("v"), 0)
	r.create("/e", nil, proto.ModeEphemeral)
	sid, pw, zxid := r.sid, r.passwd, r.lastHdr.Zxid
	s.Close()

	s2 := startServer(t, cfg)
	r2 := &rawClient{t: t, nc: dial(t, s2.Addr().String())}
	r2.r = newReader(r2.nc)
	if resp := r2.connect(proto.ConnectRequest{TimeOut: 5000, SessionId: sid, Passwd: pw, LastZxidSeen: zxid}); resp.SessionId != sid {
		t.Fatalf("session lost across restart: %+v", resp)
	}
	var gd proto.GetDataResponse
	if err := r2.call(proto.OpGetData, &proto.GetDataRequest{Path: "/persist"}, &gd); err != proto.ErrOK || string(gd.Data) != "v" {
		t.Fatalf("data lost: %v", err)
	}
	var st proto.ExistsResponse
	if err := r2.call(proto.OpExists, &proto.ExistsRequest{Path: "/e"}, &st); err != proto.ErrOK {
		t.Fatalf("ephemeral lost: %v", err)
	}
}

// closeSession deletes ephemerals, answers, and closes the socket.
func TestCloseSession(t *testing.T) { closeSession(t, startServer(t, nil).Addr().String()) }

func closeSession(t *testing.T, addr string) {
	w := newRaw(t, addr)
	r := newRaw(t, addr)
	r.create("/bye", nil, proto.ModeEphemeral)
	var st proto.ExistsResponse
	w.call(proto.OpExists, &proto.ExistsRequest{Path: "/bye", Watch: true}, &st)
	if err := r.call(proto.OpCloseSession, nil, nil); err != proto.ErrOK {
		t.Fatal(err)
	}
	expectClosed(t, r.nc)
	if ev := w.waitEvent(); ev.Type != int32(proto.EventNodeDeleted) {
		t.Fatalf("event %+v", ev)
	}
	// go-zookeeper's Close sends closeSession too.
	zc, _, _ := connectZK(t, addr, 2*time.Second)
	mustStr(t)(zc.Create("/zbye", nil, zk.FlagEphemeral, acl))
	zc.Close()
	time.Sleep(100 * time.Millisecond)
	if err := w.call(proto.OpExists, &proto.ExistsRequest{Path: "/zbye"}, &st); err != proto.ErrNoNode {
		t.Fatalf("ephemeral after close: %v", err)
	}
}

// Many sessions writing concurrently do not interfere, and each sees its
// own writes.
func TestConcurrentSessions(t *testing.T) {
	s := startServer(t, nil)
	addr := s.Addr().String()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, _, _ := connectZK(t, addr, 2*time.Second)
			base := "/s" + string(rune('a'+i))
			if _, err := c.Create(base, nil, 0, acl); err != nil {
				t.Error(err)
				return
			}
			for j := 0; j < 30; j++ {
				if _, err := c.Set(base, []byte{byte(j)}, int32(j)); err != nil {
					t.Error(err)
					return
				}
				d, _, err := c.Get(base)
				if err != nil || d[0] != byte(j) {
					t.Errorf("read-your-write: %v %v", d, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	c, _, _ := connectZK(t, addr, 2*time.Second)
	kids, _ := must2s(t)(c.Children("/"))
	sort.Strings(kids)
	if len(kids) != 9 {
		t.Fatalf("children %v", kids)
	}
}
