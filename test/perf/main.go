// Command perf measures Paddock against Apache ZooKeeper 3.8 (Debian's
// package) on this machine in the same run: create/set/get throughput and
// latency with N clients, and the resident memory of each server holding
// 100k znodes. Each point runs on a freshly started server with fsync on.
// It prints Markdown tables for docs/PERFORMANCE.md.
//
//	go run ./test/perf -clients 64 -duration 10s -nodes 100000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/bench"
	"github.com/paddockhq/paddock/internal/zkref"
)

var (
	clients   = flag.Int("clients", 64, "concurrent clients (sessions)")
	duration  = flag.Duration("duration", 10*time.Second, "duration of each throughput point")
	valueSize = flag.Int("value", 100, "value size in bytes")
	nodes     = flag.Int("nodes", 100000, "znodes held for the memory figure")
	workloads = flag.String("workloads", "create,set,get", "workloads to run")
	only      = flag.String("only", "", "run only this server (paddock or apache)")
	heap      = flag.String("apache-heap", "-Xmx1000m", "JVM heap flag for Apache (zkEnv.sh's default is 1000m)")
)

// server is one started server under test.
type server struct {
	addr string
	pid  int
	stop func()
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	bin, cleanup := buildPaddock()
	defer cleanup()
	kinds := []string{"paddock", "apache"}
	if *only != "" {
		kinds = []string{*only}
	}
	start := map[string]func() server{
		"paddock": func() server { return startPaddock(bin) },
		"apache":  startApache,
	}
	results := map[string]map[string]*bench.Result{}
	for _, w := range strings.Split(*workloads, ",") {
		for _, k := range kinds {
			s := start[k]()
			r, err := bench.Run(context.Background(), bench.Config{
				Servers: []string{s.addr}, Workload: w, Clients: *clients,
				Duration: *duration, ValueSize: *valueSize, Keys: 10000,
			})
			s.stop()
			if err != nil {
				log.Fatalf("%s %s: %v", k, w, err)
			}
			log.Printf("%-8s %s", k, r)
			if results[w] == nil {
				results[w] = map[string]*bench.Result{}
			}
			results[w][k] = r
		}
	}
	mem := map[string]int64{}
	for _, k := range kinds {
		s := start[k]()
		rss, err := memoryWith(s, *nodes)
		s.stop()
		if err != nil {
			log.Fatalf("%s memory: %v", k, err)
		}
		log.Printf("%-8s RSS with %d znodes: %.1f MiB", k, *nodes, float64(rss)/(1<<20))
		mem[k] = rss
	}

	fmt.Printf("\n| workload | server | ops/s | p50 µs | p99 µs | p999 µs | max µs | errors |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range strings.Split(*workloads, ",") {
		for _, k := range kinds {
			r := results[w][k]
			errs := 0
			for _, n := range r.Errors {
				errs += n
			}
			fmt.Printf("| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %d |\n", w, k, r.OpsPerSec, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max, errs)
		}
	}
	fmt.Printf("\n| server | RSS with %d znodes (%d-byte values) |\n|---|---:|\n", *nodes, *valueSize)
	for _, k := range kinds {
		fmt.Printf("| %s | %.1f MiB |\n", k, float64(mem[k])/(1<<20))
	}
}

// memoryWith fills a fresh server with n znodes and reads its resident set.
func memoryWith(s server, n int) (int64, error) {
	c, err := bench.Connect([]string{s.addr}, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	acl := zk.WorldACL(zk.PermAll)
	if _, err := c.Create("/mem", nil, 0, acl); err != nil {
		return 0, err
	}
	value := make([]byte, *valueSize)
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	sem := make(chan struct{}, 256)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := c.Create(fmt.Sprintf("/mem/n%07d", i), value, 0, acl); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	time.Sleep(3 * time.Second) // let both runtimes settle after the burst
	return rss(s.pid)
}

func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func buildPaddock() (string, func()) {
	dir, err := os.MkdirTemp("", "paddock-perf-")
	if err != nil {
		log.Fatal(err)
	}
	bin := filepath.Join(dir, "paddock")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/paddock")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("build: %v", err)
	}
	return bin, func() { os.RemoveAll(dir) }
}

func startPaddock(bin string) server {
	ports, err := zkref.FreePorts(1)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "paddock-perf-data-")
	if err != nil {
		log.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cmd := exec.Command(bin, "server", "--addr", addr, "--data-dir", filepath.Join(dir, "data"))
	logf, _ := os.Create(filepath.Join(dir, "server.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	waitPort(addr)
	return server{addr: addr, pid: cmd.Process.Pid, stop: func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
		os.RemoveAll(dir)
	}}
}

func startApache() server {
	s, err := zkref.StartServer(zkref.Options{JVMFlags: []string{*heap}})
	if err != nil {
		log.Fatal(err)
	}
	return server{addr: s.Addr, pid: s.PID, stop: func() { _ = s.Stop() }}
}

func waitPort(addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s never accepted connections", addr)
}
