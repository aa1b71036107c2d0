// Package testserver starts Paddock server processes for tests.
//
// The binary is built once per test binary from ./cmd/paddock (go build
// into a temporary directory), unless the environment variable PADDOCK_BIN
// names a prebuilt binary. With PADDOCK_RACE=1 the build uses -race.
//
// A server is started as
//
//	paddock server --addr 127.0.0.1:<port> --data-dir <dir> [--tick-time <ms>]
//	    [--min-session-timeout <ms>] [--max-session-timeout <ms>] [--admin-addr <addr>]
//	    [--extended-types] [extra args]
//
// and is considered ready once its client port accepts TCP connections
// (the server also prints a line containing "listening on <addr>" to
// stdout; it is recorded in the log but not required). Its stdout and
// stderr go to server.log in the data directory's parent.
//
// [Target] picks the server the compatibility suites talk to: a running
// server given by address, Apache ZooKeeper, or a fresh Paddock.
package testserver

import (
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

	"github.com/paddockhq/paddock/internal/proc"
	"github.com/paddockhq/paddock/internal/zkref"
)

// Options configures a Paddock server process. Durations are passed to the
// server in milliseconds; zero values leave the server's defaults.
type Options struct {
	// TickTime is --tick-time.
	TickTime time.Duration
	// MinSessionTimeout and MaxSessionTimeout are --min-session-timeout and
	// --max-session-timeout.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// AdminAddr is --admin-addr; empty omits the flag.
	AdminAddr string
	// ExtendedTypes passes --extended-types (TTL nodes, as Apache's
	// zookeeper.extendedTypesEnabled).
	ExtendedTypes bool
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
	// Port is the client port; 0 picks a free one (kept across Restart).
	Port int
	// DataDir is --data-dir; empty means a temporary directory.
	DataDir string
	// StartTimeout bounds the wait for the port to accept; 0 means 30s.
	StartTimeout time.Duration
}

// Server is one running (or stopped) Paddock server process.
type Server struct {
	// Addr is the client address, "127.0.0.1:<port>".
	Addr string
	// DataDir is the server's --data-dir, kept across Restart.
	DataDir string
	// LogFile collects the process's stdout and stderr, across restarts.
	LogFile string

	opts Options
	t    testing.TB
	base string // StartMain's directory, removed by RemoveAll

	p proc.Proc
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildDir  string
)

// ErrNoSource is returned by Binary when ./cmd/paddock has no Go files yet.
var ErrNoSource = errors.New("testserver: cmd/paddock has no Go source yet")

// Binary returns the path of the paddock binary: $PADDOCK_BIN if set,
// otherwise a build of ./cmd/paddock made once per test binary.
func Binary() (string, error) {
	if p := os.Getenv("PADDOCK_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("testserver: PADDOCK_BIN: %w", err)
		}
		return abs, nil
	}
	buildOnce.Do(func() { buildPath, buildErr = build() })
	return buildPath, buildErr
}

func build() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "cmd", "paddock")
	if m, _ := filepath.Glob(filepath.Join(src, "*.go")); len(m) == 0 {
		return "", ErrNoSource
	}
	buildDir, err = os.MkdirTemp("", "paddock-testbin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(buildDir, "paddock")
	args := []string{"build", "-o", bin}
	if os.Getenv("PADDOCK_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/paddock")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testserver: go build ./cmd/paddock: %v\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot finds the directory holding go.mod, walking up from the
// working directory (go test runs in the package directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testserver: go.mod not found above working directory")
		}
		dir = parent
	}
}

// CleanupBinary removes the binary built by Binary. Call it from TestMain
// after m.Run if the temporary build should not outlive the test binary.
func CleanupBinary() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Start builds (once) and starts a Paddock server for the test; the
// process is stopped and its directory removed by t.Cleanup. If
// cmd/paddock has no source yet the test is skipped.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if errors.Is(err, ErrNoSource) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(base, "data")
	}
	if opts.Port == 0 {
		ports, err := zkref.FreePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		opts.Port = ports[0]
	}
	s := &Server{
		Addr:    fmt.Sprintf("127.0.0.1:%d", opts.Port),
		DataDir: opts.DataDir,
		LogFile: filepath.Join(base, "server.log"),
		opts:    opts,
		t:       t,
	}
	if err := s.start(bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Logf("testserver: stop: %v", err)
		}
		if t.Failed() {
			t.Logf("testserver: last lines of %s:\n%s", s.LogFile, s.Tail(40))
		}
	})
	return s
}

