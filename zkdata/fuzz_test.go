package zkdata

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/statemachine"
)

// FuzzSnapshotReader feeds arbitrary bytes to the snapshot decoder in each
// stream format. It must never panic or allocate without bound; whatever
// it accepts must be a tree that loads into Paddock's state.
func FuzzSnapshotReader(f *testing.F) {
	plain := sampleSnapshot().bytes()
	f.Add(plain, byte(Plain))
	f.Add(gzipBytes(plain), byte(Gzip))
	f.Add(snappyJava(plain, 64), byte(Snappy))
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		c := Compression(mode % 3)
		snap, err := DecodeSnapshot(bytes.NewReader(data), c)
		if err != nil {
			var oe *OffsetError
			if !errors.As(err, &oe) {
				t.Fatalf("error without offset: %v", err)
			}
			return
		}
		tree, err := treeFromSnapshot(snap)
		if err != nil {
			return
		}
		tree.dropDeadSessions()
		if _, err := (&Result{Tree: tree}).State(statemachine.Options{ExtendedTypes: true}); err != nil {
			// Paths Paddock refuses (e.g. reserved names) are an
			// import error, never a panic.
			return
		}
	})
}

// FuzzTxnLogReader feeds arbitrary bytes to the transaction log reader and
// replays whatever it reads. Errors must name the file and an offset
// inside it.
func FuzzTxnLogReader(f *testing.F) {
	t1 := txnBytes(hdr(proto.OpCreateSession, 1, 9), &proto.CreateSessionTxn{TimeOut: 3000}, nil)
	t2 := txnBytes(hdr(proto.OpCreate, 2, 9), &proto.CreateTxn{Path: "/a", Data: []byte("x"), Acl: open, Ephemeral: true, ParentCVersion: 1}, &proto.TxnDigest{Version: 2, TreeDigest: 7})
	t3 := txnBytes(hdr(proto.OpMulti, 3, 9), &proto.MultiTxn{Txns: []proto.Txn{
		subTxn(proto.OpSetData, &proto.SetDataTxn{Path: "/a", Data: []byte("y"), Version: 1}),
		subTxn(proto.OpDelete, &proto.DeleteTxn{Path: "/a"}),
	}}, nil)
	t4 := txnBytes(hdr(proto.OpCloseSession, 4, 9), nil, nil)
	good := logBytes([][]byte{t1, t2, t3, t4}, 64)
	f.Add(good)
	f.Add(good[:len(good)-80])
	f.Add(logBytes(nil, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		lr, err := NewLogReader(bytes.NewReader(data), "log.1", int64(len(data)))
		if err != nil {
			return
		}
		snap, _ := DecodeSnapshot(bytes.NewReader(sampleSnapshot().bytes()), Plain)
		tree, _ := treeFromSnapshot(snap)
		last := int64(-1)
		for {
			txn, err := lr.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				var le *LogError
				if !errors.As(err, &le) || le.Offset < 16 || le.Offset > int64(len(data)) || le.File != "log.1" {
					t.Fatalf("bad error %v", err)
				}
				return
			}
			if txn.Offset <= last {
				t.Fatalf("offset went back: %d after %d", txn.Offset, last)
			}
			last = txn.Offset
			tree.Apply(txn)
		}
	})
}

// TestWriteFuzzCorpus regenerates the committed seed corpus under
// testdata/fuzz when ZKDATA_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("ZKDATA_WRITE_CORPUS") != "1" {
		t.Skip("set ZKDATA_WRITE_CORPUS=1 to regenerate")
	}
	plain := sampleSnapshot().bytes()
	write := func(target, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case byte:
				fmt.Fprintf(&b, "byte(%q)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("FuzzSnapshotReader", "plain", plain, byte(Plain))
	write("FuzzSnapshotReader", "gzip", gzipBytes(plain), byte(Gzip))
	write("FuzzSnapshotReader", "snappy", snappyJava(plain, 64), byte(Snappy))
	write("FuzzSnapshotReader", "bad-seal", flip(plain, len(plain)/2), byte(Plain))
	write("FuzzSnapshotReader", "truncated", plain[:len(plain)/3], byte(Plain))
	b := sampleSnapshot()
	b.digest.Version, b.hexDig, b.lastZxid = 1, true, 99
	write("FuzzSnapshotReader", "trailers", b.bytes(), byte(Plain))

	t1 := txnBytes(hdr(proto.OpCreateSession, 1, 9), &proto.CreateSessionTxn{TimeOut: 3000}, nil)
	t2 := txnBytes(hdr(proto.OpCreate, 2, 9), &proto.CreateTxnV0{Path: "/a", Acl: open, Ephemeral: true}, nil)
	t3 := txnBytes(hdr(proto.OpMulti, 3, 9), &proto.MultiTxn{Txns: []proto.Txn{
		subTxn(proto.OpCreateContainer, &proto.CreateContainerTxn{Path: "/c", Acl: open, ParentCVersion: 2}),
		{Type: int32(proto.OpError), Data: make([]byte, 550)},
	}}, &proto.TxnDigest{Version: 2, TreeDigest: 1})
	t4 := txnBytes(hdr(proto.OpCreateTTL, 4, 9), &proto.CreateTTLTxn{Path: "/t", Acl: open, ParentCVersion: 3, Ttl: 1000}, nil)
	t5 := txnBytes(hdr(proto.OpCloseSession, 5, 9), &proto.CloseSessionTxn{Paths2Delete: []string{"/a"}}, nil)
	good := logBytes([][]byte{t1, t2, t3, t4, t5}, 64)
	write("FuzzTxnLogReader", "valid", good)
	write("FuzzTxnLogReader", "torn", good[:len(good)-90])
	write("FuzzTxnLogReader", "bad-crc", flip(good, 40))
	write("FuzzTxnLogReader", "header-only", logBytes(nil, 0))
	write("FuzzTxnLogReader", "huge-length", append(logBytes(nil, 0), 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff))
}
