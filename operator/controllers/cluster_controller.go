package controllers

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/paddockhq/paddock/operator/api/v1alpha1"
)

// ClusterReconciler turns PaddockClusters into running ensembles.
type ClusterReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Ensemble Ensemble
	// Now is the clock (tests).
	Now func() time.Time

	mu        sync.Mutex
	transfers map[string]int // cluster/revision → leadership transfers tried
}

// +kubebuilder:rbac:groups=paddock.dev,resources=paddockclusters;paddockbackups,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=paddock.dev,resources=paddockclusters/status;paddockbackups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps;serviceaccounts;secrets;persistentvolumeclaims,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// SetupWithManager registers the reconciler.
func (r *ClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PaddockCluster{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&batchv1.Job{}).
		// Pods belong to the StatefulSets, not to the cluster: a pod's
		// readiness or restart (a member refusing its volume) is seen at
		// once rather than at the next periodic pass.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podCluster)).
		Named("paddockcluster").
		Complete(r)
}

// podCluster maps a member pod to its PaddockCluster (the instance label).
func podCluster(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	if l[LabelName] != "paddock" || l[LabelInstance] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: l[LabelInstance]}}}
}

func (r *ClusterReconciler) event(c *v1alpha1.PaddockCluster, warning bool, reason, action, msg string) {
	if r.Recorder == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(c, nil, typ, reason, action, "%s", msg)
}

