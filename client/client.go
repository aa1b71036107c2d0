package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// Client is a ZooKeeper session: a connection to one server of a list,
// re-established to any of them when it breaks, carrying requests,
// replies and watch events. It is safe for concurrent use; concurrent
// requests are pipelined on the one connection and answered in order.
//
// A Client lives until Close, or until its session expires or its
// credentials are refused (StateExpired, StateAuthFailed): those are
// terminal, and every later call returns ErrSessionExpired or
// ErrAuthFailed. Make a new Client then (NewSession does it with the same
// configuration).
type Client struct {
	cfg     config
	opts    []Option
	servers []string
	chroot  string

	watches *watchManager
	states  *stateQueue
	events  *SessionEvents // nil without WithSessionEvents

	xid        atomic.Int32
	lastZxid   atomic.Int64
	authFailed atomic.Bool

	loopCtx    context.Context
	loopCancel context.CancelFunc
	done       chan struct{} // closed when the connection loop has ended
	closeOnce  sync.Once

	mu         sync.Mutex
	state      State
	stateWait  chan struct{} // closed and replaced at every state change
	termErr    error         // set once terminal
	cn         *conn         // the live connection, nil between connections
	next       int           // index of the next server to try
	sessionID  int64
	passwd     []byte
	negotiated time.Duration
	auth       []authInfo
	lastErr    error // why the last round of connection attempts failed
}

// Connect creates a session with one of servers and returns once it is
// established. Each server is "host:port" ("host" alone means port 2181);
// an element may also hold a comma-separated list, and the last may end in
// a chroot, as in ZooKeeper's connect string "h1:2181,h2:2181/app".
//
// The context bounds only the wait for the first session; cancelling it
// later has no effect. Without a deadline Connect keeps trying the servers
// until one answers; when the context ends first the error is a
// *ConnectError saying why the last attempt failed. After Connect returns,
// the client reconnects on its own across the server list, resuming the
// session, re-sending credentials and re-arming watches.
func Connect(ctx context.Context, servers []string, opts ...Option) (*Client, error) {
	c, err := New(servers, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.WaitConnected(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// New returns a Client at once and lets it connect in the background, as
// the constructor of ZooKeeper's Java client does: tools that must start
// while the servers are still down (a shell, an operator) use it. Until
// the first session is established calls fail with ErrConnectionLoss;
// WaitConnected waits for it, and the state callback and the session
// events (WithStateCallback, WithSessionEvents) report it. The servers and
// options are those of Connect; only a malformed server list is an error.
func New(servers []string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	hosts, chroot, err := ParseConnectString(strings.Join(servers, ","))
	if err != nil {
		return nil, err
	}
	if cfg.chroot != "" {
		if err := proto.ValidatePath(cfg.chroot); err != nil {
			return nil, fmt.Errorf("zk: chroot %q: %v", cfg.chroot, err)
		}
		chroot = cfg.chroot
		if chroot == "/" {
			chroot = ""
		}
	}
	if cfg.shuffle {
		rand.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
	}
	c := &Client{
		cfg:       cfg,
		opts:      opts,
		servers:   hosts,
		chroot:    chroot,
		state:     StateDisconnected,
		stateWait: make(chan struct{}),
		done:      make(chan struct{}),
		sessionID: cfg.sessionID,
		passwd:    cfg.sessionPasswd,
		auth:      append([]authInfo(nil), cfg.auth...),
	}
	if cfg.sessionEvents {
		c.events = newSessionEvents()
	}
	c.watches = newWatchManager(c)
	c.states = newStateQueue(cfg.onState)
	c.loopCtx, c.loopCancel = context.WithCancel(context.Background())
	go c.loop()
	return c, nil
}

// SessionEvents returns the session-wide event stream, or nil unless the
// client was made with WithSessionEvents.
func (c *Client) SessionEvents() *SessionEvents { return c.events }

// ParseConnectString splits a ZooKeeper connect string,
// "host1:port1,host2:port2[/chroot]", into server addresses (a missing port
// means 2181) and the chroot ("" for none).
func ParseConnectString(s string) (servers []string, chroot string, err error) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s, chroot = s[:i], s[i:]
		if err := proto.ValidatePath(chroot); err != nil {
			return nil, "", fmt.Errorf("zk: chroot %q: %v", chroot, err)
		}
		if chroot == "/" {
			chroot = ""
		}
	}
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "2181")
		}
		servers = append(servers, h)
	}
	if len(servers) == 0 {
		return nil, "", errors.New("zk: no servers in connect string")
	}
	return servers, chroot, nil
}

// NewSession connects a new Client with the same servers and options as
// c, and any credentials added to c with AddAuth, but a new session. It is
// the way on after StateExpired.
func (c *Client) NewSession(ctx context.Context) (*Client, error) {
	opts := append([]Option(nil), c.opts...)
	opts = append(opts, WithSession(0, nil))
	c.mu.Lock()
	extra := c.auth[len(c.cfg.auth):]
	c.mu.Unlock()
	for _, a := range extra {
		opts = append(opts, WithAuth(a.scheme, a.auth))
	}
	servers := append([]string(nil), c.servers...)
	if c.chroot != "" {
		opts = append(opts, WithChroot(c.chroot))
	}
	return Connect(ctx, servers, opts...)
}

