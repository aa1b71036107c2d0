// Package k8sstorage runs kube-apiserver's storage conformance tests —
// the shared Run* functions of k8s.io/apiserver/pkg/storage/testing that
// k8s.io/apiserver/pkg/storage/etcd3's own store and watcher tests drive —
// against a real `paddock server --etcd-listen` process, through the real
// etcd3 store (etcd3.New) and etcd's Go client, exactly as kube-apiserver
// talks to its storage.
//
// Every subtest gets a fresh server, as upstream gives each test a fresh
// embedded etcd. PADDOCK_STORAGE_TARGET=etcd runs the same subtests
// against a real etcd 3.7 instead (the binary from ETCD_BIN, from
// PADDOCK_K8S_BIN/etcd, or built by internal/etcdref): a differential
// self-check that the setup here, not Paddock, decides the results.
// PADDOCK_STORAGE_TARGET=ensemble runs them on one 3-member Paddock
// ensemble for the whole run, the store's client talking to a follower
// (writes forwarded to the leader, reads behind the ReadIndex barrier),
// each subtest under a key prefix of its own.
package k8sstorage

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"

	"k8s.io/apimachinery/pkg/api/apitesting"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/etcd3"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	"k8s.io/apiserver/pkg/storage/value"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/utils/clock"

	"github.com/paddockhq/paddock/internal/etcdref"
	"github.com/paddockhq/paddock/internal/faults"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

// valuePrefix is what the test transformer puts in front of every stored
// value (upstream's tests use the same kind of prefix transformer, so a
// value that skipped the transformer is caught).
const valuePrefix = "test!"

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
}

// target is the server under test: "paddock" (default), "etcd" or
// "ensemble".
func target() string {
	if v := os.Getenv("PADDOCK_STORAGE_TARGET"); v != "" {
		return v
	}
	return "paddock"
}

// serverOptions are the server-side settings a subtest needs.
type serverOptions struct {
	// progressNotify is the watch progress-notify interval (etcd's
	// --experimental-watch-progress-notify-interval, Paddock's
	// --etcd-progress-notify-interval); zero keeps the default.
	progressNotify time.Duration
	// own: a server of its own on the ensemble target (see options.ownServer).
	own bool
}

// startServer starts a fresh server of the target kind and returns its
// client URL.
func startServer(t *testing.T, so serverOptions) string {
	t.Helper()
	switch target() {
	case "paddock":
		ports, err := zkref.FreePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		args := []string{"--etcd-listen", addr}
		if so.progressNotify > 0 {
			args = append(args, "--etcd-progress-notify-interval", strconv.Itoa(int(so.progressNotify/time.Millisecond)))
		}
		testserver.Start(t, testserver.Options{ExtraArgs: args})
		return "http://" + addr
	case "etcd":
		if os.Getenv("ETCD_BIN") == "" {
			if dir := os.Getenv("PADDOCK_K8S_BIN"); dir != "" {
				os.Setenv("ETCD_BIN", filepath.Join(dir, "etcd"))
			}
		}
		if _, err := etcdref.Binary(); err != nil && os.Getenv("CI") == "true" {
			t.Fatalf("no etcd reference binary (CI=true): %v", err)
		}
		var args []string
		if so.progressNotify > 0 {
			args = append(args, "--watch-progress-notify-interval", so.progressNotify.String())
		}
		return etcdref.StartArgs(t, args...)
	case "ensemble":
		if so.own {
			return startEnsemble(t)
		}
		return ensembleURL(t)
	}
	t.Fatalf("PADDOCK_STORAGE_TARGET=%q: want paddock, etcd or ensemble", target())
	return ""
}

// The shared ensemble of PADDOCK_STORAGE_TARGET=ensemble.
var (
	ensOnce    sync.Once
	ensURL     string
	ensErr     error
	ensCluster *faults.Cluster
	ensDir     string
	prefixSeq  atomic.Int64
)

