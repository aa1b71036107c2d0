package etcdperf

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/paddockhq/paddock/bench"
	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/zkref"
)

var (
	memFull      = flag.Bool("etcdperf.memory", false, "run the full memory measurement and write docs/PERFORMANCE.md (make perf-etcd-memory)")
	memStages    = flag.String("etcdperf.mem.stages", "100000,250000,500000", "key counts at which memory is read")
	memRevisions = flag.Int("etcdperf.mem.revisions", 3, "versions per key in the history stage (the keyspace is rewritten revisions-1 times)")
	memKinds     = flag.String("etcdperf.mem.kinds", "paddock,etcd", "servers measured")
	memMembers   = flag.Int("etcdperf.mem.members", 1, "members per cluster (the largest member's memory is reported)")
)

// memKey is the i-th key: shaped like kube-apiserver's, 40-odd bytes.
func memKey(i int) string { return fmt.Sprintf("/registry/pods/ns-%03d/pod-%07d", i%200, i) }

// memValueSize is the i-th value's size: spread over 1-4 KiB (mean
// ~2.5 KiB), the range of typical Kubernetes objects as stored (protobuf).
func memValueSize(i int) int { return 1024 + int(uint32(i)*2654435761%3073) }

// memNoise is seeded random text: values are slices of it, so neither
// server's storage sees trivially compressible data.
var memNoise = func() string {
	rng := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, 8192)
	for i := range b {
		b[i] = byte('!' + rng.IntN(94))
	}
	return string(b)
}()

// memValue is the i-th value.
func memValue(i int) string {
	off := int(uint32(i) * 40503 % 4096)
	return memNoise[off : off+memValueSize(i)]
}

// memSample is one reading.
type memSample struct {
	Stage     string
	Keys      int
	Versions  int   // versions per key retained (before compaction)
	DataBytes int64 // live keys + values
	HeldBytes int64 // keys + values of every retained version
	Mem       procMem
	Peak      int64 // VmHWM so far
	Empty     int64 // RSS of the fresh server before the first write
	Retried   int   // put batches retried so far after a timeout
	Heap      goHeap
}

// goHeap is Paddock's Go heap from its /metrics (client_golang's Go
// collector), bytes.
type goHeap struct {
	Alloc, InUse, Idle, Released int64
}

func readGoHeap(t testing.TB, admin string) goHeap {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return goHeap{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var h goHeap
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "go_memstats_heap_alloc_bytes":
			h.Alloc = int64(v)
		case "go_memstats_heap_inuse_bytes":
			h.InUse = int64(v)
		case "go_memstats_heap_idle_bytes":
			h.Idle = int64(v)
		case "go_memstats_heap_released_bytes":
			h.Released = int64(v)
		}
	}
	return h
}

// TestEtcdMemory fills a fresh standalone Paddock and a fresh etcd 3.7
// with keys of 1-4 KiB values through the etcd client (one Put per key,
// 256 in flight), reading the resident memory at each stage; then
// rewrites every key so each has -etcdperf.mem.revisions versions, reads
// it again, compacts to the current revision (as kube-apiserver's
// compactor does) and reads it once more.
func TestEtcdMemory(t *testing.T) {
	if strings.Contains(*memKinds, "etcd") {
		k8sharness.Tool(t, k8sharness.EtcdBin)
	}
	stages := intList(t, *memStages)
	revs := *memRevisions
	if !*memFull {
		stages, revs = []int{2000}, 2
	}
	all := map[string][]memSample{}
	for _, kind := range splitList(*memKinds) {
		all[kind] = memoryRun(t, kind, stages, revs)
	}
	if *memFull {
		writeSection(t, "etcd-memory", memoryMarkdown(all, revs))
	}
}

