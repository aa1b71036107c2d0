package server

import (
	"bytes"
	"encoding/binary"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// A frame longer than jute.maxbuffer closes that connection only.
func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaxBuffer = 1024 })
	addr := s.Addr().String()
	other := newRaw(t, addr)

	bad := newRaw(t, addr)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1025)
	bad.nc.Write(hdr[:])
	expectClosed(t, bad.nc)

	// A negative length too.
	neg := newRaw(t, addr)
	neg.nc.Write([]byte{0xff, 0xff, 0xff, 0xfe})
	expectClosed(t, neg.nc)

	// Before the handshake as well.
	pre := dial(t, addr)
	binary.BigEndian.PutUint32(hdr[:], 1<<20)
	pre.Write(hdr[:])
	expectClosed(t, pre)

	if _, err := other.create("/still-alive", nil, 0); err != proto.ErrOK {
		t.Fatalf("other connection: %v", err)
	}
}

// A frame whose record is malformed closes that connection only.
func TestGarbageFrameClosesOnlyThatConnection(t *testing.T) {
	s := startServer(t, nil)
	addr := s.Addr().String()
	other := newRaw(t, addr)

	bad := newRaw(t, addr)
	// A create whose path length runs past the frame.
	writeFrame(t, bad.nc, []byte{0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0, 0, 0, 'x'})
	expectClosed(t, bad.nc)

	short := newRaw(t, addr)
	writeFrame(t, short.nc, []byte{0, 0}) // not even a header
	expectClosed(t, short.nc)

	hs := dial(t, addr)
	writeFrame(t, hs, []byte{1, 2, 3}) // not a ConnectRequest
	expectClosed(t, hs)

	var st proto.ExistsResponse
	if err := other.call(proto.OpExists, &proto.ExistsRequest{Path: "/"}, &st); err != proto.ErrOK {
		t.Fatalf("other connection: %v", err)
	}
}

// A 3.3 client sends a 44-byte ConnectRequest (no readOnly) and must get a
// 36-byte ConnectResponse; a current client sends 45 and gets 37.
func TestHandshakeLegacyAndCurrent(t *testing.T) {
	handshakeLegacy(t, startServer(t, nil).Addr().String(), true)
}

func handshakeLegacy(t *testing.T, addr string, paddock bool) {
	for _, legacy := range []bool{true, false} {
		nc := dial(t, addr)
		req := proto.ConnectRequest{TimeOut: 1500, Passwd: make([]byte, 16)}
		b := proto.Marshal(&req)
		want := 37
		if legacy {
			b = b[:len(b)-1]
			want = 36
		}
		if legacy && len(b) != 44 || !legacy && len(b) != 45 {
			t.Fatalf("request is %d bytes", len(b))
		}
		writeFrame(t, nc, b)
		resp, err := readFrame(nc)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp) != want {
			t.Fatalf("legacy=%v: response %d bytes, want %d", legacy, len(resp), want)
		}
		d := proto.NewDecoder(resp)
		if v := d.Int(); v != 0 {
			t.Fatalf("protocol version %d", v)
		}
		if to := d.Int(); to != 1500 {
			t.Fatalf("timeout %d", to)
		}
		if sid := d.Long(); paddock && sid>>56 != 1 || sid == 0 {
			t.Fatalf("session id %x does not carry server id 1", sid)
		}
		if pw := d.Buffer(); len(pw) != 16 {
			t.Fatalf("password %d bytes", len(pw))
		}
	}
}

// Timeouts are clamped to [2, 20] ticks.
func TestHandshakeTimeoutClamp(t *testing.T) {
	s := startServer(t, nil) // tick 100ms: [200, 2000]
	for req, want := range map[int32]int32{1: 200, 500: 500, 1 << 30: 2000} {
		c := &rawClient{t: t, nc: dial(t, s.Addr().String())}
		c.r = newReader(c.nc)
		if resp := c.connect(proto.ConnectRequest{TimeOut: req}); resp.TimeOut != want {
			t.Errorf("timeout %d negotiated to %d, want %d", req, resp.TimeOut, want)
		}
	}
}