// State returns the current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// SessionID returns the session id (0 before the first handshake).
func (c *Client) SessionID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// SessionPassword returns the session's password, which with SessionID
// lets another client resume the session (WithSession).
func (c *Client) SessionPassword() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.passwd...)
}

// SessionTimeout returns the timeout the server granted.
func (c *Client) SessionTimeout() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.negotiated
}

// Server returns the address of the server the client is connected to,
// or "" between connections.
func (c *Client) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn == nil {
		return ""
	}
	return c.cn.addr
}

// LastZxid returns the zxid of the last reply seen: the client never
// accepts a server that has applied less.
func (c *Client) LastZxid() int64 { return c.lastZxid.Load() }

// Chroot returns the chroot every path is relative to ("" for none).
func (c *Client) Chroot() string { return c.chroot }

// WaitConnected waits until the client is connected (StateConnected or
// StateConnectedReadOnly). It returns the terminal error (ErrSessionExpired,
// ErrAuthFailed, ErrClosed) if the client can never connect again, or,
// when ctx ends first, a *ConnectError that wraps the context's error.
func (c *Client) WaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		st, term, ch := c.state, c.termErr, c.stateWait
		c.mu.Unlock()
		if term != nil {
			return term
		}
		if st.Connected() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			c.mu.Lock()
			last := c.lastErr
			c.mu.Unlock()
			return &ConnectError{Err: ctx.Err(), Last: last}
		}
	}
}

// ConnectError is the error of Connect and WaitConnected when the wait
// ends before a session is established: the context's error, and the
// reason the client's last round of connection attempts failed, if one
// did ("dial tcp ...: connection refused", a TLS handshake error, ...).
// errors.Is(err, context.DeadlineExceeded) holds for a deadline.
type ConnectError struct {
	// Err is the context's error.
	Err error
	// Last is why the last attempt failed; nil if none has failed yet
	// (the first attempt was still under way).
	Last error
}

// Error returns "zk: not connected: <ctx error> (last attempt: <reason>)".
func (e *ConnectError) Error() string {
	if e.Last == nil {
		return "zk: not connected: " + e.Err.Error()
	}
	return "zk: not connected: " + e.Err.Error() + " (last attempt: " + e.Last.Error() + ")"
}

// Unwrap returns the context's error.
func (e *ConnectError) Unwrap() error { return e.Err }

// Close ends the session (closeSession: the server deletes its ephemeral
// nodes at once) and the connection. Watches end with EventNotWatching,
// the state callback gets StateClosed, and later calls fail with ErrClosed.
// Close waits at most a couple of seconds for the server's answer.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.loopCancel()
		c.mu.Lock()
		connected := c.state.Connected() && c.termErr == nil
		c.mu.Unlock()
		if connected {
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout)
			if err := c.do(ctx, newRequest(proto.OpCloseSession, nil, nil)); err != nil {
				c.cfg.logger.Debug("zk: closeSession", "err", err)
			}
			cancel()
		}
		c.mu.Lock()
		cn := c.cn
		c.mu.Unlock()
		if cn != nil {
			cn.kill(ErrClosed)
		}
		<-c.done
	})
	return nil
}

// loop connects, waits for the connection to die, and reconnects, until
// the client is closed or its session ends.
func (c *Client) loop() {
	defer close(c.done)
	backoff := time.Duration(0)
	for {
		if c.loopCtx.Err() != nil {
			c.terminate(StateClosed, ErrClosed)
			return
		}
		cn, err := c.connectRound()
		switch {
		case c.loopCtx.Err() != nil:
			if cn != nil {
				cn.nc.Close()
			}
			c.terminate(StateClosed, ErrClosed)
			return
		case errors.Is(err, ErrSessionExpired):
			c.cfg.logger.Info("zk: session expired", "session", fmt.Sprintf("0x%x", c.SessionID()))
			c.terminate(StateExpired, ErrSessionExpired)
			return
		case err != nil:
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
			backoff = min(max(2*backoff, 50*time.Millisecond), c.cfg.maxBackoff)
			d := backoff/2 + rand.N(backoff/2+1)
			c.cfg.logger.Debug("zk: no server reachable, retrying", "in", d, "err", err)
			select {
			case <-time.After(d):
			case <-c.loopCtx.Done():
			}
			continue
		}
		backoff = 0
		<-cn.readerDone
		if c.authFailed.Load() {
			c.terminate(StateAuthFailed, ErrAuthFailed)
			return
		}
		if c.loopCtx.Err() != nil {
			c.terminate(StateClosed, ErrClosed)
			return
		}
		c.mu.Lock()
		c.cn = nil
		c.setStateLocked(StateDisconnected)
		c.mu.Unlock()
		c.watches.sessionEvent(StateDisconnected)
		// A short random pause spreads the reconnects of many clients.
		select {
		case <-time.After(rand.N(50 * time.Millisecond)):
		case <-c.loopCtx.Done():
		}
	}
}

