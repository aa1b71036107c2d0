package bench

// The etcd v3 workloads: the same clock, recorder and summary as the
// ZooKeeper ones, driven through etcd's own Go client
// (go.etcd.io/etcd/client/v3), so Paddock's etcd API and a real etcd are
// measured with the client kube-apiserver uses. Like etcd's own
// `benchmark` tool (tools/benchmark: put, range, txn-put) every client
// issues one request at a time; unlike it, every client here has its own
// gRPC connection, as every bench client of the ZooKeeper workloads has
// its own session.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"
)

// EtcdWorkloads lists the workload names RunEtcd accepts, in documentation
// order:
//
//	put    Put of a random key of the pre-created key space (an update)
//	range  linearizable Range (Get) of one random key of the key space
//	txn    kube-apiserver's update (GuaranteedUpdate / OptimisticPut):
//	       Txn If(ModRevision(k) == rev) Then(Put(k, v)) Else(Get(k)),
//	       each client on keys of its own, so every compare succeeds
var EtcdWorkloads = []string{"put", "range", "txn"}

// EtcdConfig describes one run against an etcd v3 endpoint.
type EtcdConfig struct {
	// Endpoints are etcd client URLs (http://host:port). Client i talks to
	// Endpoints[i % len(Endpoints)] only, so clients spread evenly over the
	// members of a cluster.
	Endpoints []string
	// Workload is one of [EtcdWorkloads].
	Workload string
	// Clients is the number of concurrent clients, each its own gRPC
	// connection with one request in flight.
	Clients int
	// Duration bounds the run; Ops, if > 0, bounds the total number of
	// operations over all clients instead.
	Duration time.Duration
	Ops      int
	// ValueSize is the size of every value written.
	ValueSize int
	// Keys is the size of the key space, written once before the clock
	// starts (at least Clients for txn).
	Keys int
	// Prefix holds the benchmark's keys; it is deleted first.
	Prefix string
	// Keep leaves the keys in place afterwards (the default deletes them).
	Keep bool
	// Progress, if set, is called about twice a second while the clock
	// runs, and once more at the end.
	Progress func(Progress)
}

func (c *EtcdConfig) defaults() {
	if c.Clients <= 0 {
		c.Clients = 16
	}
	if c.Duration <= 0 && c.Ops <= 0 {
		c.Duration = 10 * time.Second
	}
	c.ValueSize = max(c.ValueSize, 0)
	if c.Keys <= 0 {
		c.Keys = 1000
	}
	if c.Workload == "txn" {
		c.Keys = max(c.Keys, c.Clients)
	}
	if c.Prefix == "" {
		c.Prefix = "/paddock-bench/"
	}
}

// EtcdClient opens an etcd client of endpoints and checks that it answers
// (one Get), within timeout.
func EtcdClient(endpoints []string, timeout time.Duration) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: timeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("bench: etcd client of %s: %w", strings.Join(endpoints, ","), err)
	}
	ctx, cancel := context.WithTimeout(bg, timeout)
	defer cancel()
	if _, err := c.Get(ctx, "paddock-bench-ping"); err != nil {
		c.Close()
		return nil, fmt.Errorf("bench: etcd %s does not answer: %w", strings.Join(endpoints, ","), err)
	}
	return c, nil
}

