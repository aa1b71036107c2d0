package zkdata

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine"
)

func TestJavaRandom(t *testing.T) {
	r := newJavaRandom(42)
	if a, b := r.nextInt(), r.nextInt(); a != -1170105035 || b != 234785527 {
		t.Fatalf("Random(42) ints = %d %d", a, b)
	}
	// Values printed by java.util.Random on OpenJDK 17 with
	// ZooKeeper's generatePasswd.
	for id, want := range map[int64]string{
		0x1000abcdef0012: "0b3f0f6e75262a333bc685a63cf20797",
		-5:               "d47144b5e45e45c49c3b7fdcd66257ba",
	} {
		if got := hex.EncodeToString(SessionPasswd(id)); got != want {
			t.Errorf("SessionPasswd(0x%x) = %s, want %s", id, got, want)
		}
	}
}

func TestSnapshotFormats(t *testing.T) {
	b := sampleSnapshot()
	plain := b.bytes()
	want, err := DecodeSnapshot(bytes.NewReader(plain), Plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Nodes) != 8 || want.Nodes[0].Path != "/" || len(want.Sessions) != 2 || want.Digest == nil || want.Digest.Digest != 0x1234 {
		t.Fatalf("decoded %+v", want)
	}
	concat := append(snappyJava(plain[:100], 7), snappyJava(plain[100:], 4096)[0:]...)
	for name, tc := range map[string]struct {
		data []byte
		c    Compression
	}{
		"gzip":          {gzipBytes(plain), Gzip},
		"snappy":        {snappyJava(plain, 7), Snappy},
		"snappy-concat": {concat, Snappy},
	} {
		got, err := DecodeSnapshot(bytes.NewReader(tc.data), tc.c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got.Compression = Plain
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded differently", name)
		}
	}
	// Trailers: none, a version-1 hex digest, and the 3.9 lastProcessedZxid.
	b.digest = nil
	if s, err := DecodeSnapshot(bytes.NewReader(b.bytes()), Plain); err != nil || s.Digest != nil {
		t.Fatalf("no trailer: %v %v", s, err)
	}
	b = sampleSnapshot()
	b.digest.Version, b.hexDig, b.lastZxid = 1, true, 99
	s, err := DecodeSnapshot(bytes.NewReader(b.bytes()), Plain)
	if err != nil || s.Digest.Digest != 0x1234 || s.LastProcessedZxid != 99 {
		t.Fatalf("trailers: %+v %v", s, err)
	}
}

