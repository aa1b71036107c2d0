package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The garbage collector's headroom for a server whose state is all in
// memory. Go's default lets the heap grow to twice the live data before
// collecting (GOGC=100); Paddock starts at 1.5x (GOGC=50, set in main). For
// a large state even 50 % is a lot of memory that holds nothing: with a
// 2 GiB etcd keyspace it is another GiB. So the headroom is capped at
// gcHeadroom bytes (with a floor of minGCPercent percent): the percentage
// falls as the live heap grows. Most of a large state is values, which the
// collector does not scan, so collecting more often costs little CPU; the
// measurement is in docs/PERFORMANCE.md ("etcd keyspace memory").
//
// After an etcd compaction (which drops the history of every key changed
// since the previous one: kube-apiserver compacts every 5 minutes), and
// when the live heap has shrunk a lot since the last look (a big delete),
// a collection runs and the freed pages are given back to the OS at once
// (debug.FreeOSMemory), instead of waiting for the next collection and the
// background scavenger's slow pace, so the resident set follows the state
// down too. At most once per minReleaseGap.
const (
	maxGCPercent = 50
	minGCPercent = 10
	gcHeadroom   = 256 << 20
	// releaseDrop is the fall of the live heap that triggers an immediate
	// return of free memory to the OS.
	releaseDrop   = 128 << 20
	minReleaseGap = 30 * time.Second
)

// gcPercentFor is the GC percentage for a live heap of live bytes.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	p := int(gcHeadroom * 100 / live)
	return max(minGCPercent, min(maxGCPercent, p))
}

// governMemory adjusts the GC percentage to the live heap every interval
// until ctx ends, and returns memory to the OS when compactRev (the etcd
// keyspace's compact revision) moves or the live heap falls. It does
// nothing when GOGC is set in the environment (the operator's choice
// wins).
func governMemory(ctx context.Context, interval time.Duration, compactRev func() int64) {
	if os.Getenv("GOGC") != "" {
		return
	}
	lastCompact := compactRev()
	var lastRelease time.Time
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := maxGCPercent
	var lastLive uint64
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		live := sample[0].Value.Uint64()
		if p := gcPercentFor(live); p != current && (p-current >= 5 || current-p >= 5 || p == maxGCPercent || p == minGCPercent) {
			debug.SetGCPercent(p)
			current = p
		}
		cr := compactRev()
		if (cr != lastCompact || lastLive > live+releaseDrop) && time.Since(lastRelease) >= minReleaseGap {
			lastCompact, lastRelease = cr, time.Now()
			debug.FreeOSMemory()
			metrics.Read(sample)
			live = sample[0].Value.Uint64()
		}
		lastLive = live
	}
}
