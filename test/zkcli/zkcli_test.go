// Package zkcli drives Apache ZooKeeper's own command-line client,
// zkCli.sh from Debian's zookeeper package, against a server and checks
// its output: create (all modes), ls, get, set, stat, delete, deleteall,
// getAcl, setAcl, addauth, sync.
//
// The server is chosen by PADDOCK_TEST_TARGET (see internal/testserver):
// "apache" validates the expectations against Apache ZooKeeper, a
// host:port aims them at a running server, and the default starts Paddock.
package zkcli

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}

// cli runs zkCli.sh against addr, with args as one command (single-command
// mode) or, when args is empty, with script fed on stdin. It returns the
// combined output without the client's connection and logging chatter.
func cli(t *testing.T, addr, script string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zkref.ZkCli, append([]string{"-server", addr}, args...)...)
	cmd.Stdin = strings.NewReader(script)
	cmd.Env = append(os.Environ(), "ZOO_LOG_DIR="+t.TempDir(), "CLIENT_JVMFLAGS=-Xmx128m -XX:TieredStopAtLevel=1")
	raw, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("zkCli %v timed out:\n%s", args, raw)
	}
	var keep []string
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "SLF4J:"), strings.HasPrefix(line, "Connecting to "),
			strings.HasPrefix(line, "WATCHER::"), strings.HasPrefix(line, "WatchedEvent state:"),
			strings.HasPrefix(line, "Welcome to ZooKeeper!"), strings.HasPrefix(line, "JLine support"),
			strings.TrimSpace(line) == "":
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n"), err
}

