package faults

import (
	"fmt"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// EtcdKeys is how many keys the etcd workload uses (small, so clients
// contend and porcupine's state stays a value).
const EtcdKeys = 3

// EtcdInput is one etcd KV operation of the workload.
type EtcdInput struct {
	// Kind: 'g' Get of one key, 'r' Range over every key, 'h' Range over
	// every key at revision AtRev (a read of the past), 'p' Put,
	// 'c' Txn If(ModRevision(key) == ModRev) Then(Put) Else(Get) — the
	// shape of kube-apiserver's create (ModRev 0) and update, 'd'
	// DeleteRange of one key; the compactor's two steps, as
	// kube-apiserver's (k8s.io/apiserver storage/etcd3 Compact): 'k' Txn
	// If(Version(compact_rev_key) == Version) Then(Put(compact_rev_key,
	// Value)) Else(Get(compact_rev_key)), and 'x' Compact(AtRev).
	Kind    byte
	Key     int
	Value   int64 // written by 'p' and 'c' (unique per write) and 'k' (a revision)
	ModRev  int64 // compared by 'c'
	Version int64 // compared by 'k'
	AtRev   int64 // read by 'h', compacted to by 'x'
}

// EtcdKV is a key as a response showed it.
type EtcdKV struct {
	Exists  bool
	Value   int64
	Version int64
	ModRev  int64
	Create  int64
}

// EtcdOutput is what the server answered. Unknown: the request failed in
// a way that leaves its effect open (timeout, connection lost, no
// leader); only writes are recorded so, failed reads are dropped.
type EtcdOutput struct {
	Unknown   bool
	Rev       int64 // header revision (none when Compacted)
	Succeeded bool  // 'c', 'k'
	Deleted   int64 // 'd'
	// Compacted: 'h' or 'x' failed with ErrCompacted ("mvcc: required
	// revision has been compacted").
	Compacted bool
	// KVs: 'g' and a failed 'c' (its Else Get) hold the one key; 'r'
	// and 'h' hold every key.
	KVs [EtcdKeys]EtcdKV
	// CompactKey is compact_rev_key as a failed 'k' (its Else Get) shows
	// it, Value being the revision stored.
	CompactKey EtcdKV
}

// EtcdOp is one recorded operation.
type EtcdOp struct {
	Client       int
	In           EtcdInput
	Out          EtcdOutput
	Call, Return int64
}

// etcdKey is one key in the model. ModRev 0 with Exists means "written by
// an operation whose revision was not seen" (an unknown write that the
// linearization applied); then ModLo < the real revision.
type etcdKey struct {
	Exists  bool
	Value   int64
	Version int64
	ModRev  int64
	Create  int64
	ModLo   int64
}

// etcdState is the model: the store revision and every key. When an
// applied write's revision was not seen, RevKnown is false and the
// revision is only bounded: at least Lo + Pending (each applied unknown
// write since Lo took at least one revision).
type etcdState struct {
	Rev      int64
	RevKnown bool
	Pending  int64
	Keys     [EtcdKeys]etcdKey
	// CompactKey is compact_rev_key (written by 'k' only).
	CompactKey etcdKey
	// CompactRev is the store's compact revision (0: never compacted).
	CompactRev int64
	// Foreign: other keys change too (the lease workload), so the store's
	// revision may grow between the model's operations; reads then only
	// bound it from below.
	Foreign bool
}

// EtcdModel is the porcupine model of etcd's KV semantics over the
// workload's keys, revision-aware: every write that changes the keyspace
// takes a revision greater than the store's, which becomes the store's;
// reads, failed txns and deletes of nothing leave it (etcd's rule: only a
// change bumps the revision); a read's header revision is the store's
// revision, and its keys' values, versions and mod/create revisions are
// the model's. Revisions need not be dense (Paddock's are zxids).
//
// Compaction: a Compact(R) succeeds iff R is above the store's compact
// revision (etcd answers ErrCompacted for R <= it), R is at most the
// store's revision, and it leaves the revision alone (Paddock and etcd
// alike); R becomes the compact revision. A read of the past at R fails
// with ErrCompacted iff R is below the compact revision: so a read below
// a compaction that completed before it began must fail, and a read at
// or above the compact revision must answer (its keys are checked
// against the watch, EtcdWorkload.Check). The compactor's
// compact_rev_key CAS is a Version compare on a key of its own.
var EtcdModel = newEtcdModel(false)

// EtcdModelForeign is EtcdModel when keys outside the model change too
// (leases, their keys): the store's revision may then move between the
// model's operations, so a read's header revision is only at least the
// store's (it becomes the store's), and a write's is greater.
var EtcdModelForeign = newEtcdModel(true)

func newEtcdModel(foreign bool) porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Init:              func() []any { return []any{etcdState{Rev: 1, RevKnown: true, Foreign: foreign}} },
		Step:              etcdStep,
		Equal:             func(a, b any) bool { return a.(etcdState) == b.(etcdState) },
		DescribeOperation: describeEtcd,
		DescribeState:     describeEtcdState,
	}).ToModel()
}

