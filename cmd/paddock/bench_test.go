package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/paddockhq/paddock/bench"
	"github.com/paddockhq/paddock/etcdapi"
	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/zkref"
	"github.com/paddockhq/paddock/server"
)

// TestBenchSmoke runs `paddock bench` for a couple of seconds against an
// in-process server, every workload briefly, and checks that the JSON
// lines parse, count operations and report no errors.
func TestBenchSmoke(t *testing.T) {
	benchSmoke(t, startBenchServer(t).Addr().String())
}

// startBenchServer runs an in-process standalone server.
func startBenchServer(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{
		ListenAddr: "127.0.0.1:0",
		DataDir:    t.TempDir(),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
	})
	return srv
}

// TestBenchEtcdSmoke runs `paddock bench -etcd`, every etcd workload
// briefly, against Paddock's etcd API (in process, as `paddock server
// --etcd-listen` wires it).
func TestBenchEtcdSmoke(t *testing.T) {
	srv := startBenchServer(t)
	api := etcdapi.New(srv, etcdapi.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go api.Serve(ln)
	t.Cleanup(func() { api.Close() })
	benchEtcdSmoke(t, "http://"+ln.Addr().String())
}

// TestBenchEtcdSmokeEtcd runs the same against a real etcd 3.7 (the tools
// module's binary, as make perf-etcd measures it): the bench must drive
// both.
func TestBenchEtcdSmokeEtcd(t *testing.T) {
	benchEtcdSmoke(t, k8sharness.StartEtcd(t, nil).Endpoint)
}

// benchEtcdSmoke runs every etcd workload briefly against endpoint (a
// fixed number of operations: seeded, nothing timed) and checks the JSON
// lines.
func benchEtcdSmoke(t *testing.T, endpoint string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "-etcd", "-servers", endpoint, "-clients", "1,4",
		"-ops", "200", "-keys", "50", "-value", "512", "-o", "json", "-progress", "off"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("paddock bench -etcd exited %d\nstderr:\n%s", code, stderr.String())
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r bench.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		seen[r.Workload]++
		if r.Ops != 200 || r.OpsPerSec <= 0 || r.ValueSize != 512 || r.Keys != 50 {
			t.Errorf("%s: want 200 ops of 512 bytes over 50 keys: %s", r.Workload, sc.Text())
		}
		if r.ErrorCount != 0 || len(r.Errors) != 0 {
			t.Errorf("%s: errors: %v", r.Workload, r.Errors)
		}
		if r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 || r.Latency.P99 < r.Latency.P50 {
			t.Errorf("%s: implausible summary: %s", r.Workload, sc.Text())
		}
	}
	for _, w := range bench.EtcdWorkloads {
		if seen[w] != 2 {
			t.Errorf("workload %s: %d results, want 2 (1 and 4 clients)", w, seen[w])
		}
	}
	// The benchmark cleans up after itself and leaves a server that answers.
	c, err := bench.EtcdClient([]string{endpoint}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Get(context.Background(), "/paddock-bench/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || r.Count != 0 {
		t.Errorf("keys left under /paddock-bench/: %v %v", r, err)
	}
}

// TestBenchSmokeZooKeeper runs the same against Apache ZooKeeper 3.8, as
// scripts/bench-compare measures it: the bench's client must drive both.
func TestBenchSmokeZooKeeper(t *testing.T) {
	zkref.Require(t)
	benchSmoke(t, zkref.Start(t, zkref.Options{}).Addr)
}

// benchSmoke runs every workload briefly against addr and checks the
// JSON lines.
func benchSmoke(t *testing.T, addr string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "-servers", addr,
		"-workload", strings.Join(bench.Workloads, ","), "-clients", "3",
		"-duration", "200ms", "-keys", "200", "-children", "50", "-multi", "3",
		"-o", "json", "-progress", "off"}
	start := time.Now()
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("paddock bench exited %d\nstderr:\n%s", code, stderr.String())
	}
	t.Logf("%d workloads in %v", len(bench.Workloads), time.Since(start).Round(time.Millisecond))

	seen := map[string]bool{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r bench.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		seen[r.Workload] = true
		if r.Ops <= 0 || r.OpsPerSec <= 0 {
			t.Errorf("%s: no operations: %s", r.Workload, sc.Text())
		}
		if r.ErrorCount != 0 || len(r.Errors) != 0 {
			t.Errorf("%s: errors: %v", r.Workload, r.Errors)
		}
		if r.Clients != 3 || r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 || r.Latency.P99 < r.Latency.P50 {
			t.Errorf("%s: implausible summary: %s", r.Workload, sc.Text())
		}
	}
	for _, w := range bench.Workloads {
		if !seen[w] {
			t.Errorf("no result for workload %s", w)
		}
	}
}

// TestBenchFlags checks that bad flags are refused with exit code 2.
func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-workload", "nope"},
		{"-clients", "0"},
		{"-o", "xml"},
		{"-root", "/"},
		{"-read-ratio", "1.5"},
		{"-etcd", "-workload", "set"},
		{"-workload", "put"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(append([]string{"bench"}, args...), &stdout, &stderr); code != 2 {
			t.Errorf("bench %v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}
