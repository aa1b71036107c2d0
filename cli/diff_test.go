package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
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

// need skips the test when a tool is missing, or fails it under CI=true.
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("%s: %v", what, err)
}

func requireZkCli(t *testing.T) {
	t.Helper()
	need(t, "Apache ZooKeeper", zkref.Available())
	_, err := os.Stat(zkref.ZkCli)
	need(t, "zkCli.sh", err)
}

func paddockBin(t *testing.T) string {
	t.Helper()
	bin, err := testserver.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// run runs a command with stdin, returning stdout and stderr interleaved
// as they were written (one pipe) and whether it exited non-zero.
func run(t *testing.T, name string, args []string, stdin string, env ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v timed out:\n%s", name, args, out)
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), code
}

func zkCli(t *testing.T, addr, stdin string, args ...string) (string, int) {
	return run(t, zkref.ZkCli, append([]string{"-server", addr}, args...), stdin,
		"ZOO_LOG_DIR="+t.TempDir(), "CLIENT_JVMFLAGS=-Xmx128m -XX:TieredStopAtLevel=1")
}

func paddockCli(t *testing.T, addr, stdin string, args ...string) (string, int) {
	return run(t, paddockBin(t), append([]string{"cli", "-server", addr, "-history-file", ""}, args...), stdin)
}

var (
	zxidRe    = regexp.MustCompile(`^([cmp]Zxid) = 0x[0-9a-f]+$`)
	timeRe    = regexp.MustCompile(`^([cm]time) = .*$`)
	ownerRe   = regexp.MustCompile(`^ephemeralOwner = 0x[1-9a-f][0-9a-f]*$`)
	versionRe = regexp.MustCompile(`^(ZooKeeper|Paddock) CLI version: .*$`)
)

// normalise drops zkCli's start-up and logging chatter (as test/zkcli
// does), masks zxids, times and session ids, and splits off the watch
// events, which both shells print asynchronously: they are compared as a
// multiset.
func normalise(out string) (lines, events []string) {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, "SLF4J:"), strings.HasPrefix(l, "Connecting to "),
			strings.HasPrefix(l, "Welcome to ZooKeeper!"), strings.HasPrefix(l, "JLine support"),
			l == "WATCHER::", strings.TrimSpace(l) == "":
			continue
		case strings.HasPrefix(l, "WatchedEvent "):
			events = append(events, l)
			continue
		}
		l = zxidRe.ReplaceAllString(l, "$1 = 0xZXID")
		l = timeRe.ReplaceAllString(l, "$1 = TIME")
		l = ownerRe.ReplaceAllString(l, "ephemeralOwner = 0xSESSION")
		l = versionRe.ReplaceAllString(l, "CLI version: V")
		lines = append(lines, l)
	}
	sort.Strings(events)
	return lines, events
}

