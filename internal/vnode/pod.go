package vnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// podRT is one pod on the node: its address, directory, volumes and
// containers (each a process tree started through the shim).
type podRT struct {
	p   *Provider
	key string // namespace/name
	uid types.UID
	ip  string
	dir string

	mu       sync.Mutex
	pod      *corev1.Pod // the latest spec and metadata; status is ours
	inits    []*ctrRT
	ctrs     []*ctrRT
	vols     map[string]*volume
	volsOK   bool
	initDone bool
	phase    corev1.PodPhase // terminal phase once every container is done for good
	deleting bool
	grace    time.Duration
	start    metav1.Time
	conds    map[corev1.PodConditionType]corev1.PodCondition
	tokens   map[string]tokenEntry

	ctx    context.Context // canceled when the pod is deleted
	cancel context.CancelFunc
	done   chan struct{} // closed once every process has exited and the pod is forgotten
	dirty  chan struct{} // status changed: tell the pod controller
}

type tokenEntry struct {
	token string
	at    time.Time
}

// ctrRT is one container.
type ctrRT struct {
	pr   *podRT
	init bool
	name string

	// guarded by pr.mu
	spec    corev1.Container
	status  corev1.ContainerStatus
	pid     int
	exited  chan struct{}
	started bool // the startup probe (if any) has succeeded
	ready   bool
	runID   int
}

func (pr *podRT) podCopy() *corev1.Pod {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.pod.DeepCopy()
}

func (pr *podRT) cachedToken(ctx context.Context, p *Provider, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	pr.mu.Lock()
	e, ok := pr.tokens[src.Path]
	pr.mu.Unlock()
	// Renewed at 80% of its life, as the kubelet does (here: of 1h or
	// the requested expiry, whichever is shorter).
	life := time.Duration(ptr.Deref(src.ExpirationSeconds, 3600)) * time.Second
	if ok && time.Since(e.at) < life*8/10 {
		return e.token, nil
	}
	tok, err := p.token(ctx, pod, src)
	if err != nil {
		return "", err
	}
	pr.mu.Lock()
	pr.tokens[src.Path] = tokenEntry{tok, time.Now()}
	pr.mu.Unlock()
	return tok, nil
}

