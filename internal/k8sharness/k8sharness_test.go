package k8sharness

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFlagArgs(t *testing.T) {
	got := flagArgs(map[string]string{"b": "2", "a": "1", "c": "3"}, map[string]string{"--c": "", "d": "4", "a": "x"})
	want := []string{"--a=x", "--b=2", "--d=4"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("flagArgs = %v, want %v", got, want)
	}
}

// TestTools checks the multi-call binary: dispatch through the symlinks
// (argv[0]) and through the first argument, and the version it reports.
func TestTools(t *testing.T) {
	dir := EnvtestAssets(t)
	for _, n := range []string{APIServerBin, EtcdBin, KubectlBin} {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Mode()&0o111 == 0 {
			t.Fatalf("envtest asset %s: %v", n, err)
		}
	}
	out, err := exec.Command(filepath.Join(dir, KubectlBin), "version", "--client").CombinedOutput()
	if err != nil || !strings.Contains(string(out), Version) {
		t.Fatalf("kubectl version --client: %v\n%s", err, out)
	}
	out, err = exec.Command(filepath.Join(dir, "k8s-tools"), APIServerBin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Kubernetes "+Version) {
		t.Fatalf("k8s-tools kube-apiserver --version: %v\n%s", err, out)
	}
	out, err = exec.Command(filepath.Join(dir, EtcdBin), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "etcd Version: 3.7.") {
		t.Fatalf("etcd --version: %v\n%s", err, out)
	}
}

// TestControlPlane brings up etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler, then exercises them through kubectl: readiness, a
// ConfigMap's life cycle, and a Deployment whose pods the controller-manager
// creates and the scheduler marks unschedulable (there is no node).
func TestControlPlane(t *testing.T) {
	Tools(t) // skip (or fail in CI) before starting anything
	cp := StartControlPlane(t, nil)

	if out := cp.Kubectl(t, "get", "--raw", "/readyz"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("/readyz = %q", out)
	}
	if out := cp.Kubectl(t, "version", "-o", "json"); !strings.Contains(out, `"gitVersion": "`+Version+`"`) {
		t.Fatalf("kubectl version: want server and client %s:\n%s", Version, out)
	}

	// ConfigMap create / get / delete.
	cp.Kubectl(t, "create", "configmap", "harness", "--from-literal=greeting=hello")
	if out := cp.Kubectl(t, "get", "configmap", "harness", "-o", "jsonpath={.data.greeting}"); out != "hello" {
		t.Fatalf("configmap data = %q, want hello", out)
	}
	cp.Kubectl(t, "delete", "configmap", "harness")
	if _, err := cp.KubectlE(t, "get", "configmap", "harness"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("get after delete: want NotFound, got %v", err)
	}

	// A Deployment: accepted; the controller-manager makes its ReplicaSet
	// and pods (once the default ServiceAccount exists); the scheduler finds
	// no node for them, so they stay Pending.
	start := time.Now()
	cp.WaitDefaultServiceAccount(t, "default")
	t.Logf("default ServiceAccount after %v", time.Since(start).Round(time.Millisecond))
	cp.Apply(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:1
`)
	Eventually(t, 2*time.Minute, "2 unschedulable pods of deployment web", func() (bool, string) {
		out, err := cp.KubectlE(t, "get", "pods", "-l", "app=web", "-o",
			`jsonpath={range .items[*]}{.status.phase}/{.status.conditions[?(@.type=="PodScheduled")].reason}{"\n"}{end}`)
		if err != nil {
			return false, err.Error()
		}
		lines := strings.Fields(out)
		if len(lines) != 2 {
			return false, out
		}
		for _, l := range lines {
			if l != "Pending/Unschedulable" {
				return false, out
			}
		}
		return true, out
	})
	t.Logf("deployment pods created and marked unschedulable %v after apply", time.Since(start).Round(time.Millisecond))
	if out := cp.Kubectl(t, "get", "deployment", "web", "-o", "jsonpath={.status.replicas}"); out != "2" {
		t.Fatalf("deployment status.replicas = %q, want 2", out)
	}
	cp.Kubectl(t, "delete", "deployment", "web", "--wait=true")

	t.Logf("start times: etcd %v, kube-apiserver %v, kube-controller-manager %v, kube-scheduler %v; whole control plane %v",
		cp.Etcd.StartupTime.Round(time.Millisecond), cp.APIServer.StartupTime.Round(time.Millisecond),
		cp.ControllerManager.StartupTime.Round(time.Millisecond), cp.Scheduler.StartupTime.Round(time.Millisecond),
		cp.StartupTime.Round(time.Millisecond))
}
