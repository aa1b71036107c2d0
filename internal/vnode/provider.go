package vnode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// Provider is the virtual-kubelet provider: it runs each pod bound to the
// node as local processes (PodLifecycleHandler and PodNotifier of
// github.com/virtual-kubelet/virtual-kubelet/node).
type Provider struct {
	cfg      Config
	client   kubernetes.Interface
	log      *slog.Logger
	addrs    *addrBook
	recorder record.EventRecorder
	services corev1listers.ServiceLister
	shimPath string
	apiHost  string
	apiPort  string

	mu   sync.Mutex
	pods map[string]*podRT // namespace/name
	cb   func(*corev1.Pod)

	hostsKick chan struct{}
	imageIDs  sync.Map // binary path → cached id
}

// CreatePod starts a pod's containers.
func (p *Provider) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	key := pod.Namespace + "/" + pod.Name
	for {
		p.mu.Lock()
		old, ok := p.pods[key]
		if !ok {
			break
		}
		p.mu.Unlock()
		if old.uid == pod.UID {
			return nil
		}
		// A new pod of the same name (a StatefulSet's) before the old one
		// is gone: finish the old one first.
		old.delete(0)
		select {
		case <-old.done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("pod %s: the previous pod of that name is still stopping", key)
		}
	}
	defer p.mu.Unlock()
	ip, err := p.addrs.get(key)
	if err != nil {
		return err
	}
	pr := newPodRT(p, pod, ip)
	p.pods[key] = pr
	if err := os.MkdirAll(pr.hostsDir(), 0o755); err != nil {
		return err
	}
	p.writePodHostsLocked(pr)
	p.log.Info("pod created", "pod", key, "uid", pod.UID, "ip", ip)
	go pr.run()
	pr.changed()
	return nil
}

// UpdatePod takes a pod's new metadata and spec; a container whose image
// changed is restarted (the kubelet's in-place image update).
func (p *Provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	pr, ok := p.pods[pod.Namespace+"/"+pod.Name]
	p.mu.Unlock()
	if !ok || pr.uid != pod.UID {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	var restart []*ctrRT
	pr.mu.Lock()
	status := pr.pod.Status
	pr.pod = pod.DeepCopy()
	pr.pod.Status = status
	for i := range pod.Spec.Containers {
		if i < len(pr.ctrs) && pr.ctrs[i].spec.Image != pod.Spec.Containers[i].Image {
			pr.ctrs[i].spec = pod.Spec.Containers[i]
			restart = append(restart, pr.ctrs[i])
		}
	}
	pr.mu.Unlock()
	for _, c := range restart {
		c.pr.mu.Lock()
		id := c.runID
		c.pr.mu.Unlock()
		go c.kill(id, "image changed")
	}
	pr.changed()
	return nil
}

// DeletePod stops a pod's containers (SIGTERM, SIGKILL after the grace
// period) without waiting; once they are gone the pod is deleted from the
// API server.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	pr, ok := p.pods[pod.Namespace+"/"+pod.Name]
	p.mu.Unlock()
	if !ok {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	grace := time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30))) * time.Second
	p.log.Info("pod deleting", "pod", pr.key, "grace", grace)
	pr.delete(grace)
	return nil
}

// GetPod returns a pod on the node with its current status.
func (p *Provider) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	pr, ok := p.pods[namespace+"/"+name]
	p.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, name)
	}
	return pr.snapshot(), nil
}

// GetPodStatus returns a pod's current status.
func (p *Provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods lists the pods on the node.
func (p *Provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	for _, pr := range p.podList() {
		out = append(out, pr.snapshot())
	}
	return out, nil
}

// NotifyPods registers the pod controller's status callback.
func (p *Provider) NotifyPods(_ context.Context, cb func(*corev1.Pod)) {
	p.mu.Lock()
	p.cb = cb
	p.mu.Unlock()
}

func (p *Provider) notify(pod *corev1.Pod) {
	p.mu.Lock()
	cb := p.cb
	p.mu.Unlock()
	if cb != nil {
		cb(pod)
	}
}

func (p *Provider) podList() []*podRT {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*podRT, 0, len(p.pods))
	for _, pr := range p.pods {
		out = append(out, pr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func (p *Provider) forget(pr *podRT) {
	p.mu.Lock()
	if p.pods[pr.key] == pr {
		delete(p.pods, pr.key)
	}
	p.mu.Unlock()
}

func (p *Provider) event(pr *podRT, typ, reason, msg string) {
	if p.recorder != nil {
		p.recorder.Event(pr.podCopy(), typ, reason, msg)
	}
}

// imageID stands for the image digest: the sha256 of the binary the
// image maps to, so that two tags on one binary show the same ID and a
// rolling upgrade to another binary shows a new one.
func (p *Provider) imageID(image string) string {
	rule, ok := matchImage(p.cfg.Images, image)
	if !ok {
		return ""
	}
	fi, err := os.Stat(rule.Binary)
	if err != nil {
		return ""
	}
	type cached struct {
		mod  time.Time
		size int64
		id   string
	}
	if c, ok := p.imageIDs.Load(rule.Binary); ok && c.(cached).mod.Equal(fi.ModTime()) && c.(cached).size == fi.Size() {
		return c.(cached).id
	}
	f, err := os.Open(rule.Binary)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	id := "vnode://" + rule.Binary + "@sha256:" + hex.EncodeToString(h.Sum(nil))
	p.imageIDs.Store(rule.Binary, cached{fi.ModTime(), fi.Size(), id})
	return id
}

// killAll stops every process at once (the node is shutting down).
func (p *Provider) killAll() {
	for _, pr := range p.podList() {
		pr.delete(0)
	}
	for _, pr := range p.podList() {
		select {
		case <-pr.done:
		case <-time.After(10 * time.Second):
		}
	}
}
