package etcd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/paddockhq/paddock/internal/faults"
	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/testserver"
)

// These tests put a real Kubernetes control plane (kube-apiserver,
// kube-controller-manager, kube-scheduler and kubectl from the tools module,
// through k8sharness) on Paddock's etcd API. The tools take a long cold
// build: they are looked up first, so a test skips before starting anything
// when they are missing (with -short, when not cached), and fails instead
// under CI=true (k8sharness.Tools).

// TestKubeAPIServerOnPaddock: kube-apiserver, controller-manager and
// scheduler on a standalone Paddock. /readyz, kubectl create/get/list/watch/
// delete of a Namespace, ConfigMap, Secret, Deployment, a CRD and a custom
// object; the Deployment controller makes a ReplicaSet and the ReplicaSet
// controller its Pods (Pending: no node matches them); the objects are in
// Paddock's keyspace under /registry. A StatefulSet of Paddock servers
// runs on a vnode (pods Running and Ready, as local processes).
func TestKubeAPIServerOnPaddock(t *testing.T) {
	k8sharness.Tools(t)
	addr := freeAddr(t)
	testserver.Start(t, testserver.Options{ExtraArgs: []string{"--etcd-listen", addr}})
	waitPort(t, addr)
	// The apiserver's compactor (compact_rev_key Version-CAS, then Compact)
	// runs every 2 s instead of every 5 minutes.
	api := k8sharness.StartAPIServer(t, "http://"+addr, &k8sharness.APIServerOptions{
		Flags: map[string]string{"etcd-compaction-interval": "2s"}})
	k8sharness.StartControllerManager(t, api, nil)
	k8sharness.StartScheduler(t, api, nil)
	node := startNode(t, api)
	ec := client(t, nil, "http://"+addr)
	exerciseKube(t, api, ec, node, "std", nil)
	// The compactor ran against Paddock: compact_rev_key was CAS-ed several
	// times (its Version is the apiservers' logical clock) and old
	// revisions are gone.
	ctx := ctxT(t, 30*time.Second)
	r, err := ec.Get(ctx, "compact_rev_key")
	if err != nil || len(r.Kvs) != 1 || r.Kvs[0].Version < 2 {
		t.Fatalf("compact_rev_key: %v %+v", err, r)
	}
	if _, err := ec.Get(ctx, "/registry/namespaces/default", clientv3.WithRev(1)); err == nil || !strings.Contains(err.Error(), "required revision has been compacted") {
		t.Fatalf("read at revision 1 after compaction: %v", err)
	}
	t.Logf("compact_rev_key version %d, value %q", r.Kvs[0].Version, r.Kvs[0].Value)
}

