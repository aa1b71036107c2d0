package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"time"

	"github.com/paddockhq/paddock/client"
	"github.com/paddockhq/paddock/proto"
)

// DialOptions configures [Dial].
type DialOptions struct {
	// Servers is a ZooKeeper connect string: "host:port[,host:port...][/chroot]".
	Servers string
	// SessionTimeout is the requested session timeout; 0 means 30s.
	SessionTimeout time.Duration
	// TLS, when set, wraps every connection in TLS.
	TLS *tls.Config
	// ReadOnly allows connecting to a read-only server (zkCli -r).
	ReadOnly bool
}

// Session is the [Backend] of `paddock cli`: a [client.Client] with its
// session-wide event stream ([client.WithSessionEvents]), as zkCli is a
// ZooKeeper object with a default watcher. The client reconnects across
// the server list, resumes the session and re-sends auth and watches; the
// stream gives the shell every watch and connection event in order, and
// before the reply to any later command, so a script prints an event
// right after the command that triggered it.
type Session struct {
	c      *client.Client
	events *client.SessionEvents
}

// Dial parses the connect string and starts connecting in the background,
// as zkCli does; every call waits for the connection within its context
// (WaitConnected bounds the wait on its own).
func Dial(o DialOptions) (*Session, error) {
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 30 * time.Second
	}
	opts := []client.Option{
		client.WithSessionEvents(),
		client.WithSessionTimeout(o.SessionTimeout),
		client.WithReadOnly(o.ReadOnly),
	}
	if o.TLS != nil {
		opts = append(opts, client.WithTLS(o.TLS))
	}
	c, err := client.New([]string{strings.TrimSpace(o.Servers)}, opts...)
	if err != nil {
		return nil, err
	}
	return &Session{c: c, events: c.SessionEvents()}, nil
}

// Client returns the underlying client.
func (s *Session) Client() *client.Client { return s.c }

// ready waits for the connection, as a request given to zkCli while it
// reconnects waits in its outgoing queue.
func (s *Session) ready(ctx context.Context) error {
	return shellErr(s.c.WaitConnected(ctx))
}

// shellErr turns a client error into what the shell expects: a bare
// proto.ErrCode for ZooKeeper errors (the shell adds the path), and
// ConnectionLoss for a wait that ran out, as zkCli reports a request that
// timed out.
func shellErr(err error) error {
	if err == nil {
		return nil
	}
	var ce client.Error
	switch {
	case errors.As(err, &ce):
		return ce.Code()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, client.ErrClosed):
		return proto.ErrConnectionLoss
	}
	return err
}

// State implements Backend, with zkCli's names: the client reconnecting
// is CONNECTING, an expired or closed session CLOSED.
func (s *Session) State() State {
	switch s.c.State() {
	case client.StateConnected:
		return StateConnected
	case client.StateConnectedReadOnly:
		return StateConnectedRO
	case client.StateDisconnected:
		return StateConnecting
	case client.StateAuthFailed:
		return StateAuthFailed
	}
	return StateClosed
}

// SessionID implements Backend.
func (s *Session) SessionID() int64 { return s.c.SessionID() }

// WaitConnected implements Backend. When ctx ends first the error is the
// client's *client.ConnectError, which says why the last attempt failed.
func (s *Session) WaitConnected(ctx context.Context) error { return s.c.WaitConnected(ctx) }

// NextEvent implements Backend.
func (s *Session) NextEvent(ctx context.Context) (Event, error) {
	ev, err := s.events.Next(ctx)
	return shellEvent(ev), err
}

// TryEvent implements Backend.
func (s *Session) TryEvent() (Event, bool) {
	ev, ok := s.events.TryNext()
	return shellEvent(ev), ok
}

func shellEvent(ev client.Event) Event {
	return Event{State: ev.State.String(), Type: proto.EventType(ev.Type), Path: ev.Path}
}

// Close implements Backend: closeSession, then the stream ends with the
// Closed event.
func (s *Session) Close() error { return s.c.Close() }

// Create implements Backend.
func (s *Session) Create(ctx context.Context, path string, data []byte, acl []proto.ACL, mode int32, ttl int64) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	m := client.CreateMode(mode)
	var p string
	var err error
	if m.IsTTL() {
		p, _, err = s.c.CreateTTL(ctx, path, data, m, acl, time.Duration(ttl)*time.Millisecond)
	} else {
		p, _, err = s.c.Create(ctx, path, data, m, acl)
	}
	return p, shellErr(err)
}

// Delete implements Backend.
func (s *Session) Delete(ctx context.Context, path string, version int32) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	return shellErr(s.c.Delete(ctx, path, version))
}

// Exists implements Backend. The watch goes to the session stream; the
// one-shot channel is not needed.
func (s *Session) Exists(ctx context.Context, path string, watch bool) (*proto.Stat, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var ok bool
	var st *client.Stat
	var err error
	if watch {
		ok, st, _, err = s.c.ExistsW(ctx, path)
	} else {
		ok, st, err = s.c.Exists(ctx, path)
	}
	if err != nil || !ok {
		return nil, shellErr(err)
	}
	return st, nil
}

// derefStat dereferences a Stat that may be nil (on error).
func derefStat(st *client.Stat) proto.Stat {
	if st == nil {
		return proto.Stat{}
	}
	return *st
}

