package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The AdminServer: ZooKeeper's HTTP interface (JettyAdminServer), on
// Config.AdminAddr.
//
//	/commands            the command names, as links
//	/commands/<name>     JSON with the command's keys, plus "command" and
//	                     "error" (null on success), for each name or alias
//	/metrics             Prometheus text, ZooKeeper's metric names
//	/livez               200 while the process serves HTTP
//	/readyz              200 once the server serves clients with its
//	                     state applied, 503 before and while closing
//	/console/            the web console (console.go, docs/CONSOLE.md)

// adminServer is the running HTTP server.
type adminServer struct {
	srv *http.Server
	ln  net.Listener
}

// adminCommand is one command: its names (the first is primary) and the
// function producing its keys.
type adminCommand struct {
	names []string
	run   func(s *Server, r *http.Request) (jsonObject, string)
}

// adminCommands are ZooKeeper's Commands, in the order of its /commands
// listing (sorted by primary name).
var adminCommands = []adminCommand{
	{[]string{"configuration", "conf", "config"}, (*Server).adminConf},
	{[]string{"connection_stat_reset", "crst"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		s.resetConnStats()
		return nil, ""
	}},
	{[]string{"connections", "cons"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		return jsonObject{{"connections", s.connectionInfos()}, {"secure_connections", []any{}}}, ""
	}},
	{[]string{"dirs"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		d, l := s.dirSizes()
		return jsonObject{{"datadir_size", d}, {"logdir_size", l}}, ""
	}},
	{[]string{"dump"}, (*Server).adminDump},
	{[]string{"environment", "env", "envi"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		var o jsonObject
		for _, kv := range environment() {
			o = append(o, jsonField{kv[0], kv[1]})
		}
		return o, ""
	}},
	{[]string{"get_trace_mask", "gtmk"}, func(*Server, *http.Request) (jsonObject, string) {
		return jsonObject{{"tracemask", 306}}, ""
	}},
	{[]string{"hash"}, func(*Server, *http.Request) (jsonObject, string) {
		return jsonObject{{"digests", []any{}}}, ""
	}},
	{[]string{"initial_configuration", "icfg"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		return jsonObject{{"initial_configuration", s.cfg.InitialConfig}}, ""
	}},
	{[]string{"is_read_only", "isro"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		return jsonObject{{"read_only", s.readOnlyActive()}}, ""
	}},
	{[]string{"last_snapshot", "lsnp"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		return jsonObject{
			{"zxid", strconv.FormatUint(uint64(s.ops.lastSnapZxid.Load()), 16)},
			{"timestamp", s.ops.lastSnapTime.Load()},
		}, ""
	}},
	{[]string{"leader", "lead"}, (*Server).adminLeader},
	{[]string{"monitor", "mntr"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		var o jsonObject
		for _, m := range s.monitor() {
			o = append(o, jsonField{m.name, m.value})
		}
		return o, ""
	}},
	{[]string{"observer_connection_stat_reset", "orst"}, func(*Server, *http.Request) (jsonObject, string) {
		return nil, ""
	}},
	{[]string{"observers", "obsr"}, func(*Server, *http.Request) (jsonObject, string) {
		return jsonObject{{"synced_observers", 0}, {"observers", []any{}}}, ""
	}},
	{[]string{"ruok"}, func(*Server, *http.Request) (jsonObject, string) { return nil, "" }},
	{[]string{"server_stats", "srvr"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		return s.adminServerStats(), ""
	}},
	{[]string{"set_trace_mask", "stmk"}, func(_ *Server, r *http.Request) (jsonObject, string) {
		v := r.URL.Query().Get("traceMask")
		if v == "" {
			return nil, "setTraceMask requires long traceMask argument"
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, "setTraceMask requires long traceMask argument, got " + v
		}
		return jsonObject{{"tracemask", n}}, ""
	}},
	{[]string{"stat_reset", "srst"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		s.stats.reset()
		return nil, ""
	}},
	{[]string{"stats", "stat"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		o := s.adminServerStats()
		return append(o, jsonField{"connections", s.connectionInfos()}, jsonField{"secure_connections", []any{}}), ""
	}},
	{[]string{"system_properties", "sysp"}, (*Server).adminSystemProperties},
	{[]string{"voting_view"}, func(*Server, *http.Request) (jsonObject, string) {
		return jsonObject{{"current_config", jsonObject{}}}, ""
	}},
	{[]string{"watch_summary", "wchs"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		ws := s.watches.Summary()
		return jsonObject{{"num_connections", ws.Connections}, {"num_paths", ws.Paths}, {"num_total_watches", ws.Watches}}, ""
	}},
	{[]string{"watches", "wchc"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		m := jsonObject{}
		bySession := s.watches.BySession()
		ids := make([]int64, 0, len(bySession))
		for id := range bySession {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			m = append(m, jsonField{strconv.FormatInt(id, 10), bySession[id]})
		}
		return jsonObject{{"session_id_to_watched_paths", m}}, ""
	}},
	{[]string{"watches_by_path", "wchp"}, func(s *Server, _ *http.Request) (jsonObject, string) {
		m := jsonObject{}
		byPath := s.watches.ByPath()
		paths := make([]string, 0, len(byPath))
		for p := range byPath {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			m = append(m, jsonField{p, byPath[p]})
		}
		return jsonObject{{"path_to_session_ids", m}}, ""
	}},
	{[]string{"zabstate"}, (*Server).adminZabState},
}

