package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PaddockClusterSpec is the desired ensemble. Voters are servers 1..127
// (pods <name>-1, <name>-2, ...), observers servers 128..254 (pods
// <name>-observer-128, ...): the server id is the pod's ordinal.
type PaddockClusterSpec struct {
	// Replicas is the number of voting members (ZooKeeper participants).
	// Odd numbers tolerate the most failures for their size: 3 survive one
	// loss, 5 survive two. Changed one member at a time through reconfig.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=127
	// +optional
	Replicas int32 `json:"replicas"`

	// Observers is the number of non-voting members (Raft learners). They
	// serve reads and forward writes without counting in quorums; their
	// server ids follow the voters'.
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=127
	// +optional
	Observers int32 `json:"observers"`

	// Image is the container image (a build of the paddock binary). Default:
	// the operator's own image at Version.
	// +optional
	Image string `json:"image,omitempty"`

	// Version is the image tag used when Image has no tag; a change rolls
	// the members one at a time, the leader last.
	// +optional
	Version string `json:"version,omitempty"`

	// ImagePullPolicy of the member containers.
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// ImagePullSecrets for the member pods.
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// ClusterID is the ensemble's identity, stamped into every data
	// directory; members refuse volumes stamped with another. Default: set
	// once into status.clusterID as <name>-<uid prefix>. Give it explicitly
	// only to adopt the volumes of a cluster recreated under the same name.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clusterID is immutable"
	ClusterID string `json:"clusterID,omitempty"`

	// Storage of each member's data directory.
	// +optional
	Storage StorageSpec `json:"storage,omitempty"`

	// Resources of the member container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// ZooCfg are zoo.cfg settings (tickTime, maxClientCnxns,
	// 4lw.commands.whitelist, ...) merged over the operator's. Keys the
	// operator owns (dataDir, clientPort, server.N, reconfigEnabled,
	// secureClientPort, ssl.*, admin.*, DigestAuthenticationProvider.superDigest)
	// are refused. A change rolls the members.
	// +optional
	ZooCfg map[string]string `json:"zooCfg,omitempty"`

	// TLS for clients and between members, from Secrets.
	// +optional
	TLS *TLSSpec `json:"tls,omitempty"`

	// Superuser is where the ZooKeeper super user's password comes from.
	// The operator authenticates as super for reconfig and backups; the
	// servers get only its digest. Default: a generated Secret
	// <name>-superuser.
	// +optional
	Superuser *SuperuserSpec `json:"superuser,omitempty"`

	// Placement of the member pods.
	// +optional
	Placement PlacementSpec `json:"placement,omitempty"`

	// PodDisruptionBudget policy.
	// +optional
	PodDisruptionBudget PDBSpec `json:"podDisruptionBudget,omitempty"`

	// Metrics: the Prometheus endpoint and, when the CRD exists, a
	// ServiceMonitor.
	// +optional
	Metrics MetricsSpec `json:"metrics,omitempty"`

	// Pod adds labels, annotations, a security context and extra
	// environment to the member pods.
	// +optional
	Pod PodSpecOverrides `json:"pod,omitempty"`

	// ClientService shapes the client Service (<name>-client).
	// +optional
	ClientService ServiceSpec `json:"clientService,omitempty"`

	// RestoreFrom seeds a NEW cluster from a completed PaddockBackup. It is
	// read only before the first bootstrap; later changes are ignored.
	// +optional
	RestoreFrom *RestoreSource `json:"restoreFrom,omitempty"`

	// Backup takes PaddockBackups of this cluster on a schedule and prunes
	// the old ones.
	// +optional
	Backup *BackupSchedule `json:"backup,omitempty"`

	// Paused stops the operator from changing anything but status.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// BackupSchedule makes the operator create a PaddockBackup of the cluster
// at every time of Schedule (as a CronJob creates Jobs) and delete the
// completed ones beyond the newest Keep.
type BackupSchedule struct {
	// Schedule in cron syntax, as a CronJob's: five fields (minute hour
	// day-of-month month day-of-week, e.g. "0 3 * * *") or a descriptor
	// (@hourly, @daily, @weekly, @monthly, @yearly, @every 6h).
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`
	// TimeZone of the schedule, an IANA name (Europe/Paris). Default: UTC.
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
	// Keep is how many completed scheduled backups are kept; older ones are
	// pruned (and failed ones once a newer backup completed).
	// +kubebuilder:default=7
	// +kubebuilder:validation:Minimum=1
	// +optional
	Keep int32 `json:"keep,omitempty"`
	// OnPrune says what happens to a pruned backup's snapshot file: Delete
	// removes it from the volume (a Job) before the PaddockBackup goes;
	// Retain deletes only the PaddockBackup.
	// +kubebuilder:default=Delete
	// +optional
	OnPrune ReclaimPolicy `json:"onPrune,omitempty"`
	// Storage of the scheduled backups (default: the claim
	// <cluster>-backups, created and kept).
	// +optional
	Storage BackupStorage `json:"storage,omitempty"`
	// Suspend stops new scheduled backups (pruning goes on).
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// BackupScheduleStatus reports the backup schedule.
type BackupScheduleStatus struct {
	// LastScheduleTime is the last time a backup was due (and created, or
	// skipped because the previous one was still running).
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// NextScheduleTime is when the next backup is due.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
	// LastSuccessfulTime is when the newest completed scheduled backup
	// completed.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`
	// LastSuccessfulBackup is the newest completed scheduled PaddockBackup
	// (what a restore would normally use).
	// +optional
	LastSuccessfulBackup string `json:"lastSuccessfulBackup,omitempty"`
	// Active is the scheduled PaddockBackup still running, if any.
	// +optional
	Active string `json:"active,omitempty"`
	// Message explains a schedule that cannot be used.
	// +optional
	Message string `json:"message,omitempty"`
}

// ReclaimPolicy says what happens to a member's volume when the member or
// the cluster goes.
// +kubebuilder:validation:Enum=Retain;Delete
type ReclaimPolicy string

const (
	// ReclaimRetain keeps the PersistentVolumeClaim.
	ReclaimRetain ReclaimPolicy = "Retain"
	// ReclaimDelete deletes the PersistentVolumeClaim.
	ReclaimDelete ReclaimPolicy = "Delete"
)

// StorageSpec describes the data volumes.
type StorageSpec struct {
	// Size of each member's volume.
	// +kubebuilder:default="10Gi"
	// +optional
	Size resource.Quantity `json:"size,omitempty"`
	// StorageClassName of the claims; empty = the cluster default.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
	// OnScaleDown: what happens to a removed member's volume. A retained
	// volume is never reused for a new member: on a later scale-up the
	// operator deletes it first (it was marked as belonging to a removed
	// member), so a new member always joins empty and syncs from the
	// leader.
	// +kubebuilder:default=Delete
	// +optional
	OnScaleDown ReclaimPolicy `json:"onScaleDown,omitempty"`
	// OnDelete: what happens to the volumes when the PaddockCluster is
	// deleted.
	// +kubebuilder:default=Retain
	// +optional
	OnDelete ReclaimPolicy `json:"onDelete,omitempty"`
	// Ephemeral uses an emptyDir instead of a claim (tests only: a
	// restarted member loses its data and must be rebuilt).
	// +optional
	Ephemeral bool `json:"ephemeral,omitempty"`
}

// TLSSpec names the Secrets (kubernetes.io/tls, with ca.crt) for client and
// member traffic.
type TLSSpec struct {
	// Client turns on the TLS client port (2281) with this Secret.
	// +optional
	Client *ClientTLS `json:"client,omitempty"`
	// Quorum turns on mutual TLS between members with this Secret; its
	// certificate must be valid for every member's DNS name
	// (*.<name>-hs.<namespace>.svc.cluster.local) as client and server.
	// +optional
	Quorum *SecretRef `json:"quorum,omitempty"`
	// Admin serves the admin port (probes, /commands, /metrics, the
	// console, the operator's calls, backups) over HTTPS with this
	// Secret; its certificate must be valid for every member's DNS name
	// (*.<name>-hs.<namespace>.svc.cluster.local). The operator trusts
	// the Secret's ca.crt.
	// +optional
	Admin *AdminTLS `json:"admin,omitempty"`
}

// AdminTLS is the admin port's HTTPS (the server's --admin-tls-* flags,
// ZooKeeper's admin.forceHttps, admin.portUnification and
// admin.needClientAuth).
// +kubebuilder:validation:XValidation:rule="!has(self.clientAuth) || self.clientAuth != 'need' || (has(self.portUnification) && self.portUnification)",message="clientAuth need leaves kubelet's probes (which send no certificate) no way in: set portUnification, or use want"
type AdminTLS struct {
	SecretRef `json:",inline"`
	// ClientAuth: none, want (a certificate is optional; one sent must
	// chain to ca.crt) or need (admin.needClientAuth). The operator and
	// the backup Jobs present the certificate of ClientSecretName.
	// +kubebuilder:validation:Enum=none;want;need
	// +kubebuilder:default=none
	// +optional
	ClientAuth string `json:"clientAuth,omitempty"`
	// ClientSecretName is a Secret with tls.crt and tls.key that the
	// operator and the backup Jobs present as admin clients. Default: the
	// admin Secret itself (its certificate must then allow client use).
	// +optional
	ClientSecretName string `json:"clientSecretName,omitempty"`
	// PortUnification also serves plain HTTP on the admin port. Needed
	// with clientAuth need: the probes then use HTTP (kubelet sends no
	// client certificate); otherwise they use HTTPS.
	// +optional
	PortUnification bool `json:"portUnification,omitempty"`
}

// ClientTLS is the TLS client port's configuration.
type ClientTLS struct {
	SecretRef `json:",inline"`
	// ClientAuth: none, want or need (ssl.clientAuth).
	// +kubebuilder:validation:Enum=none;want;need
	// +kubebuilder:default=need
	// +optional
	ClientAuth string `json:"clientAuth,omitempty"`
}

// SecretRef names a Secret in the cluster's namespace.
type SecretRef struct {
	// SecretName of a Secret with tls.crt, tls.key and ca.crt.
	// +kubebuilder:validation:MinLength=1
	SecretName string `json:"secretName"`
}

// SuperuserSpec names the Secret holding the super user's password.
type SuperuserSpec struct {
	// SecretName of a Secret in the cluster's namespace.
	// +kubebuilder:validation:MinLength=1
	SecretName string `json:"secretName"`
	// Key holding the plain password (the operator needs it to
	// authenticate; servers get only the digest).
	// +kubebuilder:default=password
	// +optional
	Key string `json:"key,omitempty"`
}

// PlacementSpec places the member pods.
type PlacementSpec struct {
	// ZoneSpread spreads members evenly across the values of this node
	// label (e.g. topology.kubernetes.io/zone) and prefers different
	// nodes: the one-line multi-zone setup.
	// +optional
	ZoneSpread string `json:"zoneSpread,omitempty"`
	// Affinity replaces the default (preferred one member per node).
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// PDBPolicy chooses the PodDisruptionBudget.
// +kubebuilder:validation:Enum=MaxUnavailableOne;Quorum;None
type PDBPolicy string

const (
	// PDBMaxUnavailableOne allows one voluntary disruption at a time.
	PDBMaxUnavailableOne PDBPolicy = "MaxUnavailableOne"
	// PDBQuorum keeps a majority of the voters available (minAvailable).
	PDBQuorum PDBPolicy = "Quorum"
	// PDBNone creates no budget.
	PDBNone PDBPolicy = "None"
)

// PDBSpec is the PodDisruptionBudget policy.
type PDBSpec struct {
	// +kubebuilder:default=MaxUnavailableOne
	// +optional
	Policy PDBPolicy `json:"policy,omitempty"`
}

// MetricsSpec configures monitoring.
type MetricsSpec struct {
	// ServiceMonitor creates a monitoring.coreos.com/v1 ServiceMonitor for
	// the members' /metrics when that CRD is installed.
	// +optional
	ServiceMonitor bool `json:"serviceMonitor,omitempty"`
	// Interval of the scrape.
	// +kubebuilder:default="30s"
	// +optional
	Interval string `json:"interval,omitempty"`
	// Labels added to the ServiceMonitor (for the Prometheus selector).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// PodSpecOverrides are additions to the member pods.
type PodSpecOverrides struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Env is extra environment (PADDOCK_* variables set server flags).
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
	// SecurityContext replaces the default (non-root 65532, fsGroup 65532).
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
	// TerminationGracePeriodSeconds (default 30).
	// +optional
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
}

// ServiceSpec shapes the client Service.
type ServiceSpec struct {
	// +kubebuilder:default=ClusterIP
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RestoreSource names a backup to seed a new cluster from.
type RestoreSource struct {
	// BackupName is a Completed PaddockBackup in this namespace.
	// +kubebuilder:validation:MinLength=1
	BackupName string `json:"backupName"`
}

// MemberStatus is one member as the operator last saw it.
type MemberStatus struct {
	// Name of the pod.
	Name string `json:"name"`
	// ServerID (ZooKeeper myid).
	ServerID int32 `json:"serverID"`
	// Role: leader, follower, observer, joining, removed, or unknown when
	// the member does not answer.
	// +optional
	Role string `json:"role,omitempty"`
	// Ready is the pod's readiness (in quorum, state applied).
	Ready bool `json:"ready"`
	// Zxid last applied, hex.
	// +optional
	Zxid string `json:"zxid,omitempty"`
	// Lag behind the leader, in transactions.
	// +optional
	Lag int64 `json:"lag,omitempty"`
	// Version the member runs.
	// +optional
	Version string `json:"version,omitempty"`
	// InConfig reports whether /zookeeper/config lists the member.
	InConfig bool `json:"inConfig"`
	// UpToDate reports whether the pod runs the current template.
	UpToDate bool `json:"upToDate"`
	// Message explains a problem (a refused volume, a crash).
	// +optional
	Message string `json:"message,omitempty"`
}

// Phase summarises the cluster.
type Phase string

// Phases.
const (
	PhasePending     Phase = "Pending"
	PhaseRestoring   Phase = "Restoring"
	PhaseBootstrap   Phase = "Bootstrapping"
	PhaseRunning     Phase = "Running"
	PhaseScalingUp   Phase = "ScalingUp"
	PhaseScalingDown Phase = "ScalingDown"
	PhaseUpgrading   Phase = "Upgrading"
	PhaseDegraded    Phase = "Degraded"
	PhaseFailed      Phase = "Failed"
)

// Condition types and reasons.
const (
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"

	ReasonQuorum         = "QuorumHealthy"
	ReasonNoQuorum       = "NoQuorum"
	ReasonNoLeader       = "NoLeader"
	ReasonScalingUp      = "ScalingUp"
	ReasonScalingDown    = "ScalingDown"
	ReasonUpgrading      = "Upgrading"
	ReasonMemberRefused  = "MemberRefused"
	ReasonScaleRefused   = "ScaleRefused"
	ReasonUpgradeFailed  = "UpgradeFailed"
	ReasonRebuilding     = "Rebuilding"
	ReasonRestoring      = "Restoring"
	ReasonBootstrapping  = "Bootstrapping"
	ReasonMembersUnready = "MembersUnready"
	ReasonStable         = "Stable"
	ReasonInvalidSpec    = "InvalidSpec"
	ReasonDataLost       = "DataLost"
	ReasonAllHealthy     = "AllMembersHealthy"
	ReasonPaused         = "Paused"
)

// PaddockClusterStatus is what the operator observed.
type PaddockClusterStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Replicas is the number of voters in /zookeeper/config.
	// +optional
	Replicas int32 `json:"replicas"`
	// ReadyReplicas is the number of ready members (voters and observers).
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`
	// Observers is the number of observers in /zookeeper/config.
	// +optional
	Observers int32 `json:"observers,omitempty"`
	// Leader is the leader's pod name; empty without a leader.
	// +optional
	Leader string `json:"leader,omitempty"`
	// Phase summarises the conditions.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// ClusterID stamped into every member's data directory.
	// +optional
	ClusterID string `json:"clusterID,omitempty"`
	// DataBootstrapped is set once the ensemble has formed. From then on
	// no member ever bootstraps: an empty volume joins (and is added by
	// reconfig), and if every volume is empty the cluster reports DataLost
	// instead of starting a new, empty quorum.
	// +optional
	DataBootstrapped bool `json:"dataBootstrapped,omitempty"`
	// ConfigVersion is the version of /zookeeper/config last read.
	// +optional
	ConfigVersion string `json:"configVersion,omitempty"`
	// CurrentRevision is the StatefulSet revision every member runs once a
	// roll is complete.
	// +optional
	CurrentRevision string `json:"currentRevision,omitempty"`
	// Members, by server id.
	// +optional
	// +listType=map
	// +listMapKey=name
	Members []MemberStatus `json:"members,omitempty"`
	// RestoredFrom is the backup the cluster was seeded from.
	// +optional
	RestoredFrom string `json:"restoredFrom,omitempty"`
	// Backup reports spec.backup's schedule.
	// +optional
	Backup *BackupScheduleStatus `json:"backup,omitempty"`
	// Conditions: Available, Progressing, Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PaddockCluster is a Paddock (ZooKeeper-compatible) ensemble.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pdk;paddock,categories=all
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Leader",type=string,JSONPath=`.status.leader`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PaddockCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PaddockClusterSpec   `json:"spec,omitempty"`
	Status PaddockClusterStatus `json:"status,omitempty"`
}

// PaddockClusterList is a list of PaddockCluster.
//
// +kubebuilder:object:root=true
type PaddockClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PaddockCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PaddockCluster{}, &PaddockClusterList{}, &PaddockBackup{}, &PaddockBackupList{})
}
