// Package k8se2e is the end-to-end proof of the Paddock operator: a real
// control plane (kube-apiserver, controller-manager, scheduler, etcd from
// hack/k8s), a vnode whose pods are real `paddock server` processes, the
// operator in-process, and a ZooKeeper client writing throughout. Every
// write the servers acknowledged is checked at the end.
//
// The scenario (TestOperatorE2E, in `make test`; `make e2e` runs it alone
// and keeps the logs): create 3 → write → scale to 5 → scale to 3 →
// rolling upgrade (leader restarted last, from the order of pod
// restarts) → kill a member's process (healed) → delete a pod and its
// volume (rebuilt from the leader) → backup and restore into a new
// cluster → every acknowledged write read back → delete the clusters
// (volumes per storage.onDelete). It needs root and the Kubernetes
// tools; with CI=true their absence fails the test.
package k8se2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/optest"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/operator"
	"github.com/paddockhq/paddock/operator/api/v1alpha1"
	"github.com/paddockhq/paddock/operator/controllers"
)

const ns = "e2e"

// env is one running stack.
type env struct {
	t    *testing.T
	cp   *k8sharness.ControlPlane
	node *k8sharness.Node
	c    client.Client
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func start(t *testing.T) *env {
	cp := k8sharness.StartControlPlane(t, nil)
	bin, err := testserver.Binary()
	if err != nil {
		t.Fatal(err)
	}
	// One binary for every tag: the tag is what a rolling upgrade
	// changes, and it shows in the pods' specs and statuses.
	node := k8sharness.StartNode(t, cp.APIServer, &k8sharness.NodeOptions{Images: map[string]string{"paddock": bin}})
	cp.Kubectl(t, "apply", "--server-side", "-f", filepath.Join(repoRoot(), "deploy", "crds"))
	cp.Kubectl(t, "wait", "--for=condition=Established", "crd/paddockclusters.paddock.dev", "crd/paddockbackups.paddock.dev", "--timeout=2m")
	cp.Kubectl(t, "create", "namespace", ns)
	cp.WaitDefaultServiceAccount(t, ns)

	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	// The operator runs beside the node, not in a pod: it reaches the
	// members by the same DNS names the pods resolve (the node's view).
	c := optest.Start(t, operator.Options{
		Config: cfg, MetricsAddr: "0", Image: "ghcr.io/paddockhq/paddock:v1", SkipNameValidation: true,
		Ensemble: &controllers.LiveEnsemble{Resolve: node.Resolve},
	}, filepath.Join(t.TempDir(), "operator.log"))
	return &env{t: t, cp: cp, node: node, c: c}
}

func (e *env) eventually(timeout time.Duration, what string, f func() (bool, string)) {
	e.t.Helper()
	start := time.Now()
	k8sharness.Eventually(e.t, timeout, what, f)
	e.t.Logf("%s: %v", what, time.Since(start).Round(100*time.Millisecond))
}

func (e *env) cluster(name string) *v1alpha1.PaddockCluster {
	var pc v1alpha1.PaddockCluster
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &pc); err != nil {
		return nil
	}
	return &pc
}

// healthy: n voters in the configuration, all ready, a leader, Available,
// and the operator has seen the latest spec.
func (e *env) healthy(name string, n int32) func() (bool, string) {
	return func() (bool, string) {
		pc := e.cluster(name)
		if pc == nil {
			return false, "no cluster"
		}
		av := meta.FindStatusCondition(pc.Status.Conditions, v1alpha1.ConditionAvailable)
		ok := pc.Status.Phase == v1alpha1.PhaseRunning && pc.Status.ReadyReplicas == n && pc.Status.Replicas == n &&
			pc.Status.Leader != "" && av != nil && av.Status == metav1.ConditionTrue && pc.Status.ObservedGeneration == pc.Generation
		return ok, fmt.Sprintf("phase=%s ready=%d replicas=%d leader=%q members=%s", pc.Status.Phase, pc.Status.ReadyReplicas,
			pc.Status.Replicas, pc.Status.Leader, members(pc))
	}
}

func members(pc *v1alpha1.PaddockCluster) string {
	var parts []string
	for _, m := range pc.Status.Members {
		parts = append(parts, fmt.Sprintf("%d:%s/%v", m.ServerID, m.Role, m.Ready))
	}
	return strings.Join(parts, ",")
}

