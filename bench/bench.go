// Package bench is a load generator for ZooKeeper-protocol servers: N
// clients, each with its own session, run one workload for a duration or
// an operation count, and the latency of every operation is recorded. It
// drives Paddock and Apache ZooKeeper alike through the project's client
// (package client), so the two are measured with the same client, the
// one Paddock's own tools use; `paddock bench` and scripts/bench-compare
// are built on it.
//
// The workloads follow ZooKeeper's own smoke tests (create/set/get/delete
// of small nodes by synchronous clients) and ClickHouse's keeper-bench
// (create, set, get, list of wide nodes, multi, mixed ratios):
//
//	create   each op creates a new persistent node under Root
//	set      setData (version -1) on a random node of the key space
//	get      getData of a random node of the key space
//	exists   exists of a random node of the key space
//	delete   deletes the pre-created key space, each client its own share;
//	         a client stops when its share is gone
//	mixed    get with probability ReadRatio, otherwise set
//	multi    one multi transaction of MultiOps creates per op
//	list     getChildren of one node with Children children
//	watch    watch storm: every client sets a data watch on one node, one
//	         setData fires them all; one op is one round, its latency the
//	         time from the setData until the last watcher got its event
//	connect  connect storm: every client opens a session at once; one op is
//	         one round, its latency the time until the last session is
//	         established (the sessions are closed between rounds)
//
// Every client issues one request at a time and waits for its reply, as
// ZooKeeper's smoke tests and keeper-bench do, so throughput scales with
// the number of clients until the server saturates.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/client"
)

// Workloads lists the workload names Run accepts, in documentation order.
var Workloads = []string{"create", "set", "get", "exists", "delete", "mixed", "multi", "list", "watch", "connect"}

// Config describes one run.
type Config struct {
	// Servers is the connection list, host:port each. Every session picks
	// its own server from the list (the client shuffles it), so clients
	// spread over the members of an ensemble.
	Servers []string
	// Workload is one of [Workloads].
	Workload string
	// Clients is the number of concurrent clients, each its own session
	// (for watch: the number of watchers; for connect: sessions per round).
	Clients int
	// Duration bounds the run. Ops, if > 0, bounds the total number of
	// operations over all clients instead (rounds for watch and connect).
	Duration time.Duration
	Ops      int
	// ValueSize is the data size of created and written nodes.
	ValueSize int
	// Keys is how many nodes set/get/exists/mixed/delete work over
	// (pre-created before the clock starts).
	Keys int
	// ReadRatio is the share of reads in the mixed workload, in (0,1]; 0
	// means 0.9. (For pure writes use the set workload.)
	ReadRatio float64
	// MultiOps is the number of creates per multi transaction (default 10).
	MultiOps int
	// Children is the number of children of the listed node (default 1000).
	Children int
	// Root is the parent of the benchmark's nodes; it is deleted first.
	Root string
	// SessionTimeout for every client.
	SessionTimeout time.Duration
	// Keep leaves Root and everything the run created in place (the
	// default deletes it afterwards, which takes a while after a long
	// create run).
	Keep bool
	// Progress, if set, is called about twice a second while the clock
	// runs, and once more at the end.
	Progress func(Progress)
}

// Progress is a snapshot of a running benchmark.
type Progress struct {
	Workload string
	Clients  int
	Elapsed  time.Duration
	Ops      int64
	Errors   int64
	Done     bool
}

// Result summarises one run. It is what `paddock bench -o json` prints, one
// JSON object per line.
type Result struct {
	// Label names the target (set by callers such as bench-compare).
	Label     string  `json:"label,omitempty"`
	Workload  string  `json:"workload"`
	Clients   int     `json:"clients"`
	ValueSize int     `json:"value_size"`
	Keys      int     `json:"keys,omitempty"`
	ReadRatio float64 `json:"read_ratio,omitempty"`
	MultiOps  int     `json:"multi_ops,omitempty"`
	Children  int     `json:"children,omitempty"`
	// Unit is "op" for request workloads and "round" for watch and
	// connect, whose Ops count rounds and whose latency is per round.
	Unit string `json:"unit"`
	// Ops counts successful operations (or rounds); failed ones are in
	// Errors, by kind (NoNode, NodeExists, ConnectionLoss, Timeout, ...).
	Ops        int64          `json:"ops"`
	ErrorCount int64          `json:"error_count"`
	Errors     map[string]int `json:"errors,omitempty"`
	Elapsed    time.Duration  `json:"elapsed_ns"`
	OpsPerSec  float64        `json:"ops_per_sec"`
	// Latency of successful operations (rounds), in microseconds.
	Latency LatencySummary `json:"latency_us"`
	// Extra holds workload-specific figures: per-event latency for watch,
	// per-session connect latency for connect, sub-operations per second
	// for multi.
	Extra map[string]any `json:"extra,omitempty"`
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
	if c.ReadRatio <= 0 || c.ReadRatio > 1 {
		c.ReadRatio = 0.9
	}
	if c.MultiOps <= 0 {
		c.MultiOps = 10
	}
	if c.Children <= 0 {
		c.Children = 1000
	}
}

