package faults

import (
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

// Link is a TCP proxy for one directed peer link: member From dials Addr
// believing it is member To's peer port, and the proxy forwards to
// Target. Raft traffic from From to To travels on connections From dials,
// so blocking the links From→To and To→From both cuts the pair apart.
type Link struct {
	From, To int
	// Addr is where the proxy listens (what From dials).
	Addr string
	// Target is To's real peer address.
	Target string

	ln net.Listener

	mu     sync.Mutex
	state  LinkState
	conns  map[*pipe]struct{}
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

// NewLink listens on listenAddr ("127.0.0.1:0" for a free port) and
// forwards connections to target.
func NewLink(from, to int, listenAddr, target string) (*Link, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	l := &Link{From: from, To: to, Addr: ln.Addr().String(), Target: target, ln: ln,
		conns: map[*pipe]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// State returns the link's current state.
func (l *Link) State() LinkState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Set changes the link's state. Moving to LinkDown closes every open
// connection; moving to LinkBlackhole keeps them open but silently drops
// what they carry from then on; moving back to LinkUp closes connections a
// blackhole held (their streams lost bytes) so that both ends reconnect.
func (l *Link) Set(s LinkState) {
	l.mu.Lock()
	old := l.state
	l.state = s
	var victims []*pipe
	if s != old && s != LinkBlackhole {
		for p := range l.conns {
			victims = append(victims, p)
			delete(l.conns, p)
		}
	}
	l.mu.Unlock()
	for _, p := range victims {
		p.close()
	}
}

// Conns reports how many proxied connections are open.
func (l *Link) Conns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Close stops the proxy and closes every connection.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var victims []*pipe
	for p := range l.conns {
		victims = append(victims, p)
		delete(l.conns, p)
	}
	l.mu.Unlock()
	err := l.ln.Close()
	for _, p := range victims {
		p.close()
	}
	l.wg.Wait()
	return err
}

func (l *Link) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		state, closed := l.state, l.closed
		p := &pipe{a: c}
		if !closed && state != LinkDown {
			l.conns[p] = struct{}{}
		}
		l.mu.Unlock()
		switch {
		case closed || state == LinkDown:
			c.Close()
		case state == LinkBlackhole:
			// Held open, never answered; drained so the sender's
			// writes do not fail fast. Closed by Set or Close.
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				io.Copy(io.Discard, c)
				l.forget(p)
				p.close()
			}()
		default:
			l.wg.Add(1)
			go l.forward(p)
		}
	}
}

func (l *Link) forget(p *pipe) {
	l.mu.Lock()
	delete(l.conns, p)
	l.mu.Unlock()
}

func (l *Link) forward(p *pipe) {
	defer l.wg.Done()
	b, err := net.DialTimeout("tcp", l.Target, 3*time.Second)
	if err != nil {
		l.forget(p)
		p.close()
		return
	}
	if !p.attach(b) { // the link went down while dialling
		b.Close()
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && l.State() == LinkUp {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go cp(b, p.a)
	go cp(p.a, b)
	<-done
	l.forget(p)
	p.close()
	<-done
}
