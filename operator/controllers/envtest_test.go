package controllers_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	runtimeconv "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/optest"
	"github.com/paddockhq/paddock/operator"
	"github.com/paddockhq/paddock/operator/api/v1alpha1"
	"github.com/paddockhq/paddock/operator/controllers"
)

// fakeEnsemble plays the servers: what each member says about itself and
// what /zookeeper/config holds. The Kubernetes side is real (a
// kube-apiserver and etcd started by envtest); only the ZooKeeper
// protocol is scripted, since envtest runs no kubelet.
type fakeEnsemble struct {
	mu        sync.Mutex
	members   map[string]controllers.MemberInfo // by host
	conf      controllers.Membership
	reconfigs []string
}

func (f *fakeEnsemble) Member(_ context.Context, host string) (controllers.MemberInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.members[host]
	if !ok {
		return m, fmt.Errorf("%s: connection refused", host)
	}
	return m, nil
}

func (f *fakeEnsemble) Config(context.Context, []string, string) (controllers.Membership, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A copy: the test edits f.conf's maps while the reconciler reads
	// what it was given, as a real client would hand out fresh values.
	c := f.conf
	c.Voters, c.Observers = maps.Clone(c.Voters), maps.Clone(c.Observers)
	if !c.Known {
		return c, fmt.Errorf("no quorum")
	}
	return c, nil
}

func (f *fakeEnsemble) Reconfig(_ context.Context, _ []string, password string, joining []string, leaving []uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if password == "" {
		return fmt.Errorf("not authorized")
	}
	f.reconfigs = append(f.reconfigs, fmt.Sprintf("+%v-%v", joining, leaving))
	return nil
}

func (f *fakeEnsemble) TransferLeadership(context.Context, string, uint64) error { return nil }

func (f *fakeEnsemble) set(fn func(f *fakeEnsemble)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// startEnv starts kube-apiserver + etcd (envtest, binaries from
// internal/k8sharness; nothing is downloaded) with the generated CRDs, and
// the operator's manager against it; opts adjust the manager's options.
func startEnv(t *testing.T, ens controllers.Ensemble, opts ...func(*operator.Options)) client.Client {
	assets := k8sharness.EnvtestAssets(t) // skips, or fails with CI=true, without the binaries
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot(), "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	env.ControlPlane.GetAPIServer().Configure().Set("endpoint-reconciler-type", "none")
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() { env.Stop() })
	o := operator.Options{
		Config: cfg, MetricsAddr: "0", LeaderElection: false, Ensemble: ens, Image: "paddock:test", SkipNameValidation: true,
	}
	for _, f := range opts {
		f(&o)
	}
	return optest.Start(t, o, "")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, why := f()
		if ok {
			return
		}
		last = why
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within 30s: %s", what, last)
}

