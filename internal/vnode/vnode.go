// Package vnode is a Kubernetes node without a container runtime: a
// virtual-kubelet (github.com/virtual-kubelet/virtual-kubelet) provider
// that runs each pod's containers as local processes, for end-to-end
// tests of the Paddock operator on a real control plane.
//
// What a pod gets, and how it differs from a kubelet with a runtime:
//
//   - An address of its own, 127.<block>.x.y on lo, kept for the pod's
//     namespace/name so a StatefulSet pod that is made again comes back on
//     it. All pods share the host's network namespace, so "bind every
//     address" (0.0.0.0, or a bare ":port") in env values and args is
//     rewritten to the pod's address.
//   - A file system of its own: each container runs through `vnode shim`
//     in a new mount namespace whose root is an overlay of the host's root
//     (writes stay private), with a fresh /dev, the termination-log file,
//     the pod's volumes at their mount paths, and the image's binary at
//     its entrypoint. Images map to local binaries by rules (ImageRule):
//     there is no image store. readOnlyRootFilesystem, runAsUser,
//     runAsGroup, fsGroup and supplementalGroups are honoured.
//   - Volumes: emptyDir, hostPath, PersistentVolumeClaims (bound by the
//     node's own provisioner to a directory that outlives the pod and is
//     removed with the claim), ConfigMaps, Secrets, the downward API and
//     projected volumes with service-account tokens (TokenRequest),
//     updated atomically as the kubelet does.
//   - Env and args from the pod spec, resolved at every container start
//     (envFrom and key references read fresh), $(VAR) expanded.
//   - DNS: /etc/hosts is the pod's view of the cluster's DNS
//     (<pod>.<headless-svc>.<ns>.svc.cluster.local for ready pods, or all
//     with publishNotReadyAddresses; Service names to their endpoints),
//     rewritten as pods come and go; there is no cluster DNS server.
//   - Probes (httpGet, tcpSocket, exec through nsenter) with the kubelet's
//     semantics: startup gates the others, liveness and startup failures
//     kill the container, readiness sets Ready.
//   - restartPolicy with a doubling back-off, the termination message
//     (file or FallbackToLogsOnError), and after deletion SIGTERM, SIGKILL
//     after the grace period, then the pod object is removed at once.
//
// It needs root (mount namespaces, overlay, pivot_root).
package vnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Config configures a node.
type Config struct {
	// NodeName is the Node's name (default "vnode").
	NodeName string
	// RestConfig reaches the API server.
	RestConfig *rest.Config
	// StateDir holds the node's files: pods/ (one directory per pod:
	// volumes, logs, container roots), volumes/ (provisioned claims),
	// addresses.json, hosts.
	StateDir string
	// Images maps container images to binaries.
	Images []ImageRule
	// Block is the second octet of the pod addresses (127.Block.x.y);
	// 0 takes the first free one from 10 up (locked per machine).
	Block int
	// ShimPath is the executable with the `shim` subcommand (default:
	// this one).
	ShimPath string
	// StorageClass and Provisioner name the node's default StorageClass
	// and its provisioner (default "vnode", "paddock.dev/vnode").
	StorageClass, Provisioner string
	// RestartBackoff and MaxRestartBackoff bound the restart back-off
	// (default 1s doubling to 20s; the kubelet's are 10s and 5 min).
	RestartBackoff, MaxRestartBackoff time.Duration
	// ResyncPeriod is how often projected volumes are refreshed (10s).
	ResyncPeriod time.Duration
	// Logger receives the node's log (default: stderr, info).
	Logger *slog.Logger
	// Ready, if set, is called once the node is registered and serving.
	Ready func(n *Node)
}

// Node is a running node.
type Node struct {
	p *Provider
}

// IP is the node's address (its InternalIP; pods get others from its
// block).
func (n *Node) IP() string { return n.p.addrs.nodeIP() }

// HostsFile is the node's /etc/hosts view of the cluster's DNS names.
func (n *Node) HostsFile() string { return n.p.HostsFile() }

// nodeCapacity is what the node advertises (enough for any test).
var nodeCapacity = corev1.ResourceList{
	corev1.ResourceCPU:              resource.MustParse("32"),
	corev1.ResourceMemory:           resource.MustParse("64Gi"),
	corev1.ResourcePods:             resource.MustParse("200"),
	corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
}

