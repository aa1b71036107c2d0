package server

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// FuzzConnection sends arbitrary bytes to a live server, first as a
// handshake and then as requests of an established session. Whatever the
// bytes, the server must keep serving: a healthy client connects and
// reads afterwards. (A malformed frame may close its own connection only.)
func FuzzConnection(f *testing.F) {
	connect := proto.Marshal(&proto.ConnectRequest{TimeOut: 30000, Passwd: make([]byte, 16)})
	frame := func(b []byte) []byte { return binary.BigEndian.AppendUint32(nil, uint32(len(b))) }
	req := func(op proto.OpCode, r proto.Record) []byte {
		e := proto.NewEncoder(nil)
		(&proto.RequestHeader{Xid: 1, Type: int32(op)}).Encode(e)
		if r != nil {
			r.Encode(e)
		}
		return append(frame(e.Bytes()), e.Bytes()...)
	}
	f.Add(false, append(frame(connect), connect...))
	f.Add(true, req(proto.OpCreate, &proto.CreateRequest{Path: "/f", Acl: proto.OpenACLUnsafe}))
	f.Add(true, req(proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/f", Version: -1}}}}))
	f.Add(true, req(proto.OpSetWatches2, &proto.SetWatches2{DataWatches: []string{"/"}}))
	f.Add(false, []byte("ruok"))
	f.Add(true, []byte{0xff, 0xff, 0xff, 0xff})

	s := startServer(f, nil)
	addr := s.Addr().String()
	f.Fuzz(func(t *testing.T, established bool, data []byte) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if established {
			writeFrame(t, nc, connect)
			if _, err := readFrame(newReader(nc)); err != nil {
				t.Fatalf("handshake: %v", err)
			}
		}
		nc.SetDeadline(time.Now().Add(20 * time.Millisecond))
		nc.Write(data)
		buf := make([]byte, 4096)
		nc.Read(buf) // whatever comes back, if anything
		nc.Close()

		// The server still serves a well-behaved client.
		c := newRaw(t, addr)
		var resp proto.ExistsResponse
		if code := c.call(proto.OpExists, &proto.ExistsRequest{Path: "/"}, &resp); code != proto.ErrOK {
			t.Fatalf("server unhealthy after fuzz input: %v", code)
		}
		c.nc.Close()
	})
}
