package proto

import (
	"bytes"
	"reflect"
	"testing"
)

func TestPrimitives(t *testing.T) {
	var e Encoder
	e.Int(-2)
	e.Long(1 << 40)
	e.Bool(true)
	e.Buffer(nil)
	e.Buffer([]byte{})
	e.String("é/x")
	e.Strings([]string{"a", ""})
	want := []byte{
		0xff, 0xff, 0xff, 0xfe,
		0, 0, 1, 0, 0, 0, 0, 0,
		1,
		0xff, 0xff, 0xff, 0xff,
		0, 0, 0, 0,
		0, 0, 0, 4, 0xc3, 0xa9, '/', 'x',
		0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 0,
	}
	if !bytes.Equal(e.Bytes(), want) {
		t.Fatalf("got % x", e.Bytes())
	}
	d := NewDecoder(want)
	if d.Int() != -2 || d.Long() != 1<<40 || !d.Bool() || d.Buffer() != nil {
		t.Fatal("decode mismatch")
	}
	if b := d.Buffer(); b == nil || len(b) != 0 {
		t.Fatal("empty buffer must decode as empty, not nil")
	}
	if d.String() != "é/x" || !reflect.DeepEqual(d.Strings(), []string{"a", ""}) || d.Err() != nil || d.Remaining() != 0 {
		t.Fatal("decode mismatch")
	}
}

func TestDecoderRejectsHostileLengths(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		read func(d *Decoder)
	}{
		{"short int", []byte{1, 2}, func(d *Decoder) { d.Int() }},
		{"buffer past end", []byte{0, 0, 0, 9, 1}, func(d *Decoder) { d.Buffer() }},
		{"negative buffer", []byte{0xff, 0xff, 0xff, 0xf0}, func(d *Decoder) { d.Buffer() }},
		{"huge vector", []byte{0x7f, 0xff, 0xff, 0xff}, func(d *Decoder) { d.Strings() }},
		{"bad utf8", []byte{0, 0, 0, 1, 0xff}, func(d *Decoder) { _ = d.String() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.in)
			tc.read(d)
			if d.Err() == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	recs := []Record{
		&Stat{Czxid: 1, Mzxid: 2, Ctime: 3, Mtime: 4, Version: 5, Cversion: 6, Aversion: 7, EphemeralOwner: 8, DataLength: 9, NumChildren: 10, Pzxid: 11},
		&CreateRequest{Path: "/a", Data: []byte("x"), Acl: OpenACLUnsafe, Flags: 3},
		&SetWatches2{RelativeZxid: 9, DataWatches: []string{"/a"}, PersistentRecursiveWatches: []string{"/b"}},
		&MultiRequest{Ops: []MultiOp{
			{Type: OpCreate, Req: &CreateRequest{Path: "/a", Acl: OpenACLUnsafe}},
			{Type: OpCreateTTL, Req: &CreateTTLRequest{Path: "/t", Acl: OpenACLUnsafe, Flags: 5, Ttl: 10}},
			{Type: OpDelete, Req: &DeleteRequest{Path: "/a", Version: -1}},
			{Type: OpCheck, Req: &CheckVersionRequest{Path: "/a", Version: 1}},
		}},
		&MultiResponse{Results: []MultiResult{
			{Type: OpCreate, Resp: &CreateResponse{Path: "/a"}},
			{Type: OpCreate2, Resp: &Create2Response{Path: "/b", Stat: Stat{Version: 1}}},
			{Type: OpDelete},
			{Type: OpError, Err: ErrNoNode},
		}},
	}
	for _, r := range recs {
		b := Marshal(r)
		out := reflect.New(reflect.TypeOf(r).Elem()).Interface().(Record)
		if err := Unmarshal(b, out); err != nil {
			t.Fatalf("%T: %v", r, err)
		}
		if !reflect.DeepEqual(normalize(r), normalize(out)) {
			t.Fatalf("%T round trip:\n%+v\n%+v", r, r, out)
		}
	}
}

// normalize turns nil vectors into empty ones: we always write vectors as
// non-null, so they come back empty.
func normalize(r Record) Record {
	if w, ok := r.(*SetWatches2); ok {
		c := *w
		for _, v := range []*[]string{&c.DataWatches, &c.ExistWatches, &c.ChildWatches, &c.PersistentWatches, &c.PersistentRecursiveWatches} {
			if *v == nil {
				*v = []string{}
			}
		}
		return &c
	}
	return r
}

func TestMultiErrorLayout(t *testing.T) {
	// An error result carries its code in the header and in an ErrorResponse.
	b := Marshal(&MultiResponse{Results: []MultiResult{{Type: OpError, Err: ErrBadVersion}}})
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x99, // header {-1, false, -103}
		0xff, 0xff, 0xff, 0x99, // ErrorResponse{-103}
		0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff, // {-1, true, -1}
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x", b)
	}
}

