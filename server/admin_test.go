package server

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/zkref"
	"github.com/paddockhq/paddock/proto"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func startAdminServer(t *testing.T, mod func(*Config)) (*Server, string) {
	t.Helper()
	s := startServer(t, func(c *Config) {
		c.AdminAddr = "127.0.0.1:0"
		if mod != nil {
			mod(c)
		}
	})
	if s.AdminAddr() == nil {
		t.Fatal("admin server not running")
	}
	return s, "http://" + s.AdminAddr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func adminJSON(t *testing.T, base, cmd string) map[string]any {
	t.Helper()
	code, body := httpGet(t, base+"/commands/"+cmd)
	if code != 200 {
		t.Fatalf("%s: HTTP %d %s", cmd, code, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, body)
	}
	return m
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// adminWantKeys are the keys ZooKeeper 3.8's standalone server answers
// (besides command and error), as recorded from Debian's ZooKeeper.
var adminWantKeys = map[string][]string{
	"ruok":                  {},
	"srvr":                  {"client_response", "node_count", "read_only", "server_stats", "version"},
	"stat":                  {"client_response", "connections", "node_count", "read_only", "secure_connections", "server_stats", "version"},
	"conf":                  {"client_port", "client_port_listen_backlog", "data_dir", "data_log_dir", "max_client_cnxns", "max_session_timeout", "min_session_timeout", "server_id", "tick_time"},
	"cons":                  {"connections", "secure_connections"},
	"crst":                  {},
	"dump":                  {"expiry_time_to_session_ids", "session_id_to_ephemeral_paths"},
	"wchs":                  {"num_connections", "num_paths", "num_total_watches"},
	"wchc":                  {"session_id_to_watched_paths"},
	"wchp":                  {"path_to_session_ids"},
	"dirs":                  {"datadir_size", "logdir_size"},
	"isro":                  {"read_only"},
	"srst":                  {},
	"lsnp":                  {"timestamp", "zxid"},
	"voting_view":           {"current_config"},
	"zabstate":              {"voting", "zabstate"},
	"initial_configuration": {"initial_configuration"},
	"gtmk":                  {"tracemask"},
	"hash":                  {"digests"},
	"obsr":                  {"observers", "synced_observers"},
	"orst":                  {},
}

func TestAdminCommands(t *testing.T) {
	s, base := startAdminServer(t, nil)
	c := newRaw(t, s.Addr().String())
	c.create("/eph", []byte("x"), proto.ModeEphemeral)
	c.call(proto.OpGetData, &proto.GetDataRequest{Path: "/eph", Watch: true}, &proto.GetDataResponse{})

	code, list := httpGet(t, base+"/commands")
	if code != 200 {
		t.Fatalf("/commands: %d", code)
	}
	for _, name := range AdminCommandNames() {
		if !strings.Contains(list, `<a href="/commands/`+name+`">`+name+`</a>`) {
			t.Errorf("/commands does not list %s", name)
		}
	}
	for cmd, want := range adminWantKeys {
		m := adminJSON(t, base, cmd)
		if m["error"] != nil {
			t.Errorf("%s: error %v", cmd, m["error"])
		}
		if _, ok := m["command"]; !ok {
			t.Errorf("%s: no command key", cmd)
		}
		delete(m, "command")
		delete(m, "error")
		if got := keysOf(m); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: keys %v, want %v", cmd, got, want)
		}
	}
	// Aliases answer with the primary name, as ZooKeeper does.
	for alias, primary := range map[string]string{"mntr": "monitor", "srvr": "server_stats", "conf": "configuration",
		"config": "configuration", "envi": "environment", "env": "environment", "wchp": "watches_by_path", "lead": "leader", "icfg": "initial_configuration", "sysp": "system_properties"} {
		if got := adminJSON(t, base, alias)["command"]; got != primary {
			t.Errorf("%s answers command %v, want %s", alias, got, primary)
		}
	}
	// Unknown command and a standalone server's leader command.
	if m := adminJSON(t, base, "nosuch"); m["error"] != "Unknown command: nosuch" {
		t.Errorf("nosuch: %v", m)
	}
	if m := adminJSON(t, base, "leader"); m["error"] != "server is not initialized" {
		t.Errorf("leader: %v", m)
	}
	// The content reflects the server.
	dump := adminJSON(t, base, "dump")
	eph := dump["session_id_to_ephemeral_paths"].(map[string]any)
	if p, ok := eph[fmt.Sprint(c.sid)].([]any); !ok || len(p) != 1 || p[0] != "/eph" {
		t.Errorf("dump ephemerals %v (session %d)", eph, c.sid)
	}
	wchp := adminJSON(t, base, "wchp")["path_to_session_ids"].(map[string]any)
	if ids, ok := wchp["/eph"].([]any); !ok || len(ids) != 1 || int64(ids[0].(float64)) != c.sid {
		t.Errorf("wchp %v", wchp)
	}
	cons := adminJSON(t, base, "cons")["connections"].([]any)
	if len(cons) != 1 || cons[0].(map[string]any)["session_id"] != fmt.Sprintf("0x%x", c.sid) {
		t.Errorf("cons %v", cons)
	}
	srvr := adminJSON(t, base, "srvr")
	if srvr["server_stats"].(map[string]any)["server_state"] != "standalone" {
		t.Errorf("srvr %v", srvr)
	}
	if env := adminJSON(t, base, "envi"); !strings.HasPrefix(env["zookeeper.version"].(string), ZooKeeperVersion) {
		t.Errorf("envi %v", env)
	}
}

// TestMonitorOneSource checks that mntr, the admin monitor command and
// /metrics report the same figures under the same names.
func TestMonitorOneSource(t *testing.T) {
	s, base := startAdminServer(t, nil)
	c := newRaw(t, s.Addr().String())
	for i := 0; i < 5; i++ {
		c.create(fmt.Sprintf("/n%d", i), []byte("data"), 0)
		c.call(proto.OpExists, &proto.ExistsRequest{Path: "/n0"}, &proto.ExistsResponse{})
	}
	out, err := zkref.FourLetter(s.Addr().String(), "mntr", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	mntr := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok || !strings.HasPrefix(k, "zk_") {
			t.Fatalf("bad mntr line %q", line)
		}
		mntr[strings.TrimPrefix(k, "zk_")] = v
	}
	admin := adminJSON(t, base, "monitor")
	delete(admin, "command")
	delete(admin, "error")
	if a, m := keysOf(admin), keysOfS(mntr); strings.Join(a, ",") != strings.Join(m, ",") {
		t.Errorf("admin monitor keys %v\nmntr keys %v", a, m)
	}
	for _, k := range []string{"znode_count", "ephemerals_count", "approximate_data_size", "global_sessions", "watch_count"} {
		if fmt.Sprint(admin[k]) != mntr[k] {
			t.Errorf("%s: admin %v, mntr %s", k, admin[k], mntr[k])
		}
	}

	families := scrape(t, base)
	for _, name := range []string{"znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
		"num_alive_connections", "outstanding_requests", "global_sessions", "packets_received", "packets_sent",
		"avg_latency", "min_latency", "max_latency", "open_file_descriptor_count", "uptime"} {
		f := families[name]
		if f == nil || f.GetType() != dto.MetricType_GAUGE {
			t.Errorf("/metrics: no gauge %s", name)
			continue
		}
		if name == "znode_count" && fmt.Sprint(f.Metric[0].GetGauge().GetValue()) != mntr["znode_count"] {
			t.Errorf("znode_count: /metrics %v, mntr %s", f.Metric[0].GetGauge().GetValue(), mntr["znode_count"])
		}
	}
	for _, name := range []string{"readlatency", "updatelatency"} {
		f := families[name]
		if f == nil || f.GetType() != dto.MetricType_SUMMARY || f.Metric[0].GetSummary().GetSampleCount() == 0 {
			t.Errorf("/metrics: summary %s missing or empty: %v", name, f)
			continue
		}
		if q := f.Metric[0].GetSummary().GetQuantile(); len(q) != 3 {
			t.Errorf("%s quantiles %v, want 0.5, 0.9, 0.99 as ZooKeeper's", name, q)
		}
	}
}

func keysOfS(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

func TestProbes(t *testing.T) {
	s, base := startAdminServer(t, nil)
	if code, _ := httpGet(t, base+"/livez"); code != 200 {
		t.Errorf("/livez %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := httpGet(t, base+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Close()
	if ok, _ := s.Ready(); ok {
		t.Error("ready after Close")
	}
}

// TestQuotaMetricsAndEnforcement sets a quota the way zkCli does, checks
// QuotaExceeded on the wire and the quota gauges.
func TestQuotaMetricsAndEnforcement(t *testing.T) {
	s, base := startAdminServer(t, func(c *Config) { c.EnforceQuota = true })
	c := newRaw(t, s.Addr().String())
	for _, p := range []string{"/q", "/zookeeper/quota/q"} {
		if _, code := c.create(p, nil, 0); code != proto.ErrOK {
			t.Fatalf("create %s: %v", p, code)
		}
	}
	c.create("/zookeeper/quota/q/zookeeper_limits", []byte("count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2"), 0)
	c.create("/zookeeper/quota/q/zookeeper_stats", []byte("count=0,bytes=0"), 0)
	if _, code := c.create("/q/a", []byte("ab"), 0); code != proto.ErrOK {
		t.Fatalf("first child: %v", code)
	}
	if _, code := c.create("/q/b", nil, 0); code != proto.ErrQuotaExceeded {
		t.Fatalf("over the hard limit: %v, want QuotaExceeded", code)
	}
	f := scrape(t, base)
	for name, want := range map[string]float64{"quota_count_limit_per_namespace": 2, "quota_count_usage_per_namespace": 2, "quota_bytes_usage_per_namespace": 2} {
		fam := f[name]
		if fam == nil || len(fam.Metric) != 1 || fam.Metric[0].GetGauge().GetValue() != want ||
			fam.Metric[0].Label[0].GetName() != "key" || fam.Metric[0].Label[0].GetValue() != "q" {
			t.Errorf("%s: %v, want %v{key=\"q\"}", name, fam, want)
		}
	}
}

func TestMaxClientCnxns(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxClientCnxns = 2 })
	newRaw(t, s.Addr().String())
	newRaw(t, s.Addr().String())
	nc := dial(t, s.Addr().String())
	expectClosed(t, nc)
	out, err := zkref.FourLetter(s.Addr().String(), "mntr", 5*time.Second)
	if err == nil {
		t.Errorf("a fourth connection (4lw) from the same IP was served: %q", out)
	}
}

func TestMaxCnxns(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxCnxns = 1 })
	c := newRaw(t, s.Addr().String())
	expectClosed(t, dial(t, s.Addr().String()))
	// A closed connection frees its place.
	c.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc := dial(t, s.Addr().String())
		nc.SetDeadline(time.Now().Add(time.Second))
		nc.Write([]byte("ruok"))
		b, _ := io.ReadAll(nc)
		if string(b) == "imok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connection slot not released")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHandshakeTimeoutReapsSilentConnection(t *testing.T) {
	s := startServer(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	nc := dial(t, s.Addr().String())
	start := time.Now()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read: %v, want the server to close", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
}

func TestIdleSessionConnectionReaped(t *testing.T) {
	s := startServer(t, nil) // tick 100ms: session timeouts from 200ms
	c := &rawClient{t: t, nc: dial(t, s.Addr().String())}
	c.r = newReader(c.nc)
	resp := c.connect(proto.ConnectRequest{TimeOut: 300})
	if resp.TimeOut != 300 {
		t.Fatalf("timeout %d", resp.TimeOut)
	}
	// Silent (no pings): closed after about the session timeout.
	start := time.Now()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(c.r)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
}

// TestGlobalOutstandingLimitBackpressure pipelines far more requests than
// the limit on several connections: all are answered, in order, none
// dropped, and the throttle engaged.
func TestGlobalOutstandingLimitBackpressure(t *testing.T) {
	s := startServer(t, func(c *Config) { c.GlobalOutstandingLimit = 3 })
	const conns, perConn = 4, 200
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		c := newRaw(t, s.Addr().String())
		go func(i int) {
			var xids []int32
			for j := 0; j < perConn; j++ {
				xids = append(xids, c.send(proto.OpCreate, &proto.CreateRequest{Path: fmt.Sprintf("/c%d-%d", i, j), Acl: proto.OpenACLUnsafe}))
			}
			for _, xid := range xids {
				b, err := readFrame(c.r)
				if err != nil {
					errs <- err
					return
				}
				var h proto.ReplyHeader
				d := proto.NewDecoder(b)
				h.Decode(d)
				if h.Xid != xid || h.Err != 0 {
					errs <- fmt.Errorf("reply xid %d err %d, want xid %d", h.Xid, h.Err, xid)
					return
				}
			}
			errs <- nil
		}(i)
	}
	for i := 0; i < conns; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s.ops.throttle.events.Load() == 0 {
		t.Error("the throttle never engaged")
	}
	if n := s.outstanding(); n != 0 {
		t.Errorf("outstanding after all replies: %d", n)
	}
}

