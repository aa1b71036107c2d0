package statemachine

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/paddockhq/paddock/proto"
)

// Quotas, as ZooKeeper keeps them (DataTree, Quotas, StatsTrack):
//
//   - a quota on /a is the node /zookeeper/quota/a/zookeeper_limits, whose
//     data is a StatsTrack: "count=<n>,bytes=<n>" (-1 = no limit), and
//     since 3.7 optionally "=;byteHardLimit=<n>;countHardLimit=<n>";
//   - /zookeeper/quota/a/zookeeper_stats holds the usage of the subtree
//     under /a (the node itself included) in the same format. The server
//     keeps it up to date when it applies a create, delete or setData
//     below /a: it rewrites the data in place, without touching the stats
//     node's stat (mzxid, mtime and version stay as they were, exactly as
//     DataTree.updateQuotaStat does, and approximate_data_size is not
//     adjusted either). Creating the stats node recounts the subtree
//     (DataTree.updateQuotaForPath), whatever data the client sent;
//   - a write is counted against the deepest quota on its path;
//   - soft limits (count, bytes) produce warnings; hard limits
//     (countHardLimit, byteHardLimit) refuse a create or setData with
//     QuotaExceeded when Options.EnforceQuota is set (3.7+,
//     ZooKeeperServer.checkQuota), checked before anything changes.
//
// Differences, all for determinism: the check runs at apply time against
// the state including the earlier ops of the same multi (ZooKeeper checks
// in PrepRequestProcessor against the last committed tree); a quota is
// active exactly while its zookeeper_limits node exists (ZooKeeper's path
// trie also drops the quotas below a deleted one until the next restart);
// quotas on paths under /zookeeper are ignored; a snapshot restores the
// stats nodes as they were written (ZooKeeper recounts them on load).

// Names of the quota nodes (Quotas.limitNode, Quotas.statNode).
const (
	QuotaLimitNode = "zookeeper_limits"
	QuotaStatNode  = "zookeeper_stats"
)

// StatsTrack is ZooKeeper's StatsTrack: the content of a quota's limits
// or stats node, a map from "count", "bytes", "countHardLimit",
// "byteHardLimit" (and any other key) to a number.
type StatsTrack map[string]int64

var pairSeparator = regexp.MustCompile(`[,;]+`)

// ParseStatsTrack parses StatsTrack text ("count=1,bytes=2",
// "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2"), as the
// StatsTrack(String) constructor does. Text Java would fail on is an error.
func ParseStatsTrack(s string) (StatsTrack, error) {
	st := StatsTrack{}
	if s == "" {
		return st, nil
	}
	pairs := javaSplit(pairSeparator.Split(s, -1))
	for _, pair := range pairs {
		kv := javaSplit(strings.Split(pair, "="))
		if len(kv) < 2 {
			return nil, fmt.Errorf("quota: malformed pair %q in %q", pair, s)
		}
		v := kv[1]
		if v == "" {
			v = "-1"
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("quota: %q is not a number in %q", v, s)
		}
		st[kv[0]] = n
	}
	return st, nil
}

// javaSplit drops trailing empty strings, as String.split does.
func javaSplit(parts []string) []string {
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

func (st StatsTrack) get(key string) int64 {
	if v, ok := st[key]; ok {
		return v
	}
	return -1
}

// Count is the node count (-1 when absent).
func (st StatsTrack) Count() int64 { return st.get("count") }

// Bytes is the byte count (-1 when absent).
func (st StatsTrack) Bytes() int64 { return st.get("bytes") }

// CountHardLimit is countHardLimit (-1 when absent).
func (st StatsTrack) CountHardLimit() int64 { return st.get("countHardLimit") }

// ByteHardLimit is byteHardLimit (-1 when absent).
func (st StatsTrack) ByteHardLimit() int64 { return st.get("byteHardLimit") }

// String formats as StatsTrack.toString: count and bytes first, then, after
// an extra '=' that old parsers ignore, the other keys sorted.
func (st StatsTrack) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "count=%d,bytes=%d", st.Count(), st.Bytes())
	var keys []string
	for k := range st {
		if k != "count" && k != "bytes" {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		b.WriteByte('=')
		for _, k := range keys {
			fmt.Fprintf(&b, ";%s=%d", k, st[k])
		}
	}
	return b.String()
}