// An unknown session, or a wrong password, is answered with timeout 0,
// session 0 and 16 zero bytes, then closed (the client's SessionExpired).
func TestHandshakeExpiredSession(t *testing.T) {
	handshakeExpired(t, startServer(t, nil).Addr().String())
}

func handshakeExpired(t *testing.T, addr string) {
	live := newRaw(t, addr)
	for name, req := range map[string]proto.ConnectRequest{
		"unknown":  {TimeOut: 5000, SessionId: 0x0123456789, Passwd: make([]byte, 16)},
		"bad pass": {TimeOut: 5000, SessionId: live.sid, Passwd: bytes.Repeat([]byte{7}, 16)},
	} {
		c := &rawClient{t: t, nc: dial(t, addr)}
		c.r = newReader(c.nc)
		resp := c.connect(req)
		if resp.TimeOut != 0 || resp.SessionId != 0 || !bytes.Equal(resp.Passwd, make([]byte, 16)) {
			t.Fatalf("%s: got %+v", name, resp)
		}
		expectClosed(t, c.nc)
	}
}

// A client that has seen a newer zxid than the server is refused.
func TestHandshakeClientAhead(t *testing.T) {
	s := startServer(t, nil)
	nc := dial(t, s.Addr().String())
	writeFrame(t, nc, proto.Marshal(&proto.ConnectRequest{LastZxidSeen: 1 << 40, TimeOut: 5000, Passwd: make([]byte, 16)}))
	expectClosed(t, nc)
}

