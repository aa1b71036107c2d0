package faults

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// kv is a present key as a response shows it.
func kv(value, version, mod, create int64) EtcdKV {
	return EtcdKV{Exists: true, Value: value, Version: version, ModRev: mod, Create: create}
}

func get(key int, rev int64, k EtcdKV) EtcdOutput {
	o := EtcdOutput{Rev: rev}
	o.KVs[key] = k
	return o
}

// TestEtcdModel feeds hand-made histories to the checker: the legal ones
// must pass and each kind of violation must be caught.
func TestEtcdModel(t *testing.T) {
	unknown := EtcdOutput{Unknown: true}
	op := func(client int, in EtcdInput, out EtcdOutput, call, ret int64) EtcdOp {
		if out.Unknown {
			ret = unknownReturn
		}
		return EtcdOp{Client: client, In: in, Out: out, Call: call, Return: ret}
	}
	put := func(key int, v int64) EtcdInput { return EtcdInput{Kind: 'p', Key: key, Value: v} }
	cas := func(key int, mod, v int64) EtcdInput { return EtcdInput{Kind: 'c', Key: key, ModRev: mod, Value: v} }
	g := func(key int) EtcdInput { return EtcdInput{Kind: 'g', Key: key} }
	del := func(key int) EtcdInput { return EtcdInput{Kind: 'd', Key: key} }
	tests := []struct {
		name  string
		ops   []EtcdOp
		legal bool
	}{
		{"put then read", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(1, g(0), get(0, 5, kv(10, 1, 5, 5)), 2, 3),
		}, true},
		{"stale read after acknowledged put", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(1, g(0), get(0, 1, EtcdKV{}), 2, 3),
		}, false},
		{"concurrent read may see either", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 10),
			op(1, g(0), get(0, 1, EtcdKV{}), 1, 2),
			op(2, g(0), get(0, 5, kv(10, 1, 5, 5)), 3, 4),
		}, true},
		{"revision must grow", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(0, put(1, 11), EtcdOutput{Rev: 5}, 2, 3),
		}, false},
		{"read bumps nothing", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(1, g(1), get(1, 6, EtcdKV{}), 2, 3),
		}, false},
		{"cas on mod revision", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(0, cas(0, 5, 11), EtcdOutput{Rev: 7, Succeeded: true}, 2, 3),
			op(1, cas(0, 5, 12), get(0, 7, kv(11, 2, 7, 5)), 4, 5),
		}, true},
		{"two cas from the same revision both succeed", []EtcdOp{
			op(0, put(0, 10), EtcdOutput{Rev: 5}, 0, 1),
			op(0, cas(0, 5, 11), EtcdOutput{Rev: 7, Succeeded: true}, 2, 3),
			op(1, cas(0, 5, 12), EtcdOutput{Rev: 8, Succeeded: true}, 2, 3),
		}, false},
		{"create-if-absent", []EtcdOp{
			op(0, cas(1, 0, 20), EtcdOutput{Rev: 3, Succeeded: true}, 0, 1),
			op(1, cas(1, 0, 21), get(1, 3, kv(20, 1, 3, 3)), 2, 3),
		}, true},
		{"unknown put applied later seen", []EtcdOp{
			op(0, put(0, 10), unknown, 0, 0),
			op(1, g(0), get(0, 9, kv(10, 1, 9, 9)), 5, 6),
		}, true},
		{"unknown put never applied", []EtcdOp{
			op(0, put(0, 10), unknown, 0, 0),
			op(1, g(0), get(0, 1, EtcdKV{}), 5, 6),
		}, true},
		{"value nobody wrote", []EtcdOp{
			op(0, put(0, 10), unknown, 0, 0),
			op(1, g(0), get(0, 9, kv(99, 1, 9, 9)), 5, 6),
		}, false},
		{"delete then version restarts", []EtcdOp{
			op(0, put(2, 1), EtcdOutput{Rev: 2}, 0, 1),
			op(0, del(2), EtcdOutput{Rev: 3, Deleted: 1}, 2, 3),
			op(0, del(2), EtcdOutput{Rev: 3}, 4, 5),
			op(0, put(2, 2), EtcdOutput{Rev: 4}, 6, 7),
			op(1, g(2), get(2, 4, kv(2, 1, 4, 4)), 8, 9),
		}, true},
		{"lost delete", []EtcdOp{
			op(0, put(2, 1), EtcdOutput{Rev: 2}, 0, 1),
			op(0, del(2), EtcdOutput{Rev: 3, Deleted: 1}, 2, 3),
			op(1, g(2), get(2, 3, kv(1, 1, 2, 2)), 4, 5),
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := CheckEtcd(tc.ops, false, 0)
			if got := res == porcupine.Ok; got != tc.legal {
				t.Fatalf("linearizable = %v (%v), want %v", got, res, tc.legal)
			}
		})
	}
}

