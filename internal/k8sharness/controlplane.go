package k8sharness

import (
	"strings"
	"testing"
	"time"
)

// ControlPlaneOptions adjusts StartControlPlane. The zero value (or nil)
// starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler.
type ControlPlaneOptions struct {
	// EtcdServers, if set, is the etcd endpoint for the apiserver (e.g.
	// Paddock's etcd API) and no reference etcd is started.
	EtcdServers string
	Etcd        *EtcdOptions
	APIServer   *APIServerOptions
	// NoControllerManager / NoScheduler leave those components out.
	NoControllerManager bool
	NoScheduler         bool
	ControllerManager   *ComponentOptions
	Scheduler           *ComponentOptions
}

// ControlPlane is a running control plane. Etcd is nil when an external
// endpoint was given; ControllerManager and Scheduler are nil when left out.
type ControlPlane struct {
	Etcd              *Etcd
	APIServer         *APIServer
	ControllerManager *Component
	Scheduler         *Component
	// StartupTime is the wall time of StartControlPlane.
	StartupTime time.Duration
}

// StartControlPlane starts a whole control plane on loopback and waits until
// every component is ready. Everything is stopped at the end of the test.
func StartControlPlane(t testing.TB, opts *ControlPlaneOptions) *ControlPlane {
	t.Helper()
	if opts == nil {
		opts = &ControlPlaneOptions{}
	}
	start := time.Now()
	cp := &ControlPlane{}
	etcd := opts.EtcdServers
	if etcd == "" {
		cp.Etcd = StartEtcd(t, opts.Etcd)
		etcd = cp.Etcd.Endpoint
	}
	cp.APIServer = StartAPIServer(t, etcd, opts.APIServer)
	if !opts.NoControllerManager {
		cp.ControllerManager = StartControllerManager(t, cp.APIServer, opts.ControllerManager)
	}
	if !opts.NoScheduler {
		cp.Scheduler = StartScheduler(t, cp.APIServer, opts.Scheduler)
	}
	cp.StartupTime = time.Since(start)
	t.Logf("control plane ready in %v", cp.StartupTime.Round(time.Millisecond))
	return cp
}

// Kubeconfig is the admin kubeconfig file.
func (cp *ControlPlane) Kubeconfig() string { return cp.APIServer.Kubeconfig }

// Kubectl runs kubectl as admin and returns stdout; it fails the test on
// error.
func (cp *ControlPlane) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	return cp.APIServer.Kubectl(t, args...)
}

// KubectlE is Kubectl returning the error instead of failing the test.
func (cp *ControlPlane) KubectlE(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return cp.APIServer.KubectlE(t, args...)
}

// Apply pipes manifest into `kubectl apply -f -`.
func (cp *ControlPlane) Apply(t testing.TB, manifest string) string {
	t.Helper()
	return cp.APIServer.Apply(t, manifest)
}

// WaitDefaultServiceAccount waits until the controller-manager has created
// the "default" ServiceAccount in namespace: the ServiceAccount admission
// plugin refuses pods until then.
func (cp *ControlPlane) WaitDefaultServiceAccount(t testing.TB, namespace string) {
	t.Helper()
	Eventually(t, DefaultReadyTimeout, "default ServiceAccount in "+namespace, func() (bool, string) {
		out, err := cp.KubectlE(t, "-n", namespace, "get", "serviceaccount", "default", "-o", "name")
		if err != nil {
			return false, err.Error()
		}
		return strings.TrimSpace(out) == "serviceaccount/default", out
	})
}

// Eventually polls cond every 250 ms until it returns true, failing the test
// with cond's last message after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, msg)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
