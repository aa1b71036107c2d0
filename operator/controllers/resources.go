package controllers

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/paddockhq/paddock/operator/api/v1alpha1"
)

// Ports and paths every member uses.
const (
	ClientPort   = 2181
	SecurePort   = 2281
	PeerPort     = 2888
	ElectionPort = 3888 // kept in /zookeeper/config text only
	AdminPort    = 8080
	DataDir      = "/data"
	ConfigDir    = "/etc/paddock"
	ClientTLSDir = "/etc/paddock/tls/client"
	QuorumTLSDir = "/etc/paddock/tls/quorum"
	AdminTLSDir  = "/etc/paddock/tls/admin"
	// AdminClientTLSDir holds the admin client certificate in Jobs.
	AdminClientTLSDir = "/etc/paddock/tls/admin-client"
	ObserverBase      = 128 // server id (= ordinal) of the first observer
	MaxVoters         = 127
	containerName     = "paddock"
	dataVolume        = "data"

	// Labels and annotations.
	LabelName       = "app.kubernetes.io/name"
	LabelInstance   = "app.kubernetes.io/instance"
	LabelComponent  = "app.kubernetes.io/component"
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	LabelPodIndex   = "apps.kubernetes.io/pod-index"
	AnnConfigHash   = "paddock.dev/config-hash"
	AnnRebuild      = "paddock.dev/rebuild-member"
	AnnStale        = "paddock.dev/stale"
	AnnBootstrapped = "paddock.dev/data-bootstrapped"
	AnnTransfers    = "paddock.dev/leader-transfers"
)

// DefaultImage is the member image when the spec names none; the operator
// binary sets it from its own image (PADDOCK_IMAGE).
var DefaultImage = "ghcr.io/paddockhq/paddock:latest"

// Names of the objects of a cluster.
func voterStsName(c *v1alpha1.PaddockCluster) string    { return c.Name }
func observerStsName(c *v1alpha1.PaddockCluster) string { return c.Name + "-observer" }
func headlessName(c *v1alpha1.PaddockCluster) string    { return c.Name + "-hs" }
func clientSvcName(c *v1alpha1.PaddockCluster) string   { return c.Name + "-client" }
func configMapName(c *v1alpha1.PaddockCluster) string   { return c.Name + "-config" }
func membersMapName(c *v1alpha1.PaddockCluster) string  { return c.Name + "-members" }
func authSecretName(c *v1alpha1.PaddockCluster) string  { return c.Name + "-auth" }
func serviceAccountName(c *v1alpha1.PaddockCluster) string {
	return c.Name + "-paddock"
}

// PodName is the pod of server id (voters 1..127, observers 128..).
func PodName(c *v1alpha1.PaddockCluster, id uint64) string {
	if id >= ObserverBase {
		return fmt.Sprintf("%s-%d", observerStsName(c), id)
	}
	return fmt.Sprintf("%s-%d", voterStsName(c), id)
}

// PVCName is the claim the StatefulSet makes for server id.
func PVCName(c *v1alpha1.PaddockCluster, id uint64) string {
	return dataVolume + "-" + PodName(c, id)
}

// MemberHost is the stable DNS name of server id.
func MemberHost(c *v1alpha1.PaddockCluster, id uint64) string {
	return fmt.Sprintf("%s.%s.%s.svc.cluster.local", PodName(c, id), headlessName(c), c.Namespace)
}

// MemberSpec is the member's /zookeeper/config right-hand side.
func MemberSpec(c *v1alpha1.PaddockCluster, id uint64) string {
	return MemberSpecAs(c, id, id >= ObserverBase)
}

// MemberSpecAs is MemberSpec with the role given: a voter is added as an
// observer first, and promoted once it has caught up.
func MemberSpecAs(c *v1alpha1.PaddockCluster, id uint64, observer bool) string {
	h := MemberHost(c, id)
	role := "participant"
	if observer {
		role = "observer"
	}
	return fmt.Sprintf("%s:%d:%d:%s;%s:%d", h, PeerPort, ElectionPort, role, h, ClientPort)
}

