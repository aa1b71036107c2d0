package k8sharness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// NodeOptions adjusts StartNode.
type NodeOptions struct {
	// Name is the Node's name (default "vnode").
	Name string
	// Images maps images to binaries (vnode --image match=binary): a
	// repository ("ghcr.io/paddockhq/paddock"), its last segment
	// ("paddock"), or either with a tag ("paddock:v2").
	Images map[string]string
	// Flags are extra `vnode run` flags (name without dashes → value).
	Flags map[string]string
	// ReadyTimeout defaults to DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Node is a running vnode: a Kubernetes node (virtual-kubelet with the
// provider in internal/vnode) whose pods are local processes, each on its
// own loopback address, with volumes, probes, restarts and the cluster's
// DNS names in their /etc/hosts.
type Node struct {
	*Process
	Name     string
	IP       string // the node's InternalIP; pods are 127.<same block>.x.y
	StateDir string // pods/<ns>_<name>_<uid>/ (logs/, volumes/), volumes/ (claims)
	// HostsFile is the cluster's DNS names as the pods see them, in
	// /etc/hosts format (see Resolve).
	HostsFile string
}

var (
	vnodeOnce sync.Once
	vnodeBin  string
	vnodeErr  error
)

// VNodeBinary builds hack/vnode once per test binary (or takes
// $PADDOCK_VNODE_BIN) and returns its path. It skips the test when the
// build fails, or fails it with CI=true.
func VNodeBinary(t testing.TB) string {
	t.Helper()
	vnodeOnce.Do(func() {
		if b := os.Getenv("PADDOCK_VNODE_BIN"); b != "" {
			vnodeBin = b
			return
		}
		vnodeBin, vnodeErr = buildVNode()
	})
	if vnodeErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("k8sharness: building hack/vnode: %v", vnodeErr)
		}
		t.Skipf("k8sharness: building hack/vnode: %v", vnodeErr)
	}
	return vnodeBin
}

func buildVNode() (string, error) {
	script, err := buildScript() // .../hack/k8s/build.sh: the module root is two up
	if err != nil {
		return "", err
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(script)))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "paddock", "vnode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".vnode-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp.Name(), "./hack/vnode")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("go build ./hack/vnode: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "vnode")
	// Renamed into place: concurrent test binaries each see a whole file.
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// StartNode starts a vnode against api and waits until the Node is
// registered and Ready. The node needs root (each container runs in a
// mount namespace of its own); without root the test is skipped, or
// fails with CI=true. It is stopped at the end of the test, and with it
// every pod's processes.
func StartNode(t testing.TB, api *APIServer, opts *NodeOptions) *Node {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("k8sharness: StartNode needs root (mount namespaces for the pods); CI must run as root")
		}
		t.Skip("k8sharness: StartNode needs root (mount namespaces for the pods)")
	}
	if opts == nil {
		opts = &NodeOptions{}
	}
	name := opts.Name
	if name == "" {
		name = "vnode"
	}
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	bin := VNodeBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	args := []string{"run", "--kubeconfig", api.Kubeconfig, "--name", name, "--state-dir", state}
	keys := make([]string, 0, len(opts.Images))
	for k := range opts.Images {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--image", k+"="+opts.Images[k])
	}
	args = append(args, flagArgs(nil, opts.Flags)...)
	start := time.Now()
	p, err := startBinary(t, "vnode", bin, dir, args)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Process: p, Name: name, StateDir: state, HostsFile: filepath.Join(state, "hosts")}
	deadline := time.Now().Add(timeout)
	for {
		if line := grepLog(p.LogFile, "vnode ready ip="); line != "" {
			f := strings.Fields(line)
			n.IP = strings.TrimPrefix(f[2], "ip=")
			break
		}
		if exited, werr := p.Exited(); exited {
			t.Fatalf("vnode exited before ready (%v):\n%s", werr, p.Tail(40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("vnode not ready after %v:\n%s", timeout, p.Tail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	Eventually(t, timeout, "node "+name+" Ready", func() (bool, string) {
		out, err := api.KubectlE(t, "get", "node", name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return false, err.Error()
		}
		return strings.TrimSpace(out) == "True", out
	})
	t.Logf("vnode %s ready on %s in %v (pid %d, state %s)", name, n.IP, time.Since(start).Round(time.Millisecond), p.PID(), state)
	return n
}

func grepLog(path, prefix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			return sc.Text()
		}
	}
	return ""
}

// Lookup returns the addresses of a cluster DNS name as the node's pods
// see it (e.g. "zk-1.zk-hs.ns.svc.cluster.local").
func (n *Node) Lookup(name string) []string {
	data, err := os.ReadFile(n.HostsFile)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		for _, h := range f[1:] {
			if h == name {
				out = append(out, f[0])
			}
		}
	}
	return out
}

// Resolve maps "name:port" to "ip:port" through Lookup (the first
// address), or returns "" when the name is unknown: the shape of the
// Paddock operator's LiveEnsemble.Resolve hook, for an operator run
// beside the node rather than in a pod.
func (n *Node) Resolve(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return ""
	}
	if ips := n.Lookup(host); len(ips) > 0 {
		return net.JoinHostPort(ips[0], port)
	}
	return ""
}

// PodDir is the directory of a pod on the node (logs/<container>.log,
// volumes/, containers/), or "" if the pod is not there.
func (n *Node) PodDir(namespace, name string) string {
	m, _ := filepath.Glob(filepath.Join(n.StateDir, "pods", namespace+"_"+name+"_*"))
	if len(m) == 0 {
		return ""
	}
	sort.Strings(m)
	return m[len(m)-1]
}

// ContainerLog returns a container's log (stdout and stderr, every run).
func (n *Node) ContainerLog(namespace, pod, container string) (string, error) {
	dir := n.PodDir(namespace, pod)
	if dir == "" {
		return "", errors.New("pod not on the node")
	}
	b, err := os.ReadFile(filepath.Join(dir, "logs", container+".log"))
	return string(b), err
}
