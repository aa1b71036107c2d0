package k8sharness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KubectlTimeout bounds one kubectl invocation.
var KubectlTimeout = 2 * time.Minute

// Kubectl runs `kubectl --kubeconfig=<kubeconfig> args...` and returns its
// stdout, failing the test (with kubectl's stderr) if it exits non-zero.
// The user's ~/.kube (config, cache, kuberc) is not consulted.
func Kubectl(t testing.TB, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := KubectlE(t, kubeconfig, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// KubectlE runs kubectl like Kubectl, with stdin (if not empty) on its
// standard input, and returns stdout and an error that includes stderr.
func KubectlE(t testing.TB, kubeconfig, stdin string, args ...string) (string, error) {
	t.Helper()
	bin := Tool(t, KubectlBin)
	ctx, cancel := context.WithTimeout(context.Background(), KubectlTimeout)
	defer cancel()
	full := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--cache-dir=" + filepath.Join(filepath.Dir(kubeconfig), "kubectl-cache"),
	}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "KUBERC=off", "KUBECONFIG="+kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}
