// Package recipes builds the classic ZooKeeper coordination recipes on
// the client package: a fair lock and a read-write lock, leader election
// with observation of the current leader, barriers and double barriers, a
// distributed queue, a counter, a service registry and a typed,
// watched configuration value.
//
// Every recipe follows ZooKeeper's own recipes (the "ZooKeeper Recipes and
// Solutions" page and Apache Curator): no polling, only watches; each
// waiter watches one node, never the whole group, so a change wakes one
// client, not all of them (no herd effect).
//
// # Failures
//
// Calls retry on ErrConnectionLoss, waiting for the client to reconnect,
// where a retry is safe. Nodes created with a sequence number embed a
// random token, so that after a connection loss the recipe finds the node
// it may have created instead of creating a second one (Curator's
// "protected" mode). When the session expires every ephemeral node of the
// recipe is gone with it: a held lock or leadership is lost. The calls
// then return client.ErrSessionExpired; watch the client's state
// (client.WithStateCallback) to learn of it while holding a lock, and
// start again with a new client (client.Client.NewSession).
package recipes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/paddockhq/paddock/client"
)

// retry runs f until it returns something other than ErrConnectionLoss,
// waiting for the client to reconnect in between.
func retry(ctx context.Context, c *client.Client, f func() error) error {
	for {
		err := f()
		if !errors.Is(err, client.ErrConnectionLoss) {
			return err
		}
		if err := c.WaitConnected(ctx); err != nil {
			return err
		}
	}
}

// token returns a random hex string that marks nodes as ours.
func token() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// seqNode is a sequential child: its name and sequence number.
type seqNode struct {
	name string
	seq  int64
}

// sequence parses the 10-digit suffix ZooKeeper appends to sequential
// names.
func sequence(name string) (int64, bool) {
	if len(name) < 10 {
		return 0, false
	}
	n, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
	return n, err == nil
}

// sortedChildren returns the children with a sequence suffix whose name
// starts with one of the prefixes, in sequence order.
func sortedChildren(names []string, prefixes ...string) []seqNode {
	var out []seqNode
	for _, n := range names {
		ok := len(prefixes) == 0
		for _, p := range prefixes {
			ok = ok || strings.HasPrefix(n, p)
		}
		if !ok {
			continue
		}
		if s, ok := sequence(n); ok {
			out = append(out, seqNode{n, s})
		}
	}
	slices.SortFunc(out, func(a, b seqNode) int {
		if a.seq != b.seq {
			if a.seq < b.seq {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// createProtected creates an ephemeral sequential node dir/prefix<token>-N
// with data and returns its name. After a connection loss it looks for a
// node carrying the token before trying again, so it never leaves an
// orphan of its own behind.
func createProtected(ctx context.Context, c *client.Client, dir, prefix string, data []byte) (string, error) {
	tok := prefix + token() + "-"
	for {
		p, _, err := c.Create(ctx, join(dir, tok), data, client.ModeEphemeralSequential, nil)
		if err == nil {
			return p[strings.LastIndexByte(p, '/')+1:], nil
		}
		if errors.Is(err, client.ErrNoNode) {
			if err := retry(ctx, c, func() error { return c.EnsurePath(ctx, dir, nil) }); err != nil {
				return "", err
			}
			continue
		}
		if !errors.Is(err, client.ErrConnectionLoss) {
			return "", err
		}
		if err := c.WaitConnected(ctx); err != nil {
			return "", err
		}
		var kids []string
		if err := retry(ctx, c, func() (err error) { kids, _, err = c.Children(ctx, dir); return }); err != nil {
			return "", err
		}
		for _, k := range kids {
			if strings.HasPrefix(k, tok) {
				return k, nil
			}
		}
	}
}

// deleteNode deletes path, retrying on connection loss; a node already
// gone is not an error.
func deleteNode(ctx context.Context, c *client.Client, path string) error {
	err := retry(ctx, c, func() error { return c.Delete(ctx, path, client.AnyVersion) })
	if errors.Is(err, client.ErrNoNode) {
		return nil
	}
	return err
}

// waitGone waits until the node at path no longer exists (or the watch
// ends). It returns nil when the caller should look again.
func waitGone(ctx context.Context, c *client.Client, path string) error {
	var ok bool
	var ch <-chan client.Event
	err := retry(ctx, c, func() (err error) { ok, _, ch, err = c.ExistsW(ctx, path); return })
	if err != nil || !ok {
		return err
	}
	select {
	case ev := <-ch:
		if ev.Type == client.EventNotWatching {
			return ev.Err
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
