package server

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

// fakeWatcher stands in for a connection.
type fakeWatcher int64

func (f fakeWatcher) sessionID() int64 { return int64(f) }
func (f fakeWatcher) dead() bool       { return f < 0 }

const (
	A fakeWatcher = 1
	B fakeWatcher = 2
)

// wop is one step of a watch-manager script.
type wop struct {
	op   string // data, child, pers, rec, trig, rm, has, drop
	path string
	w    fakeWatcher
	typ  proto.EventType // trig
	wt   int32           // rm, has
	want any             // trig: []fakeWatcher; rm/has: bool
}

func ids(ws []watcher) []fakeWatcher {
	out := []fakeWatcher{}
	for _, w := range ws {
		out = append(out, w.(fakeWatcher))
	}
	return out
}

func TestWatchManager(t *testing.T) {
	created, deleted, changed, children := proto.EventNodeCreated, proto.EventNodeDeleted, proto.EventNodeDataChanged, proto.EventNodeChildrenChanged
	none := []fakeWatcher{}
	tests := []struct {
		name  string
		steps []wop
	}{
		{"data watch fires once on change", []wop{
			{op: "data", path: "/a", w: A},
			{op: "trig", path: "/a", typ: changed, want: []fakeWatcher{A}},
			{op: "trig", path: "/a", typ: changed, want: none},
		}},
		{"exist watch fires on create", []wop{
			{op: "data", path: "/a", w: A},
			{op: "trig", path: "/a", typ: created, want: []fakeWatcher{A}},
		}},
		{"data watch not fired by children change", []wop{
			{op: "data", path: "/a", w: A},
			{op: "trig", path: "/a", typ: children, want: none},
			{op: "trig", path: "/a", typ: changed, want: []fakeWatcher{A}},
		}},
		{"child watch fires on children change, not data change", []wop{
			{op: "child", path: "/a", w: A},
			{op: "trig", path: "/a", typ: changed, want: none},
			{op: "trig", path: "/a", typ: created, want: none},
			{op: "trig", path: "/a", typ: children, want: []fakeWatcher{A}},
			{op: "trig", path: "/a", typ: children, want: none},
		}},
		{"delete tells a data+child watcher once and consumes both", []wop{
			{op: "data", path: "/a", w: A},
			{op: "child", path: "/a", w: A},
			{op: "child", path: "/a", w: B},
			{op: "trig", path: "/a", typ: deleted, want: []fakeWatcher{A, B}},
			{op: "has", path: "/a", w: A, wt: proto.WatcherAny, want: false},
			{op: "trig", path: "/a", typ: deleted, want: none},
		}},
		{"watches are per path", []wop{
			{op: "data", path: "/a", w: A},
			{op: "trig", path: "/a/b", typ: changed, want: none},
			{op: "trig", path: "/ab", typ: changed, want: none},
			{op: "trig", path: "/", typ: changed, want: none},
		}},
		{"persistent fires for data and children, stays", []wop{
			{op: "pers", path: "/a", w: A},
			{op: "trig", path: "/a", typ: changed, want: []fakeWatcher{A}},
			{op: "trig", path: "/a", typ: children, want: []fakeWatcher{A}},
			{op: "trig", path: "/a", typ: created, want: []fakeWatcher{A}},
			{op: "trig", path: "/a", typ: deleted, want: []fakeWatcher{A}},
			{op: "trig", path: "/a", typ: changed, want: []fakeWatcher{A}},
			{op: "trig", path: "/a/b", typ: changed, want: none},
		}},
		{"recursive fires for node and descendants, never children-changed", []wop{
			{op: "rec", path: "/a", w: A},
			{op: "trig", path: "/a", typ: changed, want: []fakeWatcher{A}},
			{op: "trig", path: "/a/b", typ: created, want: []fakeWatcher{A}},
			{op: "trig", path: "/a/b/c", typ: deleted, want: []fakeWatcher{A}},
			{op: "trig", path: "/a/b", typ: changed, want: []fakeWatcher{A}},
			{op: "trig", path: "/a", typ: children, want: none},
			{op: "trig", path: "/a/b", typ: children, want: none},
			{op: "trig", path: "/ab", typ: created, want: none},
			{op: "trig", path: "/", typ: changed, want: none},
		}},
		{"recursive on root covers everything", []wop{
			{op: "rec", path: "/", w: B},
			{op: "trig", path: "/x", typ: created, want: []fakeWatcher{B}},
			{op: "trig", path: "/", typ: changed, want: []fakeWatcher{B}},
			{op: "trig", path: "/", typ: children, want: none},
		}},
		{"one event per connection across ways", []wop{
			{op: "rec", path: "/", w: A},
			{op: "rec", path: "/a", w: A},
			{op: "pers", path: "/a/b", w: A},
			{op: "data", path: "/a/b", w: A},
			{op: "data", path: "/a/b", w: B},
			{op: "trig", path: "/a/b", typ: changed, want: []fakeWatcher{A, B}},
			{op: "trig", path: "/a/b", typ: changed, want: []fakeWatcher{A}},
		}},
		{"standard and persistent coexist; firing keeps persistent", []wop{
			{op: "pers", path: "/a", w: A},
			{op: "data", path: "/a", w: A},
			{op: "has", path: "/a", w: A, wt: proto.WatcherData, want: true},
			{op: "trig", path: "/a", typ: changed, want: []fakeWatcher{A}},
			{op: "has", path: "/a", w: A, wt: proto.WatcherData, want: false},
			{op: "has", path: "/a", w: A, wt: proto.WatcherPersistent, want: true},
		}},
		{"checkWatches types", []wop{
			{op: "child", path: "/c", w: A},
			{op: "rec", path: "/r", w: A},
			{op: "has", path: "/c", w: A, wt: proto.WatcherChildren, want: true},
			{op: "has", path: "/c", w: A, wt: proto.WatcherData, want: false},
			{op: "has", path: "/c", w: A, wt: proto.WatcherAny, want: true},
			{op: "has", path: "/c", w: B, wt: proto.WatcherAny, want: false},
			{op: "has", path: "/r", w: A, wt: proto.WatcherPersistentRecursive, want: true},
			{op: "has", path: "/r", w: A, wt: proto.WatcherPersistent, want: false},
			{op: "has", path: "/r/x", w: A, wt: proto.WatcherAny, want: false},
			{op: "has", path: "/r", w: A, wt: 9, want: false},
		}},
		{"removeWatches by type", []wop{
			{op: "data", path: "/a", w: A},
			{op: "child", path: "/a", w: A},
			{op: "rm", path: "/a", w: A, wt: proto.WatcherChildren, want: true},
			{op: "rm", path: "/a", w: A, wt: proto.WatcherChildren, want: false},
			{op: "trig", path: "/a", typ: children, want: none},
			{op: "rm", path: "/a", w: B, wt: proto.WatcherData, want: false},
			{op: "rm", path: "/a", w: A, wt: proto.WatcherData, want: true},
			{op: "trig", path: "/a", typ: changed, want: none},
		}},
		{"removeWatches Any clears every mode", []wop{
			{op: "pers", path: "/a", w: A},
			{op: "rec", path: "/a", w: A},
			{op: "data", path: "/a", w: A},
			{op: "rm", path: "/a", w: A, wt: proto.WatcherAny, want: true},
			{op: "trig", path: "/a/b", typ: created, want: none},
			{op: "trig", path: "/a", typ: children, want: none},
			{op: "rm", path: "/a", w: A, wt: proto.WatcherAny, want: false},
		}},
		{"remove persistent keeps recursive and standard", []wop{
			{op: "pers", path: "/a", w: A},
			{op: "rec", path: "/a", w: A},
			{op: "rm", path: "/a", w: A, wt: proto.WatcherPersistent, want: true},
			{op: "trig", path: "/a", typ: children, want: none},
			{op: "trig", path: "/a/b", typ: created, want: []fakeWatcher{A}},
			{op: "rm", path: "/a", w: A, wt: proto.WatcherPersistentRecursive, want: true},
			{op: "trig", path: "/a/b", typ: created, want: none},
		}},
		{"dropping a watcher removes all its watches", []wop{
			{op: "data", path: "/a", w: A},
			{op: "rec", path: "/", w: A},
			{op: "child", path: "/a", w: B},
			{op: "drop", w: A},
			{op: "trig", path: "/a", typ: deleted, want: []fakeWatcher{B}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewWatchManager()
			for i, s := range tc.steps {
				where := fmt.Sprintf("step %d (%s %s)", i, s.op, s.path)
				switch s.op {
				case "data":
					m.AddData(s.path, s.w)
				case "child":
					m.AddChild(s.path, s.w)
				case "pers":
					m.AddPersistent(s.path, s.w, false)
				case "rec":
					m.AddPersistent(s.path, s.w, true)
				case "drop":
					m.RemoveWatcher(s.w)
				case "trig":
					if got := ids(m.Trigger(s.typ, s.path)); !reflect.DeepEqual(got, s.want) {
						t.Fatalf("%s: trigger %v fired %v, want %v", where, s.typ, got, s.want)
					}
				case "rm":
					if got := m.Remove(s.path, s.w, s.wt); got != s.want {
						t.Fatalf("%s: remove type %d = %v, want %v", where, s.wt, got, s.want)
					}
				case "has":
					if got := m.Contains(s.path, s.w, s.wt); got != s.want {
						t.Fatalf("%s: contains type %d = %v, want %v", where, s.wt, got, s.want)
					}
				}
			}
		})
	}
}

func TestWatchManagerReports(t *testing.T) {
	m := NewWatchManager()
	m.AddData("/a", A)
	m.AddChild("/a", A)
	m.AddData("/b", B)
	m.AddPersistent("/c", B, false)
	// ZooKeeper sums the data and child tables: data has A:/a, B:/b, B:/c;
	// child has A:/a, B:/c.
	want := WatchSummary{Connections: 4, Paths: 5, Watches: 5}
	if got := m.Summary(); got != want {
		t.Fatalf("summary %+v, want %+v", got, want)
	}
	if got := m.BySession(); !reflect.DeepEqual(got, map[int64][]string{1: {"/a"}, 2: {"/b", "/c"}}) {
		t.Fatalf("by session %v", got)
	}
	if got := m.ByPath(); !reflect.DeepEqual(got, map[string][]int64{"/a": {1}, "/b": {2}, "/c": {2}}) {
		t.Fatalf("by path %v", got)
	}
	m.RemoveWatcher(A)
	m.RemoveWatcher(B)
	if got := m.Summary(); got != (WatchSummary{}) {
		t.Fatalf("after drop: %+v", got)
	}
	if m.data.recursive != 0 || len(m.data.byPath) != 0 || len(m.child.byWatcher) != 0 {
		t.Fatal("tables not empty")
	}
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{"/": "", "/a": "/", "/a/b": "/a", "/a/b/c": "/a/b"} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}
