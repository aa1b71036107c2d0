// Command vnode runs a Kubernetes node whose pods are local processes
// (internal/vnode): `vnode run` registers the node and runs its pods;
// `vnode shim <spec.json>` is how the node starts each container (in its
// own mount namespace). It needs root. Tests start it through
// internal/k8sharness (StartNode).
//
//	vnode run --kubeconfig admin.kubeconfig --state-dir /tmp/vnode \
//	    --image paddock=bin/paddock [--image paddock:old=/tmp/paddock-old] [--name vnode]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/paddockhq/paddock/internal/vnode"
)

type images []vnode.ImageRule

func (i *images) String() string { return fmt.Sprint(*i) }
func (i *images) Set(s string) error {
	r, err := vnode.ParseImageRule(s)
	if err != nil {
		return err
	}
	if abs, err := filepath.Abs(r.Binary); err == nil {
		r.Binary = abs
	}
	*i = append(*i, r)
	return nil
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "shim" {
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: vnode shim <spec.json>")
			os.Exit(2)
		}
		err := vnode.Shim(os.Args[2])
		fmt.Fprintln(os.Stderr, err)
		os.Exit(128)
	}
	if len(os.Args) < 2 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: vnode run [flags] | vnode shim <spec.json>")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("vnode run", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
	name := fs.String("name", "vnode", "node name")
	state := fs.String("state-dir", "", "state directory (pods, volumes, addresses)")
	block := fs.Int("block", 0, "pod addresses are 127.<block>.x.y; 0 picks a free block")
	backoff := fs.Duration("restart-backoff", time.Second, "first restart back-off (doubles)")
	maxBackoff := fs.Duration("max-restart-backoff", 20*time.Second, "longest restart back-off")
	level := fs.String("log-level", "info", "debug, info, warn, error")
	var imgs images
	fs.Var(&imgs, "image", "image rule match=binary (repeatable): repository, its last segment, or either with :tag")
	fs.Parse(os.Args[2:])
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "vnode: --log-level:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vnode:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = vnode.Run(ctx, vnode.Config{
		NodeName: *name, RestConfig: cfg, StateDir: *state, Images: imgs, Block: *block,
		RestartBackoff: *backoff, MaxRestartBackoff: *maxBackoff, Logger: logger,
		Ready: func(n *vnode.Node) {
			// The harness waits for this line.
			fmt.Printf("vnode ready ip=%s hosts=%s images=%s\n", n.IP(), n.HostsFile(), strings.TrimSpace(imgs.String()))
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vnode:", err)
		os.Exit(1)
	}
}
