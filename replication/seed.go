package replication

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// SeedConfig describes the starting point written by Seed.
type SeedConfig struct {
	// Index is the raft index the state corresponds to (>= 1): the node
	// will continue the log at Index+1. Paddock uses the zxid as the index,
	// so an import seeds at the zxid it reached.
	Index uint64
	// Term is the term of the entry at Index (default 1).
	Term uint64
	// Voters are the members of the group (default {1}, a standalone
	// server with the default id).
	Voters []uint64
}

// Seed initialises an empty data directory with a snapshot of a state
// built elsewhere (an import), as if a log up to Index had been applied and
// compacted: Dir/snap gets the snapshot, Dir/wal a first segment holding
// only the HardState (term, commit = Index). Open then restores the
// snapshot and carries on from Index+1. write is the state's
// StateMachine.Snapshot. Seed refuses a directory that already holds a
// snapshot or WAL segment.
func Seed(dir string, cfg SeedConfig, write func(io.Writer) error) error {
	if cfg.Index == 0 {
		return errors.New("replication: seed: Index must be >= 1")
	}
	if cfg.Term == 0 {
		cfg.Term = 1
	}
	if len(cfg.Voters) == 0 {
		cfg.Voters = []uint64{1}
	}
	walDir, snapDir := filepath.Join(dir, "wal"), filepath.Join(dir, "snap")
	for _, d := range []string{walDir, snapDir} {
		if des, err := os.ReadDir(d); err == nil && len(des) > 0 {
			return fmt.Errorf("replication: seed: %s is not empty", d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	meta := snapMeta{Index: cfg.Index, Term: cfg.Term, ConfState: &raftpb.ConfState{Voters: cfg.Voters}}
	store := &snapStore{dir: snapDir, log: log}
	if _, err := store.save(meta, write, false); err != nil {
		return fmt.Errorf("replication: seed: %w", err)
	}
	w := &wal{
		dir: walDir, log: log, segSize: defaultSegmentSize, lastIndex: cfg.Index,
		hs: &raftpb.HardState{Term: proto.Uint64(cfg.Term), Commit: proto.Uint64(cfg.Index)},
	}
	if err := w.createSegment(0, cfg.Index+1); err != nil {
		return fmt.Errorf("replication: seed: %w", err)
	}
	if err := w.saveSnapshotMarker(cfg.Index, cfg.Term, false); err != nil {
		w.close()
		return fmt.Errorf("replication: seed: %w", err)
	}
	if err := w.close(); err != nil {
		return fmt.Errorf("replication: seed: %w", err)
	}
	return syncDir(dir)
}
