package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// record is one applied entry as the test state machine saw it.
type record struct {
	Index uint64 `json:"i"`
	Term  uint64 `json:"t"`
	Data  string `json:"d"`
}

// listSM is the test state machine: it appends every applied entry to a
// list. Snapshot and Restore are JSON of that list.
type listSM struct {
	mu       sync.Mutex
	recs     []record
	restored int // how many times Restore ran
	onApply  func(index uint64, data []byte)
}

func (s *listSM) Apply(index, term uint64, data []byte) {
	s.mu.Lock()
	if n := len(s.recs); n > 0 && s.recs[n-1].Index >= index {
		s.mu.Unlock()
		panic(fmt.Sprintf("apply out of order: %d after %d", index, s.recs[n-1].Index))
	}
	s.recs = append(s.recs, record{index, term, string(data)})
	f := s.onApply
	s.mu.Unlock()
	if f != nil {
		f(index, data)
	}
}

func (s *listSM) Snapshot(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.NewEncoder(w).Encode(s.recs)
}

func (s *listSM) Restore(r io.Reader) error {
	var recs []record
	if err := json.NewDecoder(r).Decode(&recs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = recs
	s.restored++
	return nil
}

func (s *listSM) snapshot() []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]record(nil), s.recs...)
}

func (s *listSM) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// logBuf collects log output for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testConfig(dir string) Config {
	return Config{ID: 1, Dir: dir, TickInterval: 10 * time.Millisecond, Logger: quietLogger()}
}

func mustOpen(t testing.TB, cfg Config, sm StateMachine) *Node {
	t.Helper()
	n, err := Open(cfg, sm)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return n
}

// proposeAll proposes each datum and waits until the state machine has
// applied want entries in total.
func proposeAll(t testing.TB, n *Node, sm *listSM, datas []string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range datas {
		if err := n.Propose(ctx, []byte(d)); err != nil {
			t.Fatalf("Propose(%q): %v", d, err)
		}
	}
	waitLen(t, sm, want)
}

func waitLen(t testing.TB, sm *listSM, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for sm.len() < want {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: applied %d entries, want %d", sm.len(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func datas(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func equalRecords(t testing.TB, got, want []record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func walFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func snapFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// reopenFromSnapshot opens cfg's directory again and checks that recovery
// restored one snapshot and, with the WAL after it, every record in want.
func reopenFromSnapshot(t *testing.T, cfg Config, want []record) {
	t.Helper()
	sm := &listSM{}
	n := mustOpen(t, cfg, sm)
	defer n.Close()
	if sm.restored != 1 {
		t.Fatalf("Restore ran %d times, want 1", sm.restored)
	}
	equalRecords(t, sm.snapshot(), want)
}
