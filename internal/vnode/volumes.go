package vnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// volume is one of a pod's volumes on the host.
type volume struct {
	path     string
	readOnly bool
	// projected volumes (configMap, secret, downwardAPI, projected) are
	// rewritten at every container start and every resync, atomically,
	// the way the kubelet does: files are symlinks into ..data, which is
	// swapped to a new timestamped directory.
	project func(ctx context.Context) (map[string]projFile, error)
}

type projFile struct {
	data []byte
	mode os.FileMode
}

// setupVolumes resolves every volume of the pod to a host directory:
// emptyDir under the pod's directory (gone with the pod), hostPath as
// given, a PVC through its bound PV's hostPath (the provisioner's
// directories outlive the pod), and projections of ConfigMaps, Secrets,
// the downward API and service-account tokens.
func (p *Provider) setupVolumes(ctx context.Context, pr *podRT) (map[string]*volume, error) {
	pod := pr.podCopy()
	vols := map[string]*volume{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(pr.dir, "volumes", v.Name)
		vs := v.VolumeSource
		switch {
		case vs.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, err
			}
			vols[v.Name] = &volume{path: dir}
		case vs.HostPath != nil:
			if vs.HostPath.Type != nil && *vs.HostPath.Type == corev1.HostPathDirectoryOrCreate {
				if err := os.MkdirAll(vs.HostPath.Path, 0o755); err != nil {
					return nil, err
				}
			}
			vols[v.Name] = &volume{path: vs.HostPath.Path}
		case vs.PersistentVolumeClaim != nil:
			path, err := p.claimPath(ctx, pod.Namespace, vs.PersistentVolumeClaim.ClaimName)
			if err != nil {
				return nil, err
			}
			vols[v.Name] = &volume{path: path, readOnly: vs.PersistentVolumeClaim.ReadOnly}
		case vs.ConfigMap != nil, vs.Secret != nil, vs.DownwardAPI != nil, vs.Projected != nil:
			vol := &volume{path: dir, readOnly: true}
			vol.project = func(ctx context.Context) (map[string]projFile, error) { return p.projection(ctx, pr, vs) }
			vols[v.Name] = vol
		default:
			return nil, fmt.Errorf("volume %q: unsupported volume type on this node", v.Name)
		}
	}
	if err := p.refreshProjections(ctx, pr, vols); err != nil {
		return nil, err
	}
	if fsGroup := fsGroupOf(pod); fsGroup != nil {
		for name, v := range vols {
			src := volumeSource(pod, name)
			if src != nil && (src.EmptyDir != nil || src.PersistentVolumeClaim != nil || src.Projected != nil ||
				src.ConfigMap != nil || src.Secret != nil || src.DownwardAPI != nil) {
				chownGroup(v.path, int(*fsGroup))
			}
		}
	}
	return vols, nil
}

func volumeSource(pod *corev1.Pod, name string) *corev1.VolumeSource {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i].VolumeSource
		}
	}
	return nil
}

func fsGroupOf(pod *corev1.Pod) *int64 {
	if sc := pod.Spec.SecurityContext; sc != nil {
		return sc.FSGroup
	}
	return nil
}

// chownGroup gives a volume to the pod's fsGroup as the kubelet does:
// group ownership, group read/write, setgid directories.
func chownGroup(root string, gid int) {
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		os.Lchown(p, -1, gid)
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		mode := fi.Mode().Perm() | 0o060
		if fi.IsDir() {
			os.Chmod(p, mode|0o010|os.ModeSetgid)
		} else {
			os.Chmod(p, mode)
		}
		return nil
	})
}

// claimPath is the host directory of a bound claim.
func (p *Provider) claimPath(ctx context.Context, ns, name string) (string, error) {
	pvc, err := p.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("claim %q: %w", name, err)
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return "", fmt.Errorf("claim %q is not bound yet", name)
	}
	pv, err := p.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("volume %q of claim %q: %w", pvc.Spec.VolumeName, name, err)
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, os.MkdirAll(pv.Spec.HostPath.Path, 0o777)
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("volume %q of claim %q is neither hostPath nor local", pv.Name, name)
}

func (p *Provider) refreshProjections(ctx context.Context, pr *podRT, vols map[string]*volume) error {
	for name, v := range vols {
		if v.project == nil {
			continue
		}
		files, err := v.project(ctx)
		if err != nil {
			return fmt.Errorf("volume %q: %w", name, err)
		}
		if err := writeProjection(v.path, files); err != nil {
			return fmt.Errorf("volume %q: %w", name, err)
		}
	}
	return nil
}

