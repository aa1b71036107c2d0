// Package zkref starts a real Apache ZooKeeper 3.8 (from Debian's
// `zookeeper` package) as a child process, for tests that compare Paddock
// against the reference implementation.
//
// The server runs ZooKeeperServerMain (standalone) or QuorumPeerMain
// (ensemble) directly with java, on loopback ports, with its own temporary
// dataDir, a generated zoo.cfg and a log4j configuration that writes to a
// file in that directory. Extended types (TTL nodes) are enabled, every
// four-letter word is whitelisted, the admin server is disabled and
// maxClientCnxns is unlimited.
//
// Tests normally call [Require] and then [Start]; [Available] reports
// whether the reference server can run on this machine at all.
package zkref

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Locations of Debian's ZooKeeper package. They are variables so that a test
// environment with a different layout can override them before starting a
// server.
var (
	// ZooKeeperJar is the main ZooKeeper jar. Its manifest Class-Path pulls
	// in the rest of the dependencies from /usr/share/java.
	ZooKeeperJar = "/usr/share/java/zookeeper.jar"
	// LogJars are the log4j 1.2 backend and its slf4j binding, so that the
	// server logs to a file instead of to slf4j's no-op logger.
	LogJars = []string{"/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"}
	// ZkCli is Apache's command-line client script.
	ZkCli = "/usr/share/zookeeper/bin/zkCli.sh"
	// Java is the java launcher; if empty, "java" is looked up on PATH.
	Java = ""
)

const (
	standaloneMain = "org.apache.zookeeper.server.ZooKeeperServerMain"
	quorumMain     = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
)

// Available reports whether Apache ZooKeeper can be started here: java and
// Debian's ZooKeeper jars must be present. It returns nil when they are.
func Available() error {
	if _, err := javaPath(); err != nil {
		return fmt.Errorf("zkref: java not found: %w (apt-get install zookeeper)", err)
	}
	for _, f := range append([]string{ZooKeeperJar}, LogJars...) {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("zkref: %s missing: %w (apt-get install zookeeper)", f, err)
		}
	}
	return nil
}

// Require skips the test when Apache ZooKeeper is not available, or fails
// it when the environment variable CI is "true" (a CI machine must have
// the reference server installed, so a missing one is an error there).
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Apache ZooKeeper is required in CI: %v", err)
		}
		t.Skipf("Apache ZooKeeper not available: %v", err)
	}
}

func javaPath() (string, error) {
	if Java != "" {
		return Java, nil
	}
	return exec.LookPath("java")
}

// Options configures a reference server. The zero value is a standalone
// server on a free loopback port with tickTime=2000.
type Options struct {
	// Port is the client port; 0 picks a free one.
	Port int
	// TickTime is ZooKeeper's tickTime; 0 means 2s.
	TickTime time.Duration
	// MinSessionTimeout and MaxSessionTimeout override ZooKeeper's defaults
	// (2 and 20 ticks) when non-zero.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// ExtraConfig lines are appended to zoo.cfg verbatim.
	ExtraConfig []string
	// JVMFlags are added to the java command line, e.g.
	// "-Dznode.container.checkIntervalMs=3600000".
	JVMFlags []string
	// Dir is the working directory (dataDir, config, logs); empty means a
	// fresh temporary directory, removed by Stop.
	Dir string
	// StartTimeout bounds the wait for the server to serve; 0 means 60s.
	StartTimeout time.Duration
}

// Server is one running Apache ZooKeeper process.
type Server struct {
	// Addr is the client address, "127.0.0.1:<port>".
	Addr string
	// Port is the client port.
	Port int
	// PID is the java process id (for memory measurements and the like).
	PID int
	// Dir holds zoo.cfg, data/, and zookeeper.log.
	Dir string
	// LogFile is the server's log4j log.
	LogFile string

	removeDir bool
	cmd       *exec.Cmd
	done      chan struct{}
	waitErr   error
	stopOnce  sync.Once
	stopErr   error
}

// Start starts a standalone reference server for a test and registers its
// Stop with t.Cleanup. It calls [Require] first.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	s, err := StartServer(opts)
	if err != nil {
		t.Fatalf("zkref: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Logf("zkref: stop %s: %v", s.Addr, err)
		}
	})
	return s
}

