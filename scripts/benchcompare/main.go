// Command benchcompare measures Paddock against Apache ZooKeeper 3.8
// (Debian's package) on this machine in one run, and writes the results as
// a Markdown fragment, PNG plots and raw JSON lines (docs/perf/ by
// default). scripts/bench-compare is its wrapper.
//
// The matrix: workloads create/set/get/mixed × 1/16/64 clients, 100-byte
// values, on a standalone server and on a 3-member ensemble of each, with
// a FRESH server (ensemble) for every point and fsync on for both
// (Paddock always fsyncs its log; Apache runs with forceSync=yes). Paddock
// and Apache points alternate, and every point runs -repeat times, so
// that noise from other processes hits both alike; the tables give the
// best run and the spread between runs. Then the resident memory of each
// holding -nodes znodes (VmRSS from /proc/<pid>/status).
//
//	scripts/bench-compare            # full matrix, ~15 min on 2 cores
//	scripts/bench-compare -quick     # ~2 min: 16 clients, 1 run, 2s points
//	go run ./scripts/benchcompare -topologies standalone -workloads get -clients 64
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paddockhq/paddock/bench"
	"github.com/paddockhq/paddock/client"
	"github.com/paddockhq/paddock/internal/zkref"
)

var (
	quick      = flag.Bool("quick", false, "a ~2 minute run: -clients 16 -repeat 1 -duration 2s -nodes 20000, output to a temp dir unless -out is given")
	out        = flag.String("out", "docs/perf", "output directory (Markdown fragment, PNGs, results.jsonl, report.json)")
	replot     = flag.Bool("replot", false, "measure nothing: redraw the Markdown and PNGs in -out from its report.json and results.jsonl")
	topologies = flag.String("topologies", "standalone,ensemble", "standalone and/or ensemble (3 members)")
	workloads  = flag.String("workloads", "create,set,get,mixed", "workloads (see paddock bench -h)")
	clientsF   = flag.String("clients", "1,16,64", "client counts")
	duration   = flag.Duration("duration", 4*time.Second, "duration of each point")
	warmup     = flag.Duration("warmup", time.Second, "unmeasured load on the fresh server before each point")
	repeat     = flag.Int("repeat", 2, "runs of each point (the best is reported, with the spread)")
	valueSize  = flag.Int("value", 100, "value size in bytes")
	keys       = flag.Int("keys", 1000, "key space of set/get/mixed")
	nodes      = flag.Int("nodes", 100000, "znodes held for the memory figure (0 skips it)")
	only       = flag.String("only", "", "run only this server kind (paddock or apache)")
	paddockBin = flag.String("paddock", "", "prebuilt paddock binary (default: go build ./cmd/paddock)")
	apacheJVM  = flag.String("apache-jvm", "-Xmx1000m -XX:-UseSerialGC -XX:+UseG1GC -XX:TieredStopAtLevel=4",
		"JVM flags for Apache, after the harness's own (zkServer.sh's default heap of 1000 MB, the JVM's default collector and JIT)")
)

// A cluster is one started server or ensemble under test.
type cluster struct {
	addrs []string
	pids  []int
	stop  func()
}

