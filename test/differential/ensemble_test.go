package differential

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/faults"
	"github.com/paddockhq/paddock/internal/zkref"
)

var flagEnsembleSeeds = flag.Int("diff.ensemble-seeds", envInt("PADDOCK_DIFF_ENSEMBLE_SEEDS", 5), "random sequences for the 3-member comparison")

// TestDifferentialEnsemble runs the same generator against a 3-member
// Apache ZooKeeper ensemble and a 3-member Paddock ensemble (with
// PADDOCK_DIFF_SELF=1: a second Apache ensemble). Session slot i talks
// only to member i%3, so writes are forwarded to the leader from every
// kind of member, and each operation is preceded by a sync (reads from a
// member are only sequentially consistent; the sync makes the comparison
// deterministic). Watch events crossing members are drained after a sync.
func TestDifferentialEnsemble(t *testing.T) {
	zkref.Require(t)
	self := os.Getenv("PADDOCK_DIFF_SELF") == "1"
	if !self {
		if err := faults.Supported(); err != nil {
			t.Skip(err)
		}
	}
	ref, err := zkref.StartEnsembleServers(3, zkref.Options{JVMFlags: apacheJVMFlags})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ref.Stop() })
	var target, targetName string
	if self {
		other, err := zkref.StartEnsembleServers(3, zkref.Options{JVMFlags: apacheJVMFlags})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Stop() })
		target, targetName = other.ConnectString(), "apache-ensemble2"
	} else {
		c := faults.StartT(t, faults.Options{Voters: 3, ExtraArgs: []string{"--extended-types"}})
		if _, err := c.WaitLeader(3 * time.Minute); err != nil {
			t.Fatal(err)
		}
		target, targetName = c.ConnectString(), "paddock-ensemble"
	}
	t.Logf("reference apache ensemble %s, under test %s %s, seeds %d..%d, %d ops each",
		ref.ConnectString(), targetName, target, *flagSeed, *flagSeed+*flagEnsembleSeeds-1, *flagOps)
	run := time.Now().UnixNano() % 1e9
	for seed := *flagSeed; seed < *flagSeed+*flagEnsembleSeeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			root := fmt.Sprintf("/diff-ens-%d-%d", run, seed)
			runSeed(t, uint64(seed), *flagOps, root,
				newSide(t, "apache-ensemble", ref.ConnectString()), newSide(t, targetName, target))
		})
	}
}
