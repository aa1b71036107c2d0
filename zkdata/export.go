package zkdata

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/replication"
	"github.com/paddockhq/paddock/statemachine"
)

// ExportRecord is one line of `paddock export`: a node as a client sees
// it. Lines are sorted by path (byte order), so two exports diff cleanly.
type ExportRecord struct {
	Path string `json:"path"`
	// Data is the node's data (base64 in JSON); a null and an empty
	// value are both written as "".
	Data []byte      `json:"data"`
	ACL  []ExportACL `json:"acl"`
	Stat ExportStat  `json:"stat"`
	// Error is set instead of Data/ACL/Stat when a live server refused to
	// show the node (e.g. "not authorized").
	Error string `json:"error,omitempty"`
}

// ExportACL is one ACL entry.
type ExportACL struct {
	Perms  int32  `json:"perms"`
	Scheme string `json:"scheme"`
	ID     string `json:"id"`
}

// ExportStat is the Stat a client sees, every field.
type ExportStat struct {
	Czxid          int64 `json:"czxid"`
	Mzxid          int64 `json:"mzxid"`
	Pzxid          int64 `json:"pzxid"`
	Ctime          int64 `json:"ctime"`
	Mtime          int64 `json:"mtime"`
	Version        int32 `json:"version"`
	Cversion       int32 `json:"cversion"`
	Aversion       int32 `json:"aversion"`
	EphemeralOwner int64 `json:"ephemeralOwner"`
	DataLength     int32 `json:"dataLength"`
	NumChildren    int32 `json:"numChildren"`
}

func exportStat(s proto.Stat) ExportStat {
	return ExportStat{
		Czxid: s.Czxid, Mzxid: s.Mzxid, Pzxid: s.Pzxid, Ctime: s.Ctime, Mtime: s.Mtime,
		Version: s.Version, Cversion: s.Cversion, Aversion: s.Aversion,
		EphemeralOwner: s.EphemeralOwner, DataLength: s.DataLength, NumChildren: s.NumChildren,
	}
}

func exportACL(acl []proto.ACL) []ExportACL {
	out := make([]ExportACL, len(acl))
	for i, a := range acl {
		out[i] = ExportACL{Perms: a.Perms, Scheme: a.Id.Scheme, ID: a.Id.Id}
	}
	return out
}

// writeRecords writes records sorted by path, one JSON object a line.
func writeRecords(w io.Writer, recs []ExportRecord) error {
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range recs {
		if recs[i].Data == nil && recs[i].Error == "" {
			recs[i].Data = []byte{}
		}
		if err := enc.Encode(&recs[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// StateRecords returns every node of a state as export records, sorted.
func StateRecords(s *statemachine.State) []ExportRecord {
	paths := s.SortedPaths()
	recs := make([]ExportRecord, 0, len(paths))
	for _, p := range paths {
		n, _ := s.Node(p)
		recs = append(recs, ExportRecord{Path: p, Data: n.Data, ACL: exportACL(n.ACL), Stat: exportStat(n.Stat)})
	}
	return recs
}

// ExportState writes a state's tree as JSON lines.
func ExportState(w io.Writer, s *statemachine.State) error {
	return writeRecords(w, StateRecords(s))
}

// stateFSM adapts a State to replication.StateMachine for a read-only load.
type stateFSM struct{ s *statemachine.State }

func (f stateFSM) Apply(index, term uint64, data []byte) {
	e, err := statemachine.DecodeEntry(data)
	if err != nil {
		return // the server skips undecodable entries the same way
	}
	f.s.Apply(int64(index), e)
}

func (f stateFSM) Snapshot(w io.Writer) error { return f.s.Snapshot(w) }
func (f stateFSM) Restore(r io.Reader) error  { return f.s.Restore(r) }

// LoadDataDir loads the state of a Paddock data directory without writing
// to it (no server may have it open for writing meanwhile, or the result
// may lag behind).
func LoadDataDir(dir string) (*statemachine.State, error) {
	s := statemachine.New(statemachine.Options{ExtendedTypes: true})
	if _, err := replication.LoadReadOnly(dir, stateFSM{s}); err != nil {
		return nil, err
	}
	return s, nil
}

// LiveOptions configures [LiveRecords].
type LiveOptions struct {
	// Auth are "scheme:credentials" pairs added to the session (addauth),
	// e.g. "digest:admin:secret", so protected nodes can be read.
	Auth []string
	// Timeout is the session timeout (default 30s).
	Timeout time.Duration
}

// LiveRecords reads a running server's tree over the ZooKeeper protocol
// (any server: Paddock or Apache ZooKeeper). Nodes that vanish during the
// walk are left out; nodes it may not read are recorded with Error.
func LiveRecords(servers []string, opts LiveOptions) ([]ExportRecord, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	conn, events, err := zk.Connect(servers, opts.Timeout, zk.WithLogInfo(false))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.After(opts.Timeout)
	for conn.State() != zk.StateHasSession {
		select {
		case <-events:
		case <-deadline:
			return nil, fmt.Errorf("zkdata: no session with %s within %v", strings.Join(servers, ","), opts.Timeout)
		}
	}
	for _, a := range opts.Auth {
		scheme, cred, ok := strings.Cut(a, ":")
		if !ok {
			return nil, fmt.Errorf("zkdata: auth %q is not scheme:credentials", a)
		}
		if err := conn.AddAuth(scheme, []byte(cred)); err != nil {
			return nil, fmt.Errorf("zkdata: addauth %s: %w", scheme, err)
		}
	}
	var recs []ExportRecord
	queue := []string{"/"}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		data, st, err := conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			recs = append(recs, ExportRecord{Path: p, Error: err.Error()})
			continue
		}
		acl, _, err := conn.GetACL(p)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			recs = append(recs, ExportRecord{Path: p, Error: err.Error()})
			continue
		}
		rec := ExportRecord{Path: p, Data: data, Stat: liveStat(st)}
		for _, a := range acl {
			rec.ACL = append(rec.ACL, ExportACL{Perms: a.Perms, Scheme: a.Scheme, ID: a.ID})
		}
		recs = append(recs, rec)
		children, _, err := conn.Children(p)
		if err != nil {
			continue
		}
		sort.Strings(children)
		for _, c := range children {
			if p == "/" {
				queue = append(queue, "/"+c)
			} else {
				queue = append(queue, p+"/"+c)
			}
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	return recs, nil
}

func liveStat(s *zk.Stat) ExportStat {
	return ExportStat{
		Czxid: s.Czxid, Mzxid: s.Mzxid, Pzxid: s.Pzxid, Ctime: s.Ctime, Mtime: s.Mtime,
		Version: s.Version, Cversion: s.Cversion, Aversion: s.Aversion,
		EphemeralOwner: s.EphemeralOwner, DataLength: s.DataLength, NumChildren: s.NumChildren,
	}
}

// WriteRecords writes records as JSON lines, sorted by path.
func WriteRecords(w io.Writer, recs []ExportRecord) error { return writeRecords(w, recs) }
