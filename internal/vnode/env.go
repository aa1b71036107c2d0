package vnode

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerEnv builds a container's environment as the kubelet does at
// each container start: the API server's address (KUBERNETES_SERVICE_*),
// then envFrom in order, then env, each value expanded with $(VAR) over
// what came before. ConfigMaps and Secrets are read fresh from the API
// server, so a restarted container sees their current content (the
// operator relies on this: its members ConfigMap is read at start).
func (p *Provider) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, ip string) ([]string, error) {
	var names []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			names = append(names, k)
		}
		vals[k] = v
	}
	if p.apiHost != "" {
		set("KUBERNETES_SERVICE_HOST", p.apiHost)
		set("KUBERNETES_SERVICE_PORT", p.apiPort)
		set("KUBERNETES_SERVICE_PORT_HTTPS", p.apiPort)
		set("KUBERNETES_PORT", "tcp://"+p.apiHost+":"+p.apiPort)
	}
	set("HOSTNAME", hostname(pod))
	ns := pod.Namespace
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := p.client.CoreV1().ConfigMaps(ns).Get(ctx, ef.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
					continue
				}
				return nil, fmt.Errorf("configmap %q: %w", ef.ConfigMapRef.Name, err)
			}
			for _, k := range sortedKeys(cm.Data) {
				set(ef.Prefix+k, cm.Data[k])
			}
		case ef.SecretRef != nil:
			s, err := p.client.CoreV1().Secrets(ns).Get(ctx, ef.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
					continue
				}
				return nil, fmt.Errorf("secret %q: %w", ef.SecretRef.Name, err)
			}
			for _, k := range sortedKeys(s.Data) {
				set(ef.Prefix+k, string(s.Data[k]))
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vals))
			continue
		}
		v, ok, err := p.envValueFrom(ctx, pod, c, e.ValueFrom, ip)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			set(e.Name, v)
		}
	}
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, k+"="+bindToPod(vals[k], ip))
	}
	return out, nil
}

func (p *Provider) envValueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src *corev1.EnvVarSource, ip string) (string, bool, error) {
	ns := pod.Namespace
	switch {
	case src.FieldRef != nil:
		v, err := fieldValue(pod, src.FieldRef.FieldPath, ip, p.addrs.nodeIP())
		return v, err == nil, err
	case src.ResourceFieldRef != nil:
		return resourceValue(c, src.ResourceFieldRef), true, nil
	case src.ConfigMapKeyRef != nil:
		r := src.ConfigMapKeyRef
		cm, err := p.client.CoreV1().ConfigMaps(ns).Get(ctx, r.Name, metav1.GetOptions{})
		if err == nil {
			if v, ok := cm.Data[r.Key]; ok {
				return v, true, nil
			}
			err = fmt.Errorf("configmap %q has no key %q", r.Name, r.Key)
		}
		if r.Optional != nil && *r.Optional {
			return "", false, nil
		}
		return "", false, err
	case src.SecretKeyRef != nil:
		r := src.SecretKeyRef
		s, err := p.client.CoreV1().Secrets(ns).Get(ctx, r.Name, metav1.GetOptions{})
		if err == nil {
			if v, ok := s.Data[r.Key]; ok {
				return string(v), true, nil
			}
			err = fmt.Errorf("secret %q has no key %q", r.Name, r.Key)
		}
		if r.Optional != nil && *r.Optional {
			return "", false, nil
		}
		return "", false, err
	}
	return "", false, nil
}

var fieldLabelRe = regexp.MustCompile(`^metadata\.(labels|annotations)\['(.*)'\]$`)

// fieldValue is the downward API's value of a field path.
func fieldValue(pod *corev1.Pod, path, ip, nodeIP string) (string, error) {
	if m := fieldLabelRe.FindStringSubmatch(path); m != nil {
		if m[1] == "labels" {
			return pod.Labels[m[2]], nil
		}
		return pod.Annotations[m[2]], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return ip, nil
	case "status.hostIP", "status.hostIPs":
		return nodeIP, nil
	}
	return "", fmt.Errorf("unsupported field path %q", path)
}

func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

// resourceValue is a resourceFieldRef: the container's limit or request
// in units of the divisor, rounded up (limits default to the node's
// capacity).
func resourceValue(c *corev1.Container, r *corev1.ResourceFieldSelector) string {
	kind, name, _ := strings.Cut(r.Resource, ".")
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		if kind == "requests" {
			return "0"
		}
		q = nodeCapacity[corev1.ResourceName(name)]
	}
	div := r.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(div.MilliValue()))))
}

// expand replaces $(NAME) with NAME's value when defined and $$ with $,
// as Kubernetes does for env values, command and args.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

var bareBindRe = regexp.MustCompile(`^:\d+$`)

// bindToPod turns "listen on every address" into "listen on the pod's
// address". Every pod on this node shares the host's network namespace,
// each with its own loopback address; a server binding 0.0.0.0:2181 in
// two pods would collide, where in a real pod 0.0.0.0 means exactly the
// pod's own addresses. So 0.0.0.0 (and a bare ":port") in env values and
// args becomes the pod's IP.
func bindToPod(v, ip string) string {
	if bareBindRe.MatchString(v) {
		return ip + v
	}
	return strings.ReplaceAll(v, "0.0.0.0", ip)
}
