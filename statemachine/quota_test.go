package statemachine

import (
	"bytes"
	"strings"
	"testing"

	"github.com/paddockhq/paddock/proto"
)

func TestStatsTrack(t *testing.T) {
	cases := []struct {
		in, out string
		count   int64
		hard    int64
	}{
		{"count=1,bytes=2", "count=1,bytes=2", 1, -1},
		{"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2", -1, 2},
		{"bytes=5", "count=-1,bytes=5", -1, -1},
		{"", "count=-1,bytes=-1", -1, -1},
		{"count==7,bytes=1", "count=-1,bytes=1", -1, -1},
	}
	for _, tc := range cases {
		st, err := ParseStatsTrack(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if st.String() != tc.out || st.Count() != tc.count || st.CountHardLimit() != tc.hard {
			t.Errorf("%q: %q count %d hard %d", tc.in, st.String(), st.Count(), st.CountHardLimit())
		}
	}
	for _, bad := range []string{"count", "count=", ",count=1", "count=x", "="} {
		if _, err := ParseStatsTrack(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// setQuota does what zkCli's setquota does for a new quota on path:
// the parents under /zookeeper/quota, the limits node, then the stats
// node with count=0,bytes=0 (which the server recounts).
func (h *harness) setQuota(path, limits string) {
	h.t.Helper()
	q := proto.QuotaPath
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		q += "/" + part
		if _, code := h.s.Read(sess, nil, proto.OpExists, &proto.ExistsRequest{Path: q}); code == proto.ErrNoNode {
			h.mustCreateData(q, nil)
		}
	}
	h.mustCreateData(q+"/"+QuotaLimitNode, []byte(limits))
	h.mustCreateData(q+"/"+QuotaStatNode, []byte("count=0,bytes=0"))
}

func (h *harness) mustCreateData(path string, data []byte) {
	h.t.Helper()
	r := h.write(proto.OpCreate, &proto.CreateRequest{Path: path, Data: data, Acl: proto.OpenACLUnsafe})
	if r.Err != proto.ErrOK {
		h.t.Fatalf("create %s: %v", path, r.Err)
	}
}

func (h *harness) data(path string) string {
	h.t.Helper()
	r, code := h.s.Read(sess, nil, proto.OpGetData, &proto.GetDataRequest{Path: path})
	if code != proto.ErrOK {
		h.t.Fatalf("get %s: %v", path, code)
	}
	return string(r.(*proto.GetDataResponse).Data)
}

func (h *harness) quotaStats(path string) string {
	h.t.Helper()
	return h.data(proto.QuotaPath + path + "/" + QuotaStatNode)
}

func TestQuotaStatsMaintained(t *testing.T) {
	h := newHarness(t)
	h.mustCreateData("/q", []byte("abc"))
	h.mustCreateData("/q/a", []byte("12345"))
	h.mustCreateData("/other", []byte("zz"))
	h.setQuota("/q", "count=2,bytes=-1")
	// Creating the stats node counted the subtree, whatever it was sent.
	if got := h.quotaStats("/q"); got != "count=2,bytes=8" {
		t.Fatalf("initial stats %q", got)
	}
	statPath := proto.QuotaPath + "/q/" + QuotaStatNode
	before := h.stat(statPath)

	r := h.write(proto.OpCreate, &proto.CreateRequest{Path: "/q/b", Data: []byte("xy"), Acl: proto.OpenACLUnsafe})
	if r.Err != proto.ErrOK {
		t.Fatal(r.Err)
	}
	if got := h.quotaStats("/q"); got != "count=3,bytes=10" {
		t.Errorf("after create: %q", got)
	}
	// Soft limit exceeded: a warning, the write goes through.
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "Quota exceeded: /q [current count=3, softCountLimit=2]") {
		t.Errorf("warnings %q", r.Warnings)
	}
	h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/q/a", Data: []byte("1"), Version: -1})
	if got := h.quotaStats("/q"); got != "count=3,bytes=6" {
		t.Errorf("after setData: %q", got)
	}
	h.write(proto.OpDelete, &proto.DeleteRequest{Path: "/q/b", Version: -1})
	if got := h.quotaStats("/q"); got != "count=2,bytes=4" {
		t.Errorf("after delete: %q", got)
	}
	// Writes outside the quota do not count.
	h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/other", Data: []byte("longer data"), Version: -1})
	h.mustCreateData("/qq", []byte("x"))
	if got := h.quotaStats("/q"); got != "count=2,bytes=4" {
		t.Errorf("after unrelated writes: %q", got)
	}
	// The stats node's stat never moves: DataTree rewrites its data in place.
	after := h.stat(statPath)
	if after.Mzxid != before.Mzxid || after.Version != before.Version || after.Mtime != before.Mtime {
		t.Errorf("stats node stat changed: %+v -> %+v", before, after)
	}
	// Ephemerals going with their session are counted out too.
	h.write(proto.OpCreate, &proto.CreateRequest{Path: "/q/e", Data: []byte("eph"), Acl: proto.OpenACLUnsafe, Flags: proto.ModeEphemeral})
	if got := h.quotaStats("/q"); got != "count=3,bytes=7" {
		t.Errorf("after ephemeral: %q", got)
	}
	h.apply(&Entry{Op: proto.OpCloseSession, Session: sess})
	if got := h.quotaStats("/q"); got != "count=2,bytes=4" {
		t.Errorf("after session close: %q", got)
	}
}

func TestQuotaDeepestWinsAndRemoval(t *testing.T) {
	h := newHarness(t)
	h.mustCreateData("/a", nil)
	h.mustCreateData("/a/b", nil)
	h.setQuota("/a", "count=10,bytes=-1")
	h.setQuota("/a/b", "count=10,bytes=-1")
	h.mustCreateData("/a/b/c", []byte("1"))
	if a, b := h.quotaStats("/a"), h.quotaStats("/a/b"); a != "count=2,bytes=0" || b != "count=2,bytes=1" {
		t.Errorf("stats a=%q b=%q", a, b)
	}
	// Deleting the limits node ends the quota: /a/b/x counts against /a.
	h.write(proto.OpDelete, &proto.DeleteRequest{Path: proto.QuotaPath + "/a/b/" + QuotaLimitNode, Version: -1})
	h.mustCreateData("/a/b/x", nil)
	if a := h.quotaStats("/a"); a != "count=3,bytes=0" {
		t.Errorf("stats a=%q", a)
	}
}

func TestQuotaHardLimits(t *testing.T) {
	for _, enforce := range []bool{false, true} {
		h := newHarness(t)
		h.s.opts.EnforceQuota = enforce
		h.mustCreateData("/q", []byte("12"))
		h.setQuota("/q", "count=-1,bytes=-1=;byteHardLimit=5;countHardLimit=2")
		r := h.write(proto.OpCreate, &proto.CreateRequest{Path: "/q/a", Data: []byte("1"), Acl: proto.OpenACLUnsafe})
		if r.Err != proto.ErrOK {
			t.Fatalf("enforce=%v: first child: %v", enforce, r.Err)
		}
		// A third node: over countHardLimit.
		r = h.write(proto.OpCreate, &proto.CreateRequest{Path: "/q/b", Data: nil, Acl: proto.OpenACLUnsafe})
		want := proto.ErrOK
		if enforce {
			want = proto.ErrQuotaExceeded
		}
		if r.Err != want || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "hardCountLimit=2") {
			t.Errorf("enforce=%v: create over count: %v %q", enforce, r.Err, r.Warnings)
		}
		// Growing data past byteHardLimit (2+1 now; 2+4 > 5).
		r = h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/q/a", Data: []byte("1234"), Version: -1})
		if r.Err != want || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "hardByteLimit=5") {
			t.Errorf("enforce=%v: setData over bytes: %v %q", enforce, r.Err, r.Warnings)
		}
		if enforce {
			// Refused before anything changed; the zxid is still used.
			if got := h.quotaStats("/q"); got != "count=2,bytes=3" {
				t.Errorf("stats after refusals %q", got)
			}
			// Shrinking is always allowed, and a multi with a refused op
			// changes nothing.
			r = h.write(proto.OpSetData, &proto.SetDataRequest{Path: "/q/a", Data: nil, Version: -1})
			if r.Err != proto.ErrOK {
				t.Errorf("shrink: %v", r.Err)
			}
			m := &proto.MultiRequest{Ops: []proto.MultiOp{
				{Type: proto.OpDelete, Req: &proto.DeleteRequest{Path: "/q/a", Version: -1}},
				{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/q/c", Acl: proto.OpenACLUnsafe}},
				{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/q/d", Acl: proto.OpenACLUnsafe}},
			}}
			r = h.write(proto.OpMulti, m)
			res := r.Resp.(*proto.MultiResponse).Results
			if res[2].Err != proto.ErrQuotaExceeded || res[0].Err != proto.ErrOK || res[1].Err != proto.ErrOK {
				t.Errorf("multi results %+v", res)
			}
			if got := h.quotaStats("/q"); got != "count=2,bytes=2" {
				t.Errorf("stats after failed multi %q", got)
			}
		}
	}
}

// TestQuotaSnapshotRoundTrip checks that a restored state keeps counting
// where the original left off (the quota set is derived from the tree).
func TestQuotaSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.mustCreateData("/q", nil)
	h.setQuota("/q", "count=5,bytes=-1")
	h.mustCreateData("/q/a", []byte("abc"))
	var buf bytes.Buffer
	if err := h.s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	s2 := New(Options{ExtendedTypes: true})
	if err := s2.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	h.s = s2
	h.mustCreateData("/q/b", []byte("de"))
	if got := h.quotaStats("/q"); got != "count=3,bytes=5" {
		t.Errorf("stats after restore %q", got)
	}
	qs := s2.Quotas()
	if len(qs) != 1 || qs[0].Path != "/q" || qs[0].Limits.Count() != 5 || qs[0].Usage.Count() != 3 {
		t.Errorf("Quotas() = %+v", qs)
	}
}