// bg is the context of the benchmark's requests: a run ends between
// requests, never by cancelling one, and a request on a broken connection
// fails on its own (the client gives a silent server up after 2/3 of the
// session timeout).
var bg = context.Background()

// Connect opens one session and waits until it is established, at most
// timeout + 5s.
func Connect(servers []string, timeout time.Duration) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(bg, timeout+5*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, servers, client.WithSessionTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("bench: connecting to %s: %w", strings.Join(servers, ","), err)
	}
	return c, nil
}

// DeleteAll removes path and everything below it, deleting the children
// of each node concurrently (pipelined on the one session).
func DeleteAll(c *client.Client, path string) error {
	children, _, err := c.Children(bg, path)
	if errors.Is(err, client.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 256)
	)
	for _, ch := range children {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := DeleteAll(c, joinPath(path, ch)); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if path == "/" {
		return nil
	}
	if err := c.Delete(bg, path, client.AnyVersion); err != nil && !errors.Is(err, client.ErrNoNode) {
		return err
	}
	return nil
}

func joinPath(parent, child string) string {
	if parent == "/" {
		return "/" + child
	}
	return parent + "/" + child
}

// ErrorKind names an error the way ZooKeeper's KeeperException codes do
// (NoNode, NodeExists, BadVersion, ConnectionLoss, SessionExpired, ...),
// for the per-kind error counts.
func ErrorKind(err error) string {
	var ce client.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ce):
		return ce.Code().String()
	case errors.Is(err, client.ErrClosed):
		return "ConnectionLoss"
	case errors.Is(err, errTimeout), errors.Is(err, context.DeadlineExceeded):
		return "Timeout"
	case errors.Is(err, errWatchLost):
		return "WatchLost"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

var (
	errTimeout   = errors.New("bench: timed out")
	errWatchLost = errors.New("bench: watch ended without a data-changed event")
)

// recorder gathers latencies and errors from the clients.
type recorder struct {
	ops, errs atomic.Int64
	mu        sync.Mutex
	lat       []time.Duration
	kinds     map[string]int
}

func (r *recorder) add(lat []time.Duration, kinds map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat = append(r.lat, lat...)
	if r.kinds == nil {
		r.kinds = map[string]int{}
	}
	for k, v := range kinds {
		r.kinds[k] += v
	}
}

// Run executes one benchmark: it prepares Root, opens the sessions, runs
// the clock, and summarises. Cancelling ctx ends the run early with the
// figures so far.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if !slices.Contains(Workloads, cfg.Workload) {
		return nil, fmt.Errorf("bench: unknown workload %q (one of %s)", cfg.Workload, strings.Join(Workloads, ", "))
	}
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
	if _, _, err := setup.Create(bg, cfg.Root, nil, client.ModePersistent, nil); err != nil {
		return nil, fmt.Errorf("bench: create %s: %w", cfg.Root, err)
	}
	if !cfg.Keep {
		defer DeleteAll(setup, cfg.Root)
	}

	var rec recorder
	var res *Result
	switch cfg.Workload {
	case "watch":
		res, err = runWatch(ctx, cfg, setup, value, &rec)
	case "connect":
		res, err = runConnect(ctx, cfg, &rec)
	default:
		res, err = runOps(ctx, cfg, setup, value, &rec)
	}
	if err != nil {
		return nil, err
	}
	if len(rec.kinds) > 0 {
		res.Errors = rec.kinds
	}
	for _, n := range rec.kinds {
		res.ErrorCount += int64(n)
	}
	return res, nil
}

