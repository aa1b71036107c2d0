// Package client is a Go client for ZooKeeper's wire protocol, for
// Paddock and for Apache ZooKeeper alike.
//
// # Sessions
//
// Connect establishes a session with one server of a list and keeps it:
// when the connection breaks the client tries the servers again (in a
// shuffled order, with backoff), resumes the session with its id and
// password, re-sends its credentials and re-arms its watches. The timing
// follows ZooKeeper's own client: with a negotiated session timeout T it
// pings after T/3 without traffic and gives a server up after 2T/3 of
// silence. A server that has applied less than the client has already
// seen (LastZxid) refuses it, so reads never go back in time.
//
// Between connections, calls fail at once with ErrConnectionLoss instead
// of waiting: an operation that failed that way may or may not have been
// applied, and only the caller knows whether it is safe to retry. Requests
// in flight when a connection breaks fail the same way. WaitConnected
// waits for the next connection.
//
// New is Connect without the wait: it returns at once and connects in the
// background, as the Java client's constructor does, for tools that must
// start while the servers are down.
//
// If the session expires (the servers heard nothing for T), the client
// moves to StateExpired and stays there: its ephemeral nodes are gone and
// every call returns ErrSessionExpired. NewSession connects a fresh
// client with the same configuration. The state callback (WithStateCallback)
// reports every transition.
//
// # Operations
//
// Every call takes a context, which bounds the wait for the reply.
// Concurrent calls are pipelined on the one connection. Paths are
// absolute; with a chroot ("host:2181/app" or WithChroot) they are
// relative to it. Errors wrap the Err* sentinels (ErrNoNode,
// ErrNodeExists, ErrBadVersion, ...), one per ZooKeeper error code:
// test them with errors.Is.
//
// # Watches
//
// GetW, ExistsW and ChildrenW set one-shot watches and return a channel
// that receives exactly one event and is then closed. The watch survives
// reconnects: after a reconnect the client tells the server which watches
// it holds and the last zxid it saw (SetWatches), and the server fires at
// once those whose node changed meanwhile. A watch ends with
// EventNotWatching if the session ends first.
//
// AddWatch sets a persistent (optionally recursive) watch and returns a
// Watcher whose channel carries every event until Remove.
//
// WithSessionEvents adds the session-wide watcher, SessionEvents: one
// ordered stream of every state change and every watch event of the
// session, as the default Watcher of ZooKeeper's Java client receives
// them (zkCli's printwatches prints that stream; `paddock cli` is built
// on this one). It buffers without bound and is read with a context
// (Next) or without waiting (TryNext).
//
// ZooKeeper's ordering promise holds through the client: an event is in
// its channel, and in the session stream, before the reply to any later
// request is returned, so a client that reads new data has already been
// given the event for it.
package client
