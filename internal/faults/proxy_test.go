package faults

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer answers every line with the same line, after swallowing the
// handshake frame.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				if _, _, err := readHello(c); err == nil {
					io.Copy(c, c)
				}
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// hello builds a peer handshake frame from member from.
func hello(from, to uint64) []byte {
	p := []byte(peerMagic)
	p = binary.BigEndian.AppendUint16(p, 1)
	p = append(p, 1)
	p = binary.BigEndian.AppendUint64(p, from)
	p = binary.BigEndian.AppendUint64(p, to)
	p = append(p, 0, 0) // empty cluster string
	hdr := make([]byte, 9)
	binary.BigEndian.PutUint32(hdr, uint32(len(p)))
	hdr[8] = 1
	return append(hdr, p...)
}

func dialFrom(t *testing.T, addr string, from int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(hello(uint64(from), 9)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends a line and waits up to d for its echo.
func roundTrip(c net.Conn, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "ping" {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func TestDoorLinks(t *testing.T) {
	target := echoServer(t)
	links := map[int]*Link{}
	d, err := NewDoor(9, "127.0.0.1:0", target, func(from int) *Link { return links[from] })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	links[1] = &Link{From: 1, To: 9, door: d}
	links[2] = &Link{From: 2, To: 9, door: d}

	c1, c2 := dialFrom(t, d.Addr, 1), dialFrom(t, d.Addr, 2)
	for _, c := range []net.Conn{c1, c2} {
		if err := roundTrip(c, 5*time.Second); err != nil {
			t.Fatalf("up: %v", err)
		}
	}

	// Down 1→9: member 1's connection is closed and new ones refused;
	// member 2 is unaffected.
	links[1].Set(LinkDown)
	if err := roundTrip(c1, 5*time.Second); err == nil {
		t.Fatal("down: open connection still forwards")
	}
	if err := roundTrip(dialFrom(t, d.Addr, 1), 5*time.Second); err == nil {
		t.Fatal("down: new connection forwards")
	}
	if err := roundTrip(c2, 5*time.Second); err != nil {
		t.Fatalf("other link: %v", err)
	}

	// Up again.
	links[1].Set(LinkUp)
	c3 := dialFrom(t, d.Addr, 1)
	if err := roundTrip(c3, 5*time.Second); err != nil {
		t.Fatalf("healed: %v", err)
	}

	// Blackhole: the connection stays open but nothing comes back.
	links[1].Set(LinkBlackhole)
	if err := roundTrip(c3, 300*time.Millisecond); err == nil {
		t.Fatal("blackhole: bytes came back")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("blackhole: want a timeout, got %v", err)
	}
	if err := roundTrip(dialFrom(t, d.Addr, 1), 300*time.Millisecond); err == nil {
		t.Fatal("blackhole: new connection answered")
	}
	// An unknown source is cut while any link into the door is cut.
	if err := roundTrip(dialFrom(t, d.Addr, 7), 300*time.Millisecond); err == nil {
		t.Fatal("unknown source let through during a partition")
	}
	// Healing a blackhole closes what it held, so both ends reconnect.
	links[1].Set(LinkUp)
	if err := roundTrip(c3, 5*time.Second); err == nil {
		t.Fatal("held connection survived the heal")
	}
	if err := roundTrip(dialFrom(t, d.Addr, 1), 5*time.Second); err != nil {
		t.Fatalf("after blackhole: %v", err)
	}
	if err := roundTrip(dialFrom(t, d.Addr, 7), 5*time.Second); err != nil {
		t.Fatalf("unknown source after heal: %v", err)
	}
}

func TestParseSrvr(t *testing.T) {
	raw := "Zookeeper version: 3.8.4\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x10000002a\nMode: follower\nNode count: 5\n"
	s := ParseSrvr(raw)
	if s.Mode != "follower" || s.Zxid != 0x10000002a {
		t.Fatalf("%+v", s)
	}
	if s := ParseSrvr("This ZooKeeper instance is not currently serving requests\n"); s.Mode != "" || s.Zxid != -1 {
		t.Fatalf("%+v", s)
	}
}
