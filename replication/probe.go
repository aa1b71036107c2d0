package replication

import (
	"context"
	"errors"
	"fmt"
	"net"
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
//
// Status probes (kind 4) carry a question: a member with an empty data
// directory tells its peers who it is and asks what place it holds in
// their configuration before it takes part in raft (the server's
// admission check):
//
//	dialer:   hello (kind 4), then one type-6 frame (the question)
//	acceptor: hello reply; reads the question; one type-5 frame holding
//	          TransportConfig.StatusProbe(dialer's id, question), then close.
//
// They are a kind of their own, not a new answer to kind 3, so that a
// member of an older version that only knows kind 3 refuses the connection
// ("unknown connection kind") rather than misreading the answer; the
// dialer then sees ErrStatusProbeUnsupported.
const (
	connProbe          = 3 // one status frame, then closed
	connStatusProbe    = 4 // a question, one status frame (StatusProbe), then closed
	frameProbeReply    = 5 // the acceptor's answer to a probe
	frameProbeQuestion = 6 // the dialer's question of a status probe
	maxProbeBytes      = 64 << 10
)

// ErrStatusProbeUnsupported: the peer does not answer status probes (an
// older version, or no TransportConfig.StatusProbe).
var ErrStatusProbeUnsupported = errors.New("replication: peer does not answer status probes")

// Probe asks member id for its status (whatever its TransportConfig.Probe
// returns) over a short-lived connection of its own. It works before a
// Handler is set, which is the point: members exchange it while deciding
// whether to bootstrap.
func (t *TCPTransport) Probe(ctx context.Context, id uint64) ([]byte, error) {
	return t.probe(ctx, id, connProbe, nil)
}

// ProbeStatus asks member id the question (at most 64 KiB) and returns its
// TransportConfig.StatusProbe answer (kind 4), like Probe. A peer that
// does not know the kind, or has no StatusProbe, yields
// ErrStatusProbeUnsupported.
func (t *TCPTransport) ProbeStatus(ctx context.Context, id uint64, question []byte) ([]byte, error) {
	if len(question) > maxProbeBytes {
		return nil, fmt.Errorf("replication: status probe question of %d bytes", len(question))
	}
	return t.probe(ctx, id, connStatusProbe, question)
}

func (t *TCPTransport) probe(ctx context.Context, id uint64, kind byte, question []byte) ([]byte, error) {
	if t.isBlocked(id) {
		return nil, fmt.Errorf("member %d is blocked by fault injection", id)
	}
	conn, err := t.dial(id, kind)
	if errors.Is(err, errUnknownKind) {
		return nil, fmt.Errorf("%w: member %d: %v", ErrStatusProbeUnsupported, id, err)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if kind == connStatusProbe {
		conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout))
		if err := writeFrame(conn, frameProbeQuestion, question); err != nil {
			return nil, fmt.Errorf("probe of member %d: %w", id, err)
		}
	}
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

// serveProbe answers one probe (kind 3, or 4 with StatusProbe).
func (t *TCPTransport) serveProbe(conn net.Conn, from uint64, kind byte) {
	var status []byte
	switch {
	case kind == connStatusProbe:
		conn.SetReadDeadline(time.Now().Add(t.cfg.IOTimeout))
		typ, q, err := readFrame(conn, maxProbeBytes)
		if err != nil || typ != frameProbeQuestion {
			t.log.Debug("replication: status probe without a question", "peer", from, "type", typ, "err", err)
			return
		}
		status = t.cfg.StatusProbe(from, q)
	case t.cfg.Probe != nil:
		status = t.cfg.Probe(from)
	}
	conn.SetWriteDeadline(time.Now().Add(t.cfg.IOTimeout))
	if err := writeFrame(conn, frameProbeReply, status); err != nil {
		t.log.Debug("replication: answering probe failed", "peer", from, "err", err)
	}
}
