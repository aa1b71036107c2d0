package etcdkv

import (
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// BenchmarkCompact100k is one kube-style compaction: 100k keys each
// written twice, compacted to the current revision (100k versions
// dropped). With view, a snapshot view is still out (a snapshot being
// written), so every key entry it touches is copied on write first: the
// worst case for the copy-on-write bookkeeping.
func BenchmarkCompact100k(b *testing.B) {
	for _, view := range []bool{false, true} {
		b.Run(fmt.Sprintf("view=%v", view), func(b *testing.B) {
			const keys = 100000
			val := make([]byte, 64)
			puts := make([][]byte, keys)
			for i := range puts {
				puts[i] = body(b, &pb.PutRequest{Key: []byte(fmt.Sprintf("/registry/pods/ns-%03d/pod-%07d", i%200, i)), Value: val})
			}
			for b.Loop() {
				b.StopTimer()
				s := New()
				zxid := int64(1)
				for round := 0; round < 2; round++ {
					for _, p := range puts {
						zxid++
						s.Apply(zxid, OpPut, p)
					}
				}
				if view {
					s.View()
				}
				c := body(b, &pb.CompactionRequest{Revision: s.Rev()})
				b.StartTimer()
				zxid++
				if res := s.Apply(zxid, OpCompact, c); res.Err != nil {
					b.Fatal(res.Err)
				}
			}
		})
	}
}