// Reconcile observes one cluster and takes at most one step toward its spec.
func (r *ClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	if r.Now == nil {
		r.Now = time.Now
	}
	var c v1alpha1.PaddockCluster
	if err := r.Get(ctx, req.NamespacedName, &c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		// Owner references delete everything; the StatefulSet's claim
		// retention policy applies storage.onDelete. No finalizer: a
		// missing operator never blocks a namespace deletion.
		return ctrl.Result{}, nil
	}
	// The identity is recorded before anything is created with it.
	if c.Status.ClusterID == "" {
		c.Status.ClusterID = ClusterID(&c)
		c.Status.Phase = v1alpha1.PhasePending
		if err := r.Status().Update(ctx, &c); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{Requeue: true}, nil
	}
	if why := ValidateSpec(&c); why != "" {
		r.setConditions(&c, Step{Kind: Refuse, Reason: v1alpha1.ReasonInvalidSpec, Message: why, Degraded: true}, nil)
		r.event(&c, true, v1alpha1.ReasonInvalidSpec, "Validate", why)
		return ctrl.Result{}, r.Status().Update(ctx, &c)
	}

	password, digest, err := r.ensureAuth(ctx, &c)
	if err != nil {
		return r.fail(ctx, &c, "Superuser", err)
	}
	zooCfg := ZooCfg(&c)
	hash := configHash(zooCfg, digest, &c)
	if err := r.ensureBasics(ctx, &c, zooCfg); err != nil {
		return r.fail(ctx, &c, "Resources", err)
	}

	// Restore: seed the first members' volumes before their pods exist.
	if c.Spec.RestoreFrom != nil && !c.Status.DataBootstrapped {
		done, err := r.restore(ctx, &c)
		if err != nil {
			return r.fail(ctx, &c, "Restore", err)
		}
		if !done {
			return ctrl.Result{RequeueAfter: 5 * time.Second}, r.Status().Update(ctx, &c)
		}
	}

	// The admin calls (srvr, leadership transfer) trust the cluster's CA.
	ctx, err = r.adminContext(ctx, &c)
	if err != nil {
		return r.fail(ctx, &c, "AdminTLS", err)
	}
	obs, stsV, stsO, err := r.observe(ctx, &c)
	if err != nil {
		return ctrl.Result{}, err
	}

	// The members ConfigMap must be right before any pod starts.
	if err := r.ensureMembers(ctx, &c, obs); err != nil {
		return r.fail(ctx, &c, "Members", err)
	}
	// StatefulSets: created at full size before the first quorum
	// (Parallel: the members bootstrap together); afterwards their size is
	// changed only by plan steps, one member at a time.
	created, err := r.ensureStatefulSets(ctx, &c, obs, stsV, stsO, hash)
	if err != nil {
		return r.fail(ctx, &c, "StatefulSet", err)
	}
	if created {
		return ctrl.Result{RequeueAfter: 2 * time.Second}, r.Status().Update(ctx, &c)
	}

	if !c.Status.DataBootstrapped && obs.Leader != 0 {
		c.Status.DataBootstrapped = true
		r.event(&c, false, "Bootstrapped", "Bootstrap", fmt.Sprintf("the ensemble formed a quorum (leader: member %d); from now on no member bootstraps from an empty volume", obs.Leader))
		if err := r.Status().Update(ctx, &c); err != nil {
			return ctrl.Result{}, err
		}
		obs.Bootstrapped = true
		if err := r.ensureMembers(ctx, &c, obs); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{Requeue: true}, nil
	}

	d := Desired{Voters: c.Spec.Replicas, Observers: c.Spec.Observers, ObserverBase: ObserverBase}
	var step Step
	if c.Spec.Paused {
		step = Step{Kind: Wait, Reason: v1alpha1.ReasonPaused, Message: "reconciliation paused (spec.paused)"}
	} else {
		step = Next(d, obs)
	}
	logger.V(1).Info("plan", "step", step.String())
	requeue, err := r.execute(ctx, &c, obs, password, step)
	if err != nil {
		r.event(&c, true, step.Reason, step.Kind.String(), fmt.Sprintf("%s failed: %v", step.Message, err))
		logger.Info("step failed", "step", step.String(), "err", err)
		requeue = 5 * time.Second
	}
	r.setStatus(&c, obs, step)
	if err := r.Status().Update(ctx, &c); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

func (r *ClusterReconciler) fail(ctx context.Context, c *v1alpha1.PaddockCluster, what string, err error) (ctrl.Result, error) {
	r.setConditions(c, Step{Kind: Refuse, Reason: what + "Failed", Message: err.Error(), Degraded: true}, nil)
	if uerr := r.Status().Update(ctx, c); uerr != nil {
		log.FromContext(ctx).Info("status update failed", "err", uerr)
	}
	return ctrl.Result{}, err
}

// ensureAuth returns the super user's password and digest, creating the
// operator's Secret <name>-auth (generated password unless the spec names
// one; the digest the servers read).
func (r *ClusterReconciler) ensureAuth(ctx context.Context, c *v1alpha1.PaddockCluster) (password, digest string, err error) {
	var sec corev1.Secret
	err = r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: authSecretName(c)}, &sec)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", "", err
	}
	exists := err == nil
	if su := c.Spec.Superuser; su != nil {
		var user corev1.Secret
		if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: su.SecretName}, &user); err != nil {
			return "", "", fmt.Errorf("superuser secret %s: %w", su.SecretName, err)
		}
		key := su.Key
		if key == "" {
			key = "password"
		}
		password = string(user.Data[key])
		if password == "" {
			return "", "", fmt.Errorf("superuser secret %s has no key %q", su.SecretName, key)
		}
	} else if exists && len(sec.Data["password"]) > 0 {
		password = string(sec.Data["password"])
	} else {
		b := make([]byte, 24)
		rand.Read(b)
		password = hex.EncodeToString(b)
	}
	digest = SuperDigest(password)
	want := map[string][]byte{"superDigest": []byte(digest)}
	if c.Spec.Superuser == nil {
		want["password"] = []byte(password)
	}
	if !exists {
		sec = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: authSecretName(c), Namespace: c.Namespace, Labels: commonLabels(c)}, Data: want}
		if err := controllerutil.SetControllerReference(c, &sec, r.Scheme); err != nil {
			return "", "", err
		}
		return password, digest, r.Create(ctx, &sec)
	}
	if !equality.Semantic.DeepEqual(sec.Data, want) {
		sec.Data = want
		return password, digest, r.Update(ctx, &sec)
	}
	return password, digest, nil
}

// adminContext carries the cluster's admin-port TLS for the Ensemble's
// calls, from the Secrets: the CA to verify the members with and, unless
// clientAuth is none, the certificate the operator presents.
func (r *ClusterReconciler) adminContext(ctx context.Context, c *v1alpha1.PaddockCluster) (context.Context, error) {
	a := AdminTLSOf(c)
	if a == nil {
		return ctx, nil
	}
	cfg, err := adminTLSConfig(ctx, r.Client, c.Namespace, a)
	if err != nil {
		return ctx, err
	}
	return WithAdminTLS(ctx, cfg), nil
}

