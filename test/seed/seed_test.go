// Package seed is the whole seed in one test (internal/seed): a
// Kubernetes control plane whose state lives in a 3-member Paddock
// ensemble (etcd v3 API), a vnode node, the Paddock operator deploying a
// second Paddock ensemble (a PaddockCluster of 3) on that node, and a
// ZooKeeper client (go-zookeeper) using it through its client Service.
// `make demo-k8s` runs the same steps for a person to watch.
package seed

import (
	"testing"

	"github.com/paddockhq/paddock/internal/seed"
)

// TestSeed needs root and the Kubernetes tools; under CI=true their
// absence fails it (seed.Require).
func TestSeed(t *testing.T) {
	s := seed.Start(t, seed.Options{Say: t.Logf})
	pc := s.Deploy(t)
	if len(pc.Status.Members) != 3 {
		t.Fatalf("members: %+v", pc.Status.Members)
	}
	s.UseZooKeeper(t)
	s.CheckState(t)
}
