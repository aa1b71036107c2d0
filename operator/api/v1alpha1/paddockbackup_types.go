package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PaddockBackupSpec asks for one consistent snapshot of a cluster.
type PaddockBackupSpec struct {
	// ClusterName is the PaddockCluster (same namespace) to back up.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clusterName is immutable"
	ClusterName string `json:"clusterName"`
	// Storage is where the snapshot is written.
	// +optional
	Storage BackupStorage `json:"storage,omitempty"`
}

// BackupStorage is a volume for backups.
type BackupStorage struct {
	// ClaimName of an existing PersistentVolumeClaim; default: the operator
	// creates <cluster>-backups (Size, StorageClassName) and keeps it.
	// +optional
	ClaimName string `json:"claimName,omitempty"`
	// Size of a created claim.
	// +kubebuilder:default="1Gi"
	// +optional
	Size resource.Quantity `json:"size,omitempty"`
	// StorageClassName of a created claim.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// BackupPhase is where a backup stands.
type BackupPhase string

// Backup phases.
const (
	BackupPending   BackupPhase = "Pending"
	BackupRunning   BackupPhase = "Running"
	BackupCompleted BackupPhase = "Completed"
	BackupFailed    BackupPhase = "Failed"
)

// PaddockBackupStatus reports the snapshot.
type PaddockBackupStatus struct {
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`
	// ClaimName holding the snapshot.
	// +optional
	ClaimName string `json:"claimName,omitempty"`
	// Path of the snapshot file inside the claim.
	// +optional
	Path string `json:"path,omitempty"`
	// ClusterID of the cluster backed up.
	// +optional
	ClusterID string `json:"clusterID,omitempty"`
	// Image that took the backup (and restores it).
	// +optional
	Image string `json:"image,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Message explains a failure.
	// +optional
	Message string `json:"message,omitempty"`
	// Job is the name of the Job that writes the snapshot.
	// +optional
	Job string `json:"job,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PaddockBackup writes a consistent snapshot of a PaddockCluster to a
// volume; a new PaddockCluster restores it with spec.restoreFrom.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pdkb,categories=all
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.status.path`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PaddockBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PaddockBackupSpec   `json:"spec,omitempty"`
	Status PaddockBackupStatus `json:"status,omitempty"`
}

// PaddockBackupList is a list of PaddockBackup.
//
// +kubebuilder:object:root=true
type PaddockBackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PaddockBackup `json:"items"`
}