func (e *env) update(name string, f func(*v1alpha1.PaddockCluster)) {
	e.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pc := e.cluster(name)
		if pc == nil {
			return fmt.Errorf("cluster %s not found", name)
		}
		f(pc)
		return e.c.Update(context.Background(), pc)
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pod(name string) *corev1.Pod {
	var p corev1.Pod
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		return nil
	}
	return &p
}

// servers are the client addresses of the members of cluster name.
func (e *env) servers(name string, ids ...int) []string {
	var out []string
	for _, id := range ids {
		host := fmt.Sprintf("%s-%d.%s-hs.%s.svc.cluster.local", name, id, name, ns)
		if a := e.node.Resolve(host + ":2181"); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// writer creates /e2e/w-N one after the other for as long as it runs and
// remembers every create the ensemble acknowledged.
type writer struct {
	conn  *zk.Conn
	mu    sync.Mutex
	acked map[string]string
	fails int
	stop  chan struct{}
	done  chan struct{}
}

func (e *env) startWriter(servers []string) *writer {
	conn, _, err := zk.Connect(servers, 10*time.Second, zk.WithLogger(quietLogger{}))
	if err != nil {
		e.t.Fatal(err)
	}
	w := &writer{conn: conn, acked: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	e.eventually(time.Minute, "writer connected", func() (bool, string) {
		_, err := conn.Create("/e2e", nil, 0, zk.WorldACL(zk.PermAll))
		return err == nil || err == zk.ErrNodeExists, fmt.Sprint(err)
	})
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			path, data := fmt.Sprintf("/e2e/w-%07d", i), fmt.Sprintf("write %d at %s", i, time.Now().Format(time.RFC3339Nano))
			_, err := conn.Create(path, []byte(data), 0, zk.WorldACL(zk.PermAll))
			w.mu.Lock()
			if err == nil {
				w.acked[path] = data
			} else {
				w.fails++ // outcome unknown (connection lost mid-request): not counted either way
			}
			w.mu.Unlock()
			if err != nil {
				time.Sleep(200 * time.Millisecond)
			} else {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	e.t.Cleanup(func() { w.halt() })
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.conn.Close()
}

func (w *writer) snapshot() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.acked))
	for k, v := range w.acked {
		out[k] = v
	}
	return out
}

// progress logs the writes acknowledged during a step (since mark) and
// waits for n more: the ensemble takes writes after the step too.
func (e *env) progress(w *writer, mark, n int) {
	e.t.Helper()
	now := len(w.snapshot())
	w.mu.Lock()
	fails := w.fails
	w.mu.Unlock()
	e.t.Logf("writes acknowledged during the step: %d (%d failed so far)", now-mark, fails)
	e.eventually(2*time.Minute, fmt.Sprintf("%d more writes acknowledged", n), func() (bool, string) {
		got := len(w.snapshot())
		return got >= now+n, fmt.Sprintf("%d acknowledged", got)
	})
}

// check reads every acknowledged write back from servers (after a sync,
// so the answer is the leader's).
func (e *env) check(servers []string, want map[string]string) {
	e.t.Helper()
	conn, _, err := zk.Connect(servers, 10*time.Second, zk.WithLogger(quietLogger{}))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	e.eventually(time.Minute, "reader synced", func() (bool, string) {
		_, err := conn.Sync("/e2e")
		return err == nil, fmt.Sprint(err)
	})
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var missing []string
	for _, k := range keys {
		data, _, err := conn.Get(k)
		if err != nil || string(data) != want[k] {
			missing = append(missing, fmt.Sprintf("%s (%v, %q)", k, err, data))
		}
	}
	if len(missing) > 0 {
		e.t.Fatalf("%d of %d acknowledged writes lost, first: %v", len(missing), len(want), missing[:min(5, len(missing))])
	}
	e.t.Logf("all %d acknowledged writes read back from %v", len(want), servers)
}

// events returns the operator's events about cluster name not seen
// before (by uid in seen), as "Reason/Action: note", oldest first.
func (e *env) events(name string, seen map[types.UID]bool) []string {
	var list eventsv1.EventList
	if err := e.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].EventTime.Before(&list.Items[j].EventTime) })
	var out []string
	for _, ev := range list.Items {
		if ev.Regarding.Kind != "PaddockCluster" || ev.Regarding.Name != name || seen[ev.UID] {
			continue
		}
		seen[ev.UID] = true
		out = append(out, fmt.Sprintf("%s/%s: %s", ev.Reason, ev.Action, ev.Note))
	}
	return out
}

