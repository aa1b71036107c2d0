package recipes

import (
	"context"
	"errors"
	"strings"

	"github.com/paddockhq/paddock/client"
)

// Barrier holds a group of processes back until someone lifts it
// (ZooKeeper's barrier recipe): the barrier is up while its node exists.
type Barrier struct {
	c    *client.Client
	path string
}

// NewBarrier returns the barrier whose node is path.
func NewBarrier(c *client.Client, path string) *Barrier { return &Barrier{c: c, path: path} }

// Set raises the barrier (creates its node and missing parents). Raising
// a raised barrier is not an error.
func (b *Barrier) Set(ctx context.Context) error {
	return retry(ctx, b.c, func() error { return b.c.EnsurePath(ctx, b.path, nil) })
}

// Remove lifts the barrier, releasing every waiter.
func (b *Barrier) Remove(ctx context.Context) error { return deleteNode(ctx, b.c, b.path) }

// Wait blocks until the barrier is lifted (returns at once if it is not
// up) or ctx ends.
func (b *Barrier) Wait(ctx context.Context) error {
	for {
		var ok bool
		var ch <-chan client.Event
		err := retry(ctx, b.c, func() (err error) { ok, _, ch, err = b.c.ExistsW(ctx, b.path); return })
		if err != nil || !ok {
			return err
		}
		select {
		case ev := <-ch:
			if ev.Type == client.EventNotWatching {
				return ev.Err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// DoubleBarrier lets a fixed number of processes start a computation
// together and finish it together (ZooKeeper's double barrier recipe):
// Enter returns once count participants have entered, Leave once all of
// them have left. Each participant is an ephemeral node under dir, so a
// participant whose session ends counts as gone.
//
// A DoubleBarrier value is one participant; a directory serves one round.
type DoubleBarrier struct {
	c     *client.Client
	dir   string
	name  string
	count int
}

// NewDoubleBarrier returns participant name (unique within the barrier)
// of the double barrier at dir, for count participants.
func NewDoubleBarrier(c *client.Client, dir, name string, count int) *DoubleBarrier {
	return &DoubleBarrier{c: c, dir: dir, name: name, count: count}
}

const readyNode = "ready"

func (d *DoubleBarrier) participants(ctx context.Context) ([]string, error) {
	var names []string
	err := retry(ctx, d.c, func() (err error) { names, _, err = d.c.Children(ctx, d.dir); return })
	var out []string
	for _, n := range names {
		if n != readyNode {
			out = append(out, n)
		}
	}
	return out, err
}

// Enter joins the barrier and blocks until count participants have
// joined.
func (d *DoubleBarrier) Enter(ctx context.Context) error {
	if err := retry(ctx, d.c, func() error { return d.c.EnsurePath(ctx, d.dir, nil) }); err != nil {
		return err
	}
	me := join(d.dir, d.name)
	err := retry(ctx, d.c, func() error {
		_, _, err := d.c.Create(ctx, me, nil, client.ModeEphemeral, nil)
		return err
	})
	if err != nil && !errors.Is(err, client.ErrNodeExists) {
		return err
	}
	ready := join(d.dir, readyNode)
	for {
		// Watch "ready" first, so that its creation cannot slip between
		// the count and the wait.
		var ok bool
		var ch <-chan client.Event
		if err := retry(ctx, d.c, func() (err error) { ok, _, ch, err = d.c.ExistsW(ctx, ready); return }); err != nil {
			return err
		}
		if ok {
			return nil
		}
		kids, err := d.participants(ctx)
		if err != nil {
			return err
		}
		if len(kids) >= d.count {
			err := retry(ctx, d.c, func() error {
				_, _, err := d.c.Create(ctx, ready, nil, client.ModePersistent, nil)
				return err
			})
			if err != nil && !errors.Is(err, client.ErrNodeExists) {
				return err
			}
			return nil
		}
		select {
		case ev := <-ch:
			if ev.Type == client.EventNotWatching {
				return ev.Err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Leave leaves the barrier and blocks until every participant has left.
// It follows the recipe: the lowest-named participant waits for the
// highest to go; every other one removes itself and waits for the lowest.
// The last one out removes the "ready" node.
func (d *DoubleBarrier) Leave(ctx context.Context) error {
	me := d.name
	for {
		kids, err := d.participants(ctx)
		if err != nil {
			return err
		}
		mine := false
		for _, k := range kids {
			mine = mine || k == me
		}
		if len(kids) == 0 || (len(kids) == 1 && mine) {
			if mine {
				if err := deleteNode(ctx, d.c, join(d.dir, me)); err != nil {
					return err
				}
			}
			return deleteNode(ctx, d.c, join(d.dir, readyNode))
		}
		lowest, highest := kids[0], kids[0]
		for _, k := range kids {
			if strings.Compare(k, lowest) < 0 {
				lowest = k
			}
			if strings.Compare(k, highest) > 0 {
				highest = k
			}
		}
		var wait string
		if mine && me == lowest {
			wait = highest
		} else {
			if mine {
				if err := deleteNode(ctx, d.c, join(d.dir, me)); err != nil {
					return err
				}
			}
			wait = lowest
		}
		if err := waitGone(ctx, d.c, join(d.dir, wait)); err != nil {
			return err
		}
	}
}