// clock tells clients when to stop: after Duration, after Ops claims, or
// when the context ends; and reports progress.
type clock struct {
	cfg      Config
	ctx      context.Context
	start    time.Time
	deadline time.Time
	claimed  atomic.Int64
	rec      *recorder
	stopProg chan struct{}
	progDone chan struct{}
}

func startClock(ctx context.Context, cfg Config, rec *recorder) *clock {
	k := &clock{cfg: cfg, ctx: ctx, start: time.Now(), rec: rec,
		stopProg: make(chan struct{}), progDone: make(chan struct{})}
	if cfg.Ops <= 0 {
		k.deadline = k.start.Add(cfg.Duration)
	}
	go func() {
		defer close(k.progDone)
		if cfg.Progress == nil {
			return
		}
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-k.stopProg:
				return
			case <-t.C:
				cfg.Progress(k.progress(false))
			}
		}
	}()
	return k
}

func (k *clock) progress(done bool) Progress {
	return Progress{Workload: k.cfg.Workload, Clients: k.cfg.Clients, Elapsed: time.Since(k.start),
		Ops: k.rec.ops.Load(), Errors: k.rec.errs.Load(), Done: done}
}

// next reports whether another operation (round) may start.
func (k *clock) next() bool {
	if k.ctx.Err() != nil {
		return false
	}
	if k.cfg.Ops > 0 {
		return k.claimed.Add(1) <= int64(k.cfg.Ops)
	}
	return time.Now().Before(k.deadline)
}

// finish stops the progress reports and returns the elapsed time.
func (k *clock) finish() time.Duration {
	elapsed := time.Since(k.start)
	close(k.stopProg)
	<-k.progDone
	if k.cfg.Progress != nil {
		p := k.progress(true)
		p.Elapsed = elapsed
		k.cfg.Progress(p)
	}
	return elapsed
}

// connectAll opens n sessions concurrently.
func connectAll(ctx context.Context, cfg Config, n int) ([]*client.Client, error) {
	conns := make([]*client.Client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			conns[i], errs[i] = Connect(cfg.Servers, cfg.SessionTimeout)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, ctx.Err()
}

func closeAll(conns []*client.Client) {
	var wg sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
	}
	wg.Wait()
}