// TestEtcdWatchCheck feeds hand-made watch streams to the watch checks.
func TestEtcdWatchCheck(t *testing.T) {
	putEv := func(key int, value, version, mod, create int64, prev *EtcdKV) watchEvent {
		ev := watchEvent{put: true, key: key, kv: kv(value, version, mod, create)}
		if prev != nil {
			ev.prev, ev.hasPrev = *prev, true
		}
		return ev
	}
	first := kv(10, 1, 2, 2)
	good := []watchResp{
		{events: []watchEvent{putEv(0, 10, 1, 2, 2, nil)}},
		{events: []watchEvent{putEv(0, 11, 2, 3, 2, &first)}},
	}
	ops := []EtcdOp{
		{Client: 0, In: EtcdInput{Kind: 'p', Key: 0, Value: 10}, Out: EtcdOutput{Rev: 2}},
		{Client: 0, In: EtcdInput{Kind: 'p', Key: 0, Value: 11}, Out: EtcdOutput{Rev: 3}},
		{Client: 1, In: EtcdInput{Kind: 'g', Key: 0}, Out: get(0, 2, first)},
	}
	tests := []struct {
		name    string
		streams [][]watchResp
		ops     []EtcdOp
		ok      bool
	}{
		{"agreeing streams", [][]watchResp{good, good}, ops, true},
		{"gap", [][]watchResp{good, good[:1]}, ops, false},
		{"duplicate", [][]watchResp{good, append(append([]watchResp{}, good...), good[1])}, ops, false},
		{"reordered", [][]watchResp{good, {good[1], good[0]}}, ops, false},
		{"wrong prev_kv", [][]watchResp{good, {good[0], {events: []watchEvent{putEv(0, 11, 2, 3, 2, nil)}}}}, ops, false},
		{"acknowledged write missing", [][]watchResp{good[:1], good[:1]}, ops, false},
		{"read disagrees", [][]watchResp{good, good}, append(append([]EtcdOp{}, ops...),
			EtcdOp{Client: 1, In: EtcdInput{Kind: 'g', Key: 0}, Out: get(0, 3, first)}), false},
		{"read of the past agrees", [][]watchResp{good, good}, append(append([]EtcdOp{}, ops...),
			EtcdOp{Client: 1, In: EtcdInput{Kind: 'h', AtRev: 2}, Out: get(0, 3, first)}), true},
		{"read of the past disagrees", [][]watchResp{good, good}, append(append([]EtcdOp{}, ops...),
			EtcdOp{Client: 1, In: EtcdInput{Kind: 'h', AtRev: 2}, Out: get(0, 3, kv(11, 2, 3, 2))}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewEtcdWorkload(EtcdWorkloadOptions{})
			for i, s := range tc.streams {
				w.watchers = append(w.watchers, &etcdWatcher{member: i + 1, resps: s})
			}
			r := &EtcdReport{Counts: map[string]int{}}
			w.checkWatches(tc.ops, r)
			if r.OK() != tc.ok {
				t.Fatalf("ok = %v, want %v: %v", r.OK(), tc.ok, r.Violations)
			}
		})
	}
}

// TestEtcdModelForeign: with other keys moving the revision, a read may
// see a higher revision than the model's last write, but values still
// must not go stale.
func TestEtcdModelForeign(t *testing.T) {
	put := EtcdOp{Client: 0, In: EtcdInput{Kind: 'p', Key: 0, Value: 10}, Out: EtcdOutput{Rev: 5}, Call: 0, Return: 1}
	tests := []struct {
		name  string
		read  EtcdOutput
		legal bool
	}{
		{"revision moved by others", get(0, 9, kv(10, 1, 5, 5)), true},
		{"stale value", get(0, 9, EtcdKV{}), false},
		{"revision went back", get(0, 4, kv(10, 1, 5, 5)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ops := []EtcdOp{put, {Client: 1, In: EtcdInput{Kind: 'g', Key: 0}, Out: tc.read, Call: 2, Return: 3}}
			res, _ := CheckEtcd(ops, true, 0)
			if got := res == porcupine.Ok; got != tc.legal {
				t.Fatalf("linearizable = %v, want %v", got, tc.legal)
			}
		})
	}
}
