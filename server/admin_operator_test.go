package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestTransferLeadership: the operator's leadership handover endpoint
// moves leadership to the named voter; a follower refuses.
func TestTransferLeadership(t *testing.T) {
	e := newTestEnsemble(t, 3, 0, func(c *Config) { c.AdminAddr = "127.0.0.1:0" })
	var leader uint64
	waitFor(t, "a leader", func() bool {
		for id := uint64(1); id <= 3; id++ {
			if s := e.server(id); s != nil && s.node.IsLeader() {
				leader = id
				return true
			}
		}
		return false
	})
	to := leader%3 + 1
	post := func(id, target uint64) (int, string) {
		u := fmt.Sprintf("http://%s/paddock/v1/transfer-leadership?to=%d", e.server(id).AdminAddr(), target)
		resp, err := http.Post(u, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	if code, _ := post(to, leader); code != http.StatusConflict {
		t.Errorf("a follower accepted a transfer: %d", code)
	}
	if code, body := post(leader, to); code != http.StatusOK {
		t.Fatalf("transfer %d→%d: %d %s", leader, to, code, body)
	}
	waitFor(t, "the new leader", func() bool { return e.server(to).node.IsLeader() })
}