func requireCli(t *testing.T) {
	t.Helper()
	zkref.Require(t)
	if _, err := os.Stat(zkref.ZkCli); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func digest(user, password string) string {
	h := sha1.Sum([]byte(user + ":" + password))
	return user + ":" + base64.StdEncoding.EncodeToString(h[:])
}

// step is one zkCli invocation and what its output must show.
type step struct {
	cmd     string   // command line; $R is the test's root path
	want    []string // substrings that must appear, in this order
	notWant []string // substrings that must not appear
	fail    bool     // zkCli must exit non-zero
}

func check(t *testing.T, i int, s step, out string, err error) {
	t.Helper()
	if s.fail != (err != nil) {
		t.Errorf("step %d %q: exit error %v, want failure=%v\n%s", i, s.cmd, err, s.fail, out)
	}
	rest := out
	for _, w := range s.want {
		j := strings.Index(rest, w)
		if j < 0 {
			t.Errorf("step %d %q: output lacks %q (in order)\n--- output ---\n%s", i, s.cmd, w, out)
			return
		}
		rest = rest[j+len(w):]
	}
	for _, w := range s.notWant {
		if strings.Contains(out, w) {
			t.Errorf("step %d %q: output has %q\n--- output ---\n%s", i, s.cmd, w, out)
		}
	}
}

func TestZkCliCommands(t *testing.T) {
	requireCli(t)
	addr, kind := testserver.Target(t)
	root := fmt.Sprintf("/zkcli-%d", time.Now().UnixNano())
	t.Logf("zkCli against %s (%s), root %s", addr, kind, root)

	steps := []step{
		{cmd: "create $R hello", want: []string{"Created $R"}},
		{cmd: "create $R/a a1", want: []string{"Created $R/a"}},
		{cmd: "create $R/a dup", want: []string{"Node already exists: $R/a"}, fail: true},
		{cmd: "create $R/x/y", want: []string{"Node does not exist: $R/x/y"}, fail: true},
		// The sequence number is the parent's cversion: one child so far.
		{cmd: "create -s $R/s- x", want: []string{"Created $R/s-0000000001"}},
		{cmd: "create -s $R/s- x", want: []string{"Created $R/s-0000000002"}},
		{cmd: "ls $R", want: []string{"[a, s-0000000001, s-0000000002]"}},
		{cmd: "get $R", want: []string{"hello"}},
		{cmd: "get -s $R/a", want: []string{"a1", "cZxid = 0x", "ctime = ", "mZxid = 0x", "mtime = ", "pZxid = 0x",
			"cversion = 0", "dataVersion = 0", "aclVersion = 0", "ephemeralOwner = 0x0", "dataLength = 2", "numChildren = 0"}},
		{cmd: "set $R/a a22"},
		{cmd: "set -v 0 $R/a a3", want: []string{"version No is not valid : $R/a"}, fail: true},
		{cmd: "set -v 1 $R/a a333"},
		{cmd: "get $R/a", want: []string{"a333"}},
		{cmd: "stat $R/a", want: []string{"dataVersion = 2", "dataLength = 4", "numChildren = 0"}, notWant: []string{"a333"}},
		{cmd: "stat $R/missing", want: []string{"Node does not exist: $R/missing"}, fail: true},
		{cmd: "ls -s $R", want: []string{"[a, s-0000000001, s-0000000002]", "cversion = 3", "dataLength = 5", "numChildren = 3"}},
		{cmd: "delete $R", want: []string{"Node not empty: $R"}, fail: true},
		{cmd: "delete -v 5 $R/a", want: []string{"version No is not valid : $R/a"}, fail: true},
		{cmd: "delete -v 2 $R/a"},
		{cmd: "get $R/a", want: []string{"Node does not exist: $R/a"}, fail: true},
		{cmd: "delete $R/s-0000000001"},
		// Deletes do not bump the parent's cversion: the counter is still 3.
		{cmd: "create -s $R/s- x", want: []string{"Created $R/s-0000000003"}},
		{cmd: "create -c $R/container", want: []string{"Created $R/container"}},
		{cmd: "create -t 3600000 $R/ttl t", want: []string{"Created $R/ttl"}},
		{cmd: "stat $R/ttl", want: []string{"ephemeralOwner = 0x0", "dataLength = 1"}},
		{cmd: "create -e $R/eph e", want: []string{"Created $R/eph"}},
		{cmd: "stat $R/eph", want: []string{"ephemeralOwner = 0x"}, notWant: []string{"ephemeralOwner = 0x0\n"}},
		{cmd: "getAcl $R", want: []string{"'world,'anyone", ": cdrwa"}},
		{cmd: "setAcl $R world:anyone:crwa"},
		{cmd: "getAcl $R", want: []string{"'world,'anyone", ": crwa"}},
		{cmd: "stat $R", want: []string{"aclVersion = 1"}},
		{cmd: "delete $R/s-0000000002", want: []string{"Insufficient permission : $R/s-0000000002"}, fail: true},
		{cmd: "setAcl -v 0 $R world:anyone:cdrwa", want: []string{"version No is not valid : $R"}, fail: true},
		{cmd: "setAcl -v 1 $R world:anyone:cdrwa"},
		{cmd: "sync $R", want: []string{"Sync is OK"}},
		{cmd: "create $R/d1/d2", fail: true},
		{cmd: "create $R/d1"},
		{cmd: "create $R/d1/d2"},
		{cmd: "create $R/d1/d2/d3 deep"},
		{cmd: "ls -R $R/d1", want: []string{"$R/d1", "$R/d1/d2", "$R/d1/d2/d3"}},
		{cmd: "deleteall $R/d1"},
		{cmd: "ls $R/d1", want: []string{"Node does not exist: $R/d1"}, fail: true},
	}
	for i, s := range steps {
		s.cmd = strings.ReplaceAll(s.cmd, "$R", root)
		for j := range s.want {
			s.want[j] = strings.ReplaceAll(s.want[j], "$R", root)
		}
		out, err := cli(t, addr, "", strings.Fields(s.cmd)...)
		check(t, i, s, out, err)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// TestZkCliSession runs a script in one zkCli session: digest ACLs with
// addauth, and an ephemeral node that disappears when the session quits.
func TestZkCliSession(t *testing.T) {
	requireCli(t)
	addr, _ := testserver.Target(t)
	root := fmt.Sprintf("/zkcli-s-%d", time.Now().UnixNano())
	alice := digest("alice", "pw")
	script := strings.Join([]string{
		"create " + root + " r",
		"create " + root + "/sec secret digest:" + alice + ":cdrwa",
		"get " + root + "/sec",
		"addauth digest alice:pw",
		"get " + root + "/sec",
		"getAcl " + root + "/sec",
		"setAcl " + root + "/sec digest:" + alice + ":cdrwa,world:anyone:r",
		"create -e " + root + "/eph e",
		"stat " + root + "/eph",
		"quit",
	}, "\n") + "\n"
	out, err := cli(t, addr, script)
	check(t, 0, step{cmd: "script", want: []string{
		"Created " + root + "/sec",
		"secret",
		"'digest,'" + alice, ": cdrwa",
		"Created " + root + "/eph",
		"ephemeralOwner = 0x",
	}}, out, err)
	check(t, 1, step{cmd: "script", want: []string{"Insufficient permission : " + root + "/sec"}}, out, err)

	after := []step{
		// quit closed the session: its ephemeral is gone.
		{cmd: "stat $R/eph", want: []string{"Node does not exist: $R/eph"}, fail: true},
		// world:anyone:r was added by alice.
		{cmd: "get $R/sec", want: []string{"secret"}},
		// Without ADMIN permission, digest ids come back masked.
		{cmd: "getAcl $R/sec", want: []string{"'digest,'alice:x", ": cdrwa", "'world,'anyone", ": r"}, notWant: []string{alice}},
		{cmd: "set $R/sec nope", want: []string{"Insufficient permission : $R/sec"}, fail: true},
		{cmd: "delete $R/sec"}, // DELETE is checked on the parent, which is open
	}
	for i, s := range after {
		s.cmd = strings.ReplaceAll(s.cmd, "$R", root)
		for j := range s.want {
			s.want[j] = strings.ReplaceAll(s.want[j], "$R", root)
		}
		out, err := cli(t, addr, "", strings.Fields(s.cmd)...)
		check(t, i+2, s, out, err)
	}
}