// TestAdminMatchesZooKeeper compares the admin JSON key sets with Apache
// ZooKeeper 3.8 (Debian), run with its admin server on.
func TestAdminMatchesZooKeeper(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Apache ZooKeeper")
	}
	zkref.Require(t)
	const servletJar = "/usr/share/java/servlet-api.jar"
	old := zkref.LogJars
	zkref.LogJars = append(append([]string{}, old...), servletJar)
	defer func() { zkref.LogJars = old }()
	ports, err := zkref.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	ref := zkref.Start(t, zkref.Options{
		ExtraConfig: []string{"admin.enableServer=true", "admin.serverAddress=127.0.0.1", fmt.Sprintf("admin.serverPort=%d", ports[0])},
		JVMFlags:    []string{"-Dzookeeper.admin.enableServer=true"},
	})
	refBase := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	var up bool
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0])); err == nil {
			c.Close()
			up = true
			break
		}
	}
	if !up {
		t.Skip("Apache ZooKeeper's admin server (Jetty) did not start here")
	}
	s, base := startAdminServer(t, nil)
	// A watch and an ephemeral on both, so the maps are not empty. The
	// sessions ping as a real client's do: the comparison takes longer
	// than the test server's largest session timeout (20 ticks of 100ms)
	// on a loaded machine, and an expired session would take its
	// connection, watch and ephemeral with it (cons came back empty).
	for _, addr := range []string{ref.Addr, s.Addr().String()} {
		c := newRaw(t, addr)
		c.create("/eph", []byte("x"), proto.ModeEphemeral)
		c.call(proto.OpGetData, &proto.GetDataRequest{Path: "/eph", Watch: true}, &proto.GetDataResponse{})
		keepAlive(t, c, 300*time.Millisecond)
	}
	for _, cmd := range []string{"ruok", "srvr", "stat", "conf", "cons", "crst", "dump", "wchs", "wchc", "wchp",
		"dirs", "isro", "srst", "lead", "lsnp", "voting_view", "zabstate", "icfg", "gtmk", "hash", "obsr", "orst", "nosuch"} {
		want, got := adminJSON(t, refBase, cmd), adminJSON(t, base, cmd)
		if a, b := strings.Join(keysOf(got), ","), strings.Join(keysOf(want), ","); a != b {
			t.Errorf("%s: keys %s, ZooKeeper %s", cmd, a, b)
		}
		if got["command"] != want["command"] {
			t.Errorf("%s: command %v, ZooKeeper %v", cmd, got["command"], want["command"])
		}
		for _, nested := range []string{"server_stats", "client_response"} {
			if w, ok := want[nested].(map[string]any); ok {
				g, _ := got[nested].(map[string]any)
				if a, b := strings.Join(keysOf(g), ","), strings.Join(keysOf(w), ","); a != b {
					t.Errorf("%s.%s: keys %s, ZooKeeper %s", cmd, nested, a, b)
				}
			}
		}
		if cmd == "cons" {
			w := want["connections"].([]any)[0].(map[string]any)
			g := got["connections"].([]any)[0].(map[string]any)
			if a, b := strings.Join(keysOf(g), ","), strings.Join(keysOf(w), ","); a != b {
				t.Errorf("cons connection keys %s, ZooKeeper %s", a, b)
			}
		}
	}
	// monitor: every key we report is one of ZooKeeper's.
	want := adminJSON(t, refBase, "monitor")
	for k := range adminJSON(t, base, "monitor") {
		if _, ok := want[k]; !ok {
			t.Errorf("monitor key %s is not ZooKeeper's", k)
		}
	}
	// And the same for the four-letter word.
	refMntr, _ := zkref.FourLetter(ref.Addr, "mntr", 5*time.Second)
	ourMntr, _ := zkref.FourLetter(s.Addr().String(), "mntr", 5*time.Second)
	refKeys := map[string]bool{}
	for _, l := range strings.Split(refMntr, "\n") {
		k, _, _ := strings.Cut(l, "\t")
		refKeys[k] = true
	}
	for _, l := range strings.Split(strings.TrimSpace(ourMntr), "\n") {
		if k, _, _ := strings.Cut(l, "\t"); !refKeys[k] {
			t.Errorf("mntr key %s is not ZooKeeper's", k)
		}
	}
}

// keepAlive pings c's session every period until the test ends, as a
// ZooKeeper client pings an idle session (ClientCnxn, every third of the
// read timeout). c must not be used meanwhile; the replies are left
// unread.
func keepAlive(t *testing.T, c *rawClient, every time.Duration) {
	e := proto.NewEncoder(nil)
	h := proto.RequestHeader{Xid: proto.XidPing, Type: int32(proto.OpPing)}
	h.Encode(e)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(e.Bytes())))
	frame = append(frame, e.Bytes()...)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := c.nc.Write(frame); err != nil {
					return
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

func TestDumpFourLetterWord(t *testing.T) {
	s := startServer(t, nil)
	c := newRaw(t, s.Addr().String())
	c.create("/e1", nil, proto.ModeEphemeral)
	out, err := zkref.FourLetter(s.Addr().String(), "dump", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sid := fmt.Sprintf("0x%x", c.sid)
	for _, want := range []string{"SessionTracker dump:\nSession Sets (1)/(1):\n1 expire at ", ":\n\t" + sid + "\n",
		"ephemeral nodes dump:\nSessions with Ephemerals (1):\n" + sid + ":\n\t/e1\n", "Connections dump:\nConnections Sets (1)/(1):\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
}