func newPodRT(p *Provider, pod *corev1.Pod, ip string) *podRT {
	ctx, cancel := context.WithCancel(context.Background())
	pr := &podRT{
		p: p, key: pod.Namespace + "/" + pod.Name, uid: pod.UID, ip: ip,
		dir:   filepath.Join(p.cfg.StateDir, "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		pod:   pod.DeepCopy(),
		start: metav1.Now(),
		conds: map[corev1.PodConditionType]corev1.PodCondition{},
		ctx:   ctx, cancel: cancel,
		tokens: map[string]tokenEntry{},
		done:   make(chan struct{}),
		dirty:  make(chan struct{}, 1),
	}
	for _, c := range pod.Spec.InitContainers {
		pr.inits = append(pr.inits, newCtr(pr, c, true))
	}
	for _, c := range pod.Spec.Containers {
		pr.ctrs = append(pr.ctrs, newCtr(pr, c, false))
	}
	return pr
}

func newCtr(pr *podRT, c corev1.Container, init bool) *ctrRT {
	return &ctrRT{pr: pr, init: init, name: c.Name, spec: c, status: corev1.ContainerStatus{
		Name: c.Name, Image: c.Image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
	}}
}

// changed marks the status dirty; the notifier goroutine sends it.
func (pr *podRT) changed() {
	select {
	case pr.dirty <- struct{}{}:
	default:
	}
}

// notifier sends the pod's status to the pod controller whenever it
// changes (coalescing bursts; the latest status always goes last).
func (pr *podRT) notifier(stop <-chan struct{}) {
	for {
		select {
		case <-pr.dirty:
		case <-stop:
			return
		}
		pr.p.notify(pr.snapshot())
		pr.p.kickHosts()
	}
}

// snapshot is the pod with its current status.
func (pr *podRT) snapshot() *corev1.Pod {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pod := pr.pod.DeepCopy()
	pod.Status = pr.statusLocked()
	return pod
}

func (pr *podRT) setCond(t corev1.PodConditionType, ok bool, reason string) {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	if c, had := pr.conds[t]; had && c.Status == s && c.Reason == reason {
		return
	}
	pr.conds[t] = corev1.PodCondition{Type: t, Status: s, Reason: reason, LastTransitionTime: metav1.Now()}
}

func (pr *podRT) statusLocked() corev1.PodStatus {
	st := corev1.PodStatus{
		HostIP: pr.p.addrs.nodeIP(), HostIPs: []corev1.HostIP{{IP: pr.p.addrs.nodeIP()}},
		PodIP: pr.ip, PodIPs: []corev1.PodIP{{IP: pr.ip}},
		StartTime: ptr.To(pr.start),
		QOSClass:  pr.pod.Status.QOSClass,
	}
	allReady, allStarted := true, true
	for _, c := range pr.ctrs {
		cs := c.status
		cs.Ready = c.ready
		cs.Started = ptr.To(c.status.State.Running != nil && c.started)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !c.ready {
			allReady = false
		}
		if c.status.State.Running == nil && c.status.RestartCount == 0 && c.status.State.Terminated == nil {
			allStarted = false
		}
	}
	for _, c := range pr.inits {
		cs := c.status
		cs.Ready = c.status.State.Terminated != nil && c.status.State.Terminated.ExitCode == 0
		cs.Started = ptr.To(c.status.State.Running != nil)
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	switch {
	case pr.phase != "":
		st.Phase = pr.phase
	case pr.initDone && allStarted:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}
	reason := ""
	if !allReady {
		reason = "ContainersNotReady"
	}
	pr.setCond(corev1.PodReadyToStartContainers, pr.volsOK, "")
	pr.setCond(corev1.PodInitialized, pr.initDone, map[bool]string{true: "", false: "ContainersNotInitialized"}[pr.initDone])
	pr.setCond(corev1.ContainersReady, allReady && pr.phase == "", reason)
	pr.setCond(corev1.PodReady, allReady && pr.phase == "", reason)
	// Conditions we do not own (PodScheduled, DisruptionTarget, ...)
	// are kept as the API server has them.
	for _, c := range pr.pod.Status.Conditions {
		if _, ours := pr.conds[c.Type]; !ours {
			st.Conditions = append(st.Conditions, c)
		}
	}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		st.Conditions = append(st.Conditions, pr.conds[t])
	}
	return st
}

// waitAll sets every not-yet-run container waiting with reason.
func (pr *podRT) waitAll(reason, msg string) {
	pr.mu.Lock()
	for _, c := range append(slices.Clone(pr.inits), pr.ctrs...) {
		if c.status.State.Running == nil && c.status.State.Terminated == nil {
			c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
		}
	}
	pr.mu.Unlock()
	pr.changed()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// run is the pod's life: volumes, init containers one by one, then the
// containers side by side, restarted per restartPolicy, until the pod is
// deleted.
func (pr *podRT) run() {
	stopNotify := make(chan struct{})
	go pr.notifier(stopNotify)
	defer func() {
		pr.finish()
		close(stopNotify)
		close(pr.done)
	}()
	ctx := pr.ctx
	if err := os.MkdirAll(filepath.Join(pr.dir, "logs"), 0o755); err != nil {
		pr.waitAll("CreateContainerError", err.Error())
		<-ctx.Done()
		return
	}
	for {
		vols, err := pr.p.setupVolumes(ctx, pr)
		if err == nil {
			pr.mu.Lock()
			pr.vols, pr.volsOK = vols, true
			pr.mu.Unlock()
			break
		}
		pr.waitAll("ContainerCreating", err.Error())
		if !sleepCtx(ctx, 2*time.Second) {
			return
		}
	}
	go pr.resync(ctx)
	policy := pr.pod.Spec.RestartPolicy
	for _, c := range pr.inits {
		backoff := pr.p.cfg.RestartBackoff
		for {
			code, _, ok := c.runOnce(ctx)
			if !ok {
				return
			}
			if code == 0 {
				break
			}
			if policy == corev1.RestartPolicyNever {
				pr.mu.Lock()
				pr.phase = corev1.PodFailed
				pr.mu.Unlock()
				pr.changed()
				<-ctx.Done()
				return
			}
			c.backoff(ctx, &backoff)
		}
	}
	pr.mu.Lock()
	pr.initDone = true
	pr.mu.Unlock()
	pr.changed()
	var wg sync.WaitGroup
	for _, c := range pr.ctrs {
		wg.Add(1)
		go func() { defer wg.Done(); c.loop(ctx, policy) }()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	// Every container is done for good (restartPolicy Never/OnFailure).
	phase := corev1.PodSucceeded
	pr.mu.Lock()
	for _, c := range pr.ctrs {
		if t := c.status.State.Terminated; t == nil || t.ExitCode != 0 {
			phase = corev1.PodFailed
		}
	}
	pr.phase = phase
	pr.mu.Unlock()
	pr.changed()
	<-ctx.Done()
}

// resync rewrites the projected volumes now and then, so a changed
// ConfigMap or Secret reaches running containers (the kubelet's sync).
func (pr *podRT) resync(ctx context.Context) {
	for sleepCtx(ctx, pr.p.cfg.ResyncPeriod) {
		pr.mu.Lock()
		vols := pr.vols
		pr.mu.Unlock()
		if err := pr.p.refreshProjections(ctx, pr, vols); err != nil && ctx.Err() == nil {
			pr.p.log.Warn("refreshing volumes", "pod", pr.key, "err", err)
		}
	}
}

// finish runs once the pod's processes are gone: its directory (emptyDir
// volumes, logs, container roots) is removed, the provider forgets it,
// and the pod object is deleted for good (grace 0, this UID only) so
// that a StatefulSet need not wait out the grace period to make it
// again.
func (pr *podRT) finish() {
	pr.mu.Lock()
	for _, c := range append(slices.Clone(pr.inits), pr.ctrs...) {
		if c.status.State.Terminated == nil {
			c.status.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", FinishedAt: metav1.Now()}}
		}
		c.ready = false
	}
	if pr.phase == "" {
		pr.phase = corev1.PodSucceeded
		for _, c := range pr.ctrs {
			if c.status.State.Terminated.ExitCode != 0 {
				pr.phase = corev1.PodFailed
			}
		}
	}
	uid := pr.pod.UID
	ns, name := pr.pod.Namespace, pr.pod.Name
	pr.mu.Unlock()
	final := pr.snapshot()
	pr.p.forget(pr)
	pr.p.notify(final)
	pr.p.kickHosts()
	if err := os.RemoveAll(pr.dir); err != nil {
		pr.p.log.Warn("removing pod directory", "pod", pr.key, "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := pr.p.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0), Preconditions: metav1.NewUIDPreconditions(string(uid))})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		pr.p.log.Warn("deleting pod", "pod", pr.key, "err", err)
	}
	pr.p.log.Info("pod gone", "pod", pr.key, "uid", uid)
}

// delete starts the pod's termination: every container gets SIGTERM,
// then SIGKILL after the grace period.
func (pr *podRT) delete(grace time.Duration) {
	pr.mu.Lock()
	if !pr.deleting {
		pr.deleting, pr.grace = true, grace
	}
	pr.mu.Unlock()
	pr.cancel()
}

func (c *ctrRT) backoff(ctx context.Context, d *time.Duration) bool {
	pr := c.pr
	pr.mu.Lock()
	if t := c.status.State.Terminated; t != nil {
		c.status.LastTerminationState = corev1.ContainerState{Terminated: t}
	}
	c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
		Message: fmt.Sprintf("back-off %v restarting failed container %s", *d, c.name)}}
	pr.mu.Unlock()
	pr.changed()
	ok := sleepCtx(ctx, *d)
	*d = min(2**d, pr.p.cfg.MaxRestartBackoff)
	return ok
}

// loop runs a container and restarts it per restartPolicy with the
// kubelet's doubling back-off (reset after a long enough run).
func (c *ctrRT) loop(ctx context.Context, policy corev1.RestartPolicy) {
	backoff := c.pr.p.cfg.RestartBackoff
	for {
		code, ran, ok := c.runOnce(ctx)
		if !ok {
			return
		}
		switch {
		case policy == corev1.RestartPolicyNever:
			return
		case policy == corev1.RestartPolicyOnFailure && code == 0:
			return
		}
		if ran > 10*c.pr.p.cfg.MaxRestartBackoff {
			backoff = c.pr.p.cfg.RestartBackoff
		}
		if !c.backoff(ctx, &backoff) {
			return
		}
		c.pr.mu.Lock()
		c.status.RestartCount++
		c.pr.mu.Unlock()
	}
}

// runOnce starts the container's process and waits for it to end; it
// returns the exit code, how long it ran, and false if the pod was
// deleted meanwhile (the process is then stopped with the grace period).
func (c *ctrRT) runOnce(ctx context.Context) (int, time.Duration, bool) {
	pr, p := c.pr, c.pr.p
	if ctx.Err() != nil {
		return 0, 0, false
	}
	pr.mu.Lock()
	spec := c.spec
	vols := pr.vols
	pr.mu.Unlock()
	pod := pr.podCopy()
	if err := p.refreshProjections(ctx, pr, vols); err != nil {
		return c.configError(ctx, "CreateContainerConfigError", err)
	}
	cmd, logf, offset, err := c.start(ctx, pod, &spec, vols)
	if err != nil {
		return c.configError(ctx, "CreateContainerError", err)
	}
	exited := make(chan struct{})
	startedAt := metav1.Now()
	pr.mu.Lock()
	c.runID++
	runID := c.runID
	c.pid = cmd.Process.Pid
	c.exited = exited
	c.started = spec.StartupProbe == nil
	c.ready = false
	c.status.ContainerID = fmt.Sprintf("vnode://%s/%d", pr.pod.UID, c.pid)
	c.status.Image = spec.Image
	c.status.ImageID = p.imageID(spec.Image)
	c.status.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: startedAt}}
	pr.mu.Unlock()
	pr.changed()
	p.log.Info("container started", "pod", pr.key, "container", c.name, "pid", cmd.Process.Pid, "image", spec.Image)

	runCtx, stopProbes := context.WithCancel(ctx)
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	if !c.init {
		c.startProbes(runCtx, &spec, runID)
	}
	deleted := false
	select {
	case <-exited:
	case <-ctx.Done():
		deleted = true
		pr.mu.Lock()
		grace := pr.grace
		pr.mu.Unlock()
		c.terminate(grace)
	}
	stopProbes()
	<-exited
	code := exitCode(cmd.ProcessState)
	term := &corev1.ContainerStateTerminated{
		ExitCode: int32(code), StartedAt: startedAt, FinishedAt: metav1.Now(), ContainerID: c.status.ContainerID,
		Reason: "Completed",
	}
	if code != 0 {
		term.Reason = "Error"
	}
	term.Message = c.terminationMessage(&spec, code, offset)
	pr.mu.Lock()
	c.status.State = corev1.ContainerState{Terminated: term}
	c.ready, c.pid = false, 0
	pr.mu.Unlock()
	pr.changed()
	p.log.Info("container exited", "pod", pr.key, "container", c.name, "code", code)
	return code, term.FinishedAt.Sub(startedAt.Time), !deleted
}

