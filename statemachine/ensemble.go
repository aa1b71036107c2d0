package statemachine

import (
	"strconv"
	"strings"

	"github.com/paddockhq/paddock/proto"
)

// Internal opcodes of an ensemble. They never come from a client: the
// servers propose them. Negative values are outside ZooKeeper's opcode
// space (its own internal ones go down to -11).
const (
	// OpTouchSessions relays session liveness: the member holding the
	// connections of the listed sessions heard from them. It changes
	// nothing in the tree (the zxid is consumed); every member's session
	// tracker observes it, and the leader's decides expiry. Body: a
	// TouchBody.
	OpTouchSessions proto.OpCode = -100
	// OpSetConfig replaces the ensemble configuration held in
	// /zookeeper/config (a setData on it, as ZooKeeper's reconfig is).
	// Body: a ConfigBody. It is proposed by the first leader of a new
	// ensemble (Session 0, Expected 0) and, as the context of a raft
	// membership change, by a member answering a client's reconfig
	// (Session set: then reconfigEnabled, the session and WRITE on
	// /zookeeper/config are checked, as PrepRequestProcessor does).
	OpSetConfig proto.OpCode = -101
	// OpErrorTxn is ZooKeeper's error txn: a request refused by the checks
	// made before it could change anything (a reconfig's bad arguments,
	// stale version, reconfig in progress, no synced quorum), logged all
	// the same so that it consumes a zxid and its reply carries it, as
	// ZooKeeper's PrepRequestProcessor does. It changes nothing; it
	// answers SESSIONEXPIRED if the session is gone (checked first, as
	// ZooKeeper does), else the code in its body. Body: an ErrorBody.
	OpErrorTxn proto.OpCode = -102
)

// ErrorBody is the body of an OpErrorTxn entry.
type ErrorBody struct {
	Err proto.ErrCode
}

// Encode appends the record.
func (b *ErrorBody) Encode(e *proto.Encoder) { e.Int(int32(b.Err)) }

// Decode reads the record.
func (b *ErrorBody) Decode(d *proto.Decoder) { b.Err = proto.ErrCode(d.Int()) }

// TouchBody is the body of an OpTouchSessions entry.
type TouchBody struct {
	Sessions []int64
}

// Encode appends the record.
func (b *TouchBody) Encode(e *proto.Encoder) {
	e.Int(int32(len(b.Sessions)))
	for _, id := range b.Sessions {
		e.Long(id)
	}
}

// Decode reads the record.
func (b *TouchBody) Decode(d *proto.Decoder) {
	n := d.VectorLen()
	if n <= 0 {
		return
	}
	b.Sessions = make([]int64, n)
	for i := range b.Sessions {
		b.Sessions[i] = d.Long()
	}
}

// ConfigBody is the body of an OpSetConfig entry.
type ConfigBody struct {
	// Expected is the configuration version the proposer computed the new
	// configuration from (ReconfigRequest.curConfigId): the entry fails
	// with BADVERSION unless the current version equals it. -1 accepts
	// any version; 0 means "only if there is no configuration yet".
	Expected int64
	// Config is the new configuration: server.N lines, each ending in
	// "\n", without the version line (apply appends version=<zxid hex>).
	Config string
}

// Encode appends the record.
func (b *ConfigBody) Encode(e *proto.Encoder) {
	e.Long(b.Expected)
	e.String(b.Config)
}

// Decode reads the record.
func (b *ConfigBody) Decode(d *proto.Decoder) {
	b.Expected = d.Long()
	b.Config = d.String()
}

// ConfigVersion parses the version line of a /zookeeper/config text
// (hexadecimal, as ZooKeeper writes it); 0 when there is none.
func ConfigVersion(text string) int64 {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "version="); ok {
			n, err := strconv.ParseUint(v, 16, 64)
			if err == nil {
				return int64(n)
			}
		}
	}
	return 0
}

// Config returns the data of /zookeeper/config (ZooKeeper's dynamic
// configuration text, empty for a standalone server) and its version.
func (s *State) Config() (text string, version int64) {
	n := s.nodes[proto.ConfigPath]
	if n == nil {
		return "", 0
	}
	text = string(n.data)
	return text, ConfigVersion(text)
}

// applyEnsemble applies the internal ensemble opcodes; ok is false for
// any other opcode.
func (s *State) applyEnsemble(t *txn, res *Result) bool {
	switch t.e.Op {
	case OpTouchSessions:
		return true
	case OpErrorTxn:
		var body ErrorBody
		switch {
		case proto.Unmarshal(t.e.Body, &body) != nil:
			res.Err = proto.ErrMarshallingError
		case t.e.Session != 0 && s.sessions[t.e.Session] == nil:
			res.Err = proto.ErrSessionExpired
		default:
			res.Err = body.Err
		}
		return true
	case OpSetConfig:
	default:
		return false
	}
	e := t.e
	var body ConfigBody
	if err := proto.Unmarshal(e.Body, &body); err != nil {
		res.Err = proto.ErrMarshallingError
		return true
	}
	n := s.nodes[proto.ConfigPath]
	if e.Session != 0 {
		// A client's reconfig, in PrepRequestProcessor's order.
		if _, ok := s.sessions[e.Session]; !ok {
			res.Err = proto.ErrSessionExpired
			return true
		}
		if !s.opts.ReconfigEnabled {
			res.Err = proto.ErrReconfigDisabled
			return true
		}
		// The proposer computed the new configuration from version
		// Expected, after checking the client's curConfigId against it:
		// another configuration applied since means another reconfig got
		// in first (ZooKeeper: lastSeenQV != QV, RECONFIGINPROGRESS).
		if _, cur := s.Config(); body.Expected != -1 && body.Expected != cur {
			res.Err = proto.ErrReconfigInProgress
			return true
		}
		if code := s.checkACL(n.acl.acl, proto.PermWrite, e.Auth); code != proto.ErrOK {
			res.Err = code
			return true
		}
	}
	_, cur := s.Config()
	if body.Expected != -1 && body.Expected != cur {
		res.Err = proto.ErrBadVersion
		return true
	}
	data := []byte(body.Config + "version=" + strconv.FormatUint(uint64(t.zxid), 16))
	s.dataSize += int64(len(data) - len(n.data))
	n.data = data
	n.stat.Version++
	n.stat.Mtime = e.Time
	n.stat.Mzxid = t.zxid
	res.Changes = []Change{{Type: proto.EventNodeDataChanged, Path: proto.ConfigPath, ACL: n.acl.acl}}
	res.Resp = &proto.GetDataResponse{Data: data, Stat: n.wireStat()}
	return true
}