// quotaPrefix returns the deepest path on the way from the root to path
// (path included) that has a quota, or "" (DataTree.getMaxPrefixWithQuota).
func (s *State) quotaPrefix(path string) string {
	q := s.nodes[proto.QuotaPath]
	if q == nil || len(q.children) == 0 {
		return ""
	}
	if path == proto.ZooKeeperPath || strings.HasPrefix(path, proto.ZooKeeperPath+"/") {
		return ""
	}
	for p := path; p != "/" && p != ""; p = parentOf(p) {
		if s.nodes[proto.QuotaPath+p+"/"+QuotaLimitNode] != nil {
			return p
		}
	}
	return ""
}

// quotaOwner returns the real path whose quota a node directly under
// /zookeeper/quota/... belongs to, given that node's parent, or "".
func quotaOwner(parentPath string) string {
	if !strings.HasPrefix(parentPath, proto.QuotaPath+"/") {
		return ""
	}
	return strings.TrimPrefix(parentPath, proto.QuotaPath)
}

// checkQuota is ZooKeeperServer.checkQuota for a create (countDiff 1) or
// a setData (countDiff 0) of path changing its data size by bytesDiff. It
// records warnings for exceeded limits and, when quotas are enforced,
// refuses a write that would exceed a hard limit.
func (s *State) checkQuota(t *txn, path string, bytesDiff, countDiff int64) proto.ErrCode {
	prefix := s.quotaPrefix(path)
	if prefix == "" {
		return proto.ErrOK
	}
	limitNode := s.nodes[proto.QuotaPath+prefix+"/"+QuotaLimitNode]
	limits, err := ParseStatsTrack(string(limitNode.data))
	if err != nil {
		t.warn("quota limits of %s unreadable, not checked: %v", prefix, err)
		return proto.ErrOK
	}
	checkCount := countDiff != 0 && (limits.Count() > -1 || limits.CountHardLimit() > -1)
	checkBytes := bytesDiff != 0 && (limits.Bytes() > -1 || limits.ByteHardLimit() > -1)
	if !checkCount && !checkBytes {
		return proto.ErrOK
	}
	statNode := s.nodes[proto.QuotaPath+prefix+"/"+QuotaStatNode]
	if statNode == nil {
		return proto.ErrOK
	}
	current, err := ParseStatsTrack(string(statNode.data))
	if err != nil {
		t.warn("quota stats of %s unreadable, not checked: %v", prefix, err)
		return proto.ErrOK
	}
	check := func(what string, newValue, soft, hard int64) proto.ErrCode {
		isHard := hard > -1
		limit := soft
		if isHard {
			limit = hard
		}
		if newValue <= limit {
			return proto.ErrOK
		}
		kind := "soft"
		if isHard {
			kind = "hard"
		}
		if isHard && s.opts.EnforceQuota {
			t.warn("Quota exceeded: %s [current %s=%d, %s%sLimit=%d], refused with QuotaExceeded", prefix, what, newValue, kind, capital(what), limit)
			return proto.ErrQuotaExceeded
		}
		t.warn("Quota exceeded: %s [current %s=%d, %s%sLimit=%d]", prefix, what, newValue, kind, capital(what), limit)
		return proto.ErrOK
	}
	if checkCount {
		if code := check("count", current.Count()+countDiff, limits.Count(), limits.CountHardLimit()); code != proto.ErrOK {
			return code
		}
	}
	if checkBytes {
		if code := check("bytes", current.Bytes()+bytesDiff, limits.Bytes(), limits.ByteHardLimit()); code != proto.ErrOK {
			return code
		}
	}
	return proto.ErrOK
}

