package server

import (
	"sort"
	"unicode/utf16"

	"github.com/paddockhq/paddock/proto"
)

// javaSetOrder orders a connection's auth ids the way ZooKeeper iterates
// them. ServerCnxn keeps them in a ConcurrentHashMap-backed set, so
// whoAmI and the expansion of "auth" ACL entries list them in hash-bucket
// order, not insertion order; clients (and our differential tests) see
// that order in getACL results. For the handful of ids a connection holds
// (a table of 16 buckets up to 12 ids) this reproduces it exactly: bucket
// by Id.hashCode spread as ConcurrentHashMap.spread does, insertion order
// within a bucket.
func javaSetOrder(ids []proto.Id) []proto.Id {
	n := 16
	for len(ids) > n*3/4 {
		n *= 2
	}
	bucket := make(map[proto.Id]int, len(ids))
	for _, id := range ids {
		h := 17
		h = 37*h + javaStringHash(id.Scheme)
		h = 37*h + javaStringHash(id.Id)
		u := uint32(int32(h))
		spread := (u ^ (u >> 16)) & 0x7fffffff
		bucket[id] = int(spread) & (n - 1)
	}
	out := append([]proto.Id(nil), ids...)
	sort.SliceStable(out, func(i, j int) bool { return bucket[out[i]] < bucket[out[j]] })
	return out
}

// javaStringHash is Java's String.hashCode over UTF-16 code units.
func javaStringHash(s string) int {
	var h int32
	for _, c := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(c)
	}
	return int(h)
}