// configError reports a container that could not be started (a missing
// ConfigMap key, an unknown image) and waits before the next try.
func (c *ctrRT) configError(ctx context.Context, reason string, err error) (int, time.Duration, bool) {
	c.pr.mu.Lock()
	c.status.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}}
	c.pr.mu.Unlock()
	c.pr.changed()
	if !sleepCtx(ctx, 2*time.Second) {
		return 0, 0, false
	}
	return c.runOnce(ctx)
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// terminate stops the current process: SIGTERM to its process group,
// SIGKILL after grace.
func (c *ctrRT) terminate(grace time.Duration) {
	c.pr.mu.Lock()
	pid, exited := c.pid, c.exited
	c.pr.mu.Unlock()
	if pid == 0 || exited == nil {
		return
	}
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(grace):
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	<-exited
}

// kill stops the process of run runID (a failed liveness or startup
// probe); the restart policy then applies.
func (c *ctrRT) kill(runID int, why string) {
	c.pr.mu.Lock()
	cur := c.runID
	grace := time.Duration(ptr.Deref(c.pr.pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	c.pr.mu.Unlock()
	if cur != runID {
		return
	}
	c.pr.p.log.Info("killing container", "pod", c.pr.key, "container", c.name, "why", why)
	c.pr.p.event(c.pr, corev1.EventTypeWarning, "Killing", fmt.Sprintf("Container %s %s, will be restarted", c.name, why))
	c.terminate(grace)
}

func (c *ctrRT) ctrDir() string { return filepath.Join(c.pr.dir, "containers", c.name) }

// start launches `vnode shim spec.json` in a new mount namespace.
func (c *ctrRT) start(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, vols map[string]*volume) (*exec.Cmd, *os.File, int64, error) {
	pr, p := c.pr, c.pr.p
	rule, ok := matchImage(p.cfg.Images, spec.Image)
	if !ok {
		return nil, nil, 0, fmt.Errorf("image %q: no binary on this node for it (vnode --image rules)", spec.Image)
	}
	env, err := p.containerEnv(ctx, pod, spec, pr.ip)
	if err != nil {
		return nil, nil, 0, err
	}
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	var argv []string
	switch {
	case len(spec.Command) > 0:
		for _, a := range append(slices.Clone(spec.Command), spec.Args...) {
			argv = append(argv, bindToPod(expand(a, vals), pr.ip))
		}
	case len(spec.Args) > 0:
		argv = append(argv, rule.entrypoint())
		for _, a := range spec.Args {
			argv = append(argv, bindToPod(expand(a, vals), pr.ip))
		}
	default:
		argv = append([]string{rule.entrypoint()}, rule.Cmd...)
	}
	dir := c.ctrDir()
	os.RemoveAll(dir)
	root, scratch := filepath.Join(dir, "root"), filepath.Join(dir, "scratch")
	for _, d := range []string{root, scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, 0, err
		}
	}
	termPath := spec.TerminationMessagePath
	if termPath == "" {
		termPath = corev1.TerminationMessagePathDefault
	}
	termFile := filepath.Join(pr.dir, "containers", c.name+".termination-log")
	if err := os.WriteFile(termFile, nil, 0o666); err != nil {
		return nil, nil, 0, err
	}
	os.Chmod(termFile, 0o666)
	s := ShimSpec{
		Root: root, Scratch: scratch,
		Path: argv[0], Args: argv, Env: env, Dir: spec.WorkingDir,
		UID: -1, GID: -1,
		Symlinks: map[string]string{"/etc/hosts": hostsMount + "/hosts"},
	}
	// The image's binary at its entrypoint, the hosts directory, the
	// termination log, then the pod's volume mounts, parents first.
	s.Mounts = append(s.Mounts,
		ShimMount{Source: rule.Binary, Target: rule.entrypoint(), ReadOnly: true, File: true},
		ShimMount{Source: pr.hostsDir(), Target: hostsMount, ReadOnly: true},
		ShimMount{Source: termFile, Target: termPath, File: true})
	mounts := slices.Clone(spec.VolumeMounts)
	slices.SortStableFunc(mounts, func(a, b corev1.VolumeMount) int {
		return strings.Count(filepath.Clean(a.MountPath), "/") - strings.Count(filepath.Clean(b.MountPath), "/")
	})
	for _, m := range mounts {
		v, ok := vols[m.Name]
		if !ok {
			return nil, nil, 0, fmt.Errorf("volume mount %q: no such volume", m.Name)
		}
		src := v.path
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
			if err := os.MkdirAll(src, 0o777); err != nil {
				return nil, nil, 0, err
			}
		}
		fi, err := os.Stat(src)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("volume mount %q: %w", m.Name, err)
		}
		s.Mounts = append(s.Mounts, ShimMount{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly || v.readOnly, File: !fi.IsDir()})
	}
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := spec.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	if uid := firstNonNil(csc.RunAsUser, psc.RunAsUser); uid != nil {
		s.UID, s.GID = *uid, *uid
		if g := firstNonNil(csc.RunAsGroup, psc.RunAsGroup); g != nil {
			s.GID = *g
		}
		if psc.FSGroup != nil {
			s.Groups = append(s.Groups, *psc.FSGroup)
		}
		s.Groups = append(s.Groups, psc.SupplementalGroups...)
	} else if ptr.Deref(csc.RunAsNonRoot, ptr.Deref(psc.RunAsNonRoot, false)) {
		return nil, nil, 0, errors.New("runAsNonRoot is set but no runAsUser: this node cannot read the image's user")
	}
	s.ReadOnlyRoot = ptr.Deref(csc.ReadOnlyRootFilesystem, false)
	specFile := filepath.Join(pr.dir, "containers", c.name+".json")
	b, _ := json.MarshalIndent(&s, "", "  ")
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		return nil, nil, 0, err
	}
	logPath := c.logPath()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, 0, err
	}
	offset, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(p.shimPath, "shim", specFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, 0, err
	}
	return cmd, logf, offset, nil
}

func (c *ctrRT) logPath() string { return filepath.Join(c.pr.dir, "logs", c.name+".log") }

func firstNonNil(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

// terminationMessage is what the kubelet puts in the terminated state:
// the termination-log file, or with FallbackToLogsOnError and a failure,
// the tail of this run's log (80 lines, 2 KiB at most).
func (c *ctrRT) terminationMessage(spec *corev1.Container, code int, offset int64) string {
	b, _ := os.ReadFile(filepath.Join(c.pr.dir, "containers", c.name+".termination-log"))
	if len(b) > 4096 {
		b = b[:4096]
	}
	if len(strings.TrimSpace(string(b))) > 0 || code == 0 || spec.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		return string(b)
	}
	f, err := os.Open(c.logPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	f.Seek(offset, io.SeekStart)
	all, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(all), "\n"), "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	msg := strings.Join(lines, "\n")
	if len(msg) > 2048 {
		msg = msg[len(msg)-2048:]
	}
	return msg
}
