package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	gproto "google.golang.org/protobuf/proto"
)

// rawStream reads a RangeStream chunk by chunk with the generated client.
func rawStream(ctx context.Context, c *clientv3.Client, req *pb.RangeRequest) ([]*pb.RangeResponse, error) {
	rs, err := pb.NewKVClient(c.ActiveConnection()).RangeStream(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*pb.RangeResponse
	for {
		r, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r.RangeResponse)
	}
}

// streamGet runs GetStream through etcd's client and merges the chunks.
func streamGet(ctx context.Context, c *clientv3.Client, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ch, err := c.GetStream(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	return clientv3.GetStreamToGetResponse(ch)
}

// checkChunks checks the shape of a stream: only the last chunk carries a
// header, More and Count.
func checkChunks(t *testing.T, name string, chunks []*pb.RangeResponse) {
	t.Helper()
	if len(chunks) == 0 {
		t.Fatalf("%s: no chunks", name)
	}
	for i, c := range chunks[:len(chunks)-1] {
		if c.Header != nil || c.More || c.Count != 0 || len(c.Kvs) == 0 {
			t.Fatalf("%s: chunk %d of %d: header %v more %v count %d kvs %d", name, i, len(chunks), c.Header, c.More, c.Count, len(c.Kvs))
		}
	}
	h := chunks[len(chunks)-1].Header
	if h == nil || h.Revision == 0 || h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm == 0 {
		t.Fatalf("%s: last chunk header %v", name, h)
	}
}

func chunkLens(chunks []*pb.RangeResponse) []int {
	var n []int
	for _, c := range chunks {
		n = append(n, len(c.Kvs))
	}
	return n
}

func sameKVs(a, b *clientv3.GetResponse) bool {
	return slices.EqualFunc(a.Kvs, b.Kvs, func(x, y *mvccpb.KeyValue) bool { return gproto.Equal(x, y) })
}

func TestRangeStreamEqualsRange(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	c := e.cli
	for i := range 300 {
		if _, err := c.Put(ctx, fmt.Sprintf("/s/%04d", i), strings.Repeat("v", i%50)); err != nil {
			t.Fatal(err)
		}
	}
	c.Put(ctx, "/t/x", "outside")
	mid, err := c.Get(ctx, "/s/0000")
	if err != nil {
		t.Fatal(err)
	}
	midRev := mid.Header.Revision
	for i := 0; i < 300; i += 7 {
		c.Put(ctx, fmt.Sprintf("/s/%04d", i), "changed")
	}
	for i := 3; i < 300; i += 11 {
		c.Delete(ctx, fmt.Sprintf("/s/%04d", i))
	}

	cases := []struct {
		name string
		key  string
		opts []clientv3.OpOption
	}{
		{"prefix", "/s/", []clientv3.OpOption{clientv3.WithPrefix()}},
		{"limit 1", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(1)}},
		{"limit 10", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(10)}},
		{"limit 11", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(11)}},
		{"limit 75", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(75)}},
		{"limit 1000", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(1000)}},
		{"keys only", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}},
		{"keys only limit", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(37)}},
		{"count only", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly()}},
		{"count only limit", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithLimit(5)}},
		{"revision", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(midRev)}},
		{"revision limit", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(midRev), clientv3.WithLimit(50)}},
		{"from key", "/s/0150", []clientv3.OpOption{clientv3.WithFromKey()}},
		{"range", "/s/0100", []clientv3.OpOption{clientv3.WithRange("/s/0200")}},
		{"range limit", "/s/0100", []clientv3.OpOption{clientv3.WithRange("/s/0200"), clientv3.WithLimit(40)}},
		{"key", "/s/0001", nil},
		{"missing key", "/nope", nil},
		{"empty prefix", "/zzz/", []clientv3.OpOption{clientv3.WithPrefix()}},
		{"serializable", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSerializable()}},
		{"sort by key ascending", "/s/", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}},
	}
	for _, tc := range cases {
		want, err := c.Get(ctx, tc.key, tc.opts...)
		if err != nil {
			t.Fatalf("%s: get: %v", tc.name, err)
		}
		got, err := streamGet(ctx, c, tc.key, tc.opts...)
		if err != nil {
			t.Fatalf("%s: stream: %v", tc.name, err)
		}
		if !sameKVs(got, want) || got.Count != want.Count || got.More != want.More || got.Header.Revision != want.Header.Revision {
			t.Fatalf("%s: stream (%d kvs, count %d, more %v, rev %d) != range (%d kvs, count %d, more %v, rev %d)", tc.name,
				len(got.Kvs), got.Count, got.More, got.Header.Revision, len(want.Kvs), want.Count, want.More, want.Header.Revision)
		}
		op := clientv3.OpGet(tc.key, tc.opts...)
		req := &pb.RangeRequest{Key: op.KeyBytes(), RangeEnd: op.RangeBytes(), Limit: op.Limit(), Revision: op.Rev(), KeysOnly: op.IsKeysOnly(), CountOnly: op.IsCountOnly(), Serializable: op.IsSerializable()}
		chunks, err := rawStream(ctx, c, req)
		if err != nil {
			t.Fatalf("%s: raw stream: %v", tc.name, err)
		}
		checkChunks(t, tc.name, chunks)
	}

	// The plain prefix in chunks of 10, 20, 40, 80, then the rest.
	chunks, err := rawStream(ctx, c, &pb.RangeRequest{Key: []byte("/s/"), RangeEnd: []byte("/s0")})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := c.Get(ctx, "/s/", clientv3.WithPrefix())
	if n := chunkLens(chunks); !slices.Equal(n, []int{10, 20, 40, 80, int(all.Count) - 150}) {
		t.Fatalf("chunk sizes %v (count %d)", n, all.Count)
	}
	// A limit caps the chunks: 10, 20, then what is left of 45.
	chunks, _ = rawStream(ctx, c, &pb.RangeRequest{Key: []byte("/s/"), RangeEnd: []byte("/s0"), Limit: 45})
	if n := chunkLens(chunks); !slices.Equal(n, []int{10, 20, 15}) || !chunks[2].More || chunks[2].Count != all.Count {
		t.Fatalf("limited chunks %v, more %v count %d", n, chunks[2].More, chunks[2].Count)
	}
	// A negative limit is no limit, in one chunk (as etcd).
	chunks, _ = rawStream(ctx, c, &pb.RangeRequest{Key: []byte("/s/"), RangeEnd: []byte("/s0"), Limit: -1})
	if n := chunkLens(chunks); len(n) != 1 || int64(n[0]) != all.Count || chunks[0].More || chunks[0].Count != all.Count {
		t.Fatalf("negative limit: chunks %v", n)
	}
	// count_only: one chunk, header and count.
	chunks, _ = rawStream(ctx, c, &pb.RangeRequest{Key: []byte("/s/"), RangeEnd: []byte("/s0"), CountOnly: true})
	if len(chunks) != 1 || chunks[0].Count != all.Count || len(chunks[0].Kvs) != 0 || chunks[0].More {
		t.Fatalf("count only: %v", chunks)
	}
}

