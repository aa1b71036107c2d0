package vnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/utils/ptr"
)

// The provisioner: a bare control plane has no volume plugin, so the node
// owns a StorageClass (the default one) and provisions its claims as
// hostPath PersistentVolumes, one directory per claim under
// <state>/volumes, pinned to this node. kube-controller-manager's PV
// controller binds them; when a claim is deleted its volume is Released
// and, with reclaimPolicy Delete, the provisioner removes the directory
// and the PV (Retain keeps both, as a real provisioner would).
const (
	annProvisionedBy   = "pv.kubernetes.io/provisioned-by"
	annStorageProvider = "volume.kubernetes.io/storage-provisioner"
	annDefaultClass    = "storageclass.kubernetes.io/is-default-class"
)

type provisioner struct {
	p     *Provider
	pvcs  corev1listers.PersistentVolumeClaimLister
	pvs   corev1listers.PersistentVolumeLister
	kick  chan struct{}
	class string
	name  string
	dir   string
}

func (pv *provisioner) ensureClass(ctx context.Context) error {
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: pv.class, Annotations: map[string]string{annDefaultClass: "true"}},
		Provisioner:       pv.name,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
	_, err := pv.p.client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (pv *provisioner) trigger() {
	select {
	case pv.kick <- struct{}{}:
	default:
	}
}

func (pv *provisioner) loop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		pv.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-pv.kick:
		case <-t.C:
		}
	}
}

func (pv *provisioner) ours(pvc *corev1.PersistentVolumeClaim) bool {
	if pvc.Annotations[annStorageProvider] == pv.name || pvc.Annotations["volume.beta.kubernetes.io/storage-provisioner"] == pv.name {
		return true
	}
	return ptr.Deref(pvc.Spec.StorageClassName, "") == pv.class
}

func (pv *provisioner) sync(ctx context.Context) {
	claims, _ := pv.pvcs.List(labels.Everything())
	for _, c := range claims {
		if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" || c.DeletionTimestamp != nil || !pv.ours(c) {
			continue
		}
		pv.provision(ctx, c)
	}
	vols, _ := pv.pvs.List(labels.Everything())
	for _, v := range vols {
		if v.Annotations[annProvisionedBy] != pv.name || v.Status.Phase != corev1.VolumeReleased ||
			v.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || v.DeletionTimestamp != nil {
			continue
		}
		pv.remove(ctx, v)
	}
}

func (pv *provisioner) provision(ctx context.Context, c *corev1.PersistentVolumeClaim) {
	name := "pvc-" + string(c.UID)
	path := filepath.Join(pv.dir, name)
	if err := os.MkdirAll(path, 0o777); err != nil {
		pv.p.log.Warn("provisioning", "claim", c.Namespace+"/"+c.Name, "err", err)
		return
	}
	os.Chmod(path, 0o777)
	size := c.Spec.Resources.Requests[corev1.ResourceStorage]
	mode := c.Spec.VolumeMode
	if mode == nil {
		mode = ptr.To(corev1.PersistentVolumeFilesystem)
	}
	vol := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: pv.name}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              ptr.Deref(c.Spec.StorageClassName, pv.class),
			VolumeMode:                    mode,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: path, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn,
					Values: []string{pv.p.cfg.NodeName}}}}}}},
		},
	}
	if sc, err := pv.p.client.StorageV1().StorageClasses().Get(ctx, vol.Spec.StorageClassName, metav1.GetOptions{}); err == nil && sc.ReclaimPolicy != nil {
		vol.Spec.PersistentVolumeReclaimPolicy = *sc.ReclaimPolicy
	}
	_, err := pv.p.client.CoreV1().PersistentVolumes().Create(ctx, vol, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		pv.p.log.Warn("provisioning", "claim", c.Namespace+"/"+c.Name, "err", err)
		return
	}
	if err == nil {
		pv.p.log.Info("provisioned", "claim", c.Namespace+"/"+c.Name, "volume", name, "path", path)
	}
}

func (pv *provisioner) remove(ctx context.Context, v *corev1.PersistentVolume) {
	if hp := v.Spec.HostPath; hp != nil && strings.HasPrefix(hp.Path, pv.dir+string(os.PathSeparator)) {
		if err := os.RemoveAll(hp.Path); err != nil {
			pv.p.log.Warn("removing volume", "volume", v.Name, "err", err)
			return
		}
	}
	err := pv.p.client.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(v.UID))})
	if err != nil && !apierrors.IsNotFound(err) {
		pv.p.log.Warn("deleting volume", "volume", v.Name, "err", err)
		return
	}
	pv.p.log.Info("volume deleted", "volume", v.Name)
}
