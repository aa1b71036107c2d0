package replication

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"go.etcd.io/raft/v3/raftpb"
)

// LoadReadOnly recovers the state stored in a data directory into sm
// without writing anything: the newest valid snapshot, then every committed
// entry of the WAL after it, applied in order. A torn tail of the last
// segment is ignored (not truncated). It is meant for offline tools
// (exports, inspections) on a directory no node has open; it returns the
// index of the last entry applied.
func LoadReadOnly(dir string, sm StateMachine) (uint64, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var snapIndex uint64
	snapDir := filepath.Join(dir, "snap")
	des, err := os.ReadDir(snapDir)
	if err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	var snaps []snapFile
	for _, de := range des {
		if term, index, ok := parseSnapName(de.Name()); ok {
			snaps = append(snaps, snapFile{term: term, index: index, path: filepath.Join(snapDir, de.Name())})
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].index > snaps[j].index })
	for _, sf := range snaps {
		f, err := os.Open(sf.path)
		if err != nil {
			return 0, err
		}
		var body bytes.Buffer
		h, err := readSnapshot(bufio.NewReaderSize(f, 1<<20), &body)
		f.Close()
		if err != nil || h.meta.Index != sf.index {
			continue // an older snapshot may still be good
		}
		if err := sm.Restore(&body); err != nil {
			return 0, fmt.Errorf("replication: restore %s: %w", sf.path, err)
		}
		snapIndex = h.meta.Index
		break
	}

	walDir := filepath.Join(dir, "wal")
	des, err = os.ReadDir(walDir)
	if err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	var segs []segment
	for _, de := range des {
		if seq, first, ok := parseSegmentName(de.Name()); ok {
			segs = append(segs, segment{seq: seq, first: first, path: filepath.Join(walDir, de.Name())})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	rp := &walReplay{}
	for i, seg := range segs {
		data, err := os.ReadFile(seg.path)
		if err != nil {
			return 0, err
		}
		if _, err := rp.replaySegment(seg, data, snapIndex, i == len(segs)-1, log); err != nil {
			return 0, err
		}
	}
	commit := snapIndex
	if rp.hardState != nil && rp.hardState.GetCommit() > commit {
		commit = rp.hardState.GetCommit()
	}
	applied := snapIndex
	for _, e := range rp.entries {
		if e.GetIndex() > commit {
			break
		}
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			sm.Apply(e.GetIndex(), e.GetTerm(), e.GetData())
		}
		applied = e.GetIndex()
	}
	return applied, nil
}