func adminTLSConfig(ctx context.Context, cl client.Reader, ns string, a *v1alpha1.AdminTLS) (*tls.Config, error) {
	var sec corev1.Secret
	if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: a.SecretName}, &sec); err != nil {
		return nil, fmt.Errorf("admin TLS secret %s: %w", a.SecretName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(sec.Data["ca.crt"]) {
		return nil, fmt.Errorf("admin TLS secret %s has no usable ca.crt (PEM)", a.SecretName)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if adminClientAuth(a) != "none" {
		cs := sec
		if name := AdminClientSecret(a); name != a.SecretName {
			if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &cs); err != nil {
				return nil, fmt.Errorf("admin client TLS secret %s: %w", name, err)
			}
		}
		pair, err := tls.X509KeyPair(cs.Data["tls.crt"], cs.Data["tls.key"])
		if err != nil {
			return nil, fmt.Errorf("admin client TLS secret %s: %w", cs.Name, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// upsert creates obj or brings the fields mutate sets up to date.
func (r *ClusterReconciler) upsert(ctx context.Context, c *v1alpha1.PaddockCluster, obj client.Object, mutate func(existing client.Object)) error {
	key := client.ObjectKeyFromObject(obj)
	existing := obj.DeepCopyObject().(client.Object)
	err := r.Get(ctx, key, existing)
	if apierrors.IsNotFound(err) {
		if err := controllerutil.SetControllerReference(c, obj, r.Scheme); err != nil {
			return err
		}
		return r.Create(ctx, obj)
	}
	if err != nil {
		return err
	}
	before := existing.DeepCopyObject()
	mutate(existing)
	if equality.Semantic.DeepEqual(before, existing) {
		return nil
	}
	return r.Update(ctx, existing)
}

func (r *ClusterReconciler) ensureBasics(ctx context.Context, c *v1alpha1.PaddockCluster, zooCfg string) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccountName(c), Namespace: c.Namespace, Labels: commonLabels(c)},
		AutomountServiceAccountToken: boolPtr(false)}
	if err := r.upsert(ctx, c, sa, func(client.Object) {}); err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: configMapName(c), Namespace: c.Namespace, Labels: commonLabels(c)},
		Data: map[string]string{"zoo.cfg": zooCfg}}
	if err := r.upsert(ctx, c, cm, func(o client.Object) { o.(*corev1.ConfigMap).Data = cm.Data }); err != nil {
		return err
	}
	hs := HeadlessService(c)
	if err := r.upsert(ctx, c, hs, func(o client.Object) {
		s := o.(*corev1.Service)
		s.Spec.Ports, s.Spec.Selector, s.Spec.PublishNotReadyAddresses = hs.Spec.Ports, hs.Spec.Selector, true
	}); err != nil {
		return err
	}
	cs := ClientService(c)
	if err := r.upsert(ctx, c, cs, func(o client.Object) {
		s := o.(*corev1.Service)
		s.Spec.Ports, s.Spec.Selector, s.Spec.Type = cs.Spec.Ports, cs.Spec.Selector, cs.Spec.Type
		s.Annotations = cs.Annotations
	}); err != nil {
		return err
	}
	if pdb := PDB(c); pdb != nil {
		if err := r.upsert(ctx, c, pdb, func(o client.Object) { o.(*policyv1.PodDisruptionBudget).Spec = pdb.Spec }); err != nil {
			return err
		}
	} else {
		old := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace}}
		if err := r.Delete(ctx, old); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if c.Spec.Metrics.ServiceMonitor {
		if err := r.ensureServiceMonitor(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

var serviceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}

// ensureServiceMonitor creates a ServiceMonitor when the CRD exists (the
// Prometheus operator is installed); otherwise it does nothing.
func (r *ClusterReconciler) ensureServiceMonitor(ctx context.Context, c *v1alpha1.PaddockCluster) error {
	if _, err := r.RESTMapper().RESTMapping(serviceMonitorGVK.GroupKind(), serviceMonitorGVK.Version); err != nil {
		return nil // no Prometheus operator here
	}
	interval := c.Spec.Metrics.Interval
	if interval == "" {
		interval = "30s"
	}
	sm := &unstructured.Unstructured{}
	sm.SetGroupVersionKind(serviceMonitorGVK)
	sm.SetName(c.Name)
	sm.SetNamespace(c.Namespace)
	labels := commonLabels(c)
	maps.Copy(labels, c.Spec.Metrics.Labels)
	sm.SetLabels(labels)
	endpoint := map[string]any{"port": metricsPortName(), "path": "/metrics", "interval": interval}
	if a := AdminTLSOf(c); a != nil {
		// Every member serves the one certificate of the Secret: checking
		// it against member 1's name checks it for all.
		tc := map[string]any{
			"ca":         map[string]any{"secret": map[string]any{"name": a.SecretName, "key": "ca.crt"}},
			"serverName": MemberHost(c, 1),
		}
		if adminClientAuth(a) != "none" {
			tc["cert"] = map[string]any{"secret": map[string]any{"name": AdminClientSecret(a), "key": "tls.crt"}}
			tc["keySecret"] = map[string]any{"name": AdminClientSecret(a), "key": "tls.key"}
		}
		endpoint["scheme"] = "https"
		endpoint["tlsConfig"] = tc
	}
	spec := map[string]any{
		"selector":  map[string]any{"matchLabels": toAny(commonLabels(c))},
		"endpoints": []any{endpoint},
	}
	_ = unstructured.SetNestedField(sm.Object, spec, "spec")
	return r.upsert(ctx, c, sm, func(o client.Object) {
		u := o.(*unstructured.Unstructured)
		_ = unstructured.SetNestedField(u.Object, spec, "spec")
		u.SetLabels(labels)
	})
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func boolPtr(b bool) *bool { return &b }

// ensureMembers writes the members ConfigMap: who the ensemble is (so a
// starting member can reach it) and whether an empty volume joins.
func (r *ClusterReconciler) ensureMembers(ctx context.Context, c *v1alpha1.PaddockCluster, o *Observed) error {
	voters := map[uint64]bool{}
	observers := map[uint64]bool{}
	for id := uint64(1); id <= uint64(max(c.Spec.Replicas, o.VoterSts)); id++ {
		voters[id] = true
	}
	for i := int32(0); i < max(c.Spec.Observers, o.ObserverSts); i++ {
		observers[ObserverBase+uint64(i)] = true
	}
	if o.Config.Known {
		maps.Copy(voters, o.Config.Voters)
		maps.Copy(observers, o.Config.Observers)
	}
	if !o.Bootstrapped {
		// The bootstrap set is exactly the spec: every member must answer
		// "fresh" before any bootstraps.
		voters, observers = map[uint64]bool{}, map[uint64]bool{}
		for id := uint64(1); id <= uint64(c.Spec.Replicas); id++ {
			voters[id] = true
		}
		for i := int32(0); i < c.Spec.Observers; i++ {
			observers[ObserverBase+uint64(i)] = true
		}
	}
	// A voter being added is an observer in the configuration until it
	// is promoted: it stays in the voters' list here (a member may not be
	// listed twice, and the list only serves to reach the ensemble).
	for id := range voters {
		delete(observers, id)
	}
	data := MembersData(c, ids(voters), ids(observers), o.Bootstrapped)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: membersMapName(c), Namespace: c.Namespace, Labels: commonLabels(c)}, Data: data}
	if o.Bootstrapped {
		cm.Annotations = map[string]string{AnnBootstrapped: "true"}
	}
	return r.upsert(ctx, c, cm, func(obj client.Object) {
		e := obj.(*corev1.ConfigMap)
		e.Data = data
		if o.Bootstrapped {
			if e.Annotations == nil {
				e.Annotations = map[string]string{}
			}
			e.Annotations[AnnBootstrapped] = "true"
		}
	})
}