// inOrder reports whether evs holds events starting with each of want
// ("Reason/Action"), in that order (other events may come between).
func inOrder(evs, want []string) bool {
	i := 0
	for _, ev := range evs {
		if i < len(want) && strings.HasPrefix(ev, want[i]+":") {
			i++
		}
	}
	return i == len(want)
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func newCluster(name string, replicas int32) *v1alpha1.PaddockCluster {
	return &v1alpha1.PaddockCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.PaddockClusterSpec{
			Replicas: replicas, Version: "v1",
			Storage: v1alpha1.StorageSpec{Size: resource.MustParse("1Gi")},
		},
	}
}

// podUIDs watches the pods of cluster name and records the order in
// which they were replaced (a new UID under the same name).
type podUIDs struct {
	mu    sync.Mutex
	order []string
	stop  chan struct{}
	done  chan struct{}
}

func (e *env) watchRestarts(name string, ids ...int) *podUIDs {
	r := &podUIDs{stop: make(chan struct{}), done: make(chan struct{})}
	last := map[string]types.UID{}
	for _, id := range ids {
		pn := fmt.Sprintf("%s-%d", name, id)
		if p := e.pod(pn); p != nil {
			last[pn] = p.UID
		}
	}
	go func() {
		defer close(r.done)
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			for pn, uid := range last {
				p := e.pod(pn)
				if p == nil || p.UID == uid || p.DeletionTimestamp != nil {
					if p == nil && uid != "" {
						// deleted: count the restart now, once
						r.mu.Lock()
						if !slices.Contains(r.order, pn) {
							r.order = append(r.order, pn)
						}
						r.mu.Unlock()
						last[pn] = ""
					}
					continue
				}
				r.mu.Lock()
				if uid != "" && !slices.Contains(r.order, pn) {
					r.order = append(r.order, pn)
				}
				r.mu.Unlock()
				last[pn] = p.UID
			}
		}
	}()
	return r
}

func (r *podUIDs) result() []string {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.order)
}

func containerPID(p *corev1.Pod) int {
	if p == nil || len(p.Status.ContainerStatuses) == 0 {
		return 0
	}
	id := p.Status.ContainerStatuses[0].ContainerID
	var pid int
	fmt.Sscanf(id[strings.LastIndex(id, "/")+1:], "%d", &pid)
	return pid
}

