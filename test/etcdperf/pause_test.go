package etcdperf

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/paddockhq/paddock/bench"
	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/testserver"
)

var (
	pauseFull    = flag.Bool("etcdperf.pause", false, "run the full snapshot-pause measurement and write docs/PERFORMANCE.md (make perf-etcd-pause)")
	pauseKeys    = flag.Int("etcdperf.pause.keys", 400000, "keys written (1-4 KiB values: 400k is ~1 GiB of live data)")
	pauseKinds   = flag.String("etcdperf.pause.kinds", "paddock,etcd", "servers measured; \"baseline\" is a Paddock binary from $PADDOCK_BASELINE_BIN")
	pauseMembers = flag.Int("etcdperf.pause.members", 1, "members per cluster")
)

// pausePhase is what the probe saw during one phase of the run.
type pausePhase struct {
	Name     string
	Lat      []time.Duration // every probe put, in order
	Failed   int             // probe puts that failed (timeout: 2 s)
	Duration time.Duration
	Slow     []string // when each probe put over 500 ms started, and how long it took
}

// pauseRun is one server's run.
type pauseRun struct {
	Kind      string
	Phases    []pausePhase
	Snapshots []string // Paddock's "snapshot taken" log lines
	Peak      int64    // the largest member's peak RSS (VmHWM) at the end
}

// TestEtcdSnapshotPause measures what a snapshot of a large keyspace costs
// the clients: while -etcdperf.pause.keys keys of 1-4 KiB are written
// (256 in flight), then rewritten once, then compacted (which makes a
// Paddock snapshot due at once), a probe client puts one small key after
// another and records each latency. A snapshot that stops apply shows as
// probe puts that take as long as the snapshot; one written off the apply
// path does not. Paddock logs each snapshot with its duration.
func TestEtcdSnapshotPause(t *testing.T) {
	kinds := splitList(*pauseKinds)
	keys := *pauseKeys
	if !*pauseFull {
		keys, kinds = 3000, []string{"paddock"}
	}
	var runs []pauseRun
	for _, kind := range kinds {
		if kind == "etcd" {
			k8sharness.Tool(t, k8sharness.EtcdBin)
		}
		runs = append(runs, pauseMeasure(t, kind, keys))
	}
	for _, r := range runs {
		for _, p := range r.Phases {
			if len(p.Lat) == 0 {
				t.Errorf("%s %s: the probe completed no put", r.Kind, p.Name)
			}
		}
	}
	if *pauseFull {
		writeSection(t, "etcd-pause", pauseMarkdown(runs, keys))
	}
}

