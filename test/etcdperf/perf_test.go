// Package etcdperf measures Paddock's etcd v3 API against etcd 3.7 (the
// tools module's binary, hack/k8s) on the same machine in the same run:
//
//   - TestEtcdCompare: put/range/txn throughput and latency through etcd's
//     Go client (bench.RunEtcd, what `paddock bench -etcd` runs), N clients,
//     standalone and 3 members of each, a fresh cluster for every point,
//     fsync on for both;
//   - TestKubeCompare: a real kube-apiserver (internal/k8sharness) on each
//     backend creating N ConfigMaps with K concurrent clients, then listing
//     them, paged and unpaged, with the watch cache on and off;
//   - TestEtcdMemory: the resident memory of each as the keyspace grows,
//     with MVCC history and compaction.
//
// Without flags each runs a small seeded slice that checks the pipeline
// against both servers (part of `make test`; nothing is timed). With
// -etcdperf.run (make perf-etcd) the compare tests run the full matrix,
// with -etcdperf.memory (make perf-etcd-memory) the memory test runs its
// full size, and the figures are written into docs/PERFORMANCE.md between
// generated markers, with the command that produced them.
package etcdperf

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/bench"
	"github.com/paddockhq/paddock/internal/k8sharness"
)

var (
	runFull    = flag.Bool("etcdperf.run", false, "run the full Paddock vs etcd matrix and write docs/PERFORMANCE.md (make perf-etcd)")
	topologies = flag.String("etcdperf.topologies", "1,3", "members per cluster")
	workloads  = flag.String("etcdperf.workloads", "put,range,txn", "etcd workloads (bench.EtcdWorkloads)")
	clientsF   = flag.String("etcdperf.clients", "1,16,64", "client counts")
	valuesF    = flag.String("etcdperf.values", "1024", "value sizes in bytes")
	duration   = flag.Duration("etcdperf.duration", 4*time.Second, "measured time of each point")
	warmup     = flag.Duration("etcdperf.warmup", time.Second, "unmeasured load before each point")
	repeat     = flag.Int("etcdperf.repeat", 1, "runs of each point (the best is reported)")
	docPath    = flag.String("etcdperf.doc", "../../docs/PERFORMANCE.md", "document whose generated sections are rewritten (with -etcdperf.run / -etcdperf.memory); empty: none")
)

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func intList(t testing.TB, s string) []int {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			t.Fatalf("bad number %q in %q", p, s)
		}
		out = append(out, n)
	}
	return out
}

var kinds = []string{"paddock", "etcd"}

// point is one measured configuration.
type point struct {
	Members  int    `json:"members"`
	Workload string `json:"workload"`
	Clients  int    `json:"clients"`
	Value    int    `json:"value"`
}

// TestEtcdCompare measures put/range/txn on Paddock and etcd 3.7. The
// kinds alternate who goes first, point by point, so that load from other
// processes on the machine hits both alike.
func TestEtcdCompare(t *testing.T) {
	k8sharness.Tool(t, k8sharness.EtcdBin)
	topos, wls, cls, vals := intList(t, *topologies), splitList(*workloads), intList(t, *clientsF), intList(t, *valuesF)
	dur, warm, reps := *duration, *warmup, *repeat
	ops := 0
	if !*runFull {
		// The smoke slice: both kinds, standalone, every workload, a fixed
		// number of operations.
		topos, cls, vals, warm, reps, ops = []int{1}, []int{4}, []int{512}, 0, 1, 300
	}
	results := map[point]map[string]*bench.Result{}
	var order []point
	n := 0
	for _, m := range topos {
		for _, v := range vals {
			for _, w := range wls {
				for _, c := range cls {
					p := point{m, w, c, v}
					order = append(order, p)
					results[p] = map[string]*bench.Result{}
					for r := range reps {
						ks := kinds
						if n%2 == 1 {
							ks = []string{kinds[1], kinds[0]}
						}
						n++
						for _, k := range ks {
							res := measurePoint(t, k, p, dur, warm, ops)
							t.Logf("%-7s x%d value=%d run %d: %s", k, m, v, r+1, res)
							if best := results[p][k]; best == nil || res.OpsPerSec > best.OpsPerSec {
								results[p][k] = res
							}
							if !*runFull && (res.Ops != int64(ops) || res.ErrorCount != 0) {
								t.Errorf("%s %+v: %d ops, %d errors (%v), want %d and none", k, p, res.Ops, res.ErrorCount, res.Errors, ops)
							}
						}
					}
				}
			}
		}
	}
	if *runFull {
		writeSection(t, "etcd-compare", etcdCompareMarkdown(order, results))
		writeRaw(t, "etcd-compare.jsonl", order, results)
	}
}

