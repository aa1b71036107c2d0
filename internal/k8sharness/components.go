package k8sharness

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// ComponentOptions adjusts StartControllerManager and StartScheduler.
type ComponentOptions struct {
	// Flags overrides or adds flags (name without dashes -> value; an
	// empty value removes a default flag), e.g. {"controllers": "*,-ttl"}.
	Flags map[string]string
	// ReadyTimeout defaults to DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Component is a running kube-controller-manager or kube-scheduler.
type Component struct {
	*Process
	Port        int // secure (healthz) port on 127.0.0.1
	StartupTime time.Duration
}

// StartControllerManager starts kube-controller-manager against api (as
// admin, with per-controller service-account credentials signed by the
// apiserver's service-account key) and waits for its /healthz.
func StartControllerManager(t testing.TB, api *APIServer, opts *ComponentOptions) *Component {
	t.Helper()
	return startComponent(t, ControllerManagerBin, opts, map[string]string{
		"service-account-private-key-file": api.ServiceAccountKeyFile,
		"root-ca-file":                     api.CAFile,
		"use-service-account-credentials":  "true",
	}, api)
}

// StartScheduler starts kube-scheduler against api and waits for its
// /healthz.
func StartScheduler(t testing.TB, api *APIServer, opts *ComponentOptions) *Component {
	t.Helper()
	return startComponent(t, SchedulerBin, opts, nil, api)
}

func startComponent(t testing.TB, name string, opts *ComponentOptions, extra map[string]string, api *APIServer) *Component {
	t.Helper()
	if opts == nil {
		opts = &ComponentOptions{}
	}
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	dir := t.TempDir()
	c := &Component{}
	startWithRetry(t, name, func() error {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		defaults := map[string]string{
			"kubeconfig":                 api.Kubeconfig,
			"authentication-kubeconfig":  api.Kubeconfig,
			"authorization-kubeconfig":   api.Kubeconfig,
			"authentication-skip-lookup": "true",
			"bind-address":               "127.0.0.1",
			"secure-port":                strconv.Itoa(ports[0]),
			"cert-dir":                   filepath.Join(dir, "certs"),
			"leader-elect":               "false",
			"profiling":                  "false",
		}
		for k, v := range extra {
			defaults[k] = v
		}
		args := flagArgs(defaults, opts.Flags)
		start := time.Now()
		p, err := startProcess(t, name, dir, args)
		if err != nil {
			return err
		}
		url := fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0])
		hc := insecureClient()
		err = waitReady(p, timeout, func(ctx context.Context) error {
			return httpGetOK(ctx, hc, url, "", "ok")
		})
		if err != nil {
			p.Stop()
			return err
		}
		c.Process, c.Port, c.StartupTime = p, ports[0], time.Since(start)
		return nil
	})
	t.Logf("%s healthy on port %d in %v (pid %d)", name, c.Port, c.StartupTime.Round(time.Millisecond), c.PID())
	return c
}
