package statemachine

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"reflect"
	"sort"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

// harness applies entries with increasing zxids, like the log would.
type harness struct {
	t    *testing.T
	s    *State
	zxid int64
	now  int64
}

const sess = int64(0x100)

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, s: New(Options{ExtendedTypes: true}), now: 1000}
	h.session(sess)
	return h
}

func (h *harness) apply(e *Entry) Result {
	h.t.Helper()
	h.zxid++
	if e.Time == 0 {
		e.Time = h.now
	}
	// Round-trip the entry through its log encoding, as the log would.
	d, err := DecodeEntry(e.Encode())
	if err != nil {
		h.t.Fatal(err)
	}
	return h.s.Apply(h.zxid, d)
}

func (h *harness) session(id int64) {
	h.t.Helper()
	r := h.apply(&Entry{Op: proto.OpCreateSession, Session: id, Body: proto.Marshal(&SessionBody{Timeout: 4000, Passwd: make([]byte, 16)})})
	if r.Err != proto.ErrOK {
		h.t.Fatalf("create session: %v", r.Err)
	}
}

func (h *harness) write(op proto.OpCode, req proto.Record, auth ...proto.Id) Result {
	h.t.Helper()
	return h.apply(&Entry{Op: op, Session: sess, Auth: auth, Body: proto.Marshal(req)})
}

func (h *harness) create(path string, flags int32) Result {
	h.t.Helper()
	return h.write(proto.OpCreate2, &proto.CreateRequest{Path: path, Data: []byte("d"), Acl: proto.OpenACLUnsafe, Flags: flags})
}

func (h *harness) mustCreate(path string, flags int32) string {
	h.t.Helper()
	r := h.create(path, flags)
	if r.Err != proto.ErrOK {
		h.t.Fatalf("create %s: %v", path, r.Err)
	}
	return r.Resp.(*proto.Create2Response).Path
}

func (h *harness) stat(path string) proto.Stat {
	h.t.Helper()
	r, code := h.s.Read(sess, nil, proto.OpExists, &proto.ExistsRequest{Path: path})
	if code != proto.ErrOK {
		h.t.Fatalf("exists %s: %v", path, code)
	}
	return r.(*proto.ExistsResponse).Stat
}

func digestID(user, pass string) proto.Id {
	sum := sha1.Sum([]byte(user + ":" + pass))
	return proto.Id{Scheme: "digest", Id: user + ":" + base64.StdEncoding.EncodeToString(sum[:])}
}

