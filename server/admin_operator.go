package server

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/paddockhq/paddock/zkdata"
)

// Admin endpoints for the Kubernetes operator (operator/), outside
// ZooKeeper's /commands namespace:
//
//	POST /paddock/v1/transfer-leadership?to=N   the leader hands leadership
//	                                            to voter N (raft transfer);
//	                                            200 once N leads, 409 if it
//	                                            did not within 5 s
//	GET  /paddock/v1/snapshot                   the tree at one zxid, as
//	                                            `paddock export` JSON lines,
//	                                            header X-Paddock-Zxid; only
//	                                            for the super user (HTTP Basic,
//	                                            user "super", checked against
//	                                            the super digest)
func (s *Server) mountOperatorEndpoints(mux *http.ServeMux) {
	mux.HandleFunc("/paddock/v1/transfer-leadership", s.serveTransferLeadership)
	mux.HandleFunc("/paddock/v1/snapshot", s.serveSnapshot)
}

func (s *Server) serveTransferLeadership(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	to, err := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
	if err != nil || to == 0 {
		http.Error(w, "to=<server id> required", http.StatusBadRequest)
		return
	}
	if s.node == nil || !s.node.IsLeader() {
		http.Error(w, "not the leader", http.StatusConflict)
		return
	}
	voters, _ := s.node.Membership()
	if !slices.Contains(voters, to) {
		http.Error(w, fmt.Sprintf("server %d is not a voter", to), http.StatusBadRequest)
		return
	}
	if err := s.node.TransferLeadership(r.Context(), to); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s.node.Leader() == to {
			fmt.Fprintf(w, "leader is now %d\n", to)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	http.Error(w, fmt.Sprintf("leadership did not move to %d (leader %d)", to, s.node.Leader()), http.StatusConflict)
}

func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	want := s.cfg.SuperDigest
	if !ok || user != "super" || want == "" || subtle.ConstantTimeCompare([]byte(superDigestOf(pass)), []byte(want)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="paddock"`)
		http.Error(w, "super user required", http.StatusUnauthorized)
		return
	}
	// One read lock: every node as of one zxid (a consistent cut).
	s.mu.RLock()
	zxid := s.state.LastZxid()
	recs := zkdata.StateRecords(s.state)
	s.mu.RUnlock()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Paddock-Zxid", "0x"+strconv.FormatInt(zxid, 16))
	if err := zkdata.WriteRecords(w, recs); err != nil {
		s.log.Warn("snapshot download failed", "err", err)
	}
}

// superDigestOf is DigestAuthenticationProvider's digest of super:password.
func superDigestOf(password string) string { return digestID("super:" + password) }
