package main

import "testing"

// TestGCPercentFor: the GC headroom is 50 % of a small live heap, capped
// at 256 MiB as the heap grows, never below 10 %.
func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 50},
		{100 << 20, 50},
		{512 << 20, 50},
		{1 << 30, 25},
		{2 << 30, 12},
		{2560 << 20, 10},
		{8 << 30, 10},
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}
