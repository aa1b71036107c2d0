// Package seed stands up the whole of Paddock's Kubernetes story on one
// machine, both directions at once: a 3-member Paddock ensemble serving
// the etcd v3 API holds the state of a real Kubernetes control plane
// (kube-apiserver, kube-controller-manager, kube-scheduler from
// internal/k8sharness), a vnode (internal/vnode) is its node, the Paddock
// operator (in-process, as `paddock operator` runs it) deploys a second
// Paddock ensemble there from a PaddockCluster, and a ZooKeeper client
// uses that ensemble through its client Service.
//
// test/seed runs it as a test (in `make test`); hack/demo runs it for a
// person to watch (`make demo-k8s`). Both drive the same steps, which
// report what they do through Options.Say and fail through the
// testing.TB they are given.
package seed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/paddockhq/paddock/internal/faults"
	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/optest"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/operator"
	"github.com/paddockhq/paddock/operator/api/v1alpha1"
	"github.com/paddockhq/paddock/operator/controllers"
)

// Options adjusts Start.
type Options struct {
	// Say reports each step (a person's terminal, or t.Logf); nil = quiet.
	Say func(format string, args ...any)
	// Namespace of the PaddockCluster (default "seed").
	Namespace string
	// Name of the PaddockCluster (default "zk").
	Name string
	// Replicas of the PaddockCluster (default 3).
	Replicas int32
	// TickTime of the ensemble under Kubernetes (default 200 ms: fast
	// failure detection for tests).
	TickTime time.Duration
}

// Stack is the running whole.
type Stack struct {
	opts Options
	// Ensemble is the Paddock ensemble that holds Kubernetes' state;
	// EtcdEndpoints are its members' etcd API URLs.
	Ensemble      *faults.Cluster
	EtcdEndpoints []string
	Etcd          *clientv3.Client
	API           *k8sharness.APIServer
	Node          *k8sharness.Node
	// Client reaches the apiserver with the operator's scheme.
	Client client.Client
	// OperatorLog is the in-process operator's log file.
	OperatorLog string
	// PaddockBin is the paddock binary: the ensemble's members and the
	// pods' container "image" both run it.
	PaddockBin string
}

func (o *Options) defaults() {
	if o.Say == nil {
		o.Say = func(string, ...any) {}
	}
	if o.Namespace == "" {
		o.Namespace = "seed"
	}
	if o.Name == "" {
		o.Name = "zk"
	}
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.TickTime == 0 {
		o.TickTime = 200 * time.Millisecond
	}
}

// Require fails the test (CI=true) or skips it when the stack cannot run
// here: it needs the Kubernetes tools (PADDOCK_K8S_BIN or the hack/k8s
// build) and root (the vnode's pods run in mount namespaces). It is
// checked before anything starts.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("CI") == "true" && os.Getenv("PADDOCK_K8S_BIN") == "" {
		t.Fatal("seed: PADDOCK_K8S_BIN is required in CI (the directory hack/k8s/build.sh prints)")
	}
	k8sharness.Tools(t)
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("seed: the vnode needs root (mount namespaces for the pods); CI must run as root")
		}
		t.Skip("seed: the vnode needs root (mount namespaces for the pods)")
	}
}