// ensembleURL starts the shared ensemble on first use (progress notify
// every 1 s, what the progress tests want; nothing else asks for it) and
// returns a follower's etcd URL.
func ensembleURL(t *testing.T) string {
	ensOnce.Do(func() {
		ensDir, ensErr = os.MkdirTemp("", "paddock-k8sstorage-")
		if ensErr != nil {
			return
		}
		ensCluster, ensURL, ensErr = ensemble(ensDir)
	})
	if ensErr != nil {
		t.Fatalf("ensemble: %v", ensErr)
	}
	return ensURL
}

// ensemble starts a 3-member ensemble serving etcd on every member
// (progress notify every 1 s) and returns a follower's etcd URL.
func ensemble(dir string) (*faults.Cluster, string, error) {
	c, err := faults.Start(faults.Options{Voters: 3, Dir: dir, EtcdAPI: true,
		ExtraArgs: []string{"--etcd-progress-notify-interval", "1000"}})
	if err != nil {
		return nil, "", err
	}
	leader, err := c.WaitLeader(2 * time.Minute)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	follower := leader%3 + 1
	return c, "http://" + c.Member(follower).EtcdAddr, nil
}

// startEnsemble is an ensemble of the subtest's own.
func startEnsemble(t *testing.T) string {
	c, url, err := ensemble(t.TempDir())
	if err != nil {
		t.Fatalf("ensemble: %v", err)
	}
	t.Cleanup(c.Close)
	return url
}

// TestMain stops the shared ensemble, if one was started.
func TestMain(m *testing.M) {
	code := m.Run()
	if ensCluster != nil {
		ensCluster.Close()
	}
	if ensDir != "" {
		os.RemoveAll(ensDir)
	}
	os.Exit(code)
}

// newClient connects the client kube-apiserver uses
// (go.etcd.io/etcd/client/v3/kubernetes), with the KV and Kubernetes
// interfaces wrapped in storagetesting's recorders as upstream's
// testserver does (RunTestList and the paging checks count calls).
func newClient(t *testing.T, url string) *kubernetes.Client {
	t.Helper()
	c, err := kubernetes.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The server may still be opening its etcd listener.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := c.Client.Get(ctx, "health")
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("server at %s not answering: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec := storagetesting.NewKubernetesRecorder(c.Kubernetes)
	c.KV = storagetesting.NewKVRecorder(c.KV, rec)
	c.Kubernetes = rec
	return c
}

// swapTransformer is the value transformer given to the store (and so to
// its watcher). Upstream's tests reach into the store to replace its
// transformer; from outside the package the store keeps this one and the
// tests swap what it delegates to.
type swapTransformer struct {
	base *storagetesting.PrefixTransformer
	mu   sync.RWMutex
	cur  value.Transformer
	fail atomic.Bool
}

func newSwapTransformer() *swapTransformer {
	base := storagetesting.NewPrefixTransformer([]byte(valuePrefix), false)
	return &swapTransformer{base: base, cur: base}
}

func (s *swapTransformer) current() value.Transformer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

func (s *swapTransformer) set(t value.Transformer) {
	s.mu.Lock()
	s.cur = t
	s.mu.Unlock()
}

// TransformFromStorage implements value.Transformer.
func (s *swapTransformer) TransformFromStorage(ctx context.Context, data []byte, dc value.Context) ([]byte, bool, error) {
	if s.fail.Load() {
		return nil, false, errors.New("synthetic error")
	}
	return s.current().TransformFromStorage(ctx, data, dc)
}

// TransformToStorage implements value.Transformer.
func (s *swapTransformer) TransformToStorage(ctx context.Context, data []byte, dc value.Context) ([]byte, error) {
	return s.current().TransformToStorage(ctx, data, dc)
}

// failingCodec fails every Decode while set (upstream's testCodec).
type failingCodec struct {
	runtime.Codec
	fail atomic.Bool
}

func (c *failingCodec) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if c.fail.Load() {
		return nil, nil, errors.New("synthetic error")
	}
	return c.Codec.Decode(data, defaults, into)
}

// compactingStore is what etcd3.New returns, seen from outside.
type compactingStore interface {
	storage.Interface
	CompactRevision() int64
}

