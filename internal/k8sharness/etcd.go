package k8sharness

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// EtcdOptions adjusts StartEtcd. The zero value (or nil) is fine.
type EtcdOptions struct {
	// Flags overrides or adds etcd flags (name without dashes -> value;
	// an empty value removes a default flag).
	Flags map[string]string
	// ReadyTimeout defaults to DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Etcd is a single-member etcd (v3.7) on loopback, the reference backend.
type Etcd struct {
	*Process
	Endpoint string // client URL, e.g. http://127.0.0.1:41234
	DataDir  string
	Dir      string // working directory (logs, data)
	// StartupTime is how long it took from exec to healthy.
	StartupTime time.Duration
}

// StartEtcd starts a fresh single-member etcd on loopback, with
// --unsafe-no-fsync, and waits until /health reports true.
func StartEtcd(t testing.TB, opts *EtcdOptions) *Etcd {
	t.Helper()
	if opts == nil {
		opts = &EtcdOptions{}
	}
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	dir := t.TempDir()
	e := &Etcd{Dir: dir, DataDir: filepath.Join(dir, "data")}
	startWithRetry(t, "etcd", func() error {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		if err := os.RemoveAll(e.DataDir); err != nil {
			return err
		}
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		args := flagArgs(map[string]string{
			"name":                        "default",
			"data-dir":                    e.DataDir,
			"listen-client-urls":          client,
			"advertise-client-urls":       client,
			"listen-peer-urls":            peer,
			"initial-advertise-peer-urls": peer,
			"initial-cluster":             "default=" + peer,
			"initial-cluster-state":       "new",
			"unsafe-no-fsync":             "true",
			"log-level":                   "warn",
		}, opts.Flags)
		start := time.Now()
		p, err := startProcess(t, EtcdBin, dir, args)
		if err != nil {
			return err
		}
		hc := &http.Client{Timeout: 5 * time.Second}
		err = waitReady(p, timeout, func(ctx context.Context) error {
			return httpGetOK(ctx, hc, client+"/health", "", `"health":"true"`)
		})
		if err != nil {
			p.Stop()
			return err
		}
		e.Process, e.Endpoint, e.StartupTime = p, client, time.Since(start)
		return nil
	})
	t.Logf("etcd ready at %s in %v (pid %d)", e.Endpoint, e.StartupTime.Round(time.Millisecond), e.PID())
	return e
}
