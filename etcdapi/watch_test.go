package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func nextResp(t *testing.T, ch clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response")
	}
	return clientv3.WatchResponse{}
}

func TestWatchGuarantees(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	c := e.cli
	start, _ := c.Put(ctx, "/w/a", "0")
	wch := c.Watch(ctx, "/w/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	if r := nextResp(t, wch); !r.Created {
		t.Fatalf("first response is not Created: %+v", r)
	}
	// A txn with three changes is one response at one revision, in op order.
	tr, err := c.Txn(ctx).Then(clientv3.OpPut("/w/b", "1"), clientv3.OpPut("/w/a", "1"), clientv3.OpDelete("/w/c"), clientv3.OpPut("/other", "x")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	r := nextResp(t, wch)
	if len(r.Events) != 2 || string(r.Events[0].Kv.Key) != "/w/b" || string(r.Events[1].Kv.Key) != "/w/a" {
		t.Fatalf("txn events: %+v", r.Events)
	}
	for _, ev := range r.Events {
		if ev.Kv.ModRevision != tr.Header.Revision {
			t.Fatalf("event revision %d, txn %d", ev.Kv.ModRevision, tr.Header.Revision)
		}
	}
	if !r.Events[0].IsCreate() || r.Events[1].IsCreate() || r.Events[1].PrevKv == nil || string(r.Events[1].PrevKv.Value) != "0" {
		t.Fatalf("create/prev: %+v", r.Events)
	}
	d, _ := c.Delete(ctx, "/w/b", clientv3.WithPrevKV())
	r = nextResp(t, wch)
	if len(r.Events) != 1 || r.Events[0].Type != mvccpb.DELETE || r.Events[0].Kv.ModRevision != d.Header.Revision || string(r.Events[0].PrevKv.Value) != "1" {
		t.Fatalf("delete event: %+v", r.Events)
	}
	// Resume from a revision: the same events again, in order, each once.
	var all []*clientv3.Event
	for i := 0; i < 20; i++ {
		c.Put(ctx, fmt.Sprintf("/w/k%d", i%3), fmt.Sprint(i))
	}
	last, _ := c.Get(ctx, "/w/k0")
	rch := c.Watch(ctx, "/w/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision))
	for len(all) < 1+2+1+20 {
		r := nextResp(t, rch)
		all = append(all, r.Events...)
	}
	prev := int64(0)
	for _, ev := range all {
		if ev.Kv.ModRevision < prev {
			t.Fatalf("out of order: %d after %d", ev.Kv.ModRevision, prev)
		}
		prev = ev.Kv.ModRevision
	}
	if prev != last.Header.Revision {
		t.Fatalf("replay ended at %d, store at %d", prev, last.Header.Revision)
	}
	// Filters.
	fch := c.Watch(ctx, "/w/", clientv3.WithPrefix(), clientv3.WithFilterPut())
	c.Put(ctx, "/w/f", "1")
	c.Delete(ctx, "/w/f")
	r = nextResp(t, fch)
	if len(r.Events) != 1 || r.Events[0].Type != mvccpb.DELETE {
		t.Fatalf("filter put: %+v", r.Events)
	}
}

func TestWatchCompacted(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	c := e.cli
	p1, _ := c.Put(ctx, "k", "1")
	c.Put(ctx, "k", "2")
	p3, _ := c.Put(ctx, "k", "3")
	if _, err := c.Compact(ctx, p3.Header.Revision); err != nil {
		t.Fatal(err)
	}
	wch := c.Watch(ctx, "k", clientv3.WithRev(p1.Header.Revision))
	r := nextResp(t, wch)
	if r.CompactRevision != p3.Header.Revision || !r.Canceled || !errors.Is(r.Err(), rpctypes.ErrCompacted) {
		t.Fatalf("compacted watch: %+v err %v", r, r.Err())
	}
	// Watching from the compact revision itself is allowed (as etcd).
	wch = c.Watch(ctx, "k", clientv3.WithRev(p3.Header.Revision))
	r = nextResp(t, wch)
	if len(r.Events) != 1 || string(r.Events[0].Kv.Value) != "3" {
		t.Fatalf("watch at compact rev: %+v", r)
	}
}

func TestWatchProgress(t *testing.T) {
	e := startPaddock(t, Config{ProgressNotifyInterval: 300 * time.Millisecond})
	ctx := ctxT(t)
	c := e.cli
	p, _ := c.Put(ctx, "/p/a", "1")
	wctx := clientv3.WithRequireLeader(ctx)
	wch := c.Watch(wctx, "/p/", clientv3.WithPrefix(), clientv3.WithProgressNotify(), clientv3.WithRev(p.Header.Revision+1))
	// Periodic notify.
	r := nextResp(t, wch)
	if !r.IsProgressNotify() || r.Header.Revision != p.Header.Revision {
		t.Fatalf("progress notify: %+v", r)
	}
	// Requested progress: a write elsewhere moves the revision; the reply
	// reports it once the watcher has caught up.
	p2, _ := c.Put(ctx, "/elsewhere", "x")
	if err := c.RequestProgress(wctx); err != nil {
		t.Fatal(err)
	}
	for {
		r = nextResp(t, wch)
		if r.IsProgressNotify() && r.Header.Revision == p2.Header.Revision {
			break
		}
		if r.Header.Revision > p2.Header.Revision {
			t.Fatalf("unexpected: %+v", r)
		}
	}
}

// The raw stream: Created first, manual ids, cancel, header revisions
// never decreasing, progress request answered with watch id -1.
func TestWatchRawStream(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	wc := pb.NewWatchClient(e.cli.ActiveConnection())
	st, err := wc.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.cli.Put(ctx, "a", "1")
	st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7}}})
	r, _ := st.Recv()
	if !r.Created || r.WatchId != 7 {
		t.Fatalf("created: %+v", r)
	}
	st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7}}})
	r, _ = st.Recv()
	if !r.Created || !r.Canceled || r.WatchId != -1 {
		t.Fatalf("duplicate id: %+v", r)
	}
	st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	r, _ = st.Recv()
	if r.WatchId != -1 || len(r.Events) != 0 {
		t.Fatalf("progress: %+v", r)
	}
	last := r.Header.Revision
	e.cli.Put(ctx, "a", "2")
	r, _ = st.Recv()
	if len(r.Events) != 1 || r.Header.Revision < last {
		t.Fatalf("event: %+v", r)
	}
	st.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}})
	r, _ = st.Recv()
	if !r.Canceled || r.WatchId != 7 {
		t.Fatalf("cancel: %+v", r)
	}
}

func TestUnimplementedAndStatus(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	st, err := e.cli.Status(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != Version || st.Leader != 1 || st.RaftIndex == 0 {
		t.Fatalf("status %+v", st)
	}
	ml, err := e.cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 1 || ml.Members[0].ClientURLs[0] != e.url {
		t.Fatalf("members: %v %+v", err, ml)
	}
	_, err = e.cli.Defragment(ctx, e.url)
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("defragment: %v", err)
	}
	if _, err := e.cli.UserList(ctx); status.Code(err) != codes.Unimplemented {
		t.Fatalf("auth: %v", err)
	}
	_ = context.Background
}