func TestRangeStreamChunkSizes(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	for _, tc := range []struct {
		prefix string
		n      int
		size   int
		want   []int
	}{
		// 10 x 40 KiB is under half of MaxRequestBytes: double to 20;
		// 20 x 40 KiB is between a half and twice: keep.
		{"/m/", 60, 40 << 10, []int{10, 20, 20, 10}},
		// 10 x 400 KiB is over twice MaxRequestBytes: halve to 5.
		{"/l/", 17, 400 << 10, []int{10, 5, 2}},
	} {
		for i := range tc.n {
			if _, err := e.cli.Put(ctx, fmt.Sprintf("%s%03d", tc.prefix, i), strings.Repeat("x", tc.size)); err != nil {
				t.Fatal(err)
			}
		}
		chunks, err := rawStream(ctx, e.cli, &pb.RangeRequest{Key: []byte(tc.prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(tc.prefix))})
		if err != nil {
			t.Fatal(err)
		}
		checkChunks(t, tc.prefix, chunks)
		if n := chunkLens(chunks); !slices.Equal(n, tc.want) {
			t.Fatalf("%s: chunk sizes %v, want %v", tc.prefix, n, tc.want)
		}
	}
}

func TestRangeStreamErrors(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	c := e.cli
	p1, _ := c.Put(ctx, "k", "1")
	c.Put(ctx, "k", "2")
	p3, _ := c.Put(ctx, "k", "3")
	if _, err := c.Compact(ctx, p3.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := streamGet(ctx, c, "k", clientv3.WithRev(p1.Header.Revision)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("compacted revision: %v", err)
	}
	if g, err := streamGet(ctx, c, "k", clientv3.WithRev(p3.Header.Revision)); err != nil || len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "3" {
		t.Fatalf("at the compact revision: %v %v", err, g)
	}
	if _, err := streamGet(ctx, c, "k", clientv3.WithRev(p3.Header.Revision+1000)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Fatalf("future revision: %v", err)
	}
	if _, err := streamGet(ctx, c, "k", clientv3.WithCountOnly(), clientv3.WithRev(p1.Header.Revision)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("count only, compacted revision: %v", err)
	}
	if _, err := rawStream(ctx, c, &pb.RangeRequest{}); !errors.Is(rpctypes.Error(err), rpctypes.ErrEmptyKey) {
		t.Fatalf("empty key: %v", err)
	}
	for _, tc := range []struct {
		opts []clientv3.OpOption
		msg  string
	}{
		{[]clientv3.OpOption{clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)}, "RangeStream does not support custom sort orders"},
		{[]clientv3.OpOption{clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}, "RangeStream does not support custom sort orders"},
		{[]clientv3.OpOption{clientv3.WithMinModRev(1)}, "RangeStream does not support revision filters"},
		{[]clientv3.OpOption{clientv3.WithMaxCreateRev(5)}, "RangeStream does not support revision filters"},
	} {
		_, err := streamGet(ctx, c, "k", append(tc.opts, clientv3.WithPrefix())...)
		if s, _ := status.FromError(err); s.Code() != codes.Unimplemented || s.Message() != tc.msg {
			t.Fatalf("want Unimplemented %q, got %v", tc.msg, err)
		}
	}
	if _, err := rawStream(ctx, c, &pb.RangeRequest{Key: []byte("k"), SortOrder: 7}); !errors.Is(rpctypes.Error(err), rpctypes.ErrInvalidSortOption) {
		t.Fatalf("bad sort order: %v", err)
	}
}

