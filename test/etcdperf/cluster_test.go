package etcdperf

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paddockhq/paddock/bench"
	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/proc"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

// A cluster is a freshly started Paddock or etcd, standalone or 3
// members, each member a process of its own with its own data directory.
type cluster struct {
	kind      string // "paddock" or "etcd"
	endpoints []string
	procs     []*proc.Proc
	dir       string
}

// pids returns the members' process ids.
func (c *cluster) pids() []int {
	var out []int
	for _, p := range c.procs {
		out = append(out, p.PID())
	}
	return out
}

// stop ends every member (SIGTERM, SIGKILL after 15 s) by its PID and
// removes the data directories.
func (c *cluster) stop() {
	for _, p := range c.procs {
		_ = p.Signal(syscall.SIGTERM)
	}
	for _, p := range c.procs {
		_ = p.SignalAndWait(syscall.SIGTERM, 15*time.Second)
	}
	os.RemoveAll(c.dir)
}

func (c *cluster) spawn(t testing.TB, bin string, i int, args []string) {
	t.Helper()
	p := &proc.Proc{}
	if err := p.Start(filepath.Join(c.dir, fmt.Sprintf("member%d.log", i+1)), bin, args); err != nil {
		t.Fatal(err)
	}
	c.procs = append(c.procs, p)
}

// startCluster starts a fresh cluster of kind with n members and waits
// until every member answers a linearizable Get. Both fsync every write
// before acknowledging it: Paddock always does, etcd by default (it is
// started without --unsafe-no-fsync). extra adds flags to every member.
func startCluster(t testing.TB, kind string, n int, extra ...string) *cluster {
	t.Helper()
	var c *cluster
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if c, err = startClusterOnce(t, kind, n, extra); err == nil {
			return c
		}
		t.Logf("start %s x%d (attempt %d): %v", kind, n, attempt, err)
	}
	t.Fatalf("start %s x%d: %v", kind, n, err)
	return nil
}

func startClusterOnce(t testing.TB, kind string, n int, extra []string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "paddock-etcdperf-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{kind: kind, dir: dir}
	ports, err := zkref.FreePorts(3 * n)
	if err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "paddock":
		bin, err := testserver.Binary()
		if err != nil {
			t.Fatal(err)
		}
		var peers []string
		for i := range n {
			peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d;127.0.0.1:%d", i+1, ports[3*i+1], ports[3*i]))
		}
		for i := range n {
			etcd := fmt.Sprintf("127.0.0.1:%d", ports[3*i+2])
			args := []string{"server", "--addr", fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
				"--data-dir", filepath.Join(dir, fmt.Sprint(i+1)), "--etcd-listen", etcd, "--log-level", "warn"}
			if n > 1 {
				args = append(args, "--server-id", fmt.Sprint(i+1), "--peer-addr", fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
					"--peers", strings.Join(peers, ","), "--cluster-id", "etcdperf")
			}
			c.spawn(t, bin, i, append(args, extra...))
			c.endpoints = append(c.endpoints, "http://"+etcd)
		}
	case "etcd":
		bin := k8sharness.Tool(t, k8sharness.EtcdBin)
		var initial []string
		for i := range n {
			initial = append(initial, fmt.Sprintf("e%d=http://127.0.0.1:%d", i+1, ports[3*i+1]))
		}
		for i := range n {
			client := fmt.Sprintf("http://127.0.0.1:%d", ports[3*i])
			peer := fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+1])
			args := []string{"--name", fmt.Sprintf("e%d", i+1), "--data-dir", filepath.Join(dir, fmt.Sprint(i+1)),
				"--listen-client-urls", client, "--advertise-client-urls", client,
				"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
				"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
				"--log-level", "warn"}
			c.spawn(t, bin, i, append(args, extra...))
			c.endpoints = append(c.endpoints, client)
		}
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, ep := range c.endpoints {
		for {
			cli, err := bench.EtcdClient([]string{ep}, 2*time.Second)
			if err == nil {
				cli.Close()
				break
			}
			if time.Now().After(deadline) {
				tail := proc.TailFile(filepath.Join(dir, "member1.log"), 20)
				c.stop()
				return nil, fmt.Errorf("%s not answering after 60s: %v\n%s", ep, err, tail)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return c, nil
}

// procMem is a process's resident memory from /proc/<pid>/status, bytes.
type procMem struct {
	RSS, Anon, File int64
}

func readMem(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = kb * 1024
		case "RssAnon":
			m.Anon = kb * 1024
		case "RssFile":
			m.File = kb * 1024
		}
	}
	return m, nil
}

// readMemField reads one "kB" field of /proc/<pid>/status, in bytes.
func readMemField(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
