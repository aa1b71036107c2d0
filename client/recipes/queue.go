package recipes

import (
	"context"
	"errors"

	"github.com/paddockhq/paddock/client"
)

// Queue is a distributed FIFO queue (ZooKeeper's queue recipe): items are
// persistent sequential nodes under a directory, taken in sequence order
// by deleting them. Any number of producers and consumers may share it;
// each item is taken by one consumer.
//
// An item is removed when it is taken: if the consumer fails after Take
// returns, the item is lost (at-most-once). A Take interrupted by a
// connection loss may also lose the item it was deleting.
type Queue struct {
	c   *client.Client
	dir string
}

// NewQueue returns the queue at dir.
func NewQueue(c *client.Client, dir string) *Queue { return &Queue{c: c, dir: dir} }

const itemPrefix = "item-"

// Put appends an item and returns its node's path.
func (q *Queue) Put(ctx context.Context, data []byte) (string, error) {
	for {
		p, _, err := q.c.Create(ctx, join(q.dir, itemPrefix), data, client.ModePersistentSequential, nil)
		if errors.Is(err, client.ErrNoNode) {
			if err := retry(ctx, q.c, func() error { return q.c.EnsurePath(ctx, q.dir, nil) }); err != nil {
				return "", err
			}
			continue
		}
		// A connection loss is returned: retrying could add the item twice.
		return p, err
	}
}

// Take removes and returns the head of the queue, waiting for an item if
// the queue is empty.
func (q *Queue) Take(ctx context.Context) ([]byte, error) {
	for {
		data, ok, ch, err := q.poll(ctx, true)
		if err != nil || ok {
			return data, err
		}
		select {
		case ev := <-ch:
			if ev.Type == client.EventNotWatching {
				return nil, ev.Err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Poll removes and returns the head of the queue; ok is false if the
// queue is empty.
func (q *Queue) Poll(ctx context.Context) (data []byte, ok bool, err error) {
	data, ok, _, err = q.poll(ctx, false)
	return data, ok, err
}

// Len returns the number of items queued.
func (q *Queue) Len(ctx context.Context) (int, error) {
	var names []string
	err := retry(ctx, q.c, func() (err error) { names, _, err = q.c.Children(ctx, q.dir); return })
	if errors.Is(err, client.ErrNoNode) {
		return 0, nil
	}
	return len(sortedChildren(names, itemPrefix)), err
}

func (q *Queue) poll(ctx context.Context, watch bool) ([]byte, bool, <-chan client.Event, error) {
	for {
		var names []string
		var ch <-chan client.Event
		err := retry(ctx, q.c, func() (err error) {
			if watch {
				names, _, ch, err = q.c.ChildrenW(ctx, q.dir)
			} else {
				names, _, err = q.c.Children(ctx, q.dir)
			}
			return
		})
		if errors.Is(err, client.ErrNoNode) {
			if err := retry(ctx, q.c, func() error { return q.c.EnsurePath(ctx, q.dir, nil) }); err != nil {
				return nil, false, nil, err
			}
			continue
		}
		if err != nil {
			return nil, false, nil, err
		}
		items := sortedChildren(names, itemPrefix)
		for _, it := range items {
			p := join(q.dir, it.name)
			data, _, err := q.c.Get(ctx, p)
			if errors.Is(err, client.ErrNoNode) {
				continue // taken by another consumer
			}
			if err != nil {
				return nil, false, nil, err
			}
			err = q.c.Delete(ctx, p, client.AnyVersion)
			if errors.Is(err, client.ErrNoNode) {
				continue
			}
			if err != nil {
				return nil, false, nil, err
			}
			return data, true, nil, nil
		}
		return nil, false, ch, nil
	}
}
