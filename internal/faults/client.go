package faults

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Clock gives every recorded event one time base: nanoseconds since the
// clock's start, from Go's monotonic clock.
type Clock struct{ start time.Time }

// NewClock starts a clock.
func NewClock() *Clock { return &Clock{start: time.Now()} }

// Now returns nanoseconds since the clock started.
func (c *Clock) Now() int64 { return int64(time.Since(c.start)) }

// Client is one go-zookeeper session used by a workload, with the times
// at which its connection left and regained a session (for the lock
// check) and a per-operation deadline: an operation that does not return
// within OpTimeout is abandoned by closing the connection, and the next
// operation opens a new session.
type Client struct {
	ID             int
	Addrs          []string
	SessionTimeout time.Duration
	OpTimeout      time.Duration
	Clock          *Clock

	mu       sync.Mutex
	conn     *zk.Conn
	session  int64 // session of conn once established
	gen      int   // connections opened
	lostAt   int64 // last time the connection lost its session (or -1)
	onLost   []func(at int64)
	closed   bool
	abandons int
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// ErrAbandoned is returned for an operation that outlived OpTimeout; its
// outcome is unknown.
var ErrAbandoned = errors.New("faults: operation abandoned after its deadline")

// Unknown reports whether err leaves the operation's outcome unknown (it
// may or may not have been applied): anything but a definite ZooKeeper
// error code.
func Unknown(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, zk.ErrBadVersion), errors.Is(err, zk.ErrNoNode),
		errors.Is(err, zk.ErrNodeExists), errors.Is(err, zk.ErrNotEmpty),
		errors.Is(err, zk.ErrNoAuth), errors.Is(err, zk.ErrInvalidACL),
		errors.Is(err, zk.ErrBadArguments), errors.Is(err, zk.ErrInvalidPath):
		return false
	}
	return true
}

// Conn returns the client's connection, opening a new session if there
// is none. It waits (up to a minute) for the session to be established.
func (c *Client) Conn() (*zk.Conn, int64, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, 0, zk.ErrClosing
	}
	if c.conn != nil {
		conn, s := c.conn, c.session
		c.mu.Unlock()
		return conn, s, nil
	}
	c.gen++
	gen := c.gen
	c.mu.Unlock()

	established := make(chan int64, 1)
	cb := func(ev zk.Event) {
		if ev.Type != zk.EventSession {
			return
		}
		now := c.Clock.Now()
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gen != gen {
			return
		}
		switch ev.State {
		case zk.StateHasSession:
			select {
			case established <- 0:
			default:
			}
		case zk.StateDisconnected, zk.StateExpired, zk.StateAuthFailed:
			c.lostAt = now
			for _, f := range c.onLost {
				f(now)
			}
			c.onLost = nil
		}
	}
	conn, _, err := zk.Connect(c.Addrs, c.SessionTimeout, zk.WithLogger(quietLogger{}),
		zk.WithEventCallback(cb))
	if err != nil {
		return nil, 0, err
	}
	select {
	case <-established:
	case <-time.After(time.Minute):
		conn.Close()
		c.drop(conn)
		return nil, 0, fmt.Errorf("client %d: no session within a minute", c.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, 0, zk.ErrClosing
	}
	c.conn, c.session = conn, conn.SessionID()
	return conn, c.session, nil
}

// drop forgets conn (closing it) so the next operation opens a session.
func (c *Client) drop(conn *zk.Conn) {
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
		c.gen++ // events of the old connection are ignored from now on
		c.lostAt = c.Clock.Now()
		for _, f := range c.onLost {
			f(c.lostAt)
		}
		c.onLost = nil
	}
	c.mu.Unlock()
	conn.Close()
}

// Do runs op on the client's connection with the operation deadline. It
// returns the session the operation ran in. When the deadline passes the
// connection is closed (the operation returns ErrAbandoned); when the
// session is gone (expired, closed) the connection is dropped so that the
// next Do opens a new one.
func (c *Client) Do(op func(conn *zk.Conn) error) (int64, error) {
	conn, session, err := c.Conn()
	if err != nil {
		return 0, err
	}
	var abandoned sync.Once
	var wasAbandoned bool
	timer := time.AfterFunc(c.OpTimeout, func() {
		abandoned.Do(func() {
			c.mu.Lock()
			wasAbandoned = true
			c.abandons++
			c.mu.Unlock()
			c.drop(conn)
		})
	})
	err = op(conn)
	timer.Stop()
	abandoned.Do(func() {})
	c.mu.Lock()
	ab := wasAbandoned
	c.mu.Unlock()
	if ab {
		return session, ErrAbandoned
	}
	if errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrClosing) ||
		errors.Is(err, zk.ErrConnectionClosed) && conn.State() == zk.StateExpired {
		c.drop(conn)
	}
	return session, err
}

// WatchLoss reports whether the client's current connection has its
// session and has not lost it since, and registers f to run (once) at the
// moment it does lose it. It is used to bound how long a lock holder may
// believe it holds the lock.
func (c *Client) WatchLoss(f func(at int64)) (connected bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil || c.conn.State() != zk.StateHasSession {
		return false
	}
	c.onLost = append(c.onLost, f)
	return true
}

// Abandons counts operations abandoned at their deadline.
func (c *Client) Abandons() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.abandons
}

// Close closes the client's session.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	conn := c.conn
	c.conn = nil
	c.gen++
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// Connect opens a plain go-zookeeper session to addrs and waits for it.
func Connect(addrs []string, timeout time.Duration) (*zk.Conn, error) {
	conn, evc, err := zk.Connect(addrs, timeout, zk.WithLogger(quietLogger{}))
	if err != nil {
		return nil, err
	}
	deadline := time.After(time.Minute)
	for {
		select {
		case ev := <-evc:
			if ev.State == zk.StateHasSession {
				go func() {
					for range evc {
					}
				}()
				return conn, nil
			}
		case <-deadline:
			conn.Close()
			return nil, fmt.Errorf("faults: no session with %v within a minute", addrs)
		}
	}
}