func TestInitialTree(t *testing.T) {
	s := New(Options{})
	r, code := s.Read(0, nil, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/"})
	if code != proto.ErrOK || !reflect.DeepEqual(r.(*proto.GetChildrenResponse).Children, []string{"zookeeper"}) {
		t.Fatalf("root children = %v %v", r, code)
	}
	r, _ = s.Read(0, nil, proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/zookeeper"})
	if got := r.(*proto.GetChildrenResponse).Children; !reflect.DeepEqual(got, []string{"config", "quota"}) {
		t.Fatalf("/zookeeper children = %v", got)
	}
	r, _ = s.Read(0, nil, proto.OpGetACL, &proto.GetACLRequest{Path: "/zookeeper/config"})
	acl := r.(*proto.GetACLResponse)
	if !reflect.DeepEqual(acl.Acl, proto.ReadACLUnsafe) || acl.Stat.Aversion != -1 {
		t.Fatalf("/zookeeper/config acl = %+v", acl)
	}
	// The stats a fresh Apache ZooKeeper 3.8 reports for its system nodes.
	for path, want := range map[string]proto.Stat{
		"/":                 {Cversion: -1, NumChildren: 1},
		"/zookeeper":        {Cversion: -2, NumChildren: 2},
		"/zookeeper/config": {Aversion: -1},
		"/zookeeper/quota":  {},
	} {
		r, code := s.Read(0, nil, proto.OpExists, &proto.ExistsRequest{Path: path})
		if code != proto.ErrOK || r.(*proto.ExistsResponse).Stat != want {
			t.Errorf("stat %s = %+v, want %+v", path, r, want)
		}
	}
	r, _ = s.Read(0, nil, proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: "/"})
	if n := r.(*proto.GetAllChildrenNumberResponse).TotalNumber; n != 3 {
		t.Fatalf("all children of / = %d, want 3", n)
	}
}

func TestCreateErrors(t *testing.T) {
	h := newHarness(t)
	h.mustCreate("/a", proto.ModePersistent)
	h.mustCreate("/eph", proto.ModeEphemeral)
	tests := []struct {
		name string
		op   proto.OpCode
		req  proto.Record
		want proto.ErrCode
	}{
		{"exists", proto.OpCreate, &proto.CreateRequest{Path: "/a", Acl: proto.OpenACLUnsafe}, proto.ErrNodeExists},
		{"root", proto.OpCreate, &proto.CreateRequest{Path: "/", Acl: proto.OpenACLUnsafe}, proto.ErrNodeExists},
		{"zookeeper", proto.OpCreate, &proto.CreateRequest{Path: "/zookeeper", Acl: proto.OpenACLUnsafe}, proto.ErrNodeExists},
		{"no parent", proto.OpCreate, &proto.CreateRequest{Path: "/x/y", Acl: proto.OpenACLUnsafe}, proto.ErrNoNode},
		{"relative", proto.OpCreate, &proto.CreateRequest{Path: "a", Acl: proto.OpenACLUnsafe}, proto.ErrBadArguments},
		{"trailing slash", proto.OpCreate, &proto.CreateRequest{Path: "/a/", Acl: proto.OpenACLUnsafe}, proto.ErrBadArguments},
		{"dot", proto.OpCreate, &proto.CreateRequest{Path: "/a/.", Acl: proto.OpenACLUnsafe}, proto.ErrBadArguments},
		{"empty component, parent missing", proto.OpCreate, &proto.CreateRequest{Path: "/a//b", Acl: proto.OpenACLUnsafe}, proto.ErrNoNode},
		{"bad flags", proto.OpCreate, &proto.CreateRequest{Path: "/b", Acl: proto.OpenACLUnsafe, Flags: 9}, proto.ErrBadArguments},
		{"empty acl", proto.OpCreate, &proto.CreateRequest{Path: "/b"}, proto.ErrInvalidACL},
		{"auth acl without auth", proto.OpCreate, &proto.CreateRequest{Path: "/b", Acl: proto.CreatorAllACL}, proto.ErrInvalidACL},
		{"bad digest id", proto.OpCreate, &proto.CreateRequest{Path: "/b", Acl: []proto.ACL{{Perms: 31, Id: proto.Id{Scheme: "digest", Id: "bob"}}}}, proto.ErrInvalidACL},
		{"unknown scheme", proto.OpCreate, &proto.CreateRequest{Path: "/b", Acl: []proto.ACL{{Perms: 31, Id: proto.Id{Scheme: "foo", Id: "x"}}}}, proto.ErrInvalidACL},
		{"child of ephemeral", proto.OpCreate, &proto.CreateRequest{Path: "/eph/c", Acl: proto.OpenACLUnsafe}, proto.ErrNoChildrenForEphemerals},
		{"ttl flags on create", proto.OpCreate, &proto.CreateRequest{Path: "/b", Acl: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL}, proto.ErrBadArguments},
		{"ttl zero", proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/b", Acl: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, Ttl: 0}, proto.ErrBadArguments},
		{"ttl with plain mode", proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/b", Acl: proto.OpenACLUnsafe, Flags: proto.ModePersistent, Ttl: 10}, proto.ErrBadArguments},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			if r := h.write(tc.op, tc.req); r.Err != tc.want {
				t.Fatalf("got %v, want %v", r.Err, tc.want)
			}
		})
	}
}