// minRev is the least the store's revision can be.
func (s etcdState) minRev() int64 {
	if s.RevKnown {
		return s.Rev
	}
	return s.Rev + s.Pending
}

// learnRev records that the store is at rev h (a read's header, a
// no-op's). It fails if h is impossible.
func (s *etcdState) learnRev(h int64) bool {
	if s.RevKnown && !s.Foreign {
		return h == s.Rev
	}
	if h < s.minRev() {
		return false
	}
	s.Rev, s.RevKnown, s.Pending = h, true, 0
	return true
}

// bumpRev records a change at revision r (known).
func (s *etcdState) bumpRev(r int64) bool {
	if s.RevKnown && r <= s.Rev || !s.RevKnown && r < s.Rev+s.Pending+1 {
		return false
	}
	s.Rev, s.RevKnown, s.Pending = r, true, 0
	return true
}

// bumpUnknown records a change at a revision not seen.
func (s *etcdState) bumpUnknown() int64 {
	lo := s.minRev()
	if s.RevKnown {
		s.RevKnown, s.Pending = false, 1
	} else {
		s.Pending++
	}
	return lo
}

// matchKV checks a key as read against the model (learning an unseen
// mod revision), with the read's header revision h.
func (k *etcdKey) matchKV(kv EtcdKV, h int64) bool {
	if kv.Exists != k.Exists {
		return false
	}
	if !k.Exists {
		return true
	}
	if kv.Value != k.Value || kv.Version != k.Version || kv.ModRev > h {
		return false
	}
	if k.ModRev == 0 {
		if kv.ModRev <= k.ModLo {
			return false
		}
		k.ModRev = kv.ModRev
		if k.Version == 1 {
			k.Create = kv.ModRev
		}
	} else if kv.ModRev != k.ModRev {
		return false
	}
	if k.Create == 0 {
		if kv.Create <= 0 || kv.Create > kv.ModRev {
			return false
		}
		k.Create = kv.Create
	} else if kv.Create != k.Create {
		return false
	}
	return true
}

// put applies a put of v to key i at revision r (0: unseen).
func (s *etcdState) put(i int, v int64, r int64) bool {
	return s.putKey(&s.Keys[i], v, r)
}

// putKey applies a put of v to k (a key of s) at revision r (0: unseen).
func (s *etcdState) putKey(k *etcdKey, v int64, r int64) bool {
	var lo int64
	if r == 0 {
		lo = s.bumpUnknown()
	} else if !s.bumpRev(r) {
		return false
	}
	if k.Exists {
		k.Version++
	} else {
		k.Exists, k.Version, k.Create = true, 1, r
	}
	k.Value, k.ModRev, k.ModLo = v, r, lo
	return true
}

