package zkcli

import (
	"strings"
	"testing"

	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

// quotaScript exercises zkCli's quota commands: a soft count quota, a hard
// count quota (refused with QuotaExceeded when enforced), listquota, the
// stats node the server maintains, and delquota.
const quotaScript = `create /q
create /q/a data
setquota -n 2 /q
listquota /q
create /q/b
get /zookeeper/quota/q/zookeeper_stats
create /h
setquota -N 2 /h
create /h/a
create /h/b
get /zookeeper/quota/h/zookeeper_stats
setquota -n 1 /q/a
delquota /q
listquota /q
quit
`

// TestZkCliQuota runs zkCli's setquota/listquota/delquota against Paddock
// started with --enforce-quota, and, when Debian's ZooKeeper is here,
// against Apache ZooKeeper with zookeeper.enforceQuota=true: both outputs
// must match line for line.
func TestZkCliQuota(t *testing.T) {
	requireCli(t)
	srv := testserver.Start(t, testserver.Options{ExtraArgs: []string{"--enforce-quota"}})
	got, _ := cli(t, srv.Addr, quotaScript)
	for _, want := range []string{
		"Output quota for /q count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
		"Output stat for /q count=2,bytes=4",
		"count=3,bytes=4",                        // /q/b counted (soft limit: allowed)
		"Quota has exceeded : /h",                // third node under a hard limit
		"count=2,bytes=0",                        // the refused create changed nothing
		"/q/a has a parent /q which has a quota", // one quota per path
		"quota for /q does not exist",            // after delquota
	} {
		if !strings.Contains(got, want) {
			t.Errorf("zkCli output lacks %q\n--- output ---\n%s", want, got)
		}
	}
	if zkref.Available() != nil {
		return
	}
	ref := zkref.Start(t, zkref.Options{JVMFlags: []string{"-Dzookeeper.enforceQuota=true"}})
	want, _ := cli(t, ref.Addr, quotaScript)
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(gl) != len(wl) {
		t.Fatalf("Paddock:\n%s\n--- Apache ZooKeeper:\n%s", got, want)
	}
	for i := range gl {
		if gl[i] != wl[i] {
			t.Errorf("line %d: Paddock %q, Apache ZooKeeper %q", i+1, gl[i], wl[i])
		}
	}
}
