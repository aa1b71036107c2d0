package zkdata

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// RestoreOptions configures [Restore].
type RestoreOptions struct {
	// SnapDir is ZooKeeper's dataDir, or its version-2 directory.
	SnapDir string
	// LogDir is dataLogDir (or its version-2); empty means SnapDir.
	LogDir string
	// AllowTornTail accepts a torn or zero-filled last record at the end
	// of the newest log file as the end of the log, as ZooKeeper itself
	// does after a crash in the middle of a write. Off by default: an
	// import then fails rather than drop anything.
	AllowTornTail bool
	// Progress, if set, is called as input is consumed with the bytes
	// read so far and the total to read (snapshot plus logs, on disk).
	Progress func(done, total int64)
	// Warn, if set, receives warnings (a snapshot skipped, a torn tail
	// accepted), one line each.
	Warn func(msg string)
}

// Result is a restored ZooKeeper database.
type Result struct {
	Tree *Tree
	// Snapshot is the snapshot the restore started from.
	Snapshot *Snapshot
	// SkippedSnapshots lists newer snapshots that failed to load, with why.
	SkippedSnapshots []error
	// Logs are the log files read, in order.
	Logs []string
	// Txns is the number of txns replayed (zxid above the snapshot's).
	Txns int
	// FilesRead counts the snapshot and log files read.
	FilesRead int
	// BytesRead is the on-disk size of those files.
	BytesRead int64
	// DeadSessions is the number of sessions whose ephemerals were dropped
	// because the session table no longer held them.
	DeadSessions int
	// Elapsed is the time the restore took.
	Elapsed time.Duration
}

// maxSnapshotsTried is how many snapshots FileSnap.deserialize tries.
const maxSnapshotsTried = 100

// versionDir returns dir/version-2 when it exists, else dir itself.
func versionDir(dir string) string {
	v := filepath.Join(dir, "version-2")
	if fi, err := os.Stat(v); err == nil && fi.IsDir() {
		return v
	}
	return dir
}

// SnapshotFile is a snapshot in a directory.
type SnapshotFile struct {
	Path        string
	Zxid        int64
	Compression Compression
}

// listSnapshots returns the snapshots of dir, newest first.
func listSnapshots(dir string) ([]SnapshotFile, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []SnapshotFile
	for _, de := range des {
		if z, c, ok := ParseSnapshotName(de.Name()); ok && de.Type().IsRegular() {
			out = append(out, SnapshotFile{Path: filepath.Join(dir, de.Name()), Zxid: z, Compression: c})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Zxid > out[j].Zxid })
	return out, nil
}

// logsFrom picks the log files to read after a snapshot at zxid
// (FileTxnLog.FileTxnIterator.init): the last file whose first txn is at or
// below zxid (it may hold txns above it), and every file after it.
func logsFrom(logs []LogFile, zxid int64) []LogFile {
	start := 0
	for i, l := range logs {
		if l.Zxid < zxid+1 {
			start = i
		}
	}
	return logs[start:]
}

// Restore reads a ZooKeeper data directory the way ZooKeeper does when it
// starts: the newest valid snapshot, then the txns logged after it. Any
// damage in what it must read is an error naming the file and offset; a
// snapshot that fails its checks is skipped for an older one, as ZooKeeper
// does.
func Restore(opts RestoreOptions) (*Result, error) {
	start := time.Now()
	warn := opts.Warn
	if warn == nil {
		warn = func(string) {}
	}
	snapDir := versionDir(opts.SnapDir)
	logDir := snapDir
	if opts.LogDir != "" {
		logDir = versionDir(opts.LogDir)
	}
	snaps, err := listSnapshots(snapDir)
	if err != nil {
		return nil, fmt.Errorf("zkdata: %w", err)
	}
	logs, err := listLogs(logDir)
	if err != nil {
		return nil, fmt.Errorf("zkdata: %w", err)
	}
	if len(snaps) == 0 {
		if len(logs) == 0 {
			return nil, fmt.Errorf("zkdata: %s holds no ZooKeeper snapshot or log (snapshot.*, log.*)", snapDir)
		}
		return nil, fmt.Errorf("zkdata: %s has txn logs but no snapshot; ZooKeeper refuses to start from such a directory too", snapDir)
	}

	res := &Result{}
	var total, done int64
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	for i, sf := range snaps {
		if i >= maxSnapshotsTried {
			break
		}
		snap, err := ReadSnapshotFile(sf.Path)
		if err != nil {
			warn(fmt.Sprintf("skipping snapshot: %v", err))
			res.SkippedSnapshots = append(res.SkippedSnapshots, err)
			continue
		}
		res.Snapshot = snap
		break
	}
	if res.Snapshot == nil {
		return nil, fmt.Errorf("zkdata: no valid snapshot in %s: %w", snapDir, errors.Join(res.SkippedSnapshots...))
	}
	snap := res.Snapshot
	toRead := logsFrom(logs, snap.Zxid)
	if fi, err := os.Stat(snap.File); err == nil {
		total += fi.Size()
		done += fi.Size()
		res.BytesRead += fi.Size()
	}
	sizes := make([]int64, len(toRead))
	for i, l := range toRead {
		if fi, err := os.Stat(l.Path); err == nil {
			sizes[i] = fi.Size()
			total += fi.Size()
		}
	}
	res.FilesRead = 1
	progress()
	tree, err := treeFromSnapshot(snap)
	if err != nil {
		return nil, err
	}
	res.Tree = tree

	for i, l := range toRead {
		lr, err := OpenLog(l.Path)
		if err != nil {
			return nil, err
		}
		lr.AllowTornTail = opts.AllowTornTail && i == len(toRead)-1
		res.Logs = append(res.Logs, l.Path)
		res.FilesRead++
		base := done
		n := 0
		for {
			txn, err := lr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				lr.Close()
				return nil, err
			}
			if txn.Header.Zxid > snap.Zxid {
				tree.Apply(txn)
				res.Txns++
			}
			if n++; n%1024 == 0 {
				done = base + lr.off
				progress()
			}
		}
		if lr.Torn {
			warn(fmt.Sprintf("%s: accepted a torn record at the end of the log (offset %d), as ZooKeeper would", l.Path, lr.off))
		}
		lr.Close()
		done = base + sizes[i]
		res.BytesRead += sizes[i]
		progress()
	}
	res.DeadSessions = tree.dropDeadSessions()
	res.Elapsed = time.Since(start)
	return res, nil
}
