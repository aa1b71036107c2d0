package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// HTTPS on the admin server, as ZooKeeper's JettyAdminServer serves it:
// admin.forceHttps (HTTPS only: Config.AdminTLSCertFile set),
// admin.portUnification (HTTPS and plain HTTP on one port:
// Config.AdminPortUnification) and admin.needClientAuth
// (Config.AdminTLSClientAuth "need"), with its own certificate and CA
// (ZooKeeper takes them from the ssl.quorum.* key and trust stores). The
// certificates are reloaded when their files change, as the secure client
// port's are.

// adminTLS checks the admin server's TLS settings and loads its
// certificates; nil means plain HTTP. A bad setting or file fails the
// start: a server asked to serve its admin port over HTTPS never falls
// back to HTTP.
func (s *Server) adminTLS() (*tlsState, error) {
	cfg := &s.cfg
	if cfg.AdminAddr == "" {
		if cfg.AdminTLSCertFile != "" {
			s.log.Warn("admin server TLS is configured but the admin server is off (no admin address)")
		}
		return nil, nil
	}
	if cfg.AdminTLSCertFile == "" {
		if cfg.AdminTLSKeyFile != "" || cfg.AdminTLSCAFile != "" || cfg.AdminPortUnification {
			return nil, errors.New("admin server TLS needs a certificate (AdminTLSCertFile, --admin-tls-cert)")
		}
		if m, err := parseClientAuth(cfg.AdminTLSClientAuth, tls.NoClientCert); err != nil || m != tls.NoClientCert {
			return nil, errors.New("admin client certificates (AdminTLSClientAuth) need admin server TLS (AdminTLSCertFile, --admin-tls-cert)")
		}
		return nil, nil
	}
	mode, err := parseClientAuth(cfg.AdminTLSClientAuth, tls.NoClientCert)
	if err != nil {
		return nil, err
	}
	if mode != tls.NoClientCert && cfg.AdminTLSCAFile == "" {
		return nil, errors.New("verifying admin client certificates needs a CA file (AdminTLSCAFile, --admin-tls-ca), or admin client auth none")
	}
	t, err := newTLSState("admin", cfg.AdminTLSCertFile, cfg.AdminTLSKeyFile, cfg.AdminTLSCAFile, mode, cfg.Logger)
	if err != nil {
		return nil, errors.Join(errors.New("admin server TLS"), err)
	}
	return t, nil
}

// adminListener wraps the admin port's listener for t (nil: plain HTTP).
func (s *Server) adminListener(ln net.Listener, t *tlsState) net.Listener {
	switch {
	case t == nil:
		return ln
	case s.cfg.AdminPortUnification:
		return newUnifiedListener(ln, t.listenerConfig())
	}
	return tls.NewListener(ln, t.listenerConfig())
}

// AdminURL returns the admin server's base URL, "https://host:port" when
// it serves TLS (only or besides HTTP), else "http://host:port"; "" when
// it is not running.
func (s *Server) AdminURL() string {
	a := s.AdminAddr()
	if a == nil {
		return ""
	}
	if s.cfg.AdminTLSCertFile != "" {
		return "https://" + a.String()
	}
	return "http://" + a.String()
}

// x509IDs are the ids a verified client certificate gives, as
// X509AuthenticationProvider does: x509:<subject DN as Java prints it>,
// and super (with the same id) when the DN is Config.SuperUserX509.
func (s *Server) x509IDs(cert *x509.Certificate) []proto.Id {
	id := x509SubjectName(cert)
	var ids []proto.Id
	if su := s.cfg.SuperUserX509; su != "" && id == su {
		ids = append(ids, proto.Id{Scheme: "super", Id: id})
	}
	return append(ids, proto.Id{Scheme: "x509", Id: id})
}

// unifiedListener serves TLS and plain connections on one port, as
// ZooKeeper's admin.portUnification does (Jetty's
// UnifiedConnectionFactory): a connection whose first byte starts a TLS
// handshake record (content type 22) is TLS, any other is plain HTTP.
// Connections are told apart in their own goroutines, so a silent client
// never holds up the others.
type unifiedListener struct {
	net.Listener
	cfg   *tls.Config
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu  sync.Mutex
	err error // why the accept loop ended
}

// sniffTimeout bounds the wait for a connection's first byte.
const sniffTimeout = 10 * time.Second

// tlsHandshakeRecord is the TLS record content type of a ClientHello.
const tlsHandshakeRecord = 0x16

func newUnifiedListener(ln net.Listener, cfg *tls.Config) *unifiedListener {
	u := &unifiedListener{Listener: ln, cfg: cfg, conns: make(chan net.Conn), done: make(chan struct{})}
	go u.acceptLoop()
	return u
}

func (u *unifiedListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := u.Listener.Accept()
		if err != nil {
			select {
			case <-u.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: wait and retry,
				// as net/http's Serve does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			u.mu.Lock()
			u.err = err
			u.mu.Unlock()
			u.Close()
			return
		}
		backoff = 0
		go u.sniff(c)
	}
}

// sniff reads the first byte of c and hands c on, as TLS or as it is.
func (u *unifiedListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, first: b[:]}
	if b[0] == tlsHandshakeRecord {
		out = tls.Server(out, u.cfg)
	}
	select {
	case u.conns <- out:
	case <-u.done:
		c.Close()
	}
}

// Accept returns the next connection, a *tls.Conn for a TLS client (so
// net/http completes its handshake and fills Request.TLS).
func (u *unifiedListener) Accept() (net.Conn, error) {
	select {
	case c := <-u.conns:
		return c, nil
	case <-u.done:
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.err != nil {
			return nil, u.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out stay open.
func (u *unifiedListener) Close() error {
	u.once.Do(func() { close(u.done) })
	return u.Listener.Close()
}

// peekedConn gives back the byte the listener read to tell TLS from HTTP.
type peekedConn struct {
	net.Conn
	first []byte
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
