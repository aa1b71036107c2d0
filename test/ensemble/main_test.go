// Package ensemble tests a multi-process Paddock ensemble under faults:
// kill -9, SIGSTOP, partitions made by per-link proxies, and restarts,
// while real go-zookeeper clients run a compare-and-set register, sequential
// ids, a counter and ephemeral locks whose histories are then checked
// (porcupine for linearizability; per-session order; no acknowledged write
// lost; no lock held twice). See internal/faults and docs/RELIABILITY.md.
//
// Flags (after the package on the go test command line):
//
//	-ens.seed=N        first schedule seed (alone: run just that one)
//	-ens.schedules=K   number of schedules (seeds N..N+K-1); default 4
//	-ens.duration=D    fault phase of each schedule; default 20s
//	-ens.members=M     3 or 5; 0 (default) lets the seed choose
//	-ens.wipe          include restarts with a wiped data dir
//	-ens.summary=F     append one JSON line per schedule to F
//	-ens.measure       run the fail-over and catch-up measurements
//
// A failing schedule prints its seed and the command that reproduces it.
package ensemble

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testserver"
)

var (
	flagSeed      = flag.Uint64("ens.seed", 1, "first schedule seed")
	flagSchedules = flag.Int("ens.schedules", 4, "number of schedules to run")
	flagDuration  = flag.Duration("ens.duration", 20*time.Second, "fault phase of each schedule")
	flagMembers   = flag.Int("ens.members", 0, "ensemble size (3 or 5; 0 = chosen by the seed)")
	flagWipe      = flag.Bool("ens.wipe", false, "include restarts with a wiped data dir")
	flagSummary   = flag.String("ens.summary", "", "append one JSON line per schedule to this file")
	flagMeasure   = flag.Bool("ens.measure", false, "run the fail-over and catch-up measurements")
	flagWrites    = flag.Int("ens.writes", 100000, "writes before the catch-up measurement")
)

func TestMain(m *testing.M) {
	flag.Parse()
	// -ens.seed alone reproduces one schedule.
	seedSet, countSet := false, false
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "ens.seed":
			seedSet = true
		case "ens.schedules":
			countSet = true
		}
	})
	if seedSet && !countSet {
		*flagSchedules = 1
	}
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}