// makePods plays kubelet and the StatefulSet controller: it creates the
// pods of ids with the StatefulSet's labels and marks them running and
// ready (or not).
func makePods(t *testing.T, c client.Client, pc *v1alpha1.PaddockCluster, rev string, ready map[uint64]bool) {
	t.Helper()
	ctx := context.Background()
	for id, r := range ready {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: controllers.PodName(pc, id), Namespace: pc.Namespace, Labels: map[string]string{
				controllers.LabelName: "paddock", controllers.LabelInstance: pc.Name, controllers.LabelComponent: "voter",
				controllers.LabelPodIndex: fmt.Sprint(id), appsv1.ControllerRevisionHashLabelKey: rev,
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "paddock", Image: "paddock:test"}}},
		}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		status := corev1.ConditionFalse
		if r {
			status = corev1.ConditionTrue
		}
		p.Status = corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "paddock", Ready: r, Image: "paddock:test",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}},
		}
		if err := c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClusterLifecycle(t *testing.T) {
	ens := &fakeEnsemble{members: map[string]controllers.MemberInfo{}}
	c := startEnv(t, ens)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "zk-test"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	pc := &v1alpha1.PaddockCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "zk", Namespace: ns.Name},
		Spec: v1alpha1.PaddockClusterSpec{
			Replicas:  3,
			ZooCfg:    map[string]string{"tickTime": "1000"},
			Placement: v1alpha1.PlacementSpec{ZoneSpread: "topology.kubernetes.io/zone"},
		},
	}
	if err := c.Create(ctx, pc); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pc)

	// The CR becomes a StatefulSet, Services, a PDB, ConfigMaps, a
	// ServiceAccount and the auth Secret.
	var sts appsv1.StatefulSet
	eventually(t, "StatefulSet", func() (bool, string) {
		err := c.Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: "zk"}, &sts)
		return err == nil, fmt.Sprint(err)
	})
	if err := c.Get(ctx, key, pc); err != nil {
		t.Fatal(err)
	}
	checkStatefulSet(t, pc, &sts)
	var hs, cs corev1.Service
	mustGet(t, c, ns.Name, "zk-hs", &hs)
	if !hs.Spec.PublishNotReadyAddresses || hs.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless service: publishNotReadyAddresses=%v clusterIP=%q", hs.Spec.PublishNotReadyAddresses, hs.Spec.ClusterIP)
	}
	mustGet(t, c, ns.Name, "zk-client", &cs)
	if len(cs.Spec.Ports) != 1 || cs.Spec.Ports[0].Port != 2181 {
		t.Errorf("client service ports %v", cs.Spec.Ports)
	}
	var pdb policyv1.PodDisruptionBudget
	mustGet(t, c, ns.Name, "zk", &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable %v", pdb.Spec.MaxUnavailable)
	}
	var cfg, members corev1.ConfigMap
	mustGet(t, c, ns.Name, "zk-config", &cfg)
	if z := cfg.Data["zoo.cfg"]; !strings.Contains(z, "tickTime=1000\n") || !strings.Contains(z, "reconfigEnabled=true\n") {
		t.Errorf("zoo.cfg:\n%s", z)
	}
	mustGet(t, c, ns.Name, "zk-members", &members)
	wantPeers := "1=zk-1.zk-hs.zk-test.svc.cluster.local:2888;zk-1.zk-hs.zk-test.svc.cluster.local:2181,2=zk-2.zk-hs"
	if !strings.HasPrefix(members.Data["PADDOCK_PEERS"], wantPeers) || members.Data["PADDOCK_JOIN"] != "false" {
		t.Errorf("members before bootstrap: %v", members.Data)
	}
	var sa corev1.ServiceAccount
	mustGet(t, c, ns.Name, "zk-paddock", &sa)
	var auth corev1.Secret
	mustGet(t, c, ns.Name, "zk-auth", &auth)
	if pw := string(auth.Data["password"]); pw == "" || string(auth.Data["superDigest"]) != controllers.SuperDigest(pw) {
		t.Errorf("auth secret: %v", auth.Data)
	}
	if pc.Status.ClusterID == "" || !strings.HasPrefix(pc.Status.ClusterID, "zk-test-zk-") {
		t.Errorf("clusterID %q", pc.Status.ClusterID)
	}
	eventually(t, "Bootstrapping phase", func() (bool, string) {
		c.Get(ctx, key, pc)
		return pc.Status.Phase == v1alpha1.PhaseBootstrap, string(pc.Status.Phase)
	})

	// The members come up and elect member 1.
	setStsStatus(t, c, &sts, "rev1")
	makePods(t, c, pc, "rev1", map[uint64]bool{1: true, 2: true, 3: true})
	ens.set(func(f *fakeEnsemble) {
		for id, role := range map[uint64]string{1: "leader", 2: "follower", 3: "follower"} {
			f.members[controllers.MemberHost(pc, id)] = controllers.MemberInfo{Role: role, Zxid: 0x100000010 - int64(id) + 1}
		}
		f.conf = controllers.Membership{Known: true, Voters: map[uint64]bool{1: true, 2: true, 3: true}, Observers: map[uint64]bool{}, Version: "100000000"}
	})
	eventually(t, "Running with a leader", func() (bool, string) {
		c.Get(ctx, key, pc)
		return pc.Status.Phase == v1alpha1.PhaseRunning && pc.Status.Leader == "zk-1" && pc.Status.ReadyReplicas == 3 &&
			pc.Status.DataBootstrapped, fmt.Sprintf("%+v", pc.Status)
	})
	// Steady reconciles never rewrite the StatefulSet (no spurious rolls).
	mustGet(t, c, ns.Name, "zk", &sts)
	if sts.Generation != 1 {
		t.Errorf("StatefulSet rewritten while nothing changed: generation %d", sts.Generation)
	}
	if !meta.IsStatusConditionTrue(pc.Status.Conditions, v1alpha1.ConditionAvailable) {
		t.Errorf("Available not true: %+v", pc.Status.Conditions)
	}
	if len(pc.Status.Members) != 3 || pc.Status.Members[2].Lag != 2 || pc.Status.Members[0].Role != "leader" {
		t.Errorf("members: %+v", pc.Status.Members)
	}
	mustGet(t, c, ns.Name, "zk-members", &members)
	if members.Data["PADDOCK_JOIN"] != "true" || members.Annotations[controllers.AnnBootstrapped] != "true" {
		t.Errorf("members after bootstrap: %v %v", members.Data, members.Annotations)
	}

	// Two members fail; a scale to 1 would remove member 3 (ready) and
	// leave {1,2} with one ready: refused with a condition, nothing done.
	var p1, p2 corev1.Pod
	for _, p := range []*corev1.Pod{&p1, &p2} {
		name := "zk-1"
		if p == &p2 {
			name = "zk-2"
		}
		mustGet(t, c, ns.Name, name, p)
		p.Status.Conditions[0].Status = corev1.ConditionFalse
		if err := c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	ens.set(func(f *fakeEnsemble) {
		f.members[controllers.MemberHost(pc, 1)] = controllers.MemberInfo{Role: "follower"}
		f.members[controllers.MemberHost(pc, 3)] = controllers.MemberInfo{Role: "leader", Zxid: 0x100000010}
	})
	if err := c.Get(ctx, key, pc); err != nil {
		t.Fatal(err)
	}
	// A merge patch: the operator writes the status meanwhile.
	patch := client.MergeFrom(pc.DeepCopy())
	pc.Spec.Replicas = 1
	if err := c.Patch(ctx, pc, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ScaleRefused", func() (bool, string) {
		c.Get(ctx, key, pc)
		cond := meta.FindStatusCondition(pc.Status.Conditions, v1alpha1.ConditionDegraded)
		return cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == v1alpha1.ReasonScaleRefused,
			fmt.Sprintf("%+v", pc.Status.Conditions)
	})
	if pc.Status.Phase != v1alpha1.PhaseDegraded {
		t.Errorf("phase %s", pc.Status.Phase)
	}
	ens.mu.Lock()
	if len(ens.reconfigs) != 0 {
		t.Errorf("reconfig attempted: %v", ens.reconfigs)
	}
	ens.mu.Unlock()
	mustGet(t, c, ns.Name, "zk", &sts)
	if *sts.Spec.Replicas != 3 {
		t.Errorf("StatefulSet scaled to %d", *sts.Spec.Replicas)
	}

	// They recover: the scale proceeds with member 3 removed by reconfig
	// first (it leads: leadership handed over before).
	for _, p := range []*corev1.Pod{&p1, &p2} {
		mustGet(t, c, ns.Name, p.Name, p)
		p.Status.Conditions[0].Status = corev1.ConditionTrue
		if err := c.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	ens.set(func(f *fakeEnsemble) {
		f.members[controllers.MemberHost(pc, 1)] = controllers.MemberInfo{Role: "leader", Zxid: 0x100000010}
		f.members[controllers.MemberHost(pc, 3)] = controllers.MemberInfo{Role: "follower", Zxid: 0x100000010}
	})
	eventually(t, "reconfig removes member 3", func() (bool, string) {
		ens.mu.Lock()
		defer ens.mu.Unlock()
		return len(ens.reconfigs) > 0 && ens.reconfigs[0] == "+[]-[3]", fmt.Sprint(ens.reconfigs)
	})
	ens.set(func(f *fakeEnsemble) {
		delete(f.conf.Voters, 3)
		f.members[controllers.MemberHost(pc, 3)] = controllers.MemberInfo{Role: "removed"}
	})
	eventually(t, "StatefulSet shrinks after the reconfig", func() (bool, string) {
		mustGet(t, c, ns.Name, "zk", &sts)
		return *sts.Spec.Replicas == 2, fmt.Sprint(*sts.Spec.Replicas)
	})
}

