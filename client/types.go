package client

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"

	"github.com/paddockhq/paddock/proto"
)

// Stat is a znode's metadata as the server reports it (czxid, mzxid,
// version, ephemeralOwner, ...). It is the wire record itself, so tools
// can use proto and client values interchangeably.
type Stat = proto.Stat

// ACL is one access control entry: permission bits (proto.PermRead, ...)
// granted to an identity.
type ACL = proto.ACL

// ID is an identity in an ACL: a scheme ("world", "digest", "ip", "auth",
// "x509", "sasl") and an id within it.
type ID = proto.Id

// ClientInfo is one authenticated identity of a connection, as WhoAmI
// reports it.
type ClientInfo = proto.ClientInfo

// AnyVersion, given as the expected version of Delete, Set, SetACL or
// Check, matches every version.
const AnyVersion int32 = -1

// Permission bits for ACLs, re-exported from proto for convenience.
const (
	PermRead   = proto.PermRead
	PermWrite  = proto.PermWrite
	PermCreate = proto.PermCreate
	PermDelete = proto.PermDelete
	PermAdmin  = proto.PermAdmin
	PermAll    = proto.PermAll
)

// WorldACL returns an ACL granting perms to everyone (world:anyone).
// WorldACL(PermAll) is ZooKeeper's OPEN_ACL_UNSAFE.
func WorldACL(perms int32) []ACL {
	return []ACL{{Perms: perms, Id: proto.WorldAnyone}}
}

// AuthACL returns an ACL granting perms to the identities the session has
// authenticated with (scheme "auth"; ZooKeeper's CREATOR_ALL_ACL when perms
// is PermAll). The server refuses it with ErrInvalidACL on a session
// without authentication.
func AuthACL(perms int32) []ACL {
	return []ACL{{Perms: perms, Id: ID{Scheme: "auth", Id: ""}}}
}

// DigestACL returns an ACL granting perms to the digest user with this
// password: the id is user:base64(sha1(user:password)), as ZooKeeper's
// DigestAuthenticationProvider computes it.
func DigestACL(perms int32, user, password string) []ACL {
	return []ACL{{Perms: perms, Id: ID{Scheme: "digest", Id: DigestID(user, password)}}}
}