// runOps runs the request workloads: every client loops issuing one
// synchronous request at a time.
func runOps(ctx context.Context, cfg Config, setup *client.Client, value []byte, rec *recorder) (*Result, error) {
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/k%07d", cfg.Root, i)
	}
	wide := cfg.Root + "/wide"
	switch cfg.Workload {
	case "set", "get", "exists", "mixed", "delete":
		if err := precreate(setup, keys, value); err != nil {
			return nil, err
		}
	case "list":
		if _, _, err := setup.Create(bg, wide, nil, client.ModePersistent, nil); err != nil {
			return nil, err
		}
		children := make([]string, cfg.Children)
		for i := range children {
			children[i] = fmt.Sprintf("%s/c%07d", wide, i)
		}
		if err := precreate(setup, children, value); err != nil {
			return nil, err
		}
	}
	conns, err := connectAll(ctx, cfg, cfg.Clients)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)

	k := startClock(ctx, cfg, rec)
	var wg sync.WaitGroup
	for ci, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(ci), 42))
			lat := make([]time.Duration, 0, 1<<12)
			kinds := map[string]int{}
			// delete: client ci owns keys ci, ci+N, ci+2N, ...
			nextDelete := ci
			for i := 0; ; i++ {
				if cfg.Workload == "delete" && nextDelete >= len(keys) {
					break
				}
				if !k.next() {
					break
				}
				key := keys[rng.IntN(len(keys))]
				t0 := time.Now()
				var err error
				switch cfg.Workload {
				case "create":
					_, _, err = c.Create(bg, fmt.Sprintf("%s/c%d-%d", cfg.Root, ci, i), value, client.ModePersistent, nil)
				case "set":
					_, err = c.Set(bg, key, value, client.AnyVersion)
				case "get":
					_, _, err = c.Get(bg, key)
				case "exists":
					_, _, err = c.Exists(bg, key)
				case "delete":
					err = c.Delete(bg, keys[nextDelete], client.AnyVersion)
					nextDelete += len(conns)
				case "mixed":
					if rng.Float64() < cfg.ReadRatio {
						_, _, err = c.Get(bg, key)
					} else {
						_, err = c.Set(bg, key, value, client.AnyVersion)
					}
				case "multi":
					ops := make([]client.Op, cfg.MultiOps)
					for j := range ops {
						ops[j] = client.CreateOp(fmt.Sprintf("%s/m%d-%d-%d", cfg.Root, ci, i, j), value, client.ModePersistent, nil)
					}
					_, err = c.Multi(bg, ops...) // a failed transaction's error names the failing op
				case "list":
					_, _, err = c.Children(bg, wide)
				}
				d := time.Since(t0)
				if err != nil {
					kinds[ErrorKind(err)]++
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
	res := summarize(cfg, "op", rec.lat, elapsed)
	if cfg.Workload == "multi" {
		res.Extra = map[string]any{"sub_ops_per_sec": res.OpsPerSec * float64(cfg.MultiOps)}
	}
	return res, nil
}

// runWatch runs watch-storm rounds: all clients watch one node, one
// setData fires every watch; a round's latency is the time from the
// setData until the last event arrived.
func runWatch(ctx context.Context, cfg Config, setup *client.Client, value []byte, rec *recorder) (*Result, error) {
	node := cfg.Root + "/watched"
	if _, _, err := setup.Create(bg, node, value, client.ModePersistent, nil); err != nil {
		return nil, err
	}
	conns, err := connectAll(ctx, cfg, cfg.Clients)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	// A watch that is not delivered within this bound counts as an error.
	wait := max(10*time.Second, cfg.SessionTimeout)

	var rounds, events []time.Duration
	kinds := map[string]int{}
	k := startClock(ctx, cfg, rec)
	for k.next() {
		chans := make([]<-chan client.Event, len(conns))
		regErrs := make([]error, len(conns))
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, chans[i], regErrs[i] = c.GetW(bg, node)
			}()
		}
		wg.Wait()
		if err := errors.Join(regErrs...); err != nil {
			kinds[ErrorKind(regErrs[slices.IndexFunc(regErrs, func(e error) bool { return e != nil })])]++
			rec.errs.Add(1)
			continue
		}
		t0 := time.Now()
		if _, err := setup.Set(bg, node, value, client.AnyVersion); err != nil {
			kinds[ErrorKind(err)]++
			rec.errs.Add(1)
			continue
		}
		lats := make([]time.Duration, len(conns))
		evErrs := make([]error, len(conns))
		expired := make(chan struct{}) // closed: every waiter gives up
		timeout := time.AfterFunc(wait, func() { close(expired) })
		for i, ch := range chans {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case ev := <-ch:
					lats[i] = time.Since(t0)
					if ev.Type != client.EventNodeDataChanged {
						evErrs[i] = errWatchLost
					}
				case <-expired:
					evErrs[i] = errTimeout
				}
			}()
		}
		wg.Wait()
		timeout.Stop()
		failed := false
		for _, e := range evErrs {
			if e != nil {
				kinds[ErrorKind(e)]++
				failed = true
			}
		}
		if failed {
			rec.errs.Add(1)
			continue
		}
		events = append(events, lats...)
		rounds = append(rounds, slices.Max(lats))
		rec.ops.Add(1)
	}
	elapsed := k.finish()
	rec.add(rounds, kinds)
	res := summarize(cfg, "round", rounds, elapsed)
	res.Extra = map[string]any{"watchers": cfg.Clients, "events": len(events),
		"event_latency_us": percentiles(events)}
	return res, nil
}

// runConnect runs connect-storm rounds: all clients open a session at
// once; a round's latency is the time until the last one is established.
func runConnect(ctx context.Context, cfg Config, rec *recorder) (*Result, error) {
	var rounds, sessions []time.Duration
	kinds := map[string]int{}
	k := startClock(ctx, cfg, rec)
	for k.next() {
		conns := make([]*client.Client, cfg.Clients)
		lats := make([]time.Duration, cfg.Clients)
		errs := make([]error, cfg.Clients)
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conns[i], errs[i] = Connect(cfg.Servers, cfg.SessionTimeout)
				lats[i] = time.Since(t0)
			}()
		}
		wg.Wait()
		round := time.Since(t0)
		closeAll(conns)
		failed := false
		for i, e := range errs {
			if e != nil {
				kinds[ErrorKind(e)]++
				failed = true
			} else {
				sessions = append(sessions, lats[i])
			}
		}
		if failed {
			rec.errs.Add(1)
			continue
		}
		rounds = append(rounds, round)
		rec.ops.Add(1)
	}
	elapsed := k.finish()
	rec.add(rounds, kinds)
	res := summarize(cfg, "round", rounds, elapsed)
	res.Extra = map[string]any{"sessions_per_round": cfg.Clients,
		"sessions_per_sec":   float64(len(sessions)) / elapsed.Seconds(),
		"session_latency_us": percentiles(sessions)}
	return res, nil
}

