package zkdata

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
	"github.com/paddockhq/paddock/statemachine"
)

const (
	secretUser = "alice:wonderland"
	// holderTimeout is the session timeout of the client that keeps its
	// session (and ephemerals) open across the migration.
	holderTimeout = 30 * time.Second
)

func connect(t *testing.T, addr string, timeout time.Duration) *zk.Conn {
	t.Helper()
	c, events, err := zk.Connect([]string{addr}, timeout, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for c.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-deadline:
			c.Close()
			t.Fatalf("no session with %s", addr)
		}
	}
	return c
}

// checker returns a function that fails the test on a non-nil error and
// discards the value, for calls whose result is not needed.
func checker(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// workload drives a mixed load through go-zookeeper: every create mode,
// ephemerals of a session that stays open and of one that closes, multi
// (committed and failed), setData, setACL with digest ACLs, deletes, and
// enough writes for ZooKeeper (snapCount=100) to roll logs and take fuzzy
// snapshots along the way. It returns the session that stays open.
func workload(t *testing.T, addr string) *zk.Conn {
	must := checker(t)
	open := zk.WorldACL(zk.PermAll)
	w := connect(t, addr, 10*time.Second)
	defer w.Close()
	must(w.Create("/app", []byte("root of the app"), 0, open))
	must(w.Create("/app/cfg", []byte("v0"), 0, open))
	must(w.Create("/app/null", nil, 0, open))
	must(w.Create("/app/bulk", nil, 0, open))
	for i := 0; i < 5; i++ {
		must(w.Create("/app/seq-", []byte{byte(i)}, zk.FlagSequence, open))
	}
	must(w.CreateContainer("/app/cont", []byte("container"), zk.FlagContainer, open))
	must(w.Create("/app/cont/keep", nil, 0, open))
	must(w.Create("/app/cont/gone", nil, 0, open))
	if err := w.Delete("/app/cont/gone", -1); err != nil {
		t.Fatal(err)
	}
	must(w.CreateTTL("/app/ttl", []byte("ttl"), zk.FlagTTL, open, time.Hour))
	must(w.CreateTTL("/app/ttlseq-", nil, zk.FlagPersistentSequentialWithTTL, open, 2*time.Hour))

	// Digest ACLs: only alice may read or write /app/secret.
	if err := w.AddAuth("digest", []byte(secretUser)); err != nil {
		t.Fatal(err)
	}
	must(w.Create("/app/secret", []byte("s3cret"), 0, zk.DigestACL(zk.PermAll, "alice", "wonderland")))
	must(w.Create("/app/shared", []byte("x"), 0, open))
	must(w.SetACL("/app/shared", append(zk.DigestACL(zk.PermRead|zk.PermWrite|zk.PermAdmin, "alice", "wonderland"), zk.WorldACL(zk.PermRead)...), -1))
	must(w.SetACL("/app/shared", append(zk.DigestACL(zk.PermAll, "alice", "wonderland"), zk.WorldACL(zk.PermRead)...), 1))

	// A session that closes: its ephemerals go with it (closeSession).
	closer := connect(t, addr, 10*time.Second)
	must(closer.Create("/app/closer-eph", nil, zk.FlagEphemeral, open))
	closer.Close()

	// The session that stays open.
	holder := connect(t, addr, holderTimeout)
	must(holder.Create("/app/lock", nil, 0, open))
	must(holder.Create("/app/eph", []byte("held"), zk.FlagEphemeral, open))
	must(holder.Create("/app/lock/n-", []byte("me"), zk.FlagEphemeral|zk.FlagSequence, open))

	for i := 0; i < 320; i++ {
		p := fmt.Sprintf("/app/bulk/n%03d", i)
		must(w.Create(p, []byte(p), 0, open))
		switch i % 4 {
		case 1:
			if err := w.Delete(p, 0); err != nil {
				t.Fatal(err)
			}
		case 2:
			must(w.Set(p, []byte("changed"), 0))
		}
		if i%10 == 0 {
			must(w.Set("/app/cfg", []byte(fmt.Sprintf("v%d", i)), -1))
		}
		if i%50 == 0 {
			// A multi that commits, and one that fails (logged as an
			// error multi, which replay must skip as a whole).
			must(w.Multi(
				&zk.CreateRequest{Path: fmt.Sprintf("/app/m%d", i), Data: []byte("multi"), Acl: open},
				&zk.SetDataRequest{Path: "/app/cfg", Data: []byte("by multi"), Version: -1},
				&zk.CheckVersionRequest{Path: "/app", Version: 0},
			))
			_, err := w.Multi(
				&zk.CreateRequest{Path: fmt.Sprintf("/app/never%d", i), Acl: open},
				&zk.DeleteRequest{Path: "/app/does-not-exist", Version: -1},
			)
			if err == nil {
				t.Fatal("failing multi succeeded")
			}
		}
	}
	// A multi that deletes and creates, and a sequential node after
	// deletions (cversion-based names).
	must(w.Multi(
		&zk.DeleteRequest{Path: "/app/bulk/n000", Version: -1},
		&zk.CreateRequest{Path: "/app/bulk/n000", Data: []byte("again"), Acl: open},
	))
	must(w.Create("/app/seq-", []byte("last"), zk.FlagSequence, open))
	return holder
}

// record reads a live server's whole tree, with alice's credentials.
func record(t *testing.T, addr string) []ExportRecord {
	t.Helper()
	recs, err := LiveRecords([]string{addr}, LiveOptions{Auth: []string{"digest:" + secretUser}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Error != "" {
			t.Fatalf("%s: %s", r.Path, r.Error)
		}
		if r.Data == nil {
			r.Data = []byte{}
		}
	}
	return recs
}

func normalize(recs []ExportRecord) []ExportRecord {
	out := append([]ExportRecord(nil), recs...)
	for i := range out {
		if out[i].Data == nil {
			out[i].Data = []byte{}
		}
	}
	return out
}

func diffRecords(t *testing.T, what string, want, got []ExportRecord) {
	t.Helper()
	want, got = normalize(want), normalize(got)
	wm := map[string]ExportRecord{}
	for _, r := range want {
		wm[r.Path] = r
	}
	gm := map[string]ExportRecord{}
	for _, r := range got {
		gm[r.Path] = r
	}
	bad := 0
	for _, r := range want {
		g, ok := gm[r.Path]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, r.Path)
			bad++
		case !reflect.DeepEqual(r, g):
			t.Errorf("%s: %s differs:\n want %+v\n  got %+v", what, r.Path, r, g)
			bad++
		}
		if bad > 10 {
			t.Fatalf("%s: too many differences", what)
		}
	}
	for _, r := range got {
		if _, ok := wm[r.Path]; !ok {
			t.Errorf("%s: unexpected %s", what, r.Path)
		}
	}
}

