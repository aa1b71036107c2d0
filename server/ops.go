package server

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// DefaultGlobalOutstandingLimit is ZooKeeper's globalOutstandingLimit.
const DefaultGlobalOutstandingLimit = 1000

// DefaultHandshakeTimeout bounds how long a new connection may take to
// send its ConnectRequest (or a four-letter word), as ZooKeeper's
// zookeeper.nio.sessionlessCnxnTimeout (10s) does.
const DefaultHandshakeTimeout = 10 * time.Second

// OpsConfig configures the operations surface: the admin HTTP server, the
// connection limits and the quota enforcement. It is embedded in Config.
type OpsConfig struct {
	// AdminAddr is the admin HTTP server's address (ZooKeeper's
	// admin.serverAddress:admin.serverPort); empty disables it.
	AdminAddr string
	// MaxClientCnxns limits the connections from one client IP
	// (maxClientCnxns); 0 means unlimited.
	MaxClientCnxns int
	// MaxCnxns limits all client connections (maxCnxns); 0 means
	// unlimited.
	MaxCnxns int
	// GlobalOutstandingLimit is globalOutstandingLimit: while more
	// requests than this are in progress, the server stops reading from
	// client sockets (requests are never dropped). 0 means
	// DefaultGlobalOutstandingLimit; negative disables the limit.
	GlobalOutstandingLimit int
	// HandshakeTimeout closes a connection that has not completed its
	// handshake in time; 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// EnforceQuota refuses writes over a quota's hard limit with
	// QuotaExceeded (zookeeper.enforceQuota).
	EnforceQuota bool
	// SkipACL disables ACL checks (zookeeper.skipACL=yes). Unsafe.
	SkipACL bool
	// InitialConfig is the configuration file's text, reported by the
	// initial_configuration admin command.
	InitialConfig string
	// SystemProperties are reported by the system_properties admin
	// command: the configuration as ZooKeeper's system properties
	// (zookeeper.<key>=value).
	SystemProperties map[string]string
	// DataLogDir is reported by conf; default DataDir.
	DataLogDir string
	// ConsoleWrites lets the web console on the admin server create, edit
	// and delete nodes (as the signed-in user, through the log, ACLs
	// applying); without it the console is read-only.
	ConsoleWrites bool
}

// ops holds the server's operational state: connection counts, the
// outstanding-request throttle, metrics and the admin server.
type ops struct {
	s *Server

	mu      sync.Mutex
	perIP   map[string]int
	total   int
	refused atomic.Int64

	throttle throttle

	readLatency, updateLatency prometheus.Summary
	registry                   *prometheus.Registry

	lastSnapZxid atomic.Int64
	lastSnapTime atomic.Int64 // seconds; -1 before the first snapshot

	warnMu         sync.Mutex
	lastWarn       time.Time
	suppressedWarn int

	admin *adminServer
}

func newOps(s *Server) *ops {
	o := &ops{s: s, perIP: map[string]int{}}
	limit := s.cfg.GlobalOutstandingLimit
	if limit == 0 {
		limit = DefaultGlobalOutstandingLimit
	}
	o.throttle.limit = int64(limit)
	o.throttle.log = s.log
	o.lastSnapZxid.Store(-1)
	o.lastSnapTime.Store(-1)
	objectives := map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001}
	o.readLatency = prometheus.NewSummary(prometheus.SummaryOpts{Name: "readlatency", Help: "readlatency", Objectives: objectives})
	o.updateLatency = prometheus.NewSummary(prometheus.SummaryOpts{Name: "updatelatency", Help: "updatelatency", Objectives: objectives})
	o.registry = prometheus.NewRegistry()
	o.registry.MustRegister(o.readLatency, o.updateLatency, gaugeCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return o
}

