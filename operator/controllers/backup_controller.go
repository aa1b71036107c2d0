package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/paddockhq/paddock/operator/api/v1alpha1"
)

const backupMount = "/backup"

// BackupReconciler runs PaddockBackups: a Job that downloads a consistent
// snapshot from the cluster's leader into a volume.
type BackupReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Now      func() time.Time
}

// SetupWithManager registers the reconciler.
func (r *BackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.PaddockBackup{}).
		Owns(&batchv1.Job{}).
		Named("paddockbackup").
		Complete(r)
}

// Reconcile drives one backup to Completed or Failed.
func (r *BackupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var b v1alpha1.PaddockBackup
	if err := r.Get(ctx, req.NamespacedName, &b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if b.Status.Phase == v1alpha1.BackupCompleted || b.Status.Phase == v1alpha1.BackupFailed || !b.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	fail := func(msg string) (ctrl.Result, error) {
		b.Status.Phase = v1alpha1.BackupFailed
		b.Status.Message = msg
		meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: "Complete", Status: metav1.ConditionFalse, Reason: "Failed", Message: msg})
		if r.Recorder != nil {
			r.Recorder.Eventf(&b, nil, corev1.EventTypeWarning, "BackupFailed", "Backup", "%s", msg)
		}
		return ctrl.Result{}, r.Status().Update(ctx, &b)
	}
	var c v1alpha1.PaddockCluster
	if err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.ClusterName}, &c); err != nil {
		if apierrors.IsNotFound(err) {
			return fail(fmt.Sprintf("PaddockCluster %s not found", b.Spec.ClusterName))
		}
		return ctrl.Result{}, err
	}
	if b.Status.Phase == "" {
		now := metav1.NewTime(r.Now())
		b.Status.Phase = v1alpha1.BackupPending
		b.Status.StartTime = &now
		b.Status.ClaimName = b.Spec.Storage.ClaimName
		if b.Status.ClaimName == "" {
			b.Status.ClaimName = c.Name + "-backups"
		}
		b.Status.Path = fmt.Sprintf("%s/%s-%s.jsonl", c.Name, b.Name, r.Now().UTC().Format("20060102T150405Z"))
		b.Status.ClusterID = c.Status.ClusterID
		b.Status.Image = Image(&c)
		b.Status.Job = b.Name + "-backup"
		return ctrl.Result{Requeue: true}, r.Status().Update(ctx, &b)
	}
	if b.Spec.Storage.ClaimName == "" {
		if err := r.ensureClaim(ctx, &b); err != nil {
			return ctrl.Result{}, err
		}
	}
	var job batchv1.Job
	err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Status.Job}, &job)
	if apierrors.IsNotFound(err) {
		leader := leaderID(&c)
		if leader == 0 {
			meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: "Complete", Status: metav1.ConditionFalse,
				Reason: "WaitingForLeader", Message: "the cluster has no leader to take the snapshot from"})
			return ctrl.Result{RequeueAfter: 10 * time.Second}, r.Status().Update(ctx, &b)
		}
		job := r.job(&b, &c, leader)
		if err := controllerutil.SetControllerReference(&b, job, r.Scheme); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, job); err != nil {
			return ctrl.Result{}, err
		}
		b.Status.Phase = v1alpha1.BackupRunning
		if r.Recorder != nil {
			r.Recorder.Eventf(&b, nil, corev1.EventTypeNormal, "BackupStarted", "Backup", "snapshot of %s from member %d to %s:%s",
				c.Name, leader, b.Status.ClaimName, b.Status.Path)
		}
		return ctrl.Result{RequeueAfter: 5 * time.Second}, r.Status().Update(ctx, &b)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case job.Status.Succeeded > 0:
		now := metav1.NewTime(r.Now())
		b.Status.Phase = v1alpha1.BackupCompleted
		b.Status.CompletionTime = &now
		meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{Type: "Complete", Status: metav1.ConditionTrue, Reason: "Completed",
			Message: "snapshot written to " + b.Status.ClaimName + ":" + b.Status.Path})
		if r.Recorder != nil {
			r.Recorder.Eventf(&b, nil, corev1.EventTypeNormal, "BackupCompleted", "Backup", "snapshot written to %s:%s", b.Status.ClaimName, b.Status.Path)
		}
		return ctrl.Result{}, r.Status().Update(ctx, &b)
	case jobFailed(&job):
		return fail("the backup Job failed; see `kubectl logs job/" + job.Name + "`")
	}
	return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
}

