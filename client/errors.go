package client

import (
	"errors"
	"fmt"

	"github.com/paddockhq/paddock/proto"
)

// Error is a ZooKeeper error code as a Go error. Every code a server can
// put in a reply maps to one Error value, and the Err* variables below name
// them, so callers test for a condition with errors.Is:
//
//	if errors.Is(err, client.ErrNoNode) { ... }
//
// errors.Is(err, proto.ErrNoNode) works too, for code that speaks in wire
// codes.
type Error proto.ErrCode

// Code returns the wire error code.
func (e Error) Code() proto.ErrCode { return proto.ErrCode(e) }

// Error returns a short English description of the code.
func (e Error) Error() string {
	if m, ok := errMessages[proto.ErrCode(e)]; ok {
		return "zk: " + m
	}
	return fmt.Sprintf("zk: unknown error %d", int32(e))
}

// Is makes errors.Is(err, proto.ErrXxx) match as well as errors.Is(err,
// client.ErrXxx).
func (e Error) Is(target error) bool {
	c, ok := target.(proto.ErrCode)
	return ok && c == proto.ErrCode(e)
}

var errMessages = map[proto.ErrCode]string{
	proto.ErrSystemError:              "system error",
	proto.ErrRuntimeInconsistency:     "runtime inconsistency (an earlier operation of the multi failed)",
	proto.ErrDataInconsistency:        "data inconsistency",
	proto.ErrConnectionLoss:           "connection to the server lost",
	proto.ErrMarshallingError:         "error marshalling the request",
	proto.ErrUnimplemented:            "operation not implemented by the server",
	proto.ErrOperationTimeout:         "operation timed out",
	proto.ErrBadArguments:             "bad arguments",
	proto.ErrUnknownSession:           "unknown session",
	proto.ErrNewConfigNoQuorum:        "no quorum of the new configuration is connected and synced",
	proto.ErrReconfigInProgress:       "another reconfiguration is in progress",
	proto.ErrAPIError:                 "API error",
	proto.ErrNoNode:                   "node does not exist",
	proto.ErrNoAuth:                   "not authorized",
	proto.ErrBadVersion:               "version does not match",
	proto.ErrNoChildrenForEphemerals:  "ephemeral nodes may not have children",
	proto.ErrNodeExists:               "node already exists",
	proto.ErrNotEmpty:                 "node has children",
	proto.ErrSessionExpired:           "session expired",
	proto.ErrInvalidCallback:          "invalid callback",
	proto.ErrInvalidACL:               "invalid ACL",
	proto.ErrAuthFailed:               "authentication failed",
	proto.ErrSessionMoved:             "session moved to another server",
	proto.ErrNotReadOnly:              "server is read-only: writes are refused",
	proto.ErrEphemeralOnLocalSession:  "ephemeral node on a local session",
	proto.ErrNoWatcher:                "no such watcher",
	proto.ErrRequestTimeout:           "request timed out",
	proto.ErrReconfigDisabled:         "reconfig is disabled on the server",
	proto.ErrSessionClosedRequireSASL: "session closed: SASL authentication is required",
	proto.ErrQuotaExceeded:            "quota exceeded",
	proto.ErrThrottledOp:              "operation throttled by the server",
}