// Run registers the node and runs its pods until ctx ends; then every
// pod's processes are killed.
func Run(ctx context.Context, cfg Config) error {
	if cfg.RestConfig == nil {
		return errors.New("vnode: no API server configuration")
	}
	if cfg.NodeName == "" {
		cfg.NodeName = "vnode"
	}
	if cfg.StateDir == "" {
		return errors.New("vnode: no state directory")
	}
	if cfg.StorageClass == "" {
		cfg.StorageClass = "vnode"
	}
	if cfg.Provisioner == "" {
		cfg.Provisioner = "paddock.dev/vnode"
	}
	if cfg.RestartBackoff == 0 {
		cfg.RestartBackoff = time.Second
	}
	if cfg.MaxRestartBackoff == 0 {
		cfg.MaxRestartBackoff = 20 * time.Second
	}
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.ShimPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.ShimPath = exe
	}
	if os.Geteuid() != 0 {
		return errors.New("vnode: must run as root (mount namespaces for the pods)")
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return err
	}
	cfg.StateDir = abs
	for _, d := range []string{"pods", "volumes"} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, d), 0o755); err != nil {
			return err
		}
	}
	client, err := kubernetes.NewForConfig(cfg.RestConfig)
	if err != nil {
		return err
	}
	addrs, err := openAddrBook(cfg.StateDir, cfg.Block)
	if err != nil {
		return err
	}
	defer addrs.close()
	ctx = log.WithLogger(ctx, vkslog.FromSlog(cfg.Logger.With("component", "virtual-kubelet")))
	p := &Provider{
		cfg: cfg, client: client, log: cfg.Logger, addrs: addrs, shimPath: cfg.ShimPath,
		pods: map[string]*podRT{}, hostsKick: make(chan struct{}, 1),
	}
	if u, err := url.Parse(cfg.RestConfig.Host); err == nil && u.Host != "" {
		p.apiHost, p.apiPort = u.Hostname(), u.Port()
		if p.apiPort == "" {
			p.apiPort = "443"
		}
	}

	podFactory := informers.NewSharedInformerFactoryWithOptions(client, time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		}))
	factory := informers.NewSharedInformerFactory(client, time.Minute)
	podInf := podFactory.Core().V1().Pods()
	svcInf := factory.Core().V1().Services()
	p.services = svcInf.Lister()
	pvcInf := factory.Core().V1().PersistentVolumeClaims()
	pvInf := factory.Core().V1().PersistentVolumes()
	prov := &provisioner{p: p, pvcs: pvcInf.Lister(), pvs: pvInf.Lister(), kick: make(chan struct{}, 1),
		class: cfg.StorageClass, name: cfg.Provisioner, dir: filepath.Join(cfg.StateDir, "volumes")}
	onChange := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { prov.trigger() },
		UpdateFunc: func(any, any) { prov.trigger() },
	}
	pvcInf.Informer().AddEventHandler(onChange)
	pvInf.Informer().AddEventHandler(onChange)
	svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { p.kickHosts() }, UpdateFunc: func(any, any) { p.kickHosts() }, DeleteFunc: func(any) { p.kickHosts() },
	})

	eb := record.NewBroadcaster()
	eb.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events(corev1.NamespaceAll)})
	defer eb.Shutdown()
	p.recorder = eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "vnode", Host: cfg.NodeName})

	pc, err := node.NewPodController(node.PodControllerConfig{
		PodClient: client.CoreV1(), PodInformer: podInf, EventRecorder: p.recorder, Provider: p,
		ConfigMapInformer: factory.Core().V1().ConfigMaps(), SecretInformer: factory.Core().V1().Secrets(),
		ServiceInformer: svcInf,
		// Env is resolved by the provider at every container start.
		SkipDownwardAPIResolution: true,
	})
	if err != nil {
		return err
	}
	nodeObj := p.nodeObject()
	nc, err := node.NewNodeController(node.NewNaiveNodeProvider(), nodeObj, client.CoreV1().Nodes(),
		node.WithNodeEnableLeaseV1(client.CoordinationV1().Leases(corev1.NamespaceNodeLease), 40),
		node.WithNodeStatusUpdateInterval(20*time.Second))
	if err != nil {
		return err
	}
	if err := prov.ensureClass(ctx); err != nil {
		return fmt.Errorf("storage class: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	podFactory.Start(ctx.Done())
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	go pc.Run(ctx, max(4, runtime.NumCPU()))
	defer p.killAll()
	select {
	case <-pc.Ready():
	case <-pc.Done():
		return fmt.Errorf("pod controller: %w", pc.Err())
	case <-ctx.Done():
		return ctx.Err()
	}
	go nc.Run(ctx)
	select {
	case <-nc.Ready():
	case <-nc.Done():
		return fmt.Errorf("node controller: %w", nc.Err())
	case <-ctx.Done():
		return ctx.Err()
	}
	go p.hostsLoop(ctx)
	go prov.loop(ctx)
	p.log.Info("node ready", "node", cfg.NodeName, "ip", addrs.nodeIP(), "state", cfg.StateDir)
	if cfg.Ready != nil {
		cfg.Ready(&Node{p: p})
	}
	select {
	case <-ctx.Done():
		return nil
	case <-pc.Done():
		return fmt.Errorf("pod controller: %w", pc.Err())
	case <-nc.Done():
		return fmt.Errorf("node controller: %w", nc.Err())
	}
}

func (p *Provider) nodeObject() *corev1.Node {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: p.cfg.NodeName, Labels: map[string]string{
			"type": "virtual-kubelet", "kubernetes.io/role": "agent", "kubernetes.io/hostname": p.cfg.NodeName,
			"kubernetes.io/os": "linux", "kubernetes.io/arch": runtime.GOARCH,
		}},
		Status: corev1.NodeStatus{
			Phase:       corev1.NodeRunning,
			Capacity:    nodeCapacity,
			Allocatable: nodeCapacity,
			Conditions: []corev1.NodeCondition{
				cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "vnode provider is ready"),
				cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", ""),
				cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", ""),
				cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", ""),
				cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", ""),
			},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: p.addrs.nodeIP()},
				{Type: corev1.NodeHostName, Address: p.cfg.NodeName},
			},
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem: "linux", Architecture: runtime.GOARCH,
				KubeletVersion: "v1.37.2-vnode", ContainerRuntimeVersion: "vnode://1",
			},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		},
	}
}
