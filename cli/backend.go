// Package cli is `paddock cli`: a ZooKeeper shell with zkCli's commands,
// flags, output formats and messages, so that the fingers and scripts of
// ZooKeeper users work unchanged, plus what zkCli lacks: line editing with
// history across runs, completion of commands and of paths from the live
// tree, JSON output for scripts (-o json) and exit codes that say what
// went wrong.
//
// The shell talks to a server through [Backend], a small interface of its
// own; [Session], made by [Dial], implements it on the project's client
// (package client) with that client's session-wide event stream, the
// counterpart of the default watcher zkCli prints.
package cli

import (
	"context"
	"errors"

	"github.com/paddockhq/paddock/client"
	"github.com/paddockhq/paddock/proto"
)

// State is a connection state as ZooKeeper.States names it; it appears in
// the prompt, "[zk: host:port(CONNECTED) 0] ".
type State string

// The connection states a Backend reports.
const (
	StateConnecting   State = "CONNECTING"
	StateConnected    State = "CONNECTED"
	StateConnectedRO  State = "CONNECTEDREADONLY"
	StateClosed       State = "CLOSED"
	StateAuthFailed   State = "AUTH_FAILED"
	StateNotConnected State = "NOT_CONNECTED"
)

// Alive reports whether the state can still serve requests, as
// ZooKeeper.States.isAlive: anything but closed, auth-failed and
// not-connected.
func (s State) Alive() bool {
	return s != StateClosed && s != StateAuthFailed && s != StateNotConnected
}

// Keeper states as WatchedEvent prints them.
const (
	KeeperDisconnected      = "Disconnected"
	KeeperSyncConnected     = "SyncConnected"
	KeeperAuthFailed        = "AuthFailed"
	KeeperConnectedReadOnly = "ConnectedReadOnly"
	KeeperExpired           = "Expired"
	KeeperClosed            = "Closed"
)

// Event is a watch or connection event, printed as zkCli prints a
// WatchedEvent.
type Event struct {
	// State is the keeper state: "SyncConnected", "Disconnected", ...
	State string
	// Type is the event type: "None", "NodeDataChanged", ...
	Type proto.EventType
	// Path is the znode path, empty for connection events.
	Path string
}

// EventTypeName returns the name of an event type as
// Watcher.Event.EventType spells it ("Unknown" for a type ZooKeeper does
// not have).
func EventTypeName(t proto.EventType) string {
	if t < proto.EventNone || t > proto.EventPersistentWatchRemoved || t == 0 {
		return "Unknown"
	}
	return client.EventType(t).String()
}

// String formats the event as WatchedEvent.toString does.
func (e Event) String() string {
	p := e.Path
	if p == "" {
		p = "null"
	}
	return "WatchedEvent state:" + e.State + " type:" + EventTypeName(e.Type) + " path:" + p
}

// Backend is what the shell needs from a ZooKeeper session. Paths are
// absolute (a chroot, if any, is the backend's business). Errors from the
// server are returned as (or wrap) a [proto.ErrCode]; connection failures
// wrap proto.ErrConnectionLoss or proto.ErrSessionExpired.
type Backend interface {
	Create(ctx context.Context, path string, data []byte, acl []proto.ACL, mode int32, ttl int64) (string, error)
	Delete(ctx context.Context, path string, version int32) error
	// Exists returns nil, nil when the node does not exist (and, with
	// watch, leaves a watch for its creation).
	Exists(ctx context.Context, path string, watch bool) (*proto.Stat, error)
	Get(ctx context.Context, path string, watch bool) ([]byte, proto.Stat, error)
	Set(ctx context.Context, path string, data []byte, version int32) (proto.Stat, error)
	Children(ctx context.Context, path string, watch bool) ([]string, proto.Stat, error)
	GetACL(ctx context.Context, path string) ([]proto.ACL, proto.Stat, error)
	SetACL(ctx context.Context, path string, acl []proto.ACL, version int32) (proto.Stat, error)
	Sync(ctx context.Context, path string) error
	AddAuth(ctx context.Context, scheme string, auth []byte) error
	// GetConfig reads /zookeeper/config.
	GetConfig(ctx context.Context, watch bool) ([]byte, proto.Stat, error)
	Reconfig(ctx context.Context, joining, leaving, members string, version int64) ([]byte, proto.Stat, error)
	// AddWatch adds a persistent (recursive) watch: mode is
	// proto.AddWatchPersistent or proto.AddWatchPersistentRecursive.
	AddWatch(ctx context.Context, path string, mode int32) error
	// RemoveWatches removes the watches of one type (proto.WatcherAny,
	// ...) on path; local removes them on this side even without a server.
	RemoveWatches(ctx context.Context, path string, watcherType int32, local bool) error
	// GetEphemerals lists the session's ephemeral nodes under prefix.
	GetEphemerals(ctx context.Context, prefix string) ([]string, error)
	GetAllChildrenNumber(ctx context.Context, path string) (int, error)
	WhoAmI(ctx context.Context) ([]proto.ClientInfo, error)
	// DeleteMulti deletes the paths in one multi transaction.
	DeleteMulti(ctx context.Context, paths []string) error

	// State is the connection state.
	State() State
	// SessionID is the session id, 0 before the first connection.
	SessionID() int64
	// WaitConnected blocks until the session is connected, ctx is done or
	// the backend is closed.
	WaitConnected(ctx context.Context) error
	// NextEvent waits for the next watch or connection event (ctx bounds
	// the wait). Events come in order, each before the reply to any later
	// request; after the last one (the session's end: Closed, Expired,
	// AuthFailed) it returns io.EOF.
	NextEvent(ctx context.Context) (Event, error)
	// TryEvent returns the next event if one is queued, without waiting.
	TryEvent() (Event, bool)
	// Close ends the session.
	Close() error
}

// errCode extracts the ZooKeeper error code from err.
func errCode(err error) (proto.ErrCode, bool) {
	var c proto.ErrCode
	if errors.As(err, &c) {
		return c, true
	}
	var ce client.Error
	if errors.As(err, &ce) {
		return ce.Code(), true
	}
	return 0, false
}
