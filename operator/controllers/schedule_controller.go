package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	// The operator's image has no zoneinfo: spec.backup.timeZone needs
	// the database compiled in.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/paddockhq/paddock/operator/api/v1alpha1"
)

// Labels and annotations of scheduled backups.
const (
	// LabelSchedule marks a PaddockBackup (and its prune Job) as made by
	// the named cluster's spec.backup schedule.
	LabelSchedule = "paddock.dev/schedule"
	// AnnScheduledAt is the schedule time a PaddockBackup was made for
	// (RFC 3339, UTC).
	AnnScheduledAt = "paddock.dev/scheduled-at"
	// DefaultKeep is spec.backup.keep's default.
	DefaultKeep = 7
)

// ScheduleReconciler runs spec.backup: a PaddockBackup at every time of
// the schedule, as the CronJob controller makes Jobs (the latest missed
// time only, after a downtime; none while the previous one still runs),
// and pruning of the completed ones beyond spec.backup.keep. The backups
// themselves are the PaddockBackup controller's.
//
// Scheduled PaddockBackups are found by label, not owned by the cluster:
// a backup must outlive the cluster it restores.
type ScheduleReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Clock tells the time and times the wake-ups (its queue waits on it),
	// so tests step a fake clock instead of waiting for the schedule.
	Clock clock.WithTicker
}

// +kubebuilder:rbac:groups=paddock.dev,resources=paddockbackups,verbs=create;delete

// SetupWithManager registers the reconciler.
func (r *ScheduleReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	byLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		name := o.GetLabels()[LabelSchedule]
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		// The cluster's status changes all the time; only its spec
		// matters here.
		For(&v1alpha1.PaddockCluster{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.PaddockBackup{}, byLabel).
		Watches(&batchv1.Job{}, byLabel).
		Named("paddockbackupschedule").
		WithOptions(controller.Options{
			NewQueue: func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
				return workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{
					Name: name, Clock: r.Clock,
				})
			},
		}).
		Complete(r)
}

func (r *ScheduleReconciler) event(c *v1alpha1.PaddockCluster, warning bool, reason, action, msg string) {
	if r.Recorder == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(c, nil, typ, reason, action, "%s", msg)
}

// ParseSchedule parses spec.backup's schedule in its time zone, with the
// CronJob syntax (robfig/cron's standard parser, which the CronJob
// controller uses too).
func ParseSchedule(b *v1alpha1.BackupSchedule) (cron.Schedule, error) {
	s := strings.TrimSpace(b.Schedule)
	if strings.Contains(s, "TZ=") {
		return nil, fmt.Errorf("schedule %q: give the time zone in spec.backup.timeZone, not in the schedule", b.Schedule)
	}
	tz := b.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return nil, fmt.Errorf("timeZone %q: %v", b.TimeZone, err)
	}
	sched, err := cron.ParseStandard("CRON_TZ=" + tz + " " + s)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v", b.Schedule, err)
	}
	return sched, nil
}

// MostRecent is the latest time of s in (after, now], or the zero time.
// Only the latest matters (missed times are not made up one by one); it is
// looked for in growing windows before now, so that an old after (an
// operator down for months, an every-minute schedule) costs little.
func MostRecent(s cron.Schedule, after, now time.Time) time.Time {
	for _, w := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 32 * 24 * time.Hour, 400 * 24 * time.Hour, 0} {
		start := after
		if w > 0 && now.Add(-w).After(after) {
			start = now.Add(-w)
		}
		var last time.Time
		for t, i := start, 0; i < 100000; i++ {
			n := s.Next(t)
			if n.IsZero() || n.After(now) {
				break
			}
			last, t = n, n
		}
		if !last.IsZero() || !start.After(after) {
			return last
		}
	}
	return time.Time{}
}

// scheduledAt is when a scheduled backup was due.
func scheduledAt(b *v1alpha1.PaddockBackup) time.Time {
	if t, err := time.Parse(time.RFC3339, b.Annotations[AnnScheduledAt]); err == nil {
		return t
	}
	return b.CreationTimestamp.Time
}

// ScheduledBackupName is the PaddockBackup made for the schedule time t.
func ScheduledBackupName(c *v1alpha1.PaddockCluster, t time.Time) string {
	return fmt.Sprintf("%s-%s", c.Name, t.UTC().Format("20060102-1504"))
}

func backupActive(b *v1alpha1.PaddockBackup) bool {
	switch b.Status.Phase {
	case "", v1alpha1.BackupPending, v1alpha1.BackupRunning:
		return b.DeletionTimestamp.IsZero()
	}
	return false
}

