package vnode_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/testserver"
)

// startNode brings up a control plane (etcd, kube-apiserver,
// controller-manager, scheduler) and a vnode whose "paddock" image is the
// Paddock binary built for the tests.
func startNode(t *testing.T) (*k8sharness.ControlPlane, *k8sharness.Node) {
	t.Helper()
	cp := k8sharness.StartControlPlane(t, nil)
	bin, err := testserver.Binary()
	if err != nil {
		t.Fatal(err)
	}
	node := k8sharness.StartNode(t, cp.APIServer, &k8sharness.NodeOptions{Images: map[string]string{"paddock": bin}})
	return cp, node
}

func jsonpath(t *testing.T, cp *k8sharness.ControlPlane, ns, obj, path string) string {
	t.Helper()
	out, err := cp.KubectlE(t, "-n", ns, "get", obj, "-o", "jsonpath="+path)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(out)
}

func waitFor(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	k8sharness.Eventually(t, 3*time.Minute, what, f)
}

func podReady(t *testing.T, cp *k8sharness.ControlPlane, ns, pod string) func() (bool, string) {
	return func() (bool, string) {
		s := jsonpath(t, cp, ns, "pod/"+pod, `{.status.phase} {.status.conditions[?(@.type=="Ready")].status} {.status.containerStatuses[*].state}`)
		return strings.HasPrefix(s, "Running True"), s
	}
}