// TestOperatorE2E is the scenario of issue 6 on a real control plane.
func TestOperatorE2E(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	const name = "zk"
	seen := map[types.UID]bool{}
	// step runs one part of the scenario and checks that the operator
	// said (in its events) that it did what the step expects, in order.
	step := func(what string, want []string, f func()) {
		t.Helper()
		if t.Failed() {
			return
		}
		start := time.Now()
		t.Logf("=== step: %s", what)
		f()
		var evs []string
		if !t.Failed() {
			e.eventually(time.Minute, "the operator's events", func() (bool, string) {
				evs = append(evs, e.events(name, seen)...)
				return inOrder(evs, want), fmt.Sprintf("want %q in order, got %q", want, evs)
			})
		}
		t.Logf("=== step %s done in %v; events:\n\t%s", what, time.Since(start).Round(100*time.Millisecond), strings.Join(evs, "\n\t"))
	}

	var w *writer
	step("create 3", []string{"Created/CreateStatefulSet", "Bootstrapped/Bootstrap"}, func() {
		if err := e.c.Create(ctx, newCluster(name, 3)); err != nil {
			t.Fatal(err)
		}
		e.eventually(5*time.Minute, "3 members Running", e.healthy(name, 3))
		// Nothing changed since the StatefulSet was made: the operator
		// must not have rewritten its template (it once did on every pass,
		// a numeric default the comparison took for a change).
		var sts appsv1.StatefulSet
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sts); err != nil {
			t.Fatal(err)
		}
		if sts.Generation != 1 {
			t.Errorf("StatefulSet %s at generation %d after creation with no spec change: the operator rewrote it", name, sts.Generation)
		}
		w = e.startWriter(e.servers(name, 1, 2, 3))
		e.progress(w, 0, 50)
	})
	{
		// One member at a time: started empty, added as an observer, promoted.
		add := []string{"ScalingUp/SetReplicas", "ScalingUp/AddMember", "ScalingUp/AddMember"}
		step("scale to 5", append(add, add...), func() {
			mark := len(w.snapshot())
			e.update(name, func(pc *v1alpha1.PaddockCluster) { pc.Spec.Replicas = 5 })
			e.eventually(8*time.Minute, "5 members Running", e.healthy(name, 5))
			e.progress(w, mark, 50)
		})
		// Removed from the ensemble before the pod goes, one at a time.
		remove := []string{"ScalingDown/RemoveMember", "ScalingDown/SetReplicas"}
		step("scale to 3", append(remove, remove...), func() {
			mark := len(w.snapshot())
			e.update(name, func(pc *v1alpha1.PaddockCluster) { pc.Spec.Replicas = 3 })
			e.eventually(5*time.Minute, "3 members Running", e.healthy(name, 3))
			e.eventually(2*time.Minute, "pods 4 and 5 and their claims gone", func() (bool, string) {
				var pvcs corev1.PersistentVolumeClaimList
				e.c.List(ctx, &pvcs, client.InNamespace(ns))
				for _, p := range pvcs.Items {
					if p.Name == "data-zk-4" || p.Name == "data-zk-5" {
						return false, p.Name + " still there"
					}
				}
				return e.pod("zk-4") == nil && e.pod("zk-5") == nil, "pods"
			})
			e.progress(w, mark, 50)
		})
	}
	step("kill a member's process", nil, func() {
		mark := len(w.snapshot())
		pc := e.cluster(name)
		victim := "zk-1"
		if pc.Status.Leader == victim {
			victim = "zk-2"
		}
		p := e.pod(victim)
		pid := containerPID(p)
		if pid == 0 {
			t.Fatalf("no PID for %s: %+v", victim, p.Status.ContainerStatuses)
		}
		restarts := p.Status.ContainerStatuses[0].RestartCount
		proc, _ := os.FindProcess(pid)
		if err := proc.Kill(); err != nil {
			t.Fatal(err)
		}
		e.eventually(3*time.Minute, victim+" restarted", func() (bool, string) {
			p := e.pod(victim)
			if p == nil || len(p.Status.ContainerStatuses) == 0 {
				return false, "no pod"
			}
			cs := p.Status.ContainerStatuses[0]
			return cs.RestartCount == restarts+1 && cs.Ready, fmt.Sprintf("restarts=%d ready=%v", cs.RestartCount, cs.Ready)
		})
		e.eventually(3*time.Minute, "healed", e.healthy(name, 3))
		e.progress(w, mark, 50)
	})
	// Followers first, then leadership handed over, then the old leader.
	step("rolling upgrade, leader last", []string{"Upgrading/UpdateStatefulSet", "Upgrading/DeletePod", "Upgrading/DeletePod",
		"Upgrading/TransferLeader", "Upgrading/DeletePod"}, func() {
		mark := len(w.snapshot())
		leader := e.cluster(name).Status.Leader
		rec := e.watchRestarts(name, 1, 2, 3)
		e.update(name, func(pc *v1alpha1.PaddockCluster) { pc.Spec.Version = "v2" })
		e.eventually(8*time.Minute, "every member on v2", func() (bool, string) {
			ok, why := e.healthy(name, 3)()
			for i := 1; i <= 3; i++ {
				p := e.pod(fmt.Sprintf("zk-%d", i))
				if p == nil || len(p.Status.ContainerStatuses) == 0 || !strings.HasSuffix(p.Status.ContainerStatuses[0].Image, ":v2") {
					return false, fmt.Sprintf("zk-%d not on v2 yet; %s", i, why)
				}
			}
			return ok, why
		})
		order := rec.result()
		t.Logf("restart order %v, leader before the roll %s, after %s", order, leader, e.cluster(name).Status.Leader)
		if len(order) != 3 || order[2] != leader {
			t.Fatalf("restart order %v: want all three, the leader %s last", order, leader)
		}
		e.progress(w, mark, 50)
	})
	// Refused, removed, wiped, added back as an observer, promoted.
	step("delete a pod and its volume", []string{"MemberRefused/StartRebuild", "Rebuilding/RemoveMember", "Rebuilding/DeletePVC",
		"Rebuilding/DeletePod", "ScalingUp/AddMember", "ScalingUp/AddMember"}, func() {
		mark := len(w.snapshot())
		pc := e.cluster(name)
		victim := 3
		if pc.Status.Leader == "zk-3" {
			victim = 2
		}
		pn := fmt.Sprintf("zk-%d", victim)
		oldPVC := &corev1.PersistentVolumeClaim{}
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "data-" + pn}, oldPVC); err != nil {
			t.Fatal(err)
		}
		e.cp.Kubectl(t, "-n", ns, "delete", "pvc", "data-"+pn, "--wait=false")
		e.cp.Kubectl(t, "-n", ns, "delete", "pod", pn, "--wait=false")
		e.eventually(8*time.Minute, pn+" rebuilt on a new volume", func() (bool, string) {
			ok, why := e.healthy(name, 3)()
			var pvc corev1.PersistentVolumeClaim
			if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "data-" + pn}, &pvc); err != nil || pvc.UID == oldPVC.UID {
				return false, "old claim still there; " + why
			}
			return ok, why
		})
		// The rebuilt member holds everything: read from it alone.
		e.progress(w, mark, 50)
		e.check(e.servers(name, victim), w.snapshot())
	})
	var backupWrites map[string]string
	{
		step("backup and restore into a new cluster", nil, func() {
			backupWrites = w.snapshot()
			b := &v1alpha1.PaddockBackup{ObjectMeta: metav1.ObjectMeta{Name: "b1", Namespace: ns}, Spec: v1alpha1.PaddockBackupSpec{ClusterName: name}}
			if err := e.c.Create(ctx, b); err != nil {
				t.Fatal(err)
			}
			e.eventually(5*time.Minute, "backup Completed", func() (bool, string) {
				var got v1alpha1.PaddockBackup
				if err := e.c.Get(ctx, client.ObjectKeyFromObject(b), &got); err != nil {
					return false, err.Error()
				}
				return got.Status.Phase == v1alpha1.BackupCompleted, fmt.Sprintf("%s %s", got.Status.Phase, got.Status.Message)
			})
			r := newCluster("zk2", 3)
			r.Spec.RestoreFrom = &v1alpha1.RestoreSource{BackupName: "b1"}
			r.Spec.Storage.OnDelete = v1alpha1.ReclaimDelete
			if err := e.c.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			e.eventually(8*time.Minute, "restored cluster Running", e.healthy("zk2", 3))
			if got := e.cluster("zk2").Status.RestoredFrom; got != "b1" {
				t.Fatalf("zk2 status.restoredFrom = %q, want b1", got)
			}
			e.check(e.servers("zk2", 1, 2, 3), backupWrites)
		})
	}
	step("every acknowledged write", nil, func() {
		w.halt()
		e.check(e.servers(name, 1, 2, 3), w.snapshot())
		t.Logf("writer: %d acknowledged, %d failed (outcome unknown, not checked)", len(w.snapshot()), w.fails)
	})
	step("delete the clusters", nil, func() {
		clusters := []string{name, "zk2"}
		claimDirs := map[string]string{}
		for _, cn := range clusters {
			for i := 1; i <= 3; i++ {
				var pvc corev1.PersistentVolumeClaim
				if err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("data-%s-%d", cn, i)}, &pvc); err == nil {
					var pv corev1.PersistentVolume
					if err := e.c.Get(ctx, types.NamespacedName{Name: pvc.Spec.VolumeName}, &pv); err == nil && pv.Spec.HostPath != nil {
						claimDirs[pvc.Name] = pv.Spec.HostPath.Path
					}
				}
			}
			if err := e.c.Delete(ctx, &v1alpha1.PaddockCluster{ObjectMeta: metav1.ObjectMeta{Name: cn, Namespace: ns}}); err != nil {
				t.Fatal(err)
			}
		}
		e.eventually(3*time.Minute, "pods and StatefulSets gone", func() (bool, string) {
			var pods corev1.PodList
			e.c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{controllers.LabelName: "paddock"})
			var sts appsv1.StatefulSetList
			e.c.List(ctx, &sts, client.InNamespace(ns))
			return len(pods.Items) == 0 && len(sts.Items) == 0, fmt.Sprintf("%d pods, %d statefulsets", len(pods.Items), len(sts.Items))
		})
		// zk keeps its volumes (storage.onDelete: Retain, the default);
		// zk2 (onDelete: Delete) loses claims and directories.
		e.eventually(3*time.Minute, "claims per policy", func() (bool, string) {
			for claim, dir := range claimDirs {
				var pvc corev1.PersistentVolumeClaim
				err := e.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: claim}, &pvc)
				_, derr := os.Stat(dir)
				if strings.HasPrefix(claim, "data-zk-") {
					if err != nil || derr != nil {
						return false, fmt.Sprintf("%s should be retained: %v %v", claim, err, derr)
					}
				} else if err == nil || derr == nil {
					return false, fmt.Sprintf("%s should be gone: claim %v, dir %v", claim, err, derr)
				}
			}
			return true, ""
		})
	})
}
