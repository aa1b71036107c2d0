// Package backup takes and restores PaddockBackup snapshots: the tree of
// a running member at one zxid (GET /paddock/v1/snapshot on its admin
// endpoint, `paddock export` JSON lines) written to a file, and a new
// member's data directory seeded from such a file (the way `paddock import`
// seeds one from Apache ZooKeeper's files).
package backup

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/paddockhq/paddock/proto"
	"github.com/paddockhq/paddock/replication"
	"github.com/paddockhq/paddock/statemachine"
	"github.com/paddockhq/paddock/zkdata"
)

// Result describes a snapshot taken or restored.
type Result struct {
	Zxid  string
	Nodes int
	Bytes int64
}

// Take downloads a consistent snapshot from a member's admin endpoint
// (adminAddr = host:port) as the super user and writes it to out,
// atomically (a temporary file renamed into place once complete). With
// tlsConf the admin endpoint is reached over HTTPS (an admin port with
// --admin-tls-cert).
func Take(ctx context.Context, adminAddr, password, out string, tlsConf *tls.Config) (Result, error) {
	scheme, hc := "http://", http.DefaultClient
	if tlsConf != nil {
		scheme = "https://"
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, Proxy: http.ProxyFromEnvironment}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+adminAddr+"/paddock/v1/snapshot", nil)
	if err != nil {
		return Result{}, err
	}
	req.SetBasicAuth("super", password)
	resp, err := hc.Do(req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return Result{}, fmt.Errorf("snapshot from %s: %s: %s", adminAddr, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return Result{}, err
	}
	tmp := out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return Result{}, err
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return Result{}, err
	}
	// Check what was written parses before it becomes the backup.
	nodes, _, err := readRecords(tmp, func(zkdata.ExportRecord) error { return nil })
	if err != nil {
		os.Remove(tmp)
		return Result{}, fmt.Errorf("snapshot from %s is damaged: %w", adminAddr, err)
	}
	zxid := resp.Header.Get("X-Paddock-Zxid")
	if err := os.WriteFile(out+".zxid", []byte(zxid+"\n"), 0o644); err != nil {
		return Result{}, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return Result{}, err
	}
	return Result{Zxid: zxid, Nodes: nodes, Bytes: n}, nil
}

// readRecords reads JSON lines, calling f for each; it returns the count
// and the highest zxid any stat mentions.
func readRecords(path string, f func(zkdata.ExportRecord) error) (int, int64, error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	var top int64
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec zkdata.ExportRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return n, top, fmt.Errorf("line %d: %w", n+1, err)
		}
		if rec.Error != "" {
			return n, top, fmt.Errorf("line %d: %s was not readable when the backup was taken: %s", n+1, rec.Path, rec.Error)
		}
		top = max(top, rec.Stat.Czxid, rec.Stat.Mzxid, rec.Stat.Pzxid)
		if err := f(rec); err != nil {
			return n, top, err
		}
		n++
	}
	return n, top, sc.Err()
}

// Seed writes a new member's data directory from a snapshot file: every
// persistent node with its data, ACL and stat (ephemerals belonged to
// sessions of the old cluster and are left out; /zookeeper/config is left
// empty so the new ensemble writes its own), seeded at the snapshot's zxid
// with voters as the raft group. A directory already holding a log is
// left alone (the seeding Job may run twice).
func Seed(from, dataDir string, voters []uint64) (Result, error) {
	if has, err := hasLog(dataDir); err != nil {
		return Result{}, err
	} else if has {
		return Result{}, ErrAlreadySeeded
	}
	l := statemachine.NewLoader(statemachine.Options{ExtendedTypes: true})
	var top int64
	nodes, top, err := readRecords(from, func(rec zkdata.ExportRecord) error {
		if rec.Path == proto.ConfigPath || rec.Stat.EphemeralOwner != 0 {
			return nil
		}
		acl := make([]proto.ACL, len(rec.ACL))
		for i, a := range rec.ACL {
			acl[i] = proto.ACL{Perms: a.Perms, Id: proto.Id{Scheme: a.Scheme, Id: a.ID}}
		}
		st := proto.StatPersisted{
			Czxid: rec.Stat.Czxid, Mzxid: rec.Stat.Mzxid, Pzxid: rec.Stat.Pzxid,
			Ctime: rec.Stat.Ctime, Mtime: rec.Stat.Mtime,
			Version: rec.Stat.Version, Cversion: rec.Stat.Cversion, Aversion: rec.Stat.Aversion,
		}
		return l.LoadNode(rec.Path, rec.Data, acl, st)
	})
	if err != nil {
		return Result{}, fmt.Errorf("backup %s: %w", from, err)
	}
	if b, err := os.ReadFile(from + ".zxid"); err == nil {
		var z int64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "0x%x", &z); err == nil && z > top {
			top = z
		}
	}
	if top < 1 {
		top = 1
	}
	st, err := l.Finish(top)
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return Result{}, err
	}
	if err := replication.Seed(dataDir, replication.SeedConfig{Index: uint64(top), Voters: voters}, st.Snapshot); err != nil {
		return Result{}, err
	}
	return Result{Zxid: fmt.Sprintf("0x%x", top), Nodes: nodes}, nil
}

// Remove deletes a snapshot file written by Take, with its .zxid and any
// .partial left by an interrupted Take. Files already gone are no error:
// the pruning Job may run twice.
func Remove(file string) error {
	for _, f := range []string{file, file + ".zxid", file + ".partial"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// ErrAlreadySeeded: the data directory already holds a log.
var ErrAlreadySeeded = errors.New("the data directory already holds a log; left alone")

func hasLog(dir string) (bool, error) {
	for _, sub := range []string{"wal", "snap"} {
		des, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		if len(des) > 0 {
			return true, nil
		}
	}
	return false, nil
}