// env is one subtest's store, client and the pieces given to the store.
type env struct {
	ctx         context.Context
	store       compactingStore
	client      *kubernetes.Client
	codec       runtime.Codec
	transformer *swapTransformer
	prefix      string
}

type options struct {
	server      serverOptions
	codec       runtime.Codec
	noNewFunc   bool
	prefix      string
	leaseConfig *etcd3.LeaseManagerConfig
	// ownServer gives the subtest a server of its own even on the shared
	// ensemble: it compacts, and the shared keyspace must keep its
	// history for the tests that watch or list from revision 1.
	ownServer bool
}

// setup starts a server and builds the real etcd3 store on it, with
// upstream's test settings: the example Pod codec, a prefix transformer,
// resource prefix /pods/, lease reuse of 1 s, and a compactor that never
// runs on its own (interval 0; tests compact through Compaction).
func setup(t *testing.T, o options) *env {
	t.Helper()
	resetFeatureSupportChecker(t)
	if target() == "ensemble" && o.prefix == "" {
		o.prefix = "t" + strconv.FormatInt(prefixSeq.Add(1), 10)
	}
	o.server.own = o.ownServer
	url := startServer(t, o.server)
	client := newClient(t, url)
	codec := o.codec
	if codec == nil {
		codec = apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)
	}
	lc := etcd3.NewDefaultLeaseManagerConfig()
	lc.ReuseDurationSeconds = 1
	if o.leaseConfig != nil {
		lc = *o.leaseConfig
	}
	newFunc := func() runtime.Object { return &example.Pod{} }
	if o.noNewFunc {
		newFunc = nil
	}
	tr := newSwapTransformer()
	versioner := storage.APIObjectVersioner{}
	compactor := etcd3.NewCompactor(client.Client, 0, clock.RealClock{}, nil)
	t.Cleanup(compactor.Stop)
	s, err := etcd3.New(client, compactor, codec, newFunc, func() runtime.Object { return &example.PodList{} },
		o.prefix, "/pods/", schema.GroupResource{Resource: "pods"}, tr, lc,
		etcd3.NewDefaultDecoder(codec, versioner), versioner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return &env{ctx: context.Background(), store: s, client: client, codec: codec, transformer: tr, prefix: o.prefix}
}

// withPrefixTransformer is storagetesting.InterfaceWithPrefixTransformer
// over the swap transformer.
type withPrefixTransformer struct {
	storage.Interface
	tr *swapTransformer
}

// UpdatePrefixTransformer implements storagetesting.InterfaceWithPrefixTransformer.
func (w withPrefixTransformer) UpdatePrefixTransformer(m storagetesting.PrefixTransformerModifier) func() {
	orig := w.tr.current()
	cp := *w.tr.base
	w.tr.set(m(&cp))
	return func() { w.tr.set(orig) }
}

// withTransformerOverride is storagetesting.InterfaceWithTransformerOverride
// over the swap transformer.
type withTransformerOverride struct {
	storage.Interface
	tr *swapTransformer
}

// UpdateTransformer implements storagetesting.InterfaceWithTransformerOverride.
func (w withTransformerOverride) UpdateTransformer(m storagetesting.TransformerModifier) func() {
	orig := w.tr.current()
	w.tr.set(m(orig))
	return func() { w.tr.set(orig) }
}

// checkStored is upstream's storage invariant: the raw value under key is
// the prefix plus an encoded Pod with neither resourceVersion nor selfLink.
func (e *env) checkStored() storagetesting.KeyValidation {
	return func(ctx context.Context, t *testing.T, key string) {
		resp, err := e.client.Client.KV.Get(ctx, e.etcdKey(key))
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if len(resp.Kvs) == 0 {
			t.Fatalf("no value stored at %s", key)
		}
		obj, err := runtime.Decode(e.codec, resp.Kvs[0].Value[len(valuePrefix):])
		if err != nil {
			t.Fatalf("decode %s: %v (%q)", key, err, resp.Kvs[0].Value)
		}
		pod := obj.(*example.Pod)
		if pod.ResourceVersion != "" || pod.SelfLink != "" {
			t.Errorf("stored object has resourceVersion %q, selfLink %q; want both empty", pod.ResourceVersion, pod.SelfLink)
		}
	}
}

