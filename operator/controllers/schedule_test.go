package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/paddockhq/paddock/operator"
	"github.com/paddockhq/paddock/operator/api/v1alpha1"
	"github.com/paddockhq/paddock/operator/controllers"
)

// TestMostRecent: the latest schedule time in (after, now], in the
// schedule's time zone, as the CronJob controller picks the one run to
// make after missed ones.
func TestMostRecent(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		schedule, tz string
		after, now   string
		want         string // "" = none due
	}{
		{"0 * * * *", "", "2026-12-07T15:10:00Z", "2026-12-07T15:59:59Z", ""},
		{"0 * * * *", "", "2026-12-07T15:10:00Z", "2026-12-07T16:00:00Z", "2026-12-07T16:00:00Z"},
		{"0 * * * *", "", "2026-12-07T16:00:00Z", "2026-12-07T16:00:00Z", ""},                     // already done
		{"0 * * * *", "", "2026-12-07T16:00:00Z", "2026-12-07T21:10:00Z", "2026-12-07T21:00:00Z"}, // five missed: the latest
		{"*/5 * * * *", "", "2025-01-01T00:00:00Z", "2026-12-07T21:12:00Z", "2026-12-07T21:10:00Z"},
		{"@daily", "", "2026-12-01T00:00:00Z", "2026-12-07T21:12:00Z", "2026-12-07T00:00:00Z"},
		{"0 3 * * *", "Europe/Paris", "2026-12-06T12:00:00Z", "2026-12-07T02:30:00Z", "2026-12-07T02:00:00Z"},
		{"0 3 * * *", "Europe/Paris", "2026-12-06T12:00:00Z", "2026-12-07T01:59:00Z", ""},
		{"0 0 1 1 *", "", "2020-01-01T00:00:00Z", "2026-12-07T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"@every 6h", "", "2026-12-07T00:00:00Z", "2026-12-07T13:00:00Z", "2026-12-07T12:00:00Z"},
	} {
		s, err := controllers.ParseSchedule(&v1alpha1.BackupSchedule{Schedule: tc.schedule, TimeZone: tc.tz})
		if err != nil {
			t.Fatalf("%s: %v", tc.schedule, err)
		}
		got := controllers.MostRecent(s, at(tc.after), at(tc.now))
		if tc.want == "" {
			if !got.IsZero() {
				t.Errorf("%s %s (%s, %s]: got %s, want none", tc.schedule, tc.tz, tc.after, tc.now, got)
			}
			continue
		}
		if !got.Equal(at(tc.want)) {
			t.Errorf("%s %s (%s, %s]: got %s, want %s", tc.schedule, tc.tz, tc.after, tc.now, got, tc.want)
		}
	}
	for _, bad := range []v1alpha1.BackupSchedule{
		{Schedule: "61 * * * *"},
		{Schedule: "* * * *"},
		{Schedule: "CRON_TZ=UTC 0 * * * *"},
		{Schedule: "0 * * * *", TimeZone: "Mars/Olympus"},
	} {
		if _, err := controllers.ParseSchedule(&bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// completeJob plays the Job controller: the Job succeeded.
func completeJob(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	ctx := context.Background()
	var job batchv1.Job
	eventually(t, "Job "+name, func() (bool, string) {
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &job)
		return err == nil, fmt.Sprint(err)
	})
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(&job), &job); err != nil {
			return err
		}
		now := metav1.Now()
		job.Status = batchv1.JobStatus{
			StartTime: &now, CompletionTime: &now, Succeeded: 1,
			Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
			},
		}
		return c.Status().Update(ctx, &job)
	})
	if err != nil {
		t.Fatalf("completing Job %s: %v", name, err)
	}
}

