// Package etcdref runs a real etcd 3.7 server for differential tests.
//
// The binary comes from the environment variable ETCD_BIN, or is built
// once (go build of go.etcd.io/etcd/server/v3/etcdmain in a scratch module,
// through the Go module proxy) into the user cache directory and reused.
// When neither works the test is skipped, with the reason.
package etcdref

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Version is the etcd release the reference runs.
const Version = "v3.7.0"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of an etcd binary, building it if needed.
func Binary() (string, error) {
	buildOnce.Do(func() {
		if b := os.Getenv("ETCD_BIN"); b != "" {
			binPath = b
			return
		}
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		dir = filepath.Join(dir, "paddock", "etcd-"+Version)
		bin := filepath.Join(dir, "etcd")
		if _, err := os.Stat(bin); err == nil {
			binPath = bin
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		main := "package main\n\nimport (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n"
		mod := "module paddock.test/etcdref\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 " + Version + "\n"
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644); err != nil {
			buildErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
			buildErr = err
			return
		}
		for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", "etcd.tmp", "."}} {
			cmd := exec.Command("go", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("building etcd: go %v: %v\n%s", args, err, out)
				return
			}
		}
		if err := os.Rename(filepath.Join(dir, "etcd.tmp"), bin); err != nil {
			buildErr = err
			return
		}
		binPath = bin
	})
	return binPath, buildErr
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a single-member etcd and returns its client URL; it is
// stopped when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	return StartArgs(t)
}

// StartArgs is Start with extra etcd flags (for example
// --watch-progress-notify-interval).
func StartArgs(t testing.TB, extra ...string) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Skipf("no etcd reference: %v", err)
	}
	dir := t.TempDir()
	cport, pport := freePort(t), freePort(t)
	curl := "http://127.0.0.1:" + strconv.Itoa(cport)
	purl := "http://127.0.0.1:" + strconv.Itoa(pport)
	cmd := exec.Command(bin, "--name", "ref", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
		"--initial-cluster", "ref="+purl, "--log-level", "error")
	cmd.Args = append(cmd.Args, extra...)
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(cport))
		if err == nil {
			c.Close()
			return curl
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "etcd.log"))
			t.Fatalf("etcd did not start: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
