package recipes

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/paddockhq/paddock/client"
)

// Counter is a shared integer updated by compare-and-set on the node's
// version: read the value and its version, write the new value if the
// version has not moved, retry otherwise. No lock is needed. The value is
// stored as decimal text, readable with any ZooKeeper tool.
type Counter struct {
	c    *client.Client
	path string
}

// NewCounter returns the counter stored at path (created on first use,
// starting at 0).
func NewCounter(c *client.Client, path string) *Counter { return &Counter{c: c, path: path} }

// Get returns the current value (0 if the counter does not exist yet).
func (ct *Counter) Get(ctx context.Context) (int64, error) {
	v, _, err := ct.read(ctx)
	return v, err
}

func (ct *Counter) read(ctx context.Context) (int64, int32, error) {
	var data []byte
	var st *client.Stat
	err := retry(ctx, ct.c, func() (err error) { data, st, err = ct.c.Get(ctx, ct.path); return })
	if errors.Is(err, client.ErrNoNode) {
		return 0, -1, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if len(data) == 0 {
		return 0, st.Version, nil
	}
	v, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("recipes: counter %s holds %q: %w", ct.path, data, err)
	}
	return v, st.Version, nil
}

// Add adds delta and returns the new value. A connection loss during the
// write is returned rather than retried, since the write may have been
// applied: re-read with Get to find out.
func (ct *Counter) Add(ctx context.Context, delta int64) (int64, error) {
	for {
		v, version, err := ct.read(ctx)
		if err != nil {
			return 0, err
		}
		n := v + delta
		val := []byte(strconv.FormatInt(n, 10))
		if version < 0 {
			_, _, err = ct.c.Create(ctx, ct.path, val, client.ModePersistent, nil)
			if errors.Is(err, client.ErrNoNode) {
				if err := retry(ctx, ct.c, func() error { return ct.c.EnsurePath(ctx, parent(ct.path), nil) }); err != nil {
					return 0, err
				}
				continue
			}
			if errors.Is(err, client.ErrNodeExists) {
				continue
			}
		} else {
			_, err = ct.c.Set(ctx, ct.path, val, version)
			if errors.Is(err, client.ErrBadVersion) || errors.Is(err, client.ErrNoNode) {
				continue
			}
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

func parent(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}
