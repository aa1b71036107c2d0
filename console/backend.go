// Package console is Paddock's web console: a tree browser, a node editor,
// and views of the sessions, watches and ensemble of one member, served by
// the member's admin HTTP server under /console/.
//
// The package holds the HTTP handlers (a JSON API under /console/api/ and
// the page itself, embedded in the binary) and talks to the server only
// through [Backend], so it does not depend on the server package. Reads are
// served from the member's local state with the console user's ids, so
// ACLs apply exactly as they do to a ZooKeeper client; writes go through
// the replicated log like any client write. See docs/CONSOLE.md.
package console

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// Backend is what the console needs from a server.
type Backend interface {
	// Read answers a read request (ExistsRequest, GetDataRequest,
	// GetChildren2Request, GetACLRequest, GetAllChildrenNumberRequest)
	// from the local state with the given ids, as
	// statemachine.State.Read does, with the zxid it was served at.
	Read(auth []proto.Id, op proto.OpCode, req proto.Record) (proto.Record, int64, proto.ErrCode)
	// OpenSession creates a session (a log entry) for the console's
	// writes and returns its id.
	OpenSession(ctx context.Context, timeout time.Duration) (int64, error)
	// Submit proposes a write on behalf of session with the given ids and
	// waits until it is applied, returning the reply as a client would
	// see it. err is set when the outcome is unknown (timeout, shutdown).
	Submit(ctx context.Context, session int64, op proto.OpCode, req proto.Record, auth []proto.Id) (resp proto.Record, zxid int64, code proto.ErrCode, err error)
	// Identify maps an HTTP request's peer address, its verified TLS
	// client certificate (nil without one) and its (optional) basic
	// credentials to ZooKeeper ids: ip:<peer>, x509:<subject> (and super
	// for the x509 super user), digest:<user>:<hash> and super when the
	// credentials match the super digest. It returns an error when the
	// server enforces authentication the request lacks.
	Identify(remoteAddr string, peer *x509.Certificate, user, password string, hasCredentials bool) ([]proto.Id, error)
	// Overview describes this member.
	Overview() Overview
	// Sessions lists the live sessions.
	Sessions() []Session
	// Watches lists the watches this member holds, by path and by
	// session.
	Watches() Watches
	// Ensemble describes the ensemble as this member sees it.
	Ensemble() Ensemble
}

// Overview is the header of every page.
type Overview struct {
	ServerID    uint64 `json:"serverId"`
	Mode        string `json:"mode"`
	Version     string `json:"version"`
	ZxidHex     string `json:"zxid"`
	Zxid        int64  `json:"zxidDec"`
	Nodes       int    `json:"nodes"`
	Sessions    int    `json:"sessions"`
	Connections int    `json:"connections"`
	Watches     int    `json:"watches"`
	Ready       bool   `json:"ready"`
	NotReady    string `json:"notReady,omitempty"`
	Uptime      string `json:"uptime"`
	// ExtendedTypes: TTL nodes may be created.
	ExtendedTypes bool `json:"extendedTypes"`
}

// Session is one live session.
type Session struct {
	ID         string   `json:"id"`
	TimeoutMs  int32    `json:"timeoutMs"`
	Ephemerals []string `json:"ephemerals"`
	// Connected is the remote address of the connection holding the
	// session on this member, or "".
	Connected string `json:"connected,omitempty"`
	// ExpiresInMs is the time left before this member's tracker expires
	// the session (-1 when it does not track it).
	ExpiresInMs int64 `json:"expiresInMs"`
	// Watches counts the paths the session watches on this member.
	Watches int `json:"watches"`
	// Console marks the session the console writes with.
	Console bool `json:"console,omitempty"`
}

// Watches are the watches one member holds (watches live on the member
// that holds the session's connection).
type Watches struct {
	ByPath    []PathWatches    `json:"byPath"`
	BySession []SessionWatches `json:"bySession"`
	Total     int              `json:"total"`
}

// PathWatches are the sessions watching one path.
type PathWatches struct {
	Path     string   `json:"path"`
	Sessions []string `json:"sessions"`
}

// SessionWatches are the paths one session watches.
type SessionWatches struct {
	Session string   `json:"session"`
	Paths   []string `json:"paths"`
}

// Ensemble is the ensemble as one member sees it.
type Ensemble struct {
	Self       uint64   `json:"self"`
	Mode       string   `json:"mode"`
	Standalone bool     `json:"standalone"`
	Leader     uint64   `json:"leader"`
	Term       uint64   `json:"term"`
	Applied    uint64   `json:"applied"`
	Committed  uint64   `json:"committed"`
	ConfigText string   `json:"configText,omitempty"`
	Members    []Member `json:"members"`
	// LeaderChanges are the leader changes this member saw since it
	// started, newest first.
	LeaderChanges []LeaderChange `json:"leaderChanges"`
	// Authoritative: this member leads, so per-member progress is known.
	Authoritative bool `json:"authoritative"`
}

// Member is one member of the ensemble.
type Member struct {
	ID         uint64 `json:"id"`
	Role       string `json:"role"`  // participant or observer
	State      string `json:"state"` // leader, follower, observer, standalone, unknown
	PeerAddr   string `json:"peerAddr,omitempty"`
	ClientAddr string `json:"clientAddr,omitempty"`
	Self       bool   `json:"self"`
	// Match is the highest log index (zxid) known replicated to the
	// member: known on the leader for every member, elsewhere for self.
	Match   uint64 `json:"match"`
	MatchOK bool   `json:"matchKnown"`
	// Lag is the leader's last index minus Match.
	Lag uint64 `json:"lag"`
	// Health: "ok", "lagging", "unreachable" or "unknown".
	Health string `json:"health"`
	// Progress is Raft's replication state for the member (leader only).
	Progress string `json:"progress,omitempty"`
}

// LeaderChange is one observed change of leader.
type LeaderChange struct {
	At     time.Time `json:"at"`
	Leader uint64    `json:"leader"` // 0: no leader
	Term   uint64    `json:"term"`
}