// ensureStatefulSets creates missing StatefulSets and keeps their
// templates current (replicas are left to plan steps once bootstrapped).
func (r *ClusterReconciler) ensureStatefulSets(ctx context.Context, c *v1alpha1.PaddockCluster, o *Observed, v, ob *appsv1.StatefulSet, hash string) (bool, error) {
	created := false
	for _, group := range []struct {
		observer bool
		cur      *appsv1.StatefulSet
		want     int32
	}{{false, v, c.Spec.Replicas}, {true, ob, c.Spec.Observers}} {
		n := group.want
		if o.Bootstrapped {
			// Recreated after a deletion: bring back the members the
			// ensemble has, not the spec's (scaling stays one by one).
			n = 0
			for id := range o.Config.Voters {
				if !group.observer && int32(id) > n {
					n = int32(id)
				}
			}
			for id := range o.Config.Observers {
				if group.observer && int32(id-ObserverBase)+1 > n {
					n = int32(id-ObserverBase) + 1
				}
			}
			if !o.Config.Known {
				n = max(c.Status.Replicas, 1)
				if group.observer {
					n = c.Status.Observers
				}
			}
		}
		desired := StatefulSet(c, group.observer, n, hash)
		if group.cur == nil {
			if group.observer && n == 0 {
				continue
			}
			if err := controllerutil.SetControllerReference(c, desired, r.Scheme); err != nil {
				return false, err
			}
			if err := r.Create(ctx, desired); err != nil {
				return false, err
			}
			r.event(c, false, "Created", "CreateStatefulSet", fmt.Sprintf("created StatefulSet %s with %d member(s)", desired.Name, n))
			created = true
			continue
		}
		cur := group.cur.DeepCopy()
		cur.Spec.Template = desired.Spec.Template
		cur.Spec.PersistentVolumeClaimRetentionPolicy = desired.Spec.PersistentVolumeClaimRetentionPolicy
		cur.Labels = desired.Labels
		if !equality.Semantic.DeepDerivative(desired.Spec.Template, group.cur.Spec.Template) ||
			!equality.Semantic.DeepEqual(cur.Spec.PersistentVolumeClaimRetentionPolicy, group.cur.Spec.PersistentVolumeClaimRetentionPolicy) {
			if err := r.Update(ctx, cur); err != nil {
				return false, err
			}
			r.event(c, false, v1alpha1.ReasonUpgrading, "UpdateStatefulSet", fmt.Sprintf("updated the pod template of %s; members are restarted one at a time, the leader last", cur.Name))
		}
	}
	return created, nil
}

