package backup_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/operator/backup"
	"github.com/paddockhq/paddock/server"
)

func start(t *testing.T, dir, digest string) *server.Server {
	t.Helper()
	cfg := server.Config{
		ServerID: 1, ListenAddr: "127.0.0.1:0", DataDir: dir,
		SuperDigest: digest, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	cfg.AdminAddr = "127.0.0.1:0"
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return srv
}

func connect(t *testing.T, srv *server.Server) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{srv.Addr().String()}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

// TestTakeAndSeed: a snapshot taken over the admin endpoint seeds a new
// data directory that serves the same tree (persistent nodes, data, ACLs,
// versions), without the old cluster's ephemerals.
func TestTakeAndSeed(t *testing.T) {
	sum := sha1.Sum([]byte("super:s3cret"))
	digest := "super:" + base64.StdEncoding.EncodeToString(sum[:])
	src := start(t, t.TempDir(), digest)
	conn := connect(t, src)
	acl := zk.DigestACL(zk.PermAll, "alice", "pw")
	for _, n := range []struct {
		path string
		data string
		acl  []zk.ACL
	}{{"/app", "a", zk.WorldACL(zk.PermAll)}, {"/app/config", "v1", zk.WorldACL(zk.PermAll)}, {"/secret", "s", acl}} {
		if _, err := conn.Create(n.path, []byte(n.data), 0, n.acl); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Set("/app/config", []byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Create("/app/eph", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "b", "snap.jsonl")
	admin := src.AdminAddr().String()
	if _, err := backup.Take(context.Background(), admin, "wrong", out); err == nil {
		t.Fatal("snapshot with a wrong password was served")
	}
	res, err := backup.Take(context.Background(), admin, "s3cret", out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Nodes < 6 || res.Zxid == "" {
		t.Fatalf("result %+v", res)
	}

	dir := t.TempDir()
	if _, err := backup.Seed(out, dir, []uint64{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Seed(out, dir, []uint64{1}); !errors.Is(err, backup.ErrAlreadySeeded) {
		t.Fatalf("second seed: %v", err)
	}
	dst := start(t, dir, digest)
	c2 := connect(t, dst)
	data, st, err := c2.Get("/app/config")
	if err != nil || string(data) != "v2" || st.Version != 1 {
		t.Fatalf("restored /app/config = %q %+v %v", data, st, err)
	}
	if ok, _, _ := c2.Exists("/app/eph"); ok {
		t.Error("an ephemeral of the old cluster was restored")
	}
	if _, _, err := c2.Get("/secret"); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("ACL not restored: %v", err)
	}
	// New writes continue after the restored zxids.
	st2, err := c2.Create("/after", nil, 0, zk.WorldACL(zk.PermAll))
	_ = st2
	if err != nil {
		t.Fatal(err)
	}
	_, s3, _ := c2.Get("/after")
	if s3.Czxid <= st.Mzxid {
		t.Errorf("new zxid %x not after restored %x", s3.Czxid, st.Mzxid)
	}
}
