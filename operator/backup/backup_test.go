package backup_test

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paddockhq/paddock/client"
	"github.com/paddockhq/paddock/internal/testpki"
	"github.com/paddockhq/paddock/operator/backup"
	"github.com/paddockhq/paddock/server"
)

func start(t *testing.T, dir, digest string, mods ...func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Config{
		ServerID: 1, ListenAddr: "127.0.0.1:0", DataDir: dir,
		SuperDigest: digest, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	cfg.AdminAddr = "127.0.0.1:0"
	for _, m := range mods {
		m(&cfg)
	}
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

func connect(t *testing.T, srv *server.Server) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := client.Connect(ctx, []string{srv.Addr().String()}, client.WithSessionTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	acl := client.DigestACL(client.PermAll, "alice", "pw")
	for _, n := range []struct {
		path string
		data string
		acl  []client.ACL
	}{{"/app", "a", client.WorldACL(client.PermAll)}, {"/app/config", "v1", client.WorldACL(client.PermAll)}, {"/secret", "s", acl}} {
		if _, _, err := conn.Create(ctx, n.path, []byte(n.data), client.ModePersistent, n.acl); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Set(ctx, "/app/config", []byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.Create(ctx, "/app/eph", nil, client.ModeEphemeral, nil); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "b", "snap.jsonl")
	admin := src.AdminAddr().String()
	if _, err := backup.Take(context.Background(), admin, "wrong", out, nil); err == nil {
		t.Fatal("snapshot with a wrong password was served")
	}
	res, err := backup.Take(context.Background(), admin, "s3cret", out, nil)
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
	data, st, err := c2.Get(ctx, "/app/config")
	if err != nil || string(data) != "v2" || st.Version != 1 {
		t.Fatalf("restored /app/config = %q %+v %v", data, st, err)
	}
	if ok, _, _ := c2.Exists(ctx, "/app/eph"); ok {
		t.Error("an ephemeral of the old cluster was restored")
	}
	if _, _, err := c2.Get(ctx, "/secret"); !errors.Is(err, client.ErrNoAuth) {
		t.Errorf("ACL not restored: %v", err)
	}
	// New writes continue after the restored zxids.
	_, s3, err := c2.Create(ctx, "/after", nil, client.ModePersistent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s3.Czxid <= st.Mzxid {
		t.Errorf("new zxid %x not after restored %x", s3.Czxid, st.Mzxid)
	}
}

// TestRemove: pruning deletes the snapshot, its .zxid and a leftover
// .partial, and a second run (the Job retried) is no error.
func TestRemove(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "zk", "b.jsonl")
	os.MkdirAll(filepath.Dir(file), 0o755)
	other := filepath.Join(dir, "zk", "other.jsonl")
	for _, f := range []string{file, file + ".zxid", file + ".partial", other} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if err := backup.Remove(file); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	for _, f := range []string{file, file + ".zxid", file + ".partial"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", f, err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another backup's file went: %v", err)
	}
}

// TestTakeHTTPS: against an admin port serving HTTPS with client
// certificates required (what the operator configures from
// spec.tls.admin), a snapshot is taken trusting the CA and presenting a
// certificate; without TLS, with another CA or without a certificate it
// is refused.
func TestTakeHTTPS(t *testing.T) {
	sum := sha1.Sum([]byte("super:s3cret"))
	ca := testpki.New(t)
	leaf := ca.Issue(t, "admin", testpki.Server)
	src := start(t, t.TempDir(), "super:"+base64.StdEncoding.EncodeToString(sum[:]), func(c *server.Config) {
		c.AdminTLSCertFile, c.AdminTLSKeyFile, c.AdminTLSCAFile, c.AdminTLSClientAuth = leaf.Cert, leaf.Key, ca.File, server.ClientAuthNeed
	})
	admin := src.AdminAddr().String()
	out := filepath.Join(t.TempDir(), "snap.jsonl")
	other := testpki.New(t)
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"plain HTTP", nil, false},
		{"another CA", other.ClientConfig("localhost", leaf), false},
		{"no client certificate", ca.ClientConfig("localhost", nil), false},
		{"CA and certificate", ca.ClientConfig("localhost", leaf), true},
	} {
		res, err := backup.Take(context.Background(), admin, "s3cret", out, tc.tls)
		if tc.ok && (err != nil || res.Nodes < 2) {
			t.Errorf("%s: %+v %v", tc.name, res, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%s: snapshot served", tc.name)
		}
	}
}
