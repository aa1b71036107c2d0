// Package optest runs the Paddock operator's manager in-process for tests
// (envtest, the end-to-end suite, the seed): the same controllers `paddock
// operator` runs, started beside the test rather than in a pod, stopped
// when the test ends.
package optest

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/paddockhq/paddock/internal/proc"
	"github.com/paddockhq/paddock/operator"
)

// Start runs the manager built from o until the test ends and returns a
// client with the operator's scheme for o.Config. With logFile set, the
// operator's log (debug level) goes to that file and its last 60 lines
// are shown if the test fails; controller-runtime's logger is global, so
// the last Start of a process wins.
func Start(t testing.TB, o operator.Options, logFile string) client.Client {
	t.Helper()
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			t.Fatal(err)
		}
		ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})))
		t.Cleanup(func() {
			f.Close()
			if t.Failed() {
				t.Logf("--- operator log tail (%s):\n%s", logFile, proc.TailFile(logFile, 60))
			}
		})
	}
	mgr, err := operator.NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("operator: %v", err)
		}
	}()
	// Registered after the log's cleanup, so it runs first: the
	// manager stops before its log file closes.
	t.Cleanup(func() { cancel(); <-done })
	c, err := client.New(o.Config, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