// AdminCommandNames returns the primary name of every admin command.
func AdminCommandNames() []string {
	out := make([]string, len(adminCommands))
	for i, c := range adminCommands {
		out[i] = c.names[0]
	}
	return out
}

func findAdminCommand(name string) *adminCommand {
	for i := range adminCommands {
		for _, n := range adminCommands[i].names {
			if n == name {
				return &adminCommands[i]
			}
		}
	}
	return nil
}

// startAdmin binds and serves the admin HTTP server.
func (s *Server) startAdmin(t *tlsState) error {
	if s.cfg.AdminAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		return err
	}
	ln = s.adminListener(ln, t)
	mux := http.NewServeMux()
	mux.HandleFunc("/commands", s.serveCommandList)
	mux.HandleFunc("/commands/", s.serveCommand)
	mux.Handle("/metrics", promhttp.HandlerFor(s.ops.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := s.Ready(); !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	// The web console (console.go): /console/, and / redirects to it.
	s.mountConsole(mux)
	// The operator's endpoints (admin_operator.go).
	s.mountOperatorEndpoints(mux)
	// net/http's own complaints (failed TLS handshakes, plain HTTP on the
	// HTTPS port) go to the server's log, at debug level.
	a := &adminServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}}
	s.ops.admin = a
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "err", err)
		}
	}()
	s.log.Info("admin server listening", "url", s.AdminURL(), "unified", t != nil && s.cfg.AdminPortUnification,
		"clientAuth", s.cfg.AdminTLSClientAuth)
	return nil
}

func (s *Server) closeAdmin() {
	if a := s.ops.admin; a != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a.srv.Shutdown(ctx)
	}
}

// AdminAddr returns the admin server's bound address, or nil when it is
// not running.
func (s *Server) AdminAddr() net.Addr {
	if s.ops.admin == nil {
		return nil
	}
	return s.ops.admin.ln.Addr()
}

// Ready reports whether the server serves clients with an applied state
// (the /readyz probe) and, if not, why.
func (s *Server) Ready() (bool, string) {
	if s.ctx.Err() != nil {
		return false, "server is shutting down"
	}
	select {
	case <-s.node.Done():
		return false, "replication stopped"
	default:
	}
	if s.ens != nil && s.ens.gated() {
		return false, s.ens.adm.why()
	}
	if s.node.AppliedIndex() < s.node.CommittedIndex() {
		return false, "applying the log"
	}
	// In quorum: a standalone server leads itself; an ensemble member
	// must know a leader.
	if !s.node.IsLeader() && s.node.Leader() == 0 {
		return false, "no leader (not in quorum)"
	}
	return true, ""
}