func selectorLabels(c *v1alpha1.PaddockCluster) map[string]string {
	return map[string]string{LabelName: "paddock", LabelInstance: c.Name}
}

func commonLabels(c *v1alpha1.PaddockCluster) map[string]string {
	l := selectorLabels(c)
	l[LabelManagedBy] = "paddock-operator"
	return l
}

// ClusterID is the cluster's identity: spec, else status, else derived.
func ClusterID(c *v1alpha1.PaddockCluster) string {
	switch {
	case c.Spec.ClusterID != "":
		return c.Spec.ClusterID
	case c.Status.ClusterID != "":
		return c.Status.ClusterID
	}
	uid := strings.ReplaceAll(string(c.UID), "-", "")
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return c.Namespace + "-" + c.Name + "-" + uid
}

// forbiddenZooCfg are the zoo.cfg keys the operator owns.
var forbiddenZooCfg = []string{"dataDir", "dataLogDir", "clientPort", "clientPortAddress", "secureClientPort",
	"secureClientPortAddress", "reconfigEnabled", "dynamicConfigFile", "standaloneEnabled", "admin.",
	"server.", "ssl.", "DigestAuthenticationProvider.superDigest", "serverCnxnFactory"}

// ValidateSpec returns why a spec cannot be applied, or "".
func ValidateSpec(c *v1alpha1.PaddockCluster) string {
	var bad []string
	for k := range c.Spec.ZooCfg {
		for _, f := range forbiddenZooCfg {
			if k == f || (strings.HasSuffix(f, ".") && strings.HasPrefix(k, f)) {
				bad = append(bad, k)
			}
		}
		if strings.ContainsAny(k, "=\n") || strings.Contains(c.Spec.ZooCfg[k], "\n") {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return "zooCfg sets keys the operator manages: " + strings.Join(bad, ", ")
	}
	if c.Spec.Replicas > MaxVoters {
		return fmt.Sprintf("replicas %d is more than %d", c.Spec.Replicas, MaxVoters)
	}
	if c.Spec.Observers > 254-ObserverBase+1 {
		return fmt.Sprintf("observers %d is more than %d", c.Spec.Observers, 254-ObserverBase+1)
	}
	if a := AdminTLSOf(c); a != nil && adminClientAuth(a) == "need" && !a.PortUnification {
		return "tls.admin.clientAuth need leaves kubelet's probes (which send no certificate) no way in: set tls.admin.portUnification, or use want"
	}
	return ""
}

// ZooCfg renders the members' zoo.cfg: the operator's settings, then the
// user's overrides, sorted.
func ZooCfg(c *v1alpha1.PaddockCluster) string {
	kv := map[string]string{
		"tickTime":               "2000",
		"maxClientCnxns":         "0",
		"4lw.commands.whitelist": "ruok,srvr,stat,mntr,conf,isro",
	}
	maps.Copy(kv, c.Spec.ZooCfg)
	var b strings.Builder
	b.WriteString("# Generated by the Paddock operator; edit spec.zooCfg of the PaddockCluster instead.\n")
	fmt.Fprintf(&b, "dataDir=%s\nclientPort=%d\nreconfigEnabled=true\nadmin.enableServer=true\nadmin.serverPort=%d\n", DataDir, ClientPort, AdminPort)
	keys := slices.Sorted(maps.Keys(kv))
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, kv[k])
	}
	return b.String()
}

// MemberList renders --peers/--observers values for ids.
func MemberList(c *v1alpha1.PaddockCluster, idList []uint64) string {
	parts := make([]string, 0, len(idList))
	sorted := slices.Clone(idList)
	slices.Sort(sorted)
	for _, id := range sorted {
		parts = append(parts, fmt.Sprintf("%d=%s:%d;%s:%d", id, MemberHost(c, id), PeerPort, MemberHost(c, id), ClientPort))
	}
	return strings.Join(parts, ",")
}

