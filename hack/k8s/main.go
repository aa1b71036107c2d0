// Command k8s-tools is a multi-call binary holding a Kubernetes control plane
// for Paddock's tests: kube-apiserver, kube-controller-manager, kube-scheduler,
// etcd and kubectl, all at one pinned release (see go.mod).
//
// It dispatches on the name it was invoked as (a symlink such as
// bin/kube-apiserver -> k8s-tools) or, failing that, on its first argument:
//
//	kube-apiserver --etcd-servers=...      (through the symlink)
//	k8s-tools kube-apiserver --etcd-servers=...
//
// It lives in its own Go module (hack/k8s) so that Kubernetes' dependency
// graph never enters the project's go.mod. Build it with hack/k8s/build.sh.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	_ "time/tzdata" // CronJob time zone support, as in the upstream mains

	"go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// tools maps each tool name to its entry point. Each entry point reads its
// arguments from os.Args[1:], as the upstream main does, and may exit.
var tools = map[string]func() int{
	"kube-apiserver": func() int {
		return cli.Run(apiserver.NewAPIServerCommand())
	},
	"kube-controller-manager": func() int {
		return cli.Run(controllermanager.NewControllerManagerCommand())
	},
	"kube-scheduler": func() int {
		return cli.Run(scheduler.NewSchedulerCommand())
	},
	"etcd": func() int {
		etcdmain.Main(os.Args)
		return 0
	},
	"kubectl": func() int {
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
		if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
		return 0
	},
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := tools[name]; !ok && len(os.Args) > 1 {
		if _, ok := tools[os.Args[1]]; ok {
			// k8s-tools <tool> args...: the tool sees itself as argv[0].
			name = os.Args[1]
			os.Args = append([]string{name}, os.Args[2:]...)
		}
	}
	run, ok := tools[name]
	if !ok {
		names := make([]string, 0, len(tools))
		for n := range tools {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: %s <tool> [args...]  (or invoke through a symlink named after the tool)\ntools: %v\n", filepath.Base(os.Args[0]), names)
		os.Exit(2)
	}
	os.Exit(run())
}