func capital(what string) string {
	if what == "count" {
		return "Count"
	}
	return "Byte"
}

// warn records a warning for the server to log.
func (t *txn) warn(format string, args ...any) {
	t.warnings = append(t.warnings, fmt.Sprintf(format, args...))
}

// quotaCreated is the quota part of DataTree.createNode: a new stats node
// is filled with a count of its subtree, and the new node is counted
// against the quota above it.
func (s *State) quotaCreated(t *txn, path, parentPath string, n *node) {
	name := path[strings.LastIndexByte(path, '/')+1:]
	if owner := quotaOwner(parentPath); owner != "" && name == QuotaStatNode {
		count, bytes := s.subtreeUsage(owner)
		s.rewriteQuotaData(t, n, StatsTrack{"count": count, "bytes": bytes}.String())
	}
	if prefix := s.quotaPrefix(path); prefix != "" {
		s.updateQuotaStat(t, prefix, int64(len(n.data)), 1)
	}
}

// subtreeUsage is DataTree.getCounts: the nodes and data bytes of the
// subtree at path, the node itself included.
func (s *State) subtreeUsage(path string) (count, bytes int64) {
	n := s.nodes[path]
	if n == nil {
		return 0, 0
	}
	count, bytes = 1, int64(len(n.data))
	for child := range n.children {
		c, b := s.subtreeUsage(joinPath(path, child))
		count += c
		bytes += b
	}
	return count, bytes
}

func joinPath(parent, child string) string {
	if parent == "/" {
		return "/" + child
	}
	return parent + "/" + child
}

// updateQuotaStat is DataTree.updateQuotaStat: the stats node of prefix
// gets count+countDiff and bytes+bytesDiff, in place.
func (s *State) updateQuotaStat(t *txn, prefix string, bytesDiff, countDiff int64) {
	statNode := s.nodes[proto.QuotaPath+prefix+"/"+QuotaStatNode]
	if statNode == nil {
		return
	}
	st, err := ParseStatsTrack(string(statNode.data))
	if err != nil {
		t.warn("quota stats of %s unreadable, not updated: %v", prefix, err)
		return
	}
	st["count"] = st.Count() + countDiff
	st["bytes"] = st.Bytes() + bytesDiff
	s.rewriteQuotaData(t, statNode, st.String())
}

// rewriteQuotaData replaces a stats node's data without changing its stat
// or the approximate data size, undoably.
func (s *State) rewriteQuotaData(t *txn, n *node, data string) {
	old := n.data
	n.data = []byte(data)
	t.undo = append(t.undo, func() { n.data = old })
}

// Quota is one quota and its usage, as the quota metrics report them.
type Quota struct {
	// Path is the path under quota.
	Path string
	// Limits and Usage are the parsed limits and stats nodes; nil when
	// the node is missing or unreadable.
	Limits, Usage StatsTrack
}

// Quotas lists the quotas under /zookeeper/quota, ordered by path.
func (s *State) Quotas() []Quota {
	byPath := map[string]*Quota{}
	var walk func(path string)
	walk = func(path string) {
		n := s.nodes[path]
		if n == nil {
			return
		}
		for child := range n.children {
			p := path + "/" + child
			if child == QuotaLimitNode || child == QuotaStatNode {
				owner := strings.TrimPrefix(path, proto.QuotaPath)
				if owner == "" {
					continue
				}
				q := byPath[owner]
				if q == nil {
					q = &Quota{Path: owner}
					byPath[owner] = q
				}
				st, err := ParseStatsTrack(string(s.nodes[p].data))
				if err != nil {
					continue
				}
				if child == QuotaLimitNode {
					q.Limits = st
				} else {
					q.Usage = st
				}
				continue
			}
			walk(p)
		}
	}
	walk(proto.QuotaPath)
	out := make([]Quota, 0, len(byPath))
	for _, q := range byPath {
		if q.Limits != nil {
			out = append(out, *q)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