// precreate makes the given nodes, pipelining on the one session.
func precreate(c *client.Client, paths []string, value []byte) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 256)
	)
	for _, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, _, err := c.Create(bg, p, value, client.ModePersistent, nil); err != nil && !errors.Is(err, client.ErrNodeExists) {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("bench: precreate %s: %w", p, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// percentiles summarises latencies (nearest rank), in microseconds.
func percentiles(lat []time.Duration) LatencySummary {
	if len(lat) == 0 {
		return LatencySummary{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return math.Round(float64(s[i].Nanoseconds())/100) / 10
	}
	return LatencySummary{P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), P999: pct(0.999), Max: pct(1)}
}

func summarize(cfg Config, unit string, lat []time.Duration, elapsed time.Duration) *Result {
	r := &Result{
		Workload: cfg.Workload, Clients: cfg.Clients, ValueSize: cfg.ValueSize, Unit: unit,
		Ops: int64(len(lat)), Elapsed: elapsed,
		OpsPerSec: float64(len(lat)) / elapsed.Seconds(),
		Latency:   percentiles(lat),
	}
	switch cfg.Workload {
	case "set", "get", "exists", "delete":
		r.Keys = cfg.Keys
	case "mixed":
		r.Keys, r.ReadRatio = cfg.Keys, cfg.ReadRatio
	case "multi":
		r.MultiOps = cfg.MultiOps
	case "list":
		r.Children = cfg.Children
	}
	return r
}

// String formats a result as one line.
func (r *Result) String() string {
	return fmt.Sprintf("%-8s clients=%-3d %s=%-8d %10.0f %s/s  p50=%7.0fus p99=%7.0fus p999=%7.0fus max=%7.0fus errors=%d",
		r.Workload, r.Clients, r.Unit+"s", r.Ops, r.OpsPerSec, r.Unit+"s", r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max, r.ErrorCount)
}

// WriteTable writes results as an aligned text table.
func WriteTable(w io.Writer, results []*Result) {
	fmt.Fprintf(w, "%-8s %7s %6s %9s %11s %9s %9s %9s %9s %9s  %s\n",
		"workload", "clients", "unit", "ops", "ops/s", "p50 µs", "p90 µs", "p99 µs", "p999 µs", "max µs", "errors")
	for _, r := range results {
		errs := "0"
		if r.ErrorCount > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
				parts = append(parts, fmt.Sprintf("%s=%d", k, r.Errors[k]))
			}
			errs = strings.Join(parts, " ")
		}
		fmt.Fprintf(w, "%-8s %7d %6s %9d %11.0f %9.0f %9.0f %9.0f %9.0f %9.0f  %s\n",
			r.Workload, r.Clients, r.Unit, r.Ops, r.OpsPerSec, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max, errs)
		if r.Extra != nil {
			if v, ok := r.Extra["event_latency_us"].(LatencySummary); ok {
				fmt.Fprintf(w, "%-8s %7s %6s %9v %11s %9.0f %9.0f %9.0f %9.0f %9.0f  (per watch event)\n", "", "", "event", r.Extra["events"], "", v.P50, v.P90, v.P99, v.P999, v.Max)
			}
			if v, ok := r.Extra["session_latency_us"].(LatencySummary); ok {
				fmt.Fprintf(w, "%-8s %7s %6s %9s %11.0f %9.0f %9.0f %9.0f %9.0f %9.0f  (per session)\n", "", "", "sess", "", r.Extra["sessions_per_sec"], v.P50, v.P90, v.P99, v.P999, v.Max)
			}
			if v, ok := r.Extra["sub_ops_per_sec"].(float64); ok {
				fmt.Fprintf(w, "%-8s %7s %6s %9s %11.0f  (creates/s inside the multis)\n", "", "", "subop", "", v)
			}
		}
	}
}
