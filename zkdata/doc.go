// Package zkdata reads Apache ZooKeeper's data directory and turns it into
// Paddock state: the importer behind `paddock import`, and the JSON-lines
// exporter behind `paddock export`.
//
// # What it reads
//
// A ZooKeeper data directory holds, under version-2/, snapshot files
// (snapshot.<hex zxid>, optionally .gz or .snappy compressed) and
// transaction logs (log.<hex zxid>). Both start with a FileHeader
// {int magic; int version; long dbid}: "ZKSN" for snapshots, "ZKLG" for
// logs, version 2.
//
// A snapshot is, in jute encoding and under one running Adler32 checksum of
// the uncompressed bytes: the header; the session table (count, then
// {long id; int timeout}); the ACL cache (count, then {long id;
// vector<ACL>}); the nodes in pre-order as {ustring path; buffer data; long
// aclId; StatPersisted}, the root's path being ""; the sentinel path "/";
// then a seal {long adler32; ustring "/"}. Newer servers append a ZxidDigest
// {long zxid; int version; long digest (a hex ustring before version 2)}
// and a second seal, and 3.9 may append {long lastProcessedZxid} and a third
// seal. Compression wraps the whole stream: gzip, or snappy-java's stream
// framing (see [NewSnappyReader]).
//
// A transaction log is the header followed by records
//
//	long   adler32 of the txn bytes
//	int    length
//	[length]byte txn: TxnHeader, the type's record, optional TxnDigest
//	byte   0x42 ('B')
//
// and then zeros up to the preallocated size; a record length of 0 marks
// the end.
//
// # How it replays
//
// [Restore] follows FileTxnSnapLog.restore: the newest snapshot whose
// checksums verify (an unreadable one falls back to the next older), then
// every logged txn with a zxid above the snapshot's name, starting from the
// last log file that begins at or before it. Because snapshots are fuzzy
// (taken while txns keep being applied), the txns are replayed with the
// tolerances of DataTree.processTxn: a create whose node exists, a delete
// or setData whose node is gone, are ignored, with the parent's cversion
// and pzxid fixed up as ZooKeeper does; a multi containing an error txn
// changes nothing. Ephemerals whose session is not in the session table
// are removed at the end, as ZooKeeperServer.loadData does.
//
// Unlike ZooKeeper, which quietly treats a torn or truncated log record as
// the end of the log, the reader reports it as an error naming the file and
// offset: an import must never silently lose committed transactions.
// [RestoreOptions.AllowTornTail] accepts a torn last record of the last
// log, the one case a crash can produce.
package zkdata
