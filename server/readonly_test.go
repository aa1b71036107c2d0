package server

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/proto"
)

// partition cuts member id off from every other member (both directions:
// a blocked transport neither sends to nor accepts from those peers).
func (e *testEnsemble) partition(id uint64) {
	var others []uint64
	for o := range e.members {
		if o != id {
			others = append(others, o)
		}
	}
	e.server(id).ens.transport.Block(others...)
}

func (e *testEnsemble) heal(id uint64) {
	var others []uint64
	for o := range e.members {
		if o != id {
			others = append(others, o)
		}
	}
	e.server(id).ens.transport.Unblock(others...)
}

// newRawRO opens a connection and sends a ConnectRequest allowing a
// read-only session.
func newRawRO(t *testing.T, addr string, req proto.ConnectRequest) (*rawClient, proto.ConnectResponse) {
	t.Helper()
	c := &rawClient{t: t, nc: dial(t, addr)}
	c.r = bufio.NewReader(c.nc)
	resp := c.connect(req)
	return c, resp
}

func TestReadOnlyMode(t *testing.T) {
	e := newTestEnsemble(t, 3, 0, func(c *Config) { c.ReadOnlyMode = true })
	lead := e.leader()
	e.waitConfig()
	c, _ := connectAll(t, e.addrs(), 10*time.Second)
	retry(t, "create /ro-data", func() error {
		_, err := c.Create("/ro-data", []byte("v1"), 0, zk.WorldACL(zk.PermAll))
		if err == zk.ErrNodeExists {
			return nil
		}
		return err
	})
	// Member f, a follower, has the node.
	f := e.followers(lead)[0]
	fs, faddr := e.server(f), e.addr(f)
	waitFor(t, "member f to apply /ro-data", func() bool {
		fs.mu.RLock()
		defer fs.mu.RUnlock()
		ok, _, _ := fs.state.NodeState("/ro-data")
		return ok
	})
	if got := fourLetter(t, faddr, "isro"); got != "rw" {
		t.Fatalf("isro before the partition: %q", got)
	}
	// A session established on f before the partition.
	cf, _ := connectAll(t, []string{faddr}, 10*time.Second)
	globalID := cf.SessionID()

	e.partition(f)
	waitFor(t, "member f to turn read-only", func() bool { return fourLetter(t, faddr, "isro") == "ro" })
	// Its established connection was closed, and the (not read-only)
	// client cannot get its session back there.
	waitFor(t, "the established session on f to be disconnected", func() bool { return cf.State() != zk.StateHasSession })
	time.Sleep(300 * time.Millisecond)
	if cf.State() == zk.StateHasSession {
		t.Fatal("a not-read-only client got a session on a read-only member")
	}

	// Four-letter words say so.
	srvr := fourLetter(t, faddr, "srvr")
	if !strings.Contains(srvr, "Mode: read-only\n") || !strings.Contains(srvr, "READ-ONLY mode; serving only read-only clients\n") {
		t.Errorf("srvr on a read-only member:\n%s", srvr)
	}
	if mntr := fourLetter(t, faddr, "mntr"); !strings.Contains(mntr, "zk_server_state\tread-only\n") {
		t.Errorf("mntr on a read-only member:\n%s", mntr)
	}

	// A read-only client: a local session, reads served, writes refused.
	ro, resp := newRawRO(t, faddr, proto.ConnectRequest{TimeOut: 10000, ReadOnly: true, Passwd: make([]byte, 16)})
	if !resp.ReadOnly || resp.SessionId == 0 || resp.TimeOut <= 0 {
		t.Fatalf("read-only connect response: %+v", resp)
	}
	var gd proto.GetDataResponse
	if err := ro.call(proto.OpGetData, &proto.GetDataRequest{Path: "/ro-data"}, &gd); err != proto.ErrOK || string(gd.Data) != "v1" {
		t.Fatalf("read on a read-only member: %v %q", err, gd.Data)
	}
	if _, err := ro.create("/ro-new", nil, 0); err != proto.ErrNotReadOnly {
		t.Fatalf("create on a read-only member: %v", err)
	}
	if err := ro.call(proto.OpSetData, &proto.SetDataRequest{Path: "/ro-data", Data: []byte("x"), Version: -1}, nil); err != proto.ErrNotReadOnly {
		t.Fatalf("setData on a read-only member: %v", err)
	}
	if err := ro.call(proto.OpSync, &proto.SyncRequest{Path: "/"}, nil); err != proto.ErrNotReadOnly {
		t.Fatalf("sync on a read-only member: %v", err)
	}
	if err := ro.call(proto.OpExists, &proto.ExistsRequest{Path: "/ro-data"}, &proto.ExistsResponse{}); err != proto.ErrOK {
		t.Fatalf("exists after refused writes: %v", err)
	}
	if mntr := fourLetter(t, faddr, "mntr"); !strings.Contains(mntr, "zk_local_sessions\t1\n") {
		t.Errorf("mntr local sessions:\n%s", mntr)
	}

	// A client that does not allow read-only is closed
	// (NOT_READ_ONLY_CLIENT); so is a read-only client renewing a session
	// of the log (RENEW_GLOBAL_SESSION_IN_RO_MODE).
	plain := dial(t, faddr)
	writeFrame(t, plain, proto.Marshal(&proto.ConnectRequest{TimeOut: 10000, Passwd: make([]byte, 16)}))
	expectClosed(t, plain)
	renew := dial(t, faddr)
	writeFrame(t, renew, proto.Marshal(&proto.ConnectRequest{TimeOut: 10000, SessionId: globalID, Passwd: make([]byte, 16), ReadOnly: true}))
	expectClosed(t, renew)

	// Kazoo's read_only=True client.
	if exec.Command(python, "-c", "import kazoo").Run() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, python, "testdata/kazoo_readonly.py", faddr, "/ro-data", "v1").CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "ok") {
			t.Errorf("kazoo read-only client: %v\n%s", err, out)
		}
	} else {
		t.Log("python3-kazoo not available: Kazoo read-only scenario skipped")
	}

	// The majority side goes on.
	var majority []string
	for id := range e.members {
		if id != f {
			majority = append(majority, e.addr(id))
		}
	}
	cm, _ := connectAll(t, majority, 10*time.Second)
	retry(t, "write on the majority side", func() error {
		_, err := cm.Set("/ro-data", []byte("v2"), -1)
		return err
	})

	// Healed: f leaves read-only mode and closes its read-only connections.
	e.heal(f)
	waitFor(t, "member f back to read-write", func() bool { return fourLetter(t, faddr, "isro") == "rw" })
	ro.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := readFrame(ro.r); err != nil {
			if isTimeout(err) {
				t.Fatal("read-only connection not closed after the quorum came back")
			}
			break
		}
	}
	// go-zookeeper's client gets its session back on f.
	waitFor(t, "the session on f to reconnect", func() bool { return cf.State() == zk.StateHasSession })
	retry(t, "read the majority's write on f", func() error {
		if _, err := cf.Sync("/ro-data"); err != nil {
			return err
		}
		d, _, err := cf.Get("/ro-data")
		if err == nil && string(d) != "v2" {
			t.Fatalf("after heal f reads %q", d)
		}
		return err
	})
	if _, err := cf.Create("/after-heal", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
}

// Without read-only mode a member that lost the quorum closes its
// sessions' connections and refuses new clients, so they move to a
// member that has one.
func TestLostQuorumClosesConnections(t *testing.T) {
	e := newTestEnsemble(t, 3, 0, nil)
	lead := e.leader()
	e.waitConfig()
	f := e.followers(lead)[0]
	faddr := e.addr(f)
	cf, _ := connectAll(t, []string{faddr}, 10*time.Second)
	e.partition(f)
	waitFor(t, "the session on f to be disconnected", func() bool { return cf.State() != zk.StateHasSession })
	waitFor(t, "member f to see the quorum lost", func() bool { return e.server(f).ro.lost.Load() })
	if got := fourLetter(t, faddr, "isro"); got != "rw" {
		t.Errorf("isro without read-only mode: %q", got)
	}
	nc := dial(t, faddr)
	writeFrame(t, nc, proto.Marshal(&proto.ConnectRequest{TimeOut: 10000, Passwd: make([]byte, 16), ReadOnly: true}))
	expectClosed(t, nc)
	e.heal(f)
	waitFor(t, "the session on f to come back", func() bool { return cf.State() == zk.StateHasSession })
	if _, err := cf.Create("/back", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
}
