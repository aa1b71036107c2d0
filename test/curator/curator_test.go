// Package curator runs CuratorScenarios.java, a program using Apache
// Curator 5 (Debian's libcurator-*-java) with the ZooKeeper 3.8 client jar,
// against a server: LeaderLatch, InterProcessMutex, CuratorCache
// (persistent recursive watches), DistributedBarrier and
// DistributedDoubleBarrier, SharedCount, PersistentNode with TTL,
// CuratorFramework.transaction() and the EnsembleTracker's read of
// /zookeeper/config.
//
// The program is compiled once per test binary with javac and run in one
// JVM (a JVM start costs about a second); each scenario prints one PASS or
// FAIL line that the subtests below assert.
//
// The server is chosen by PADDOCK_TEST_TARGET (see internal/testserver):
// "apache" validates the scenarios against Apache ZooKeeper, a host:port
// aims them at a running server, and the default starts Paddock. Without
// javac or the Curator jars the test is skipped, or fails when CI=true.
package curator

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testserver"
)

// Jars is the class path: Curator, the ZooKeeper client and an slf4j
// binding. Their manifests' Class-Path entries bring in the rest (Guava,
// jute, Jackson, slf4j-api) from /usr/share/java.
var Jars = []string{
	"/usr/share/java/curator-recipes.jar",
	"/usr/share/java/curator-framework.jar",
	"/usr/share/java/curator-client.jar",
	"/usr/share/java/zookeeper.jar",
	"/usr/share/java/slf4j-simple.jar",
}

// scenarios are the program's scenarios in the order it runs them, with
// facts their PASS line must contain ("" checks only the PASS).
var scenarios = []struct{ name, facts string }{
	{"crud", "children=a,e,s-N"},
	{"transaction", "types=CREATE,CREATE,SET_DATA,CHECK,CREATE,DELETE failed=BADVERSION"},
	{"leaderlatch", "leaders=2 handover=ok"},
	{"mutex", "counter=40 overlaps=0 reentrant=ok"},
	{"cache", "events=13 order=ok"},
	{"barrier", "barrier=released double=entered,left"},
	{"sharedcount", "count=6 version=2 stale=refused"},
	// Apache reports ephemeralOwner 0 for TTL nodes (the TTL lives only
	// in its internal ephemeralOwner encoding).
	{"ttl", "recreated=ok ephemeralOwner=0x0 plainOwner=0x0"},
	// Standalone: /zookeeper/config is empty, so the tracker keeps the
	// connection string it was given (checked against the address below).
	{"ensembletracker", "members=0 config=<empty>"},
}

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}

// require skips the test when javac or a jar is missing, or fails it when
// CI=true.
func require(t *testing.T) (javac, java string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("Curator suite required in CI: %s", msg)
		}
		t.Skip(msg)
	}
	var err error
	if javac, err = exec.LookPath("javac"); err != nil {
		missing("javac not found (apt-get install default-jdk-headless): %v", err)
	}
	if java, err = exec.LookPath("java"); err != nil {
		missing("java not found: %v", err)
	}
	for _, j := range Jars {
		if _, err := os.Stat(j); err != nil {
			missing("%s missing (apt-get install libcurator-recipes-java): %v", j, err)
		}
	}
	return javac, java
}

func TestCurator(t *testing.T) {
	javac, java := require(t)
	classes := t.TempDir()
	cp := strings.Join(Jars, ":")
	start := time.Now()
	out, err := exec.Command(javac, "-nowarn", "-d", classes, "-cp", cp, "CuratorScenarios.java").CombinedOutput()
	if err != nil {
		t.Fatalf("javac CuratorScenarios.java: %v\n%s", err, out)
	}
	t.Logf("javac: %v", time.Since(start).Round(time.Millisecond))

	addr, kind := testserver.Target(t)
	t.Logf("Curator scenarios against %s (%s)", addr, kind)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, java,
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.net.preferIPv4Stack=true",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=error",
		"-cp", classes+":"+cp,
		"CuratorScenarios", addr)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start = time.Now()
	runErr := cmd.Run()
	t.Logf("scenarios: %v, exit %v", time.Since(start).Round(time.Millisecond), runErr)

	results := map[string]string{} // name -> whole line
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == "PASS" || f[0] == "FAIL") {
			results[f[1]] = line
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}()
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			line, ok := results[s.name]
			switch {
			case !ok:
				t.Fatalf("no result line (the JVM exited early?)")
			case !strings.HasPrefix(line, "PASS "):
				t.Fatalf("%s", line)
			case !strings.Contains(line, s.facts):
				t.Fatalf("%s\nwant facts %q", line, s.facts)
			}
			if s.name == "ensembletracker" && !strings.Contains(line, "conn="+addr+" ") {
				t.Fatalf("%s\nthe EnsembleTracker changed the connection string from %s", line, addr)
			}
			t.Log(line)
		})
	}
	if runErr != nil {
		t.Errorf("CuratorScenarios exited with %v", runErr)
	}
	if len(results) != len(scenarios) {
		t.Errorf("%d result lines for %d scenarios", len(results), len(scenarios))
	}
}
