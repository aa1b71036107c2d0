package server

import (
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// fourLetterWords are the commands recognised in the first 4 bytes of a new
// connection (FourLetterCommands). Each writes text and closes.
var fourLetterWords = map[string]string{
	"ruok": "ruok", "srvr": "srvr", "stat": "stat", "mntr": "mntr", "conf": "conf",
	"cons": "cons", "envi": "envi", "wchs": "wchs", "wchc": "wchc", "wchp": "wchp",
	"dirs": "dirs", "isro": "isro", "crst": "crst", "srst": "srst", "dump": "dump",
}

// fourLetter runs a command and closes the connection once the answer is
// written, as NIOServerCnxn.checkFourLetterWord does.
func (c *conn) fourLetter(cmd string) {
	s := c.s
	c.log.Debug("four-letter word", "cmd", cmd)
	s.cmu.Lock()
	delete(s.conns, c) // a 4lw connection is not a client connection
	s.cmu.Unlock()
	var out string
	if !s.whitelisted(cmd) {
		out = cmd + " is not executed because it is not in the whitelist.\n"
	} else {
		out = s.runFourLetterFrom(cmd, c.remote)
	}
	// Written directly (nothing else is queued on a 4lw connection), so
	// it does not count as a sent packet.
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.nc.Write([]byte(out))
	c.close()
}

func (s *Server) runFourLetter(cmd string) string { return s.runFourLetterFrom(cmd, "") }

// runFourLetterFrom runs a command asked for over the connection from
// self (empty when not asked over the wire). ZooKeeper counts and lists the
// asking connection itself in srvr/stat, so tools see it there too.
func (s *Server) runFourLetterFrom(cmd, self string) string {
	var b strings.Builder
	switch cmd {
	case "ruok":
		b.WriteString("imok")
	case "srvr":
		s.writeServerStats(&b, false, self)
	case "stat":
		s.writeServerStats(&b, true, self)
	case "mntr":
		s.writeMonitor(&b)
	case "conf":
		s.writeConf(&b)
	case "cons":
		for _, c := range s.connList() {
			c.writeInfo(&b, false)
		}
		b.WriteString("\n")
	case "envi":
		s.writeEnv(&b)
	case "dump":
		s.writeDump(&b)
	case "wchs":
		ws := s.watches.Summary()
		fmt.Fprintf(&b, "%d connections watching %d paths\nTotal watches:%d\n", ws.Connections, ws.Paths, ws.Watches)
	case "wchc":
		bySession := s.watches.BySession()
		ids := make([]int64, 0, len(bySession))
		for id := range bySession {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			fmt.Fprintf(&b, "0x%x\n", uint64(id))
			for _, p := range bySession[id] {
				fmt.Fprintf(&b, "\t%s\n", p)
			}
		}
		b.WriteString("\n")
	case "wchp":
		byPath := s.watches.ByPath()
		paths := make([]string, 0, len(byPath))
		for p := range byPath {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(&b, "%s\n", p)
			for _, id := range byPath[p] {
				fmt.Fprintf(&b, "\t0x%x\n", uint64(id))
			}
		}
		b.WriteString("\n")
	case "dirs":
		fmt.Fprintf(&b, "datadir_size: %d\nlogdir_size: %d\n",
			dirSize(filepath.Join(s.cfg.DataDir, "snap")), dirSize(filepath.Join(s.cfg.DataDir, "wal")))
	case "isro":
		if s.readOnlyActive() {
			b.WriteString("ro")
		} else {
			b.WriteString("rw")
		}
	case "crst":
		for _, c := range s.connList() {
			c.stats.reset()
		}
		b.WriteString("Connection stats reset.\n")
	case "srst":
		s.stats.reset()
		b.WriteString("Server stats reset.\n")
	}
	return b.String()
}

// versionString is what ZooKeeper prints as "Zookeeper version:".
func versionString() string {
	return ZooKeeperVersion + "-paddock-" + Version + ", built on " + buildDate()
}

func buildDate() string {
	return "unknown"
}

// writeServerStats writes srvr (and stat, which adds the client list) in
// ZooKeeper's format; tools grep "Mode:" and "Zxid:".
func (s *Server) writeServerStats(b *strings.Builder, clients bool, self string) {
	fmt.Fprintf(b, "Zookeeper version: %s\n", versionString())
	if s.readOnlyActive() {
		b.WriteString("READ-ONLY mode; serving only read-only clients\n")
	}
	conns := len(s.connList())
	if self != "" {
		conns++
	}
	if clients {
		// stat lists clients in the brief form (dumpConnectionInfo with
		// brief=true), the asking connection included.
		b.WriteString("Clients:\n")
		for _, c := range s.connList() {
			c.writeInfo(b, true)
		}
		if self != "" {
			fmt.Fprintf(b, " /%s[0](queued=0,recved=1,sent=0)\n", self)
		}
		b.WriteString("\n")
	}
	min, avg, max := s.stats.latency()
	fmt.Fprintf(b, "Latency min/avg/max: %d/%s/%d\n", min, javaDouble(avg), max)
	fmt.Fprintf(b, "Received: %d\n", s.stats.received.Load())
	fmt.Fprintf(b, "Sent: %d\n", s.stats.sent.Load())
	fmt.Fprintf(b, "Connections: %d\n", conns)
	fmt.Fprintf(b, "Outstanding: %d\n", s.outstanding())
	s.mu.RLock()
	zxid := s.state.LastZxid()
	nodes := s.state.Stats().NodeCount
	s.mu.RUnlock()
	fmt.Fprintf(b, "Zxid: 0x%x\n", uint64(zxid))
	fmt.Fprintf(b, "Mode: %s\n", s.Mode())
	fmt.Fprintf(b, "Node count: %d\n", nodes)
}

// outstanding is the number of requests read but not yet answered
// (ServerStats.getOutstandingRequests).
func (s *Server) outstanding() int {
	return int(s.ops.throttle.outstanding())
}

// writeMonitor writes mntr: ZooKeeper's MonitorCommand keys that have a
// meaning here, tab-separated, from the same figures as the admin server's
// monitor command and /metrics (ops.go).
func (s *Server) writeMonitor(b *strings.Builder) {
	for _, m := range s.monitor() {
		fmt.Fprintf(b, "zk_%s\t%s\n", m.name, formatMonitorValue(m.value))
	}
}

func (s *Server) writeConf(b *strings.Builder) {
	port := 0
	if ta, ok := s.ln.Addr().(*net.TCPAddr); ok {
		port = ta.Port
	}
	abs, _ := filepath.Abs(s.cfg.DataDir)
	fmt.Fprintf(b, "clientPort=%d\n", port)
	b.WriteString("secureClientPort=-1\n")
	fmt.Fprintf(b, "dataDir=%s\n", abs)
	fmt.Fprintf(b, "dataDirSize=%d\n", dirSize(filepath.Join(s.cfg.DataDir, "snap")))
	logAbs := abs
	if s.cfg.DataLogDir != "" {
		logAbs, _ = filepath.Abs(s.cfg.DataLogDir)
	}
	fmt.Fprintf(b, "dataLogDir=%s\n", logAbs)
	fmt.Fprintf(b, "dataLogSize=%d\n", dirSize(filepath.Join(s.cfg.DataDir, "wal")))
	fmt.Fprintf(b, "tickTime=%d\n", s.cfg.TickTime.Milliseconds())
	fmt.Fprintf(b, "maxClientCnxns=%d\n", s.cfg.MaxClientCnxns)
	fmt.Fprintf(b, "minSessionTimeout=%d\n", s.cfg.MinSessionTimeout.Milliseconds())
	fmt.Fprintf(b, "maxSessionTimeout=%d\n", s.cfg.MaxSessionTimeout.Milliseconds())
	b.WriteString("clientPortListenBacklog=-1\n")
	fmt.Fprintf(b, "serverId=%d\n", s.cfg.ServerID)
}

// writeEnv writes envi. Kazoo's server_version() parses zookeeper.version.
func (s *Server) writeEnv(b *strings.Builder) {
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	user := os.Getenv("USER")
	b.WriteString("Environment:\n")
	fmt.Fprintf(b, "zookeeper.version=%s\n", versionString())
	fmt.Fprintf(b, "host.name=%s\n", host)
	fmt.Fprintf(b, "paddock.version=%s\n", Version)
	fmt.Fprintf(b, "go.version=%s\n", runtime.Version())
	fmt.Fprintf(b, "os.name=%s\n", runtime.GOOS)
	fmt.Fprintf(b, "os.arch=%s\n", runtime.GOARCH)
	fmt.Fprintf(b, "user.name=%s\n", user)
	fmt.Fprintf(b, "user.home=%s\n", home)
	fmt.Fprintf(b, "user.dir=%s\n", wd)
}

// writeInfo writes one cons line, in NIOServerCnxn.dumpConnectionInfo's
// format; brief leaves out the session details, as stat does.
func (c *conn) writeInfo(b *strings.Builder, brief bool) {
	c.outMu.Lock()
	queued := len(c.order)
	c.outMu.Unlock()
	fmt.Fprintf(b, " /%s[1](queued=%d,recved=%d,sent=%d", c.remote, queued, c.stats.received.Load(), c.stats.sent.Load())
	if sid := c.sessionID(); sid != 0 && !brief {
		min, avg, max := c.stats.latency()
		fmt.Fprintf(b, ",sid=0x%x,lop=%s,est=%d,to=%d,lcxid=0x%x,lzxid=0x%x,lresp=%d,llat=%d,minlat=%d,avglat=%d,maxlat=%d",
			uint64(sid), opAbbrev(proto.OpCode(c.stats.lastOp.Load())), c.established.UnixMilli(), c.timeout.Load(),
			uint32(c.stats.lastCxid.Load()), uint64(c.stats.lastZxid.Load()), c.stats.lastResp.Load(),
			c.stats.lastLat.Load(), min, int64(avg), max)
	}
	b.WriteString(")\n")
}

// opAbbrev is FinalRequestProcessor's lastOp name.
func opAbbrev(op proto.OpCode) string {
	switch op {
	case proto.OpPing:
		return "PING"
	case proto.OpCreateSession:
		return "SESS"
	case proto.OpMulti:
		return "MULT"
	case proto.OpMultiRead:
		return "MLTR"
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateTTL, proto.OpCreateContainer:
		return "CREA"
	case proto.OpDelete, proto.OpDeleteContainer:
		return "DELE"
	case proto.OpSetData:
		return "SETD"
	case proto.OpReconfig:
		return "RECO"
	case proto.OpSetACL:
		return "SETA"
	case proto.OpCloseSession:
		return "CLOS"
	case proto.OpSync:
		return "SYNC"
	case proto.OpCheck:
		return "CHEC"
	case proto.OpExists:
		return "EXIS"
	case proto.OpGetData:
		return "GETD"
	case proto.OpSetWatches:
		return "SETW"
	case proto.OpSetWatches2:
		return "STW2"
	case proto.OpAddWatch:
		return "ADDW"
	case proto.OpGetACL:
		return "GETA"
	case proto.OpGetChildren, proto.OpGetChildren2:
		return "GETC"
	case proto.OpGetAllChildrenNumber:
		return "GETACN"
	case proto.OpCheckWatches:
		return "CHKW"
	case proto.OpRemoveWatches:
		return "REMW"
	case proto.OpWhoAmI:
		return "HOMI"
	case proto.OpGetEphemerals:
		return "GETE"
	}
	return "NA"
}

// javaDouble formats like Java's Double.toString for ordinary values:
// always at least one decimal ("0.0", "1.5").
func javaDouble(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// fdCounts returns the open and maximum file descriptor counts (Linux;
// zeros elsewhere).
func fdCounts() (open, max int64) {
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		open = int64(len(ents))
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Max open files") {
				if f := strings.Fields(line); len(f) >= 4 {
					max, _ = strconv.ParseInt(f[3], 10, 64)
				}
			}
		}
	}
	return open, max
}