func TestConnectRequestLegacy(t *testing.T) {
	full := ConnectRequest{LastZxidSeen: 5, TimeOut: 3000, SessionId: 7, Passwd: make([]byte, 16), ReadOnly: true}
	b := Marshal(&full)
	if len(b) != 45 {
		t.Fatalf("connect request is %d bytes", len(b))
	}
	got, legacy, err := DecodeConnectRequest(b)
	if err != nil || legacy || !reflect.DeepEqual(got, full) {
		t.Fatalf("%+v %v %v", got, legacy, err)
	}
	got, legacy, err = DecodeConnectRequest(b[:44])
	if err != nil || !legacy || got.ReadOnly {
		t.Fatalf("legacy: %+v %v %v", got, legacy, err)
	}
	var e Encoder
	EncodeConnectResponse(&e, &ConnectResponse{TimeOut: 1, Passwd: make([]byte, 16)}, true)
	if e.Len() != 36 {
		t.Fatalf("legacy response %d bytes", e.Len())
	}
}

func TestValidatePath(t *testing.T) {
	good := []string{"/", "/a", "/a/b", "/a.b", "/..a", "/a/...", "/é", "/zookeeper"}
	bad := []string{"", "a", "/a/", "//", "/a//b", "/.", "/..", "/a/./b", "/a/../b", "/a\x00", "/a\x01", "/\u007f", "/\ue000", "/\U0001F600", "/\ufff0"}
	for _, p := range good {
		if err := ValidatePath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range bad {
		if ValidatePath(p) == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestErrCodeNames(t *testing.T) {
	if ErrNoNode.String() != "NoNode" || OpCreate2.String() != "create2" || ErrCode(-999).String() != "ErrCode(-999)" {
		t.Fatal("names")
	}
}

// requestRecord returns the request record for a client opcode.
func requestRecord(op OpCode) Record {
	switch op {
	case OpCreate, OpCreate2, OpCreateContainer:
		return &CreateRequest{}
	case OpCreateTTL:
		return &CreateTTLRequest{}
	case OpDelete:
		return &DeleteRequest{}
	case OpExists:
		return &ExistsRequest{}
	case OpGetData:
		return &GetDataRequest{}
	case OpSetData:
		return &SetDataRequest{}
	case OpGetACL:
		return &GetACLRequest{}
	case OpSetACL:
		return &SetACLRequest{}
	case OpGetChildren:
		return &GetChildrenRequest{}
	case OpGetChildren2:
		return &GetChildren2Request{}
	case OpMulti, OpMultiRead:
		return &MultiRequest{}
	case OpSetWatches:
		return &SetWatches{}
	case OpSetWatches2:
		return &SetWatches2{}
	case OpAuth:
		return &AuthPacket{}
	case OpAddWatch:
		return &AddWatchRequest{}
	case OpReconfig:
		return &ReconfigRequest{}
	}
	return &SyncRequest{}
}

// FuzzRequest decodes arbitrary bytes as a request frame: header plus the
// record its opcode names. It must never panic, and whatever decodes must
// encode and decode to the same value.
func FuzzRequest(f *testing.F) {
	add := func(op OpCode, r Record) {
		var e Encoder
		(&RequestHeader{Xid: 1, Type: int32(op)}).Encode(&e)
		r.Encode(&e)
		f.Add(e.Bytes())
	}
	add(OpCreate, &CreateRequest{Path: "/a", Data: []byte("x"), Acl: OpenACLUnsafe})
	add(OpMulti, &MultiRequest{Ops: []MultiOp{{Type: OpDelete, Req: &DeleteRequest{Path: "/a"}}}})
	add(OpSetWatches2, &SetWatches2{DataWatches: []string{"/a"}})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(data)
		var h RequestHeader
		h.Decode(d)
		r := requestRecord(OpCode(h.Type))
		r.Decode(d)
		if d.Err() != nil {
			return
		}
		again := reflect.New(reflect.TypeOf(r).Elem()).Interface().(Record)
		if err := Unmarshal(Marshal(r), again); err != nil {
			t.Fatalf("re-decode %T: %v", r, err)
		}
		if !bytes.Equal(Marshal(r), Marshal(again)) {
			t.Fatalf("%T not stable", r)
		}
	})
}

// FuzzConnectRequest covers the handshake decoder.
func FuzzConnectRequest(f *testing.F) {
	f.Add(Marshal(&ConnectRequest{TimeOut: 3000, Passwd: make([]byte, 16)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = DecodeConnectRequest(data)
	})
}