// TestKubeControlPlaneOnPaddockEnsemble: the same on a 3-member Paddock
// ensemble, kube-apiserver given the three etcd endpoints; the Paddock
// leader is killed half-way and writes (kubectl, controllers) continue after
// the failover: the StatefulSet started before it is scaled up after it,
// and its new pod is scheduled and runs.
func TestKubeControlPlaneOnPaddockEnsemble(t *testing.T) {
	if testing.Short() {
		t.Skip("ensemble control plane: not with -short")
	}
	k8sharness.Tools(t)
	c := faults.StartT(t, faults.Options{Voters: 3, TickTime: 200 * time.Millisecond, EtcdAPI: true})
	if _, err := c.WaitLeader(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	var eps []string
	for id := 1; id <= 3; id++ {
		waitPort(t, c.Member(id).EtcdAddr)
		eps = append(eps, "http://"+c.Member(id).EtcdAddr)
	}
	api := k8sharness.StartAPIServer(t, strings.Join(eps, ","), nil)
	k8sharness.StartControllerManager(t, api, nil)
	k8sharness.StartScheduler(t, api, nil)
	node := startNode(t, api)
	ec := client(t, nil, eps...)
	var killed, newLeader int
	exerciseKube(t, api, ec, node, "ens", func() {
		leader, err := c.WaitLeader(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Member(leader).Kill(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		nl, err := c.WaitLeader(30 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		killed, newLeader = leader, nl
		t.Logf("killed Paddock leader %d; new leader %d after %v", leader, nl, time.Since(start).Round(time.Millisecond))
	})

	// A second apiserver, started after the failover, on the surviving
	// follower alone: it loads the whole state through that member, and
	// what one apiserver writes the other reads at once (a single-object
	// GET is a quorum read to etcd, a list a consistent read from the watch
	// cache after a progress request), in both directions.
	follower := 0
	for id := 1; id <= 3; id++ {
		if id != killed && id != newLeader {
			follower = id
		}
	}
	api2 := k8sharness.StartAPIServer(t, "http://"+c.Member(follower).EtcdAddr, nil)
	kubectlRetry(t, api, "create", "namespace", "cross")
	for i := 0; i < 5; i++ {
		for j, pair := range [][2]*k8sharness.APIServer{{api, api2}, {api2, api}} {
			name := fmt.Sprintf("x%d-%d", i, j)
			kubectlRetry(t, pair[0], "-n", "cross", "create", "configmap", name, "--from-literal=i="+name)
			if out, err := pair[1].KubectlE(t, "-n", "cross", "get", "configmap", name, "-o", "jsonpath={.data.i}"); err != nil || out != name {
				t.Fatalf("configmap %s written through one apiserver, read through the other: %q %v", name, out, err)
			}
			if out, err := pair[1].KubectlE(t, "-n", "cross", "get", "configmaps", "-o", "name"); err != nil || !strings.Contains(out, "configmap/"+name+"\n") {
				t.Fatalf("configmap %s written through one apiserver, listed through the other: %q %v", name, out, err)
			}
		}
	}
	// The second apiserver sees the deletions of the first test round, and
	// the controllers' work (default ServiceAccount of the new namespace).
	if out, err := api2.KubectlE(t, "get", "namespace", "ens"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("namespace ens through the second apiserver: %v %s", err, out)
	}
	k8sharness.Eventually(t, 30*time.Second, "default serviceaccount through the second apiserver", func() (bool, string) {
		out, err := api2.KubectlE(t, "-n", "cross", "get", "serviceaccount", "default", "-o", "name")
		return err == nil, out
	})
}

// exerciseKube drives the apiserver with kubectl. midway, if not nil, runs
// after the first round of writes (the ensemble test kills the leader
// there); everything after it must still work. With a node, a StatefulSet
// of Paddock servers is scheduled and run on it: two pods before midway,
// scaled to three after, each Running and Ready and answering ZooKeeper
// requests.
func exerciseKube(t *testing.T, api *k8sharness.APIServer, ec *clientv3.Client, node *k8sharness.Node, ns string, midway func()) {
	if out := api.Kubectl(t, "get", "--raw", "/readyz"); !strings.Contains(out, "ok") {
		t.Fatalf("/readyz: %s", out)
	}
	api.Kubectl(t, "create", "namespace", ns)
	w := startKubectlWatch(t, api, "-n", ns, "configmaps")

	api.Kubectl(t, "-n", ns, "create", "configmap", "cm1", "--from-literal=a=b")
	if out := api.Kubectl(t, "-n", ns, "get", "configmap", "cm1", "-o", "jsonpath={.data.a}"); strings.TrimSpace(out) != "b" {
		t.Fatalf("get configmap: %q", out)
	}
	api.Kubectl(t, "-n", ns, "create", "secret", "generic", "s1", "--from-literal=pw=hunter2")
	if out := api.Kubectl(t, "-n", ns, "get", "secret", "s1", "-o", "jsonpath={.data.pw}"); strings.TrimSpace(out) != "aHVudGVyMg==" {
		t.Fatalf("get secret: %q", out)
	}
	applyRetry(t, api, fmt.Sprintf(deploymentManifest, ns))
	// A CRD, then a custom object.
	api.Apply(t, crdManifest)
	api.Kubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.paddock.test")
	applyRetry(t, api, fmt.Sprintf(widgetManifest, "w1", ns, 3))
	if out := api.Kubectl(t, "-n", ns, "get", "widget", "w1", "-o", "jsonpath={.spec.size}"); strings.TrimSpace(out) != "3" {
		t.Fatalf("get widget: %q", out)
	}
	waitDeploymentPods(t, api, ns, "web", 2)
	if node != nil {
		// The ServiceAccount admission plugin holds pods until the
		// controller-manager has made the namespace's default account.
		k8sharness.Eventually(t, time.Minute, "default serviceaccount in "+ns, func() (bool, string) {
			out, err := api.KubectlE(t, "-n", ns, "get", "serviceaccount", "default", "-o", "name")
			return err == nil, out
		})
		applyRetry(t, api, fmt.Sprintf(statefulSetManifest, ns, 2))
		waitStatefulSet(t, api, node, ns, 2)
	}

	// The objects are Paddock keys.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range []string{
		"/registry/namespaces/" + ns,
		"/registry/configmaps/" + ns + "/cm1",
		"/registry/secrets/" + ns + "/s1",
		"/registry/deployments/" + ns + "/web",
		"/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.paddock.test",
		"/registry/paddock.test/widgets/" + ns + "/w1",
	} {
		r, err := ec.Get(ctx, k, clientv3.WithKeysOnly())
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("etcd key %s: %v %v", k, err, r)
		}
	}
	r, err := ec.Get(ctx, "/registry/replicasets/"+ns+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || r.Count != 1 {
		t.Fatalf("replicaset keys: %v %+v", err, r)
	}

	if midway != nil {
		midway()
	}

	// Writes after (a possible) failover: kubectl's and the controllers'.
	kubectlRetry(t, api, "-n", ns, "create", "configmap", "cm2", "--from-literal=c=d")
	kubectlRetry(t, api, "-n", ns, "scale", "deployment", "web", "--replicas=3")
	applyRetry(t, api, fmt.Sprintf(widgetManifest, "w2", ns, 5))
	waitDeploymentPods(t, api, ns, "web", 3)
	if node != nil {
		// The StatefulSet controller, the scheduler and the node's
		// status writes all go through the apiserver to Paddock.
		kubectlRetry(t, api, "-n", ns, "scale", "statefulset", "zk", "--replicas=3")
		checkZooKeeper(t, waitStatefulSet(t, api, node, ns, 3))
	}

	// Lists.
	if out := api.Kubectl(t, "-n", ns, "get", "configmaps", "-o", "name"); !strings.Contains(out, "configmap/cm1") || !strings.Contains(out, "configmap/cm2") {
		t.Fatalf("list configmaps: %s", out)
	}
	if out := api.Kubectl(t, "-n", ns, "get", "widgets", "-o", "name"); !strings.Contains(out, "/w1") || !strings.Contains(out, "/w2") {
		t.Fatalf("list widgets: %s", out)
	}
	if out := api.Kubectl(t, "get", "namespaces", "-o", "name"); !strings.Contains(out, "namespace/"+ns) {
		t.Fatalf("list namespaces: %s", out)
	}
	// Paged list (limit/continue through Range limit + revision).
	if out := api.Kubectl(t, "get", "configmaps", "-A", "--chunk-size=1", "-o", "name"); !strings.Contains(out, "configmap/cm1") || !strings.Contains(out, "configmap/cm2") {
		t.Fatalf("paged list: %s", out)
	}

	// Consistent lists are served from the watch cache after a watch
	// progress request (Status reports a version that allows it).
	// apiserver_watch_cache_consistent_read_total counts them: a
	// successful one without fallback to etcd is needed, none failed.
	metrics := api.Kubectl(t, "get", "--raw", "/metrics")
	fromCache := false
	for _, l := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(l, "apiserver_watch_cache_consistent_read_total{") {
			continue
		}
		if strings.Contains(l, `success="false"`) && !strings.HasSuffix(l, " 0") {
			t.Errorf("failed consistent read from the watch cache: %s", l)
		}
		if strings.Contains(l, `fallback="false"`) && strings.Contains(l, `resource="configmaps"`) && strings.Contains(l, `success="true"`) && !strings.HasSuffix(l, " 0") {
			fromCache = true
		}
	}
	if !fromCache {
		t.Errorf("no consistent configmap list served from the watch cache (watch progress requests): %s", grepLines(metrics, "apiserver_watch_cache_consistent_read_total"))
	}

	// Deletes.
	kubectlRetry(t, api, "-n", ns, "delete", "configmap", "cm1", "cm2")
	kubectlRetry(t, api, "-n", ns, "delete", "secret", "s1")
	kubectlRetry(t, api, "-n", ns, "delete", "widget", "w1", "w2")
	kubectlRetry(t, api, "-n", ns, "delete", "deployment", "web")
	if node != nil {
		kubectlRetry(t, api, "-n", ns, "delete", "statefulset", "zk")
		kubectlRetry(t, api, "-n", ns, "delete", "service", "zk-hs")
	}
	if out, err := api.KubectlE(t, "-n", ns, "get", "configmap", "cm1"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("configmap after delete: %v %s", err, out)
	}
	// Garbage collection (controller-manager) removes the ReplicaSet and
	// Pods (the StatefulSet's: once the node has stopped their processes).
	k8sharness.Eventually(t, 90*time.Second, "pods garbage-collected", func() (bool, string) {
		out, err := api.KubectlE(t, "-n", ns, "get", "replicasets,pods", "-o", "name")
		return err == nil && strings.TrimSpace(out) == "", out
	})
	kubectlRetry(t, api, "delete", "crd", "widgets.paddock.test")

	// The watch saw every ConfigMap event, in order (the first is
	// kube-root-ca.crt, made by the controller-manager).
	want := []string{"ADDED cm1", "ADDED cm2", "DELETED cm1", "DELETED cm2"}
	k8sharness.Eventually(t, 30*time.Second, "kubectl watch events", func() (bool, string) {
		got := w.filter("cm1", "cm2")
		return strings.Join(got, ",") == strings.Join(want, ","), strings.Join(w.all(), "\n")
	})
	t.Logf("kubectl watch: %s", strings.Join(w.all(), ", "))

	// Namespace deletion (the namespace controller finalizes it).
	kubectlRetry(t, api, "delete", "namespace", ns, "--wait=false")
	k8sharness.Eventually(t, 2*time.Minute, "namespace removed", func() (bool, string) {
		out, err := api.KubectlE(t, "get", "namespace", ns)
		return err != nil && strings.Contains(err.Error(), "NotFound"), out
	})
}

// waitDeploymentPods waits for the ReplicaSet of a Deployment and n Pods of
// it, all made by the controllers (Pending: their nodeSelector matches no
// node).
func waitDeploymentPods(t *testing.T, api *k8sharness.APIServer, ns, name string, n int) {
	k8sharness.Eventually(t, 90*time.Second, fmt.Sprintf("deployment %s: a ReplicaSet and %d pods", name, n), func() (bool, string) {
		rs, err := api.KubectlE(t, "-n", ns, "get", "replicasets", "-l", "app="+name, "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.replicas} {end}")
		if err != nil {
			return false, err.Error()
		}
		pods, err := api.KubectlE(t, "-n", ns, "get", "pods", "-l", "app="+name, "-o", "jsonpath={range .items[*]}{.metadata.name}:{.status.phase} {end}")
		if err != nil {
			return false, err.Error()
		}
		return len(strings.Fields(rs)) == 1 && len(strings.Fields(pods)) == n, "replicasets: " + rs + " pods: " + pods
	})
}

// kubectlRetry retries a kubectl command for a while: right after a Paddock
// leader change the apiserver may answer a few requests with errors while
// its etcd client moves to another endpoint.
func kubectlRetry(t *testing.T, api *k8sharness.APIServer, args ...string) string {
	t.Helper()
	var out string
	var err error
	deadline := time.Now().Add(60 * time.Second)
	for tries := 1; ; tries++ {
		out, err = api.KubectlE(t, args...)
		if err == nil {
			if tries > 1 {
				t.Logf("kubectl %s: ok after %d tries", strings.Join(args, " "), tries)
			}
			return out
		}
		// A create that went through on a try whose answer was lost.
		if tries > 1 && strings.Contains(err.Error(), "AlreadyExists") {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
}

func applyRetry(t *testing.T, api *k8sharness.APIServer, manifest string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := k8sharness.KubectlE(t, api.Kubeconfig, manifest, "apply", "-f", "-")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
}

// kubectlWatch is a background `kubectl get --watch --output-watch-events`.
type kubectlWatch struct {
	mu    sync.Mutex
	lines []string // "TYPE name"
}

func startKubectlWatch(t *testing.T, api *k8sharness.APIServer, args ...string) *kubectlWatch {
	bin := k8sharness.Tool(t, k8sharness.KubectlBin)
	ctx, cancel := context.WithCancel(context.Background())
	full := append([]string{"--kubeconfig=" + api.Kubeconfig, "get", "--watch", "--output-watch-events",
		"-o", "custom-columns=EVENT:.type,NAME:.object.metadata.name", "--no-headers"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "KUBERC=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &kubectlWatch{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, strings.Join(strings.Fields(sc.Text()), " "))
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kubectl watch stderr: %s", stderr.String())
		}
	})
	return w
}

func (w *kubectlWatch) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// filter returns the events of the named objects, in order.
func (w *kubectlWatch) filter(names ...string) []string {
	var out []string
	for _, l := range w.all() {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		for _, n := range names {
			if f[1] == n {
				out = append(out, l)
			}
		}
	}
	return out
}

const crdManifest = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.paddock.test
spec:
  group: paddock.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`

// deploymentManifest is what `kubectl create deployment web
// --image=registry.k8s.io/pause:3.10 --replicas=2` makes, with a
// nodeSelector no node has: its pods stay Pending, also when a vnode (which
// has no binary for the pause image) is there.
const deploymentManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {paddock.test/no-such-node: "true"}
      containers: [{name: pause, image: registry.k8s.io/pause:3.10}]
`

const widgetManifest = `apiVersion: paddock.test/v1
kind: Widget
metadata: {name: %s, namespace: %s}
spec: {size: %d}
`

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