func memoryRun(t *testing.T, kind string, stages []int, revs int) []memSample {
	// Paddock at info level logs every snapshot with its duration (apply
	// waits for it).
	extra := []string{"--log-level", "info"}
	var admin string
	if kind == "paddock" {
		ports, err := zkref.FreePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		admin = fmt.Sprintf("127.0.0.1:%d", ports[0])
		extra = append(extra, "--admin-addr", admin)
	}
	if kind == "etcd" {
		// etcd refuses writes past its 2 GiB default quota; give it room.
		extra = []string{"--quota-backend-bytes", fmt.Sprint(int64(16) << 30)}
	}
	c := startCluster(t, kind, *memMembers, extra...)
	defer c.stop()
	if kind == "paddock" {
		defer logSnapshots(t, c)
	}
	cli, err := bench.EtcdClient(c.endpoints, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	// readAll reads every member's memory and returns the largest.
	readAll := func() procMem {
		var m procMem
		for _, pid := range c.pids() {
			pm, err := readMem(pid)
			if err != nil {
				t.Fatal(err)
			}
			if pm.RSS > m.RSS {
				m = pm
			}
		}
		return m
	}
	peak := func() int64 {
		var p int64
		for _, pid := range c.pids() {
			p = max(p, peakRSS(t, pid))
		}
		return p
	}
	base := readAll()
	retried := 0
	var out []memSample
	var data int64
	held := int64(0)
	settle := 5 * time.Second
	if !*memFull {
		settle = 500 * time.Millisecond
	}
	read := func(stage string, keys, versions int, settle time.Duration) {
		time.Sleep(settle) // let the runtime and any snapshot settle
		m := readAll()
		var heap goHeap
		if admin != "" {
			heap = readGoHeap(t, admin)
			t.Logf("%s Go heap: alloc %.1f MiB, in use %.1f MiB, idle not released %.1f MiB", kind, mib(heap.Alloc), mib(heap.InUse), mib(heap.Idle-heap.Released))
		}
		s := memSample{Heap: heap, Stage: stage, Keys: keys, Versions: versions, DataBytes: data, HeldBytes: held, Mem: m, Peak: peak(), Empty: base.RSS, Retried: retried}
		t.Logf("%-7s %-28s keys=%-8d data=%7.1f MiB held=%7.1f MiB RSS=%7.1f MiB (anon %.1f, file %.1f) peak %.1f MiB: %.2f bytes of RSS per byte of data",
			kind, stage, keys, mib(data), mib(held), mib(m.RSS), mib(m.Anon), mib(m.File), mib(s.Peak), float64(m.RSS)/float64(max(data, 1)))
		out = append(out, s)
	}
	put := func(from, to int) {
		keys := make([]string, 0, to-from)
		for i := from; i < to; i++ {
			keys = append(keys, memKey(i))
		}
		// A put that times out (a snapshot of a large keyspace stops
		// apply for seconds: see the doc) is retried, up to 5 times, and
		// counted.
		for attempt := 1; ; attempt++ {
			err := bench.EtcdPutAll(ctx, cli, keys, func(i int) string { return memValue(from + i) }, 256, nil)
			if err == nil {
				break
			}
			if attempt == 5 {
				t.Fatalf("%s: %v", kind, err)
			}
			retried++
			t.Logf("%s: %v; rewriting keys %d..%d again", kind, err, from, to)
		}
	}
	t.Logf("%s empty: RSS %.1f MiB", kind, mib(base.RSS))
	prev := 0
	for _, n := range stages {
		start := time.Now()
		put(prev, n)
		for i := prev; i < n; i++ {
			sz := int64(len(memKey(i)) + memValueSize(i))
			data += sz
			held += sz
		}
		t.Logf("%s: %d keys written in %v", kind, n-prev, time.Since(start).Round(time.Second))
		prev = n
		read(fmt.Sprintf("%d keys", n), n, 1, settle)
	}
	for r := 2; r <= revs; r++ {
		put(0, prev)
		held += data
	}
	if revs > 1 {
		read(fmt.Sprintf("%d versions per key", revs), prev, revs, settle)
	}
	resp, err := cli.Get(ctx, "health-probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("%s compact: %v", kind, err)
	}
	held = data
	// Compacting makes the next snapshot due at once on Paddock (snapshots
	// are spaced by the retained versions), and that snapshot of a large
	// keyspace takes seconds; read after it.
	read("compacted to the current revision", prev, 1, 6*settle)
	return out
}

// logSnapshots logs the snapshots Paddock took, with their durations.
func logSnapshots(t *testing.T, c *cluster) {
	b, err := os.ReadFile(filepath.Join(c.dir, "member1.log"))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "snapshot taken") {
			t.Logf("paddock: %s", line)
		}
	}
}

// peakRSS is the process's VmHWM.
func peakRSS(t testing.TB, pid int) int64 {
	m, err := readMemField(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func memoryMarkdown(all map[string][]memSample, revs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s, %s; load average %s at the end. Keys like `/registry/pods/ns-NNN/pod-NNNNNNN`, values of 1-4 KiB (mean ~2.5 KiB), one Put per key with 256 in flight, %d member(s) per server (the largest member's memory), fsync on; memory read 5 s after each stage from /proc/<pid>/status.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine(), loadAvg(), *memMembers)
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", commandLine())
	b.WriteString("| server | stage | batches retried after a timeout | live data | retained keys + values | RSS | of which anon / file | peak RSS | RSS ÷ live data | (RSS − empty) ÷ live data | Go heap: allocated / in spans |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, kind := range splitList(*memKinds) {
		name := map[string]string{"paddock": "Paddock", "etcd": "etcd 3.7"}[kind]
		for _, s := range all[kind] {
			heap := "—"
			if s.Heap.InUse > 0 {
				heap = fmt.Sprintf("%.0f / %.0f MiB", mib(s.Heap.Alloc), mib(s.Heap.InUse))
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %.0f MiB | %.0f MiB | %.0f MiB | %.0f / %.0f MiB | %.0f MiB | %.2f | %.2f | %s |\n", name, s.Stage, s.Retried,
				mib(s.DataBytes), mib(s.HeldBytes), mib(s.Mem.RSS), mib(s.Mem.Anon), mib(s.Mem.File), mib(s.Peak),
				float64(s.Mem.RSS)/float64(max(s.DataBytes, 1)), float64(s.Mem.RSS-s.Empty)/float64(max(s.DataBytes, 1)), heap)
		}
	}
	return b.String()
}
