package etcdapi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/paddockhq/paddock/server"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type testEnv struct {
	srv *server.Server
	api *API
	cli *clientv3.Client
	url string
}

// startPaddock runs an in-process standalone server with the etcd API and
// returns a client of it.
func startPaddock(t testing.TB, cfg Config) *testEnv {
	t.Helper()
	srv, err := server.New(server.Config{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), TickTime: 100 * time.Millisecond, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Serve(ctx)
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	api := New(srv, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go api.Serve(ln)
	url := "http://" + ln.Addr().String()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.Close()
		api.Close()
		cancel()
		srv.Close()
	})
	// Wait for the one-voter group to elect itself.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Raft().Leader == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &testEnv{srv: srv, api: api, cli: cli, url: url}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
