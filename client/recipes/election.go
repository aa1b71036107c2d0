package recipes

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/paddockhq/paddock/client"
)

// ErrNoLeader is returned by Election.Leader when no candidate is
// campaigning.
var ErrNoLeader = errors.New("recipes: no leader")

// Election is leader election (ZooKeeper's election recipe): candidates
// queue up as ephemeral sequential nodes under a directory and the lowest
// leads. Each candidate watches only the one ahead of it, so when the
// leader goes (resigns, or its session ends) exactly the next candidate
// takes over. Anyone can see who leads (Leader) and follow changes
// (Observe) without campaigning.
//
// An Election value is one candidate.
type Election struct {
	c   *client.Client
	dir string

	mu   sync.Mutex
	node string // our node while leading
	busy bool   // a Campaign is in progress
}

// NewElection returns a candidate for the election at dir.
func NewElection(c *client.Client, dir string) *Election {
	return &Election{c: c, dir: dir}
}

const candidatePrefix = "candidate-"

// Campaign blocks until this candidate leads or ctx ends. value is
// published in the candidate's node; observers see the leader's value.
// On error the candidacy is withdrawn.
func (e *Election) Campaign(ctx context.Context, value []byte) error {
	e.mu.Lock()
	if e.node != "" || e.busy {
		e.mu.Unlock()
		return errors.New("recipes: already campaigning or leading")
	}
	e.busy = true
	e.mu.Unlock()
	node, err := acquire(ctx, e.c, e.dir, candidatePrefix, value, func(kids []seqNode, me int) string {
		if me == 0 {
			return ""
		}
		return kids[me-1].name
	}, candidatePrefix)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.busy = false
	if err != nil {
		return err
	}
	e.node = node
	return nil
}

// Resign gives up leadership; the next candidate takes over.
func (e *Election) Resign(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.node == "" {
		return nil
	}
	err := deleteNode(ctx, e.c, join(e.dir, e.node))
	e.node = ""
	return err
}

// IsLeader reports whether this candidate won the election and has not
// resigned. It does not notice a session expiry by itself: watch the
// client's state (or Observe) for that.
func (e *Election) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.node != "" && e.c.State() != client.StateExpired
}

// LeaderInfo describes the current leader.
type LeaderInfo struct {
	// Node is the leader's node path ("" when there is no leader).
	Node string
	// Value is what the leader published when campaigning.
	Value []byte
}

// Leader returns the current leader, or ErrNoLeader.
func (e *Election) Leader(ctx context.Context) (LeaderInfo, error) {
	for {
		var names []string
		err := retry(ctx, e.c, func() (err error) { names, _, err = e.c.Children(ctx, e.dir); return })
		if errors.Is(err, client.ErrNoNode) {
			return LeaderInfo{}, ErrNoLeader
		}
		if err != nil {
			return LeaderInfo{}, err
		}
		kids := sortedChildren(names, candidatePrefix)
		if len(kids) == 0 {
			return LeaderInfo{}, ErrNoLeader
		}
		p := join(e.dir, kids[0].name)
		var data []byte
		err = retry(ctx, e.c, func() (err error) { data, _, err = e.c.Get(ctx, p); return })
		if errors.Is(err, client.ErrNoNode) {
			continue // the leader just left; look again
		}
		if err != nil {
			return LeaderInfo{}, err
		}
		return LeaderInfo{Node: p, Value: data}, nil
	}
}

// Observe follows the election: the channel receives the current leader
// at once (Node "" if none) and then every change of leader. It is
// closed when ctx ends or the client's session ends.
func (e *Election) Observe(ctx context.Context) <-chan LeaderInfo {
	out := make(chan LeaderInfo, 1)
	go func() {
		defer close(out)
		var last *LeaderInfo
		for {
			info, wait, err := e.snapshot(ctx)
			if err != nil {
				return
			}
			if last == nil || last.Node != info.Node || !bytes.Equal(last.Value, info.Value) {
				select {
				case out <- info:
				case <-ctx.Done():
					return
				}
				last = &info
			}
			select {
			case ev := <-wait:
				if ev.Type == client.EventNotWatching {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// snapshot reads the leader and returns a channel that fires when the
// candidates change.
func (e *Election) snapshot(ctx context.Context) (LeaderInfo, <-chan client.Event, error) {
	for {
		var names []string
		var ch <-chan client.Event
		err := retry(ctx, e.c, func() (err error) { names, _, ch, err = e.c.ChildrenW(ctx, e.dir); return })
		if errors.Is(err, client.ErrNoNode) {
			var ok bool
			err = retry(ctx, e.c, func() (err error) { ok, _, ch, err = e.c.ExistsW(ctx, e.dir); return })
			if err != nil {
				return LeaderInfo{}, nil, err
			}
			if ok {
				continue
			}
			return LeaderInfo{}, ch, nil
		}
		if err != nil {
			return LeaderInfo{}, nil, err
		}
		kids := sortedChildren(names, candidatePrefix)
		if len(kids) == 0 {
			return LeaderInfo{}, ch, nil
		}
		p := join(e.dir, kids[0].name)
		var data []byte
		err = retry(ctx, e.c, func() (err error) { data, _, err = e.c.Get(ctx, p); return })
		if errors.Is(err, client.ErrNoNode) {
			continue
		}
		if err != nil {
			return LeaderInfo{}, nil, err
		}
		return LeaderInfo{Node: p, Value: data}, ch, nil
	}
}
