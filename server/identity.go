package server

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// identityFile is the name of the identity stamp in a data directory.
const identityFile = "identity"

// identity is a data directory's stamp: which cluster and which member it
// belongs to, and the incarnation (epoch) of that member's data. It is
// written when the directory is first used and checked at every start, so
// a member started on another cluster's or another member's data directory
// refuses to start instead of corrupting either (the classic way a
// Kubernetes ZooKeeper loses data: a volume mounted on the wrong pod).
type identity struct {
	ClusterID string
	ServerID  uint64
	// Epoch is a random id chosen when the directory was initialised
	// (bootstrap or join). A member whose data is wiped and rebuilt gets a
	// new one.
	Epoch string
	// PendingAdmission: the directory was started empty and the member has
	// not been admitted into raft yet (admission.go), so a restart must
	// check again even though the log files now exist.
	PendingAdmission bool
}

// readIdentity reads dir's stamp; ok is false if there is none.
func readIdentity(dir string) (id identity, ok bool, err error) {
	f, err := os.Open(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return id, false, nil
	}
	if err != nil {
		return id, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "cluster-id":
			id.ClusterID = v
		case "server-id":
			if id.ServerID, err = strconv.ParseUint(v, 10, 64); err != nil {
				return id, false, fmt.Errorf("%s: bad server-id %q", f.Name(), v)
			}
		case "epoch":
			id.Epoch = v
		case "pending-admission":
			id.PendingAdmission = v == "true"
		}
	}
	if err := sc.Err(); err != nil {
		return id, false, err
	}
	return id, true, nil
}

// writeIdentity writes dir's stamp atomically (temp file, fsync, rename).
func writeIdentity(dir string, id identity) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	body := fmt.Sprintf("# Paddock data directory identity; written once, checked at every start. Do not edit.\ncluster-id=%s\nserver-id=%d\nepoch=%s\n",
		id.ClusterID, id.ServerID, id.Epoch)
	if id.PendingAdmission {
		body += "pending-admission=true\n"
	}
	tmp := filepath.Join(dir, identityFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, identityFile)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func newEpoch() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// checkIdentity refuses a data directory stamped for another cluster or
// another server id.
func checkIdentity(dir, clusterID string, serverID uint64) error {
	id, ok, err := readIdentity(dir)
	if err != nil {
		return fmt.Errorf("server: reading identity stamp: %w", err)
	}
	if !ok {
		return nil
	}
	if id.ClusterID != clusterID || id.ServerID != serverID {
		return fmt.Errorf("server: refusing to start: data directory %s belongs to server %d of cluster %q (epoch %s), "+
			"but this server was started as server %d of cluster %q; point --data-dir at this member's own directory "+
			"(or, to make this a new member, empty it and start with --join after adding it with reconfig)",
			dir, id.ServerID, id.ClusterID, id.Epoch, serverID, clusterID)
	}
	return nil
}

// dataDirFresh reports whether dir holds no log and no snapshot yet.
func dataDirFresh(dir string) (bool, error) {
	for _, sub := range []string{"wal", "snap"} {
		des, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		for _, de := range des {
			if strings.HasSuffix(de.Name(), ".wal") || strings.HasSuffix(de.Name(), ".snap") {
				return false, nil
			}
		}
	}
	return true, nil
}

// StampedClusterID returns the cluster id stamped in a data directory, if
// any; configurations without a cluster id of their own (zoo.cfg) keep
// using it.
func StampedClusterID(dir string) (string, bool) {
	id, ok, err := readIdentity(dir)
	if err != nil || !ok || id.ClusterID == "" {
		return "", false
	}
	return id.ClusterID, true
}