func fourLetter(t *testing.T, addr, cmd string) string {
	t.Helper()
	nc := dial(t, addr)
	nc.Write([]byte(cmd))
	b, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFourLetterWords(t *testing.T) {
	s := startServer(t, nil)
	addr := s.Addr().String()
	c := newRaw(t, addr)
	c.create("/x", []byte("abc"), 0)
	var gd proto.GetDataResponse
	c.call(proto.OpGetData, &proto.GetDataRequest{Path: "/x", Watch: true}, &gd)

	s.mu.RLock()
	nodes := strconv.Itoa(s.state.Stats().NodeCount)
	s.mu.RUnlock()
	if got := fourLetter(t, addr, "ruok"); got != "imok" {
		t.Errorf("ruok = %q", got)
	}
	srvr := fourLetter(t, addr, "srvr")
	for _, want := range []string{"Zookeeper version: " + ZooKeeperVersion + "-paddock-", "\nLatency min/avg/max: ", "\nReceived: ", "\nSent: ", "\nConnections: 2\n", "\nOutstanding: 0\n", "\nZxid: 0x", "\nMode: standalone\n", "\nNode count: " + nodes + "\n"} {
		if !strings.Contains(srvr, want) {
			t.Errorf("srvr lacks %q:\n%s", want, srvr)
		}
	}
	stat := fourLetter(t, addr, "stat")
	// Like ZooKeeper, stat lists clients briefly and counts the asking
	// connection itself.
	if !strings.Contains(stat, "Clients:\n /127.0.0.1:") || strings.Contains(stat, ",sid=0x") || !strings.Contains(stat, "[0](queued=0,recved=1,sent=0)") {
		t.Errorf("stat:\n%s", stat)
	}
	mntr := fourLetter(t, addr, "mntr")
	for _, want := range []string{"zk_server_state\tstandalone\n", "zk_znode_count\t" + nodes + "\n", "zk_watch_count\t1\n", "zk_num_alive_connections\t1\n"} {
		if !strings.Contains(mntr, want) {
			t.Errorf("mntr lacks %q:\n%s", want, mntr)
		}
	}
	if got := fourLetter(t, addr, "wchs"); got != "1 connections watching 1 paths\nTotal watches:1\n" {
		t.Errorf("wchs = %q", got)
	}
	if got := fourLetter(t, addr, "wchc"); got != hexID(c.sid)+"\n\t/x\n\n" {
		t.Errorf("wchc = %q", got)
	}
	if got := fourLetter(t, addr, "wchp"); got != "/x\n\t"+hexID(c.sid)+"\n\n" {
		t.Errorf("wchp = %q", got)
	}
	if got := fourLetter(t, addr, "isro"); got != "rw" {
		t.Errorf("isro = %q", got)
	}
	if got := fourLetter(t, addr, "envi"); !strings.Contains(got, "\nzookeeper.version="+ZooKeeperVersion) {
		t.Errorf("envi = %q", got)
	}
	if got := fourLetter(t, addr, "conf"); !strings.Contains(got, "tickTime=100\n") || !strings.Contains(got, "minSessionTimeout=200\n") {
		t.Errorf("conf = %q", got)
	}
	if got := fourLetter(t, addr, "dirs"); !strings.HasPrefix(got, "datadir_size: ") {
		t.Errorf("dirs = %q", got)
	}
	if got := fourLetter(t, addr, "srst"); got != "Server stats reset.\n" {
		t.Errorf("srst = %q", got)
	}
	if got := fourLetter(t, addr, "crst"); got != "Connection stats reset.\n" {
		t.Errorf("crst = %q", got)
	}
}

func TestFourLetterWhitelist(t *testing.T) {
	s := startServer(t, func(c *Config) { c.FourLetterWhitelist = nil }) // ZooKeeper's default: srvr
	addr := s.Addr().String()
	if got := fourLetter(t, addr, "ruok"); got != "ruok is not executed because it is not in the whitelist.\n" {
		t.Errorf("ruok = %q", got)
	}
	if got := fourLetter(t, addr, "srvr"); !strings.Contains(got, "Mode: standalone") {
		t.Errorf("srvr = %q", got)
	}
}

func TestInitialSessionID(t *testing.T) {
	// (serverId << 56) | ((now << 24) >>> 8), as SessionTrackerImpl.
	now := int64(1700000000000)
	got := initialSessionID(3, now)
	want := int64(3)<<56 | int64(uint64(now<<24)>>8)
	if got != want || got>>56 != 3 {
		t.Fatalf("got %x want %x", got, want)
	}
}

func TestDigestID(t *testing.T) {
	// ZooKeeper's documented example: super:test → super:D/InIHSb7yEEbrWz8b9l71RjZJU=
	if got := digestID("super:test"); got != "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" {
		t.Fatalf("digest %q", got)
	}
}

func TestPeerIPJavaFormat(t *testing.T) {
	nc := dial(t, startServer(t, nil).Addr().String())
	if got := peerIP(nc.LocalAddr()); got != "127.0.0.1" {
		t.Fatalf("ipv4: %q", got)
	}
	a := &netTCPAddr{IP: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}
	if got := peerIP(a.tcp()); got != "0:0:0:0:0:0:0:1" {
		t.Fatalf("ipv6: %q", got)
	}
}

// Replies to pipelined requests come back in request order, and a read
// sees the session's own earlier writes.
func TestPipelinedOrder(t *testing.T) { pipelinedOrder(t, startServer(t, nil).Addr().String()) }

func pipelinedOrder(t *testing.T, addr string) {
	c := newRaw(t, addr)
	var xids []int32
	for i := 0; i < 50; i++ {
		xids = append(xids, c.send(proto.OpCreate, &proto.CreateRequest{Path: "/p", Data: []byte{byte(i)}, Acl: openACL, Flags: proto.ModePersistentSequential}))
		xids = append(xids, c.send(proto.OpGetChildren, &proto.GetChildrenRequest{Path: "/"}))
	}
	for i, xid := range xids {
		if i%2 == 0 {
			var cr proto.CreateResponse
			if err := c.recv(xid, &cr); err != proto.ErrOK {
				t.Fatal(err)
			}
			continue
		}
		var gc proto.GetChildrenResponse
		if err := c.recv(xid, &gc); err != proto.ErrOK {
			t.Fatal(err)
		}
		// zookeeper + i/2+1 sequential nodes.
		if len(gc.Children) != 1+i/2+1 {
			t.Fatalf("read %d saw %d children", i/2, len(gc.Children))
		}
	}
	_ = time.Second
}
