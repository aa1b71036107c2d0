//go:build linux

package replication

import (
	"os"
	"syscall"
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
