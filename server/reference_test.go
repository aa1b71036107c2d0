package server

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/zkref"
)

// TestAgainstZooKeeper runs the wire-level scenarios against Apache
// ZooKeeper 3.8 (Debian's package), each on a fresh server, so the
// expectations the Paddock tests hold are ZooKeeper's own. Skipped where
// ZooKeeper is not installed, and with -short.
func TestAgainstZooKeeper(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if err := zkref.Available(); err != nil {
		t.Skip(err)
	}
	for name, f := range map[string]func(*testing.T, string){
		"HandshakeLegacy":     func(t *testing.T, a string) { handshakeLegacy(t, a, false) },
		"HandshakeExpired":    handshakeExpired,
		"PipelinedOrder":      pipelinedOrder,
		"RawOpcodes":          rawOpcodes,
		"MultiErrorLayout":    multiErrorLayout,
		"PersistentWatches":   persistentWatches,
		"SetWatchesReplay":    setWatchesReplay,
		"CloseSession":        closeSession,
		"EventBeforeResponse": eventBeforeResponse,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			zs := zkref.Start(t, zkref.Options{
				TickTime: 100 * time.Millisecond,
				JVMFlags: []string{"-Dzookeeper.extendedTypesEnabled=true"},
			})
			t.Cleanup(func() {
				if !t.Failed() {
					return
				}
				if b, err := os.ReadFile(zs.LogFile); err == nil {
					lines := strings.Split(string(b), "\n")
					if len(lines) > 30 {
						lines = lines[len(lines)-30:]
					}
					t.Logf("ZooKeeper log:\n%s", strings.Join(lines, "\n"))
				}
			})
			f(t, zs.Addr)
		})
	}
}