func pauseMeasure(t *testing.T, kind string, keys int) pauseRun {
	extra := []string{"--log-level", "info"}
	server := kind
	switch kind {
	case "baseline":
		bin := os.Getenv("PADDOCK_BASELINE_BIN")
		if bin == "" {
			t.Fatal("kind baseline needs PADDOCK_BASELINE_BIN (a paddock binary to compare with)")
		}
		// Only for this run: the next kind measures this build.
		old, had := os.LookupEnv("PADDOCK_BIN")
		os.Setenv("PADDOCK_BIN", bin)
		defer func() {
			if had {
				os.Setenv("PADDOCK_BIN", old)
			} else {
				os.Unsetenv("PADDOCK_BIN")
			}
		}()
		server = "paddock"
	case "etcd":
		extra = []string{"--quota-backend-bytes", fmt.Sprint(int64(16) << 30)}
	}
	if server == "paddock" {
		bin, _ := testserver.Binary()
		t.Logf("%s: binary %s", kind, bin)
	}
	c := startCluster(t, server, *pauseMembers, extra...)
	defer c.stop()
	cli, err := bench.EtcdClient(c.endpoints, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	probeCli, err := bench.EtcdClient(c.endpoints[:1], 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer probeCli.Close()
	ctx := context.Background()
	run := pauseRun{Kind: kind}
	phase := func(name string, load func()) {
		var (
			wg   sync.WaitGroup
			stop = make(chan struct{})
			p    = pausePhase{Name: name}
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				start := time.Now()
				_, err := probeCli.Put(pctx, "/probe", fmt.Sprint(i))
				cancel()
				took := time.Since(start)
				if err != nil || took > 500*time.Millisecond {
					p.Slow = append(p.Slow, fmt.Sprintf("%s+%v(%v)", start.UTC().Format("15:04:05.000"), took.Round(time.Millisecond), err))
				}
				if err != nil {
					p.Failed++
					continue
				}
				p.Lat = append(p.Lat, took)
			}
		}()
		start := time.Now()
		load()
		p.Duration = time.Since(start)
		close(stop)
		wg.Wait()
		t.Logf("%s %s: %s", kind, name, pauseSummary(p))
		if len(p.Slow) > 0 {
			t.Logf("%s %s: slow probe puts (start+took): %s", kind, name, strings.Join(p.Slow, " "))
		}
		run.Phases = append(run.Phases, p)
	}
	names := make([]string, keys)
	for i := range names {
		names[i] = memKey(i)
	}
	putAll := func() {
		if err := bench.EtcdPutAll(ctx, cli, names, memValue, 256, nil); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	phase(fmt.Sprintf("write %d keys", keys), putAll)
	phase("rewrite every key", putAll)
	phase("compact, then 20 s of probing", func() {
		resp, err := cli.Get(ctx, "/probe")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
			t.Fatalf("%s compact: %v", kind, err)
		}
		wait := 20 * time.Second
		if !*pauseFull {
			wait = time.Second
		}
		time.Sleep(wait)
	})
	for _, pid := range c.pids() {
		run.Peak = max(run.Peak, peakRSS(t, pid))
	}
	t.Logf("%s: peak RSS %.0f MiB", kind, mib(run.Peak))
	if server == "paddock" {
		b, _ := os.ReadFile(filepath.Join(c.dir, "member1.log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "snapshot taken") {
				run.Snapshots = append(run.Snapshots, line)
				t.Logf("%s: %s", kind, line)
			}
		}
	}
	return run
}

func pct(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func pauseSummary(p pausePhase) string {
	return fmt.Sprintf("%d probe puts in %v, p50 %v, p99 %v, p99.9 %v, max %v, failed %d",
		len(p.Lat), p.Duration.Round(time.Second), pct(p.Lat, 0.5).Round(10*time.Microsecond), pct(p.Lat, 0.99).Round(10*time.Microsecond),
		pct(p.Lat, 0.999).Round(100*time.Microsecond), pct(p.Lat, 1).Round(time.Millisecond), p.Failed)
}

// snapshotTook extracts the took= values of Paddock's snapshot log lines.
func snapshotTook(lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "took="); ok {
				if d, err := time.ParseDuration(v); err == nil {
					v = d.Round(10 * time.Millisecond).String()
				}
				out = append(out, v)
			}
		}
	}
	return out
}

func pauseMarkdown(runs []pauseRun, keys int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s, %s; load average %s at the end. %d keys like `/registry/pods/ns-NNN/pod-NNNNNNN` with values of 1-4 KiB (~%.1f GiB of live data), 256 puts in flight, %d member(s), fsync on; a probe client puts one small key after another throughout and records each latency (a failed probe put timed out after 2 s).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine(), loadAvg(), keys, float64(keys)*2.6/(1<<20), *pauseMembers)
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", commandLine())
	b.WriteString("| server | phase | probe puts | p50 | p99 | p99.9 | max | failed |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	name := map[string]string{"paddock": "Paddock", "etcd": "etcd 3.7", "baseline": "Paddock, snapshots on the apply path (" + filepath.Base(os.Getenv("PADDOCK_BASELINE_BIN")) + ")"}
	for _, r := range runs {
		for _, p := range r.Phases {
			fmt.Fprintf(&b, "| %s | %s | %d | %v | %v | %v | %v | %d |\n", name[r.Kind], p.Name, len(p.Lat),
				pct(p.Lat, 0.5).Round(10*time.Microsecond), pct(p.Lat, 0.99).Round(10*time.Microsecond),
				pct(p.Lat, 0.999).Round(100*time.Microsecond), pct(p.Lat, 1).Round(time.Millisecond), p.Failed)
		}
	}
	b.WriteString("\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "%s: peak RSS %.0f MiB.", name[r.Kind], mib(r.Peak))
		if took := snapshotTook(r.Snapshots); len(took) > 0 {
			fmt.Fprintf(&b, " Snapshots (write time, from `replication: snapshot taken ... took=`): %s.", strings.Join(took, ", "))
		}
		b.WriteString("\n\n")
	}
	return b.String()
}