func TestTTLNeedsExtendedTypes(t *testing.T) {
	h := newHarness(t)
	h.s.opts.ExtendedTypes = false
	r := h.write(proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/t", Acl: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, Ttl: 100})
	if r.Err != proto.ErrUnimplemented {
		t.Fatalf("got %v", r.Err)
	}
}

func TestSequentialAndStats(t *testing.T) {
	h := newHarness(t)
	h.mustCreate("/q", proto.ModePersistent)
	czxid := h.zxid
	names := []string{}
	for i := 0; i < 3; i++ {
		names = append(names, h.mustCreate("/q/n-", proto.ModePersistentSequential))
	}
	want := []string{"/q/n-0000000000", "/q/n-0000000001", "/q/n-0000000002"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("names %v", names)
	}
	// A delete moves pzxid but not cversion, so the next name keeps counting.
	if r := h.write(proto.OpDelete, &proto.DeleteRequest{Path: "/q/n-0000000001", Version: -1}); r.Err != proto.ErrOK {
		t.Fatal(r.Err)
	}
	st := h.stat("/q")
	if st.Cversion != 4 || st.NumChildren != 2 || st.Pzxid != h.zxid || st.Czxid != czxid || st.Mzxid != czxid {
		t.Fatalf("parent stat %+v (zxid %d)", st, h.zxid)
	}
	if got := h.mustCreate("/q/n-", proto.ModePersistentSequential); got != "/q/n-0000000003" {
		t.Fatalf("next name %s", got)
	}
	// Sequential with a trailing slash is valid: the name is just digits.
	if got := h.mustCreate("/q/", proto.ModePersistentSequential); got != "/q/0000000004" {
		t.Fatalf("slash name %s", got)
	}
}

func TestVersionsAndSetData(t *testing.T) {
	h := newHarness(t)
	h.mustCreate("/v", proto.ModePersistent)
	if r := h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/v", Data: []byte("x"), Version: 5}); r.Err != proto.ErrBadVersion {
		t.Fatal(r.Err)
	}
	r := h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/v", Data: []byte("xyz"), Version: 0})
	st := r.Resp.(*proto.SetDataResponse).Stat
	if r.Err != proto.ErrOK || st.Version != 1 || st.DataLength != 3 || st.Mzxid != h.zxid || st.Czxid == st.Mzxid {
		t.Fatalf("setData %v %+v", r.Err, st)
	}
	if !reflect.DeepEqual(r.Changes, []Change{{proto.EventNodeDataChanged, "/v", proto.OpenACLUnsafe}}) {
		t.Fatalf("changes %v", r.Changes)
	}
	if r := h.write(proto.OpDelete, &proto.DeleteRequest{Path: "/v", Version: 0}); r.Err != proto.ErrBadVersion {
		t.Fatal(r.Err)
	}
	h.mustCreate("/v/c", proto.ModePersistent)
	if r := h.write(proto.OpDelete, &proto.DeleteRequest{Path: "/v", Version: 1}); r.Err != proto.ErrNotEmpty {
		t.Fatal(r.Err)
	}
	for _, p := range []string{"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"} {
		if r := h.write(proto.OpDelete, &proto.DeleteRequest{Path: p, Version: -1}); r.Err != proto.ErrBadArguments {
			t.Fatalf("delete %s: %v", p, r.Err)
		}
	}
	if r := h.write(proto.OpCheck, &proto.CheckVersionRequest{Path: "/v", Version: 1}); r.Err != proto.ErrOK {
		t.Fatal(r.Err)
	}
	if r := h.write(proto.OpCheck, &proto.CheckVersionRequest{Path: "/v", Version: 0}); r.Err != proto.ErrBadVersion {
		t.Fatal(r.Err)
	}
}

