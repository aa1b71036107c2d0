// Package kazoo runs scenario.py, a scripted Kazoo (Python ZooKeeper
// client) scenario covering CRUD, create modes, watches, transactions,
// ACLs and the Kazoo recipes, against a server.
//
// The server is chosen by PADDOCK_TEST_TARGET (see internal/testserver):
// "apache" validates the scenario against Apache ZooKeeper, a host:port
// aims it at a running server, and the default starts Paddock.
// The scenario needs Debian's /usr/bin/python3 with python3-kazoo.
package kazoo

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testserver"
)

// Python is Debian's interpreter, which has python3-kazoo; a python3
// earlier on PATH may not.
const Python = "/usr/bin/python3"

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}

func requireKazoo(t *testing.T) {
	t.Helper()
	if err := exec.Command(Python, "-c", "import kazoo").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-kazoo is required in CI: %s -c 'import kazoo': %v", Python, err)
		}
		t.Skipf("python3-kazoo not available (%v); apt-get install python3-kazoo", err)
	}
}

func TestKazooScenario(t *testing.T) {
	requireKazoo(t)
	addr, kind := testserver.Target(t)
	t.Logf("kazoo scenario against %s (%s)", addr, kind)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Python, "scenario.py", addr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scenario.py %s: %v\n%s", addr, err, out)
	}
	t.Logf("scenario.py output:\n%s", out)
}