func jobFailed(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func leaderID(c *v1alpha1.PaddockCluster) uint64 {
	for _, m := range c.Status.Members {
		if m.Role == "leader" && m.Ready {
			return uint64(m.ServerID)
		}
	}
	return 0
}

func (r *BackupReconciler) ensureClaim(ctx context.Context, b *v1alpha1.PaddockBackup) error {
	var pvc corev1.PersistentVolumeClaim
	err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Status.ClaimName}, &pvc)
	if !apierrors.IsNotFound(err) {
		return err
	}
	size := b.Spec.Storage.Size
	if size.IsZero() {
		size = resource.MustParse("1Gi")
	}
	// Not owned by the backup nor the cluster: backups outlive both.
	pvc = corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: b.Status.ClaimName, Namespace: b.Namespace,
			Labels: map[string]string{LabelName: "paddock-backups", LabelManagedBy: "paddock-operator"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: b.Spec.Storage.StorageClassName,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	return r.Create(ctx, &pvc)
}

// passwordEnv is the super user's password for Jobs, from the Secret the
// cluster uses.
func passwordEnv(c *v1alpha1.PaddockCluster) corev1.EnvVar {
	name, key := authSecretName(c), "password"
	if su := c.Spec.Superuser; su != nil {
		name, key = su.SecretName, su.Key
		if key == "" {
			key = "password"
		}
	}
	return corev1.EnvVar{Name: "PADDOCK_SUPER_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}}}
}

// toolJob is a Job that runs one `paddock operator <tool>` container (a
// backup, restore or prune) in the cluster's namespace: never restarted in
// place, retried backoff times, non-root with a read-only root file system
// and no capabilities, no service-account token (the tools talk to the
// members, not to the API server). component labels its pods.
func toolJob(c *v1alpha1.PaddockCluster, name string, labels map[string]string, component string, backoff int32,
	ctr corev1.Container, volumes []corev1.Volume) *batchv1.Job {
	ctr.SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(backoff),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelName: component, LabelInstance: c.Name}},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532),
						RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					ImagePullSecrets: c.Spec.ImagePullSecrets,
					Containers:       []corev1.Container{ctr},
					Volumes:          volumes,
				},
			},
		},
	}
}