// TestSchema: the API server enforces the CRD schema generated from the
// Go types (defaults, bounds, enums), and the shipped examples pass it.
func TestSchema(t *testing.T) {
	c := startEnv(t, &fakeEnsemble{members: map[string]controllers.MemberInfo{}})
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "schema"}}); err != nil {
		t.Fatal(err)
	}
	bad := []v1alpha1.PaddockClusterSpec{
		{Replicas: 0},
		{Replicas: 128},
		{Replicas: 3, Storage: v1alpha1.StorageSpec{OnScaleDown: "Shred"}},
		{Replicas: 3, PodDisruptionBudget: v1alpha1.PDBSpec{Policy: "Sometimes"}},
		{Replicas: 3, Backup: &v1alpha1.BackupSchedule{Schedule: ""}},
		{Replicas: 3, Backup: &v1alpha1.BackupSchedule{Schedule: "@daily", Keep: -1}},
		{Replicas: 3, Backup: &v1alpha1.BackupSchedule{Schedule: "@daily", OnPrune: "Shred"}},
		{Replicas: 3, TLS: &v1alpha1.TLSSpec{Admin: &v1alpha1.AdminTLS{SecretRef: v1alpha1.SecretRef{SecretName: "a"}, ClientAuth: "need"}}},
		{Replicas: 3, TLS: &v1alpha1.TLSSpec{Admin: &v1alpha1.AdminTLS{SecretRef: v1alpha1.SecretRef{SecretName: "a"}, ClientAuth: "sometimes"}}},
	}
	for i, spec := range bad {
		pc := &v1alpha1.PaddockCluster{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bad-%d", i), Namespace: "schema"}, Spec: spec}
		if err := c.Create(ctx, pc, client.DryRunAll); err == nil {
			t.Errorf("spec %+v accepted", spec)
		}
	}
	pc := &v1alpha1.PaddockCluster{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: "schema"}}
	raw := []byte(`{"apiVersion":"paddock.dev/v1alpha1","kind":"PaddockCluster","metadata":{"name":"defaults","namespace":"schema"},"spec":{}}`)
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, u, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if err := runtimeconv.DefaultUnstructuredConverter.FromUnstructured(u.Object, pc); err != nil {
		t.Fatal(err)
	}
	if pc.Spec.Replicas != 3 || pc.Spec.PodDisruptionBudget.Policy != "" && pc.Spec.PodDisruptionBudget.Policy != v1alpha1.PDBMaxUnavailableOne {
		t.Errorf("defaults: %+v", pc.Spec)
	}
	// The examples.
	dir := filepath.Join(repoRoot(), "deploy", "examples")
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		b, _ := os.ReadFile(filepath.Join(dir, de.Name()))
		for _, doc := range strings.Split(string(b), "\n---\n") {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatal(err)
			}
			u.SetNamespace("schema")
			if err := c.Create(ctx, u, client.DryRunAll); err != nil {
				t.Errorf("%s: %s rejected: %v", de.Name(), u.GetName(), err)
			}
		}
	}
}

