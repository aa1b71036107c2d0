package cli_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/paddockhq/paddock/cli"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/proto"
)

// nextEvent returns the next event that want accepts. The timeout guards
// against a hang only.
func nextEvent(t *testing.T, be cli.Backend, want func(cli.Event) bool) cli.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		ev, err := be.NextEvent(ctx)
		if err != nil {
			t.Fatalf("no matching event: %v", err)
		}
		if want(ev) {
			return ev
		}
	}
}

// TestSessionReconnect restarts the server under a session: the shell's
// backend reconnects, resumes the session (its ephemeral node survives),
// replays its auth and its watches, and a change after the restart fires
// the watch set before it. Calls made while it reconnects wait for the
// connection, as zkCli's do.
func TestSessionReconnect(t *testing.T) {
	pd := testserver.Start(t, testserver.CompatOptions())
	be, err := cli.Dial(cli.DialOptions{Servers: pd.Addr + "/chroot", SessionTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := cli.Dial(cli.DialOptions{Servers: pd.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Create(ctx, "/chroot", nil, proto.OpenACLUnsafe, proto.ModePersistent, 0); err != nil {
		t.Fatal(err)
	}
	root.Close()

	if err := be.AddAuth(ctx, "digest", []byte("bob:pw")); err != nil {
		t.Fatal(err)
	}
	// Paths are relative to the chroot.
	if p, err := be.Create(ctx, "/eph", []byte("e"), proto.OpenACLUnsafe, proto.ModeEphemeral, 0); err != nil || p != "/eph" {
		t.Fatalf("create: %q %v", p, err)
	}
	if _, err := be.Create(ctx, "/w", []byte("0"), proto.CreatorAllACL, proto.ModePersistent, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := be.Get(ctx, "/w", true); err != nil {
		t.Fatal(err)
	}
	sid := be.SessionID()

	if ev := nextEvent(t, be, func(cli.Event) bool { return true }); ev.State != cli.KeeperSyncConnected || ev.Path != "" {
		t.Fatalf("first event %v, want the connection", ev)
	}
	if err := pd.Restart(); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, be, func(e cli.Event) bool { return e.State == cli.KeeperDisconnected })
	// A call while the client reconnects waits for the connection.
	if st, err := be.Exists(ctx, "/eph", false); err != nil || st == nil {
		t.Fatalf("exists while reconnecting: %v %v", st, err)
	}
	nextEvent(t, be, func(e cli.Event) bool { return e.State == cli.KeeperSyncConnected && e.Path == "" })
	if be.SessionID() != sid {
		t.Fatalf("session %x after reconnect, want %x", be.SessionID(), sid)
	}
	// The auth was replayed: /w is only for bob.
	if _, err := be.Set(ctx, "/w", []byte("1"), -1); err != nil {
		t.Fatalf("set after reconnect: %v", err)
	}
	ev := nextEvent(t, be, func(e cli.Event) bool { return e.Path != "" })
	if ev.Type != proto.EventNodeDataChanged || ev.Path != "/w" {
		t.Fatalf("event %v, want NodeDataChanged /w", ev)
	}
	infos, err := be.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ci := range infos {
		found = found || (ci.AuthScheme == "digest" && ci.User == "bob")
	}
	if !found {
		t.Errorf("whoami after reconnect: %+v", infos)
	}
	eph, err := be.GetEphemerals(ctx, "/")
	if err != nil || len(eph) != 1 || eph[0] != "/eph" {
		t.Errorf("getEphemerals: %q %v", eph, err)
	}
}

// TestSessionClose: after Close the stream ends with the Closed event,
// then io.EOF; calls fail as connection loss.
func TestSessionClose(t *testing.T) {
	pd := testserver.Start(t, testserver.CompatOptions())
	be, err := cli.Dial(cli.DialOptions{Servers: pd.Addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := be.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	be.Close()
	var got []string
	for {
		ev, err := be.NextEvent(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.String())
	}
	want := []string{"WatchedEvent state:SyncConnected type:None path:null", "WatchedEvent state:Closed type:None path:null"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if be.State() != cli.StateClosed {
		t.Fatalf("state %v after Close", be.State())
	}
	if _, _, err := be.Get(ctx, "/", false); !errors.Is(err, proto.ErrConnectionLoss) {
		t.Fatalf("get after close: %v", err)
	}
}
