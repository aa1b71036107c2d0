package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/paddockhq/paddock/statemachine"
	"github.com/paddockhq/paddock/zkdata"
)

// runImport is `paddock import`: Apache ZooKeeper's data directory in, a
// Paddock data directory out.
func runImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("paddock import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "Apache ZooKeeper dataDir (or its version-2 directory) holding snapshot.* files")
	logDir := fs.String("log-dir", "", "ZooKeeper dataLogDir holding log.* files, when not the same as --from")
	to := fs.String("to", "", "Paddock data directory to create (must not exist or be empty)")
	serverID := fs.Uint64("server-id", 1, "server id the imported directory will be served with (paddock server --server-id)")
	allowTorn := fs.Bool("allow-torn-tail", false, "accept a torn last record at the end of the newest log, as ZooKeeper does after a crash")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: paddock import --from <zookeeper dataDir> --to <paddock data dir> [flags]

Reads Apache ZooKeeper's snapshots and transaction logs, replays them as
ZooKeeper does on start, and writes a Paddock data directory with the same
tree, ACLs, stats and live sessions. Stop ZooKeeper first.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *from == "" || *to == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	var bar *progressBar
	if !*quiet && isTerminal(stderr) {
		bar = &progressBar{w: stderr, label: "importing"}
	}
	opts := zkdata.ImportOptions{
		RestoreOptions: zkdata.RestoreOptions{
			SnapDir:       *from,
			LogDir:        *logDir,
			AllowTornTail: *allowTorn,
			Warn: func(msg string) {
				bar.clear()
				fmt.Fprintln(stderr, "paddock import: warning:", msg)
			},
		},
		To:       *to,
		ServerID: *serverID,
	}
	if bar != nil {
		opts.Progress = bar.update
	}
	sum, err := zkdata.Import(opts)
	bar.clear()
	if err != nil {
		fmt.Fprintln(stderr, "paddock import:", err)
		fmt.Fprintln(stderr, "paddock import: nothing was written to", *to)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d znodes, %d sessions, zxid 0x%x (snapshot 0x%x + %d txns) from %d files (%s) in %v\n",
		sum.Znodes, sum.Sessions, sum.Zxid, sum.SnapshotZxid, sum.Txns, sum.FilesRead, humanBytes(sum.BytesRead), sum.Elapsed.Round(time.Millisecond))
	if sum.Skipped > 0 {
		fmt.Fprintf(stdout, "  %d newer snapshot(s) were unreadable and skipped; started from %s\n", sum.Skipped, sum.Snapshot)
	}
	if sum.DeadSessions > 0 {
		fmt.Fprintf(stdout, "  ephemerals of %d closed session(s) were removed, as ZooKeeper does on load\n", sum.DeadSessions)
	}
	if len(sum.Tolerated) > 0 {
		var parts []string
		for code, n := range sum.Tolerated {
			parts = append(parts, fmt.Sprintf("%d×%s", n, code))
		}
		sort.Strings(parts)
		fmt.Fprintf(stdout, "  replay over the fuzzy snapshot ignored %s, as ZooKeeper does\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(stdout, "start it with: paddock server --data-dir %s", *to)
	if *serverID != 1 {
		fmt.Fprintf(stdout, " --server-id %d", *serverID)
	}
	fmt.Fprintln(stdout)
	return 0
}

// runExport is `paddock export`: the tree as JSON lines, sorted by path.
func runExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("paddock export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "Paddock data directory to read offline (no server may be writing it)")
	server := fs.String("server", "", "read a running server (Paddock or ZooKeeper) at host:port[,host:port...]")
	zkDir := fs.String("zookeeper-data-dir", "", "read an Apache ZooKeeper dataDir offline (as import would restore it)")
	zkLogDir := fs.String("zookeeper-log-dir", "", "with --zookeeper-data-dir: its dataLogDir, if separate")
	out := fs.String("o", "", "output file (default stdout)")
	var auth multiFlag
	fs.Var(&auth, "auth", "with --server: scheme:credentials to add to the session (repeatable), e.g. digest:admin:secret")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: paddock export (--data-dir <dir> | --server <host:port> | --zookeeper-data-dir <dir>) [-o file]

Writes every znode as one JSON object a line, sorted by path:
{"path","data" (base64),"acl":[{"perms","scheme","id"}],"stat":{czxid,mzxid,pzxid,ctime,mtime,version,cversion,aversion,ephemeralOwner,dataLength,numChildren}}

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	n := 0
	for _, s := range []string{*dataDir, *server, *zkDir} {
		if s != "" {
			n++
		}
	}
	if n != 1 || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	var recs []zkdata.ExportRecord
	switch {
	case *dataDir != "":
		st, err := zkdata.LoadDataDir(*dataDir)
		if err != nil {
			fmt.Fprintln(stderr, "paddock export:", err)
			return 1
		}
		recs = zkdata.StateRecords(st)
	case *zkDir != "":
		res, err := zkdata.Restore(zkdata.RestoreOptions{SnapDir: *zkDir, LogDir: *zkLogDir})
		if err == nil {
			st, serr := res.State(zkdataOptions())
			if err = serr; err == nil {
				recs = zkdata.StateRecords(st)
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, "paddock export:", err)
			return 1
		}
	default:
		var err error
		recs, err = zkdata.LiveRecords(strings.Split(*server, ","), zkdata.LiveOptions{Auth: auth})
		if err != nil {
			fmt.Fprintln(stderr, "paddock export:", err)
			return 1
		}
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(stderr, "paddock export:", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	if err := zkdata.WriteRecords(w, recs); err != nil {
		fmt.Fprintln(stderr, "paddock export:", err)
		return 1
	}
	return 0
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a one-line bar on a terminal, at most ten times a
// second. A nil bar does nothing.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	last  time.Time
	drawn bool
}

func (b *progressBar) update(done, total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = time.Now()
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	const width = 30
	fill := int(frac * width)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%% %s/%s", b.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		frac*100, humanBytes(done), humanBytes(total))
	b.drawn = true
}

// clear erases the bar so other output starts on a clean line.
func (b *progressBar) clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// zkdataOptions are the state options an offline export of a ZooKeeper
// directory uses (TTL nodes allowed: they may be in the data).
func zkdataOptions() statemachine.Options { return statemachine.Options{ExtendedTypes: true} }
