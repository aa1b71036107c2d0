package zkdata

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/adler32"

	"github.com/golang/snappy"

	"github.com/paddockhq/paddock/proto"
)

// Builders of ZooKeeper files for tests, written from the format
// description (see doc.go), independent of the readers.

type snapBuilder struct {
	sessions []Session
	acls     map[int64][]proto.ACL
	aclOrder []int64
	nodes    []SnapNode // the root's path is ""
	digest   *ZxidDigest
	hexDig   bool // write the digest as a version-1 hex string
	lastZxid int64
}

func (b *snapBuilder) bytes() []byte {
	e := proto.NewEncoder(nil)
	(&proto.FileHeader{Magic: SnapMagic, Version: 2, Dbid: 0}).Encode(e)
	e.Int(int32(len(b.sessions)))
	for _, s := range b.sessions {
		e.Long(s.ID)
		e.Int(s.Timeout)
	}
	e.Int(int32(len(b.aclOrder)))
	for _, id := range b.aclOrder {
		e.Long(id)
		acl := b.acls[id]
		e.Int(int32(len(acl)))
		for i := range acl {
			acl[i].Encode(e)
		}
	}
	for _, n := range b.nodes {
		e.String(n.Path)
		e.Buffer(n.Data)
		e.Long(n.ACLID)
		n.Stat.Encode(e)
	}
	e.String("/")
	seal := func() {
		e.Long(int64(adler32.Checksum(e.Bytes())))
		e.String("/")
	}
	seal()
	if b.digest != nil {
		e.Long(b.digest.Zxid)
		e.Int(b.digest.Version)
		if b.hexDig {
			e.String(fmtHex(b.digest.Digest))
		} else {
			e.Long(b.digest.Digest)
		}
		seal()
		if b.lastZxid != 0 {
			e.Long(b.lastZxid)
			seal()
		}
	}
	return e.Bytes()
}

func fmtHex(v int64) string {
	const digits = "0123456789abcdef"
	u := uint64(v)
	if u == 0 {
		return "0"
	}
	var out []byte
	for u > 0 {
		out = append([]byte{digits[u&15]}, out...)
		u >>= 4
	}
	return string(out)
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// snappyJava frames b as snappy-java's SnappyOutputStream does, in blocks
// of blockSize.
func snappyJava(b []byte, blockSize int) []byte {
	out := append([]byte(nil), snappyMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(b) > 0 {
		n := min(blockSize, len(b))
		c := snappy.Encode(nil, b[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(c)))
		out = append(out, c...)
		b = b[n:]
	}
	return out
}

// txnBytes encodes one txn: header, record, optional digest.
func txnBytes(h proto.TxnHeader, rec proto.Record, digest *proto.TxnDigest) []byte {
	e := proto.NewEncoder(nil)
	h.Encode(e)
	if rec != nil {
		rec.Encode(e)
	}
	if digest != nil {
		digest.Encode(e)
	}
	return e.Bytes()
}

// logBytes builds a log file: header, records, then pad zero bytes.
func logBytes(txns [][]byte, pad int) []byte {
	e := proto.NewEncoder(nil)
	(&proto.FileHeader{Magic: LogMagic, Version: 2, Dbid: 0}).Encode(e)
	for _, t := range txns {
		e.Long(int64(adler32.Checksum(t)))
		e.Buffer(t)
		e.Raw([]byte{'B'})
	}
	e.Raw(make([]byte, pad))
	return e.Bytes()
}

func subTxn(op proto.OpCode, rec proto.Record) proto.Txn {
	return proto.Txn{Type: int32(op), Data: proto.Marshal(rec)}
}

// sampleSnapshot is a small snapshot with a session, an ephemeral, a
// digest ACL, a container and a TTL node.
func sampleSnapshot() *snapBuilder {
	digest := []proto.ACL{{Perms: proto.PermAll, Id: proto.Id{Scheme: "digest", Id: "alice:abc="}}}
	st := func(z int64) proto.StatPersisted {
		return proto.StatPersisted{Czxid: z, Mzxid: z, Pzxid: z, Ctime: 1000 + z, Mtime: 1000 + z}
	}
	root := st(0)
	root.Cversion, root.Pzxid = 3, 5
	app := st(2)
	app.Cversion, app.Pzxid = 4, 6
	eph := st(3)
	eph.EphemeralOwner = 0x100
	cont := st(4)
	cont.EphemeralOwner = proto.ContainerOwner
	ttl := st(5)
	ttl.EphemeralOwner = proto.TTLOwner(60000)
	zk := st(0)
	zk.Cversion = 0
	return &snapBuilder{
		sessions: []Session{{ID: 0x100, Timeout: 30000}, {ID: 0x200, Timeout: 10000}},
		acls:     map[int64][]proto.ACL{1: proto.OpenACLUnsafe, 2: digest, 3: proto.ReadACLUnsafe},
		aclOrder: []int64{1, 2, 3},
		nodes: []SnapNode{
			{Path: "", Data: []byte{}, ACLID: -1, Stat: root},
			{Path: "/app", Data: []byte("app"), ACLID: 2, Stat: app},
			{Path: "/app/eph", Data: nil, ACLID: 1, Stat: eph},
			{Path: "/app/cont", Data: []byte("c"), ACLID: 1, Stat: cont},
			{Path: "/app/ttl", Data: []byte("t"), ACLID: 1, Stat: ttl},
			{Path: "/zookeeper", Data: []byte{}, ACLID: 1, Stat: zk},
			{Path: "/zookeeper/config", Data: []byte{}, ACLID: 3, Stat: proto.StatPersisted{Aversion: -1}},
			{Path: "/zookeeper/quota", Data: []byte{}, ACLID: 1, Stat: zk},
		},
		digest: &ZxidDigest{Zxid: 5, Version: 2, Digest: 0x1234},
	}
}
