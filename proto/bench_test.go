package proto

import "testing"

// BenchmarkEncodeCreate measures encoding a typical create request.
func BenchmarkEncodeCreate(b *testing.B) {
	req := &CreateRequest{Path: "/app/locks/lock-0000000042", Data: make([]byte, 100), Acl: OpenACLUnsafe}
	e := NewEncoder(make([]byte, 0, 256))
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		(&RequestHeader{Xid: 1, Type: int32(OpCreate)}).Encode(e)
		req.Encode(e)
	}
}

// BenchmarkDecodeCreate measures decoding it, as the server does per request.
func BenchmarkDecodeCreate(b *testing.B) {
	buf := Marshal(&CreateRequest{Path: "/app/locks/lock-0000000042", Data: make([]byte, 100), Acl: OpenACLUnsafe})
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		var r CreateRequest
		if err := Unmarshal(buf, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeGetDataResponse measures the hot read reply.
func BenchmarkEncodeGetDataResponse(b *testing.B) {
	resp := &GetDataResponse{Data: make([]byte, 100), Stat: Stat{Czxid: 1, Mzxid: 2}}
	e := NewEncoder(make([]byte, 0, 256))
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		(&ReplyHeader{Xid: 1, Zxid: 2}).Encode(e)
		resp.Encode(e)
	}
}