// connectRound tries each server once, starting after the last one used,
// and returns the first live, primed connection.
func (c *Client) connectRound() (*conn, error) {
	var lastErr error = errNoServer
	for range c.servers {
		c.mu.Lock()
		addr := c.servers[c.next]
		c.next = (c.next + 1) % len(c.servers)
		c.mu.Unlock()
		cn, resp, err := c.dial(c.loopCtx, addr)
		if err != nil {
			if errors.Is(err, ErrSessionExpired) || c.loopCtx.Err() != nil {
				return nil, err
			}
			c.cfg.logger.Debug("zk: connect failed", "server", addr, "err", err)
			lastErr = err
			continue
		}
		if err := c.established(cn, resp); err != nil {
			cn.nc.Close()
			lastErr = err
			continue
		}
		return cn, nil
	}
	return nil, lastErr
}

// established records the session granted on cn, primes the connection,
// publishes it, and starts its goroutines. The state change (and the
// Connected event to persistent watchers) comes before the reader starts,
// so events from the SetWatches replay follow it.
func (c *Client) established(cn *conn, resp *proto.ConnectResponse) error {
	c.mu.Lock()
	first := c.sessionID == 0
	c.sessionID = resp.SessionId
	c.passwd = append([]byte(nil), resp.Passwd...)
	c.negotiated = time.Duration(resp.TimeOut) * time.Millisecond
	auth := append([]authInfo(nil), c.auth...)
	c.mu.Unlock()

	if err := cn.prime(auth, c.watches.setWatches(c.lastZxid.Load())); err != nil {
		return err
	}
	st := StateConnected
	if resp.ReadOnly {
		st = StateConnectedReadOnly
	}
	c.cfg.logger.Info("zk: connected", "server", cn.addr, "session", fmt.Sprintf("0x%x", resp.SessionId),
		"timeout", c.negotiated, "resumed", !first, "readOnly", resp.ReadOnly)
	c.mu.Lock()
	c.cn = cn
	c.lastErr = nil
	c.setStateLocked(st)
	c.mu.Unlock()
	c.watches.sessionEvent(st)
	go cn.readLoop()
	go cn.writeLoop()
	return nil
}

// setStateLocked changes the state and queues the callback and the
// session event; c.mu is held, so both are queued in the order of the
// changes. The callers order them with the watch events: a connection's
// state change is queued before its reader starts, its loss after its
// reader has ended.
func (c *Client) setStateLocked(s State) {
	if c.state == s {
		return
	}
	c.state = s
	close(c.stateWait)
	c.stateWait = make(chan struct{})
	c.states.push(s)
	c.events.push(Event{Type: EventNone, State: s}, s.Terminal())
}

// terminate moves the client to a terminal state: later calls fail with
// err and every watch ends with EventNotWatching.
func (c *Client) terminate(s State, err error) {
	c.mu.Lock()
	if c.termErr != nil {
		c.mu.Unlock()
		return
	}
	c.termErr = err
	c.cn = nil
	c.setStateLocked(s)
	c.mu.Unlock()
	c.watches.terminate(s, err)
	c.states.close()
}

// nextXid returns the next request xid: 1, 2, ... wrapping back to 1
// after MaxInt32, as ClientCnxn does.
func (c *Client) nextXid() int32 {
	for {
		old := c.xid.Load()
		n := old + 1
		if old == math.MaxInt32 || n <= 0 {
			n = 1
		}
		if c.xid.CompareAndSwap(old, n) {
			return n
		}
	}
}

// serverPath turns a client path into the server's path under the chroot.
func (c *Client) serverPath(p string) string {
	if c.chroot == "" {
		return p
	}
	if p == "/" {
		return c.chroot
	}
	return c.chroot + p
}

// clientPath turns a server path into the client's view, stripping the
// chroot; paths outside the chroot are returned as they are.
func (c *Client) clientPath(p string) string {
	if c.chroot == "" {
		return p
	}
	if p == c.chroot {
		return "/"
	}
	if strings.HasPrefix(p, c.chroot+"/") {
		return p[len(c.chroot):]
	}
	return p
}

// stateQueue delivers state changes to the callback in order, from its own
// goroutine, so a slow callback never blocks the connection.
type stateQueue struct {
	f      func(State)
	mu     sync.Mutex
	q      []State
	closed bool
	wake   chan struct{}
}

func newStateQueue(f func(State)) *stateQueue {
	s := &stateQueue{f: f, wake: make(chan struct{}, 1)}
	if f != nil {
		go s.run()
	}
	return s
}

func (s *stateQueue) push(st State) {
	if s.f == nil {
		return
	}
	s.mu.Lock()
	s.q = append(s.q, st)
	s.mu.Unlock()
	s.signal()
}

func (s *stateQueue) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

func (s *stateQueue) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *stateQueue) run() {
	for range s.wake {
		for {
			s.mu.Lock()
			if len(s.q) == 0 {
				closed := s.closed
				s.mu.Unlock()
				if closed {
					return
				}
				break
			}
			st := s.q[0]
			s.q = s.q[1:]
			s.mu.Unlock()
			s.f(st)
		}
	}
}
