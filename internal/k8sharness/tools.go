// Package k8sharness runs a real Kubernetes control plane on loopback for
// tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
// child processes, plus kubectl, all from the multi-call binary that the
// tools module hack/k8s builds (Kubernetes v1.37.2, etcd v3.7.0).
//
// A test typically does:
//
//	cp := k8sharness.StartControlPlane(t, nil) // etcd + apiserver + controller-manager + scheduler
//	cp.Kubectl(t, "create", "configmap", "x", "--from-literal=a=b")
//
// or, to put kube-apiserver on another etcd endpoint (Paddock's etcd API):
//
//	api := k8sharness.StartAPIServer(t, "http://127.0.0.1:2379", nil)
//	out := api.Kubectl(t, "get", "--raw", "/readyz")
//
// Every process is stopped (SIGTERM, then SIGKILL after 15 s) by t.Cleanup,
// in reverse order of start. Their logs are kept in files under the test's
// temporary directory; when the test fails, the tail of each log is written
// to the test log, and if PADDOCK_K8S_LOGDIR is set the logs are copied
// there.
//
// The tools are found by [Tools]: the directory in PADDOCK_K8S_BIN, else the
// cache directory of hack/k8s/build.sh for the current content key, else the
// script builds them (~8 minutes cold on 2 idle cores, ~15 s with a warm
// GOCACHE; run `make k8s-tools` beforehand).
// When they cannot be had the test is skipped, or fails if CI=true. With
// `go test -short` a missing cache entry skips without building.
//
// The package uses only the standard library, so that Kubernetes'
// dependencies stay out of the project's go.mod.
package k8sharness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the Kubernetes release the tools are built from.
const Version = "v1.37.2"

// Names of the tools in the tools directory (symlinks to k8s-tools).
const (
	APIServerBin         = "kube-apiserver"
	ControllerManagerBin = "kube-controller-manager"
	SchedulerBin         = "kube-scheduler"
	EtcdBin              = "etcd"
	KubectlBin           = "kubectl"
)

var toolNames = []string{APIServerBin, ControllerManagerBin, SchedulerBin, EtcdBin, KubectlBin}

var (
	toolsOnce sync.Once
	toolsDir  string
	toolsErr  error
)

// Tools returns the directory holding the tools (kube-apiserver, etcd, ...),
// locating or building them once per test binary. It skips the test when
// they cannot be had, or fails it when CI=true.
func Tools(t testing.TB) string {
	t.Helper()
	toolsOnce.Do(func() { toolsDir, toolsErr = locate(testing.Short()) })
	if toolsErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("k8sharness: the Kubernetes tools are required in CI: %v", toolsErr)
		}
		t.Skipf("k8sharness: Kubernetes tools not available: %v (run `make k8s-tools`)", toolsErr)
	}
	return toolsDir
}

// Tool returns the path of one tool, e.g. Tool(t, "kube-apiserver").
func Tool(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(Tools(t), name)
}

// EnvtestAssets returns a directory for controller-runtime's envtest
// (KUBEBUILDER_ASSETS): it holds kube-apiserver, etcd and kubectl (symlinks
// to the multi-call binary), so envtest downloads nothing. Kubernetes 1.37
// needs the apiserver flag endpoint-reconciler-type=none next to a loopback
// advertise address; with envtest set it through
//
//	env.ControlPlane.GetAPIServer().Configure().Set("endpoint-reconciler-type", "none")
func EnvtestAssets(t testing.TB) string {
	t.Helper()
	return Tools(t)
}

// locate finds the tools: PADDOCK_K8S_BIN, else the build cache for the
// current key (through build.sh --dir), else a build (unless noBuild).
func locate(noBuild bool) (string, error) {
	if dir := os.Getenv("PADDOCK_K8S_BIN"); dir != "" {
		if err := checkTools(dir); err != nil {
			return "", fmt.Errorf("PADDOCK_K8S_BIN=%s: %w", dir, err)
		}
		return dir, nil
	}
	script, err := buildScript()
	if err != nil {
		return "", err
	}
	out, err := runScript(script, "--dir")
	if err != nil {
		return "", err
	}
	if checkTools(out) == nil {
		return out, nil
	}
	if noBuild {
		return "", fmt.Errorf("not built (%s missing) and -short given", out)
	}
	fmt.Fprintf(os.Stderr, "k8sharness: building the Kubernetes tools with %s (cold: ~8 minutes on 2 idle cores, more when loaded)\n", script)
	start := time.Now()
	out, err = runScript(script)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "k8sharness: tools ready in %v: %s\n", time.Since(start).Round(time.Second), out)
	if err := checkTools(out); err != nil {
		return "", err
	}
	return out, nil
}

func checkTools(dir string) error {
	for _, n := range toolNames {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		if fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", filepath.Join(dir, n))
		}
	}
	return nil
}

// buildScript finds hack/k8s/build.sh above the working directory (tests
// run in their package's directory inside the repository).
func buildScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "hack", "k8s", "build.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/k8s/build.sh not found above the working directory; set PADDOCK_K8S_BIN")
		}
		dir = parent
	}
}

// runScript runs build.sh and returns the last line of its stdout (the
// tools directory). Its stderr (build progress) goes to ours.
func runScript(script string, args ...string) (string, error) {
	cmd := exec.Command(script, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w", script, strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no directory", script)
	}
	return dir, nil
}