// MembersData is the members ConfigMap: the environment a member reads at
// start (envFrom), not part of the pod template, so that changing it never
// restarts anyone. voters/observers are every id that is, or is about to
// be, a member; join is set once the cluster holds data.
func MembersData(c *v1alpha1.PaddockCluster, voters, observers []uint64, join bool) map[string]string {
	return map[string]string{
		"PADDOCK_PEERS":     MemberList(c, voters),
		"PADDOCK_OBSERVERS": MemberList(c, observers),
		"PADDOCK_JOIN":      fmt.Sprint(join),
	}
}

// SuperDigest is ZooKeeper's DigestAuthenticationProvider digest of
// super:password.
func SuperDigest(password string) string {
	h := sha1.Sum([]byte("super:" + password))
	return "super:" + base64.StdEncoding.EncodeToString(h[:])
}

// Image is the member image.
func Image(c *v1alpha1.PaddockCluster) string {
	img := c.Spec.Image
	if img == "" {
		img = DefaultImage
		if c.Spec.Version != "" {
			img = replaceTag(img, c.Spec.Version)
		}
		return img
	}
	if c.Spec.Version != "" && !hasTag(img) {
		img += ":" + c.Spec.Version
	}
	return img
}

func hasTag(img string) bool {
	if strings.Contains(img, "@") {
		return true
	}
	slash := strings.LastIndex(img, "/")
	return strings.Contains(img[slash+1:], ":")
}

func replaceTag(img, tag string) string {
	if i := strings.Index(img, "@"); i >= 0 {
		img = img[:i]
	}
	slash := strings.LastIndex(img, "/")
	if j := strings.LastIndex(img[slash+1:], ":"); j >= 0 {
		img = img[:slash+1+j]
	}
	return img + ":" + tag
}

// configHash covers everything whose change must restart the members
// (rolled one at a time by the operator).
func configHash(zooCfg, digest string, c *v1alpha1.PaddockCluster) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", zooCfg, digest)
	if t := c.Spec.TLS; t != nil {
		if t.Client != nil {
			fmt.Fprintf(h, "client=%s/%s\x00", t.Client.SecretName, t.Client.ClientAuth)
		}
		if t.Quorum != nil {
			fmt.Fprintf(h, "quorum=%s\x00", t.Quorum.SecretName)
		}
		if a := t.Admin; a != nil {
			fmt.Fprintf(h, "admin=%s/%s/%v\x00", a.SecretName, adminClientAuth(a), a.PortUnification)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// StatefulSet builds one group's StatefulSet: the voters (ordinals from 1)
// or the observers (from ObserverBase). The server id is the pod's
// ordinal, read from the pod-index label, so pod <name>-3 is server 3.
func StatefulSet(c *v1alpha1.PaddockCluster, observer bool, replicas int32, hash string) *appsv1.StatefulSet {
	name, start, component := voterStsName(c), int32(1), "voter"
	if observer {
		name, start, component = observerStsName(c), ObserverBase, "observer"
	}
	labels := commonLabels(c)
	labels[LabelComponent] = component
	podLabels := maps.Clone(labels)
	maps.Copy(podLabels, c.Spec.Pod.Labels)
	maps.Copy(podLabels, labels)
	podAnn := map[string]string{AnnConfigHash: hash}
	for k, v := range c.Spec.Pod.Annotations {
		if _, ok := podAnn[k]; !ok {
			podAnn[k] = v
		}
	}
	sel := selectorLabels(c)
	sel[LabelComponent] = component

	onScale, onDelete := appsv1.DeletePersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if c.Spec.Storage.OnScaleDown == v1alpha1.ReclaimRetain {
		onScale = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if c.Spec.Storage.OnDelete == v1alpha1.ReclaimDelete {
		onDelete = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			Ordinals:            &appsv1.StatefulSetOrdinals{Start: start},
			ServiceName:         headlessName(c),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			// The operator restarts pods itself, in its order.
			UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			Selector:             &metav1.LabelSelector{MatchLabels: sel},
			RevisionHistoryLimit: ptr.To[int32](5),
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenScaled: onScale, WhenDeleted: onDelete,
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnn},
				Spec:       podSpec(c),
			},
		},
	}
	if c.Spec.Storage.Ephemeral {
		sts.Spec.Template.Spec.Volumes = append(sts.Spec.Template.Spec.Volumes,
			corev1.Volume{Name: dataVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	} else {
		size := c.Spec.Storage.Size
		if size.IsZero() {
			size = resource.MustParse("10Gi")
		}
		sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: dataVolume, Labels: commonLabels(c)},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: c.Spec.Storage.StorageClassName,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		}}
	}
	return sts
}