func etcdStep(state, input, output any) []any {
	s := state.(etcdState)
	in := input.(EtcdInput)
	out := output.(EtcdOutput)
	if out.Unknown {
		// Not applied, or applied with an unseen revision.
		res := []any{s}
		n := s
		switch in.Kind {
		case 'p':
			n.put(in.Key, in.Value, 0)
			res = append(res, n)
		case 'c':
			k := s.Keys[in.Key]
			holds := in.ModRev == 0 && !k.Exists ||
				k.Exists && (k.ModRev == in.ModRev || k.ModRev == 0 && in.ModRev > k.ModLo)
			if holds {
				if k.Exists && k.ModRev == 0 {
					n.Keys[in.Key].ModRev = in.ModRev
				}
				n.put(in.Key, in.Value, 0)
				res = append(res, n)
			}
		case 'd':
			if s.Keys[in.Key].Exists {
				n.bumpUnknown()
				n.Keys[in.Key] = etcdKey{}
				res = append(res, n)
			}
		case 'k':
			if s.CompactKey.Version == in.Version {
				n.putKey(&n.CompactKey, in.Value, 0)
				res = append(res, n)
			}
		case 'x':
			if in.AtRev > s.CompactRev && (!s.RevKnown || in.AtRev <= s.Rev) {
				n.CompactRev = in.AtRev
				res = append(res, n)
			}
		}
		return res
	}
	switch in.Kind {
	case 'g':
		if !s.learnRev(out.Rev) || !s.Keys[in.Key].matchKV(out.KVs[in.Key], out.Rev) {
			return nil
		}
	case 'r':
		if !s.learnRev(out.Rev) {
			return nil
		}
		for i := range s.Keys {
			if !s.Keys[i].matchKV(out.KVs[i], out.Rev) {
				return nil
			}
		}
	case 'h':
		// A read of the past: it fails iff AtRev is compacted; else its
		// header is still the store's revision, and its keys are checked
		// against the watch at AtRev (EtcdWorkload.Check), not here.
		if out.Compacted {
			if in.AtRev >= s.CompactRev {
				return nil
			}
		} else if in.AtRev < s.CompactRev || !s.learnRev(out.Rev) {
			return nil
		}
	case 'k':
		k := &s.CompactKey
		if out.Succeeded {
			if k.Version != in.Version || !s.putKey(k, in.Value, out.Rev) {
				return nil
			}
		} else if k.Version == in.Version || !s.learnRev(out.Rev) || !k.matchKV(out.CompactKey, out.Rev) {
			return nil
		}
	case 'x':
		if out.Compacted {
			if in.AtRev > s.CompactRev {
				return nil
			}
		} else {
			if in.AtRev <= s.CompactRev || in.AtRev > out.Rev || !s.learnRev(out.Rev) {
				return nil
			}
			s.CompactRev = in.AtRev
		}
	case 'p':
		if !s.put(in.Key, in.Value, out.Rev) {
			return nil
		}
	case 'c':
		k := &s.Keys[in.Key]
		if out.Succeeded {
			switch {
			case in.ModRev == 0 && !k.Exists:
			case k.Exists && k.ModRev == in.ModRev:
			case k.Exists && k.ModRev == 0 && in.ModRev > k.ModLo:
				k.ModRev = in.ModRev
			default:
				return nil
			}
			if !s.put(in.Key, in.Value, out.Rev) {
				return nil
			}
		} else {
			// The compare failed: nothing changed, and the Else Get
			// shows the key.
			if in.ModRev == 0 && !k.Exists || k.Exists && k.ModRev == in.ModRev {
				return nil
			}
			if !s.learnRev(out.Rev) || !k.matchKV(out.KVs[in.Key], out.Rev) {
				return nil
			}
		}
	case 'd':
		if s.Keys[in.Key].Exists {
			if out.Deleted != 1 || !s.bumpRev(out.Rev) {
				return nil
			}
			s.Keys[in.Key] = etcdKey{}
		} else if out.Deleted != 0 || !s.learnRev(out.Rev) {
			return nil
		}
	default:
		return nil
	}
	return []any{s}
}