// result turns a client read's results into the shell's.
func result[T any](v T, st *client.Stat, err error) (T, proto.Stat, error) {
	return v, derefStat(st), shellErr(err)
}

// dropWatch drops the one-shot channel of a read that set a watch: the
// shell gets the event from the session stream.
func dropWatch[T any](v T, st *client.Stat, _ <-chan client.Event, err error) (T, *client.Stat, error) {
	return v, st, err
}

// Get implements Backend.
func (s *Session) Get(ctx context.Context, path string, watch bool) ([]byte, proto.Stat, error) {
	if err := s.ready(ctx); err != nil {
		return nil, proto.Stat{}, err
	}
	if watch {
		return result(dropWatch(s.c.GetW(ctx, path)))
	}
	return result(s.c.Get(ctx, path))
}

// Set implements Backend.
func (s *Session) Set(ctx context.Context, path string, data []byte, version int32) (proto.Stat, error) {
	if err := s.ready(ctx); err != nil {
		return proto.Stat{}, err
	}
	st, err := s.c.Set(ctx, path, data, version)
	return derefStat(st), shellErr(err)
}

// Children implements Backend.
func (s *Session) Children(ctx context.Context, path string, watch bool) ([]string, proto.Stat, error) {
	if err := s.ready(ctx); err != nil {
		return nil, proto.Stat{}, err
	}
	if watch {
		return result(dropWatch(s.c.ChildrenW(ctx, path)))
	}
	return result(s.c.Children(ctx, path))
}

// GetACL implements Backend.
func (s *Session) GetACL(ctx context.Context, path string) ([]proto.ACL, proto.Stat, error) {
	if err := s.ready(ctx); err != nil {
		return nil, proto.Stat{}, err
	}
	return result(s.c.GetACL(ctx, path))
}

// SetACL implements Backend.
func (s *Session) SetACL(ctx context.Context, path string, acl []proto.ACL, version int32) (proto.Stat, error) {
	if err := s.ready(ctx); err != nil {
		return proto.Stat{}, err
	}
	st, err := s.c.SetACL(ctx, path, acl, version)
	return derefStat(st), shellErr(err)
}

// Sync implements Backend.
func (s *Session) Sync(ctx context.Context, path string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	return shellErr(s.c.Sync(ctx, path))
}

// AddAuth implements Backend: the client re-sends the credentials after
// every reconnect.
func (s *Session) AddAuth(ctx context.Context, scheme string, auth []byte) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	return shellErr(s.c.AddAuth(ctx, scheme, auth))
}

// GetConfig implements Backend.
func (s *Session) GetConfig(ctx context.Context, watch bool) ([]byte, proto.Stat, error) {
	if err := s.ready(ctx); err != nil {
		return nil, proto.Stat{}, err
	}
	if watch {
		return result(dropWatch(s.c.GetConfigW(ctx)))
	}
	return result(s.c.GetConfig(ctx))
}

// Reconfig implements Backend: a new member list replaces the
// configuration, otherwise the change is incremental.
func (s *Session) Reconfig(ctx context.Context, joining, leaving, members string, version int64) ([]byte, proto.Stat, error) {
	if err := s.ready(ctx); err != nil {
		return nil, proto.Stat{}, err
	}
	if members != "" {
		return result(s.c.Reconfig(ctx, []string{members}, version))
	}
	return result(s.c.IncrementalReconfig(ctx, []string{joining}, []string{leaving}, version))
}

// AddWatch implements Backend. The shell reads the events from the
// session stream, so the watch's own copy is drained and dropped.
func (s *Session) AddWatch(ctx context.Context, path string, mode int32) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	w, err := s.c.AddWatch(ctx, path, client.AddWatchMode(mode))
	if err != nil {
		return shellErr(err)
	}
	go func() {
		for range w.Events() { // closed when the watch is removed or the session ends
		}
	}()
	return nil
}

// RemoveWatches implements Backend. With local it does not wait for a
// connection: the watches go here even if the server is out of reach.
func (s *Session) RemoveWatches(ctx context.Context, path string, watcherType int32, local bool) error {
	if !local {
		if err := s.ready(ctx); err != nil {
			return err
		}
	}
	return shellErr(s.c.RemoveWatches(ctx, path, client.WatcherType(watcherType), local))
}

// GetEphemerals implements Backend.
func (s *Session) GetEphemerals(ctx context.Context, prefix string) ([]string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	eph, err := s.c.GetEphemerals(ctx, prefix)
	return eph, shellErr(err)
}

// GetAllChildrenNumber implements Backend.
func (s *Session) GetAllChildrenNumber(ctx context.Context, path string) (int, error) {
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	n, err := s.c.GetAllChildrenNumber(ctx, path)
	return n, shellErr(err)
}

// WhoAmI implements Backend.
func (s *Session) WhoAmI(ctx context.Context) ([]proto.ClientInfo, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	infos, err := s.c.WhoAmI(ctx)
	return infos, shellErr(err)
}

// DeleteMulti implements Backend.
func (s *Session) DeleteMulti(ctx context.Context, paths []string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	ops := make([]client.Op, len(paths))
	for i, p := range paths {
		ops[i] = client.DeleteOp(p, client.AnyVersion)
	}
	_, err := s.c.Multi(ctx, ops...)
	return shellErr(err)
}
