package faults

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// LinkState is what a [Link] does with traffic.
type LinkState int

// Link states.
const (
	// LinkUp forwards bytes both ways.
	LinkUp LinkState = iota
	// LinkDown closes every connection on the link and refuses new ones
	// (they are accepted and closed at once): a partition the endpoints
	// notice quickly, as a reset.
	LinkDown
	// LinkBlackhole keeps connections open but forwards nothing; new
	// connections are accepted and never answered: a partition the
	// endpoints only notice through their own timeouts, as a cable cut.
	LinkBlackhole
)

func (s LinkState) String() string {
	switch s {
	case LinkUp:
		return "up"
	case LinkDown:
		return "down"
	case LinkBlackhole:
		return "blackhole"
	}
	return "?"
}

// Link is the state of one directed peer link, From → To: the
// connections member From dials to member To. Raft messages from i to j
// travel only on connections i dials, so cutting both i→j and j→i
// separates the pair completely.
type Link struct {
	From, To int
	door     *Door

	mu    sync.Mutex
	state LinkState
}

// State returns the link's current state.
func (l *Link) State() LinkState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Set changes the link's state. Moving to LinkDown closes the link's open
// connections; moving to LinkBlackhole keeps them open but silently drops
// what they carry from then on; moving back to LinkUp closes connections
// a blackhole held (their streams lost bytes) so that both ends reconnect.
func (l *Link) Set(s LinkState) {
	l.mu.Lock()
	old := l.state
	l.state = s
	l.mu.Unlock()
	if s != old && s != LinkBlackhole {
		l.door.kick(l.From)
	}
}

// Door is the TCP proxy in front of one member's peer port: every other
// member dials Addr to reach member To, and the proxy forwards to Target
// (To's real --peer-addr). It learns which member dialled from the
// connection's first frame (the peer handshake: a frame header, then
// "PDKPEER\x00", version, kind, and the dialer's id; see
// replication/doc.go) and applies the state of the link From→To. A
// connection whose first frame is not a handshake has no known source; it
// is let through only while every link into To is up.
//
// One front door per member, rather than one proxy per ordered pair,
// because members learn each other's peer addresses from the replicated
// membership: all members must dial the same address for a given peer.
type Door struct {
	To     int
	Addr   string
	Target string
	// link returns the link from → To (nil for an unknown source).
	link func(from int) *Link

	ln net.Listener

	mu     sync.Mutex
	conns  map[*pipe]int // open connections and their source member
	closed bool
	wg     sync.WaitGroup
}

// pipe is one proxied connection: the accepted side and the dialled side.
type pipe struct {
	mu     sync.Mutex
	a, b   net.Conn
	closed bool
}

func (p *pipe) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	a, b := p.a, p.b
	p.mu.Unlock()
	a.Close()
	if b != nil {
		b.Close()
	}
}

// attach records the dialled side; false if the pipe was closed meanwhile.
func (p *pipe) attach(b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.b = b
	return true
}

// NewDoor listens on listenAddr ("127.0.0.1:0" for a free port) and
// forwards to target according to link(from).State().
func NewDoor(to int, listenAddr, target string, link func(from int) *Link) (*Door, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	d := &Door{To: to, Addr: ln.Addr().String(), Target: target, link: link, ln: ln, conns: map[*pipe]int{}}
	d.wg.Add(1)
	go d.acceptLoop()
	return d, nil
}

// state is the state that applies to a connection from member from (0:
// unknown source, the worst state of any link into this door).
func (d *Door) state(from int) LinkState {
	if l := d.link(from); l != nil {
		return l.State()
	}
	worst := LinkUp
	for id := 1; id <= 255; id++ {
		l := d.link(id)
		if l == nil {
			continue
		}
		if s := l.State(); s > worst {
			worst = s
		}
	}
	return worst
}

// kick closes every open connection from member from (and those of
// unknown source).
func (d *Door) kick(from int) {
	d.mu.Lock()
	var victims []*pipe
	for p, f := range d.conns {
		if f == from || f == 0 {
			victims = append(victims, p)
			delete(d.conns, p)
		}
	}
	d.mu.Unlock()
	for _, p := range victims {
		p.close()
	}
}

// Conns reports how many connections the door holds open.
func (d *Door) Conns() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// Close stops the proxy and closes every connection.
func (d *Door) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	var victims []*pipe
	for p := range d.conns {
		victims = append(victims, p)
		delete(d.conns, p)
	}
	d.mu.Unlock()
	err := d.ln.Close()
	for _, p := range victims {
		p.close()
	}
	d.wg.Wait()
	return err
}

func (d *Door) acceptLoop() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		d.wg.Add(1)
		go d.serve(c)
	}
}

// peerMagic opens the payload of a Paddock peer handshake.
const peerMagic = "PDKPEER\x00"

// readHello reads the connection's first frame and returns its bytes and
// the dialer's id (0 if it is not a handshake).
func readHello(c net.Conn) ([]byte, int, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	hdr := make([]byte, 9) // uint32 length, uint32 crc, uint8 type
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, 0, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n > 4<<10 { // not a handshake: forward as is
		return hdr, 0, nil
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c, payload); err != nil {
		return nil, 0, err
	}
	buf := append(hdr, payload...)
	// payload: magic(8) version(2) kind(1) from(8) to(8) ...
	if len(payload) < 27 || string(payload[:8]) != peerMagic {
		return buf, 0, nil
	}
	from := binary.BigEndian.Uint64(payload[11:19])
	if from > 1<<16 {
		return buf, 0, nil
	}
	return buf, int(from), nil
}

func (d *Door) serve(c net.Conn) {
	defer d.wg.Done()
	first, from, err := readHello(c)
	if err != nil {
		c.Close()
		return
	}
	p := &pipe{a: c}
	d.mu.Lock()
	closed := d.closed
	if !closed {
		d.conns[p] = from
	}
	d.mu.Unlock()
	forget := func() {
		d.mu.Lock()
		delete(d.conns, p)
		d.mu.Unlock()
		p.close()
	}
	if closed {
		c.Close()
		return
	}
	switch d.state(from) {
	case LinkDown:
		forget()
		return
	case LinkBlackhole:
		// Held open, never answered; drained so the sender's writes
		// do not fail fast. Closed by a state change or Close.
		io.Copy(io.Discard, c)
		forget()
		return
	}
	b, err := net.DialTimeout("tcp", d.Target, 3*time.Second)
	if err != nil {
		forget()
		return
	}
	if !p.attach(b) { // the link changed state while dialling
		b.Close()
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn, pending []byte) {
		defer func() { done <- struct{}{} }()
		if len(pending) > 0 {
			if _, err := dst.Write(pending); err != nil {
				return
			}
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && d.state(from) == LinkUp {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go cp(b, c, first)
	go cp(c, b, nil)
	<-done
	forget()
	<-done
}
