// Command demo runs the whole seed (internal/seed) for a person to
// watch, as `make demo-k8s`: a Kubernetes control plane whose state lives
// in a 3-member Paddock ensemble (etcd v3 API), a vnode node, the Paddock
// operator deploying a second Paddock ensemble (a PaddockCluster of 3)
// on it, and a ZooKeeper client using that ensemble. It prints each step,
// then leaves everything running with the kubeconfig and commands to try,
// following the PaddockCluster's status, until Ctrl-C tears it down.
//
// It is the same code as test/seed: internal/seed takes a testing.TB, and
// demoT is one for a program (logs to the terminal, cleanups on exit, a
// fatal error tears down and exits 1). It needs root (the vnode) and the
// Kubernetes tools (PADDOCK_K8S_BIN, or hack/k8s/build.sh builds them).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/k8sharness"
	"github.com/paddockhq/paddock/internal/seed"
)

// demoT is a testing.TB for a program. The embedded interface is nil:
// only the methods below exist (they are all that internal/seed and the
// harnesses it uses call); any other would panic.
type demoT struct {
	testing.TB
	verbose  bool
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	dir      string
	n        int
	down     sync.Once
}

func (d *demoT) Helper()      {}
func (d *demoT) Name() string { return "demo" }

// Logf prints the harnesses' own messages (component started, ready in
// ...) indented, with -v; the steps come through Say.
func (d *demoT) Logf(format string, args ...any) {
	if d.verbose {
		fmt.Printf("      · %s\n", strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "\n        "))
	}
}
func (d *demoT) Log(args ...any) { d.Logf("%s", fmt.Sprint(args...)) }

func (d *demoT) Errorf(format string, args ...any) {
	d.mu.Lock()
	d.failed = true
	d.mu.Unlock()
	fmt.Fprintf(os.Stderr, "demo: error: %s\n", fmt.Sprintf(format, args...))
}
func (d *demoT) Error(args ...any) { d.Errorf("%s", fmt.Sprint(args...)) }

// Fatalf reports, tears everything down and exits.
func (d *demoT) Fatalf(format string, args ...any) {
	d.mu.Lock()
	d.failed = true
	d.mu.Unlock()
	fmt.Fprintf(os.Stderr, "demo: %s\n", fmt.Sprintf(format, args...))
	d.teardown()
	fmt.Fprintf(os.Stderr, "demo: failed; logs kept in %s\n", d.dir)
	os.Exit(1)
}
func (d *demoT) Fatal(args ...any)                { d.Fatalf("%s", fmt.Sprint(args...)) }
func (d *demoT) FailNow()                         { d.Fatalf("failed") }
func (d *demoT) Skip(args ...any)                 { d.Fatalf("cannot run here: %s", fmt.Sprint(args...)) }
func (d *demoT) Skipf(format string, args ...any) { d.Fatalf("cannot run here: "+format, args...) }
func (d *demoT) SkipNow()                         { d.Fatalf("cannot run here") }

func (d *demoT) Failed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failed
}

func (d *demoT) TempDir() string {
	d.mu.Lock()
	d.n++
	n := d.n
	d.mu.Unlock()
	dir := filepath.Join(d.dir, fmt.Sprintf("%03d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		d.Fatal(err)
	}
	return dir
}

func (d *demoT) Cleanup(f func()) {
	d.mu.Lock()
	d.cleanups = append(d.cleanups, f)
	d.mu.Unlock()
}

// teardown runs the cleanups once, last registered first (processes stop
// in reverse order of start, as in a test).
func (d *demoT) teardown() {
	d.down.Do(func() {
		for {
			d.mu.Lock()
			if len(d.cleanups) == 0 {
				d.mu.Unlock()
				return
			}
			f := d.cleanups[len(d.cleanups)-1]
			d.cleanups = d.cleanups[:len(d.cleanups)-1]
			d.mu.Unlock()
			f()
		}
	})
}

func main() {
	testing.Init() // k8sharness reads testing.Short
	verbose := flag.Bool("v", false, "also print the harnesses' messages (components started, ready in ...)")
	keep := flag.Bool("keep", false, "keep the working directory (logs, data) after Ctrl-C")
	replicas := flag.Int("replicas", 3, "replicas of the PaddockCluster")
	flag.Parse()

	dir, err := os.MkdirTemp("", "paddock-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	d := &demoT{verbose: *verbose, dir: dir}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	ready := make(chan struct{})
	// Ctrl-C during start-up; once ready, main's loop takes the signal.
	go func() {
		select {
		case s := <-sig:
			fmt.Printf("\n%s during start-up: tearing down\n", s)
			d.teardown()
			if !*keep {
				os.RemoveAll(dir)
			}
			os.Exit(130)
		case <-ready:
		}
	}()

	start := time.Now()
	say := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if strings.HasPrefix(msg, "step ") {
			fmt.Printf("\n[%6.1fs] %s\n", time.Since(start).Seconds(), msg)
			return
		}
		fmt.Println(msg)
	}
	fmt.Printf("Paddock seed demo: Kubernetes on Paddock, Paddock on Kubernetes (work dir %s)\n", dir)
	s := seed.Start(d, seed.Options{Say: say, Replicas: int32(*replicas)})
	s.Deploy(d)
	s.UseZooKeeper(d)
	s.CheckState(d)
	close(ready)

	tools := k8sharness.Tools(d)
	var members []string
	for _, m := range s.Ensemble.Members {
		members = append(members, m.ClientAddr)
	}
	servers := s.Servers()
	fmt.Printf(`
[%6.1fs] running. Kubernetes keeps its state in the Paddock ensemble %s
(etcd API %s); the PaddockCluster seed/zk runs on the vnode at %s.

Try, in another terminal:
  export KUBECONFIG=%s PATH=%s:$PATH
  kubectl get nodes -o wide
  kubectl get paddockclusters -A
  kubectl -n seed describe paddockcluster zk
  kubectl -n seed get statefulsets,pods,services,pvc -o wide
  kubectl -n seed patch paddockcluster zk --type=merge -p '{"spec":{"replicas":5}}'
  %s cli -server %s ls /seed
  %s cli -server %s get /seed
  %s cli -server %s ls /        # the ensemble under Kubernetes (its ZooKeeper side)
The members' logs: %s/pods/seed_zk-*/logs/paddock.log; the operator's: %s
Following the PaddockCluster's status below. Ctrl-C tears everything down.
`, time.Since(start).Seconds(), strings.Join(members, ","), strings.Join(s.EtcdEndpoints, ","), s.Node.IP,
		s.API.Kubeconfig, tools,
		s.PaddockBin, strings.Join(servers, ","),
		s.PaddockBin, servers[0],
		s.PaddockBin, members[0],
		s.Node.StateDir, s.OperatorLog)

	last := ""
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case sg := <-sig:
			fmt.Printf("\n%s: tearing down (operator, vnode and its pods, scheduler, controller-manager, apiserver, the Paddock ensemble)\n", sg)
			d.teardown()
			if *keep {
				fmt.Printf("work dir kept: %s\n", dir)
			} else {
				os.RemoveAll(dir)
			}
			fmt.Println("done")
			return
		case <-tick.C:
			if st := s.Status(); st != last {
				fmt.Printf("[%s] PaddockCluster seed/zk: %s\n", time.Now().Format("15:04:05"), st)
				last = st
			}
		}
	}
}