func (s *Server) serveCommandList(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	for _, name := range AdminCommandNames() {
		fmt.Fprintf(&b, "<a href=\"/commands/%s\">%s</a>\n<br/>\n", html.EscapeString(name), html.EscapeString(name))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(b.String()))
}

func (s *Server) serveCommand(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/commands/")
	if name == "" {
		s.serveCommandList(w, r)
		return
	}
	var out jsonObject
	cmd := findAdminCommand(name)
	if cmd == nil {
		out = jsonObject{{"command", name}, {"error", "Unknown command: " + name}}
	} else {
		fields, errMsg := cmd.run(s, r)
		out = append(fields, jsonField{"command", cmd.names[0]})
		if errMsg != "" {
			out = append(out, jsonField{"error", errMsg})
		} else {
			out = append(out, jsonField{"error", nil})
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

// jsonField and jsonObject are a JSON object that keeps its key order, as
// ZooKeeper's LinkedHashMap responses do.
type jsonField struct {
	Key   string
	Value any
}

type jsonObject []jsonField

// MarshalJSON writes the fields in order.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (s *Server) adminConf(*http.Request) (jsonObject, string) {
	port := 0
	if ta, ok := s.ln.Addr().(*net.TCPAddr); ok {
		port = ta.Port
	}
	dataDir, _ := filepath.Abs(s.cfg.DataDir)
	logDir := dataDir
	if s.cfg.DataLogDir != "" {
		logDir, _ = filepath.Abs(s.cfg.DataLogDir)
	}
	return jsonObject{
		{"client_port", port},
		{"data_dir", dataDir},
		{"data_log_dir", logDir},
		{"tick_time", s.cfg.TickTime.Milliseconds()},
		{"max_client_cnxns", s.cfg.MaxClientCnxns},
		{"min_session_timeout", s.cfg.MinSessionTimeout.Milliseconds()},
		{"max_session_timeout", s.cfg.MaxSessionTimeout.Milliseconds()},
		{"server_id", s.cfg.ServerID},
		{"client_port_listen_backlog", -1},
	}, ""
}

func (s *Server) adminServerStats() jsonObject {
	min, avg, max := s.stats.latency()
	d, l := s.dirSizes()
	s.mu.RLock()
	zxid := s.state.LastZxid()
	nodes := s.state.Stats().NodeCount
	s.mu.RUnlock()
	clientResponse := jsonObject{{"last_buffer_size", -1}, {"min_buffer_size", -1}, {"max_buffer_size", -1}}
	out := jsonObject{
		{"version", versionString()},
		{"read_only", false},
		{"server_stats", jsonObject{
			{"packets_sent", s.stats.sent.Load()},
			{"packets_received", s.stats.received.Load()},
			{"fsync_threshold_exceed_count", 0},
			{"client_response_stats", clientResponse},
			{"data_dir_size", d},
			{"log_dir_size", l},
			{"provider_null", false},
			{"server_state", s.Mode()},
			{"last_processed_zxid", zxid},
			{"outstanding_requests", s.outstanding()},
			{"avg_latency", avg},
			{"max_latency", max},
			{"min_latency", min},
			{"num_alive_client_connections", len(s.connList())},
			{"auth_failed_count", s.stats.authFailed.Load()},
			{"non_mtlsremote_conn_count", 0},
			{"non_mtlslocal_conn_count", 0},
			{"uptime", time.Since(s.started).Milliseconds()},
		}},
		{"client_response", clientResponse},
		{"node_count", nodes},
	}
	if s.ens != nil && s.ens.refusedAdmission() {
		// Paddock's own key: why this member takes no part (admission.go);
		// the operator reports it.
		out = append(out, jsonField{"refusal", s.ens.adm.why()})
	}
	return out
}

// connectionInfos is ServerCnxn.getConnectionInfo(false) for every client
// connection.
func (s *Server) connectionInfos() []jsonObject {
	out := []jsonObject{}
	for _, c := range s.connList() {
		c.outMu.Lock()
		queued := len(c.order)
		c.outMu.Unlock()
		min, avg, max := c.stats.latency()
		info := jsonObject{
			{"remote_socket_address", c.remote},
			{"interest_ops", 1},
			{"outstanding_requests", queued},
			{"packets_received", c.stats.received.Load()},
			{"packets_sent", c.stats.sent.Load()},
		}
		if sid := c.sessionID(); sid != 0 {
			info = append(info,
				jsonField{"session_id", "0x" + strconv.FormatUint(uint64(sid), 16)},
				jsonField{"last_operation", opAbbrev(proto.OpCode(c.stats.lastOp.Load()))},
				jsonField{"established", c.established.Format("Mon Jan 02 15:04:05 MST 2006")},
				jsonField{"session_timeout", c.timeout.Load()},
				jsonField{"last_cxid", "0x" + strconv.FormatUint(uint64(uint32(c.stats.lastCxid.Load())), 16)},
				jsonField{"last_zxid", "0x" + strconv.FormatUint(uint64(c.stats.lastZxid.Load()), 16)},
				jsonField{"last_response_time", c.stats.lastResp.Load()},
				jsonField{"last_latency", c.stats.lastLat.Load()},
				jsonField{"min_latency", min},
				jsonField{"avg_latency", int64(avg)},
				jsonField{"max_latency", max},
			)
		}
		out = append(out, info)
	}
	return out
}

func (s *Server) resetConnStats() {
	for _, c := range s.connList() {
		c.stats.reset()
	}
}

func (s *Server) dirSizes() (data, log int64) {
	return dirSize(filepath.Join(s.cfg.DataDir, "snap")), dirSize(filepath.Join(s.cfg.DataDir, "wal"))
}

// adminDump is the dump command: sessions by expiry time (rounded up to
// the tick, as ZooKeeper's ExpiryQueue buckets are) and ephemerals by
// session.
func (s *Server) adminDump(*http.Request) (jsonObject, string) {
	expiry := jsonObject{}
	for _, b := range s.sessionExpiryBuckets() {
		expiry = append(expiry, jsonField{strconv.FormatInt(b.at, 10), b.ids})
	}
	eph := jsonObject{}
	for _, e := range s.ephemeralsBySession() {
		eph = append(eph, jsonField{strconv.FormatInt(e.id, 10), e.paths})
	}
	return jsonObject{{"expiry_time_to_session_ids", expiry}, {"session_id_to_ephemeral_paths", eph}}, ""
}

// expiryBucket is a set of sessions expiring at the same time (ms).
type expiryBucket struct {
	at  int64
	ids []int64
}

// sessionExpiryBuckets groups the tracked sessions by deadline, rounded up
// to the tick as ZooKeeper's ExpiryQueue buckets are, in time order.
func (s *Server) sessionExpiryBuckets() []expiryBucket {
	tick := s.cfg.TickTime.Milliseconds()
	if tick <= 0 {
		tick = 1
	}
	byExpiry := map[int64][]int64{}
	s.tracker.mu.Lock()
	for id, ts := range s.tracker.sessions {
		at := ts.deadline.UnixMilli()
		at = (at/tick + 1) * tick
		byExpiry[at] = append(byExpiry[at], id)
	}
	s.tracker.mu.Unlock()
	out := make([]expiryBucket, 0, len(byExpiry))
	for at, ids := range byExpiry {
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		out = append(out, expiryBucket{at, ids})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

type sessionEphemerals struct {
	id    int64
	paths []string
}

func (s *Server) ephemeralsBySession() []sessionEphemerals {
	var out []sessionEphemerals
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, si := range s.state.Sessions() {
		if paths := s.state.Ephemerals(si.ID); len(paths) > 0 {
			out = append(out, sessionEphemerals{si.ID, paths})
		}
	}
	return out
}

// writeDump writes the dump four-letter word (DumpCommand): the session
// tracker's expiry sets, the ephemerals by session, and the connections'.
func (s *Server) writeDump(b *strings.Builder) {
	javaDate := func(ms int64) string { return time.UnixMilli(ms).Format("Mon Jan 02 15:04:05 MST 2006") }
	writeSets := func(buckets []expiryBucket) {
		n := 0
		for _, bk := range buckets {
			n += len(bk.ids)
		}
		fmt.Fprintf(b, "Sets (%d)/(%d):\n", len(buckets), n)
		for _, bk := range buckets {
			fmt.Fprintf(b, "%d expire at %s:\n", len(bk.ids), javaDate(bk.at))
			for _, id := range bk.ids {
				fmt.Fprintf(b, "\t0x%x\n", uint64(id))
			}
		}
	}
	b.WriteString("SessionTracker dump:\nSession ")
	sessions := s.sessionExpiryBuckets()
	writeSets(sessions)
	b.WriteString("ephemeral nodes dump:\n")
	eph := s.ephemeralsBySession()
	fmt.Fprintf(b, "Sessions with Ephemerals (%d):\n", len(eph))
	for _, e := range eph {
		fmt.Fprintf(b, "0x%x:\n", uint64(e.id))
		for _, p := range e.paths {
			fmt.Fprintf(b, "\t%s\n", p)
		}
	}
	b.WriteString("Connections dump:\nConnections ")
	held := map[int64]bool{}
	for _, c := range s.connList() {
		if id := c.sessionID(); id != 0 {
			held[id] = true
		}
	}
	var conns []expiryBucket
	for _, bk := range sessions {
		var ids []int64
		for _, id := range bk.ids {
			if held[id] {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			conns = append(conns, expiryBucket{bk.at, ids})
		}
	}
	writeSets(conns)
}

func (s *Server) adminLeader(*http.Request) (jsonObject, string) {
	if s.Mode() == "standalone" {
		// ZooKeeper's standalone server is not a quorum server.
		return nil, "server is not initialized"
	}
	return jsonObject{
		{"is_leader", s.node.IsLeader()},
		{"leader_id", s.node.Leader()},
		{"leader_ip", ""},
	}, ""
}

func (s *Server) adminZabState(*http.Request) (jsonObject, string) {
	if s.Mode() == "standalone" {
		return jsonObject{{"voting", false}, {"zabstate", ""}}, ""
	}
	state := "broadcast"
	if s.node.Leader() == 0 {
		state = "election"
	}
	return jsonObject{
		{"myid", s.cfg.ServerID},
		{"is_leader", s.node.IsLeader()},
		{"voting", true},
		{"last_zxid", "0x" + strconv.FormatUint(uint64(s.lastZxidLocked()), 16)},
		{"zabstate", state},
	}, ""
}

func (s *Server) lastZxidLocked() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.LastZxid()
}

// adminSystemProperties reports the configuration as ZooKeeper's system
// properties plus the process environment ZooKeeper's JVM would list.
func (s *Server) adminSystemProperties(*http.Request) (jsonObject, string) {
	props := map[string]string{}
	for k, v := range s.cfg.SystemProperties {
		props[k] = v
	}
	for _, kv := range environment() {
		if kv[0] != "zookeeper.version" {
			props[kv[0]] = kv[1]
		}
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var o jsonObject
	for _, k := range keys {
		o = append(o, jsonField{k, props[k]})
	}
	return o, ""
}

// environment is the envi command's content, in its order.
func environment() [][2]string {
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mb := func(n uint64) string { return strconv.FormatUint(n>>20, 10) + "MB" }
	return [][2]string{
		{"zookeeper.version", versionString()},
		{"host.name", host},
		{"paddock.version", Version},
		{"go.version", runtime.Version()},
		{"os.name", runtime.GOOS},
		{"os.arch", runtime.GOARCH},
		{"user.name", os.Getenv("USER")},
		{"user.home", home},
		{"user.dir", wd},
		{"os.memory.free", mb(ms.HeapIdle)},
		{"os.memory.max", mb(ms.Sys)},
		{"os.memory.total", mb(ms.HeapSys)},
	}
}
