package etcd

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/testserver"
)

// startNode starts a vnode (internal/vnode: pods are local processes) on
// api, the image "paddock" mapped to the Paddock binary the tests run, so
// that a StatefulSet's pods are real `paddock server` processes. The node
// needs root: without it the StatefulSet part of the control-plane tests
// is left out (nil), except under CI=true, where StartNode fails the test.
func startNode(t *testing.T, api *k8sharness.APIServer) *k8sharness.Node {
	t.Helper()
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Log("not root: no vnode, the StatefulSet is not run")
		return nil
	}
	bin, err := testserver.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return k8sharness.StartNode(t, api, &k8sharness.NodeOptions{Images: map[string]string{"paddock": bin}})
}

// statefulSetManifest is a headless Service and a StatefulSet of
// standalone Paddock servers (image "paddock", which the vnode maps to
// the binary): each pod is Ready when its server's /readyz answers.
const statefulSetManifest = `apiVersion: v1
kind: Service
metadata: {name: zk-hs, namespace: %[1]s}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: zk}
  ports: [{name: client, port: 2181}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: zk, namespace: %[1]s}
spec:
  replicas: %[2]d
  serviceName: zk-hs
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: zk}}
  template:
    metadata: {labels: {app: zk}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 10
      containers:
      - name: paddock
        image: ghcr.io/paddockhq/paddock:test
        args: [server, --addr, "0.0.0.0:2181", --admin-addr, "0.0.0.0:8080", --data-dir, /data]
        ports: [{name: client, containerPort: 2181}, {name: admin, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /readyz, port: admin}
          periodSeconds: 1
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, emptyDir: {}}]
`

// waitStatefulSet waits until the StatefulSet zk in ns has n pods, each
// scheduled on the node, Running and Ready, on its own loopback address,
// and the StatefulSet counts them ready; it returns the pods' addresses.
func waitStatefulSet(t *testing.T, api *k8sharness.APIServer, node *k8sharness.Node, ns string, n int) []string {
	t.Helper()
	var ips []string
	start := time.Now()
	k8sharness.Eventually(t, 3*time.Minute, fmt.Sprintf("statefulset zk: %d pods Running and Ready on %s", n, node.Name), func() (bool, string) {
		out, err := api.KubectlE(t, "-n", ns, "get", "pods", "-l", "app=zk", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.status.podIP}{"\n"}{end}`)
		if err != nil {
			return false, err.Error()
		}
		ips = ips[:0]
		seen := map[string]bool{}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 5 || f[1] != node.Name || f[2] != "Running" || f[3] != "True" || !strings.HasPrefix(f[4], "127.") || seen[f[4]] {
				return false, out
			}
			seen[f[4]] = true
			ips = append(ips, f[4])
		}
		if len(ips) != n {
			return false, out
		}
		ready, err := api.KubectlE(t, "-n", ns, "get", "statefulset", "zk", "-o", "jsonpath={.status.readyReplicas}")
		return err == nil && ready == fmt.Sprint(n), "readyReplicas " + ready + "\n" + out
	})
	t.Logf("statefulset zk: %d pods Running and Ready on %s after %v: %v", n, node.Name, time.Since(start).Round(100*time.Millisecond), ips)
	return ips
}

// checkZooKeeper writes and reads a znode on each address with
// go-zookeeper: the pods are ZooKeeper servers that answer.
func checkZooKeeper(t *testing.T, ips []string) {
	t.Helper()
	for _, ip := range ips {
		conn, _, err := zk.Connect([]string{ip + ":2181"}, 10*time.Second, zk.WithLogger(quietZK{}))
		if err != nil {
			t.Fatal(err)
		}
		var data []byte
		k8sharness.Eventually(t, 30*time.Second, "znode on "+ip, func() (bool, string) {
			if _, err := conn.Create("/on-vnode", []byte(ip), 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
				return false, err.Error()
			}
			data, _, err = conn.Get("/on-vnode")
			return err == nil, fmt.Sprint(err)
		})
		conn.Close()
		if string(data) != ip {
			t.Fatalf("znode /on-vnode on %s: %q", ip, data)
		}
	}
}

type quietZK struct{}

func (quietZK) Printf(string, ...any) {}