// latencyStats accumulates request latencies in milliseconds.
type latencyStats struct {
	mu              sync.Mutex
	min, max, total int64
	count           int64
}

func (l *latencyStats) add(ms int64) {
	l.mu.Lock()
	if l.count == 0 || ms < l.min {
		l.min = ms
	}
	if ms > l.max {
		l.max = ms
	}
	l.total += ms
	l.count++
	l.mu.Unlock()
}

func (l *latencyStats) get() (min int64, avg float64, max int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == 0 {
		return 0, 0, 0
	}
	// ZooKeeper rounds the average to 4 decimals, half up
	// (ServerStats.getAvgLatency); tools such as zktop parse that form.
	avg = math.Floor(float64(l.total)/float64(l.count)*1e4+0.5) / 1e4
	return l.min, avg, l.max
}

func (l *latencyStats) reset() {
	l.mu.Lock()
	l.min, l.max, l.total, l.count = 0, 0, 0, 0
	l.mu.Unlock()
}

// serverStats are ZooKeeper's ServerStats: packet counts and latency.
type serverStats struct {
	received, sent atomic.Int64
	authFailed     atomic.Int64
	lat            latencyStats
}

func (s *serverStats) replied(start time.Time) {
	s.lat.add(time.Since(start).Milliseconds())
}

func (s *serverStats) latency() (int64, float64, int64) { return s.lat.get() }

func (s *serverStats) reset() {
	s.received.Store(0)
	s.sent.Store(0)
	s.lat.reset()
}

// connStats are a connection's counters for cons.
type connStats struct {
	received, sent    atomic.Int64
	lastOp, lastCxid  atomic.Int32
	lastZxid          atomic.Int64
	lastResp, lastLat atomic.Int64
	lat               latencyStats
}

func (s *connStats) replied(start time.Time) {
	ms := time.Since(start).Milliseconds()
	s.lat.add(ms)
	s.lastLat.Store(ms)
	s.lastResp.Store(time.Now().UnixMilli())
}

func (s *connStats) latency() (int64, float64, int64) { return s.lat.get() }

func (s *connStats) reset() {
	s.received.Store(0)
	s.sent.Store(0)
	s.lat.reset()
}
