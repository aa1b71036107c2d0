package replication

import (
	"context"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchSM counts applied entries and wakes the proposer waiting for an id.
type benchSM struct {
	applied atomic.Uint64
	waiters sync.Map // uint64 id -> chan struct{}
}

func (s *benchSM) Apply(index, term uint64, data []byte) {
	s.applied.Add(1)
	if ch, ok := s.waiters.LoadAndDelete(binary.LittleEndian.Uint64(data)); ok {
		close(ch.(chan struct{}))
	}
}
func (s *benchSM) Snapshot(w io.Writer) error { _, err := w.Write([]byte("x")); return err }
func (s *benchSM) Restore(r io.Reader) error  { _, err := io.Copy(io.Discard, r); return err }

// BenchmarkProposeParallel measures durable throughput of 100-byte entries
// with fsync on, reporting entries per fsync (the group commit factor).
//
//   - pipelined: Propose returns once raft has the entry; the timer stops
//     when every entry has been applied (fsynced and committed).
//   - wait: every proposer waits for its own entry to apply before the
//     next one, like a client waiting for its response (256 proposers).
func BenchmarkProposeParallel(b *testing.B) {
	for _, mode := range []string{"pipelined", "wait"} {
		b.Run(mode, func(b *testing.B) {
			cfg := testConfig(b.TempDir())
			cfg.TickInterval = 100 * time.Millisecond
			sm := &benchSM{}
			n := mustOpen(b, cfg, sm)
			defer n.Close()
			var ids atomic.Uint64
			start := n.Stats()
			if mode == "wait" {
				b.SetParallelism(128)
			}
			b.SetBytes(100)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				data := make([]byte, 100)
				for pb.Next() {
					id := ids.Add(1)
					d := append([]byte(nil), data...)
					binary.LittleEndian.PutUint64(d, id)
					var ch chan struct{}
					if mode == "wait" {
						ch = make(chan struct{})
						sm.waiters.Store(id, ch)
					}
					if err := n.Propose(context.Background(), d); err != nil {
						b.Error(err)
						return
					}
					if ch != nil {
						<-ch
					}
				}
			})
			for sm.applied.Load() < ids.Load() {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			st := n.Stats()
			fsyncs := st.Fsyncs - start.Fsyncs
			ents := st.EntriesWritten - start.EntriesWritten
			if fsyncs > 0 {
				b.ReportMetric(float64(ents)/float64(fsyncs), "entries/fsync")
			}
			b.ReportMetric(float64(ids.Load())/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