func TestMultiLayoutAndRollback(t *testing.T) {
	h := newHarness(t)
	h.mustCreate("/m", proto.ModePersistent)
	before := snapshotBytes(t, h.s)
	req := &proto.MultiRequest{Ops: []proto.MultiOp{
		{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/m/a", Acl: proto.OpenACLUnsafe}},
		{Type: proto.OpSetData, Req: &proto.SetDataRequest{Path: "/m", Data: []byte("z"), Version: -1}},
		{Type: proto.OpCheck, Req: &proto.CheckVersionRequest{Path: "/m/a", Version: 7}},
		{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/m/a", Version: -1}},
	}}
	r := h.write(proto.OpMulti, req)
	if r.Err != proto.ErrOK || len(r.Changes) != 0 {
		t.Fatalf("multi header err %v, changes %v", r.Err, r.Changes)
	}
	got := r.Resp.(*proto.MultiResponse).Results
	want := []proto.MultiResult{
		{Type: proto.OpError, Err: proto.ErrOK},
		{Type: proto.OpError, Err: proto.ErrOK},
		{Type: proto.OpError, Err: proto.ErrBadVersion},
		{Type: proto.OpError, Err: proto.ErrRuntimeInconsistency},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("results %+v", got)
	}
	// Nothing happened except the zxid being consumed.
	after := snapshotBytes(t, h.s)
	if !bytes.Equal(before[16:], after[16:]) {
		t.Fatal("failed multi changed the tree")
	}

	req.Ops[2].Req = &proto.CheckVersionRequest{Path: "/m/a", Version: 0}
	req.Ops = append(req.Ops, proto.MultiOp{Type: proto.OpCreateContainer, Req: &proto.CreateRequest{Path: "/m/c", Acl: proto.OpenACLUnsafe, Flags: proto.ModeContainer}})
	r = h.write(proto.OpMulti, req)
	got = r.Resp.(*proto.MultiResponse).Results
	types := []proto.OpCode{}
	for _, g := range got {
		types = append(types, g.Type)
	}
	if !reflect.DeepEqual(types, []proto.OpCode{proto.OpCreate, proto.OpSetData, proto.OpCheck, proto.OpDelete, proto.OpCreate2}) {
		t.Fatalf("types %v", types)
	}
	st := got[4].Resp.(*proto.Create2Response).Stat
	if st.Czxid != h.zxid || st.EphemeralOwner != 0 || h.s.nodes["/m/c"].stat.EphemeralOwner != proto.ContainerOwner {
		t.Fatalf("container stat %+v", st)
	}
}

func TestACLs(t *testing.T) {
	h := newHarness(t)
	bob := digestID("bob", "secret")
	ip := proto.Id{Scheme: "ip", Id: "127.0.0.1"}
	r := h.write(proto.OpCreate, &proto.CreateRequest{Path: "/s", Acl: proto.CreatorAllACL}, ip, bob)
	if r.Err != proto.ErrOK {
		t.Fatal(r.Err)
	}
	acl, _ := h.s.Read(sess, []proto.Id{bob}, proto.OpGetACL, &proto.GetACLRequest{Path: "/s"})
	if got := acl.(*proto.GetACLResponse).Acl; !reflect.DeepEqual(got, []proto.ACL{{Perms: proto.PermAll, Id: bob}}) {
		t.Fatalf("acl %v", got)
	}
	if _, code := h.s.Read(sess, []proto.Id{ip}, proto.OpGetData, &proto.GetDataRequest{Path: "/s"}); code != proto.ErrNoAuth {
		t.Fatalf("getData without auth: %v", code)
	}
	if r := h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/s", Version: -1}, ip); r.Err != proto.ErrNoAuth {
		t.Fatalf("setData without auth: %v", r.Err)
	}
	if r := h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/s", Version: -1}, proto.Id{Scheme: "super"}); r.Err != proto.ErrOK {
		t.Fatalf("super: %v", r.Err)
	}
	// READ without ADMIN sees digest ids masked.
	if r := h.write(proto.OpSetACL, &proto.SetACLRequest{Path: "/s", Acl: []proto.ACL{{Perms: proto.PermRead, Id: proto.WorldAnyone}, {Perms: proto.PermAll, Id: bob}}, Version: 0}, bob); r.Err != proto.ErrOK {
		t.Fatalf("setACL: %v", r.Err)
	}
	acl, code := h.s.Read(sess, nil, proto.OpGetACL, &proto.GetACLRequest{Path: "/s"})
	if code != proto.ErrOK || acl.(*proto.GetACLResponse).Acl[1].Id.Id != "bob:x" || acl.(*proto.GetACLResponse).Stat.Aversion != 1 {
		t.Fatalf("masked acl %v %v", acl, code)
	}
	// ip ACLs match by prefix.
	h.mustCreate("/ipnode", proto.ModePersistent)
	h.write(proto.OpSetACL, &proto.SetACLRequest{Path: "/ipnode", Acl: []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "ip", Id: "127.0.0.0/8"}}}, Version: -1})
	if _, code := h.s.Read(sess, []proto.Id{ip}, proto.OpGetData, &proto.GetDataRequest{Path: "/ipnode"}); code != proto.ErrOK {
		t.Fatalf("ip match: %v", code)
	}
	if _, code := h.s.Read(sess, []proto.Id{{Scheme: "ip", Id: "10.0.0.1"}}, proto.OpGetData, &proto.GetDataRequest{Path: "/ipnode"}); code != proto.ErrNoAuth {
		t.Fatalf("ip mismatch: %v", code)
	}
}