// Start brings up everything up to a running operator: the Paddock
// ensemble, the control plane on its etcd API, the vnode, the CRDs and
// the namespace. Everything stops at the end of the test (t.Cleanup).
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	o.defaults()
	Require(t)
	s := &Stack{opts: o}
	bin, err := testserver.Binary()
	if err != nil {
		t.Fatal(err)
	}
	s.PaddockBin = bin

	o.Say("step 1: a 3-member Paddock ensemble with the etcd v3 API (the store of the Kubernetes cluster)")
	s.Ensemble = faults.StartT(t, faults.Options{Voters: 3, TickTime: o.TickTime, EtcdAPI: true})
	leader, err := s.Ensemble.WaitLeader(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 3; id++ {
		waitPort(t, s.Ensemble.Member(id).EtcdAddr)
		s.EtcdEndpoints = append(s.EtcdEndpoints, "http://"+s.Ensemble.Member(id).EtcdAddr)
		o.Say("  member %d: ZooKeeper %s, etcd %s%s", id, s.Ensemble.Member(id).ClientAddr, s.EtcdEndpoints[id-1], map[bool]string{true: " (leader)"}[id == leader])
	}
	s.Etcd, err = clientv3.New(clientv3.Config{Endpoints: s.EtcdEndpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Etcd.Close() })

	o.Say("step 2: kube-apiserver (--etcd-servers=%s), kube-controller-manager, kube-scheduler", strings.Join(s.EtcdEndpoints, ","))
	s.API = k8sharness.StartAPIServer(t, strings.Join(s.EtcdEndpoints, ","), nil)
	k8sharness.StartControllerManager(t, s.API, nil)
	k8sharness.StartScheduler(t, s.API, nil)
	o.Say("  apiserver %s, kubeconfig %s", s.API.URL, s.API.Kubeconfig)

	o.Say("step 3: the vnode, a node whose pods are local processes (image paddock = %s)", bin)
	s.Node = k8sharness.StartNode(t, s.API, &k8sharness.NodeOptions{Images: map[string]string{"paddock": bin}})
	s.show(t, "get", "nodes", "-o", "wide")

	o.Say("step 4: the Paddock CRDs and the Paddock operator")
	crds, err := findUp("deploy/crds")
	if err != nil {
		t.Fatal(err)
	}
	s.API.Kubectl(t, "apply", "--server-side", "-f", crds)
	s.API.Kubectl(t, "wait", "--for=condition=Established", "crd/paddockclusters.paddock.dev", "crd/paddockbackups.paddock.dev", "--timeout=2m")
	s.API.Kubectl(t, "create", "namespace", o.Namespace)
	k8sharness.Eventually(t, k8sharness.DefaultReadyTimeout, "default ServiceAccount in "+o.Namespace, func() (bool, string) {
		out, err := s.API.KubectlE(t, "-n", o.Namespace, "get", "serviceaccount", "default", "-o", "name")
		return err == nil, out
	})
	s.startOperator(t)
	o.Say("  operator running in this process, log %s", s.OperatorLog)
	return s
}

// startOperator runs the operator's manager in-process, as `paddock
// operator` does, except that it runs beside the node rather than in a
// pod: it reaches the members by the DNS names the pods resolve (the
// node's view, Node.Resolve).
func (s *Stack) startOperator(t testing.TB) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.API.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	s.OperatorLog = filepath.Join(t.TempDir(), "operator.log")
	s.Client = optest.Start(t, operator.Options{
		Config: cfg, MetricsAddr: "0", Image: "ghcr.io/paddockhq/paddock:v1", SkipNameValidation: true,
		Ensemble: &controllers.LiveEnsemble{Resolve: s.Node.Resolve},
	}, s.OperatorLog)
}

// Cluster returns the PaddockCluster, or nil.
func (s *Stack) Cluster() *v1alpha1.PaddockCluster {
	var pc v1alpha1.PaddockCluster
	if err := s.Client.Get(context.Background(), types.NamespacedName{Namespace: s.opts.Namespace, Name: s.opts.Name}, &pc); err != nil {
		return nil
	}
	return &pc
}