func podSpec(c *v1alpha1.PaddockCluster) corev1.PodSpec {
	env := []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		// The server id is the StatefulSet ordinal.
		{Name: "PADDOCK_SERVER_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
			FieldPath: fmt.Sprintf("metadata.labels['%s']", LabelPodIndex)}}},
		{Name: "PADDOCK_CLUSTER_ID", Value: ClusterID(c)},
		{Name: "PADDOCK_DATA_DIR", Value: DataDir},
		{Name: "PADDOCK_ADDR", Value: fmt.Sprintf("0.0.0.0:%d", ClientPort)},
		{Name: "PADDOCK_PEER_ADDR", Value: fmt.Sprintf("0.0.0.0:%d", PeerPort)},
		{Name: "PADDOCK_ADMIN_ADDR", Value: fmt.Sprintf("0.0.0.0:%d", AdminPort)},
		{Name: "PADDOCK_RECONFIG_ENABLED", Value: "true"},
		{Name: "PADDOCK_SUPER_DIGEST", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: authSecretName(c)}, Key: "superDigest"}}},
	}
	ports := []corev1.ContainerPort{
		{Name: "client", ContainerPort: ClientPort},
		{Name: "peer", ContainerPort: PeerPort},
		{Name: "admin", ContainerPort: AdminPort},
	}
	mounts := []corev1.VolumeMount{
		{Name: dataVolume, MountPath: DataDir},
		{Name: "config", MountPath: ConfigDir, ReadOnly: true},
	}
	volumes := []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: configMapName(c)}}}}}
	if t := c.Spec.TLS; t != nil && t.Client != nil {
		auth := t.Client.ClientAuth
		if auth == "" {
			auth = "need"
		}
		env = append(env,
			corev1.EnvVar{Name: "PADDOCK_SECURE_ADDR", Value: fmt.Sprintf("0.0.0.0:%d", SecurePort)},
			corev1.EnvVar{Name: "PADDOCK_TLS_CERT", Value: ClientTLSDir + "/tls.crt"},
			corev1.EnvVar{Name: "PADDOCK_TLS_KEY", Value: ClientTLSDir + "/tls.key"},
			corev1.EnvVar{Name: "PADDOCK_TLS_CA", Value: ClientTLSDir + "/ca.crt"},
			corev1.EnvVar{Name: "PADDOCK_TLS_CLIENT_AUTH", Value: auth})
		ports = append(ports, corev1.ContainerPort{Name: "client-tls", ContainerPort: SecurePort})
		mounts = append(mounts, corev1.VolumeMount{Name: "client-tls", MountPath: ClientTLSDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "client-tls", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: t.Client.SecretName}}})
	}
	if t := c.Spec.TLS; t != nil && t.Quorum != nil {
		env = append(env,
			corev1.EnvVar{Name: "PADDOCK_PEER_TLS_CERT", Value: QuorumTLSDir + "/tls.crt"},
			corev1.EnvVar{Name: "PADDOCK_PEER_TLS_KEY", Value: QuorumTLSDir + "/tls.key"},
			corev1.EnvVar{Name: "PADDOCK_PEER_TLS_CA", Value: QuorumTLSDir + "/ca.crt"})
		mounts = append(mounts, corev1.VolumeMount{Name: "quorum-tls", MountPath: QuorumTLSDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "quorum-tls", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: t.Quorum.SecretName}}})
	}
	probeScheme := corev1.URISchemeHTTP
	if a := AdminTLSOf(c); a != nil {
		env = append(env,
			corev1.EnvVar{Name: "PADDOCK_ADMIN_TLS_CERT", Value: AdminTLSDir + "/tls.crt"},
			corev1.EnvVar{Name: "PADDOCK_ADMIN_TLS_KEY", Value: AdminTLSDir + "/tls.key"},
			corev1.EnvVar{Name: "PADDOCK_ADMIN_TLS_CA", Value: AdminTLSDir + "/ca.crt"},
			corev1.EnvVar{Name: "PADDOCK_ADMIN_TLS_CLIENT_AUTH", Value: adminClientAuth(a)},
			corev1.EnvVar{Name: "PADDOCK_ADMIN_PORT_UNIFICATION", Value: fmt.Sprint(a.PortUnification)})
		mounts = append(mounts, corev1.VolumeMount{Name: "admin-tls", MountPath: AdminTLSDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "admin-tls", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: a.SecretName}}})
		// kubelet's probes neither verify the certificate nor send one:
		// HTTPS unless client certificates are required, then the plain
		// side of the unified port.
		probeScheme = AdminProbeScheme(a)
	}
	env = append(env, c.Spec.Pod.Env...)

	httpProbe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("admin"),
				Scheme: probeScheme}},
			PeriodSeconds:    period,
			TimeoutSeconds:   3,
			FailureThreshold: failures,
			// The API server's default, spelled out: the template is
			// compared with the stored one by DeepDerivative, which skips
			// unset pointers and strings but compares numbers, so a 0 here
			// looked like a change on every pass (found by test/k8se2e).
			SuccessThreshold: 1,
		}
	}
	ctr := corev1.Container{
		Name:            containerName,
		Image:           Image(c),
		ImagePullPolicy: c.Spec.ImagePullPolicy,
		Args:            []string{"server", "--config", ConfigDir + "/zoo.cfg"},
		Env:             env,
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: membersMapName(c)}}}},
		Ports:        ports,
		Resources:    c.Spec.Resources,
		VolumeMounts: mounts,
		// A new ensemble's members wait for each other before the admin
		// server starts: give them ten minutes.
		StartupProbe: httpProbe("/livez", 5, 120),
		// Liveness: the process answers. Readiness: in quorum, applied.
		LivenessProbe:  httpProbe("/livez", 10, 6),
		ReadinessProbe: httpProbe("/readyz", 5, 2),
		// A server that refuses its volume says why in its last log lines;
		// they become the termination message the operator reads.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	psc := c.Spec.Pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{
			RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532),
			RunAsNonRoot:   ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
	}
	ps := corev1.PodSpec{
		ServiceAccountName:            serviceAccountName(c),
		AutomountServiceAccountToken:  ptr.To(false),
		Containers:                    []corev1.Container{ctr},
		Volumes:                       volumes,
		SecurityContext:               psc,
		ImagePullSecrets:              c.Spec.ImagePullSecrets,
		Tolerations:                   c.Spec.Placement.Tolerations,
		NodeSelector:                  c.Spec.Placement.NodeSelector,
		PriorityClassName:             c.Spec.Placement.PriorityClassName,
		TopologySpreadConstraints:     slices.Clone(c.Spec.Placement.TopologySpreadConstraints),
		TerminationGracePeriodSeconds: c.Spec.Pod.TerminationGracePeriodSeconds,
		Affinity:                      c.Spec.Placement.Affinity,
	}
	if ps.Affinity == nil {
		// One member per node if the scheduler can; the selector matches
		// the labels the pods really carry.
		ps.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchLabels: selectorLabels(c)},
					TopologyKey:   "kubernetes.io/hostname",
				},
			}},
		}}
	}
	if z := c.Spec.Placement.ZoneSpread; z != "" {
		ps.TopologySpreadConstraints = append(ps.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       z,
			WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selectorLabels(c)},
		})
	}
	return ps
}

