package faults

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
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
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
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

func TestLinkStates(t *testing.T) {
	target := echoServer(t)
	l, err := NewLink(1, 2, "127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	c, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, 5*time.Second); err != nil {
		t.Fatalf("up: %v", err)
	}

	// Down: the open connection is closed, new ones are refused (closed
	// at once).
	l.Set(LinkDown)
	if err := roundTrip(c, 5*time.Second); err == nil {
		t.Fatal("down: open connection still forwards")
	}
	c2, err := net.Dial("tcp", l.Addr)
	if err == nil {
		if err := roundTrip(c2, 5*time.Second); err == nil {
			t.Fatal("down: new connection forwards")
		}
		c2.Close()
	}

	// Up again.
	l.Set(LinkUp)
	c3, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(c3, 5*time.Second); err != nil {
		t.Fatalf("healed: %v", err)
	}

	// Blackhole: the connection stays open but nothing comes back.
	l.Set(LinkBlackhole)
	if err := roundTrip(c3, 300*time.Millisecond); err == nil {
		t.Fatal("blackhole: bytes came back")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("blackhole: want a timeout, got %v", err)
	}
	c4, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	if err := roundTrip(c4, 300*time.Millisecond); err == nil {
		t.Fatal("blackhole: new connection answered")
	}
	// Healing a blackhole closes what it held, so both ends reconnect.
	l.Set(LinkUp)
	if err := roundTrip(c3, 5*time.Second); err == nil {
		t.Fatal("held connection survived the heal")
	}
	c5, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c5.Close()
	if err := roundTrip(c5, 5*time.Second); err != nil {
		t.Fatalf("after blackhole: %v", err)
	}
	if err := WaitFor(5*time.Second, "one connection", func() bool { return l.Conns() == 1 }); err != nil {
		t.Fatalf("%v: %d conns", err, l.Conns())
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