// admit applies maxCnxns and maxClientCnxns to a new connection, as
// NIOServerCnxnFactory does; a refused connection is logged and closed by
// the caller.
func (o *ops) admit(nc net.Conn) bool {
	ip := peerIP(nc.RemoteAddr())
	o.mu.Lock()
	defer o.mu.Unlock()
	if max := o.s.cfg.MaxCnxns; max > 0 && o.total >= max {
		o.refused.Add(1)
		o.s.log.Warn("refusing connection: too many connections", "remote", nc.RemoteAddr().String(), "max", max)
		return false
	}
	if max := o.s.cfg.MaxClientCnxns; max > 0 && o.perIP[ip] >= max {
		o.refused.Add(1)
		o.s.log.Warn("refusing connection: too many connections from this address", "remote", nc.RemoteAddr().String(), "max", max)
		return false
	}
	o.total++
	o.perIP[ip]++
	return true
}

// release undoes admit when a connection closes.
func (o *ops) release(c *conn) {
	ip := peerIP(c.nc.RemoteAddr())
	o.mu.Lock()
	o.total--
	if o.perIP[ip]--; o.perIP[ip] <= 0 {
		delete(o.perIP, ip)
	}
	o.mu.Unlock()
}

// observe records a completed request's latency in the read or update
// summary (ZooKeeper's ServerMetrics READ_LATENCY / UPDATE_LATENCY, ms).
func (o *ops) observe(op proto.OpCode, start time.Time) {
	ms := float64(time.Since(start).Microseconds()) / 1000
	switch op {
	case proto.OpPing, proto.OpAuth, proto.OpSasl, proto.OpCreateSession:
		return
	}
	if newWriteRecord(op) != nil || op == proto.OpCloseSession {
		o.updateLatency.Observe(ms)
	} else {
		o.readLatency.Observe(ms)
	}
}

// warn logs apply warnings (exceeded quotas), at most one a second, as
// ZooKeeper's RateLogger does; the suppressed ones are counted.
func (o *ops) warn(msgs []string) {
	if len(msgs) == 0 {
		return
	}
	o.warnMu.Lock()
	defer o.warnMu.Unlock()
	now := time.Now()
	if now.Sub(o.lastWarn) < time.Second {
		o.suppressedWarn += len(msgs)
		return
	}
	o.lastWarn = now
	for _, m := range msgs {
		if o.suppressedWarn > 0 {
			o.s.log.Warn(m, "suppressed_similar", o.suppressedWarn)
			o.suppressedWarn = 0
		} else {
			o.s.log.Warn(m)
		}
	}
}

// snapshotTaken records the zxid and time of the newest snapshot (lsnp).
func (o *ops) snapshotTaken(zxid int64) {
	o.lastSnapZxid.Store(zxid)
	o.lastSnapTime.Store(time.Now().Unix())
}

// throttle is the global outstanding-request limit: requests are counted
// from the moment they are read until their reply is queued; at the limit
// every reader waits before reading its next request.
type throttle struct {
	limit  int64
	n      atomic.Int64
	gated  atomic.Bool
	mu     sync.Mutex
	gate   chan struct{}
	log    interface{ Warn(string, ...any) }
	events atomic.Int64
}

func (t *throttle) add() {
	if v := t.n.Add(1); t.limit > 0 && v >= t.limit {
		t.mu.Lock()
		if t.gate == nil && t.n.Load() >= t.limit {
			t.gate = make(chan struct{})
			t.gated.Store(true)
			t.events.Add(1)
			t.log.Warn("outstanding requests at globalOutstandingLimit: pausing reads from clients", "limit", t.limit)
		}
		t.mu.Unlock()
	}
}

func (t *throttle) done() {
	if v := t.n.Add(-1); t.gated.Load() && v < t.limit {
		t.mu.Lock()
		if t.gate != nil && t.n.Load() < t.limit {
			close(t.gate)
			t.gate = nil
			t.gated.Store(false)
		}
		t.mu.Unlock()
	}
}

// wait blocks while the limit is reached; false means stop was closed.
func (t *throttle) wait(stop <-chan struct{}) bool {
	if !t.gated.Load() {
		return true
	}
	t.mu.Lock()
	g := t.gate
	t.mu.Unlock()
	if g == nil {
		return true
	}
	select {
	case <-g:
		return true
	case <-stop:
		return false
	}
}

// outstanding is the number of requests read but not yet answered.
func (t *throttle) outstanding() int64 { return t.n.Load() }

// metric is one figure of mntr, the admin monitor command and /metrics.
type metric struct {
	name  string
	value any // int, int64, float64 or string
}