// diff reports the first differences between two normalised outputs.
func diff(t *testing.T, what string, want, got []string) {
	t.Helper()
	n := max(len(want), len(got))
	bad := 0
	for i := 0; i < n && bad < 8; i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("%s line %d:\n   want %q\n    got %q", what, i+1, w, g)
			bad++
		}
	}
	if bad > 0 {
		t.Logf("%s, full want:\n%s\n--- full got:\n%s", what, strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// sessionScript exercises every command a script can run in one session
// with an outcome that is the same on any server: creates of every mode,
// reads with and without stat, conditional writes, watches of each kind
// and their removal, ACLs, digest auth, quotas, ephemerals, history and
// redo. It ends by deleting its tree, so it can run again on the same
// server.
const sessionScript = `create /d
create /d/a hello
create /d/a again
create /d/x/y
create -s /d/s- one
create -s /d/s- two
create -e /d/eph e
create -c /d/cont
create -t 60000 /d/ttl t
create /d/q "two words"
get /d/q
ls /d
ls -s /d
get /d/a
get -s /d/a
get /d
set /d/a world
set -v 0 /d/a bad
set -s -v 1 /d/a good
stat /d/a
stat /d/none
get /d/none
ls /d/none
get -w /d/a
set /d/a changed
ls -w /d
create /d/b
stat -w /d/new
create /d/new
addWatch /d/rec
create /d/rec
create /d/rec/c1
set /d/rec/c1 v
delete /d/rec/c1
removewatches /d/rec
removewatches /d/rec
get -w /d/b
removewatches /d/b -d
getAcl /d/a
setAcl /d/a world:anyone:cdrwa
getAcl -s /d/a
setAcl -v 0 /d/a world:anyone:r
create /d/a/child
setAcl /d/a world:anyone:ra
create /d/a/child2
delete /d/a
delete /d/a/child
setAcl /d/a world:anyone:cdrwa
delete -v 7 /d/a/child
delete /d/a/child
create /d/eph/kid
getEphemerals /d
getAllChildrenNumber /d
whoami
addauth digest alice:pw
whoami
create /d/sec s auth::cdrwa
getAcl /d/sec
get /d/sec
sync /d
listquota /d
setquota -n 10 /d
listquota /d
setquota -b 100 /d/a
setquota -B 50 /d
listquota /d
delquota -n /d
listquota /d
delquota /d
listquota /d
ls -R /d
deleteall /d/rec
printwatches off
get -w /d/b
set /d/b quiet
sync /d
get /d/b
printwatches
printwatches on
get /d/b
history
redo 13
redo 1000
ls d
ls /d/
deleteall /d
ls /d
quit
`

// TestDifferentialScript runs sessionScript through zkCli and through
// paddock cli (a piped interactive session), each against Apache ZooKeeper
// and against Paddock, and requires the four outputs to match after
// normalisation: zkCli→ZooKeeper is the reference; paddock cli→ZooKeeper
// isolates the shell, zkCli→Paddock the server.
func TestDifferentialScript(t *testing.T) {
	requireZkCli(t)
	ref := zkref.Start(t, zkref.Options{})
	pd := testserver.Start(t, testserver.CompatOptions())

	wantOut, wantCode := zkCli(t, ref.Addr, sessionScript)
	want, wantEv := normalise(wantOut)
	if len(want) < 40 {
		t.Fatalf("reference run too short:\n%s", wantOut)
	}
	for _, r := range []struct {
		name string
		run  func() (string, int)
	}{
		{"paddock cli → ZooKeeper", func() (string, int) { return paddockCli(t, ref.Addr, sessionScript) }},
		{"paddock cli → Paddock", func() (string, int) { return paddockCli(t, pd.Addr, sessionScript) }},
		{"zkCli → Paddock", func() (string, int) { return zkCli(t, pd.Addr, sessionScript) }},
	} {
		t.Run(r.name, func(t *testing.T) {
			out, code := r.run()
			got, gotEv := normalise(out)
			diff(t, "output", want, got)
			diff(t, "events", wantEv, gotEv)
			if (code == 0) != (wantCode == 0) {
				t.Errorf("exit code %d, zkCli→ZooKeeper %d", code, wantCode)
			}
		})
	}
}

// oneShot are single commands run as `<shell> -server addr <command>`, in
// order, each as its own session.
var oneShot = []string{
	"create /o",
	"create /o data",
	"create /o/a 1",
	"create -s /o/s x",
	"ls /o",
	"ls -s /o",
	"get /o/a",
	"get -s /o/a",
	"get /o/missing",
	"set -v 5 /o/a 2",
	"set -s /o/a 2",
	"stat /o/a",
	"stat /o/missing",
	"getAcl /o/a",
	"setAcl /o/a world:anyone:rw",
	"getAllChildrenNumber /o",
	"delete /o",
	"ls -R /o",
	"deleteall /o",
	"ls /o",
}

// TestDifferentialOneShot compares one-shot runs of paddock cli against
// Paddock with zkCli's against Apache ZooKeeper: same output after
// normalisation, and failure exactly where zkCli fails.
func TestDifferentialOneShot(t *testing.T) {
	requireZkCli(t)
	ref := zkref.Start(t, zkref.Options{})
	pd := testserver.Start(t, testserver.CompatOptions())
	for i, c := range oneShot {
		wantOut, wantCode := zkCli(t, ref.Addr, "", strings.Fields(c)...)
		gotOut, gotCode := paddockCli(t, pd.Addr, "", strings.Fields(c)...)
		want, _ := normalise(wantOut)
		got, gotEv := normalise(gotOut)
		diff(t, fmt.Sprintf("step %d %q", i, c), want, got)
		if len(gotEv) > 0 {
			t.Errorf("step %d %q: one-shot printed events %q", i, c, gotEv)
		}
		if (gotCode == 0) != (wantCode == 0) {
			t.Errorf("step %d %q: exit code %d, zkCli %d", i, c, gotCode, wantCode)
		}
	}
}

// TestExitCodes checks the one-shot exit codes and that errors go to
// stderr as one clear line.
func TestExitCodes(t *testing.T) {
	pd := testserver.Start(t, testserver.CompatOptions())
	bin := paddockBin(t)
	for _, tc := range []struct {
		args   string
		code   int
		stdout string
		stderr string
	}{
		{"create /e x", 0, "", "Created /e"},
		{"create /e x", 1, "", "Node already exists: /e\n"},
		{"get /e", 0, "x\n", ""},
		{"set -v 9 /e y", 1, "", "version No is not valid : /e\n"},
		{"delete /nope", 1, "", "Node does not exist: /nope\n"},
		{"get", 2, "", "get [-s] [-w] path\n"},
		{"get nope", 2, "", "Path must start with / character\n"},
		{"frobnicate", 127, "", "Command not found: frobnicate\n"},
		{"-o json get /e", 0, `{"data":"x","path":"/e"}` + "\n", ""},
		{"-o json stat /nope", 1, "", "Node does not exist: /nope\n"},
		{"-o yaml get /e", 2, "", "-o must be text or json"},
		{"-server 127.0.0.1:1 -timeout 1500 ls /", 3, "", "Unable to connect to 127.0.0.1:1 within 1.5s (dial tcp 127.0.0.1:1: connect: connection refused)\n"},
		{"help", 0, "\tls [-s] [-w] [-R] path\n", ""},
	} {
		args := strings.Fields(tc.args)
		if !strings.HasPrefix(tc.args, "-server") {
			args = append([]string{"-server", pd.Addr}, args...)
		}
		cmd := exec.Command(bin, append([]string{"cli"}, args...)...)
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.args, code, tc.code, se.String())
		}
		if !strings.Contains(so.String(), tc.stdout) || (tc.stdout == "" && so.Len() > 0) {
			t.Errorf("%q: stdout %q, want %q", tc.args, so.String(), tc.stdout)
		}
		if !strings.HasSuffix(se.String(), tc.stderr) && !strings.Contains(se.String(), tc.stderr) {
			t.Errorf("%q: stderr %q, want %q", tc.args, se.String(), tc.stderr)
		}
		if strings.Contains(se.String(), "goroutine ") || strings.Contains(se.String(), "panic") {
			t.Errorf("%q: stack trace on stderr:\n%s", tc.args, se.String())
		}
	}
}

