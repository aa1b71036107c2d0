package cli_test

import (
	"context"
	"testing"
	"time"

	"github.com/paddockhq/paddock/cli"
	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/proto"
)

func nextEvent(t *testing.T, be cli.Backend, want func(cli.Event) bool) cli.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-be.Events():
			if !ok {
				t.Fatal("events closed")
			}
			if want(ev) {
				return ev
			}
		case <-timeout:
			t.Fatal("no matching event")
		}
	}
}

// TestWireReconnect restarts the server under a session: the Wire backend
// reconnects, resumes the session (its ephemeral node survives), replays
// its auth and its watches, and a change after the restart fires the watch
// set before it.
func TestWireReconnect(t *testing.T) {
	pd := testserver.Start(t, testserver.CompatOptions())
	be, err := cli.DialWire(cli.WireOptions{Servers: pd.Addr + "/chroot", SessionTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := cli.DialWire(cli.WireOptions{Servers: pd.Addr})
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

	if err := pd.Restart(); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, be, func(e cli.Event) bool { return e.State == cli.KeeperDisconnected })
	nextEvent(t, be, func(e cli.Event) bool { return e.State == cli.KeeperSyncConnected && e.Path == "" })
	if be.SessionID() != sid {
		t.Fatalf("session %x after reconnect, want %x", be.SessionID(), sid)
	}
	if st, err := be.Exists(ctx, "/eph", false); err != nil || st == nil {
		t.Fatalf("ephemeral gone after reconnect: %v %v", st, err)
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
