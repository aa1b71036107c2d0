//go:build linux

package replication

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdatasync flushes file data and the metadata needed to read it back
// (including the size), skipping timestamps: cheaper than fsync for an
// append-only log.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// writeBehindChunk is how much of a snapshot may be dirty in the page
// cache at once (two chunks: the one being written out, and the next).
const writeBehindChunk = 8 << 20

// writeBehind writes a file that is written in one go (a snapshot) and
// makes the kernel write its pages out as it grows, a chunk at a time,
// instead of all at the final fsync. Left to the final fsync, the pages of
// a multi-GiB snapshot (below the kernel's dirty thresholds, so nothing
// writes them earlier) go to the disk in one burst, and every WAL fsync
// queued behind it waits seconds: the apply path stalls although the
// snapshot is written off it. After each chunk, its write-out is started
// and the previous chunk's is waited for, so the snapshot writer is paced
// by the disk and a WAL fsync waits for at most two chunks. The calls are
// advisory: the final fsync is what makes the file durable, so their
// errors are ignored.
type writeBehind struct {
	f               *os.File
	off             int64 // bytes written so far (the file's size)
	started, waited int64 // write-out started below started, finished below waited
}

func newWriteBehind(f *os.File, off int64) *writeBehind {
	return &writeBehind{f: f, off: off, started: off, waited: off}
}

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writeBehindChunk {
		fd := int(w.f.Fd())
		_ = unix.SyncFileRange(fd, w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE)
		if w.started > w.waited {
			_ = unix.SyncFileRange(fd, w.waited, w.started-w.waited,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
			w.waited = w.started
		}
		w.started = w.off
	}
	return n, err
}