func zkConnect(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

const plainPod = `
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: vn}
spec:
  containers:
  - name: paddock
    image: ghcr.io/paddockhq/paddock:test
    args: [server, --addr, "0.0.0.0:2181", --admin-addr, "$(ADMIN)", --data-dir, /data]
    env: [{name: ADMIN, value: "0.0.0.0:8080"}]
    ports: [{name: admin, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /readyz, port: admin}
      periodSeconds: 1
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
`

const statefulSet = `
apiVersion: v1
kind: Service
metadata: {name: web-hs, namespace: vn}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: web}
  ports: [{name: client, port: 2181}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: vn}
data:
  zoo.cfg: |
    tickTime=2000
    dataDir=/data
    clientPort=2181
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: vn}
spec:
  replicas: 1
  serviceName: web-hs
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 10
      securityContext: {runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, runAsNonRoot: true}
      containers:
      - name: paddock
        image: paddock:v1
        args: [server, --config, /etc/paddock/zoo.cfg]
        env:
        - {name: PADDOCK_ADDR, value: "0.0.0.0:2181"}
        - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
        terminationMessagePolicy: FallbackToLogsOnError
        # Ready once the server answers through its own DNS name: proves the
        # StatefulSet's names resolve inside the pod (probe commands are not
        # $(VAR)-expanded; the shell expands $POD).
        readinessProbe:
          exec: {command: [/bin/sh, -c, "/paddock cli -server $POD.web-hs.vn.svc.cluster.local:2181 ls /"]}
          periodSeconds: 2
          timeoutSeconds: 10
        volumeMounts:
        - {name: data, mountPath: /data}
        - {name: config, mountPath: /etc/paddock}
      volumes: [{name: config, configMap: {name: web-config}}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`

// TestNode runs a plain pod and a one-replica StatefulSet on a vnode
// against a real control plane: both become Running and Ready through
// their probes (httpGet, and exec through the pod's own DNS name), serve
// ZooKeeper clients on their pod addresses, a killed process is
// restarted, a deleted StatefulSet pod comes back on the same address
// with its claim's data, and deleting the claim removes its directory.
func TestNode(t *testing.T) {
	cp, node := startNode(t)
	cp.Kubectl(t, "create", "namespace", "vn")
	cp.WaitDefaultServiceAccount(t, "vn")

	// A plain pod (with the default service-account token projected).
	cp.Apply(t, plainPod)
	waitFor(t, "pod solo Ready", podReady(t, cp, "vn", "solo"))
	ip := jsonpath(t, cp, "vn", "pod/solo", "{.status.podIP}")
	if !strings.HasPrefix(ip, "127.") || ip == node.IP {
		t.Fatalf("pod IP %q: want a loopback address of its own (node %s)", ip, node.IP)
	}
	conn := zkConnect(t, ip+":2181")
	if _, err := conn.Create("/solo", []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	dir := node.PodDir("vn", "solo")
	tok, err := os.ReadFile(filepath.Join(dir, "volumes", "kube-api-access-"+strings.TrimPrefix(
		jsonpath(t, cp, "vn", "pod/solo", `{.spec.volumes[?(@.projected)].name}`), "kube-api-access-"), "token"))
	if err != nil || len(tok) < 100 {
		t.Fatalf("service-account token not projected: %v (%d bytes)", err, len(tok))
	}

	// A StatefulSet with a claim, a ConfigMap, a non-root user and a
	// read-only root file system.
	cp.Apply(t, statefulSet)
	waitFor(t, "pod web-0 Ready", podReady(t, cp, "vn", "web-0"))
	webIP := jsonpath(t, cp, "vn", "pod/web-0", "{.status.podIP}")
	if got := node.Lookup("web-0.web-hs.vn.svc.cluster.local"); len(got) != 1 || got[0] != webIP {
		t.Fatalf("DNS web-0.web-hs.vn.svc.cluster.local = %v, want [%s]", got, webIP)
	}
	wc := zkConnect(t, webIP+":2181")
	if _, err := wc.Create("/kept", []byte("on the claim"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "StatefulSet ready", func() (bool, string) {
		s := jsonpath(t, cp, "vn", "statefulset/web", "{.status.readyReplicas}")
		return s == "1", s
	})
	if img := jsonpath(t, cp, "vn", "pod/web-0", "{.status.containerStatuses[0].image} {.status.containerStatuses[0].imageID}"); !strings.HasPrefix(img, "paddock:v1 vnode://") {
		t.Fatalf("container image/imageID %q", img)
	}

	// Kill the process: restartPolicy Always brings it back.
	pidOf := func() int {
		var pid int
		id := jsonpath(t, cp, "vn", "pod/web-0", "{.status.containerStatuses[0].containerID}")
		fmt.Sscanf(id[strings.LastIndex(id, "/")+1:], "%d", &pid)
		return pid
	}
	pid := pidOf()
	if pid == 0 {
		t.Fatal("no container PID in the containerID")
	}
	p, _ := os.FindProcess(pid)
	p.Kill()
	waitFor(t, "web-0 restarted and Ready", func() (bool, string) {
		s := jsonpath(t, cp, "vn", "pod/web-0", "{.status.containerStatuses[0].restartCount}")
		ok, why := podReady(t, cp, "vn", "web-0")()
		return ok && s == "1", s + " " + why
	})
	if msg := jsonpath(t, cp, "vn", "pod/web-0", "{.status.containerStatuses[0].lastState.terminated.exitCode}"); msg != "137" {
		t.Fatalf("last state exit code %q, want 137 (SIGKILL)", msg)
	}

	// Delete the pod: the StatefulSet makes it again, same name, same
	// address, same claim.
	uid := jsonpath(t, cp, "vn", "pod/web-0", "{.metadata.uid}")
	cp.Kubectl(t, "-n", "vn", "delete", "pod", "web-0", "--wait=false")
	waitFor(t, "web-0 back", func() (bool, string) {
		u := jsonpath(t, cp, "vn", "pod/web-0", "{.metadata.uid}")
		ok, why := podReady(t, cp, "vn", "web-0")()
		return ok && u != uid && !strings.HasPrefix(u, "error"), why
	})
	if got := jsonpath(t, cp, "vn", "pod/web-0", "{.status.podIP}"); got != webIP {
		t.Fatalf("web-0 came back on %s, want %s", got, webIP)
	}
	wc2 := zkConnect(t, webIP+":2181")
	if data, _, err := wc2.Get("/kept"); err != nil || string(data) != "on the claim" {
		t.Fatalf("after the pod came back: /kept = %q, %v", data, err)
	}

	// Scale to zero and delete the claim: its directory goes with it.
	pv := jsonpath(t, cp, "vn", "pvc/data-web-0", "{.spec.volumeName}")
	path := jsonpath(t, cp, "", "pv/"+pv, "{.spec.hostPath.path}")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("claim directory: %v", err)
	}
	cp.Kubectl(t, "-n", "vn", "scale", "statefulset", "web", "--replicas=0")
	waitFor(t, "web-0 gone", func() (bool, string) {
		_, err := cp.KubectlE(t, "-n", "vn", "get", "pod", "web-0")
		return err != nil, "still there"
	})
	cp.Kubectl(t, "-n", "vn", "delete", "pvc", "data-web-0", "--wait=false")
	waitFor(t, "claim directory removed", func() (bool, string) {
		_, err := os.Stat(path)
		_, perr := cp.KubectlE(t, "get", "pv", pv)
		return os.IsNotExist(err) && perr != nil, fmt.Sprint(err, perr)
	})
}