// TestRangeStreamPinsRevision writes between chunks: the stream is one
// snapshot at its first read's revision, whatever happens after.
func TestRangeStreamPinsRevision(t *testing.T) {
	e := startPaddock(t, Config{})
	ctx := ctxT(t)
	c := e.cli
	for i := range 100 {
		if _, err := c.Put(ctx, fmt.Sprintf("/p/%03d", i), "old"); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.Get(ctx, "/p/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	writes := func(chunk int) {
		if chunk != 1 {
			return
		}
		for _, k := range []string{"/p/000a", "/p/050a", "/p/099a", "/p/zzz"} {
			c.Put(ctx, k, "new")
		}
		c.Put(ctx, "/p/060", "changed")
		c.Put(ctx, "/p/005", "changed")
		c.Delete(ctx, "/p/070")
		c.Delete(ctx, "/p/001")
	}
	e.api.beforeChunk.Store(&writes)
	got, err := streamGet(ctx, c, "/p/", clientv3.WithPrefix())
	e.api.beforeChunk.Store(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameKVs(got, before) || got.Count != before.Count || got.Header.Revision != before.Header.Revision {
		t.Fatalf("stream saw writes made during it: %d kvs count %d rev %d, want %d kvs count %d rev %d",
			len(got.Kvs), got.Count, got.Header.Revision, len(before.Kvs), before.Count, before.Header.Revision)
	}
	after, _ := c.Get(ctx, "/p/", clientv3.WithPrefix())
	if after.Count != before.Count+2 || after.Header.Revision <= before.Header.Revision {
		t.Fatalf("writes did not land: count %d rev %d", after.Count, after.Header.Revision)
	}

	// Limited, the remaining count is at the pinned revision too.
	e.api.beforeChunk.Store(&writes)
	got, err = streamGet(ctx, c, "/p/", clientv3.WithPrefix(), clientv3.WithLimit(50))
	e.api.beforeChunk.Store(nil)
	want, _ := c.Get(ctx, "/p/", clientv3.WithPrefix(), clientv3.WithLimit(50), clientv3.WithRev(after.Header.Revision))
	if err != nil || !sameKVs(got, want) || got.Count != want.Count || !got.More || got.Header.Revision != after.Header.Revision {
		t.Fatalf("limited stream: %v %d kvs count %d more %v rev %d, want count %d rev %d", err, len(got.Kvs), got.Count, got.More, got.Header.Revision, want.Count, after.Header.Revision)
	}

	// A compaction past the pinned revision between chunks ends the
	// stream with ErrCompacted after the chunks already sent.
	compact := func(chunk int) {
		if chunk != 1 {
			return
		}
		p, _ := c.Put(ctx, "/p/000", "again")
		c.Compact(ctx, p.Header.Revision)
	}
	e.api.beforeChunk.Store(&compact)
	chunks, err := rawStream(ctx, c, &pb.RangeRequest{Key: []byte("/p/"), RangeEnd: []byte("/p0")})
	e.api.beforeChunk.Store(nil)
	if len(chunks) != 1 || !errors.Is(rpctypes.Error(err), rpctypes.ErrCompacted) {
		t.Fatalf("compaction mid-stream: %d chunks, %v", len(chunks), err)
	}
}