// EtcdErrorKind names an etcd client error for the per-kind error counts:
// etcd's own error text where the server sent one (rpctypes), else the
// gRPC code.
func EtcdErrorKind(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "Timeout"
	}
	if errors.Is(err, errTxnFailed) {
		return "TxnCompareFailed"
	}
	if ee, ok := err.(rpctypes.EtcdError); ok {
		return ee.Error()
	}
	if st, ok := status.FromError(err); ok {
		return st.Code().String()
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

var errTxnFailed = errors.New("bench: txn compare failed")

// opTimeout bounds one request: a run never waits forever on a dead
// server (the failure is counted as Timeout).
const opTimeout = 30 * time.Second

// RunEtcd executes one etcd benchmark: it clears Prefix, writes the key
// space, opens the clients, runs the clock and summarises. Cancelling ctx
// ends the run early with the figures so far.
func RunEtcd(ctx context.Context, cfg EtcdConfig) (*Result, error) {
	cfg.defaults()
	if !slices.Contains(EtcdWorkloads, cfg.Workload) {
		return nil, fmt.Errorf("bench: unknown etcd workload %q (one of %s)", cfg.Workload, strings.Join(EtcdWorkloads, ", "))
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("bench: no etcd endpoints")
	}
	setup, err := EtcdClient(cfg.Endpoints, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer setup.Close()
	if _, err := setup.Delete(ctx, cfg.Prefix, clientv3.WithPrefix()); err != nil {
		return nil, fmt.Errorf("bench: clear %s: %w", cfg.Prefix, err)
	}
	if !cfg.Keep {
		defer setup.Delete(bg, cfg.Prefix, clientv3.WithPrefix())
	}
	value := strings.Repeat("abcdefghijklmnopqrstuvwxyz", cfg.ValueSize/26+1)[:cfg.ValueSize]
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%sk%07d", cfg.Prefix, i)
	}
	// Write the key space; remember each key's mod revision for txn.
	modRev := make([]int64, len(keys))
	if err := EtcdPutAll(ctx, setup, keys, func(int) string { return value }, 64, func(i int, rev int64) { modRev[i] = rev }); err != nil {
		return nil, err
	}

	conns := make([]*clientv3.Client, cfg.Clients)
	errs := make([]error, cfg.Clients)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], errs[i] = EtcdClient([]string{cfg.Endpoints[i%len(cfg.Endpoints)]}, 10*time.Second)
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	var rec recorder
	zcfg := Config{Workload: cfg.Workload, Clients: cfg.Clients, Duration: cfg.Duration, Ops: cfg.Ops,
		ValueSize: cfg.ValueSize, Keys: cfg.Keys, Progress: cfg.Progress}
	k := startClock(ctx, zcfg, &rec)
	for ci, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(ci), 42))
			lat := make([]time.Duration, 0, 1<<12)
			kinds := map[string]int{}
			// txn: client ci owns keys ci, ci+N, ci+2N, ...
			var own []int
			for j := ci; j < len(keys); j += len(conns) {
				own = append(own, j)
			}
			for k.next() {
				t0 := time.Now()
				octx, cancel := context.WithTimeout(bg, opTimeout)
				var err error
				switch cfg.Workload {
				case "put":
					_, err = c.Put(octx, keys[rng.IntN(len(keys))], value)
				case "range":
					_, err = c.Get(octx, keys[rng.IntN(len(keys))])
				case "txn":
					j := own[rng.IntN(len(own))]
					key := keys[j]
					var r *clientv3.TxnResponse
					r, err = c.Txn(octx).
						If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev[j])).
						Then(clientv3.OpPut(key, value)).
						Else(clientv3.OpGet(key)).Commit()
					switch {
					case err != nil:
					case r.Succeeded:
						modRev[j] = r.Header.Revision
					default:
						if kvs := r.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
							modRev[j] = kvs[0].ModRevision
						}
						err = errTxnFailed
					}
				}
				cancel()
				d := time.Since(t0)
				if err != nil {
					kinds[EtcdErrorKind(err)]++
					rec.errs.Add(1)
					continue
				}
				lat = append(lat, d)
				rec.ops.Add(1)
			}
			rec.add(lat, kinds)
		}()
	}
	wg.Wait()
	elapsed := k.finish()
	res := summarize(zcfg, "op", rec.lat, elapsed)
	res.Keys = cfg.Keys
	if len(rec.kinds) > 0 {
		res.Errors = rec.kinds
	}
	for _, n := range rec.kinds {
		res.ErrorCount += int64(n)
	}
	return res, nil
}

// EtcdPutAll puts value(i) under every keys[i] with up to inflight
// requests at once on c, and reports each key's mod revision to done (if
// set). It stops at the first error.
func EtcdPutAll(ctx context.Context, c *clientv3.Client, keys []string, value func(i int) string, inflight int, done func(i int, rev int64)) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, max(inflight, 1))
	)
	for i, key := range keys {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			r, err := c.Put(octx, key, value(i))
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("bench: put %s: %w", key, err)
				}
				mu.Unlock()
				return
			}
			if done != nil {
				done(i, r.Header.Revision)
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
