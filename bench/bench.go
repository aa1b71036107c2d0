// Package bench is a load generator for ZooKeeper-protocol servers: N
// clients, each with its own session, run one workload (create, set, get,
// exists, mixed, ...) for a duration or an operation count, and the latency
// of every operation is recorded. It drives Paddock and Apache ZooKeeper
// alike through an independent client library (go-zookeeper), so the two
// are measured the same way; `paddock bench` and the performance scripts
// are built on it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// Config describes one run.
type Config struct {
	// Servers is the connection list, host:port each.
	Servers []string
	// Workload is create, set, get, exists, delete or mixed.
	Workload string
	// Clients is the number of concurrent clients, each its own session.
	Clients int
	// Duration bounds the run; Ops, if > 0, bounds the number of operations
	// per client instead.
	Duration time.Duration
	Ops      int
	// ValueSize is the data size of created and written nodes.
	ValueSize int
	// Keys is how many nodes get/set/exists work over (pre-created).
	Keys int
	// ReadRatio is the share of reads in the mixed workload (0..1).
	ReadRatio float64
	// Root is the parent of the benchmark's nodes; it is deleted first.
	Root string
	// SessionTimeout for every client.
	SessionTimeout time.Duration
}

// Result summarises one run.
type Result struct {
	Workload  string         `json:"workload"`
	Clients   int            `json:"clients"`
	ValueSize int            `json:"value_size"`
	Ops       int64          `json:"ops"`
	Errors    map[string]int `json:"errors,omitempty"`
	Elapsed   time.Duration  `json:"elapsed_ns"`
	OpsPerSec float64        `json:"ops_per_sec"`
	Latency   LatencySummary `json:"latency_us"`
	Extra     map[string]any `json:"extra,omitempty"`
}

// LatencySummary holds percentiles in microseconds.
type LatencySummary struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func (c *Config) defaults() {
	if c.Clients <= 0 {
		c.Clients = 16
	}
	if c.Duration <= 0 && c.Ops <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.ValueSize < 0 {
		c.ValueSize = 0
	}
	if c.Keys <= 0 {
		c.Keys = 1000
	}
	if c.Root == "" {
		c.Root = "/paddock-bench"
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.ReadRatio == 0 {
		c.ReadRatio = 0.9
	}
}

// Connect opens one session and waits until it is established.
func Connect(servers []string, timeout time.Duration) (*zk.Conn, error) {
	conn, events, err := zk.Connect(servers, timeout, zk.WithLogger(log.New(io.Discard, "", 0)))
	if err != nil {
		return nil, err
	}
	deadline := time.After(timeout + 5*time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				go func() {
					for range events {
					}
				}()
				return conn, nil
			}
		case <-deadline:
			conn.Close()
			return nil, errors.New("bench: timed out connecting to " + strings.Join(servers, ","))
		}
	}
}

// DeleteAll removes path and everything below it.
func DeleteAll(c *zk.Conn, path string) error {
	children, _, err := c.Children(path)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ch := range children {
		if err := DeleteAll(c, path+"/"+ch); err != nil {
			return err
		}
	}
	if err := c.Delete(path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	return nil
}

// Run executes one benchmark.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	setup, err := Connect(cfg.Servers, cfg.SessionTimeout)
	if err != nil {
		return nil, err
	}
	defer setup.Close()
	if err := DeleteAll(setup, cfg.Root); err != nil {
		return nil, fmt.Errorf("bench: clean %s: %w", cfg.Root, err)
	}
	value := make([]byte, cfg.ValueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	acl := zk.WorldACL(zk.PermAll)
	if _, err := setup.Create(cfg.Root, nil, 0, acl); err != nil {
		return nil, err
	}
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/k%07d", cfg.Root, i)
	}
	if cfg.Workload != "create" {
		if err := precreate(setup, keys, value); err != nil {
			return nil, err
		}
	}

	conns := make([]*zk.Conn, cfg.Clients)
	for i := range conns {
		if conns[i], err = Connect(cfg.Servers, cfg.SessionTimeout); err != nil {
			return nil, err
		}
		defer conns[i].Close()
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		errs     = map[string]int{}
		deadline = time.Now().Add(cfg.Duration)
		stop     atomic.Bool
		counter  atomic.Int64
	)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Ops <= 0 {
		time.AfterFunc(cfg.Duration, func() { stop.Store(true) })
	}
	start := time.Now()
	for ci, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(ci), 42))
			lat := make([]time.Duration, 0, 1<<14)
			local := map[string]int{}
			for i := 0; ; i++ {
				if runCtx.Err() != nil || stop.Load() || (cfg.Ops > 0 && i >= cfg.Ops) || (cfg.Ops <= 0 && time.Now().After(deadline)) {
					break
				}
				key := keys[rng.IntN(len(keys))]
				t0 := time.Now()
				var err error
				switch cfg.Workload {
				case "create":
					_, err = c.Create(fmt.Sprintf("%s/c%d-%d", cfg.Root, ci, i), value, 0, acl)
				case "set":
					_, err = c.Set(key, value, -1)
				case "get":
					_, _, err = c.Get(key)
				case "exists":
					_, _, err = c.Exists(key)
				case "mixed":
					if rng.Float64() < cfg.ReadRatio {
						_, _, err = c.Get(key)
					} else {
						_, err = c.Set(key, value, -1)
					}
				default:
					err = fmt.Errorf("unknown workload %q", cfg.Workload)
				}
				lat = append(lat, time.Since(t0))
				counter.Add(1)
				if err != nil {
					local[err.Error()]++
					if strings.HasPrefix(err.Error(), "unknown workload") {
						break
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			for k, v := range local {
				errs[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := summarize(cfg, all, elapsed)
	if len(errs) > 0 {
		res.Errors = errs
	}
	_ = DeleteAll(setup, cfg.Root)
	return res, nil
}

// precreate makes the key space, pipelining with the async API.
func precreate(c *zk.Conn, keys []string, value []byte) error {
	acl := zk.WorldACL(zk.PermAll)
	const window = 256
	for i := 0; i < len(keys); i += window {
		var wg sync.WaitGroup
		var firstErr error
		var mu sync.Mutex
		for _, k := range keys[i:min(i+window, len(keys))] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Create(k, value, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
	}
	return nil
}

func summarize(cfg Config, lat []time.Duration, elapsed time.Duration) *Result {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p * float64(len(lat)-1))
		return float64(lat[i].Microseconds())
	}
	r := &Result{
		Workload: cfg.Workload, Clients: cfg.Clients, ValueSize: cfg.ValueSize,
		Ops: int64(len(lat)), Elapsed: elapsed,
		OpsPerSec: float64(len(lat)) / elapsed.Seconds(),
		Latency:   LatencySummary{P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), P999: pct(0.999), Max: pct(1)},
	}
	return r
}

// String formats a result as one table row.
func (r *Result) String() string {
	errs := 0
	for _, n := range r.Errors {
		errs += n
	}
	return fmt.Sprintf("%-8s clients=%-3d ops=%-8d %10.0f ops/s  p50=%6.0fus p99=%7.0fus p999=%7.0fus max=%7.0fus errors=%d",
		r.Workload, r.Clients, r.Ops, r.OpsPerSec, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max, errs)
}