// etcdKey is the etcd key the store keeps key under (its path prefix,
// then the key without its leading slash).
func (e *env) etcdKey(key string) string {
	p := path.Join("/", e.prefix)
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p + strings.TrimPrefix(key, "/")
}

// increaseRV writes an unrelated key and returns the new revision.
func (e *env) increaseRV() storagetesting.IncreaseRVFunc {
	return func(ctx context.Context, t *testing.T) int64 {
		resp, err := e.client.Client.KV.Put(ctx, "increaseRV", "ok")
		if err != nil {
			t.Fatalf("put increaseRV: %v", err)
		}
		return resp.Header.Revision
	}
}

// compaction compacts at the given resource version the way the
// apiserver's compactor does (etcd3.Compact: the compact_rev_key CAS, then
// Compact), then, with ListFromCacheSnapshot on, waits until the store
// has seen it (it watches compact_rev_key).
func (e *env) compaction() storagetesting.Compaction {
	return func(ctx context.Context, t *testing.T, resourceVersion string) {
		rv, err := storage.APIObjectVersioner{}.ParseResourceVersion(resourceVersion)
		if err != nil {
			t.Fatal(err)
		}
		// The compact_rev_key CAS may fail (the key's version is not the
		// expected one on a keyspace compacted before): retry with the
		// version it returned, as the apiserver's compactor does.
		var version int64
		for i := 0; ; i++ {
			v, _, compacted, err := etcd3.Compact(ctx, e.client.Client, version, int64(rv))
			if err == nil && v == version+1 && compacted == int64(rv) {
				break
			}
			if i == 5 {
				t.Fatalf("compaction at %d: %v", rv, err)
			}
			if err == nil {
				version = v
			}
		}
		if utilfeature.DefaultFeatureGate.Enabled(features.ListFromCacheSnapshot) {
			deadline := time.Now().Add(30 * time.Second)
			for e.store.CompactRevision() != int64(rv) {
				if time.Now().After(deadline) {
					t.Fatalf("store never saw compaction at %d (has %d)", rv, e.store.CompactRevision())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}

// callsValidation is upstream's check of how many values the transformer
// read and how many Range calls a paged list made (the store doubles the
// page size on sparse pages, up to its 10,000 maximum).
func (e *env) callsValidation() storagetesting.CallsValidation {
	rec := e.client.KV.(*storagetesting.KVRecorder)
	return func(t *testing.T, pageSize, processed uint64) {
		if reads := e.transformer.base.GetReadsAndReset(); reads != processed {
			t.Errorf("transformer reads: %d, want %d", reads, processed)
		}
		want := uint64(1)
		if pageSize != 0 {
			limit := pageSize
			for sum := uint64(1); sum < processed; {
				limit = min(limit*2, 10000)
				sum += limit
				want++
			}
		}
		if got := rec.GetReadsAndReset() + rec.GetStreamReadsAndReset(); got != want {
			t.Fatalf("range calls: %d, want %d", got, want)
		}
	}
}

// keys is the store's keys-only count function (its own getKeys is
// unexported): a keys-only prefix Range over the resource prefix.
func (e *env) keys() storage.KeysFunc {
	return func(ctx context.Context) ([]string, error) {
		resp, err := e.client.Client.KV.Get(ctx, e.etcdKey("/pods/"), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			out = append(out, string(kv.Key))
		}
		return out, nil
	}
}

// resetFeatureSupportChecker gives the subtest a fresh etcd feature
// checker (RangeStream and RequestWatchProgress support are cached in a
// package variable).
func resetFeatureSupportChecker(t *testing.T) {
	orig := etcdfeature.DefaultFeatureSupportChecker
	etcdfeature.DefaultFeatureSupportChecker = etcdfeature.NewDefaultFeatureSupportChecker()
	t.Cleanup(func() { etcdfeature.DefaultFeatureSupportChecker = orig })
}
