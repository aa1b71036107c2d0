// Package replication runs a durable Raft node for Paddock.
//
// A Node replicates opaque []byte entries with go.etcd.io/raft/v3 and drives
// a StateMachine through a small interface; it knows nothing about ZooKeeper.
// A standalone server is a one-voter group; an ensemble is the same code with
// more voters and a Transport. Durability comes from a write-ahead log (WAL)
// and snapshot files of our own, described below.
//
// # Run loop
//
// One goroutine owns the raft.RawNode. Propose only queues the entry for
// it and returns. Each turn the loop gathers every queued proposal (up to
// MaxBatchBytes) into one raft message, so everything proposed while the
// previous batch was being fsynced shares the next Ready and its single
// fsync; it then handles the Ready strictly in this order:
//
//  1. a snapshot received from the leader is written to Dir/snap (fsync);
//  2. entries and HardState are written to the WAL with ONE fsync for the
//     whole batch (group commit), when raft says the batch must be synced;
//  3. messages are handed to the Transport;
//  4. committed entries are applied (StateMachine.Apply for normal entries,
//     RawNode.ApplyConfChange for configuration changes);
//  5. a local snapshot is taken if SnapshotEvery entries were applied since
//     the last one;
//  6. Advance.
//
// Nothing is applied or sent before the write that makes it durable has
// succeeded: if a write or fsync fails the node stops with a fatal error
// (Err, Done) and the failed batch is never applied or acknowledged.
//
// # Recovery
//
// Open loads the newest valid snapshot into the StateMachine (Restore),
// replays the WAL after it, and then applies every committed entry it knows
// of before returning. A one-voter group also elects itself inside Open, so a
// standalone node is leader and has applied its whole durable log when Open
// returns.
//
// # WAL format
//
// Dir/wal holds segment files named <16-hex-seq>-<16-hex-first-index>.wal:
// seq counts up from 0 without gaps, and first-index is the raft index the
// segment was opened for (every entry in older segments has a smaller index,
// which is what makes whole-segment deletion after a snapshot safe). A
// segment is rolled once it exceeds about 64 MiB. New segments are written
// to a .tmp name, fsynced, and renamed, so a segment file always starts with
// a complete header.
//
// A segment is a sequence of records, little-endian:
//
//	uint32 length   // of payload
//	uint32 crc      // crc32c (Castagnoli) of type byte followed by payload
//	uint8  type
//	[length]byte payload
//
// Record types:
//
//	1 header     magic "PDKWAL\x00\x01", uint32 version (1), uint64 seq,
//	             uint64 first-index; always the first record of a segment
//	2 entry      a protobuf-marshalled raftpb.Entry
//	3 hardstate  a protobuf-marshalled raftpb.HardState; every segment
//	             repeats the current HardState right after its header
//	4 snapshot   uint64 index, uint64 term, uint8 flags: a snapshot marker.
//	             flags&1 (reset) means a snapshot received from the leader
//	             replaced the log: entries with a greater index written
//	             before the marker are discarded on replay.
//
// Replay reads the segments in order. An entry whose index is not greater
// than the previous one overwrites it and everything after it (raft's
// truncation of a conflicting suffix). A torn, partial or CRC-bad record in
// the LAST segment is treated as an unfinished write: it and everything
// after it are truncated away (logged with file, offset and bytes dropped)
// and never applied. Such data was never acknowledged, because a batch is
// acknowledged only after its fsync returns. The same damage in any other
// segment is a hard error naming the file and offset.
//
// # Snapshot format
//
// Dir/snap holds <16-hex-term>-<16-hex-index>.snap files:
//
//	[8]byte magic "PDKSNAP\x01"
//	uint32  version (1)
//	uint64  index
//	uint64  term
//	uint32  n, then [n]byte protobuf-marshalled raftpb.ConfState
//	uint64  body length
//	uint32  crc32c of the body
//	uint32  crc32c of all header bytes above
//	[body length]byte body, as written by StateMachine.Snapshot
//
// A snapshot that fails any check is skipped in favour of an older one (with
// a log line). The two newest snapshots are kept, and WAL segments are kept
// back to the older of the two, so that falling back to it still finds every
// entry after it.
//
// # Membership
//
// A new data directory is bootstrapped with Config.Peers as voters (raft's
// Bootstrap) or, when Config.Learners is set, with committed ConfChange
// entries for voters then learners written by hand (raft's Bootstrap adds
// voters only). Config.Join skips bootstrapping: the member waits for a
// leader to add it. Membership changes are ConfChange/ConfChangeV2 entries
// (ProposeConfChange); a StateMachine implementing ConfChangeFilter sees
// each one when it commits and may refuse it (it is then not given to
// raft). A committed change that cannot apply to the configuration in
// force is never given to raft either (a ConfChangeRejecter is told).
// With Config.CheckConfChangesOnApply raft's own proposal-time checks,
// which silently drop an untimely change, are off, so every change reaches
// the log and is answered there; Config.VetConfChange lets the leader
// refuse one before it enters the log. Membership reports the applied
// configuration. A leader removed from the group steps down.
//
// # Peer transport
//
// TCPTransport carries raft messages between members. Wiring: create the
// transport, Open the Node with it as Config.Transport, then
// SetHandler(node) (the node needs the transport at Open, the transport
// needs the node to deliver to).
//
// Each member dials each peer it has messages for and keeps one outbound
// "stream" connection per peer; messages travel one way on it (A's messages
// to B on A's connection, B's to A on B's). A per-peer goroutine writes the
// stream from a bounded queue (QueueSize); Send never blocks the raft loop:
// when the queue is full, or the peer is down or in its reconnect backoff
// (50ms doubling to 2s, with jitter), the message is dropped and raft is
// told with ReportUnreachable (coalesced, delivered off the raft loop), as
// in etcd's rafthttp. Raft retransmits. The peer's address comes from
// TransportConfig.Resolve at every connect, and host names are resolved
// again by the dialer each time, so members that move (Kubernetes pods
// changing IP) are found again.
//
// A MsgSnap carries the whole snapshot body in Snapshot.Data (the node keeps
// its newest snapshot in memory when it has a Transport). It is sent on a
// connection of its own, opened for that one message, so tens of megabytes
// to one peer never queue behind or ahead of heartbeats; the receiver steps
// it into raft, then acknowledges; the sender reports SnapshotFinish on the
// acknowledgement and SnapshotFailure on any error. One snapshot per peer is
// in flight at a time; another MsgSnap meanwhile is refused at once with
// SnapshotFailure. Write deadlines (and snapshot read deadlines) are
// IOTimeout per 1 MiB of progress, so size alone never times a transfer out.
//
// With ServerTLS and ClientTLS set, every connection is mutual TLS: the
// acceptor requires and verifies a client certificate, the dialer verifies
// the acceptor against its RootCAs and the host name it dialled.
//
// Block and Unblock cut and restore traffic with given peers at run time.
// They exist for fault-injection tests (partitions) and log loudly.
//
// # Peer wire format
//
// Everything on a peer connection (inside TLS, if enabled) is a frame,
// integers big-endian:
//
//	uint32 length   // of payload; at most 256 MiB on a stream, 4 GiB-1 for a snapshot
//	uint32 crc      // crc32c (Castagnoli) of type byte followed by payload
//	uint8  type     // 1 hello, 2 hello reply, 3 raft message, 4 snapshot ack, 5 probe reply, 6 probe question
//	[length]byte payload
//
// A connection starts with the dialer's hello:
//
//	[8]byte magic "PDKPEER\x00"
//	uint16  protocol version (1)
//	uint8   kind: 1 stream, 2 snapshot, 3 probe, 4 status probe
//	uint64  sender's raft id
//	uint64  receiver's raft id, as the sender believes
//	uint16  n, then [n]byte cluster id
//
// and the acceptor answers with a hello reply, also when refusing:
//
//	[8]byte magic "PDKPEER\x00"
//	uint16  protocol version the acceptor speaks
//	uint8   status: 0 accepted, 1 refused
//	uint64  acceptor's raft id
//	uint16  n, then [n]byte acceptor's cluster id
//	uint16  n, then [n]byte reason for a refusal (UTF-8, for logs)
//
// The acceptor refuses a hello with another version, another cluster id, a
// receiver id that is not its own, or a sender id of 0 or its own, and logs
// a line naming both members, both clusters and the remote address; the
// dialer logs the reason it was given. The dialer checks the reply the same
// way (the acceptor's id must be the one it dialled, its cluster id its
// own), so a member of another cluster, or a stale address now held by
// another member, is never sent to nor heard. Anything that is not a valid
// hello (a stranger on the port) is logged and closed without an answer.
//
// After an accepted hello, a stream carries type-3 frames, each one
// protobuf-marshalled raftpb.Message, until either side closes; the
// receiver closes the stream if a message's From is not the hello's sender
// or its To is not itself. A snapshot connection carries exactly one type-3
// frame holding the MsgSnap, answered by one empty type-4 frame once raft
// has the message; then it is closed. A probe connection carries one
// type-5 frame from the acceptor (TransportConfig.Probe's answer, used by
// members deciding whether to bootstrap; see TCPTransport.Probe); then it
// is closed. A status probe connection carries one type-6 frame from the
// dialer (its question), then the type-5 answer of
// TransportConfig.StatusProbe (TCPTransport.ProbeStatus); members
// that do not serve it refuse the hello as an unknown kind. A newer version of the protocol must
// change the version number; version 1 members refuse it, so mixed-version
// ensembles fail loudly rather than subtly.
package replication
