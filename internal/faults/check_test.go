package faults

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/go-zookeeper/zk"
)

func worldACL() []zk.ACL { return zk.WorldACL(zk.PermAll) }

func TestRegisterModel(t *testing.T) {
	w := func(c int, v int64, ver int32, res byte, outVer int32, call, ret int64) RegOp {
		return RegOp{Client: c, In: RegInput{Kind: 'c', Value: v, Version: ver}, Out: RegOutput{Value: v, Version: outVer, Result: res}, Call: call, Return: ret}
	}
	r := func(c int, v int64, ver int32, call, ret int64) RegOp {
		return RegOp{Client: c, In: RegInput{Kind: 'r'}, Out: RegOutput{Value: v, Version: ver, Result: 'o'}, Call: call, Return: ret}
	}
	cases := []struct {
		name string
		ops  []RegOp
		want porcupine.CheckResult
	}{
		{"sequential", []RegOp{w(0, 5, 0, 'o', 1, 0, 10), r(1, 5, 1, 20, 30)}, porcupine.Ok},
		{"stale sync-read", []RegOp{w(0, 5, 0, 'o', 1, 0, 10), r(1, 0, 0, 20, 30)}, porcupine.Illegal},
		{"concurrent read may miss", []RegOp{w(0, 5, 0, 'o', 1, 0, 30), r(1, 0, 0, 10, 20)}, porcupine.Ok},
		{"two winners", []RegOp{w(0, 5, 0, 'o', 1, 0, 10), w(1, 6, 0, 'o', 1, 0, 10)}, porcupine.Illegal},
		{"bad version is real", []RegOp{w(0, 5, 3, 'b', 0, 0, 10), r(1, 0, 0, 20, 30)}, porcupine.Ok},
		{"bad version lied", []RegOp{w(0, 5, 0, 'b', 0, 20, 30), r(1, 0, 0, 0, 10)}, porcupine.Illegal},
		{"unknown applied", []RegOp{w(0, 5, 0, 'u', 0, 0, math.MaxInt64), r(1, 5, 1, 20, 30)}, porcupine.Ok},
		{"unknown not applied", []RegOp{w(0, 5, 0, 'u', 0, 0, math.MaxInt64), r(1, 0, 0, 20, 30), r(1, 0, 0, 40, 50)}, porcupine.Ok},
		{"unknown flickers", []RegOp{w(0, 5, 0, 'u', 0, 0, math.MaxInt64), r(1, 5, 1, 20, 30), r(1, 0, 0, 40, 50)}, porcupine.Illegal},
		{"lost ack", []RegOp{w(0, 5, 0, 'o', 1, 0, 10), w(1, 6, 1, 'o', 2, 20, 30), r(2, 5, 1, 40, 50)}, porcupine.Illegal},
	}
	for _, c := range cases {
		got, _ := CheckRegister(c.ops, 10*time.Second)
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestLockAndSessionChecks(t *testing.T) {
	w := NewWorkloads(WorkloadOptions{Root: "/x"})
	w.locks = []LockHold{
		{Client: 0, Session: 1, Node: "l-0000000001", Start: 10, End: 20},
		{Client: 1, Session: 2, Node: "l-0000000002", Start: 25, End: 40},
		{Client: 2, Session: 3, Node: "l-0000000003", Start: 35, End: 50}, // overlaps the previous
	}
	r := &Report{Counts: map[string]int{}}
	w.checkLocks(r)
	if len(r.Violations) != 1 || !strings.Contains(r.Violations[0], "l-0000000003") {
		t.Fatalf("violations %v", r.Violations)
	}
	w.obs[0] = []observation{{session: 1, mzxid: 5, version: 2}, {session: 1, mzxid: 7, version: 3},
		{session: 2, mzxid: 1, version: 1}, {session: 2, mzxid: 0, version: 0}}
	r = &Report{Counts: map[string]int{}}
	w.checkSessionOrder(r)
	if len(r.Violations) != 1 || !strings.Contains(r.Violations[0], "session 0x2") {
		t.Fatalf("violations %v", r.Violations)
	}
}

func TestGenSchedule(t *testing.T) {
	a := GenSchedule(42, ScheduleOptions{Duration: 20 * time.Second})
	b := GenSchedule(42, ScheduleOptions{Duration: 20 * time.Second})
	if a.String() != b.String() {
		t.Fatalf("same seed, different schedules:\n%s\n%s", a, b)
	}
	if c := GenSchedule(43, ScheduleOptions{Duration: 20 * time.Second}); c.String() == a.String() {
		t.Fatal("different seeds, same schedule")
	}
	seen := map[FaultKind]bool{}
	sizes := map[int]bool{}
	for seed := range uint64(200) {
		s := GenSchedule(seed, ScheduleOptions{Wipe: true})
		sizes[s.Members] = true
		var total time.Duration
		for _, st := range s.Steps {
			seen[st.Kind] = true
			total += st.After
		}
		if total < 20*time.Second || total > 24*time.Second {
			t.Fatalf("seed %d: schedule lasts %v", seed, total)
		}
	}
	if !sizes[3] || !sizes[5] || len(seen) != 13 {
		t.Fatalf("sizes %v kinds %v", sizes, seen)
	}
}
