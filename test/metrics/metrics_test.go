// Package metrics checks Paddock's Prometheus endpoint: a server started
// with --admin-addr serves /metrics in the Prometheus text format, parsed
// here by Prometheus' own parser (github.com/prometheus/common/expfmt), with
// ZooKeeper's metric names (those of Apache ZooKeeper's
// PrometheusMetricsProvider, the mntr keys without "zk_") so that existing
// dashboards work, and values that follow a small workload.
//
// Debian's ZooKeeper has no Prometheus provider, so this suite runs against
// Paddock only.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}

// zkMetrics are the ZooKeeper metric names the endpoint must expose.
var zkMetrics = []string{
	"znode_count", "watch_count", "num_alive_connections", "outstanding_requests",
	"avg_latency", "min_latency", "max_latency", "packets_received", "packets_sent",
	"ephemerals_count", "approximate_data_size", "global_sessions",
}

// scrape fetches and parses /metrics and returns each family's value (the
// sum over its series, for a family with labels).
func scrape(t *testing.T, url string) (map[string]float64, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain (Prometheus text format)", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Prometheus text parser: %v\n%s", err, body)
	}
	vals := map[string]float64{}
	for name, f := range fams {
		var sum float64
		for _, m := range f.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				sum += m.GetUntyped().GetValue()
			case m.GetSummary() != nil:
				sum += m.GetSummary().GetSampleSum()
			case m.GetHistogram() != nil:
				sum += m.GetHistogram().GetSampleSum()
			}
		}
		vals[name] = sum
	}
	return vals, fams
}

// waitHTTP polls url until it answers at all.
func waitHTTP(t *testing.T, url string, srv *testserver.Server) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var resp *http.Response
		if resp, err = http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("admin server at %s not answering after 15s: %v\nserver log:\n%s", url, err, srv.Tail(20))
}

func TestPrometheusMetrics(t *testing.T) {
	ports, err := zkref.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	opts := testserver.CompatOptions()
	opts.AdminAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	srv := testserver.Start(t, opts)
	url := "http://" + opts.AdminAddr + "/metrics"
	waitHTTP(t, url, srv)

	// Workload: two sessions, persistent nodes with data, three
	// ephemerals held by one session, four data watches.
	dial := func() *zk.Conn {
		c, _, err := zk.Connect([]string{srv.Addr}, 10*time.Second, zk.WithLogInfo(false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	c1, c2 := dial(), dial()
	acl := zk.WorldACL(zk.PermAll)
	dataBytes := 0
	const persistent, ephemerals, watches = 10, 3, 4
	if _, err := c1.Create("/m", nil, 0, acl); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < persistent; i++ {
		data := bytes.Repeat([]byte{'d'}, 100+i)
		dataBytes += len(data)
		if _, err := c1.Create(fmt.Sprintf("/m/p%d", i), data, 0, acl); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < ephemerals; i++ {
		if _, err := c2.Create(fmt.Sprintf("/m/e%d", i), []byte("e"), zk.FlagEphemeral, acl); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < watches; i++ {
		if _, _, _, err := c1.GetW(fmt.Sprintf("/m/p%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	const requests = 1 + persistent + ephemerals + watches

	vals, fams := scrape(t, url)
	var missing []string
	for _, name := range zkMetrics {
		if _, ok := vals[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		var have []string
		for n := range vals {
			have = append(have, n)
		}
		sort.Strings(have)
		t.Fatalf("missing ZooKeeper metrics %v; exposed: %v", missing, have)
	}
	for name, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a finite value", name, v)
		}
	}
	for _, name := range zkMetrics {
		switch ty := fams[name].GetType(); ty {
		case dto.MetricType_GAUGE, dto.MetricType_COUNTER, dto.MetricType_UNTYPED:
		default:
			t.Errorf("%s has type %v, want a gauge (as ZooKeeper's provider)", name, ty)
		}
	}

	atLeast := func(name string, min float64) {
		t.Helper()
		if vals[name] < min {
			t.Errorf("%s = %v, want >= %v", name, vals[name], min)
		}
	}
	// /, /zookeeper, /zookeeper/quota, /zookeeper/config and ours.
	atLeast("znode_count", 4+1+persistent+ephemerals)
	atLeast("watch_count", watches)
	atLeast("num_alive_connections", 2)
	atLeast("outstanding_requests", 0)
	atLeast("packets_received", requests)
	atLeast("packets_sent", requests)
	atLeast("approximate_data_size", float64(dataBytes))
	atLeast("global_sessions", 2)
	if got := vals["ephemerals_count"]; got != ephemerals {
		t.Errorf("ephemerals_count = %v, want %d", got, ephemerals)
	}
	min, avg, max := vals["min_latency"], vals["avg_latency"], vals["max_latency"]
	if min < 0 || avg < min || max < avg {
		t.Errorf("latency min/avg/max = %v/%v/%v, want 0 <= min <= avg <= max", min, avg, max)
	}

	// Closing the session that owns the ephemerals removes them and the
	// session; firing the watches removes them.
	c2.Close()
	for i := 0; i < watches; i++ {
		if _, err := c1.Set(fmt.Sprintf("/m/p%d", i), []byte("x"), -1); err != nil {
			t.Fatal(err)
		}
	}
	var after map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		after, _ = scrape(t, url)
		if after["ephemerals_count"] == 0 && after["global_sessions"] == vals["global_sessions"]-1 &&
			after["watch_count"] == vals["watch_count"]-watches {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing a session and firing %d watches: ephemerals_count=%v (want 0), global_sessions=%v (want %v), watch_count=%v (want %v)",
				watches, after["ephemerals_count"], after["global_sessions"], vals["global_sessions"]-1,
				after["watch_count"], vals["watch_count"]-watches)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after["packets_received"] <= vals["packets_received"] {
		t.Errorf("packets_received did not grow: %v then %v", vals["packets_received"], after["packets_received"])
	}
	if after["znode_count"] != vals["znode_count"]-ephemerals {
		t.Errorf("znode_count = %v after the ephemerals went, want %v", after["znode_count"], vals["znode_count"]-ephemerals)
	}
	t.Logf("metrics: %v", pick(after, zkMetrics))
}

func pick(m map[string]float64, names []string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%v ", n, m[n])
	}
	return b.String()
}
