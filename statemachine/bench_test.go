package statemachine

import (
	"fmt"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

func benchState(b *testing.B) *State {
	s := New(Options{ExtendedTypes: true})
	s.Apply(1, &Entry{Op: proto.OpCreateSession, Session: sess, Body: proto.Marshal(&SessionBody{Timeout: 4000})})
	s.Apply(2, &Entry{Op: proto.OpCreate, Session: sess, Body: proto.Marshal(&proto.CreateRequest{Path: "/b", Acl: proto.OpenACLUnsafe})})
	return s
}

// BenchmarkApplyCreate measures applying create entries (decode included).
func BenchmarkApplyCreate(b *testing.B) {
	s := benchState(b)
	value := make([]byte, 100)
	entries := make([][]byte, b.N)
	for i := range entries {
		e := &Entry{Op: proto.OpCreate, Session: sess, Time: 1, Body: proto.Marshal(&proto.CreateRequest{Path: fmt.Sprintf("/b/n%d", i), Data: value, Acl: proto.OpenACLUnsafe})}
		entries[i] = e.Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e, err := DecodeEntry(entries[i])
		if err != nil {
			b.Fatal(err)
		}
		if r := s.Apply(int64(i+3), e); r.Err != proto.ErrOK {
			b.Fatal(r.Err)
		}
	}
}

// BenchmarkApplySetData measures applying setData entries on one node.
func BenchmarkApplySetData(b *testing.B) {
	s := benchState(b)
	entry := (&Entry{Op: proto.OpSetData, Session: sess, Time: 1, Body: proto.Marshal(&proto.SetDataRequest{Path: "/b", Data: make([]byte, 100), Version: -1})}).Encode()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e, _ := DecodeEntry(entry)
		s.Apply(int64(i+3), e)
	}
}

// BenchmarkReadGetData measures a local getData.
func BenchmarkReadGetData(b *testing.B) {
	s := benchState(b)
	req := &proto.GetDataRequest{Path: "/b"}
	b.ReportAllocs()
	for b.Loop() {
		if _, code := s.Read(sess, nil, proto.OpGetData, req); code != proto.ErrOK {
			b.Fatal(code)
		}
	}
}

// BenchmarkSnapshot100k measures snapshotting a 100k-node tree.
func BenchmarkSnapshot100k(b *testing.B) {
	s := benchState(b)
	value := make([]byte, 100)
	for i := 0; i < 100000; i++ {
		s.Apply(int64(i+3), &Entry{Op: proto.OpCreate, Session: sess, Body: proto.Marshal(&proto.CreateRequest{Path: fmt.Sprintf("/b/n%d", i), Data: value, Acl: proto.OpenACLUnsafe})})
	}
	b.ResetTimer()
	for b.Loop() {
		var w countWriter
		if err := s.Snapshot(&w); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(w))
	}
}

type countWriter int

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }
