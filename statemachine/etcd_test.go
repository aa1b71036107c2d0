package statemachine

import (
	"bytes"
	"encoding/binary"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	gproto "google.golang.org/protobuf/proto"

	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

func TestEtcdEntriesAndSnapshot(t *testing.T) {
	s := New(Options{})
	b, _ := gproto.Marshal(&pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
	res := s.Apply(5, &Entry{Op: OpEtcdPut, Body: b})
	if res.Etcd == nil || res.Etcd.Err != nil || !res.Etcd.Changed || res.Etcd.Rev != 5 {
		t.Fatalf("put: %+v", res.Etcd)
	}
	// A ZooKeeper-side entry does not move the etcd revision.
	s.Apply(6, &Entry{Op: OpTouchSessions})
	if s.Etcd().Rev() != 5 || s.LastZxid() != 6 {
		t.Fatalf("rev %d zxid %d", s.Etcd().Rev(), s.LastZxid())
	}
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r := New(Options{})
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	got, err := r.Etcd().Range(&pb.RangeRequest{Key: []byte("k")})
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v" || got.Header.Revision != 5 {
		t.Fatalf("restored: %v %+v", err, got)
	}
}

// A version 1 snapshot (before the etcd keyspace) still loads, with an
// empty keyspace.
func TestSnapshotV1StillReads(t *testing.T) {
	s := New(Options{})
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	v2 := buf.Bytes()
	// Strip the (empty) etcd section: "PDKV" + rev, compactRev, key count
	// (longs) + lease count (int), just before "PDND".
	section := 4 + 8 + 8 + 8 + 4
	end := len(v2) - 4
	v1 := append([]byte(nil), v2[:end-section]...)
	v1 = append(v1, v2[end:]...)
	binary.BigEndian.PutUint32(v1[4:8], 1)
	r := New(Options{})
	if err := r.Restore(bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	if r.Etcd() == nil || r.Etcd().Rev() != 1 || len(r.SortedPaths()) != len(s.SortedPaths()) {
		t.Fatal("v1 snapshot not restored")
	}
}

// A version 2 snapshot (leases without their last renewal) still loads:
// the renewal reads as 0, so any expiry applies to such a lease until it
// is renewed again.
func TestSnapshotV2StillReads(t *testing.T) {
	s := New(Options{})
	b, _ := gproto.Marshal(&pb.LeaseGrantRequest{ID: 7, TTL: 5})
	if res := s.Apply(5, &Entry{Op: OpEtcdLeaseGrant, Body: b}); res.Etcd == nil || res.Etcd.Err != nil {
		t.Fatalf("grant: %+v", res.Etcd)
	}
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	v3 := buf.Bytes()
	// The lease is last in the etcd section: id, ttl, renewed (longs),
	// just before "PDND". Version 2 had no renewed.
	end := len(v3) - 4
	v2 := append([]byte(nil), v3[:end-8]...)
	v2 = append(v2, v3[end:]...)
	binary.BigEndian.PutUint32(v2[4:8], 2)
	r := New(Options{})
	if err := r.Restore(bytes.NewReader(v2)); err != nil {
		t.Fatal(err)
	}
	ls := r.Etcd().Leases()
	if len(ls) != 1 || ls[0].ID != 7 || ls[0].TTL != 5 || ls[0].Renewed != 0 {
		t.Fatalf("v2 leases: %+v", ls)
	}
	if got := s.Etcd().Leases(); len(got) != 1 || got[0].Renewed != 5 {
		t.Fatalf("v3 leases: %+v", got)
	}
	if res := r.Apply(6, &Entry{Op: OpEtcdLeaseExpire, Body: etcdkv.ExpireBody(7, 0)}); res.Etcd.Revoked != 7 {
		t.Fatalf("expiry after a v2 restore: %+v", res.Etcd)
	}
}