func (p *Provider) projection(ctx context.Context, pr *podRT, vs corev1.VolumeSource) (map[string]projFile, error) {
	pod := pr.podCopy()
	out := map[string]projFile{}
	mode := func(def *int32, item *int32) os.FileMode {
		switch {
		case item != nil:
			return os.FileMode(*item)
		case def != nil:
			return os.FileMode(*def)
		}
		return 0o644
	}
	addKeys := func(data map[string][]byte, items []corev1.KeyToPath, def *int32, what string, optional bool) error {
		if data == nil {
			if optional {
				return nil
			}
			return fmt.Errorf("%s not found", what)
		}
		if len(items) == 0 {
			for k, v := range data {
				out[k] = projFile{v, mode(def, nil)}
			}
			return nil
		}
		for _, it := range items {
			v, ok := data[it.Key]
			if !ok {
				if optional {
					continue
				}
				return fmt.Errorf("%s has no key %q", what, it.Key)
			}
			out[it.Path] = projFile{v, mode(def, it.Mode)}
		}
		return nil
	}
	cmData := func(name string) (map[string][]byte, error) {
		cm, err := p.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		d := map[string][]byte{}
		for k, v := range cm.Data {
			d[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			d[k] = v
		}
		return d, nil
	}
	secretData := func(name string) (map[string][]byte, error) {
		s, err := p.client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		return s.Data, nil
	}
	downward := func(items []corev1.DownwardAPIVolumeFile, def *int32) error {
		for _, it := range items {
			var v string
			switch {
			case it.FieldRef != nil:
				var err error
				if v, err = fieldValue(pod, it.FieldRef.FieldPath, pr.ip, p.addrs.nodeIP()); err != nil {
					return err
				}
			case it.ResourceFieldRef != nil:
				c := containerByName(pod, it.ResourceFieldRef.ContainerName)
				if c == nil {
					return fmt.Errorf("downward API: no container %q", it.ResourceFieldRef.ContainerName)
				}
				v = resourceValue(c, it.ResourceFieldRef)
			}
			out[it.Path] = projFile{[]byte(v), mode(def, it.Mode)}
		}
		return nil
	}
	switch {
	case vs.ConfigMap != nil:
		d, err := cmData(vs.ConfigMap.Name)
		if err != nil {
			return nil, err
		}
		return out, addKeys(d, vs.ConfigMap.Items, vs.ConfigMap.DefaultMode, "configmap "+vs.ConfigMap.Name, ptr.Deref(vs.ConfigMap.Optional, false))
	case vs.Secret != nil:
		d, err := secretData(vs.Secret.SecretName)
		if err != nil {
			return nil, err
		}
		return out, addKeys(d, vs.Secret.Items, vs.Secret.DefaultMode, "secret "+vs.Secret.SecretName, ptr.Deref(vs.Secret.Optional, false))
	case vs.DownwardAPI != nil:
		return out, downward(vs.DownwardAPI.Items, vs.DownwardAPI.DefaultMode)
	case vs.Projected != nil:
		def := vs.Projected.DefaultMode
		for _, src := range vs.Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				d, err := cmData(src.ConfigMap.Name)
				if err != nil {
					return nil, err
				}
				if err := addKeys(d, src.ConfigMap.Items, def, "configmap "+src.ConfigMap.Name, ptr.Deref(src.ConfigMap.Optional, false)); err != nil {
					return nil, err
				}
			case src.Secret != nil:
				d, err := secretData(src.Secret.Name)
				if err != nil {
					return nil, err
				}
				if err := addKeys(d, src.Secret.Items, def, "secret "+src.Secret.Name, ptr.Deref(src.Secret.Optional, false)); err != nil {
					return nil, err
				}
			case src.DownwardAPI != nil:
				if err := downward(src.DownwardAPI.Items, def); err != nil {
					return nil, err
				}
			case src.ServiceAccountToken != nil:
				tok, err := pr.cachedToken(ctx, p, pod, src.ServiceAccountToken)
				if err != nil {
					return nil, err
				}
				m := os.FileMode(0o600)
				if def != nil {
					m = os.FileMode(*def)
				}
				out[src.ServiceAccountToken.Path] = projFile{[]byte(tok), m}
			}
		}
		return out, nil
	}
	return out, nil
}

// token asks the API server for a token bound to the pod (TokenRequest),
// as the kubelet does for projected service-account tokens.
func (p *Provider) token(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := ptr.Deref(src.ExpirationSeconds, 3600)
	tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(exp),
		BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		tr.Spec.Audiences = []string{src.Audience}
	}
	res, err := p.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for service account %q: %w", sa, err)
	}
	return res.Status.Token, nil
}

// writeProjection writes files into dir atomically: a new timestamped
// directory, then the ..data symlink renamed over, then one symlink per
// top-level name (the kubelet's AtomicWriter layout), so that a reader
// never sees half of an update.
func writeProjection(dir string, files map[string]projFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Unchanged content: nothing to do.
	if cur, err := readProjection(dir); err == nil && sameFiles(cur, files) {
		return nil
	}
	ts := "..vnode_" + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	tsDir := filepath.Join(dir, ts)
	if err := os.Mkdir(tsDir, 0o755); err != nil {
		return err
	}
	for name, f := range files {
		if strings.Contains(name, "..") {
			return fmt.Errorf("bad file name %q", name)
		}
		p := filepath.Join(tsDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	os.Remove(tmp)
	if err := os.Symlink(ts, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	top := map[string]bool{}
	for name := range files {
		first, _, _ := strings.Cut(name, "/")
		top[first] = true
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "..") {
			continue
		}
		if !top[n] {
			os.Remove(filepath.Join(dir, n))
		}
	}
	for n := range top {
		link := filepath.Join(dir, n)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", n), link); err != nil {
				return err
			}
		}
	}
	if old != "" && old != ts {
		os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

func readProjection(dir string) (map[string]projFile, error) {
	data := filepath.Join(dir, "..data")
	target, err := os.Readlink(data)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, target)
	out := map[string]projFile{}
	err = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = projFile{b, fi.Mode().Perm()}
		return nil
	})
	return out, err
}

func sameFiles(a, b map[string]projFile) bool {
	if len(a) != len(b) {
		return false
	}
	for k, f := range a {
		g, ok := b[k]
		if !ok || g.mode.Perm() != f.mode.Perm() || !slices.Equal(f.data, g.data) {
			return false
		}
	}
	return true
}

func containerByName(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if name == "" || pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}