// observe gathers pods, volumes, StatefulSets and the servers' own view.
func (r *ClusterReconciler) observe(ctx context.Context, c *v1alpha1.PaddockCluster) (*Observed, *appsv1.StatefulSet, *appsv1.StatefulSet, error) {
	o := &Observed{
		Members:      map[uint64]*Member{},
		Bootstrapped: c.Status.DataBootstrapped,
		ObserverBase: ObserverBase,
		Ephemeral:    c.Spec.Storage.Ephemeral,
	}
	// The members ConfigMap remembers the bootstrap too, should the status
	// be lost (restored without it, or a stale read).
	var mcm corev1.ConfigMap
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: membersMapName(c)}, &mcm); err == nil &&
		mcm.Annotations[AnnBootstrapped] == "true" {
		o.Bootstrapped = true
	}
	if v, ok := c.Annotations[AnnRebuild]; ok {
		if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil && id > 0 && id <= 254 {
			o.Rebuild = id
		}
	}
	get := func(name string) (*appsv1.StatefulSet, error) {
		var s appsv1.StatefulSet
		err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, &s)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return &s, err
	}
	stsV, err := get(voterStsName(c))
	if err != nil {
		return nil, nil, nil, err
	}
	stsO, err := get(observerStsName(c))
	if err != nil {
		return nil, nil, nil, err
	}
	revision := map[bool]string{}
	if stsV != nil {
		o.StsExists = true
		o.VoterSts = *stsV.Spec.Replicas
		revision[false] = stsV.Status.UpdateRevision
		if stsV.Status.ObservedGeneration < stsV.Generation {
			revision[false] = "" // not yet observed: nothing counts as up to date
		}
	}
	if stsO != nil {
		o.ObserverSts = *stsO.Spec.Replicas
		revision[true] = stsO.Status.UpdateRevision
		if stsO.Status.ObservedGeneration < stsO.Generation {
			revision[true] = ""
		}
	}
	member := func(id uint64) *Member {
		m := o.Members[id]
		if m == nil {
			m = &Member{ID: id, Observer: id >= ObserverBase}
			o.Members[id] = m
		}
		return m
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(selectorLabels(c))); err != nil {
		return nil, nil, nil, err
	}
	now := r.Now()
	for i := range pods.Items {
		p := &pods.Items[i]
		id, err := strconv.ParseUint(p.Labels[LabelPodIndex], 10, 64)
		if err != nil || id == 0 {
			continue
		}
		m := member(id)
		m.PodExists = true
		m.PodTerminating = p.DeletionTimestamp != nil
		rev := revision[id >= ObserverBase]
		m.UpToDate = rev != "" && p.Labels[appsv1.ControllerRevisionHashLabelKey] == rev
		readySince := p.CreationTimestamp.Time
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				m.PodReady = cond.Status == corev1.ConditionTrue
				if cond.LastTransitionTime.After(readySince) {
					readySince = cond.LastTransitionTime.Time
				}
			}
		}
		if !m.PodReady {
			m.UnreadyFor = now.Sub(readySince)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name != containerName {
				continue
			}
			m.PodRunning = cs.State.Running != nil
			if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
				m.CrashLooping = true
			}
			if t := cs.LastTerminationState.Terminated; t != nil && !m.PodRunning {
				m.Refused = refusal(t.Message)
			}
			if t := cs.State.Terminated; t != nil && m.Refused == "" {
				m.Refused = refusal(t.Message)
			}
		}
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := r.List(ctx, &pvcs, client.InNamespace(c.Namespace), client.MatchingLabels(selectorLabels(c))); err != nil {
		return nil, nil, nil, err
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		id, ok := pvcMemberID(c, pvc.Name)
		if !ok {
			continue
		}
		m := member(id)
		if pvc.DeletionTimestamp != nil {
			m.PVCTerminating = true
			continue
		}
		m.PVCExists = true
		m.PVCStale = pvc.Annotations[AnnStale] == "true"
	}

	// Ask every running member about itself, then the ensemble about its
	// configuration (through the members that answer).
	var reachable []string
	for _, id := range o.sortedIDs() {
		m := o.Members[id]
		if !m.PodRunning || m.PodTerminating {
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		info, err := r.Ensemble.Member(mctx, MemberHost(c, id))
		cancel()
		if err != nil {
			continue
		}
		m.Role, m.Zxid = info.Role, info.Zxid
		if info.Role == "leader" {
			o.Leader = id
		}
		if info.Role == "refused" {
			m.EmptyRefused = true
			m.Refused = info.Refusal
			if m.Refused == "" {
				m.Refused = "its data directory is empty but it is still a voter"
			}
		}
		if m.PodReady {
			reachable = append(reachable, MemberHost(c, id))
		}
	}
	if len(reachable) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conf, err := r.Ensemble.Config(cctx, reachable, "")
		cancel()
		if err == nil {
			o.Config = conf
		} else {
			log.FromContext(ctx).V(1).Info("reading /zookeeper/config", "err", err)
		}
	}
	if !o.Config.Known {
		o.Config.Voters, o.Config.Observers = map[uint64]bool{}, map[uint64]bool{}
	}
	r.mu.Lock()
	o.LeaderTransferTried = r.transfers[c.Namespace+"/"+c.Name+"/"+revisionOf(o)]
	r.mu.Unlock()
	return o, stsV, stsO, nil
}