// DigestID returns the digest scheme id of user and password,
// "user:base64(sha1(user:password))".
func DigestID(user, password string) string {
	sum := sha1.Sum([]byte(user + ":" + password))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

// CreateMode selects the kind of node Create makes.
type CreateMode int32

// The create modes of ZooKeeper (CreateMode), with their wire flags.
const (
	// ModePersistent nodes live until deleted.
	ModePersistent CreateMode = CreateMode(proto.ModePersistent)
	// ModeEphemeral nodes are deleted when the creating session ends; they
	// cannot have children.
	ModeEphemeral CreateMode = CreateMode(proto.ModeEphemeral)
	// ModePersistentSequential appends a 10-digit, monotonically increasing
	// counter (the parent's cversion) to the name.
	ModePersistentSequential CreateMode = CreateMode(proto.ModePersistentSequential)
	// ModeEphemeralSequential is ephemeral and sequential: the building
	// block of locks, queues and elections.
	ModeEphemeralSequential CreateMode = CreateMode(proto.ModeEphemeralSequential)
	// ModeContainer nodes are deleted by the server once their last child
	// is gone (see CreateContainer).
	ModeContainer CreateMode = CreateMode(proto.ModeContainer)
	// ModePersistentWithTTL nodes are deleted by the server when they have
	// no children and were not modified within their TTL (see CreateTTL).
	ModePersistentWithTTL CreateMode = CreateMode(proto.ModePersistentWithTTL)
	// ModePersistentSequentialWithTTL is sequential and TTL.
	ModePersistentSequentialWithTTL CreateMode = CreateMode(proto.ModePersistentSequentialTTL)
)

var modeNames = map[CreateMode]string{
	ModePersistent: "persistent", ModeEphemeral: "ephemeral",
	ModePersistentSequential: "persistent_sequential", ModeEphemeralSequential: "ephemeral_sequential",
	ModeContainer: "container", ModePersistentWithTTL: "persistent_with_ttl",
	ModePersistentSequentialWithTTL: "persistent_sequential_with_ttl",
}

// String returns the mode's name, e.g. "ephemeral_sequential".
func (m CreateMode) String() string {
	if s, ok := modeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("CreateMode(%d)", int32(m))
}

// IsTTL reports whether the mode needs a TTL.
func (m CreateMode) IsTTL() bool {
	return m == ModePersistentWithTTL || m == ModePersistentSequentialWithTTL
}

// State is the state of a client's session and connection, as reported to
// the state callback (WithStateCallback) and by Client.State. The values
// are ZooKeeper's KeeperState numbers.
type State int32

// The states a client goes through.
const (
	// StateDisconnected: the connection was lost; the client is trying the
	// servers again and the session may still be resumed. Calls fail with
	// ErrConnectionLoss meanwhile.
	StateDisconnected State = State(proto.StateDisconnected)
	// StateConnected: a session is established with a read-write server.
	StateConnected State = State(proto.StateSyncConnected)
	// StateAuthFailed: the server refused the credentials; terminal.
	StateAuthFailed State = State(proto.StateAuthFailed)
	// StateConnectedReadOnly: connected to a server in read-only mode
	// (only with WithReadOnly); writes fail with ErrNotReadOnly.
	StateConnectedReadOnly State = State(proto.StateConnectedReadOnly)
	// StateExpired: the server expired the session; terminal. Its
	// ephemeral nodes and watches are gone; make a new client
	// (Client.NewSession).
	StateExpired State = State(proto.StateExpired)
	// StateClosed: Close was called; terminal.
	StateClosed State = 7
)

// String returns the state's name as ZooKeeper spells it.
func (s State) String() string {
	switch s {
	case StateDisconnected:
		return "Disconnected"
	case StateConnected:
		return "SyncConnected"
	case StateAuthFailed:
		return "AuthFailed"
	case StateConnectedReadOnly:
		return "ConnectedReadOnly"
	case StateExpired:
		return "Expired"
	case StateClosed:
		return "Closed"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Terminal reports whether the client can never leave this state.
func (s State) Terminal() bool {
	return s == StateExpired || s == StateClosed || s == StateAuthFailed
}

// Connected reports whether requests can be sent in this state.
func (s State) Connected() bool { return s == StateConnected || s == StateConnectedReadOnly }

// EventType is the kind of a watch event. The values are ZooKeeper's,
// plus EventNotWatching, which this client adds.
type EventType int32

// Watch event types.
const (
	// EventNone carries a session state change (Event.State) to persistent
	// watchers: Disconnected, then Connected again, so a cache knows it
	// may have missed changes.
	EventNone EventType = EventType(proto.EventNone)
	// EventNodeCreated: the watched node was created.
	EventNodeCreated EventType = EventType(proto.EventNodeCreated)
	// EventNodeDeleted: the watched node was deleted.
	EventNodeDeleted EventType = EventType(proto.EventNodeDeleted)
	// EventNodeDataChanged: the watched node's data was set.
	EventNodeDataChanged EventType = EventType(proto.EventNodeDataChanged)
	// EventNodeChildrenChanged: a child of the watched node was created or
	// deleted.
	EventNodeChildrenChanged EventType = EventType(proto.EventNodeChildrenChanged)
	// EventDataWatchRemoved: a data or exists watch was removed by
	// RemoveWatches.
	EventDataWatchRemoved EventType = EventType(proto.EventDataWatchRemoved)
	// EventChildWatchRemoved: a child watch was removed by RemoveWatches.
	EventChildWatchRemoved EventType = EventType(proto.EventChildWatchRemoved)
	// EventPersistentWatchRemoved: a persistent watch was removed.
	EventPersistentWatchRemoved EventType = EventType(proto.EventPersistentWatchRemoved)
	// EventNotWatching is the last event of a watch that ends without
	// firing: the session expired or the client closed. Event.Err says
	// which.
	EventNotWatching EventType = -2
)

// String returns the type's name as ZooKeeper spells it.
func (t EventType) String() string {
	switch t {
	case EventNone:
		return "None"
	case EventNodeCreated:
		return "NodeCreated"
	case EventNodeDeleted:
		return "NodeDeleted"
	case EventNodeDataChanged:
		return "NodeDataChanged"
	case EventNodeChildrenChanged:
		return "NodeChildrenChanged"
	case EventDataWatchRemoved:
		return "DataWatchRemoved"
	case EventChildWatchRemoved:
		return "ChildWatchRemoved"
	case EventPersistentWatchRemoved:
		return "PersistentWatchRemoved"
	case EventNotWatching:
		return "NotWatching"
	}
	return fmt.Sprintf("EventType(%d)", int32(t))
}

// Event is a watch notification.
type Event struct {
	// Type is what happened.
	Type EventType
	// State is the session state when the event was generated:
	// StateConnected for server notifications.
	State State
	// Path is the node concerned, relative to the client's chroot; empty
	// for EventNone.
	Path string
	// Zxid is the zxid of the change that triggered the event, or 0 for
	// events the client generates itself. Servers that do not report it
	// (Apache ZooKeeper 3.8) leave it at -1.
	Zxid int64
	// Err is set on EventNotWatching: ErrSessionExpired, ErrClosed or
	// ErrAuthFailed.
	Err error
}

// String formats the event for logs.
func (e Event) String() string {
	if e.Type == EventNone {
		return "None " + e.State.String()
	}
	return e.Type.String() + " " + e.Path
}

// WatcherType selects watches in RemoveWatches and CheckWatches.
type WatcherType int32

// Watcher types (ZooKeeper's Watcher.WatcherType).
const (
	// WatcherChildren: child watches (from Children with a watch).
	WatcherChildren WatcherType = WatcherType(proto.WatcherChildren)
	// WatcherData: data and exists watches (from Get and Exists).
	WatcherData WatcherType = WatcherType(proto.WatcherData)
	// WatcherAny: every kind.
	WatcherAny WatcherType = WatcherType(proto.WatcherAny)
	// WatcherPersistent: persistent watches (AddWatch).
	WatcherPersistent WatcherType = WatcherType(proto.WatcherPersistent)
	// WatcherPersistentRecursive: persistent recursive watches (AddWatch).
	WatcherPersistentRecursive WatcherType = WatcherType(proto.WatcherPersistentRecursive)
)

// AddWatchMode selects the kind of persistent watch AddWatch sets.
type AddWatchMode int32

// Persistent watch modes.
const (
	// WatchPersistent fires for data and child changes of one node and is
	// not removed when it fires.
	WatchPersistent AddWatchMode = AddWatchMode(proto.AddWatchPersistent)
	// WatchPersistentRecursive fires for creation, deletion and data
	// changes of the node and every descendant, never for
	// NodeChildrenChanged.
	WatchPersistentRecursive AddWatchMode = AddWatchMode(proto.AddWatchPersistentRecursive)
)
