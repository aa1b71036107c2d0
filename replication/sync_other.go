//go:build !linux

package replication

import "os"

// fdatasync falls back to a full fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// writeBehind passes writes through: the pacing of snapshot write-out
// (sync_linux.go) uses a Linux call.
type writeBehind struct{ f *os.File }

func newWriteBehind(f *os.File, off int64) *writeBehind { return &writeBehind{f: f} }

func (w *writeBehind) Write(p []byte) (int, error) { return w.f.Write(p) }