// monitor returns the figures of ZooKeeper's mntr, in its order: the one
// source of numbers for the four-letter word, the admin server's monitor
// command and the Prometheus gauges.
func (s *Server) monitor() []metric {
	min, avg, max := s.stats.latency()
	s.mu.RLock()
	st := s.state.Stats()
	s.mu.RUnlock()
	openFDs, maxFDs := fdCounts()
	return append([]metric{
		{"version", versionString()},
		{"server_state", s.Mode()},
		{"ephemerals_count", st.EphemeralCount},
		{"num_alive_connections", len(s.connList())},
		{"avg_latency", avg},
		{"outstanding_requests", s.outstanding()},
		{"znode_count", st.NodeCount},
		{"global_sessions", st.Sessions},
		{"non_mtls_remote_conn_count", 0},
		{"last_client_response_size", -1},
		{"packets_sent", s.stats.sent.Load()},
		{"packets_received", s.stats.received.Load()},
		{"max_client_response_size", -1},
		{"connection_drop_probability", 0.0},
		{"watch_count", s.watches.Count()},
		{"auth_failed_count", s.stats.authFailed.Load()},
		{"min_latency", min},
		{"max_file_descriptor_count", maxFDs},
		{"approximate_data_size", st.ApproxDataSize},
		{"open_file_descriptor_count", openFDs},
		{"local_sessions", s.localSessions()},
		{"uptime", time.Since(s.started).Milliseconds()},
		{"max_latency", max},
		{"outstanding_tls_handshake", 0},
		{"min_client_response_size", -1},
		{"non_mtls_local_conn_count", 0},
		{"connection_rejected", s.ops.refused.Load()},
		{"throttled_ops", s.ops.throttle.events.Load()},
	}, s.ensembleMetrics()...)
}

// gaugeCollector exports the numeric mntr figures as Prometheus gauges
// under ZooKeeper's PrometheusMetricsProvider names, plus the quota
// gauges (quota_{count,bytes}_{limit,usage}_per_namespace{key=...}).
type gaugeCollector struct{ s *Server }

// Describe sends nothing: the collector is unchecked, since the quota
// gauges' label values vary.
func (gaugeCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the current figures.
func (g gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range g.s.monitor() {
		var v float64
		switch x := m.value.(type) {
		case int:
			v = float64(x)
		case int64:
			v = float64(x)
		case float64:
			v = x
		default:
			continue
		}
		desc := prometheus.NewDesc(m.name, m.name, nil, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
	g.s.mu.RLock()
	quotas := g.s.state.Quotas()
	g.s.mu.RUnlock()
	sums := map[string]map[string]float64{}
	add := func(name, ns string, v int64) {
		if sums[name] == nil {
			sums[name] = map[string]float64{}
		}
		sums[name][ns] += float64(v)
	}
	for _, q := range quotas {
		ns := topNamespace(q.Path)
		if ns == "" {
			continue
		}
		countLimit, bytesLimit := q.Limits.Count(), q.Limits.Bytes()
		if h := q.Limits.CountHardLimit(); h > -1 {
			countLimit = h
		}
		if h := q.Limits.ByteHardLimit(); h > -1 {
			bytesLimit = h
		}
		add("quota_count_limit_per_namespace", ns, countLimit)
		add("quota_bytes_limit_per_namespace", ns, bytesLimit)
		if q.Usage != nil {
			add("quota_count_usage_per_namespace", ns, q.Usage.Count())
			add("quota_bytes_usage_per_namespace", ns, q.Usage.Bytes())
		}
	}
	for name, byNS := range sums {
		desc := prometheus.NewDesc(name, name, []string{"key"}, nil)
		for ns, v := range byNS {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, ns)
		}
	}
}

// topNamespace is PathUtils.getTopNamespace: "/a/b" → "a".
func topNamespace(path string) string {
	parts := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 2)
	return parts[0]
}

// formatMonitorValue writes a figure as mntr does (Java's toString).
func formatMonitorValue(v any) string {
	if f, ok := v.(float64); ok {
		return javaDouble(f)
	}
	return fmt.Sprint(v)
}