func TestSnapshotDamage(t *testing.T) {
	plain := sampleSnapshot().bytes()
	cases := map[string]struct {
		data []byte
		want string
	}{
		"flipped":   {flip(plain, 60), "checksum mismatch"},
		"truncated": {plain[:len(plain)-30], "offset"},
		"magic":     {flip(plain, 0), "bad magic"},
		"empty":     {nil, "offset 0"},
	}
	for name, tc := range cases {
		_, err := DecodeSnapshot(bytes.NewReader(tc.data), Plain)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	if _, err := DecodeSnapshot(bytes.NewReader(snappyJava(plain, 64)[:90]), Snappy); err == nil {
		t.Error("truncated snappy stream accepted")
	}
	// A node naming an ACL that is not in the cache.
	b := sampleSnapshot()
	b.nodes[1].ACLID = 77
	if _, err := DecodeSnapshot(bytes.NewReader(b.bytes()), Plain); err == nil || !strings.Contains(err.Error(), "ACL id 77") {
		t.Errorf("unknown ACL: %v", err)
	}
	// A child before its parent.
	b = sampleSnapshot()
	b.nodes[1], b.nodes[2] = b.nodes[2], b.nodes[1]
	if _, err := DecodeSnapshot(bytes.NewReader(b.bytes()), Plain); err == nil || !strings.Contains(err.Error(), "before its parent") {
		t.Errorf("orphan: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x10
	return c
}

func hdr(op proto.OpCode, zxid, session int64) proto.TxnHeader {
	return proto.TxnHeader{ClientId: session, Cxid: 1, Zxid: zxid, Time: 5000 + zxid, Type: int32(op)}
}

var open = proto.OpenACLUnsafe

func TestDecodeTxnTypes(t *testing.T) {
	dig := &proto.TxnDigest{Version: 2, TreeDigest: 42}
	// CreateTxnV0: no parentCVersion.
	v0 := txnBytes(hdr(proto.OpCreate, 1, 9), &proto.CreateTxnV0{Path: "/a", Data: []byte("x"), Acl: open}, nil)
	txn, err := DecodeTxn(v0)
	if err != nil {
		t.Fatal(err)
	}
	if c := txn.Record.(*proto.CreateTxn); c.ParentCVersion != -1 || c.Path != "/a" {
		t.Fatalf("v0 create = %+v", c)
	}
	// Pre-3.6 closeSession: header only.
	txn, err = DecodeTxn(txnBytes(hdr(proto.OpCloseSession, 2, 9), nil, nil))
	if err != nil || txn.Record != nil {
		t.Fatalf("old closeSession: %+v %v", txn, err)
	}
	// A multi whose ErrorTxn sub-record is 550 bytes long.
	long := make([]byte, 550)
	long[3] = 0
	multi := &proto.MultiTxn{Txns: []proto.Txn{
		subTxn(proto.OpCreate, &proto.CreateTxn{Path: "/m", Acl: open, ParentCVersion: 1}),
		{Type: int32(proto.OpError), Data: long},
	}}
	txn, err = DecodeTxn(txnBytes(hdr(proto.OpMulti, 3, 9), multi, dig))
	if err != nil || len(txn.Sub) != 2 || txn.Sub[1].Type != proto.OpError || txn.Digest == nil || txn.Digest.TreeDigest != 42 {
		t.Fatalf("multi: %+v %v", txn, err)
	}
	for op, rec := range map[proto.OpCode]proto.Record{
		proto.OpCreate2:         &proto.CreateTxn{Path: "/b", Acl: open, ParentCVersion: 2},
		proto.OpCreateContainer: &proto.CreateContainerTxn{Path: "/c", Acl: open, ParentCVersion: 3},
		proto.OpDeleteContainer: &proto.DeleteTxn{Path: "/c"},
		proto.OpCreateTTL:       &proto.CreateTTLTxn{Path: "/t", Acl: open, ParentCVersion: 4, Ttl: 100},
		proto.OpReconfig:        &proto.SetDataTxn{Path: "/zookeeper/config", Data: []byte("server.1=x"), Version: 1},
		proto.OpSetACL:          &proto.SetACLTxn{Path: "/b", Acl: open, Version: 1},
		proto.OpCreateSession:   &proto.CreateSessionTxn{TimeOut: 3000},
		proto.OpCloseSession:    &proto.CloseSessionTxn{Paths2Delete: []string{"/e"}},
		proto.OpError:           &proto.ErrorTxn{Err: -101},
		proto.OpCheck:           &proto.CheckVersionTxn{Path: "/b", Version: 1},
	} {
		txn, err := DecodeTxn(txnBytes(hdr(op, 4, 9), rec, dig))
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if !reflect.DeepEqual(txn.Record, rec) || txn.Digest == nil {
			t.Errorf("%s: decoded %+v", op, txn.Record)
		}
	}
	if _, err := DecodeTxn(txnBytes(hdr(proto.OpCode(99), 4, 9), nil, nil)); err == nil {
		t.Error("unknown type accepted")
	}
	if _, err := DecodeTxn(txnBytes(hdr(proto.OpSetData, 4, 9), &proto.DeleteTxn{Path: "/x"}, nil)); err == nil {
		t.Error("short setData accepted")
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, path string) ([]*Txn, error) {
	t.Helper()
	lr, err := OpenLog(path)
	if err != nil {
		return nil, err
	}
	defer lr.Close()
	var out []*Txn
	for {
		txn, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, txn)
	}
}

func TestLogReader(t *testing.T) {
	dir := t.TempDir()
	t1 := txnBytes(hdr(proto.OpCreateSession, 1, 9), &proto.CreateSessionTxn{TimeOut: 3000}, nil)
	t2 := txnBytes(hdr(proto.OpSetData, 2, 9), &proto.SetDataTxn{Path: "/a", Data: []byte("x"), Version: 1}, nil)
	good := logBytes([][]byte{t1, t2}, 4096)
	p := filepath.Join(dir, "log.1")
	writeFile(t, p, good)
	txns, err := readAll(t, p)
	if err != nil || len(txns) != 2 || txns[1].Offset != 16+12+int64(len(t1))+1 {
		t.Fatalf("read %d txns (%v)", len(txns), err)
	}
	second := txns[1].Offset

	// Bad checksum in the second record.
	bad := append([]byte(nil), good...)
	bad[second+12+3] ^= 1
	writeFile(t, p, bad)
	if _, err := readAll(t, p); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s: offset %d: checksum mismatch", p, second)) {
		t.Fatalf("bad crc: %v", err)
	}
	// Truncated in the middle of the second record, no padding.
	writeFile(t, p, good[:second+15])
	if _, err := readAll(t, p); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("offset %d: torn record", second)) {
		t.Fatalf("truncated: %v", err)
	}
	lr, _ := OpenLog(p)
	lr.AllowTornTail = true
	if _, err := lr.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := lr.Next(); !errors.Is(err, io.EOF) || !lr.Torn {
		t.Fatalf("AllowTornTail: %v torn=%v", err, lr.Torn)
	}
	lr.Close()
	// Missing end-of-record marker.
	noB := append([]byte(nil), good...)
	noB[second+12+int64(len(t2))] = 'C'
	writeFile(t, p, noB)
	if _, err := readAll(t, p); err == nil || !strings.Contains(err.Error(), "0x42") {
		t.Fatalf("no B: %v", err)
	}
	// Bad header.
	writeFile(t, p, []byte("ZKSN0000"))
	if _, err := OpenLog(p); err == nil {
		t.Fatal("bad header accepted")
	}
}

// TestReplayTolerances replays txns over a fuzzy snapshot, checking each
// of DataTree.processTxn's replay rules.
func TestReplayTolerances(t *testing.T) {
	snap, err := DecodeSnapshot(bytes.NewReader(sampleSnapshot().bytes()), Plain)
	if err != nil {
		t.Fatal(err)
	}
	snap.Zxid = 4 // the snapshot already holds zxid 5 (fuzzy)
	tree, _ := treeFromSnapshot(snap)
	apply := func(op proto.OpCode, zxid, session int64, rec proto.Record, sub ...SubTxn) {
		tree.Apply(&Txn{Header: hdr(op, zxid, session), Record: rec, Sub: sub})
	}
	// zxid 5 created /app/ttl, already in the snapshot: NodeExists, and
	// the parent's cversion/pzxid are fixed up only forward.
	apply(proto.OpCreateTTL, 5, 0x100, &proto.CreateTTLTxn{Path: "/app/ttl", Acl: open, ParentCVersion: 3, Ttl: 60000})
	if tree.Tolerated[proto.ErrNodeExists] != 1 {
		t.Fatalf("tolerated %v", tree.Tolerated)
	}
	app := tree.get("/app")
	if app.stat.Cversion != 4 || app.stat.Pzxid != 6 {
		t.Fatalf("/app stat after replayed create: %+v", app.stat)
	}
	// A plain create meeting an existing node raises the parent's
	// cversion when the txn's is higher.
	apply(proto.OpCreate, 7, 0x100, &proto.CreateTxn{Path: "/app/cont", Acl: open, ParentCVersion: 9})
	if app.stat.Cversion != 9 || app.stat.Pzxid != 7 {
		t.Fatalf("/app stat after fix-up: %+v", app.stat)
	}
	// Delete of a node already gone: NoNode, but the parent's pzxid moves.
	apply(proto.OpDelete, 8, 0x100, &proto.DeleteTxn{Path: "/app/gone"})
	if app.stat.Pzxid != 8 || tree.Tolerated[proto.ErrNoNode] != 1 {
		t.Fatalf("delete of missing: %+v %v", app.stat, tree.Tolerated)
	}
	apply(proto.OpSetData, 9, 0x100, &proto.SetDataTxn{Path: "/nope", Version: 3})
	// A multi with an error sub-txn changes nothing.
	apply(proto.OpMulti, 10, 0x100, &proto.MultiTxn{},
		SubTxn{proto.OpCreate, &proto.CreateTxn{Path: "/app/m", Acl: open, ParentCVersion: 10}},
		SubTxn{proto.OpError, &proto.ErrorTxn{Err: int32(proto.ErrNoNode)}})
	if tree.get("/app/m") != nil {
		t.Fatal("failed multi applied")
	}
	// A committed multi: create + setData + delete, one zxid.
	apply(proto.OpMulti, 11, 0x100, &proto.MultiTxn{},
		SubTxn{proto.OpCreate, &proto.CreateTxn{Path: "/app/m", Data: []byte("m"), Acl: open, ParentCVersion: 10}},
		SubTxn{proto.OpSetData, &proto.SetDataTxn{Path: "/app", Data: []byte("new"), Version: 1}},
		SubTxn{proto.OpCheck, &proto.CheckVersionTxn{Path: "/app", Version: 1}},
		SubTxn{proto.OpDelete, &proto.DeleteTxn{Path: "/app/cont"}})
	if m := tree.get("/app/m"); m == nil || m.stat.Czxid != 11 || app.stat.Version != 1 || app.stat.Mzxid != 11 || tree.get("/app/cont") != nil {
		t.Fatalf("multi: /app %+v", app.stat)
	}
	// createSession, an ephemeral, then closeSession with paths2Delete.
	apply(proto.OpCreateSession, 12, 0x300, &proto.CreateSessionTxn{TimeOut: 5000})
	apply(proto.OpCreate2, 13, 0x300, &proto.CreateTxn{Path: "/app/e3", Acl: open, Ephemeral: true, ParentCVersion: 11})
	if e := tree.get("/app/e3"); e == nil || e.stat.EphemeralOwner != 0x300 {
		t.Fatal("ephemeral not created")
	}
	apply(proto.OpCloseSession, 14, 0x300, &proto.CloseSessionTxn{Paths2Delete: []string{"/app/e3"}})
	if tree.get("/app/e3") != nil || tree.sessions[0x300] != 0 {
		t.Fatal("closeSession left its ephemeral or session")
	}
	// Old-style closeSession (no body) of 0x200, which owns nothing.
	apply(proto.OpCloseSession, 15, 0x200, nil)
	// setACL, reconfig-as-setData, container delete.
	apply(proto.OpSetACL, 16, 0x100, &proto.SetACLTxn{Path: "/app", Acl: proto.ReadACLUnsafe, Version: 1})
	apply(proto.OpReconfig, 17, 0x100, &proto.SetDataTxn{Path: "/zookeeper/config", Data: []byte("cfg"), Version: 1})
	if app.stat.Aversion != 1 || !reflect.DeepEqual(app.acl, proto.ReadACLUnsafe) || string(tree.get("/zookeeper/config").data) != "cfg" {
		t.Fatal("setACL/reconfig not applied")
	}
	// Session 0x100 is dropped from the table: its ephemeral goes at load.
	delete(tree.sessions, 0x100)
	if n := tree.dropDeadSessions(); n != 1 || tree.get("/app/eph") != nil || app.stat.Pzxid != tree.LastZxid {
		t.Fatalf("dead sessions %d, /app %+v", n, app.stat)
	}
	if tree.LastZxid != 17 {
		t.Fatalf("LastZxid %d", tree.LastZxid)
	}
	// And the result loads into Paddock's state as is.
	res := &Result{Tree: tree}
	st, err := res.State(statemachine.Options{ExtendedTypes: true})
	if err != nil {
		t.Fatal(err)
	}
	n, ok := st.Node("/app")
	if !ok || n.Persisted != app.stat || string(n.Data) != "new" || st.LastZxid() != 17 {
		t.Fatalf("state node %+v", n)
	}
	if ttl, _ := st.Node("/app/ttl"); ttl.Persisted.EphemeralOwner != proto.TTLOwner(60000) || ttl.Stat.EphemeralOwner != 0 {
		t.Fatalf("ttl node %+v", ttl)
	}
}

func TestLogSelection(t *testing.T) {
	logs := []LogFile{{Zxid: 1}, {Zxid: 100}, {Zxid: 200}, {Zxid: 300}}
	for snap, first := range map[int64]int64{0: 1, 1: 1, 150: 100, 200: 200, 250: 200, 999: 300} {
		if got := logsFrom(logs, snap); got[0].Zxid != first {
			t.Errorf("snapshot %d: starts at log %d, want %d", snap, got[0].Zxid, first)
		}
	}
	for name, ok := range map[string]bool{"log.1a": true, "log.": false, "log.xyz": false, "snapshot.1": false, "log.1.gz": false} {
		if _, got := ParseLogName(name); got != ok {
			t.Errorf("ParseLogName(%q) = %v", name, got)
		}
	}
	for name, c := range map[string]Compression{"snapshot.0": Plain, "snapshot.1f.gz": Gzip, "snapshot.1f.snappy": Snappy} {
		if _, got, ok := ParseSnapshotName(name); !ok || got != c {
			t.Errorf("ParseSnapshotName(%q) = %v %v", name, got, ok)
		}
	}
}

// TestRestoreDir restores a synthetic data directory: an unreadable newest
// snapshot, an older good one, and logs that straddle it.
func TestRestoreDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "version-2")
	os.MkdirAll(dir, 0o755)
	writeFile(t, filepath.Join(dir, "snapshot.4"), sampleSnapshot().bytes())
	writeFile(t, filepath.Join(dir, "snapshot.9.gz"), []byte("not gzip"))
	writeFile(t, filepath.Join(dir, "log.1"), logBytes([][]byte{
		txnBytes(hdr(proto.OpCreate, 3, 0x100), &proto.CreateTxn{Path: "/app", Acl: open, ParentCVersion: 1}, nil),
		txnBytes(hdr(proto.OpSetData, 6, 0x100), &proto.SetDataTxn{Path: "/app", Data: []byte("six"), Version: 1}, nil),
	}, 100))
	writeFile(t, filepath.Join(dir, "log.7"), logBytes([][]byte{
		txnBytes(hdr(proto.OpCloseSession, 7, 0x100), &proto.CloseSessionTxn{Paths2Delete: []string{"/app/eph"}}, nil),
	}, 0))
	var warned []string
	res, err := Restore(RestoreOptions{SnapDir: filepath.Dir(dir), Warn: func(m string) { warned = append(warned, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Snapshot.Zxid != 4 || len(res.SkippedSnapshots) != 1 || len(warned) != 1 || res.Txns != 2 || res.FilesRead != 3 {
		t.Fatalf("result %+v", res)
	}
	if n := res.Tree.get("/app"); string(n.data) != "six" || res.Tree.get("/app/eph") != nil || len(res.Tree.Sessions()) != 1 {
		t.Fatalf("tree: /app %q, sessions %v", n.data, res.Tree.Sessions())
	}
	// Import refuses a non-empty target and leaves it alone.
	to := t.TempDir()
	writeFile(t, filepath.Join(to, "keep"), []byte("x"))
	if _, err := Import(ImportOptions{RestoreOptions: RestoreOptions{SnapDir: dir}, To: to}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty target: %v", err)
	}
	// An import, exported offline, equals the restored tree.
	to = filepath.Join(t.TempDir(), "p")
	sum, err := Import(ImportOptions{RestoreOptions: RestoreOptions{SnapDir: dir}, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Zxid != 7 || sum.Sessions != 1 {
		t.Fatalf("summary %+v", sum)
	}
	st, err := LoadDataDir(to)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := res.State(statemachine.Options{})
	var a, b bytes.Buffer
	ExportState(&a, want)
	ExportState(&b, st)
	if a.String() != b.String() || st.LastZxid() != 7 {
		t.Fatalf("export differs:\n%s\n---\n%s", a.String(), b.String())
	}
	if !strings.Contains(a.String(), `{"path":"/app","data":"c2l4","acl":[{"perms":31,"scheme":"digest","id":"alice:abc="}],"stat":{"czxid":2,`) {
		t.Fatalf("export format:\n%s", a.String())
	}
}
