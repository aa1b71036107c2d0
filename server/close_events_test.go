package server

import (
	"testing"

	"github.com/paddockhq/paddock/proto"
)

// A session's close deletes all its ephemerals; every watcher of each of
// them hears NodeDeleted, whatever the order the deletions run in.
func TestCloseSessionFiresEveryEphemeralWatch(t *testing.T) {
	s := startServer(t, nil)
	a, b := newRaw(t, s.Addr().String()), newRaw(t, s.Addr().String())
	if _, code := b.create("/p", nil, 0); code != proto.ErrOK {
		t.Fatal(code)
	}
	b.create("/p/c", nil, 0)
	if _, code := a.create("/p/c/x", nil, proto.ModeEphemeral); code != proto.ErrOK {
		t.Fatal(code)
	}
	a.create("/p/b-", nil, proto.ModeEphemeralSequential)
	for _, p := range []string{"/p/c/x", "/p/b-0000000001"} {
		if code := b.call(proto.OpExists, &proto.ExistsRequest{Path: p, Watch: true}, &proto.ExistsResponse{}); code != proto.ErrOK {
			t.Fatalf("exists %s: %v", p, code)
		}
	}
	if code := a.call(proto.OpCloseSession, nil, nil); code != proto.ErrOK {
		t.Fatal(code)
	}
	b.call(proto.OpExists, &proto.ExistsRequest{Path: "/p"}, &proto.ExistsResponse{})
	got := map[string]bool{}
	for _, ev := range b.takeEvents() {
		got[ev.Path] = ev.Type == int32(proto.EventNodeDeleted)
	}
	if !got["/p/c/x"] || !got["/p/b-0000000001"] {
		t.Fatalf("events %v", got)
	}
}

// A watch event goes only to connections that may READ the node; the watch
// is used up either way (ZooKeeper 3.8.4+, ServerCnxn.process).
func TestWatchEventsFilteredByACL(t *testing.T) {
	s := startServer(t, nil)
	owner, other := newRaw(t, s.Addr().String()), newRaw(t, s.Addr().String())
	if code := owner.call(proto.OpAuth, &proto.AuthPacket{Scheme: "digest", Auth: []byte("alice:pw")}, nil); code != proto.ErrOK {
		t.Fatalf("auth: %v", code)
	}
	acl := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "auth"}}}
	if code := owner.call(proto.OpCreate, &proto.CreateRequest{Path: "/secret", Acl: acl}, &proto.CreateResponse{}); code != proto.ErrOK {
		t.Fatal(code)
	}
	for _, c := range []*rawClient{owner, other} {
		if code := c.call(proto.OpExists, &proto.ExistsRequest{Path: "/secret", Watch: true}, &proto.ExistsResponse{}); code != proto.ErrOK {
			t.Fatal(code)
		}
	}
	if code := owner.call(proto.OpSetData, &proto.SetDataRequest{Path: "/secret", Data: []byte("x"), Version: -1}, &proto.SetDataResponse{}); code != proto.ErrOK {
		t.Fatal(code)
	}
	other.call(proto.OpExists, &proto.ExistsRequest{Path: "/"}, &proto.ExistsResponse{})
	if evs := owner.takeEvents(); len(evs) != 1 || evs[0].Path != "/secret" {
		t.Fatalf("owner events %v", evs)
	}
	if evs := other.takeEvents(); len(evs) != 0 {
		t.Fatalf("a connection without READ heard %v", evs)
	}
}
