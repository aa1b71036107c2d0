package vnode

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type probeKind int

const (
	startupProbe probeKind = iota
	livenessProbe
	readinessProbe
)

func (k probeKind) String() string {
	return [...]string{"startup", "liveness", "readiness"}[k]
}

// startProbes runs the container's probes for run runID, as the kubelet's
// prober does: the startup probe first (liveness and readiness wait for
// it), a failing startup or liveness probe kills the container, the
// readiness probe sets its Ready.
func (c *ctrRT) startProbes(ctx context.Context, spec *corev1.Container, runID int) {
	go func() {
		if spec.StartupProbe != nil {
			if !c.probeLoop(ctx, spec.StartupProbe, startupProbe, runID) {
				return
			}
		}
		if spec.LivenessProbe != nil {
			go c.probeLoop(ctx, spec.LivenessProbe, livenessProbe, runID)
		}
		if spec.ReadinessProbe != nil {
			c.probeLoop(ctx, spec.ReadinessProbe, readinessProbe, runID)
		} else {
			c.setReady(runID, true)
		}
	}()
}

func (c *ctrRT) setReady(runID int, ready bool) {
	c.pr.mu.Lock()
	changed := c.runID == runID && c.ready != ready
	if changed {
		c.ready = ready
	}
	c.pr.mu.Unlock()
	if changed {
		c.pr.changed()
	}
}

// probeLoop probes until ctx ends; for the startup probe it returns true
// on success (and stops).
func (c *ctrRT) probeLoop(ctx context.Context, pb *corev1.Probe, kind probeKind, runID int) bool {
	period := time.Duration(max(pb.PeriodSeconds, 1)) * time.Second
	if pb.PeriodSeconds == 0 {
		period = 10 * time.Second
	}
	timeout := time.Duration(max(pb.TimeoutSeconds, 1)) * time.Second
	failures := int(pb.FailureThreshold)
	if failures == 0 {
		failures = 3
	}
	successes := int(pb.SuccessThreshold)
	if successes == 0 || kind != readinessProbe {
		successes = 1
	}
	if !sleepCtx(ctx, time.Duration(pb.InitialDelaySeconds)*time.Second) {
		return false
	}
	okRun, failRun := 0, 0
	for {
		ok, msg := c.probeOnce(ctx, pb, timeout)
		if ctx.Err() != nil {
			return false
		}
		if ok {
			okRun, failRun = okRun+1, 0
		} else {
			okRun, failRun = 0, failRun+1
			// As the kubelet: an Unhealthy event per failed probe.
			c.pr.p.event(c.pr, corev1.EventTypeWarning, "Unhealthy", fmt.Sprintf("%s probe failed: %s", capitalize(kind.String()), truncate(msg, 1024)))
		}
		switch kind {
		case startupProbe:
			if okRun >= successes {
				c.pr.mu.Lock()
				if c.runID == runID {
					c.started = true
				}
				c.pr.mu.Unlock()
				c.pr.changed()
				return true
			}
			if failRun >= failures {
				c.kill(runID, "failed its startup probe: "+msg)
				return false
			}
		case livenessProbe:
			if failRun >= failures {
				c.kill(runID, "failed its liveness probe: "+msg)
				return false
			}
		case readinessProbe:
			if okRun >= successes {
				c.setReady(runID, true)
			}
			if failRun >= failures {
				c.setReady(runID, false)
			}
		}
		if !sleepCtx(ctx, period) {
			return false
		}
	}
}

var probeHTTP = &http.Client{
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true},
	// The kubelet follows redirects to the same host only; none here.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// probeOnce runs one httpGet, tcpSocket or exec check against the
// container (at the pod's address; exec inside its mount namespace).
func (c *ctrRT) probeOnce(ctx context.Context, pb *corev1.Probe, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.pr.mu.Lock()
	spec, pid := c.spec, c.pid
	c.pr.mu.Unlock()
	switch {
	case pb.HTTPGet != nil:
		h := pb.HTTPGet
		port, err := resolvePort(&spec, h.Port)
		if err != nil {
			return false, err.Error()
		}
		host := h.Host
		if host == "" {
			host = c.pr.ip
		}
		scheme := "http"
		if h.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: h.Path}
		if u.Path == "" {
			u.Path = "/"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "kube-probe/1.37")
		for _, hd := range h.HTTPHeaders {
			req.Header.Add(hd.Name, hd.Value)
		}
		resp, err := probeHTTP.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 400 {
			return true, ""
		}
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	case pb.TCPSocket != nil:
		port, err := resolvePort(&spec, pb.TCPSocket.Port)
		if err != nil {
			return false, err.Error()
		}
		host := pb.TCPSocket.Host
		if host == "" {
			host = c.pr.ip
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case pb.Exec != nil:
		if pid == 0 || len(pb.Exec.Command) == 0 {
			return false, "no process"
		}
		pod := c.pr.podCopy()
		env, err := c.pr.p.containerEnv(ctx, pod, &spec, c.pr.ip)
		if err != nil {
			return false, err.Error()
		}
		// nsenter (util-linux) joins the container's mount namespace and
		// root; a Go program cannot setns into a mount namespace once it
		// has threads.
		args := []string{"-t", strconv.Itoa(pid), "-m", "-r", "-w"}
		if uid, gid, ok := c.creds(pod, &spec); ok {
			args = append(args, "-S", strconv.FormatInt(uid, 10), "-G", strconv.FormatInt(gid, 10))
		}
		args = append(args, "--")
		args = append(args, pb.Exec.Command...)
		cmd := exec.CommandContext(ctx, "nsenter", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, truncate(string(out), 512))
		}
		return true, ""
	}
	return false, "unsupported probe handler on this node (grpc)"
}

func (c *ctrRT) creds(pod *corev1.Pod, spec *corev1.Container) (int64, int64, bool) {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := spec.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	uid := firstNonNil(csc.RunAsUser, psc.RunAsUser)
	if uid == nil {
		return 0, 0, false
	}
	gid := *uid
	if g := firstNonNil(csc.RunAsGroup, psc.RunAsGroup); g != nil {
		gid = *g
	}
	return *uid, gid, true
}

func resolvePort(c *corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.Name, p.StrVal)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
