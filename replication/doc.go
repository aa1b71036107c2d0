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
package replication