func TestSessionsAndEphemerals(t *testing.T) {
	h := newHarness(t)
	h.mustCreate("/e1", proto.ModeEphemeral)
	p := h.mustCreate("/e-", proto.ModeEphemeralSequential)
	if st := h.stat("/e1"); st.EphemeralOwner != sess {
		t.Fatalf("owner %x", st.EphemeralOwner)
	}
	if got := h.s.Ephemerals(sess); !reflect.DeepEqual(got, []string{p, "/e1"}) {
		t.Fatalf("ephemerals %v", got)
	}
	r := h.apply(&Entry{Op: proto.OpCloseSession, Session: sess})
	if r.ClosedSession != sess || len(r.Changes) != 4 {
		t.Fatalf("close %+v", r)
	}
	if _, ok := h.s.Session(sess); ok {
		t.Fatal("session survived")
	}
	if r := h.create("/late", proto.ModePersistent); r.Err != proto.ErrSessionExpired {
		t.Fatalf("write after close: %v", r.Err)
	}
}

func TestContainerAndTTLCollection(t *testing.T) {
	h := newHarness(t)
	h.write(proto.OpCreateContainer, &proto.CreateRequest{Path: "/c", Acl: proto.OpenACLUnsafe, Flags: proto.ModeContainer})
	if got := h.s.GCCandidates(h.now, 10); len(got) != 0 {
		t.Fatalf("never-used container is a candidate: %v", got)
	}
	h.mustCreate("/c/x", proto.ModePersistent)
	h.write(proto.OpDelete, &proto.DeleteRequest{Path: "/c/x", Version: -1})
	h.write(proto.OpCreateTTL, &proto.CreateTTLRequest{Path: "/t", Acl: proto.OpenACLUnsafe, Flags: proto.ModePersistentWithTTL, Ttl: 500})
	if owner := h.s.nodes["/t"].stat.EphemeralOwner; !proto.IsTTLOwner(owner) || proto.TTLOf(owner) != 500 || h.stat("/t").EphemeralOwner != 0 {
		t.Fatalf("ttl owner %x", owner)
	}
	if got := h.s.GCCandidates(h.now+100, 10); !reflect.DeepEqual(got, []string{"/c"}) {
		t.Fatalf("candidates %v", got)
	}
	if got := h.s.GCCandidates(h.now+501, 10); !reflect.DeepEqual(got, []string{"/c", "/t"}) {
		t.Fatalf("candidates %v", got)
	}
	// Apply re-checks with the entry's time: too early is refused.
	if r := h.apply(&Entry{Op: proto.OpDeleteContainer, Body: []byte("/t"), Time: h.now + 100}); r.Err == proto.ErrOK {
		t.Fatal("TTL node deleted before its time")
	}
	for _, p := range []string{"/c", "/t"} {
		if r := h.apply(&Entry{Op: proto.OpDeleteContainer, Body: []byte(p), Time: h.now + 501}); r.Err != proto.ErrOK {
			t.Fatalf("gc %s: %v", p, r.Err)
		}
	}
	h.mustCreate("/plain", proto.ModePersistent)
	if r := h.apply(&Entry{Op: proto.OpDeleteContainer, Body: []byte("/plain"), Time: h.now}); r.Err == proto.ErrOK {
		t.Fatal("GC deleted a plain node")
	}
}