// TestJSON runs every read command with -o json and checks that the
// output is one JSON object with the expected fields.
func TestJSON(t *testing.T) {
	pd := testserver.Start(t, testserver.CompatOptions())
	setup := "create /j {\"k\":1}\ncreate /j/c1\ncreate /j/c2 \xff\ncreate -e /j/e\nsetquota -n 5 /j\nquit\n"
	if out, code := paddockCli(t, pd.Addr, setup); code != 0 {
		t.Fatalf("setup: %d\n%s", code, out)
	}
	for _, tc := range []struct {
		cmd  string
		keys []string
	}{
		{"ls /j", []string{"path", "children"}},
		{"ls -s /j", []string{"path", "children", "stat"}},
		{"ls -R /j", []string{"path", "paths"}},
		{"get /j", []string{"path", "data"}},
		{"get -s /j", []string{"path", "data", "stat"}},
		{"get /j/c1", []string{"path", "data"}},
		{"stat /j", []string{"path", "stat"}},
		{"getAcl /j", []string{"path", "acl"}},
		{"getAcl -s /j", []string{"path", "acl", "stat"}},
		{"config", []string{"config"}},
		{"getEphemerals /j", []string{"path", "ephemerals"}},
		{"getAllChildrenNumber /j", []string{"path", "count"}},
		{"whoami", []string{"clientInfo"}},
		{"listquota /j", []string{"path", "quota", "stat"}},
	} {
		out, code := run(t, paddockBin(t), append([]string{"cli", "-server", pd.Addr, "-o", "json"}, strings.Fields(tc.cmd)...), "")
		if code != 0 {
			t.Errorf("%q: exit %d\n%s", tc.cmd, code, out)
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%q: not JSON: %v\n%s", tc.cmd, err, out)
			continue
		}
		for _, k := range tc.keys {
			if _, ok := v[k]; !ok {
				t.Errorf("%q: no %q in %s", tc.cmd, k, out)
			}
		}
		if tc.cmd == "get /j" && v["data"] != `{"k":1}` {
			t.Errorf("get /j data = %v", v["data"])
		}
		if tc.cmd == "get /j/c1" && v["data"] != nil {
			t.Errorf("get /j/c1 (null data) = %v", v["data"])
		}
		if tc.cmd == "getAllChildrenNumber /j" && v["count"] != float64(2) {
			t.Errorf("getAllChildrenNumber /j count = %v, want 2", v["count"])
		}
	}
	// Binary data comes with its base64.
	out, _ := run(t, paddockBin(t), []string{"cli", "-server", pd.Addr, "-o", "json", "get", "/j/c2"}, "")
	if !strings.Contains(out, `"base64":"/w=="`) {
		t.Errorf("get /j/c2: %s", out)
	}
}
