package client

import (
	"net"
	"sync"
	"testing"
)

// linkState is what a test proxy does with traffic.
type linkState int

const (
	linkUp        linkState = iota // forward both ways
	linkDown                       // close connections, refuse new ones
	linkBlackhole                  // keep connections, forward nothing
)

// proxy is a TCP proxy between a client and a server, so tests can cut
// one client's connection while other clients carry on.
type proxy struct {
	Addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	state linkState
	conns map[net.Conn]struct{}
}

func proxied(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Set(linkDown)
	})
	return p
}

// Set changes the state; leaving linkUp closes every open connection (a
// blackhole's streams have lost bytes, so they are dropped when it ends).
func (p *proxy) Set(s linkState) {
	p.mu.Lock()
	old := p.state
	p.state = s
	var drop []net.Conn
	if s == linkDown || (old == linkBlackhole && s == linkUp) {
		for c := range p.conns {
			drop = append(drop, c)
		}
		clear(p.conns)
	}
	p.mu.Unlock()
	for _, c := range drop {
		c.Close()
	}
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		st := p.state
		if st == linkDown {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		if st == linkBlackhole {
			continue // accepted, never answered
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[s] = struct{}{}
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies src to dst while the link is up; in a blackhole the bytes
// are read and dropped.
func (p *proxy) pipe(src, dst net.Conn) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			st := p.state
			p.mu.Unlock()
			if st == linkUp {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
