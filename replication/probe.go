package replication

import (
	"context"
	"fmt"
	"time"
)

// Probe connections let a member that is about to bootstrap a new group
// ask its peers about their data directories before any raft message is
// exchanged. They use the same handshake as the other connections (so a
// member of another cluster never answers), with kind 3:
//
//	dialer:   hello (kind 3)
//	acceptor: hello reply, then one type-5 frame holding
//	          TransportConfig.Probe(dialer's id) of the acceptor, then close.
const (
	connProbe       = 3 // one status frame, then closed
	frameProbeReply = 5 // the acceptor's answer to a probe
	maxProbeBytes   = 64 << 10
)

// Probe asks member id for its status (whatever its TransportConfig.Probe
// returns) over a short-lived connection of its own. It works before a
// Handler is set, which is the point: members exchange it while deciding
// whether to bootstrap.
func (t *TCPTransport) Probe(ctx context.Context, id uint64) ([]byte, error) {
	if t.isBlocked(id) {
		return nil, fmt.Errorf("member %d is blocked by fault injection", id)
	}
	conn, err := t.dial(id, connProbe)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetReadDeadline(time.Now().Add(t.cfg.IOTimeout))
	typ, payload, err := readFrame(conn, maxProbeBytes)
	if err != nil {
		return nil, fmt.Errorf("probe of member %d: %w", id, err)
	}
	if typ != frameProbeReply {
		return nil, fmt.Errorf("probe of member %d: unexpected frame type %d", id, typ)
	}
	return payload, nil
}

// serveProbe answers one probe.
func (t *TCPTransport) serveProbe(conn interface {
	Write([]byte) (int, error)
	SetWriteDeadline(time.Time) error
}, from uint64) {
	var status []byte
	if t.cfg.Probe != nil {
		status = t.cfg.Probe(from)
	}
	conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout))
	if err := writeFrame(conn, frameProbeReply, status); err != nil {
		t.log.Debug("replication: answering probe failed", "peer", from, "err", err)
	}
}