// Deploy creates the PaddockCluster and waits until the operator reports
// it Running: every member ready, a leader, Available, the latest spec
// seen. Status changes are reported as they happen.
func (s *Stack) Deploy(t testing.TB) *v1alpha1.PaddockCluster {
	t.Helper()
	o := s.opts
	o.Say("step 5: PaddockCluster %s/%s with %d replicas; the operator makes its StatefulSet, the scheduler puts the pods on the vnode", o.Namespace, o.Name, o.Replicas)
	pc := &v1alpha1.PaddockCluster{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace},
		Spec: v1alpha1.PaddockClusterSpec{
			Replicas: o.Replicas, Version: "v1",
			Storage: v1alpha1.StorageSpec{Size: resource.MustParse("1Gi")},
		},
	}
	if err := s.Client.Create(context.Background(), pc); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	last := ""
	k8sharness.Eventually(t, 5*time.Minute, fmt.Sprintf("PaddockCluster %s Running with %d ready members", o.Name, o.Replicas), func() (bool, string) {
		pc := s.Cluster()
		if pc == nil {
			return false, "no cluster"
		}
		st := describe(pc)
		if st != last {
			o.Say("  [%5.1fs] %s", time.Since(start).Seconds(), st)
			last = st
		}
		av := meta.FindStatusCondition(pc.Status.Conditions, v1alpha1.ConditionAvailable)
		ok := pc.Status.Phase == v1alpha1.PhaseRunning && pc.Status.ReadyReplicas == o.Replicas && pc.Status.Replicas == o.Replicas &&
			pc.Status.Leader != "" && av != nil && av.Status == metav1.ConditionTrue && pc.Status.ObservedGeneration == pc.Generation
		return ok, st
	})
	s.show(t, "get", "paddockclusters", "-A")
	s.show(t, "-n", o.Namespace, "get", "statefulsets,pods,services,pvc", "-o", "wide")
	return s.Cluster()
}

// Status is the PaddockCluster's status in one line (phase, replicas,
// ready, leader, each member's role and readiness).
func (s *Stack) Status() string {
	pc := s.Cluster()
	if pc == nil {
		return "not found"
	}
	return describe(pc)
}