var (
	runningMu sync.Mutex
	running   *cluster
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	outSet := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "out" {
			outSet = true
		}
	})
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["clients"] {
			*clientsF = "16"
		}
		if !set["repeat"] {
			*repeat = 1
		}
		if !set["duration"] {
			*duration = 2 * time.Second
		}
		if !set["warmup"] {
			*warmup = 500 * time.Millisecond
		}
		if !set["nodes"] {
			*nodes = 20000
		}
		if !outSet {
			*out = filepath.Join(os.TempDir(), "paddock-bench-compare-quick")
		}
	}
	if err := zkref.Available(); err != nil && *only != "paddock" {
		log.Fatalf("bench-compare: %v", err)
	}
	root, err := moduleRoot()
	if err != nil {
		log.Fatal(err)
	}
	if !filepath.IsAbs(*out) {
		*out = filepath.Join(root, *out)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	if *replot {
		rep, err := loadReport(*out)
		if err != nil {
			log.Fatalf("bench-compare -replot: %v", err)
		}
		if err := rep.write(*out); err != nil {
			log.Fatal(err)
		}
		log.Printf("redrew %s from its report.json and results.jsonl", filepath.Join(*out, "bench-compare.md"))
		return
	}
	bin := *paddockBin
	if bin == "" {
		var cleanup func()
		bin, cleanup = buildPaddock(root)
		defer cleanup()
	}

	// ^C stops the server under test before exiting.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		log.Printf("interrupted; stopping the servers")
		runningMu.Lock()
		if running != nil {
			running.stop()
		}
		os.Exit(130)
	}()

	kinds := []string{"paddock", "apache"}
	if *only != "" {
		kinds = []string{*only}
	}
	topos := splitList(*topologies)
	wls := splitList(*workloads)
	var cls []int
	for _, c := range splitList(*clientsF) {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			log.Fatalf("bad -clients %q", c)
		}
		cls = append(cls, n)
	}

	loadStart := loadAvg()
	rep := &report{
		Started: time.Now(), Command: commandLine(), Machine: machine(), Kinds: kinds, Topologies: topos,
		Workloads: wls, Clients: cls, Repeat: *repeat, Duration: *duration, Warmup: *warmup, ValueSize: *valueSize,
		Keys: *keys, Nodes: *nodes, Git: gitDescribe(root), ApacheJVM: *apacheJVM,
		Results: map[pointKey][]*bench.Result{}, Memory: map[memKey][]int64{},
	}
	raw, err := os.Create(filepath.Join(*out, "results.jsonl"))
	if err != nil {
		log.Fatal(err)
	}
	defer raw.Close()

	total := len(topos) * len(wls) * len(cls) * len(kinds) * *repeat
	done := 0
	t0 := time.Now()
	for _, topo := range topos {
		for _, w := range wls {
			for _, c := range cls {
				for r := range *repeat {
					order := slices.Clone(kinds)
					if (done/len(kinds))%2 == 1 {
						slices.Reverse(order) // alternate who goes first
					}
					for _, k := range order {
						res, err := point(bin, k, topo, w, c)
						done++
						if err != nil {
							log.Printf("[%d/%d] %s %s %s c=%d run %d: %v", done, total, k, topo, w, c, r+1, err)
							continue
						}
						res.Label = k + " " + topo
						key := pointKey{topo, w, c, k}
						rep.Results[key] = append(rep.Results[key], res)
						line, _ := json.Marshal(rawLine{res, topo, k, r + 1})
						fmt.Fprintf(raw, "%s\n", line)
						eta := time.Duration(float64(time.Since(t0)) / float64(done) * float64(total-done)).Round(time.Second)
						log.Printf("[%d/%d, ~%v left] %-7s %-10s %s", done, total, eta, k, topo, res)
					}
				}
			}
		}
	}
	if *nodes > 0 {
		for _, topo := range topos {
			for _, k := range kinds {
				rss, err := memoryPoint(bin, k, topo)
				if err != nil {
					log.Printf("memory %s %s: %v", k, topo, err)
					continue
				}
				rep.Memory[memKey{topo, k}] = rss
				log.Printf("%-7s %-10s RSS with %d znodes: %s", k, topo, *nodes, mibList(rss))
			}
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.LoadAvg = fmt.Sprintf("%s at the start, %s at the end", loadStart, loadAvg())
	if err := rep.write(*out); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s (in %v)", filepath.Join(*out, "bench-compare.md"), rep.Elapsed.Round(time.Second))
}

// point runs one measurement on a fresh cluster.
func point(bin, kind, topo, workload string, clients int) (*bench.Result, error) {
	c, err := start(bin, kind, topo)
	if err != nil {
		return nil, err
	}
	defer stopRunning()
	if *warmup > 0 {
		if _, err := bench.Run(context.Background(), bench.Config{
			Servers: c.addrs, Workload: workload, Clients: clients, Duration: *warmup,
			ValueSize: *valueSize, Keys: *keys, Keep: true, Root: "/warmup",
		}); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	return bench.Run(context.Background(), bench.Config{
		Servers: c.addrs, Workload: workload, Clients: clients, Duration: *duration,
		ValueSize: *valueSize, Keys: *keys, Keep: true, // the cluster is thrown away
	})
}

// memoryPoint fills a fresh cluster with -nodes znodes and reads every
// member's resident set.
func memoryPoint(bin, kind, topo string) ([]int64, error) {
	c, err := start(bin, kind, topo)
	if err != nil {
		return nil, err
	}
	defer stopRunning()
	conn, err := bench.Connect(c.addrs, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx := context.Background()
	if _, _, err := conn.Create(ctx, "/mem", nil, client.ModePersistent, nil); err != nil {
		return nil, err
	}
	value := make([]byte, *valueSize)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 256)
	)
	for i := range *nodes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, _, err := conn.Create(ctx, fmt.Sprintf("/mem/n%07d", i), value, client.ModePersistent, nil); err != nil {
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
		return nil, first
	}
	// Every member must hold the nodes (followers apply asynchronously).
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range c.addrs {
		for {
			out, err := zkref.FourLetter(a, "srvr", 2*time.Second)
			if err == nil && nodeCount(out) >= *nodes {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%s never reached %d nodes (srvr: %q, %v)", a, *nodes, out, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second) // let both runtimes settle after the burst
	var rss []int64
	for _, pid := range c.pids {
		r, err := vmRSS(pid)
		if err != nil {
			return nil, err
		}
		rss = append(rss, r)
	}
	return rss, nil
}

func nodeCount(srvr string) int {
	for _, line := range strings.Split(srvr, "\n") {
		if v, ok := strings.CutPrefix(line, "Node count: "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// start starts a fresh cluster, retrying twice: the free ports it picks
// can be taken by another process before the servers bind them.
func start(bin, kind, topo string) (*cluster, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var c *cluster
		if c, err = startOnce(bin, kind, topo); err == nil {
			return c, nil
		}
		log.Printf("start %s %s (attempt %d): %s", kind, topo, attempt, firstLine(err.Error()))
	}
	return nil, err
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

func startOnce(bin, kind, topo string) (*cluster, error) {
	var (
		c   *cluster
		err error
	)
	switch kind + " " + topo {
	case "paddock standalone":
		c, err = startPaddock(bin, 1)
	case "paddock ensemble":
		c, err = startPaddock(bin, 3)
	case "apache standalone":
		var s *zkref.Server
		s, err = zkref.StartServer(zkref.Options{JVMFlags: strings.Fields(*apacheJVM)})
		if err == nil {
			c = &cluster{addrs: []string{s.Addr}, pids: []int{s.PID}, stop: func() { _ = s.Stop() }}
		}
	case "apache ensemble":
		var e *zkref.Ensemble
		e, err = zkref.StartEnsembleServers(3, zkref.Options{JVMFlags: strings.Fields(*apacheJVM)})
		if err == nil {
			c = &cluster{addrs: e.Addrs(), stop: func() { _ = e.Stop() }}
			for _, s := range e.Servers {
				c.pids = append(c.pids, s.PID)
			}
		}
	default:
		return nil, fmt.Errorf("unknown server %q / topology %q", kind, topo)
	}
	if err != nil {
		return nil, err
	}
	runningMu.Lock()
	running = c
	runningMu.Unlock()
	return c, nil
}

func stopRunning() {
	runningMu.Lock()
	defer runningMu.Unlock()
	if running != nil {
		running.stop()
		running = nil
	}
}

// startPaddock starts a standalone server (n = 1) or an n-member ensemble
// of `paddock server` processes on loopback, each with its own data dir,
// and waits until every member reports its mode (and one is the leader).
func startPaddock(bin string, n int) (*cluster, error) {
	dir, err := os.MkdirTemp("", "paddock-bench-")
	if err != nil {
		return nil, err
	}
	ports, err := zkref.FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d;127.0.0.1:%d", i+1, ports[2*i+1], ports[2*i]))
	}
	c := &cluster{}
	var cmds []*exec.Cmd
	var logs []*os.File
	c.stop = func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, cmd := range cmds {
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		for _, f := range logs {
			f.Close()
		}
		os.RemoveAll(dir)
	}
	for i := range n {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[2*i])
		args := []string{"server", "--addr", addr, "--data-dir", filepath.Join(dir, fmt.Sprint(i+1), "data")}
		if n > 1 {
			args = append(args, "--server-id", fmt.Sprint(i+1), "--peer-addr", fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
				"--peers", strings.Join(peers, ","), "--cluster-id", "bench")
		}
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("server%d.log", i+1)))
		if err != nil {
			c.stop()
			return nil, err
		}
		logs = append(logs, logf)
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			c.stop()
			return nil, err
		}
		cmds = append(cmds, cmd)
		c.addrs = append(c.addrs, addr)
		c.pids = append(c.pids, cmd.Process.Pid)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		modes := map[string]int{}
		for _, a := range c.addrs {
			if out, err := zkref.FourLetter(a, "srvr", time.Second); err == nil {
				for _, line := range strings.Split(out, "\n") {
					if m, ok := strings.CutPrefix(line, "Mode: "); ok {
						modes[strings.TrimSpace(m)]++
					}
				}
			}
		}
		if (n == 1 && modes["standalone"] == 1) || (n > 1 && modes["leader"] == 1 && modes["follower"] == n-1) {
			return c, nil
		}
		if time.Now().After(deadline) {
			tail, _ := os.ReadFile(filepath.Join(dir, "server1.log"))
			c.stop()
			return nil, fmt.Errorf("paddock (%d members) not serving after 60s (modes %v)\n%s", n, modes, lastLines(string(tail), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func buildPaddock(root string) (string, func()) {
	dir, err := os.MkdirTemp("", "paddock-bench-bin-")
	if err != nil {
		log.Fatal(err)
	}
	bin := filepath.Join(dir, "paddock")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/paddock")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("build paddock: %v", err)
	}
	return bin, func() { os.RemoveAll(dir) }
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/paddockhq/paddock\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bench-compare: run it inside the paddock repository")
		}
		dir = parent
	}
}

func commandLine() string {
	args := os.Args[1:]
	quoted := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\"'$") {
			a = strconv.Quote(a)
		}
		quoted[i] = a
	}
	return strings.TrimSpace("scripts/bench-compare " + strings.Join(quoted, " "))
}

func gitDescribe(root string) string {
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// machineInfo describes where the figures were taken.
type machineInfo struct {
	CPUs     int
	CPUModel string
	MemTotal string
	Kernel   string
	Go       string
	Java     string
	TempFS   string
}

func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(v)
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					m.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if java, err := exec.LookPath("java"); err == nil {
		if b, err := exec.Command(java, "-version").CombinedOutput(); err == nil {
			m.Java = strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)[0]
		}
	}
	m.TempFS = filesystemOf(os.TempDir())
	return m
}

// filesystemOf names the mount that holds path, from /proc/mounts.
func filesystemOf(path string) string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	best, desc := "", "unknown"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			continue
		}
		mp := fs[1]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("%s on %s (%s)", fs[2], fs[0], mp)
		}
	}
	return desc
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func mibList(rss []int64) string {
	var parts []string
	for _, r := range rss {
		parts = append(parts, fmt.Sprintf("%.1f MiB", mib(r)))
	}
	return strings.Join(parts, ", ")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}