// The errors a call can return, one per ZooKeeper error code. Test for them
// with errors.Is: the error a call returns usually wraps one of these in an
// *OpError that names the operation and path.
var (
	ErrSystemError              error = Error(proto.ErrSystemError)
	ErrRuntimeInconsistency     error = Error(proto.ErrRuntimeInconsistency)
	ErrDataInconsistency        error = Error(proto.ErrDataInconsistency)
	ErrConnectionLoss           error = Error(proto.ErrConnectionLoss)
	ErrMarshallingError         error = Error(proto.ErrMarshallingError)
	ErrUnimplemented            error = Error(proto.ErrUnimplemented)
	ErrOperationTimeout         error = Error(proto.ErrOperationTimeout)
	ErrBadArguments             error = Error(proto.ErrBadArguments)
	ErrUnknownSession           error = Error(proto.ErrUnknownSession)
	ErrNewConfigNoQuorum        error = Error(proto.ErrNewConfigNoQuorum)
	ErrReconfigInProgress       error = Error(proto.ErrReconfigInProgress)
	ErrAPIError                 error = Error(proto.ErrAPIError)
	ErrNoNode                   error = Error(proto.ErrNoNode)
	ErrNoAuth                   error = Error(proto.ErrNoAuth)
	ErrBadVersion               error = Error(proto.ErrBadVersion)
	ErrNoChildrenForEphemerals  error = Error(proto.ErrNoChildrenForEphemerals)
	ErrNodeExists               error = Error(proto.ErrNodeExists)
	ErrNotEmpty                 error = Error(proto.ErrNotEmpty)
	ErrSessionExpired           error = Error(proto.ErrSessionExpired)
	ErrInvalidCallback          error = Error(proto.ErrInvalidCallback)
	ErrInvalidACL               error = Error(proto.ErrInvalidACL)
	ErrAuthFailed               error = Error(proto.ErrAuthFailed)
	ErrSessionMoved             error = Error(proto.ErrSessionMoved)
	ErrNotReadOnly              error = Error(proto.ErrNotReadOnly)
	ErrEphemeralOnLocalSession  error = Error(proto.ErrEphemeralOnLocalSession)
	ErrNoWatcher                error = Error(proto.ErrNoWatcher)
	ErrRequestTimeout           error = Error(proto.ErrRequestTimeout)
	ErrReconfigDisabled         error = Error(proto.ErrReconfigDisabled)
	ErrSessionClosedRequireSASL error = Error(proto.ErrSessionClosedRequireSASL)
	ErrQuotaExceeded            error = Error(proto.ErrQuotaExceeded)
	ErrThrottledOp              error = Error(proto.ErrThrottledOp)
)

// ErrClosed is returned by calls on a Client after Close.
var ErrClosed = errors.New("zk: client is closed")

// ErrInvalidPath is returned, wrapped with the reason, for a path the
// client refuses to send (ZooKeeper's PathUtils rules).
var ErrInvalidPath = errors.New("zk: invalid path")

// OpError describes a failed operation: what was asked, on which path, and
// why. Unwrap gives the cause (an Error such as ErrNoNode, ErrClosed, a
// context error or a network error).
type OpError struct {
	// Op is the operation, in ZooKeeper's naming ("create", "getData",
	// "multi", ...).
	Op string
	// Path is the path as the caller gave it (relative to any chroot);
	// empty for operations without one.
	Path string
	// Err is the cause.
	Err error
}

// Error returns "zk: <op> <path>: <cause>".
func (e *OpError) Error() string {
	msg := e.Err.Error()
	if len(msg) > 4 && msg[:4] == "zk: " {
		msg = msg[4:]
	}
	if e.Path == "" {
		return "zk: " + e.Op + ": " + msg
	}
	return "zk: " + e.Op + " " + e.Path + ": " + msg
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// ErrorCode returns the ZooKeeper error code behind err: ErrOK for nil,
// the code of a wrapped Error, ErrSessionExpired/ErrConnectionLoss-like
// codes for the client-side conditions that have one, and ErrSystemError
// for anything else (a context or network error). Tools that print or
// exit with ZooKeeper codes use it.
func ErrorCode(err error) proto.ErrCode {
	if err == nil {
		return proto.ErrOK
	}
	var e Error
	if errors.As(err, &e) {
		return proto.ErrCode(e)
	}
	var c proto.ErrCode
	if errors.As(err, &c) {
		return c
	}
	return proto.ErrSystemError
}

func codeErr(code int32) error {
	if code == 0 {
		return nil
	}
	return Error(code)
}
