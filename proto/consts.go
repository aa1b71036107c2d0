package proto

import "fmt"

// OpCode is a request type (ZooDefs.OpCode).
type OpCode int32

// The opcodes of the client protocol and of the transaction log.
const (
	OpNotification         OpCode = 0
	OpCreate               OpCode = 1
	OpDelete               OpCode = 2
	OpExists               OpCode = 3
	OpGetData              OpCode = 4
	OpSetData              OpCode = 5
	OpGetACL               OpCode = 6
	OpSetACL               OpCode = 7
	OpGetChildren          OpCode = 8
	OpSync                 OpCode = 9
	OpPing                 OpCode = 11
	OpGetChildren2         OpCode = 12
	OpCheck                OpCode = 13
	OpMulti                OpCode = 14
	OpCreate2              OpCode = 15
	OpReconfig             OpCode = 16
	OpCheckWatches         OpCode = 17
	OpRemoveWatches        OpCode = 18
	OpCreateContainer      OpCode = 19
	OpDeleteContainer      OpCode = 20
	OpCreateTTL            OpCode = 21
	OpMultiRead            OpCode = 22
	OpAuth                 OpCode = 100
	OpSetWatches           OpCode = 101
	OpSasl                 OpCode = 102
	OpGetEphemerals        OpCode = 103
	OpGetAllChildrenNumber OpCode = 104
	OpSetWatches2          OpCode = 105
	OpAddWatch             OpCode = 106
	OpWhoAmI               OpCode = 107
	OpCreateSession        OpCode = -10
	OpCloseSession         OpCode = -11
	OpError                OpCode = -1
)

var opNames = map[OpCode]string{
	OpNotification: "notification", OpCreate: "create", OpDelete: "delete", OpExists: "exists",
	OpGetData: "getData", OpSetData: "setData", OpGetACL: "getACL", OpSetACL: "setACL",
	OpGetChildren: "getChildren", OpSync: "sync", OpPing: "ping", OpGetChildren2: "getChildren2",
	OpCheck: "check", OpMulti: "multi", OpCreate2: "create2", OpReconfig: "reconfig",
	OpCheckWatches: "checkWatches", OpRemoveWatches: "removeWatches", OpCreateContainer: "createContainer",
	OpDeleteContainer: "deleteContainer", OpCreateTTL: "createTTL", OpMultiRead: "multiRead",
	OpAuth: "auth", OpSetWatches: "setWatches", OpSasl: "sasl", OpGetEphemerals: "getEphemerals",
	OpGetAllChildrenNumber: "getAllChildrenNumber", OpSetWatches2: "setWatches2", OpAddWatch: "addWatch",
	OpWhoAmI: "whoAmI", OpCreateSession: "createSession", OpCloseSession: "closeSession", OpError: "error",
}

// String returns ZooKeeper's name for the opcode.
func (o OpCode) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("op(%d)", int32(o))
}

// Special xids (ClientCnxn).
const (
	XidNotification int32 = -1
	XidPing         int32 = -2
	XidAuth         int32 = -4
	XidSetWatches   int32 = -8
)

// ErrCode is a ZooKeeper error code (KeeperException.Code).
type ErrCode int32

// The error codes a server puts in ReplyHeader.err.
const (
	ErrOK                       ErrCode = 0
	ErrSystemError              ErrCode = -1
	ErrRuntimeInconsistency     ErrCode = -2
	ErrDataInconsistency        ErrCode = -3
	ErrConnectionLoss           ErrCode = -4
	ErrMarshallingError         ErrCode = -5
	ErrUnimplemented            ErrCode = -6
	ErrOperationTimeout         ErrCode = -7
	ErrBadArguments             ErrCode = -8
	ErrUnknownSession           ErrCode = -12
	ErrNewConfigNoQuorum        ErrCode = -13
	ErrReconfigInProgress       ErrCode = -14
	ErrAPIError                 ErrCode = -100
	ErrNoNode                   ErrCode = -101
	ErrNoAuth                   ErrCode = -102
	ErrBadVersion               ErrCode = -103
	ErrNoChildrenForEphemerals  ErrCode = -108
	ErrNodeExists               ErrCode = -110
	ErrNotEmpty                 ErrCode = -111
	ErrSessionExpired           ErrCode = -112
	ErrInvalidCallback          ErrCode = -113
	ErrInvalidACL               ErrCode = -114
	ErrAuthFailed               ErrCode = -115
	ErrSessionMoved             ErrCode = -118
	ErrNotReadOnly              ErrCode = -119
	ErrEphemeralOnLocalSession  ErrCode = -120
	ErrNoWatcher                ErrCode = -121
	ErrRequestTimeout           ErrCode = -122
	ErrReconfigDisabled         ErrCode = -123
	ErrSessionClosedRequireSASL ErrCode = -124
	ErrQuotaExceeded            ErrCode = -125
	ErrThrottledOp              ErrCode = -127
)