// AdminTLSOf is the cluster's admin-port TLS, or nil for plain HTTP.
func AdminTLSOf(c *v1alpha1.PaddockCluster) *v1alpha1.AdminTLS {
	if c.Spec.TLS == nil {
		return nil
	}
	return c.Spec.TLS.Admin
}

func adminClientAuth(a *v1alpha1.AdminTLS) string {
	if a.ClientAuth == "" {
		return "none"
	}
	return a.ClientAuth
}

// AdminProbeScheme is the scheme of the members' probes with admin TLS:
// HTTPS, or HTTP on the unified port when client certificates are
// required (kubelet has none to send).
func AdminProbeScheme(a *v1alpha1.AdminTLS) corev1.URIScheme {
	if adminClientAuth(a) == "need" && a.PortUnification {
		return corev1.URISchemeHTTP
	}
	return corev1.URISchemeHTTPS
}

// AdminClientSecret is the Secret whose tls.crt/tls.key the operator and
// the backup Jobs present to the admin port.
func AdminClientSecret(a *v1alpha1.AdminTLS) string {
	if a.ClientSecretName != "" {
		return a.ClientSecretName
	}
	return a.SecretName
}

// HeadlessService gives every member its stable DNS name, also while not
// ready (publishNotReadyAddresses): members must find each other to form
// the quorum that makes them ready.
func HeadlessService(c *v1alpha1.PaddockCluster) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: headlessName(c), Namespace: c.Namespace, Labels: commonLabels(c)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 selectorLabels(c),
			Ports: []corev1.ServicePort{
				{Name: "client", Port: ClientPort, TargetPort: intstr.FromString("client")},
				{Name: "peer", Port: PeerPort, TargetPort: intstr.FromString("peer")},
				{Name: "admin", Port: AdminPort, TargetPort: intstr.FromString("admin")},
			},
		},
	}
}