// setStsStatus plays the StatefulSet controller: 3 replicas at rev, the
// current generation observed (retried: the operator may write the spec
// meanwhile).
func setStsStatus(t *testing.T, c client.Client, sts *appsv1.StatefulSet, rev string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(sts), sts); err != nil {
			return err
		}
		sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 3, UpdateRevision: rev, CurrentRevision: rev}
		return c.Status().Update(context.Background(), sts)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, c client.Client, ns, name string, obj client.Object) {
	t.Helper()
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("get %T %s: %v", obj, name, err)
	}
}

func checkStatefulSet(t *testing.T, pc *v1alpha1.PaddockCluster, sts *appsv1.StatefulSet) {
	t.Helper()
	s := sts.Spec
	if *s.Replicas != 3 || s.PodManagementPolicy != appsv1.ParallelPodManagement ||
		s.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType || s.Ordinals == nil || s.Ordinals.Start != 1 ||
		s.ServiceName != "zk-hs" {
		t.Errorf("statefulset spec: replicas=%d policy=%s update=%s ordinals=%v svc=%s", *s.Replicas, s.PodManagementPolicy,
			s.UpdateStrategy.Type, s.Ordinals, s.ServiceName)
	}
	if len(sts.OwnerReferences) != 1 || sts.OwnerReferences[0].Name != "zk" {
		t.Errorf("owner %v", sts.OwnerReferences)
	}
	ps := s.Template.Spec
	ctr := ps.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range ctr.Env {
		env[e.Name] = e
	}
	if f := env["PADDOCK_SERVER_ID"].ValueFrom; f == nil || f.FieldRef.FieldPath != "metadata.labels['apps.kubernetes.io/pod-index']" {
		t.Errorf("server id env %+v", env["PADDOCK_SERVER_ID"])
	}
	if env["PADDOCK_CLUSTER_ID"].Value != pc.Status.ClusterID && env["PADDOCK_CLUSTER_ID"].Value == "" {
		t.Errorf("cluster id env %+v", env["PADDOCK_CLUSTER_ID"])
	}
	if ctr.ReadinessProbe.HTTPGet.Path != "/readyz" || ctr.LivenessProbe.HTTPGet.Path != "/livez" {
		t.Errorf("probes %v %v", ctr.ReadinessProbe, ctr.LivenessProbe)
	}
	if ctr.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("termination message policy %s", ctr.TerminationMessagePolicy)
	}
	if strings.Join(ctr.Args, " ") != "server --config /etc/paddock/zoo.cfg" || ctr.Image != "paddock:test" {
		t.Errorf("args %v image %s", ctr.Args, ctr.Image)
	}
	if len(ctr.EnvFrom) != 1 || ctr.EnvFrom[0].ConfigMapRef.Name != "zk-members" {
		t.Errorf("envFrom %v", ctr.EnvFrom)
	}
	if len(ps.TopologySpreadConstraints) != 1 || ps.TopologySpreadConstraints[0].TopologyKey != "topology.kubernetes.io/zone" {
		t.Errorf("zone spread %v", ps.TopologySpreadConstraints)
	}
	if ps.SecurityContext.RunAsUser == nil || *ps.SecurityContext.RunAsUser != 65532 {
		t.Errorf("security context %v", ps.SecurityContext)
	}
	if len(s.VolumeClaimTemplates) != 1 || s.PersistentVolumeClaimRetentionPolicy.WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType ||
		s.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("volumes %v retention %v", s.VolumeClaimTemplates, s.PersistentVolumeClaimRetentionPolicy)
	}
}

