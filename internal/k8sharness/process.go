package k8sharness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StopGrace is how long Stop waits after SIGTERM before sending SIGKILL.
var StopGrace = 15 * time.Second

// DefaultReadyTimeout bounds each component's wait for readiness. It is
// generous because the test machines are often heavily loaded.
var DefaultReadyTimeout = 3 * time.Minute

// Process is one running control-plane component.
type Process struct {
	Name    string // e.g. "kube-apiserver"
	Args    []string
	LogFile string // combined stdout and stderr

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error
	stopOnce sync.Once
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited, and its wait error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Done is closed when the process exits.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM to the process (by its PID), waits up to StopGrace for
// it to exit, then sends SIGKILL. It is idempotent and is also registered
// with t.Cleanup when the process starts.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = syscall.Kill(p.PID(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(StopGrace):
			_ = syscall.Kill(p.PID(), syscall.SIGKILL)
			<-p.done
		}
	})
}

// Kill sends SIGKILL at once and waits for the exit (crash tests).
func (p *Process) Kill() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(p.PID(), syscall.SIGKILL)
		<-p.done
	})
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string { return tailFile(p.LogFile, n) }

// startProcess starts tool name from the tools directory with args, logging
// to dir/<name>.log, and registers its stop with t.Cleanup.
func startProcess(t testing.TB, name, dir string, args []string) (*Process, error) {
	t.Helper()
	return startBinary(t, name, Tool(t, name), dir, args)
}

// startBinary is startProcess for a binary outside the tools directory.
func startBinary(t testing.TB, name, bin, dir string, args []string) (*Process, error) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "### %s %s\n", name, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Args: args, LogFile: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- last lines of %s (pid %d, %s):\n%s", name, p.PID(), logPath, p.Tail(40))
		}
		keepLog(t, logPath)
	})
	return p, nil
}

// keepLog copies a log to $PADDOCK_K8S_LOGDIR/<test name>/ when that is set.
func keepLog(t testing.TB, path string) {
	root := os.Getenv("PADDOCK_K8S_LOGDIR")
	if root == "" {
		return
	}
	dst := filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(dst, filepath.Base(path)), data, 0o644)
}

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 at the time of
// the call. A component that then fails to bind is restarted on new ports
// (see startWithRetry).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
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

// errPortInUse marks a start that failed because a port was taken.
var errPortInUse = errors.New("address already in use")

// startWithRetry calls start up to 3 times while it fails with a port
// conflict (the free-port probe is racy with other tests on the machine).
func startWithRetry(t testing.TB, what string, start func() error) {
	t.Helper()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = start(); err == nil {
			return
		}
		if !errors.Is(err, errPortInUse) {
			break
		}
		t.Logf("%s: port conflict, retrying on new ports", what)
	}
	t.Fatalf("%s: %v", what, err)
}

// waitReady polls check until it returns nil, the process exits or timeout
// passes. It returns an error wrapping errPortInUse if the process died of a
// bind conflict.
func waitReady(p *Process, timeout time.Duration, check func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last = check(ctx)
		cancel()
		if last == nil {
			return nil
		}
		if exited, werr := p.Exited(); exited {
			tail := p.Tail(30)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%s exited (%v): %w", p.Name, werr, errPortInUse)
			}
			return fmt.Errorf("%s exited before ready (%v); last log lines:\n%s", p.Name, werr, tail)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v; last log lines:\n%s", p.Name, timeout, last, p.Tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// httpGetOK GETs url and returns nil on a 200 response whose body contains
// want (if want is not empty).
func httpGetOK(ctx context.Context, client *http.Client, url, token, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, firstLines(string(body), 10))
	}
	if want != "" && !bytes.Contains(body, []byte(want)) {
		return fmt.Errorf("GET %s: body %q lacks %q", url, firstLines(string(body), 3), want)
	}
	return nil
}

func firstLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var out []string
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	return strings.Join(out, "\n")
}

// insecureClient is for the self-signed serving certificates of the
// controller-manager and scheduler (their /healthz is all we read).
func insecureClient() *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback health checks only
	}
}

func caClient(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in CA PEM")
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}, nil
}

// flagArgs turns defaults overridden by overrides into sorted --name=value
// arguments; an override with an empty value removes the flag. Flags that
// take no value are written as "name=true".
func flagArgs(defaults, overrides map[string]string) []string {
	m := make(map[string]string, len(defaults)+len(overrides))
	for k, v := range defaults {
		m[k] = v
	}
	for k, v := range overrides {
		k = strings.TrimLeft(k, "-")
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]string, 0, len(keys))
	for _, k := range keys {
		args = append(args, "--"+k+"="+m[k])
	}
	return args
}