// refusal extracts the server's refusal from a termination message.
func refusal(msg string) string {
	for _, line := range strings.Split(msg, "\n") {
		if i := strings.Index(line, "refusing to"); i >= 0 {
			s := strings.TrimRight(line[i:], `"`)
			if len(s) > 400 {
				s = s[:400] + "…"
			}
			return s
		}
	}
	return ""
}

// pvcMemberID parses data-<pod> into the server id.
func pvcMemberID(c *v1alpha1.PaddockCluster, name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, dataVolume+"-")
	if !ok {
		return 0, false
	}
	for _, prefix := range []string{observerStsName(c) + "-", voterStsName(c) + "-"} {
		if s, ok := strings.CutPrefix(rest, prefix); ok {
			id, err := strconv.ParseUint(s, 10, 64)
			if err == nil && id > 0 && (id >= ObserverBase) == (prefix == observerStsName(c)+"-") {
				return id, true
			}
		}
	}
	return 0, false
}

// execute performs one step; it returns when to look again.
func (r *ClusterReconciler) execute(ctx context.Context, c *v1alpha1.PaddockCluster, o *Observed, password string, s Step) (time.Duration, error) {
	readyHosts := func() []string {
		var out []string
		for _, id := range o.sortedIDs() {
			if o.Members[id].PodReady {
				out = append(out, MemberHost(c, id))
			}
		}
		return out
	}
	action := s.Kind.String()
	switch s.Kind {
	case Steady:
		return 30 * time.Second, nil
	case Wait:
		if s.Degraded {
			return 10 * time.Second, nil
		}
		return 3 * time.Second, nil
	case Refuse:
		if c.Status.Phase != v1alpha1.PhaseDegraded || !conditionHasMessage(c, v1alpha1.ConditionDegraded, s.Message) {
			r.event(c, true, s.Reason, action, s.Message)
		}
		return 15 * time.Second, nil
	case SetReplicas:
		name := voterStsName(c)
		if s.Observer {
			name = observerStsName(c)
		}
		var sts appsv1.StatefulSet
		if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, &sts); err != nil {
			return 0, err
		}
		if s.Replicas < *sts.Spec.Replicas {
			// The volumes of members leaving for good are marked: never
			// reused by a future member of the same ordinal.
			base := uint64(1)
			if s.Observer {
				base = ObserverBase
			}
			for ord := s.Replicas + 1; ord <= *sts.Spec.Replicas; ord++ {
				if err := r.markStale(ctx, c, base+uint64(ord)-1); err != nil {
					return 0, err
				}
			}
		}
		patch := client.MergeFrom(sts.DeepCopy())
		sts.Spec.Replicas = &s.Replicas
		if err := r.Patch(ctx, &sts, patch); err != nil {
			return 0, err
		}
	case AddMember:
		line := fmt.Sprintf("server.%d=%s", s.ID, MemberSpecAs(c, s.ID, s.Learner || s.ID >= ObserverBase))
		if err := r.Ensemble.Reconfig(ctx, readyHosts(), password, []string{line}, nil); err != nil {
			return 0, err
		}
	case RemoveMember:
		if err := r.Ensemble.Reconfig(ctx, readyHosts(), password, nil, []uint64{s.ID}); err != nil {
			return 0, err
		}
	case TransferLeader:
		key := c.Namespace + "/" + c.Name + "/" + revisionOf(o)
		r.mu.Lock()
		if r.transfers == nil {
			r.transfers = map[string]int{}
		}
		r.transfers[key]++
		r.mu.Unlock()
		err := r.Ensemble.TransferLeadership(ctx, MemberHost(c, s.ID), s.Target)
		if errors.Is(err, ErrNoTransfer) {
			r.mu.Lock()
			r.transfers[key] = 99
			r.mu.Unlock()
			r.event(c, true, s.Reason, action, "the leader cannot hand over leadership (server too old); it will be restarted last without a handover")
			return time.Second, nil
		}
		if err != nil {
			return 0, err
		}
	case DeletePod:
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName(c, s.ID), Namespace: c.Namespace}}
		if err := r.Delete(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
	case DeletePVC:
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: PVCName(c, s.ID), Namespace: c.Namespace}}
		if err := r.Delete(ctx, pvc); err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
	case FinishRebuild:
	case StartRebuild:
		patch := client.MergeFrom(c.DeepCopy())
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[AnnRebuild] = strconv.FormatUint(s.ID, 10)
		if err := r.Patch(ctx, c, patch); err != nil {
			return 0, err
		}
		r.event(c, true, s.Reason, action, s.Message)
		return time.Second, nil
	}
	if s.FinishRebuild || s.Kind == FinishRebuild {
		patch := client.MergeFrom(c.DeepCopy())
		delete(c.Annotations, AnnRebuild)
		if err := r.Patch(ctx, c, patch); err != nil {
			return 0, err
		}
	}
	r.event(c, false, s.Reason, action, s.Message)
	return 2 * time.Second, nil
}