// measurePoint runs one point on a fresh cluster of kind.
func measurePoint(t *testing.T, kind string, p point, dur, warm time.Duration, ops int) *bench.Result {
	t.Helper()
	c := startCluster(t, kind, p.Members)
	defer c.stop()
	cfg := bench.EtcdConfig{Endpoints: c.endpoints, Workload: p.Workload, Clients: p.Clients,
		ValueSize: p.Value, Keys: 1000, Keep: true}
	if warm > 0 {
		w := cfg
		w.Duration, w.Prefix = warm, "/warmup/"
		if _, err := bench.RunEtcd(context.Background(), w); err != nil {
			t.Fatalf("%s %+v warm-up: %v", kind, p, err)
		}
	}
	cfg.Duration, cfg.Ops = dur, ops
	res, err := bench.RunEtcd(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%s %+v: %v", kind, p, err)
	}
	res.Label = fmt.Sprintf("%s x%d", kind, p.Members)
	return res
}

func etcdCompareMarkdown(order []point, results map[point]map[string]*bench.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s, %s; load average %s at the end.\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine(), loadAvg())
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", commandLine())
	b.WriteString("| members | workload | clients | value | Paddock ops/s | etcd ops/s | Paddock ÷ etcd | Paddock p50 / p99 ms | etcd p50 / p99 ms | errors P / e |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range order {
		pr, er := results[p]["paddock"], results[p]["etcd"]
		if pr == nil || er == nil {
			continue
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %d B | %s | %s | %.2f× | %.2f / %.2f | %.2f / %.2f | %d / %d |\n",
			p.Members, p.Workload, p.Clients, p.Value, thousands(pr.OpsPerSec), thousands(er.OpsPerSec), pr.OpsPerSec/er.OpsPerSec,
			pr.Latency.P50/1000, pr.Latency.P99/1000, er.Latency.P50/1000, er.Latency.P99/1000, pr.ErrorCount, er.ErrorCount)
	}
	return b.String()
}

func thousands(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func writeRaw(t *testing.T, name string, order []point, results map[point]map[string]*bench.Result) {
	if *docPath == "" {
		return
	}
	dir := filepath.Join(filepath.Dir(*docPath), "perf")
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range order {
		for _, k := range kinds {
			if r := results[p][k]; r != nil {
				line, _ := json.Marshal(struct {
					Kind string `json:"kind"`
					point
					*bench.Result
				}{k, p, r})
				fmt.Fprintf(f, "%s\n", line)
			}
		}
	}
}

// writeSection replaces the text between the markers
// "<!-- BEGIN name -->" and "<!-- END name -->" in -etcdperf.doc.
func writeSection(t *testing.T, name, body string) {
	t.Helper()
	if *docPath == "" {
		t.Logf("%s:\n%s", name, body)
		return
	}
	b, err := os.ReadFile(*docPath)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := "<!-- BEGIN "+name+" (generated) -->\n", "<!-- END "+name+" -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q markers", *docPath, begin, end)
	}
	s = s[:i+len(begin)] + body + s[j:]
	if err := os.WriteFile(*docPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote the %s section of %s:\n%s", name, *docPath, body)
}

func commandLine() string {
	var flags []string
	flag.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "etcdperf.") || f.Name == "test.run" {
			name := strings.TrimPrefix(f.Name, "test.")
			flags = append(flags, "-"+name+"="+strconv.Quote(f.Value.String()))
		}
	})
	return "PADDOCK_RACE=0 go test -count=1 -timeout 0 -v ./test/etcdperf " + strings.Join(flags, " ")
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64); err == nil {
					mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, shared with other builds and tests", runtime.NumCPU(), model, mem)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
