package replication

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// removeStep is how much of a file removeGently frees at a time.
const removeStep = 64 << 20

// removeGently deletes files the node no longer needs (snapshots older
// than the two newest, WAL segments they cover). It runs off the run
// loop: unlinking a GiB-sized snapshot takes the calling thread most of a
// second on ext4, and frees all its extents in one journal transaction,
// during which the WAL's fsyncs wait. So a large file is shrunk from its
// end a step at a time, with a short breath between steps, before it is
// unlinked (as RocksDB's delete scheduler does for SSDs mounted with
// discard). A file already gone is not an error: nothing needs it, and a
// later purge may list a file an earlier one is still removing.
func removeGently(paths []string, log *slog.Logger) {
	for _, p := range paths {
		if err := removeFile(p); err != nil {
			log.Warn("replication: remove file no longer needed", "file", p, "err", err)
		}
	}
}

func removeFile(path string) error {
	if st, err := os.Stat(path); err == nil && st.Size() > removeStep {
		for size := st.Size() - removeStep; size > 0; size -= removeStep {
			if err := os.Truncate(path, size); err != nil {
				break // the unlink below still frees it, all at once
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
