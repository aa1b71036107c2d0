package zkdata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/replication"
	"github.com/paddockhq/paddock/statemachine"
)

// State converts a restored tree into Paddock's state: every node with its
// data, ACL and persisted stat as ZooKeeper held them (the persisted
// cversion is the same quantity in both), every live session with the
// password ZooKeeper derived for it, and the zxid reached.
func (r *Result) State(opts statemachine.Options) (*statemachine.State, error) {
	l := statemachine.NewLoader(opts)
	for _, s := range r.Tree.Sessions() {
		if err := l.LoadSession(s.ID, s.Timeout, SessionPasswd(s.ID)); err != nil {
			return nil, err
		}
	}
	err := r.Tree.Walk(func(path string, data []byte, acl []proto.ACL, stat proto.StatPersisted) error {
		return l.LoadNode(path, data, acl, stat)
	})
	if err != nil {
		return nil, err
	}
	return l.Finish(r.Tree.LastZxid)
}

// ImportOptions configures [Import].
type ImportOptions struct {
	RestoreOptions
	// To is the Paddock data directory to create. It must not exist or be
	// empty.
	To string
	// ServerID is the raft id of the server that will open the directory
	// (paddock server --server-id; default 1).
	ServerID uint64
}

// Summary reports what an import did.
type Summary struct {
	Znodes       int
	Sessions     int
	Zxid         int64
	SnapshotZxid int64
	Snapshot     string
	Txns         int
	FilesRead    int
	BytesRead    int64
	DeadSessions int
	Skipped      int
	Tolerated    map[proto.ErrCode]int
	Elapsed      time.Duration
}

// Import reads a ZooKeeper data directory and writes a Paddock data
// directory holding the same state. The directory is built under a
// temporary name next to To and renamed into place only when complete, so
// a failed import leaves nothing behind.
func Import(opts ImportOptions) (*Summary, error) {
	start := time.Now()
	if opts.To == "" {
		return nil, errors.New("zkdata: import: no target directory")
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	target, err := filepath.Abs(opts.To)
	if err != nil {
		return nil, err
	}
	if des, err := os.ReadDir(target); err == nil && len(des) > 0 {
		return nil, fmt.Errorf("zkdata: import: target %s is not empty", target)
	} else if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("zkdata: import: %w", err)
	}
	res, err := Restore(opts.RestoreOptions)
	if err != nil {
		return nil, err
	}
	st, err := res.State(statemachine.Options{ExtendedTypes: true})
	if err != nil {
		return nil, fmt.Errorf("zkdata: import: %w", err)
	}
	index := res.Tree.LastZxid
	if index < 1 {
		// An empty ZooKeeper (zxid 0): raft needs a positive index.
		index = 1
	}

	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(target)+".import-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	err = replication.Seed(tmp, replication.SeedConfig{Index: uint64(index), Voters: []uint64{opts.ServerID}}, st.Snapshot)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	// An empty target directory is replaced; a non-empty one was refused
	// above (and Rename refuses it too, should one appear meanwhile).
	if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("zkdata: import: %w", err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return nil, fmt.Errorf("zkdata: import: %w", err)
	}
	ok = true
	if d, err := os.Open(parent); err == nil {
		d.Sync()
		d.Close()
	}
	stats := st.Stats()
	return &Summary{
		Znodes:       stats.NodeCount - 1, // Stats counts the root twice, as ZooKeeper does
		Sessions:     stats.Sessions,
		Zxid:         res.Tree.LastZxid,
		SnapshotZxid: res.Snapshot.Zxid,
		Snapshot:     res.Snapshot.File,
		Txns:         res.Txns,
		FilesRead:    res.FilesRead,
		BytesRead:    res.BytesRead,
		DeadSessions: res.DeadSessions,
		Skipped:      len(res.SkippedSnapshots),
		Tolerated:    res.Tree.Tolerated,
		Elapsed:      time.Since(start),
	}, nil
}