func revisionOf(o *Observed) string {
	// the transfer counter is per roll; the revision is not in Observed,
	// so key it by the set of outdated members
	var out []string
	for _, id := range o.sortedIDs() {
		if m := o.Members[id]; m.PodExists && !m.UpToDate {
			out = append(out, strconv.FormatUint(id, 10))
		}
	}
	return strings.Join(out, ",")
}

func (r *ClusterReconciler) markStale(ctx context.Context, c *v1alpha1.PaddockCluster, id uint64) error {
	var pvc corev1.PersistentVolumeClaim
	err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: PVCName(c, id)}, &pvc)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	patch := client.MergeFrom(pvc.DeepCopy())
	if pvc.Annotations == nil {
		pvc.Annotations = map[string]string{}
	}
	pvc.Annotations[AnnStale] = "true"
	return r.Patch(ctx, &pvc, patch)
}

// refusingMember is the first member whose server refuses its volume, or 0.
func refusingMember(o *Observed) uint64 {
	for _, id := range o.sortedIDs() {
		if o.Members[id].Refused != "" {
			return id
		}
	}
	return 0
}

func conditionHasMessage(c *v1alpha1.PaddockCluster, typ, msg string) bool {
	cond := meta.FindStatusCondition(c.Status.Conditions, typ)
	return cond != nil && cond.Message == msg
}

