package k8sstorage

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
)

// checkStreamed checks that the store's lists went through KV.RangeStream
// when the EtcdRangeStream gate is on (and the server never answered
// Unimplemented), and never when it is off.
func (e *env) checkStreamed(t *testing.T, on bool) {
	t.Helper()
	n := e.client.KV.(*storagetesting.KVRecorder).GetStreamReadsAndReset()
	switch {
	case on && n == 0:
		t.Error("no list was served by RangeStream")
	case !on && n != 0:
		t.Errorf("%d RangeStream calls with EtcdRangeStream off", n)
	case on && !etcdfeature.DefaultFeatureSupportChecker.Supports(storage.RangeStream):
		t.Error("the store marked RangeStream unsupported")
	}
}

// runGetListStreamMultiChunk lists more pods than the server's first
// RangeStream chunk (10 keys) through the store: a consistent list, an
// exact list at its resource version after another write (the stream is
// pinned there), a not-older-than list (the latest state), and a paged
// list (limit 10: the stream's last chunk carries More and the count the
// continue token and remainingItemCount come from).
func runGetListStreamMultiChunk(t *testing.T, e *env) {
	const pods = 25
	for i := range pods {
		p := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("pod-%02d", i)}}
		if err := e.store.Create(e.ctx, "/pods/ns/"+p.Name, p, &example.Pod{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	rec := e.client.KV.(*storagetesting.KVRecorder)
	rec.GetStreamReadsAndReset()
	list := func(rv string, match metav1.ResourceVersionMatch, pred storage.SelectionPredicate) *example.PodList {
		t.Helper()
		out := &example.PodList{}
		opts := storage.ListOptions{ResourceVersion: rv, ResourceVersionMatch: match, Predicate: pred, Recursive: true}
		if err := e.store.GetList(e.ctx, "/pods/", opts, out); err != nil {
			t.Fatalf("list rv=%q match=%q: %v", rv, match, err)
		}
		if n := rec.GetStreamReadsAndReset(); n != 1 {
			t.Errorf("list rv=%q match=%q: %d RangeStream calls, want 1", rv, match, n)
		}
		return out
	}
	all := list("", "", storage.Everything)
	if len(all.Items) != pods || all.Continue != "" || all.RemainingItemCount != nil {
		t.Fatalf("consistent list: %d items, continue %q, remaining %v", len(all.Items), all.Continue, all.RemainingItemCount)
	}
	extra := &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pod-extra"}}
	if err := e.store.Create(e.ctx, "/pods/ns/pod-extra", extra, &example.Pod{}, 0); err != nil {
		t.Fatal(err)
	}
	exact := list(all.ResourceVersion, metav1.ResourceVersionMatchExact, storage.Everything)
	if len(exact.Items) != pods || exact.ResourceVersion != all.ResourceVersion {
		t.Fatalf("exact list: %d items at %s, want %d at %s", len(exact.Items), exact.ResourceVersion, pods, all.ResourceVersion)
	}
	latest := list(all.ResourceVersion, "", storage.Everything)
	if len(latest.Items) != pods+1 {
		t.Fatalf("not-older-than list: %d items, want %d", len(latest.Items), pods+1)
	}
	// Paged, 10 at a time, all pages at the first page's revision.
	paged := storage.SelectionPredicate{Label: labels.Everything(), Field: fields.Everything(), Limit: 10}
	page := list("", "", paged)
	rv, got := page.ResourceVersion, len(page.Items)
	if page.RemainingItemCount == nil || *page.RemainingItemCount != pods+1-10 || page.Continue == "" {
		t.Fatalf("first page: %d items, continue %q, remaining %v", len(page.Items), page.Continue, page.RemainingItemCount)
	}
	for page.Continue != "" {
		paged.Continue = page.Continue
		page = list("", "", paged)
		if page.ResourceVersion != rv {
			t.Fatalf("page at %s, first page at %s", page.ResourceVersion, rv)
		}
		got += len(page.Items)
	}
	if got != pods+1 {
		t.Fatalf("pages held %d items, want %d", got, pods+1)
	}
}
