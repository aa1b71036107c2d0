package etcd

import (
	"strings"
	"testing"

	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/testserver"
)

// A real kube-apiserver (from the tools module, k8sharness) on a
// standalone Paddock's etcd API: /readyz, then create/get/list/delete of a
// ConfigMap. The tools take a long cold build: with -short the test runs
// only when they are already cached (k8sharness skips otherwise).
func TestKubeAPIServerOnPaddock(t *testing.T) {
	addr := freeAddr(t)
	testserver.Start(t, testserver.Options{ExtraArgs: []string{"--etcd-listen", addr}})
	waitPort(t, addr)
	api := k8sharness.StartAPIServer(t, "http://"+addr, nil)
	t.Logf("kube-apiserver ready on Paddock in %v", api.StartupTime)
	if out := api.Kubectl(t, "get", "--raw", "/readyz"); !strings.Contains(out, "ok") {
		t.Fatalf("/readyz: %s", out)
	}
	api.Kubectl(t, "create", "configmap", "paddock-test", "--from-literal=a=b")
	if out := api.Kubectl(t, "get", "configmap", "paddock-test", "-o", "jsonpath={.data.a}"); strings.TrimSpace(out) != "b" {
		t.Fatalf("get configmap: %q", out)
	}
	if out := api.Kubectl(t, "get", "configmaps"); !strings.Contains(out, "paddock-test") {
		t.Fatalf("list: %s", out)
	}
	api.Kubectl(t, "delete", "configmap", "paddock-test")
}