// setStatus writes what was observed and decided.
func (r *ClusterReconciler) setStatus(c *v1alpha1.PaddockCluster, o *Observed, s Step) {
	c.Status.ObservedGeneration = c.Generation
	c.Status.DataBootstrapped = c.Status.DataBootstrapped || o.Bootstrapped
	if o.Config.Known {
		c.Status.Replicas = int32(len(o.Config.Voters))
		c.Status.Observers = int32(len(o.Config.Observers))
		c.Status.ConfigVersion = o.Config.Version
	}
	c.Status.Leader = ""
	if o.Leader != 0 {
		c.Status.Leader = PodName(c, o.Leader)
	}
	var leaderZxid int64
	if l := o.Members[o.Leader]; l != nil {
		leaderZxid = l.Zxid
	}
	c.Status.ReadyReplicas = 0
	c.Status.Members = nil
	for _, id := range o.sortedIDs() {
		m := o.Members[id]
		if !m.PodExists && !o.Config.Has(id) {
			continue
		}
		if m.PodReady {
			c.Status.ReadyReplicas++
		}
		ms := v1alpha1.MemberStatus{
			Name: PodName(c, id), ServerID: int32(id), Role: m.Role, Ready: m.PodReady,
			InConfig: o.Config.Has(id), UpToDate: m.UpToDate, Message: m.Refused,
		}
		if ms.Role == "" {
			ms.Role = "unknown"
		}
		if m.Role != "" {
			ms.Zxid = "0x" + strconv.FormatInt(m.Zxid, 16)
			if leaderZxid > 0 && m.Zxid < leaderZxid {
				ms.Lag = leaderZxid - m.Zxid
			}
		}
		if !m.PodExists {
			ms.Message = "no pod"
		} else if m.CrashLooping && ms.Message == "" {
			ms.Message = "crash-looping"
		}
		c.Status.Members = append(c.Status.Members, ms)
	}
	r.setConditions(c, s, o)
}

func (r *ClusterReconciler) setConditions(c *v1alpha1.PaddockCluster, s Step, o *Observed) {
	gen := c.Generation
	set := func(typ string, ok bool, reason, msg string) {
		st := metav1.ConditionFalse
		if ok {
			st = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
	// Available: a leader and a ready majority of the voters.
	if o != nil {
		readyVoters := o.readyIn(o.Config.Voters, 0)
		switch {
		case !o.Config.Known || len(o.Config.Voters) == 0:
			set(v1alpha1.ConditionAvailable, false, v1alpha1.ReasonNoQuorum, "the ensemble does not answer with a configuration (no quorum)")
		case o.Leader == 0:
			set(v1alpha1.ConditionAvailable, false, v1alpha1.ReasonNoLeader, "no member reports being the leader")
		case readyVoters < Quorum(len(o.Config.Voters)):
			set(v1alpha1.ConditionAvailable, false, v1alpha1.ReasonNoQuorum,
				fmt.Sprintf("%d of %d voters ready; quorum is %d", readyVoters, len(o.Config.Voters), Quorum(len(o.Config.Voters))))
		default:
			set(v1alpha1.ConditionAvailable, true, v1alpha1.ReasonQuorum,
				fmt.Sprintf("leader %s, %d of %d voters ready", PodName(c, o.Leader), readyVoters, len(o.Config.Voters)))
		}
	}
	progressing := s.Kind != Steady && !s.Degraded && s.Kind != Refuse
	if progressing {
		set(v1alpha1.ConditionProgressing, true, s.Reason, s.Message)
	} else {
		set(v1alpha1.ConditionProgressing, false, v1alpha1.ReasonStable, "no change in progress")
	}
	degraded := s.Degraded
	switch {
	case s.Degraded:
		set(v1alpha1.ConditionDegraded, true, s.Reason, s.Message)
	case o != nil && refusingMember(o) != 0:
		// A member refusing its volume stays a problem while the
		// operator rebuilds it.
		id := refusingMember(o)
		degraded = true
		set(v1alpha1.ConditionDegraded, true, v1alpha1.ReasonMemberRefused,
			fmt.Sprintf("member %d refuses to take part: %s", id, o.Members[id].Refused))
	default:
		set(v1alpha1.ConditionDegraded, false, v1alpha1.ReasonAllHealthy, "no problem found")
	}
	// Phase, from the most pressing fact.
	avail := meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionAvailable)
	switch {
	case s.Reason == v1alpha1.ReasonInvalidSpec || s.Reason == v1alpha1.ReasonDataLost:
		c.Status.Phase = v1alpha1.PhaseFailed
	case s.Reason == v1alpha1.ReasonRestoring:
		c.Status.Phase = v1alpha1.PhaseRestoring
	case !c.Status.DataBootstrapped:
		c.Status.Phase = v1alpha1.PhaseBootstrap
	case degraded || !avail:
		c.Status.Phase = v1alpha1.PhaseDegraded
	case s.Reason == v1alpha1.ReasonScalingUp:
		c.Status.Phase = v1alpha1.PhaseScalingUp
	case s.Reason == v1alpha1.ReasonScalingDown:
		c.Status.Phase = v1alpha1.PhaseScalingDown
	case s.Reason == v1alpha1.ReasonUpgrading:
		c.Status.Phase = v1alpha1.PhaseUpgrading
	default:
		c.Status.Phase = v1alpha1.PhaseRunning
	}
}