// TestBackupSchedule: spec.backup makes a PaddockBackup at each schedule
// time, skips one while the previous still runs, makes only the latest
// after missed times, reports the last schedule time and the last
// successful backup, and prunes beyond keep (a Job deletes the snapshot
// file, then the PaddockBackup goes). The clock is a fake one the test
// steps: the operator's schedule queue waits on it, so no test waits for
// wall time to pass. The Job controller and kubelet are played by the test
// (envtest runs neither).
func TestBackupSchedule(t *testing.T) {
	ens := &fakeEnsemble{members: map[string]controllers.MemberInfo{}}
	// Half a minute past the current minute: no schedule time lies
	// between the cluster's creation and the fake now.
	clk := clocktesting.NewFakeClock(time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second))
	c := startEnv(t, ens, func(o *operator.Options) { o.Clock = clk })
	ctx := context.Background()
	ns := "zk-backups"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	pc := &v1alpha1.PaddockCluster{ObjectMeta: metav1.ObjectMeta{Name: "zk", Namespace: ns}, Spec: v1alpha1.PaddockClusterSpec{
		Replicas: 3,
		Backup:   &v1alpha1.BackupSchedule{Schedule: "0 * * * *", Keep: 2},
	}}
	if err := c.Create(ctx, pc); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(pc)
	var sts appsv1.StatefulSet
	eventually(t, "StatefulSet", func() (bool, string) {
		err := c.Get(ctx, key, &sts)
		return err == nil, fmt.Sprint(err)
	})
	mustGet(t, c, ns, "zk", pc)
	setStsStatus(t, c, &sts, "rev1")
	makePods(t, c, pc, "rev1", map[uint64]bool{1: true, 2: true, 3: true})
	ens.set(func(f *fakeEnsemble) {
		for id, role := range map[uint64]string{1: "leader", 2: "follower", 3: "follower"} {
			f.members[controllers.MemberHost(pc, id)] = controllers.MemberInfo{Role: role, Zxid: 0x100000010}
		}
		f.conf = controllers.Membership{Known: true, Voters: map[uint64]bool{1: true, 2: true, 3: true}, Observers: map[uint64]bool{}}
	})
	next := clk.Now().Truncate(time.Hour).Add(time.Hour)
	eventually(t, "Running, next backup at the next hour", func() (bool, string) {
		c.Get(ctx, key, pc)
		b := pc.Status.Backup
		return pc.Status.Phase == v1alpha1.PhaseRunning && b != nil && b.NextScheduleTime != nil && b.NextScheduleTime.Time.Equal(next) &&
			b.LastScheduleTime == nil, fmt.Sprintf("phase %s, backup %+v", pc.Status.Phase, b)
	})
	scheduled := func() []string {
		var l v1alpha1.PaddockBackupList
		if err := c.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{controllers.LabelSchedule: "zk"}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range l.Items {
			names = append(names, b.Name)
		}
		slices.Sort(names)
		return names
	}
	// step moves the clock to t and waits for the backup due at t.
	step := func(to time.Time) *v1alpha1.PaddockBackup {
		t.Helper()
		clk.SetTime(to)
		name := controllers.ScheduledBackupName(pc, to)
		var b v1alpha1.PaddockBackup
		eventually(t, "backup "+name, func() (bool, string) {
			err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &b)
			c.Get(ctx, key, pc)
			st := pc.Status.Backup
			return err == nil && st.LastScheduleTime != nil && st.LastScheduleTime.Time.Equal(to) && st.Active == name,
				fmt.Sprintf("%v; status %+v; backups %v", err, st, scheduled())
		})
		if b.Spec.ClusterName != "zk" || b.Annotations[controllers.AnnScheduledAt] != to.UTC().Format(time.RFC3339) || len(b.OwnerReferences) != 0 {
			t.Errorf("backup %s: spec %+v, annotations %v, owners %v", name, b.Spec, b.Annotations, b.OwnerReferences)
		}
		return &b
	}
	// finish plays the backup Job to success and waits for the status.
	finish := func(b *v1alpha1.PaddockBackup) {
		t.Helper()
		completeJob(t, c, ns, b.Name+"-backup")
		eventually(t, b.Name+" completed and reported", func() (bool, string) {
			c.Get(ctx, client.ObjectKeyFromObject(b), b)
			c.Get(ctx, key, pc)
			st := pc.Status.Backup
			return b.Status.Phase == v1alpha1.BackupCompleted && st.LastSuccessfulBackup == b.Name && st.LastSuccessfulTime != nil && st.Active == "",
				fmt.Sprintf("phase %s; status %+v", b.Status.Phase, st)
		})
	}

	t1 := next
	b1 := step(t1)
	if b1.Status.Phase == v1alpha1.BackupCompleted {
		t.Fatal("completed before its Job ran")
	}
	finish(b1)

	// t2's backup still runs at t3: t3's is skipped, not stacked.
	t2 := t1.Add(time.Hour)
	b2 := step(t2)
	t3 := t2.Add(time.Hour)
	clk.SetTime(t3)
	eventually(t, "t3 skipped", func() (bool, string) {
		c.Get(ctx, key, pc)
		st := pc.Status.Backup
		return st.LastScheduleTime.Time.Equal(t3) && st.Active == b2.Name && st.NextScheduleTime.Time.Equal(t3.Add(time.Hour)),
			fmt.Sprintf("status %+v", st)
	})
	if got := scheduled(); len(got) != 2 {
		t.Fatalf("backups after a skipped time: %v", got)
	}
	eventually(t, "a BackupSkipped event", func() (bool, string) {
		var evs eventsv1.EventList
		c.List(ctx, &evs, client.InNamespace(ns))
		for _, e := range evs.Items {
			if e.Reason == "BackupSkipped" && strings.Contains(e.Note, b2.Name) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs.Items))
	})
	finish(b2)

	// A third completed backup: keep 2 prunes the oldest, its snapshot
	// file first (a Job in the cluster's image on the backup claim).
	t4 := t3.Add(time.Hour)
	b4 := step(t4)
	if got := scheduled(); len(got) != 3 {
		t.Fatalf("backups: %v", got)
	}
	finish(b4)
	var prune batchv1.Job
	eventually(t, "prune Job for "+b1.Name, func() (bool, string) {
		err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: b1.Name + "-prune"}, &prune)
		return err == nil, fmt.Sprint(err)
	})
	ctr := prune.Spec.Template.Spec.Containers[0]
	if got := strings.Join(ctr.Args, " "); got != "operator prune --file /backup/"+b1.Status.Path ||
		prune.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "zk-backups" || ctr.Image != "paddock:test" {
		t.Errorf("prune Job: args %q, volumes %+v, image %s", got, prune.Spec.Template.Spec.Volumes, ctr.Image)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(b1), b1); err != nil {
		t.Fatalf("%s deleted before its file: %v", b1.Name, err)
	}
	completeJob(t, c, ns, prune.Name)
	eventually(t, b1.Name+" pruned", func() (bool, string) {
		err := c.Get(ctx, client.ObjectKeyFromObject(b1), b1)
		return apierrors.IsNotFound(err) || (err == nil && b1.DeletionTimestamp != nil), fmt.Sprint(err)
	})
	if got, want := scheduled(), []string{b2.Name, b4.Name}; !slices.Equal(got, want) {
		t.Errorf("backups after pruning: %v, want %v", got, want)
	}

	// The operator was "down" for five hours and ten minutes: one backup,
	// for the latest time missed, not five.
	t9 := t4.Add(5 * time.Hour)
	clk.SetTime(t9.Add(10 * time.Minute))
	name := controllers.ScheduledBackupName(pc, t9)
	eventually(t, "one backup for the latest missed time", func() (bool, string) {
		c.Get(ctx, key, pc)
		got := scheduled()
		return slices.Contains(got, name) && pc.Status.Backup.LastScheduleTime.Time.Equal(t9), fmt.Sprintf("%v, status %+v", got, pc.Status.Backup)
	})
	for _, n := range scheduled() {
		if n != name && n != b2.Name && n != b4.Name && n != b1.Name {
			t.Errorf("unexpected backup %s (made up a missed time)", n)
		}
	}
}
