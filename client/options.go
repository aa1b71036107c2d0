package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"
)

// Dialer opens network connections; *net.Dialer satisfies it. A custom
// Dialer lets callers route through a proxy or a test harness.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Option configures a Client at Connect.
type Option func(*config)

// authInfo is one set of credentials, re-sent on every reconnect.
type authInfo struct {
	scheme string
	auth   []byte
}

type config struct {
	sessionTimeout time.Duration
	tls            *tls.Config
	auth           []authInfo
	logger         *slog.Logger
	dialer         Dialer
	readOnly       bool
	onState        func(State)
	chroot         string
	sessionID      int64
	sessionPasswd  []byte
	shuffle        bool
	maxBackoff     time.Duration
	closeTimeout   time.Duration
	sessionEvents  bool
}

func defaultConfig() config {
	return config{
		sessionTimeout: 10 * time.Second,
		logger:         slog.New(slog.DiscardHandler),
		dialer:         &net.Dialer{},
		shuffle:        true,
		maxBackoff:     time.Second,
		closeTimeout:   2 * time.Second,
	}
}

// WithSessionTimeout asks for a session timeout (default 10s). The server
// clamps it to its [min, max] (2 and 20 ticks by default); the negotiated
// value is Client.SessionTimeout. It also sets the client's timing: a ping
// after T/3 without traffic, and a connection counted dead after 2T/3 of
// silence, as ZooKeeper's own client does.
func WithSessionTimeout(d time.Duration) Option {
	return func(c *config) { c.sessionTimeout = d }
}

// WithTLS connects over TLS with this configuration (to the servers'
// secure client port). If ServerName is empty it is set per server from
// the host part of its address.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) { c.tls = cfg }
}

// WithAuth adds credentials of any scheme, sent right after every
// handshake (so they survive reconnects), as ZooKeeper's addAuthInfo.
func WithAuth(scheme string, auth []byte) Option {
	return func(c *config) { c.auth = append(c.auth, authInfo{scheme, append([]byte(nil), auth...)}) }
}

// WithDigestAuth adds digest credentials ("user:password"), the scheme
// ZooKeeper's DigestAuthenticationProvider checks. See DigestACL for the
// matching ACL.
func WithDigestAuth(user, password string) Option {
	return WithAuth("digest", []byte(user+":"+password))
}

// WithLogger sets the logger for connection life-cycle messages (default:
// discard). Connects and disconnects are logged at Info, retries at Debug.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithDialer sets how TCP connections are opened (default: a net.Dialer).
func WithDialer(d Dialer) Option {
	return func(c *config) {
		if d != nil {
			c.dialer = d
		}
	}
}

// WithReadOnly allows connecting to a server that is in read-only mode
// (partitioned from its quorum). The state is then StateConnectedReadOnly
// and writes fail with ErrNotReadOnly. The client does not look for a
// read-write server while it is connected to a read-only one.
func WithReadOnly(allowed bool) Option {
	return func(c *config) { c.readOnly = allowed }
}

// WithStateCallback calls f on every state change, in order, from one
// goroutine of the client's own (so f may call the client, but a slow f
// delays later state notifications, never requests). The last call is
// for a terminal state: StateExpired, StateAuthFailed or StateClosed.
func WithStateCallback(f func(State)) Option {
	return func(c *config) { c.onState = f }
}

// WithSessionEvents gives the client a session-wide event stream
// (Client.SessionEvents): every state change and every watch event of the
// session, in order, like the default Watcher of ZooKeeper's Java client.
// The stream starts before the first connection, so it begins with that
// connection's StateConnected event. See SessionEvents.
func WithSessionEvents() Option {
	return func(c *config) { c.sessionEvents = true }
}

// WithChroot makes every path relative to root (e.g. "/app"), as the
// "host:port/app" connect string does. Paths in results and events are
// reported relative to it.
func WithChroot(root string) Option {
	return func(c *config) { c.chroot = root }
}

// WithSession resumes an existing session (from another Client's SessionID
// and SessionPassword) instead of creating one, as ZooKeeper's constructor
// with a session id does. The other client's connection is closed by the
// server.
func WithSession(id int64, password []byte) Option {
	return func(c *config) {
		c.sessionID = id
		c.sessionPasswd = append([]byte(nil), password...)
	}
}

// WithoutShuffle tries the servers in the order given instead of a random
// order. Tests use it to know which server a client lands on.
func WithoutShuffle() Option {
	return func(c *config) { c.shuffle = false }
}

// WithMaxBackoff bounds the pause between rounds of connection attempts
// over the whole server list (default 1s; the first retry is immediate).
func WithMaxBackoff(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.maxBackoff = d
		}
	}
}