// TestEmptyVoterRebuilt: a voter whose volume vanished comes back empty;
// its server runs but refuses to vote (srvr: "refused", with the reason).
// The operator reports it (Degraded/MemberRefused, the member's role and
// message, a warning event) and rebuilds it: the rebuild annotation is set,
// the member is removed with reconfig, its claim and pod are deleted, and
// once it is back and waiting it is added as an observer and promoted when
// caught up; the annotation is cleared and the cluster is Running again.
func TestEmptyVoterRebuilt(t *testing.T) {
	ens := &fakeEnsemble{members: map[string]controllers.MemberInfo{}}
	c := startEnv(t, ens)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "zk-amnesia"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	pc := &v1alpha1.PaddockCluster{ObjectMeta: metav1.ObjectMeta{Name: "zk", Namespace: ns.Name}, Spec: v1alpha1.PaddockClusterSpec{Replicas: 3}}
	if err := c.Create(ctx, pc); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pc)
	var sts appsv1.StatefulSet
	eventually(t, "StatefulSet", func() (bool, string) {
		err := c.Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: "zk"}, &sts)
		return err == nil, fmt.Sprint(err)
	})
	if err := c.Get(ctx, key, pc); err != nil {
		t.Fatal(err)
	}
	setStsStatus(t, c, &sts, "rev1")
	makePods(t, c, pc, "rev1", map[uint64]bool{1: true, 2: true, 3: true})
	// Member 2's claim, as the StatefulSet controller would make it.
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: controllers.PVCName(pc, 2), Namespace: ns.Name,
			Labels: map[string]string{controllers.LabelName: "paddock", controllers.LabelInstance: pc.Name}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if err := c.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	allVoters := map[uint64]bool{1: true, 2: true, 3: true}
	ens.set(func(f *fakeEnsemble) {
		for id, role := range map[uint64]string{1: "leader", 2: "follower", 3: "follower"} {
			f.members[controllers.MemberHost(pc, id)] = controllers.MemberInfo{Role: role, Zxid: 0x100000010}
		}
		f.conf = controllers.Membership{Known: true, Voters: maps.Clone(allVoters), Observers: map[uint64]bool{}, Version: "100000000"}
	})
	eventually(t, "Running", func() (bool, string) {
		c.Get(ctx, key, pc)
		return pc.Status.Phase == v1alpha1.PhaseRunning && pc.Status.DataBootstrapped, fmt.Sprintf("%+v", pc.Status)
	})

	// The volume under member 2 vanished: its server comes back empty and
	// refuses to vote. The fake ensemble does not apply reconfigs until
	// the test says so, so the refusal stays visible meanwhile.
	const refusal = "refusing to vote: the data directory is empty but server 2 is a voter in the configuration of member(s) 1,3"
	var p2 corev1.Pod
	mustGet(t, c, ns.Name, "zk-2", &p2)
	p2.Status.Conditions[0].Status = corev1.ConditionFalse
	if err := c.Status().Update(ctx, &p2); err != nil {
		t.Fatal(err)
	}
	ens.set(func(f *fakeEnsemble) {
		f.members[controllers.MemberHost(pc, 2)] = controllers.MemberInfo{Role: "refused", Refusal: refusal}
	})
	eventually(t, "MemberRefused reported and member 2 removed with reconfig", func() (bool, string) {
		c.Get(ctx, key, pc)
		cond := meta.FindStatusCondition(pc.Status.Conditions, v1alpha1.ConditionDegraded)
		var m2 v1alpha1.MemberStatus
		for _, m := range pc.Status.Members {
			if m.ServerID == 2 {
				m2 = m
			}
		}
		ens.mu.Lock()
		removed := slices.Contains(ens.reconfigs, "+[]-[2]")
		reconfigs := slices.Clone(ens.reconfigs) // the reconciler appends meanwhile
		ens.mu.Unlock()
		return cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == v1alpha1.ReasonMemberRefused &&
				strings.Contains(cond.Message, refusal) && m2.Role == "refused" && strings.Contains(m2.Message, refusal) &&
				pc.Status.Phase == v1alpha1.PhaseDegraded && pc.Annotations[controllers.AnnRebuild] == "2" && removed,
			fmt.Sprintf("degraded %+v, members %+v, annotations %v, reconfigs %v", cond, pc.Status.Members, pc.Annotations, reconfigs)
	})
	eventually(t, "a MemberRefused warning event", func() (bool, string) {
		var evs eventsv1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(ns.Name)); err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.Reason == v1alpha1.ReasonMemberRefused && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, "empty volume") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs.Items))
	})

	// The removal takes effect: the claim goes, then the pod.
	ens.set(func(f *fakeEnsemble) {
		delete(f.conf.Voters, 2)
		f.members[controllers.MemberHost(pc, 2)] = controllers.MemberInfo{Role: "joining"}
	})
	eventually(t, "member 2's claim deleted", func() (bool, string) {
		var got corev1.PersistentVolumeClaim
		err := c.Get(ctx, client.ObjectKeyFromObject(pvc), &got)
		return apierrors.IsNotFound(err) || (err == nil && got.DeletionTimestamp != nil), fmt.Sprint(err)
	})
	eventually(t, "member 2's pod deleted and the annotation cleared", func() (bool, string) {
		var p corev1.Pod
		err := c.Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: "zk-2"}, &p)
		c.Get(ctx, key, pc)
		_, ann := pc.Annotations[controllers.AnnRebuild]
		return apierrors.IsNotFound(err) && !ann, fmt.Sprintf("pod: %v, annotations %v", err, pc.Annotations)
	})

	// The StatefulSet makes the pod again, with a new claim; it joins
	// (not ready: not in the ensemble).
	if err := c.Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: pvc.Name, Namespace: ns.Name,
		Labels: pvc.Labels}, Spec: pvc.Spec}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	makePods(t, c, pc, "rev1", map[uint64]bool{2: false})
	observerLine := "server.2=" + controllers.MemberSpecAs(pc, 2, true)
	eventually(t, "member 2 added back as an observer", func() (bool, string) {
		ens.mu.Lock()
		defer ens.mu.Unlock()
		return slices.Contains(ens.reconfigs, fmt.Sprintf("+[%s]-[]", observerLine)), fmt.Sprint(ens.reconfigs)
	})
	if !strings.Contains(observerLine, ":observer;") {
		t.Fatalf("observer line %q", observerLine)
	}
	// It is an observer, catching up (not ready yet): no promotion.
	ens.set(func(f *fakeEnsemble) {
		f.conf.Observers[2] = true
		f.members[controllers.MemberHost(pc, 2)] = controllers.MemberInfo{Role: "observer", Zxid: 0x100000001}
	})
	participantLine := "server.2=" + controllers.MemberSpec(pc, 2)
	eventually(t, "waiting to promote", func() (bool, string) {
		c.Get(ctx, key, pc)
		cond := meta.FindStatusCondition(pc.Status.Conditions, v1alpha1.ConditionProgressing)
		return cond != nil && strings.Contains(cond.Message, "promoting it once it has caught up"), fmt.Sprintf("%+v", cond)
	})
	ens.mu.Lock()
	if slices.Contains(ens.reconfigs, fmt.Sprintf("+[%s]-[]", participantLine)) {
		t.Errorf("promoted before it was ready: %v", ens.reconfigs)
	}
	ens.mu.Unlock()
	// Caught up: ready, then promoted.
	mustGet(t, c, ns.Name, "zk-2", &p2)
	p2.Status.Conditions[0].Status = corev1.ConditionTrue
	if err := c.Status().Update(ctx, &p2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "member 2 promoted", func() (bool, string) {
		ens.mu.Lock()
		defer ens.mu.Unlock()
		return slices.Contains(ens.reconfigs, fmt.Sprintf("+[%s]-[]", participantLine)), fmt.Sprint(ens.reconfigs)
	})
	ens.set(func(f *fakeEnsemble) {
		delete(f.conf.Observers, 2)
		f.conf.Voters[2] = true
		f.members[controllers.MemberHost(pc, 2)] = controllers.MemberInfo{Role: "follower", Zxid: 0x100000010}
	})
	eventually(t, "Running again with three voters", func() (bool, string) {
		c.Get(ctx, key, pc)
		return pc.Status.Phase == v1alpha1.PhaseRunning && pc.Status.Replicas == 3 &&
				meta.IsStatusConditionFalse(pc.Status.Conditions, v1alpha1.ConditionDegraded),
			fmt.Sprintf("%+v", pc.Status)
	})
	var members corev1.ConfigMap
	mustGet(t, c, ns.Name, "zk-members", &members)
	if strings.Contains(members.Data["PADDOCK_OBSERVERS"], "zk-2.") {
		t.Errorf("members ConfigMap lists the voter as an observer: %v", members.Data)
	}
}