func countFiles(t *testing.T, dir, prefix string) int {
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range des {
		if strings.HasPrefix(de.Name(), prefix) {
			n++
		}
	}
	return n
}

// TestImportFromZooKeeper runs Apache ZooKeeper under a mixed workload,
// kills it, imports its data directory, serves the result with Paddock on
// the same port and compares every node, while a client that held a
// session on ZooKeeper reconnects to Paddock and keeps its ephemerals.
func TestImportFromZooKeeper(t *testing.T) {
	zkref.Require(t)
	for _, mode := range []string{"plain", "gz", "snappy"} {
		t.Run(mode, func(t *testing.T) {
			if testing.Short() && mode != "plain" {
				t.Skip("short")
			}
			testImport(t, mode)
		})
	}
}

func testImport(t *testing.T, mode string) {
	base := t.TempDir()
	zkDir := filepath.Join(base, "zk")
	var flags []string
	if mode != "plain" {
		flags = append(flags, "-Dzookeeper.snapshot.compression.method="+mode)
	}
	ports, err := zkref.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	ref := zkref.Start(t, zkref.Options{
		Dir:               zkDir,
		Port:              ports[0],
		ExtraConfig:       []string{"snapCount=100"},
		JVMFlags:          flags,
		MaxSessionTimeout: 60 * time.Second,
	})
	holder := workload(t, ref.Addr)
	defer holder.Close()
	holderID := holder.SessionID()
	before := record(t, ref.Addr)
	if err := ref.Kill(); err != nil {
		t.Fatal(err)
	}

	v2 := filepath.Join(zkDir, "data", "version-2")
	nlogs, nsnaps := countFiles(t, v2, "log."), countFiles(t, v2, "snapshot.")
	t.Logf("%s: ZooKeeper left %d logs and %d snapshots", mode, nlogs, nsnaps)
	if nlogs < 2 || nsnaps < 2 {
		t.Fatalf("workload did not roll logs and snapshots: %d logs, %d snapshots", nlogs, nsnaps)
	}
	if mode != "plain" {
		if m, _ := filepath.Glob(filepath.Join(v2, "snapshot.*."+mode)); len(m) < 2 {
			t.Fatalf("fewer than two %s snapshots: %v", mode, m)
		}
	}

	// Offline: the restored tree equals what ZooKeeper served.
	res, err := Restore(RestoreOptions{SnapDir: filepath.Join(zkDir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := res.State(statemachine.Options{ExtendedTypes: true})
	if err != nil {
		t.Fatal(err)
	}
	diffRecords(t, "offline restore", before, StateRecords(st))
	if _, ok := st.Session(holderID); !ok {
		t.Fatalf("holder session 0x%x not imported; sessions %v", holderID, st.Sessions())
	}
	t.Logf("restored from %s + %d txns from %d logs; tolerated %v", filepath.Base(res.Snapshot.File), res.Txns, len(res.Logs), res.Tree.Tolerated)

	// Import and serve on ZooKeeper's port.
	to := filepath.Join(base, "paddock")
	if mode == "gz" {
		// Through the command line: paddock import, then an offline
		// paddock export of the result.
		cliImport(t, filepath.Join(zkDir, "data"), to, before)
	} else {
		sum, err := Import(ImportOptions{RestoreOptions: RestoreOptions{SnapDir: v2}, To: to})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("import: %+v", *sum)
	}
	srv := testserver.Start(t, testserver.Options{DataDir: to, Port: ports[0], ExtendedTypes: true, MaxSessionTimeout: 60 * time.Second})

	// The holder's client reconnects by itself, with its session id and
	// ZooKeeper's password.
	deadline := time.Now().Add(20 * time.Second)
	for holder.State() != zk.StateHasSession || holder.SessionID() != holderID {
		if time.Now().After(deadline) {
			t.Fatalf("holder did not get its session back: state %v id 0x%x (want 0x%x)\n%s", holder.State(), holder.SessionID(), holderID, srv.Tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _, err = holder.Get("/app/eph")
	if err != nil {
		t.Fatalf("holder get: %v", err)
	}
	after := record(t, srv.Addr)
	diffRecords(t, "paddock", before, after)

	// The session still owns its ephemerals and can write.
	_, st2, err := holder.Get("/app/eph")
	if err != nil || st2.EphemeralOwner != holderID {
		t.Fatalf("ephemeral owner %v, %v", st2, err)
	}
	p, err := holder.Create("/app/after", nil, 0, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	_, st3, err := holder.Get(p)
	if err != nil || st3.Czxid <= res.Tree.LastZxid {
		t.Fatalf("new node czxid 0x%x, imported zxid 0x%x (%v)", st3.Czxid, res.Tree.LastZxid, err)
	}
	// Closing the session removes its ephemerals on Paddock.
	holder.Close()
	c := connect(t, srv.Addr, 10*time.Second)
	defer c.Close()
	if ok, _, _ := c.Exists("/app/eph"); ok {
		t.Fatal("ephemeral survived its session's close")
	}

	if mode == "plain" {
		testCorruptInput(t, v2, base)
		testSnapshotFallback(t, v2, base, StateRecords(st))
	}
}

// testCorruptInput truncates a copy of the newest log in the middle of a
// record: the import must fail naming the file and the record's offset, and
// leave no target behind.
func testCorruptInput(t *testing.T, v2, base string) {
	dir := filepath.Join(base, "corrupt", "version-2")
	copyDir(t, v2, dir)
	logs, err := listLogs(dir)
	if err != nil || len(logs) == 0 {
		t.Fatal(logs, err)
	}
	last := logs[len(logs)-1].Path
	lr, err := OpenLog(last)
	if err != nil {
		t.Fatal(err)
	}
	var lastOff int64 = -1
	for {
		txn, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lastOff = txn.Offset
	}
	lr.Close()
	if lastOff < 0 {
		t.Fatal("no record in", last)
	}
	if err := os.Truncate(last, lastOff+20); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(base, "corrupt-import")
	_, err = Import(ImportOptions{RestoreOptions: RestoreOptions{SnapDir: dir}, To: to})
	if err == nil {
		t.Fatal("import of a truncated log succeeded")
	}
	want := fmt.Sprintf("%s: offset %d", last, lastOff)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %q", err, want)
	}
	if _, serr := os.Stat(to); !os.IsNotExist(serr) {
		t.Fatalf("target exists after a failed import: %v", serr)
	}
	if m, _ := filepath.Glob(filepath.Join(base, ".corrupt-import*")); len(m) > 0 {
		t.Fatalf("temporary directories left: %v", m)
	}
	t.Logf("truncated log: %v", err)
	// ZooKeeper's own tolerance, on request.
	if _, err := Import(ImportOptions{RestoreOptions: RestoreOptions{SnapDir: dir, AllowTornTail: true}, To: to}); err != nil {
		t.Fatalf("with AllowTornTail: %v", err)
	}
}

// testSnapshotFallback damages the newest snapshot: the restore must fall
// back to an older one and, replaying more of the logs, reach the same
// tree.
func testSnapshotFallback(t *testing.T, v2, base string, want []ExportRecord) {
	dir := filepath.Join(base, "badsnap", "version-2")
	copyDir(t, v2, dir)
	snaps, err := listSnapshots(dir)
	if err != nil || len(snaps) < 2 {
		t.Fatal(snaps, err)
	}
	b, err := os.ReadFile(snaps[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(snaps[0].Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Restore(RestoreOptions{SnapDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.SkippedSnapshots) != 1 || res.Snapshot.File != snaps[1].Path {
		t.Fatalf("skipped %v, used %s", res.SkippedSnapshots, res.Snapshot.File)
	}
	st, err := res.State(statemachine.Options{ExtendedTypes: true})
	if err != nil {
		t.Fatal(err)
	}
	diffRecords(t, "fallback snapshot", want, StateRecords(st))
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(from, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cliImport runs `paddock import` and checks `paddock export --data-dir`
// of the result against the records taken from ZooKeeper.
func cliImport(t *testing.T, from, to string, want []ExportRecord) {
	t.Helper()
	bin, err := testserver.Binary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "import", "--from", from, "--to", to).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "imported 270 znodes, 1 sessions") {
		t.Fatalf("paddock import: %v\n%s", err, out)
	}
	t.Logf("paddock import: %s", out)
	exp, err := exec.Command(bin, "export", "--data-dir", to).Output()
	if err != nil {
		t.Fatalf("paddock export: %v", err)
	}
	var got []ExportRecord
	for _, line := range strings.Split(strings.TrimSpace(string(exp)), "\n") {
		var r ExportRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		got = append(got, r)
	}
	diffRecords(t, "paddock export --data-dir", want, got)
}