var errNames = map[ErrCode]string{
	ErrOK: "OK", ErrSystemError: "SystemError", ErrRuntimeInconsistency: "RuntimeInconsistency",
	ErrDataInconsistency: "DataInconsistency", ErrConnectionLoss: "ConnectionLoss",
	ErrMarshallingError: "MarshallingError", ErrUnimplemented: "Unimplemented",
	ErrOperationTimeout: "OperationTimeout", ErrBadArguments: "BadArguments",
	ErrUnknownSession: "UnknownSession", ErrNewConfigNoQuorum: "NewConfigNoQuorum",
	ErrReconfigInProgress: "ReconfigInProgress", ErrAPIError: "APIError", ErrNoNode: "NoNode",
	ErrNoAuth: "NoAuth", ErrBadVersion: "BadVersion", ErrNoChildrenForEphemerals: "NoChildrenForEphemerals",
	ErrNodeExists: "NodeExists", ErrNotEmpty: "NotEmpty", ErrSessionExpired: "SessionExpired",
	ErrInvalidCallback: "InvalidCallback", ErrInvalidACL: "InvalidACL", ErrAuthFailed: "AuthFailed",
	ErrSessionMoved: "SessionMoved", ErrNotReadOnly: "NotReadOnly",
	ErrEphemeralOnLocalSession: "EphemeralOnLocalSession", ErrNoWatcher: "NoWatcher",
	ErrRequestTimeout: "RequestTimeout", ErrReconfigDisabled: "ReconfigDisabled",
	ErrSessionClosedRequireSASL: "SessionClosedRequireSaslAuth", ErrQuotaExceeded: "QuotaExceeded",
	ErrThrottledOp: "ThrottledOp",
}

// String returns the code's name as KeeperException.Code spells it.
func (c ErrCode) String() string {
	if s, ok := errNames[c]; ok {
		return s
	}
	return fmt.Sprintf("ErrCode(%d)", int32(c))
}

// Error makes an ErrCode usable as a Go error.
func (c ErrCode) Error() string { return c.String() }

// EventType is a watch event type (Watcher.Event.EventType).
type EventType int32

// Watch event types.
const (
	EventNone                   EventType = -1
	EventNodeCreated            EventType = 1
	EventNodeDeleted            EventType = 2
	EventNodeDataChanged        EventType = 3
	EventNodeChildrenChanged    EventType = 4
	EventDataWatchRemoved       EventType = 5
	EventChildWatchRemoved      EventType = 6
	EventPersistentWatchRemoved EventType = 7
)

// Keeper states carried in watch notifications (Watcher.Event.KeeperState).
const (
	StateDisconnected      int32 = 0
	StateSyncConnected     int32 = 3
	StateAuthFailed        int32 = 4
	StateConnectedReadOnly int32 = 5
	StateExpired           int32 = -112
)

// WatcherType selects watches in checkWatches/removeWatches.
const (
	WatcherChildren            int32 = 1
	WatcherData                int32 = 2
	WatcherAny                 int32 = 3
	WatcherPersistent          int32 = 4
	WatcherPersistentRecursive int32 = 5
)

// AddWatch modes.
const (
	AddWatchPersistent          int32 = 0
	AddWatchPersistentRecursive int32 = 1
)

// Create mode flags (CreateMode.toFlag).
const (
	ModePersistent              int32 = 0
	ModeEphemeral               int32 = 1
	ModePersistentSequential    int32 = 2
	ModeEphemeralSequential     int32 = 3
	ModeContainer               int32 = 4
	ModePersistentWithTTL       int32 = 5
	ModePersistentSequentialTTL int32 = 6
)

// Permission bits (ZooDefs.Perms).
const (
	PermRead   int32 = 1
	PermWrite  int32 = 2
	PermCreate int32 = 4
	PermDelete int32 = 8
	PermAdmin  int32 = 16
	PermAll    int32 = 31
)

// Special ephemeralOwner encodings (EphemeralType).
const (
	// ContainerOwner marks a container node: Long.MIN_VALUE.
	ContainerOwner int64 = -1 << 63
	// TTLOwnerMask is the top byte 0xFF that marks a TTL node; the low 40
	// bits hold the TTL in milliseconds.
	TTLOwnerMask int64 = -1 << 56
	// MaxTTL is the largest TTL that fits the encoding.
	MaxTTL int64 = 1<<40 - 1
)

// TTLOwner encodes a TTL as ZooKeeper stores it in ephemeralOwner.
func TTLOwner(ttl int64) int64 { return TTLOwnerMask | ttl }

// IsTTLOwner reports whether owner encodes a TTL node.
func IsTTLOwner(owner int64) bool { return owner != ContainerOwner && uint64(owner)>>56 == 0xff }

// TTLOf returns the TTL held in a TTL node's ephemeralOwner.
func TTLOf(owner int64) int64 { return owner & MaxTTL }

// IsEphemeralOwner reports whether owner is a real session (an ephemeral
// node), not 0, a container or a TTL marker.
func IsEphemeralOwner(owner int64) bool {
	return owner != 0 && owner != ContainerOwner && !IsTTLOwner(owner)
}

// Well-known ACL lists (ZooDefs.Ids).
var (
	WorldAnyone   = Id{Scheme: "world", Id: "anyone"}
	OpenACLUnsafe = []ACL{{Perms: PermAll, Id: WorldAnyone}}
	ReadACLUnsafe = []ACL{{Perms: PermRead, Id: WorldAnyone}}
	CreatorAllACL = []ACL{{Perms: PermAll, Id: Id{Scheme: "auth", Id: ""}}}
)

// DefaultMaxBuffer is jute.maxbuffer's default: the largest frame a server
// accepts (0xfffff bytes).
const DefaultMaxBuffer = 0xfffff

// Special paths (ZooDefs).
const (
	ZooKeeperPath = "/zookeeper"
	QuotaPath     = "/zookeeper/quota"
	ConfigPath    = "/zookeeper/config"
)