func TestChangesOrder(t *testing.T) {
	h := newHarness(t)
	r := h.create("/w", proto.ModePersistent)
	if !reflect.DeepEqual(r.Changes, []Change{{proto.EventNodeCreated, "/w", proto.OpenACLUnsafe}, {proto.EventNodeChildrenChanged, "/", proto.OpenACLUnsafe}}) {
		t.Fatalf("create changes %v", r.Changes)
	}
	r = h.write(proto.OpDelete, &proto.DeleteRequest{Path: "/w", Version: -1})
	if !reflect.DeepEqual(r.Changes, []Change{{proto.EventNodeDeleted, "/w", proto.OpenACLUnsafe}, {proto.EventNodeChildrenChanged, "/", proto.OpenACLUnsafe}}) {
		t.Fatalf("delete changes %v", r.Changes)
	}
}

func snapshotBytes(t *testing.T, s *State) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSnapshotRoundTripAndDeterminism(t *testing.T) {
	build := func() *harness {
		h := newHarness(t)
		h.session(0x200)
		h.mustCreate("/a", proto.ModePersistent)
		h.mustCreate("/a/b", proto.ModeEphemeral)
		h.mustCreate("/a/s-", proto.ModePersistentSequential)
		h.write(proto.OpCreateContainer, &proto.CreateRequest{Path: "/c", Acl: proto.OpenACLUnsafe, Flags: proto.ModeContainer})
		h.write(proto.OpCreate, &proto.CreateRequest{Path: "/acl", Acl: proto.CreatorAllACL}, digestID("u", "p"))
		h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: nil, Version: -1})
		return h
	}
	h1, h2 := build(), build()
	b1, b2 := snapshotBytes(t, h1.s), snapshotBytes(t, h2.s)
	if !bytes.Equal(b1, b2) {
		t.Fatal("same log, different snapshots")
	}
	s := New(Options{})
	if err := s.Restore(bytes.NewReader(b1)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, s), b1) {
		t.Fatal("restore+snapshot is not identity")
	}
	if s.Stats() != h1.s.Stats() || s.LastZxid() != h1.s.LastZxid() {
		t.Fatalf("stats %+v vs %+v", s.Stats(), h1.s.Stats())
	}
	if got := s.Ephemerals(sess); !reflect.DeepEqual(got, []string{"/a/b"}) {
		t.Fatalf("ephemerals after restore %v", got)
	}
	// Truncated snapshots are refused and leave a valid empty state.
	for _, n := range []int{0, 5, len(b1) / 2, len(b1) - 1} {
		s := New(Options{})
		if err := s.Restore(bytes.NewReader(b1[:n])); err == nil {
			t.Fatalf("truncated snapshot (%d bytes) accepted", n)
		}
		if s.Stats().NodeCount != 5 {
			t.Fatal("failed restore left a partial tree")
		}
	}
}