func describeEtcd(input, output any) string {
	in, out := input.(EtcdInput), output.(EtcdOutput)
	var op string
	switch in.Kind {
	case 'g':
		op = fmt.Sprintf("get k%d", in.Key)
	case 'r':
		op = "range all"
	case 'h':
		op = fmt.Sprintf("range all at %d", in.AtRev)
	case 'p':
		op = fmt.Sprintf("put k%d=%d", in.Key, in.Value)
	case 'c':
		op = fmt.Sprintf("txn k%d mod==%d ? put %d", in.Key, in.ModRev, in.Value)
	case 'd':
		op = fmt.Sprintf("delete k%d", in.Key)
	case 'k':
		op = fmt.Sprintf("txn compact_rev_key version==%d ? put %d", in.Version, in.Value)
	case 'x':
		op = fmt.Sprintf("compact %d", in.AtRev)
	}
	if out.Unknown {
		return op + " -> ?"
	}
	if out.Compacted {
		return op + " -> compacted"
	}
	res := fmt.Sprintf(" -> rev %d", out.Rev)
	switch in.Kind {
	case 'c':
		res += fmt.Sprintf(" ok=%v", out.Succeeded)
		if !out.Succeeded {
			res += " " + describeKV(out.KVs[in.Key])
		}
	case 'd':
		res += fmt.Sprintf(" deleted=%d", out.Deleted)
	case 'k':
		res += fmt.Sprintf(" ok=%v", out.Succeeded)
		if !out.Succeeded {
			res += " " + describeKV(out.CompactKey)
		}
	case 'g':
		res += " " + describeKV(out.KVs[in.Key])
	case 'r', 'h':
		var parts []string
		for i := range out.KVs {
			parts = append(parts, fmt.Sprintf("k%d:%s", i, describeKV(out.KVs[i])))
		}
		res += " " + strings.Join(parts, " ")
	}
	return op + res
}

func describeKV(kv EtcdKV) string {
	if !kv.Exists {
		return "absent"
	}
	return fmt.Sprintf("%d(v%d mod %d create %d)", kv.Value, kv.Version, kv.ModRev, kv.Create)
}

func describeEtcdState(state any) string {
	s := state.(etcdState)
	rev := fmt.Sprint(s.Rev)
	if !s.RevKnown {
		rev = fmt.Sprintf(">=%d", s.minRev())
	}
	var parts []string
	for i, k := range s.Keys {
		if !k.Exists {
			parts = append(parts, fmt.Sprintf("k%d absent", i))
			continue
		}
		mod := fmt.Sprint(k.ModRev)
		if k.ModRev == 0 {
			mod = fmt.Sprintf(">%d", k.ModLo)
		}
		parts = append(parts, fmt.Sprintf("k%d=%d v%d mod %s", i, k.Value, k.Version, mod))
	}
	if k := s.CompactKey; k.Exists {
		parts = append(parts, fmt.Sprintf("compact_rev_key=%d v%d", k.Value, k.Version))
	}
	if s.CompactRev != 0 {
		parts = append(parts, fmt.Sprintf("compacted at %d", s.CompactRev))
	}
	return "rev " + rev + ": " + strings.Join(parts, ", ")
}

// CheckEtcd checks an etcd history for linearizability against EtcdModel
// (EtcdModelForeign if foreign).
func CheckEtcd(ops []EtcdOp, foreign bool, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	hist := make([]porcupine.Operation, len(ops))
	for i, o := range ops {
		hist[i] = porcupine.Operation{ClientId: o.Client, Input: o.In, Output: o.Out, Call: o.Call, Return: o.Return}
	}
	m := EtcdModel
	if foreign {
		m = EtcdModelForeign
	}
	return porcupine.CheckOperationsVerbose(m, hist, timeout)
}