func describe(pc *v1alpha1.PaddockCluster) string {
	var ms []string
	for _, m := range pc.Status.Members {
		r := "not ready"
		if m.Ready {
			r = "ready"
		}
		ms = append(ms, fmt.Sprintf("%s=%s/%s", m.Name, orDash(m.Role), r))
	}
	return fmt.Sprintf("phase=%s replicas=%d ready=%d leader=%s members=[%s]", orDash(string(pc.Status.Phase)),
		pc.Status.Replicas, pc.Status.ReadyReplicas, orDash(pc.Status.Leader), strings.Join(ms, " "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ClientService is the DNS name of the cluster's client Service.
func (s *Stack) ClientService() string {
	return fmt.Sprintf("%s-client.%s.svc.cluster.local", s.opts.Name, s.opts.Namespace)
}

// Servers are the addresses behind the client Service (port 2181), as
// the node's DNS resolves it: the ready members' pod addresses (there is
// no kube-proxy, so a Service name stands for its endpoints).
func (s *Stack) Servers() []string {
	var out []string
	for _, ip := range s.Node.Lookup(s.ClientService()) {
		out = append(out, net.JoinHostPort(ip, "2181"))
	}
	return out
}

// UseZooKeeper is the ZooKeeper client's part, with go-zookeeper through
// the client Service: one session creates /seed and sets a data watch on
// it, a second session (on another member) writes to it, the watch
// fires, both read the new value back (after sync), and a child watch
// sees a sequential child appear.
func (s *Stack) UseZooKeeper(t testing.TB) {
	t.Helper()
	say := s.opts.Say
	servers := s.Servers()
	if len(servers) != int(s.opts.Replicas) {
		t.Fatalf("client Service %s resolves to %v, want %d addresses", s.ClientService(), servers, s.opts.Replicas)
	}
	say("step 6: a ZooKeeper client (go-zookeeper) through the client Service %s = %v", s.ClientService(), servers)
	a := connect(t, servers[:1])
	b := connect(t, servers[len(servers)-1:])
	if _, err := a.Create("/seed", []byte("v1"), 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
		t.Fatal(err)
	}
	say("  session A on %s: create /seed = %q", servers[0], "v1")
	data, st, ev, err := a.GetW("/seed")
	if err != nil {
		t.Fatal(err)
	}
	say("  session A: get /seed = %q (version %d), data watch set", data, st.Version)
	if _, err := b.Sync("/seed"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Set("/seed", []byte("v2"), st.Version); err != nil {
		t.Fatal(err)
	}
	say("  session B on %s: set /seed = %q", servers[len(servers)-1], "v2")
	select {
	case e := <-ev:
		if e.Type != zk.EventNodeDataChanged || e.Path != "/seed" {
			t.Fatalf("session A's watch: %+v", e)
		}
		say("  session A: watch fired: %s %s", e.Type, e.Path)
	case <-time.After(30 * time.Second):
		t.Fatal("session A's data watch on /seed did not fire")
	}
	for _, sc := range []struct {
		name string
		c    *zk.Conn
	}{{"A", a}, {"B", b}} {
		name, c := sc.name, sc.c
		if _, err := c.Sync("/seed"); err != nil {
			t.Fatal(err)
		}
		data, _, err := c.Get("/seed")
		if err != nil || string(data) != "v2" {
			t.Fatalf("session %s: get /seed = %q, %v", name, data, err)
		}
		say("  session %s: get /seed = %q", name, data)
	}
	_, _, cev, err := a.ChildrenW("/seed")
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Create("/seed/item-", []byte("x"), zk.FlagSequence, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	say("  session B: create %s", p)
	select {
	case e := <-cev:
		if e.Type != zk.EventNodeChildrenChanged {
			t.Fatalf("session A's child watch: %+v", e)
		}
		kids, _, err := a.Children("/seed")
		if err != nil || len(kids) == 0 {
			t.Fatalf("children of /seed: %v %v", kids, err)
		}
		say("  session A: child watch fired: %s; children of /seed = %v", e.Type, kids)
	case <-time.After(30 * time.Second):
		t.Fatal("session A's child watch on /seed did not fire")
	}
}

func connect(t testing.TB, servers []string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect(servers, 10*time.Second, zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k8sharness.Eventually(t, time.Minute, "ZooKeeper session on "+strings.Join(servers, ","), func() (bool, string) {
		_, _, err := c.Exists("/")
		return err == nil, fmt.Sprint(err)
	})
	return c
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// CheckState shows that Kubernetes' state is Paddock's: the
// PaddockCluster, its StatefulSet and its pods are keys in the ensemble's
// etcd keyspace, read with etcd's own client, and every member's
// ZooKeeper tree holds them too (one replicated log for both).
func (s *Stack) CheckState(t testing.TB) {
	t.Helper()
	o := s.opts
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o.Say("step 7: Kubernetes' state, read from the Paddock ensemble with etcd's client")
	for _, k := range []string{
		"/registry/paddock.dev/paddockclusters/" + o.Namespace + "/" + o.Name,
		"/registry/statefulsets/" + o.Namespace + "/" + o.Name,
		"/registry/pods/" + o.Namespace + "/" + o.Name + "-1",
		"/registry/minions/" + s.Node.Name,
	} {
		r, err := s.Etcd.Get(ctx, k)
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("etcd key %s: %v %v", k, err, r)
		}
		o.Say("  %s: %d bytes, mod revision %d", k, len(r.Kvs[0].Value), r.Kvs[0].ModRevision)
	}
	r, err := s.Etcd.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	o.Say("  %d keys under /registry at revision %d", r.Count, r.Header.Revision)
}

// show runs kubectl and reports its output.
func (s *Stack) show(t testing.TB, args ...string) {
	t.Helper()
	out, err := s.API.KubectlE(t, args...)
	if err != nil {
		s.opts.Say("  $ kubectl %s: %v", strings.Join(args, " "), err)
		return
	}
	s.opts.Say("  $ kubectl %s\n%s", strings.Join(args, " "), indent(out))
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}

// findUp finds rel (e.g. "deploy/crds") in the working directory or
// above it (a test runs in its package's directory, the demo at the
// root), else beside this source file.
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", rel)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", errors.New("seed: " + rel + " not found above the working directory")
}

func waitPort(t testing.TB, addr string) {
	t.Helper()
	k8sharness.Eventually(t, 20*time.Second, "listener on "+addr, func() (bool, string) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}