func FuzzRestore(f *testing.F) {
	h := newHarness(&testing.T{})
	h.mustCreate("/a", proto.ModePersistent)
	h.mustCreate("/a/e", proto.ModeEphemeral)
	var b bytes.Buffer
	_ = h.s.Snapshot(&b)
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New(Options{})
		if err := s.Restore(bytes.NewReader(data)); err != nil {
			return
		}
		// Whatever was accepted must snapshot again without error.
		var out bytes.Buffer
		if err := s.Snapshot(&out); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add((&Entry{Op: proto.OpCreate, Session: 1, Auth: []proto.Id{{Scheme: "ip", Id: "1.2.3.4"}}, Body: []byte{1, 2}}).Encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEntry(data)
		if err != nil {
			return
		}
		// A decoded entry applies without panicking.
		s := New(Options{ExtendedTypes: true})
		s.Apply(1, e)
	})
}

// A snapshot lists znodes in the order of a depth-first walk with children
// sorted by name (the order restore needs: parents first), including names
// that sort around '/' ("a-b", "a.b", "a!" sort before "a/x" bytewise).
func TestSnapshotOrderIsPreorder(t *testing.T) {
	h := newHarness(t)
	for _, p := range []string{"/a", "/a-b", "/a.b", "/a!", "/ab", "/a/x", "/a/x-y", "/a/x/z", "/a/!", "/b", "/b/a"} {
		h.mustCreate(p, proto.ModePersistent)
	}
	var walk func(path string, out []string) []string
	walk = func(path string, out []string) []string {
		out = append(out, path)
		kids, code := h.s.Read(sess, nil, proto.OpGetChildren, &proto.GetChildrenRequest{Path: path})
		if code != proto.ErrOK {
			t.Fatalf("children of %s: %v", path, code)
		}
		names := append([]string(nil), kids.(*proto.GetChildrenResponse).Children...)
		sort.Strings(names)
		for _, c := range names {
			cp := path + "/" + c
			if path == "/" {
				cp = "/" + c
			}
			out = walk(cp, out)
		}
		return out
	}
	want := walk("/", nil)
	d := proto.NewDecoder(snapshotBytes(t, h.s)[4:]) // after the magic
	d.Int()
	d.Long()
	for n := d.Int(); n > 0; n-- {
		d.Long()
		d.Int()
		d.Buffer()
	}
	var got []string
	for n := d.Long(); n > 0; n-- {
		got = append(got, d.String())
		d.Buffer()
		for a := d.Int(); a > 0; a-- {
			(&proto.ACL{}).Decode(d)
		}
		(&proto.StatPersisted{}).Decode(d)
	}
	if d.Err() != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot order\n got %v\nwant %v (%v)", got, want, d.Err())
	}
}

// A Capture written after more writes (creates, setData, setACL, deletes,
// a closed session) is the state as it was when captured.
func TestCaptureIsFrozen(t *testing.T) {
	h := newHarness(t)
	h.session(0x200)
	h.mustCreate("/a", proto.ModePersistent)
	h.mustCreate("/a/b", proto.ModePersistent)
	h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("one"), Version: -1})
	want := snapshotBytes(t, h.s)
	c := h.s.Capture()
	h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/a", Data: []byte("two"), Version: -1})
	h.write(proto.OpSetACL, &proto.SetACLRequest{Path: "/a", Acl: proto.ReadACLUnsafe, Version: -1})
	h.write(proto.OpDelete, &proto.DeleteRequest{Path: "/a/b", Version: -1})
	h.mustCreate("/c", proto.ModePersistent)
	h.apply(&Entry{Op: proto.OpCloseSession, Session: 0x200})
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatal("capture changed after it was taken")
	}
	if bytes.Equal(snapshotBytes(t, h.s), want) {
		t.Fatal("the state did not change (the test proves nothing)")
	}
}