// Reconcile creates the backup that is due, prunes, and wakes up at the
// next schedule time.
func (r *ScheduleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	var c v1alpha1.PaddockCluster
	if err := r.Get(ctx, req.NamespacedName, &c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	orig := c.DeepCopy()
	writeStatus := func() error {
		if equality.Semantic.DeepEqual(orig.Status.Backup, c.Status.Backup) {
			return nil
		}
		// A merge patch of status.backup alone: the cluster controller
		// owns the rest of the status.
		return r.Status().Patch(ctx, &c, client.MergeFrom(orig))
	}
	bs := c.Spec.Backup
	if bs == nil {
		c.Status.Backup = nil
		return ctrl.Result{}, writeStatus()
	}
	now := r.Clock.Now()
	st := &v1alpha1.BackupScheduleStatus{}
	if c.Status.Backup != nil {
		st = c.Status.Backup.DeepCopy()
	}
	c.Status.Backup = st

	var list v1alpha1.PaddockBackupList
	if err := r.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{LabelSchedule: c.Name}); err != nil {
		return ctrl.Result{}, err
	}
	backups := make([]*v1alpha1.PaddockBackup, 0, len(list.Items))
	for i := range list.Items {
		backups = append(backups, &list.Items[i])
	}
	slices.SortFunc(backups, func(a, b *v1alpha1.PaddockBackup) int { return scheduledAt(a).Compare(scheduledAt(b)) })
	st.Active = ""
	for _, b := range backups {
		if backupActive(b) {
			st.Active = b.Name
		}
		if b.Status.Phase == v1alpha1.BackupCompleted {
			st.LastSuccessfulBackup = b.Name
			st.LastSuccessfulTime = b.Status.CompletionTime
		}
	}

	sched, err := ParseSchedule(bs)
	if err != nil {
		if st.Message != err.Error() {
			r.event(&c, true, "InvalidSchedule", "Schedule", err.Error())
		}
		st.Message, st.NextScheduleTime = err.Error(), nil
		return ctrl.Result{}, writeStatus() // a spec change brings it back
	}
	st.Message = ""

	// The last time a backup was due: the status, or the newest scheduled
	// backup should the status have been lost; none before the cluster.
	last := c.CreationTimestamp.Time
	if st.LastScheduleTime != nil && st.LastScheduleTime.After(last) {
		last = st.LastScheduleTime.Time
	}
	if n := len(backups); n > 0 && scheduledAt(backups[n-1]).After(last) {
		last = scheduledAt(backups[n-1])
	}
	if due := MostRecent(sched, last, now); !due.IsZero() && !bs.Suspend {
		st.LastScheduleTime = &metav1.Time{Time: due}
		if st.Active != "" {
			r.event(&c, true, "BackupSkipped", "Schedule", fmt.Sprintf("the backup due at %s is skipped: %s is still running",
				due.UTC().Format(time.RFC3339), st.Active))
		} else {
			b := &v1alpha1.PaddockBackup{
				ObjectMeta: metav1.ObjectMeta{
					Name: ScheduledBackupName(&c, due), Namespace: c.Namespace,
					Labels:      map[string]string{LabelSchedule: c.Name, LabelInstance: c.Name, LabelManagedBy: "paddock-operator"},
					Annotations: map[string]string{AnnScheduledAt: due.UTC().Format(time.RFC3339)},
				},
				Spec: v1alpha1.PaddockBackupSpec{ClusterName: c.Name, Storage: bs.Storage},
			}
			// The name is the schedule time: a pass that did not see its
			// own write yet finds the backup already there.
			err := r.Create(ctx, b)
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return ctrl.Result{}, err
			}
			st.Active = b.Name
			if err == nil {
				r.event(&c, false, "BackupScheduled", "Schedule", fmt.Sprintf("created PaddockBackup %s (due at %s)", b.Name, due.UTC().Format(time.RFC3339)))
			}
		}
	}
	var wake time.Duration
	if next := sched.Next(now); !next.IsZero() {
		st.NextScheduleTime = &metav1.Time{Time: next}
		wake = next.Sub(now)
	}
	if bs.Suspend {
		st.NextScheduleTime = nil
	}
	// Pruning waits while a backup runs: the backup volume may be
	// ReadWriteOnce, and its writer comes first.
	if st.Active == "" {
		if err := r.prune(ctx, &c, backups); err != nil {
			_ = writeStatus()
			return ctrl.Result{}, err
		}
	}
	if err := writeStatus(); err != nil {
		return ctrl.Result{}, err
	}
	if wake <= 0 || bs.Suspend {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: wake}, nil
}