// ClientService is what clients connect to: ready members only.
func ClientService(c *v1alpha1.PaddockCluster) *corev1.Service {
	typ := c.Spec.ClientService.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: clientSvcName(c), Namespace: c.Namespace, Labels: commonLabels(c),
			Annotations: c.Spec.ClientService.Annotations},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: selectorLabels(c),
			Ports:    []corev1.ServicePort{{Name: "client", Port: ClientPort, TargetPort: intstr.FromString("client")}},
		},
	}
	if t := c.Spec.TLS; t != nil && t.Client != nil {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "client-tls", Port: SecurePort, TargetPort: intstr.FromString("client-tls")})
	}
	return svc
}

// MetricsService exposes /metrics for a ServiceMonitor.
func metricsPortName() string { return "admin" }

// PDB is the disruption budget: one member at a time, or never below a
// majority of the voters. nil for policy None.
func PDB(c *v1alpha1.PaddockCluster) *policyv1.PodDisruptionBudget {
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: commonLabels(c)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				LabelName: "paddock", LabelInstance: c.Name, LabelComponent: "voter"}},
		},
	}
	switch c.Spec.PodDisruptionBudget.Policy {
	case v1alpha1.PDBNone:
		return nil
	case v1alpha1.PDBQuorum:
		pdb.Spec.MinAvailable = ptr.To(intstr.FromInt32(int32(Quorum(int(max(c.Spec.Replicas, 1))))))
	default:
		pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	}
	// Unready pods (crash-looping after a bad change) may always be
	// evicted: they hold no one's quorum.
	pdb.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
	return pdb
}

// sortedKeys of a string map.
func sortedKeys(m map[string]string) []string {
	out := slices.Collect(maps.Keys(m))
	sort.Strings(out)
	return out
}