// StartServer starts a standalone reference server and waits until it
// serves requests. The caller must call Stop.
func StartServer(opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	dir, remove, err := workDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		ports, err := FreePorts(1)
		if err != nil {
			return nil, err
		}
		port = ports[0]
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	cfg := baseConfig(opts, dataDir, port)
	s, err := launch(dir, remove, port, standaloneMain, cfg, opts.JVMFlags)
	if err != nil {
		return nil, err
	}
	if err := s.waitServing(opts.StartTimeout, "standalone"); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func workDir(dir string) (string, bool, error) {
	if dir != "" {
		return dir, false, os.MkdirAll(dir, 0o755)
	}
	d, err := os.MkdirTemp("", "zkref-")
	return d, true, err
}

func baseConfig(opts Options, dataDir string, port int) []string {
	tick := opts.TickTime
	if tick == 0 {
		tick = 2 * time.Second
	}
	cfg := []string{
		fmt.Sprintf("tickTime=%d", tick.Milliseconds()),
		"dataDir=" + dataDir,
		fmt.Sprintf("clientPort=%d", port),
		"clientPortAddress=127.0.0.1",
		"maxClientCnxns=0",
		"admin.enableServer=false",
		"4lw.commands.whitelist=*",
		"forceSync=yes",
		"autopurge.purgeInterval=0",
	}
	if opts.MinSessionTimeout > 0 {
		cfg = append(cfg, fmt.Sprintf("minSessionTimeout=%d", opts.MinSessionTimeout.Milliseconds()))
	}
	if opts.MaxSessionTimeout > 0 {
		cfg = append(cfg, fmt.Sprintf("maxSessionTimeout=%d", opts.MaxSessionTimeout.Milliseconds()))
	}
	return append(cfg, opts.ExtraConfig...)
}

// launch writes the config files into dir and starts java.
func launch(dir string, remove bool, port int, mainClass string, cfg []string, jvmFlags []string) (*Server, error) {
	cfgFile := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgFile, []byte(strings.Join(cfg, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	logFile := filepath.Join(dir, "zookeeper.log")
	log4j := strings.Join([]string{
		"log4j.rootLogger=INFO, FILE",
		"log4j.appender.FILE=org.apache.log4j.FileAppender",
		"log4j.appender.FILE.File=" + logFile,
		"log4j.appender.FILE.Append=true",
		"log4j.appender.FILE.layout=org.apache.log4j.PatternLayout",
		"log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n",
	}, "\n") + "\n"
	log4jFile := filepath.Join(dir, "log4j.properties")
	if err := os.WriteFile(log4jFile, []byte(log4j), 0o644); err != nil {
		return nil, err
	}
	java, err := javaPath()
	if err != nil {
		return nil, err
	}
	args := []string{
		"-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.net.preferIPv4Stack=true",
		"-Dzookeeper.extendedTypesEnabled=true",
		"-Dzookeeper.admin.enableServer=false",
		"-Dzookeeper.4lw.commands.whitelist=*",
		"-Dzookeeper.log.dir=" + dir,
		"-Dlog4j.configuration=file:" + log4jFile,
	}
	args = append(args, jvmFlags...)
	args = append(args, "-cp", strings.Join(append([]string{ZooKeeperJar}, LogJars...), ":"), mainClass, cfgFile)
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(java, args...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	// Own process group: a ^C to the test does not hit java first, and
	// Stop signals exactly this PID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("zkref: start java: %w", err)
	}
	s := &Server{
		Addr:      fmt.Sprintf("127.0.0.1:%d", port),
		Port:      port,
		PID:       cmd.Process.Pid,
		Dir:       dir,
		LogFile:   logFile,
		removeDir: remove,
		cmd:       cmd,
		done:      make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		out.Close()
		close(s.done)
	}()
	return s, nil
}

// waitServing polls the "srvr" four-letter word until the server reports
// a Mode (standalone, leader or follower), which it only does once it
// serves client requests.
func (s *Server) waitServing(timeout time.Duration, wantMode string) error {
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("zkref: java exited during startup (%v)\n%s", s.waitErr, s.tail())
		default:
		}
		out, err := FourLetter(s.Addr, "srvr", time.Second)
		if err == nil {
			last = out
			if mode := modeOf(out); mode != "" && (wantMode == "" || mode == wantMode) {
				return nil
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("zkref: %s not serving after %v (last srvr: %q)\n%s", s.Addr, timeout, last, s.tail())
}

func modeOf(srvr string) string {
	for _, line := range strings.Split(srvr, "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

// Mode returns the server's role as reported by "srvr": standalone, leader
// or follower.
func (s *Server) Mode() (string, error) {
	out, err := FourLetter(s.Addr, "srvr", 2*time.Second)
	if err != nil {
		return "", err
	}
	if m := modeOf(out); m != "" {
		return m, nil
	}
	return "", fmt.Errorf("zkref: no mode in srvr output %q", out)
}

// tail returns the last lines of the server's stdout and log, for error
// messages.
func (s *Server) tail() string {
	var b strings.Builder
	for _, f := range []string{filepath.Join(s.Dir, "stdout.log"), s.LogFile} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", f, strings.Join(lines, "\n"))
	}
	return b.String()
}

// Stop terminates the server: SIGTERM, then SIGKILL after 10 seconds. It
// removes the temporary directory if Start created it. Stop is idempotent.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.signalAndWait(syscall.SIGTERM, 10*time.Second)
		if s.removeDir {
			if err := os.RemoveAll(s.Dir); err != nil && s.stopErr == nil {
				s.stopErr = err
			}
		}
	})
	return s.stopErr
}

// Kill sends SIGKILL and waits for the process to exit. The directory is
// kept, so the data survives for inspection; Stop still removes it.
func (s *Server) Kill() error {
	return s.signalAndWait(syscall.SIGKILL, 10*time.Second)
}

func (s *Server) signalAndWait(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := syscall.Kill(s.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(grace):
	}
	if err := syscall.Kill(s.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	<-s.done
	return nil
}

// Exited reports whether the process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// FourLetter sends a four-letter word (ruok, srvr, mntr, stat, ...) to addr
// and returns the complete reply.
func FourLetter(addr, word string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := conn.Write([]byte(word)); err != nil {
		return "", err
	}
	var b strings.Builder
	r := bufio.NewReader(conn)
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if b.Len() > 0 {
				return b.String(), nil
			}
			return "", err
		}
	}
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago. As with any such helper, another process may take one in between.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Ensemble is a multi-server Apache ZooKeeper quorum on loopback.
type Ensemble struct {
	// Servers are the members, in myid order (myid = index+1).
	Servers []*Server
}

// Addrs returns the client addresses of all members.
func (e *Ensemble) Addrs() []string {
	addrs := make([]string, len(e.Servers))
	for i, s := range e.Servers {
		addrs[i] = s.Addr
	}
	return addrs
}

// ConnectString returns the members' client addresses joined by commas, as
// ZooKeeper clients expect.
func (e *Ensemble) ConnectString() string { return strings.Join(e.Addrs(), ",") }

// Stop stops every member and returns the first error.
func (e *Ensemble) Stop() error {
	var first error
	for _, s := range e.Servers {
		if err := s.Stop(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// StartEnsemble starts an n-member quorum (QuorumPeerMain, server.N lines
// and myid files) and waits until every member is a leader or follower.
// Stop is registered with t.Cleanup.
func StartEnsemble(t testing.TB, n int) *Ensemble {
	t.Helper()
	Require(t)
	e, err := StartEnsembleServers(n, Options{})
	if err != nil {
		t.Fatalf("zkref: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Logf("zkref: stop ensemble: %v", err)
		}
	})
	return e
}

// StartEnsembleServers is StartEnsemble without a testing.TB. opts.Port
// and opts.Dir are ignored; the caller must call Stop.
func StartEnsembleServers(n int, opts Options) (*Ensemble, error) {
	if n < 1 {
		return nil, fmt.Errorf("zkref: ensemble size %d", n)
	}
	if err := Available(); err != nil {
		return nil, err
	}
	ports, err := FreePorts(3 * n)
	if err != nil {
		return nil, err
	}
	var members []string
	for i := range n {
		members = append(members, fmt.Sprintf("server.%d=127.0.0.1:%d:%d;127.0.0.1:%d",
			i+1, ports[3*i+1], ports[3*i+2], ports[3*i]))
	}
	e := &Ensemble{}
	for i := range n {
		dir, err := os.MkdirTemp("", "zkref-ens-")
		if err != nil {
			e.Stop()
			return nil, err
		}
		dataDir := filepath.Join(dir, "data")
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			e.Stop()
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dataDir, "myid"), []byte(strconv.Itoa(i+1)+"\n"), 0o644); err != nil {
			e.Stop()
			return nil, err
		}
		cfg := baseConfig(opts, dataDir, ports[3*i])
		cfg = append(cfg, "initLimit=10", "syncLimit=5", "standaloneEnabled=false",
			"reconfigEnabled=true")
		cfg = append(cfg, members...)
		s, err := launch(dir, true, ports[3*i], quorumMain, cfg, opts.JVMFlags)
		if err != nil {
			e.Stop()
			return nil, err
		}
		e.Servers = append(e.Servers, s)
	}
	for _, s := range e.Servers {
		if err := s.waitServing(opts.StartTimeout, ""); err != nil {
			e.Stop()
			return nil, err
		}
	}
	return e, nil
}
