package statemachine

import (
	"bytes"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

func TestLoader(t *testing.T) {
	l := NewLoader(Options{ExtendedTypes: true})
	if err := l.LoadSession(0x42, 30000, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	digest := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "digest", Id: "u:h"}}}
	root := proto.StatPersisted{Cversion: 7, Pzxid: 9}
	app := proto.StatPersisted{Czxid: 2, Mzxid: 8, Pzxid: 6, Ctime: 10, Mtime: 20, Version: 3, Cversion: 5, Aversion: 2}
	eph := proto.StatPersisted{Czxid: 6, Mzxid: 6, Pzxid: 6, EphemeralOwner: 0x42}
	cont := proto.StatPersisted{Czxid: 5, Mzxid: 5, Pzxid: 5, EphemeralOwner: proto.ContainerOwner}
	for _, n := range []struct {
		path string
		data []byte
		acl  []proto.ACL
		st   proto.StatPersisted
	}{
		{"/", []byte{}, proto.OpenACLUnsafe, root},
		{"/app", []byte("data"), digest, app},
		{"/app/eph", nil, proto.OpenACLUnsafe, eph},
		{"/app/cont", []byte("c"), proto.OpenACLUnsafe, cont},
	} {
		if err := l.LoadNode(n.path, n.data, n.acl, n.st); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"/x/y", "/app", "bad"} {
		if err := l.LoadNode(bad, nil, proto.OpenACLUnsafe, proto.StatPersisted{}); err == nil {
			t.Errorf("LoadNode(%q) accepted", bad)
		}
	}
	if err := l.LoadNode("/orphan-eph", nil, proto.OpenACLUnsafe, proto.StatPersisted{EphemeralOwner: 0x99}); err == nil {
		t.Error("ephemeral of an unknown session accepted")
	}
	s, err := l.Finish(0x100000009)
	if err != nil {
		t.Fatal(err)
	}
	if s.LastZxid() != 0x100000009 {
		t.Fatalf("LastZxid %x", s.LastZxid())
	}
	n, ok := s.Node("/app")
	if !ok || n.Persisted != app || string(n.Data) != "data" || n.ACL[0] != digest[0] {
		t.Fatalf("/app = %+v", n)
	}
	// Clients see cversion as changes: 2*5 creations - 2 children.
	if n.Stat.Cversion != 8 || n.Stat.NumChildren != 2 || n.Stat.DataLength != 4 {
		t.Fatalf("/app wire stat %+v", n.Stat)
	}
	if _, ok := s.Node(proto.ConfigPath); !ok {
		t.Fatal("system nodes not added")
	}
	if got := s.Ephemerals(0x42); len(got) != 1 || got[0] != "/app/eph" {
		t.Fatalf("ephemerals %v", got)
	}
	if got := s.GCCandidates(1<<40, 10); len(got) != 0 {
		t.Fatalf("GC candidates %v (the container has children? no: cversion 0)", got)
	}
	// Snapshot and Restore round trip.
	var a, b bytes.Buffer
	if err := s.Snapshot(&a); err != nil {
		t.Fatal(err)
	}
	s2 := New(Options{})
	if err := s2.Restore(bytes.NewReader(a.Bytes())); err != nil {
		t.Fatal(err)
	}
	s2.Snapshot(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("snapshot of the loaded state does not round-trip")
	}
	if _, err := l.Finish(1); err == nil || !strings.Contains(err.Error(), "finished") {
		t.Fatalf("second Finish: %v", err)
	}
}
