package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/bench"
)

// TestReport writes the Markdown and PNGs from synthetic results.
func TestReport(t *testing.T) {
	r := &report{
		Started: time.Now(), Command: "scripts/bench-compare -quick", Machine: machine(),
		Kinds: []string{"paddock", "apache"}, Topologies: []string{"standalone", "ensemble"},
		Workloads: []string{"create", "get"}, Clients: []int{1, 16}, Repeat: 2,
		Duration: time.Second, ValueSize: 100, Keys: 1000, Nodes: 1000,
		Results: map[pointKey][]*bench.Result{}, Memory: map[memKey][]int64{},
	}
	for _, topo := range r.Topologies {
		for _, w := range r.Workloads {
			for _, c := range r.Clients {
				for i, k := range r.Kinds {
					for run := range 2 {
						r.Results[pointKey{topo, w, c, k}] = append(r.Results[pointKey{topo, w, c, k}], &bench.Result{
							Workload: w, Clients: c, OpsPerSec: float64(1000*c*(i+1) + 100*run),
							Latency: bench.LatencySummary{P50: 100, P90: 200, P99: 900, P999: 2000, Max: 5000},
						})
					}
				}
			}
		}
		r.Memory[memKey{topo, "paddock"}] = []int64{30 << 20, 31 << 20}
		r.Memory[memKey{topo, "apache"}] = []int64{120 << 20}
	}
	dir := t.TempDir()
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "bench-compare.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| get | 16 | 16,100 ± 1% | 32,100 ± 0% | 0.50× |", "| 3-member ensemble | Paddock | 31 MiB | 61 MiB |", "throughput-ensemble.png"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, f := range []string{"throughput-standalone.png", "throughput-ensemble.png", "latency-standalone.png", "latency-ensemble.png", "memory.png"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
			t.Errorf("%s: not a PNG (%d bytes, %v)", f, len(b), err)
		}
	}
}
