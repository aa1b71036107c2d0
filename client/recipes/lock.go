package recipes

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/paddockhq/paddock/client"
)

// ErrNotHeld is returned by Unlock when the lock is not held.
var ErrNotHeld = errors.New("recipes: lock not held")

// Lock is a fair, exclusive distributed lock (ZooKeeper's lock recipe).
// Each contender creates an ephemeral sequential node under the lock's
// directory; the lowest holds the lock, and every other contender watches
// only the node just before its own, so a release wakes one waiter.
// Contenders acquire the lock in the order they asked for it.
//
// A Lock value is one contender: use one per goroutine or process. It is
// not reentrant.
type Lock struct {
	c    *client.Client
	dir  string
	data []byte

	mu   sync.Mutex
	node string // our node's name while held
	busy bool   // a Lock call is in progress
}

// NewLock returns a contender for the lock at dir. data is stored in the
// contender's node, for tools that show who holds or waits for the lock.
func NewLock(c *client.Client, dir string, data []byte) *Lock {
	return &Lock{c: c, dir: dir, data: data}
}

const lockPrefix = "lock-"

// Lock blocks until the lock is held or ctx ends. On error (including the
// context's) the contender's node is removed and the lock is not held.
func (l *Lock) Lock(ctx context.Context) error {
	l.mu.Lock()
	if l.node != "" || l.busy {
		l.mu.Unlock()
		return errors.New("recipes: lock already held or being acquired by this contender")
	}
	l.busy = true
	l.mu.Unlock()
	node, err := acquire(ctx, l.c, l.dir, lockPrefix, l.data, func(kids []seqNode, me int) string {
		if me == 0 {
			return ""
		}
		return kids[me-1].name
	}, lockPrefix)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.busy = false
	if err != nil {
		return err
	}
	l.node = node
	return nil
}

// Unlock releases the lock.
func (l *Lock) Unlock(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.node == "" {
		return ErrNotHeld
	}
	err := deleteNode(ctx, l.c, join(l.dir, l.node))
	l.node = ""
	return err
}

// Node returns the path of the contender's node while the lock is held,
// or "".
func (l *Lock) Node() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.node == "" {
		return ""
	}
	return join(l.dir, l.node)
}

// acquire is the queue-of-contenders algorithm shared by the locks and
// the election: create our node, then loop — list the contenders in
// sequence order, ask blocker which node we must wait for ("" = none:
// acquired), and wait for that node to go.
func acquire(ctx context.Context, c *client.Client, dir, prefix string, data []byte,
	blocker func(kids []seqNode, me int) string, prefixes ...string) (string, error) {
	node, err := createProtected(ctx, c, dir, prefix, data)
	if err != nil {
		return "", err
	}
	for {
		var names []string
		err = retry(ctx, c, func() (err error) { names, _, err = c.Children(ctx, dir); return })
		if err != nil {
			break
		}
		kids := sortedChildren(names, prefixes...)
		me := -1
		for i, k := range kids {
			if k.name == node {
				me = i
			}
		}
		if me < 0 {
			err = client.ErrSessionExpired // our ephemeral node is gone
			break
		}
		wait := blocker(kids, me)
		if wait == "" {
			return node, nil
		}
		if err = waitGone(ctx, c, join(dir, wait)); err != nil {
			break
		}
	}
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.SessionTimeout())
	defer cancel()
	deleteNode(cleanup, c, join(dir, node))
	return "", err
}

// RWLock is a distributed read-write lock (ZooKeeper's shared lock
// recipe): any number of readers, or one writer, hold it at a time, and
// contenders are served in the order they asked, so a waiting writer is
// not starved by a stream of readers.
type RWLock struct {
	c   *client.Client
	dir string
}

// NewRWLock returns the read-write lock at dir.
func NewRWLock(c *client.Client, dir string) *RWLock { return &RWLock{c: c, dir: dir} }

const (
	readPrefix  = "read-"
	writePrefix = "write-"
)

// Held is a held read or write lock; release it with Unlock.
type Held struct {
	c    *client.Client
	path string
}

// Unlock releases the lock.
func (h *Held) Unlock(ctx context.Context) error { return deleteNode(ctx, h.c, h.path) }

// Path returns the holder's node.
func (h *Held) Path() string { return h.path }

// RLock blocks until a read lock is held: when no writer asked before us.
// A reader waits for the last writer ahead of it.
func (rw *RWLock) RLock(ctx context.Context) (*Held, error) {
	node, err := acquire(ctx, rw.c, rw.dir, readPrefix, nil, func(kids []seqNode, me int) string {
		for i := me - 1; i >= 0; i-- {
			if strings.HasPrefix(kids[i].name, writePrefix) {
				return kids[i].name
			}
		}
		return ""
	}, readPrefix, writePrefix)
	if err != nil {
		return nil, err
	}
	return &Held{rw.c, join(rw.dir, node)}, nil
}

// Lock blocks until the write lock is held: when we are first in line. A
// writer waits for the contender just ahead of it.
func (rw *RWLock) Lock(ctx context.Context) (*Held, error) {
	node, err := acquire(ctx, rw.c, rw.dir, writePrefix, nil, func(kids []seqNode, me int) string {
		if me == 0 {
			return ""
		}
		return kids[me-1].name
	}, readPrefix, writePrefix)
	if err != nil {
		return nil, err
	}
	return &Held{rw.c, join(rw.dir, node)}, nil
}