func (r *BackupReconciler) job(b *v1alpha1.PaddockBackup, c *v1alpha1.PaddockCluster, leader uint64) *batchv1.Job {
	args := []string{"operator", "backup",
		"--admin", fmt.Sprintf("%s:%d", MemberHost(c, leader), AdminPort),
		"--out", backupMount + "/" + b.Status.Path}
	mounts := []corev1.VolumeMount{{Name: "backup", MountPath: backupMount}}
	volumes := []corev1.Volume{{Name: "backup", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: b.Status.ClaimName}}}}
	if a := AdminTLSOf(c); a != nil {
		// HTTPS to the leader's admin port, trusting the cluster's CA and
		// presenting the admin client certificate.
		args = append(args, "--admin-tls-ca", AdminTLSDir+"/ca.crt")
		mounts = append(mounts, corev1.VolumeMount{Name: "admin-tls", MountPath: AdminTLSDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "admin-tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: a.SecretName, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}}})
		if adminClientAuth(a) != "none" {
			args = append(args, "--admin-tls-cert", AdminClientTLSDir+"/tls.crt", "--admin-tls-key", AdminClientTLSDir+"/tls.key")
			mounts = append(mounts, corev1.VolumeMount{Name: "admin-client-tls", MountPath: AdminClientTLSDir, ReadOnly: true})
			volumes = append(volumes, corev1.Volume{Name: "admin-client-tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: AdminClientSecret(a), Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "tls.crt"}, {Key: "tls.key", Path: "tls.key"}}}}})
		}
	}
	return toolJob(c, b.Status.Job, commonLabels(c), "paddock-backup", 3, corev1.Container{
		Name: "backup", Image: Image(c), Args: args, Env: []corev1.EnvVar{passwordEnv(c)}, VolumeMounts: mounts,
	}, volumes)
}

// restore seeds the first members' volumes from a completed backup, one
// Job per member (one at a time: the backup volume may be ReadWriteOnce).
// It reports done once every seed Job succeeded, and then records the
// cluster as holding data, so that no member ever bootstraps empty.
func (r *ClusterReconciler) restore(ctx context.Context, c *v1alpha1.PaddockCluster) (bool, error) {
	if c.Status.RestoredFrom != "" {
		return true, nil
	}
	progress := func(msg string) {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonRestoring, Message: msg, ObservedGeneration: c.Generation})
		c.Status.Phase = v1alpha1.PhaseRestoring
	}
	var existing corev1.PodList
	if err := r.List(ctx, &existing, client.InNamespace(c.Namespace), client.MatchingLabels(selectorLabels(c))); err != nil {
		return false, err
	}
	if len(existing.Items) > 0 {
		return false, fmt.Errorf("restoreFrom is set but the cluster already has pods; a backup only seeds a new cluster")
	}
	var b v1alpha1.PaddockBackup
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.RestoreFrom.BackupName}, &b); err != nil {
		return false, fmt.Errorf("backup %s: %w", c.Spec.RestoreFrom.BackupName, err)
	}
	if b.Status.Phase != v1alpha1.BackupCompleted {
		progress(fmt.Sprintf("waiting for PaddockBackup %s to complete (phase %q)", b.Name, b.Status.Phase))
		return false, nil
	}
	if c.Spec.Storage.Ephemeral {
		return false, fmt.Errorf("restoreFrom needs persistent storage")
	}
	var voters []string
	for id := 1; id <= int(c.Spec.Replicas); id++ {
		voters = append(voters, fmt.Sprint(id))
	}
	tmpl := StatefulSet(c, false, c.Spec.Replicas, "").Spec.VolumeClaimTemplates[0]
	for id := uint64(1); id <= uint64(c.Spec.Replicas); id++ {
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: PVCName(c, id), Namespace: c.Namespace, Labels: commonLabels(c),
				Annotations: map[string]string{"paddock.dev/restored-from": b.Name}},
			Spec: tmpl.Spec,
		}
		if err := r.Create(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, err
		}
		name := fmt.Sprintf("%s-restore-%d", c.Name, id)
		var job batchv1.Job
		err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, &job)
		if apierrors.IsNotFound(err) {
			j := restoreJob(c, &b, id, name, strings.Join(voters, ","))
			if err := controllerutil.SetControllerReference(c, j, r.Scheme); err != nil {
				return false, err
			}
			if err := r.Create(ctx, j); err != nil {
				return false, err
			}
			r.event(c, false, v1alpha1.ReasonRestoring, "Restore", fmt.Sprintf("seeding member %d from backup %s (%s:%s)", id, b.Name, b.Status.ClaimName, b.Status.Path))
			progress(fmt.Sprintf("seeding member %d from backup %s", id, b.Name))
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if jobFailed(&job) {
			return false, fmt.Errorf("seeding member %d from backup %s failed; see `kubectl logs job/%s`", id, b.Name, name)
		}
		if job.Status.Succeeded == 0 {
			progress(fmt.Sprintf("seeding member %d from backup %s", id, b.Name))
			return false, nil
		}
	}
	c.Status.RestoredFrom = b.Name
	c.Status.DataBootstrapped = true
	c.Status.Replicas = c.Spec.Replicas
	r.event(c, false, v1alpha1.ReasonRestoring, "Restore", fmt.Sprintf("%d member volume(s) seeded from backup %s; starting the ensemble", c.Spec.Replicas, b.Name))
	return false, nil // the status is written, then the next pass starts the members
}

func restoreJob(c *v1alpha1.PaddockCluster, b *v1alpha1.PaddockBackup, id uint64, name, voters string) *batchv1.Job {
	return toolJob(c, name, commonLabels(c), "paddock-restore", 2, corev1.Container{
		Name:  "restore",
		Image: Image(c),
		Args: []string{"operator", "restore", "--from", backupMount + "/" + b.Status.Path,
			"--data-dir", DataDir, "--voters", voters},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "backup", MountPath: backupMount, ReadOnly: true},
			{Name: dataVolume, MountPath: DataDir},
		},
	}, []corev1.Volume{
		{Name: "backup", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
			ClaimName: b.Status.ClaimName, ReadOnly: true}}},
		{Name: dataVolume, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
			ClaimName: PVCName(c, id)}}},
	})
}