// prune removes the scheduled backups beyond spec.backup.keep (the oldest
// completed ones) and failed ones older than the newest completed, one at
// a time: with OnPrune=Delete a Job deletes the snapshot file first, and
// the PaddockBackup (and with it the Job) is deleted once it succeeded. A
// backup that a cluster is still being restored from is kept.
func (r *ScheduleReconciler) prune(ctx context.Context, c *v1alpha1.PaddockCluster, backups []*v1alpha1.PaddockBackup) error {
	keep := int(c.Spec.Backup.Keep)
	if keep <= 0 {
		keep = DefaultKeep
	}
	var completed []*v1alpha1.PaddockBackup // newest first
	for i := len(backups) - 1; i >= 0; i-- {
		if backups[i].Status.Phase == v1alpha1.BackupCompleted {
			completed = append(completed, backups[i])
		}
	}
	victim := map[string]bool{}
	if len(completed) > keep {
		for _, b := range completed[keep:] {
			victim[b.Name] = true
		}
	}
	if len(completed) > 0 {
		newest := scheduledAt(completed[0])
		for _, b := range backups {
			if b.Status.Phase == v1alpha1.BackupFailed && scheduledAt(b).Before(newest) {
				victim[b.Name] = true
			}
		}
	}
	if len(victim) == 0 {
		return nil
	}
	var clusters v1alpha1.PaddockClusterList
	if err := r.List(ctx, &clusters, client.InNamespace(c.Namespace)); err != nil {
		return err
	}
	for _, other := range clusters.Items {
		if rf := other.Spec.RestoreFrom; rf != nil && other.Status.RestoredFrom == "" {
			delete(victim, rf.BackupName)
		}
	}
	for _, b := range backups { // oldest first
		if !victim[b.Name] || !b.DeletionTimestamp.IsZero() {
			continue
		}
		done, err := r.pruneOne(ctx, c, b)
		if err != nil || !done {
			return err
		}
	}
	return nil
}

func (r *ScheduleReconciler) pruneOne(ctx context.Context, c *v1alpha1.PaddockCluster, b *v1alpha1.PaddockBackup) (bool, error) {
	st := c.Status.Backup
	del := func(how string) (bool, error) {
		if err := r.Delete(ctx, b); err != nil && !apierrors.IsNotFound(err) {
			return false, err
		}
		r.event(c, false, "BackupPruned", "Prune", fmt.Sprintf("deleted PaddockBackup %s (keep %d)%s", b.Name, max(c.Spec.Backup.Keep, 1), how))
		return true, nil
	}
	if c.Spec.Backup.OnPrune == v1alpha1.ReclaimRetain || b.Status.Path == "" || b.Status.ClaimName == "" {
		return del("")
	}
	var job batchv1.Job
	name := b.Name + "-prune"
	err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: name}, &job)
	if apierrors.IsNotFound(err) {
		j := pruneJob(c, b, name)
		if err := controllerutil.SetControllerReference(b, j, r.Scheme); err != nil {
			return false, err
		}
		if err := r.Create(ctx, j); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, err
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch {
	case job.Status.Succeeded > 0:
		return del(fmt.Sprintf(" and its snapshot %s:%s", b.Status.ClaimName, b.Status.Path))
	case jobFailed(&job):
		msg := fmt.Sprintf("pruning %s failed; see `kubectl logs job/%s` (delete the Job to retry)", b.Name, name)
		if st.Message != msg {
			r.event(c, true, "PruneFailed", "Prune", msg)
		}
		st.Message = msg
	}
	return false, nil
}

// pruneJob deletes a backup's snapshot file (and its .zxid and any
// .partial) from the backup volume, in the cluster's image.
func pruneJob(c *v1alpha1.PaddockCluster, b *v1alpha1.PaddockBackup, name string) *batchv1.Job {
	labels := commonLabels(c)
	labels[LabelSchedule] = c.Name
	image := b.Status.Image
	if image == "" {
		image = Image(c)
	}
	return toolJob(c, name, labels, "paddock-prune", 3, corev1.Container{
		Name:         "prune",
		Image:        image,
		Args:         []string{"operator", "prune", "--file", backupMount + "/" + b.Status.Path},
		VolumeMounts: []corev1.VolumeMount{{Name: "backup", MountPath: backupMount}},
	}, []corev1.Volume{{Name: "backup", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: b.Status.ClaimName}}}})
}