// Args returns the command line (without the binary) the server is
// started with.
func (s *Server) Args() []string {
	o := s.opts
	args := []string{"server", "--addr", s.Addr, "--data-dir", s.DataDir}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	if o.TickTime > 0 {
		args = append(args, "--tick-time", ms(o.TickTime))
	}
	if o.MinSessionTimeout > 0 {
		args = append(args, "--min-session-timeout", ms(o.MinSessionTimeout))
	}
	if o.MaxSessionTimeout > 0 {
		args = append(args, "--max-session-timeout", ms(o.MaxSessionTimeout))
	}
	if o.AdminAddr != "" {
		args = append(args, "--admin-addr", o.AdminAddr)
	}
	if o.ExtendedTypes {
		args = append(args, "--extended-types")
	}
	return append(args, o.ExtraArgs...)
}

func (s *Server) start(bin string) error {
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		return err
	}
	if err := s.p.Start(s.LogFile, bin, s.Args()); err != nil {
		return fmt.Errorf("testserver: %w", err)
	}
	done := s.p.Done()
	timeout := s.opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("testserver: paddock exited during startup (%v)\n%s", s.p.ExitError(), s.Tail(40))
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.p.SignalAndWait(syscall.SIGKILL, 5*time.Second)
	return fmt.Errorf("testserver: %s not accepting after %v\n%s", s.Addr, timeout, s.Tail(40))
}

// PID returns the current process id (it changes on Restart).
func (s *Server) PID() int { return s.p.PID() }

// Running reports whether the process is alive.
func (s *Server) Running() bool { return s.p.Running() }

// Stop shuts the server down gracefully: SIGTERM, then SIGKILL after 10s.
// Stopping a stopped server is a no-op.
func (s *Server) Stop() error { return s.p.SignalAndWait(syscall.SIGTERM, 10*time.Second) }

// Kill sends SIGKILL (a crash: no shutdown code runs) and waits for exit.
func (s *Server) Kill() error { return s.p.SignalAndWait(syscall.SIGKILL, 10*time.Second) }

// Restart stops the server (gracefully) if it runs, then starts it again on
// the same address with the same data directory.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	bin, err := Binary()
	if err != nil {
		return err
	}
	return s.start(bin)
}

// Tail returns the last n lines of the server's log.
func (s *Server) Tail(n int) string { return proc.TailFile(s.LogFile, n) }

// CompatOptions returns the options that configure Paddock like the Apache
// ZooKeeper started by zkref (TTL nodes enabled, every four-letter word
// allowed), for suites that hold both to the same expectations.
func CompatOptions() Options {
	return Options{ExtendedTypes: true, ExtraArgs: []string{"--4lw-whitelist", "*"}}
}

// Kind names the implementation a [Target] runs.
type Kind string

// The kinds of target.
const (
	// KindPaddock is a Paddock server started by this package.
	KindPaddock Kind = "paddock"
	// KindApache is Apache ZooKeeper started by zkref.
	KindApache Kind = "apache"
	// KindExternal is an already running server given by address.
	KindExternal Kind = "external"
)

// TargetEnv is the environment variable that aims the compatibility
// suites: "apache" (Apache ZooKeeper, to validate the suites themselves),
// "paddock" or empty (a fresh Paddock server), or a host:port of a
// running server.
const TargetEnv = "PADDOCK_TEST_TARGET"

// Target returns the address of the server a compatibility suite should
// talk to, chosen by $PADDOCK_TEST_TARGET, and what kind it is. Servers it
// starts are stopped by t.Cleanup.
func Target(t testing.TB) (addr string, kind Kind) {
	t.Helper()
	switch v := os.Getenv(TargetEnv); {
	case v == "apache":
		return zkref.Start(t, zkref.Options{}).Addr, KindApache
	case v == "" || v == "paddock":
		return Start(t, CompatOptions()).Addr, KindPaddock
	case strings.Contains(v, ":"):
		return v, KindExternal
	default:
		t.Fatalf("%s=%q: want apache, paddock or host:port", TargetEnv, v)
		return "", ""
	}
}
