package vnode

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// hostsMount is where a container sees its pod's hosts directory;
// /etc/hosts is a symlink into it, so the provider can replace the file
// atomically (a bind mount of the file itself would pin the old inode).
const hostsMount = "/run/vnode"

// ClusterDomain is the DNS domain of the names the node resolves.
const ClusterDomain = "cluster.local"

func (pr *podRT) hostsDir() string { return filepath.Join(pr.dir, "hosts") }

func hostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}

// dnsRecord is one name → address of the cluster's DNS as the node plays
// it (there is no cluster DNS server here).
type dnsRecord struct {
	ns   string // namespace of the name, for the short forms
	name string // relative to the namespace: "zk-1.zk-hs" or "zk-client"
	ip   string
}

type podView struct {
	ns, name, host, sub, ip string
	labels                  map[string]string
	ready                   bool
}

// records are the DNS names Kubernetes' DNS would serve for the pods on
// this node (the only node): <hostname>.<subdomain>.<ns>.svc.<domain>
// for a pod whose subdomain is a headless Service selecting it, and
// <service>.<ns>.svc.<domain> for every Service with a selector, both
// only for ready pods unless the Service publishes not-ready addresses
// (publishNotReadyAddresses, which the Paddock operator sets on its
// headless Service). A Service name resolves to its endpoints' pod
// addresses, even for a ClusterIP Service: there is no kube-proxy here,
// so this is right whenever a Service's port equals its target port.
func (p *Provider) records() []dnsRecord {
	var pods []podView
	for _, pr := range p.podList() {
		pr.mu.Lock()
		v := podView{ns: pr.pod.Namespace, name: pr.pod.Name, host: hostname(pr.pod), sub: pr.pod.Spec.Subdomain,
			ip: pr.ip, labels: pr.pod.Labels, ready: !pr.deleting && pr.phase == ""}
		if v.ready {
			for _, c := range pr.ctrs {
				v.ready = v.ready && c.ready
			}
		}
		pr.mu.Unlock()
		pods = append(pods, v)
	}
	var svcs []*corev1.Service
	if p.services != nil {
		svcs, _ = p.services.List(labels.Everything())
	}
	var out []dnsRecord
	for _, s := range svcs {
		if len(s.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		headless := s.Spec.ClusterIP == corev1.ClusterIPNone
		for _, v := range pods {
			if v.ns != s.Namespace || !sel.Matches(labels.Set(v.labels)) || !(v.ready || s.Spec.PublishNotReadyAddresses) {
				continue
			}
			out = append(out, dnsRecord{ns: s.Namespace, name: s.Name, ip: v.ip})
			if headless && v.sub == s.Name {
				out = append(out, dnsRecord{ns: s.Namespace, name: v.host + "." + s.Name, ip: v.ip})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ns+out[i].name != out[j].ns+out[j].name {
			return out[i].ns+out[i].name < out[j].ns+out[j].name
		}
		return out[i].ip < out[j].ip
	})
	return out
}

// hostsFile renders /etc/hosts for a pod in namespace ns (short names
// resolve within it, as the DNS search path would), or for the node when
// self is nil.
func hostsFile(recs []dnsRecord, ns string, self *podView) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by the vnode provider: the cluster's DNS names on this node.\n")
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if self != nil {
		if self.sub != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", self.ip, self.host, self.sub, self.ns, ClusterDomain, self.host)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", self.ip, self.host)
		}
	}
	for _, r := range recs {
		names := []string{r.name + "." + r.ns + ".svc." + ClusterDomain, r.name + "." + r.ns + ".svc", r.name + "." + r.ns}
		if r.ns == ns {
			names = append(names, r.name)
		}
		fmt.Fprintf(&b, "%s\t%s\n", r.ip, strings.Join(names, " "))
	}
	return b.Bytes()
}

func (p *Provider) kickHosts() {
	select {
	case p.hostsKick <- struct{}{}:
	default:
	}
}

// hostsLoop keeps every pod's hosts file (and the node's, HostsFile) up
// to date: on every pod status change and every two seconds (Services).
func (p *Provider) hostsLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		p.writeAllHosts()
		select {
		case <-ctx.Done():
			return
		case <-p.hostsKick:
		case <-t.C:
		}
	}
}

func (p *Provider) writeAllHosts() {
	recs := p.records()
	writeIfChanged(p.HostsFile(), hostsFile(recs, "", nil))
	for _, pr := range p.podList() {
		p.writePodHosts(pr, recs)
	}
}

func (p *Provider) writePodHostsLocked(pr *podRT) {
	// Called with p.mu held at pod creation: no records yet beyond itself.
	p.writePodHosts(pr, nil)
}

func (p *Provider) writePodHosts(pr *podRT, recs []dnsRecord) {
	pr.mu.Lock()
	self := podView{ns: pr.pod.Namespace, name: pr.pod.Name, host: hostname(pr.pod), sub: pr.pod.Spec.Subdomain, ip: pr.ip}
	pr.mu.Unlock()
	writeIfChanged(filepath.Join(pr.hostsDir(), "hosts"), hostsFile(recs, self.ns, &self))
}

// HostsFile is the node's view of the cluster's DNS names (every pod's
// and Service's), in /etc/hosts format, for programs outside the pods
// (tests, an operator run beside the node).
func (p *Provider) HostsFile() string { return filepath.Join(p.cfg.StateDir, "hosts") }

func writeIfChanged(path string, data []byte) {
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return
	}
	os.Rename(tmp, path)
}
