package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paddockhq/paddock/proto"
)

// call sends one request and wraps a failure in an *OpError.
func (c *Client) call(ctx context.Context, name, path string, r *request) error {
	if err := c.do(ctx, r); err != nil {
		return &OpError{Op: name, Path: path, Err: err}
	}
	return nil
}

// checkPath validates a client path (sequential paths may end in "/", as
// ZooKeeper allows for them).
func checkPath(op, path string, sequential bool) error {
	p := path
	if sequential {
		p += "1"
	}
	if err := proto.ValidatePath(p); err != nil {
		return &OpError{Op: op, Path: path, Err: fmt.Errorf("%w: %v", ErrInvalidPath, err)}
	}
	return nil
}

func orOpen(acl []ACL) []ACL {
	if acl == nil {
		return proto.OpenACLUnsafe
	}
	return acl
}

// Create creates a node with data and returns its path (with the sequence
// suffix for sequential modes) and its Stat. Nil data is sent as null, as
// the Java client sends a null array (zkCli shows it as "null" and Get
// returns nil); []byte{} is empty data. A nil acl means
// WorldACL(PermAll) (OPEN_ACL_UNSAFE). It fails with ErrNodeExists,
// ErrNoNode (no parent), ErrNoChildrenForEphemerals, ErrNoAuth or
// ErrInvalidACL. TTL modes need CreateTTL; ModeContainer is the same as
// CreateContainer.
func (c *Client) Create(ctx context.Context, path string, data []byte, mode CreateMode, acl []ACL) (string, *Stat, error) {
	if mode.IsTTL() {
		return "", nil, &OpError{Op: "create", Path: path, Err: fmt.Errorf("%w: mode %v needs CreateTTL", ErrBadArguments, mode)}
	}
	seq := mode == ModePersistentSequential || mode == ModeEphemeralSequential
	if err := checkPath("create", path, seq); err != nil {
		return "", nil, err
	}
	op := proto.OpCreate2
	if mode == ModeContainer {
		op = proto.OpCreateContainer
	}
	var resp proto.Create2Response
	r := newRequest(op, &proto.CreateRequest{Path: c.serverPath(path), Data: data, Acl: orOpen(acl), Flags: int32(mode)}, &resp)
	if err := c.call(ctx, "create", path, r); err != nil {
		return "", nil, err
	}
	return c.clientPath(resp.Path), &resp.Stat, nil
}

// CreateContainer creates a container node: the server deletes it once it
// has had children and has none left. Recipes use containers for the
// parents of their lock and election nodes so that they do not pile up.
func (c *Client) CreateContainer(ctx context.Context, path string, data []byte, acl []ACL) (string, *Stat, error) {
	return c.Create(ctx, path, data, ModeContainer, acl)
}

// CreateTTL creates a node with a time to live (mode ModePersistentWithTTL
// or ModePersistentSequentialWithTTL): the server deletes it when it has
// no children and was not modified for ttl. Servers refuse it with
// ErrUnimplemented unless extended types are enabled.
func (c *Client) CreateTTL(ctx context.Context, path string, data []byte, mode CreateMode, acl []ACL, ttl time.Duration) (string, *Stat, error) {
	if !mode.IsTTL() {
		return "", nil, &OpError{Op: "createTTL", Path: path, Err: fmt.Errorf("%w: mode %v is not a TTL mode", ErrBadArguments, mode)}
	}
	if err := checkPath("createTTL", path, mode == ModePersistentSequentialWithTTL); err != nil {
		return "", nil, err
	}
	var resp proto.Create2Response
	r := newRequest(proto.OpCreateTTL, &proto.CreateTTLRequest{Path: c.serverPath(path), Data: data,
		Acl: orOpen(acl), Flags: int32(mode), Ttl: ttl.Milliseconds()}, &resp)
	if err := c.call(ctx, "createTTL", path, r); err != nil {
		return "", nil, err
	}
	return c.clientPath(resp.Path), &resp.Stat, nil
}

// noData is the empty (not null) data of the nodes EnsurePath creates, as
// Curator's ZKPaths.mkdirs gives them.
var noData = []byte{}

// EnsurePath creates path and every missing ancestor as persistent nodes
// with empty data, ignoring nodes that already exist. A nil acl means
// WorldACL(PermAll).
func (c *Client) EnsurePath(ctx context.Context, path string, acl []ACL) error {
	if err := checkPath("create", path, false); err != nil {
		return err
	}
	if path == "/" {
		return nil
	}
	// Try the node itself first: usually only it (or nothing) is missing.
	_, _, err := c.Create(ctx, path, noData, ModePersistent, acl)
	if err == nil || errors.Is(err, ErrNodeExists) {
		return nil
	}
	if !errors.Is(err, ErrNoNode) {
		return err
	}
	if err := c.EnsurePath(ctx, parentPath(path), acl); err != nil {
		return err
	}
	_, _, err = c.Create(ctx, path, noData, ModePersistent, acl)
	if err != nil && !errors.Is(err, ErrNodeExists) {
		return err
	}
	return nil
}

// Delete deletes a node if its version matches (AnyVersion matches all).
// It fails with ErrNoNode, ErrBadVersion or ErrNotEmpty.
func (c *Client) Delete(ctx context.Context, path string, version int32) error {
	if err := checkPath("delete", path, false); err != nil {
		return err
	}
	r := newRequest(proto.OpDelete, &proto.DeleteRequest{Path: c.serverPath(path), Version: version}, nil)
	return c.call(ctx, "delete", path, r)
}

// DeleteAll deletes path and everything below it, children first, like
// zkCli's deleteall. It is not atomic: nodes created meanwhile may make it
// fail with ErrNotEmpty. A missing path is not an error.
func (c *Client) DeleteAll(ctx context.Context, path string) error {
	children, _, err := c.Children(ctx, path)
	if errors.Is(err, ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ch := range children {
		if err := c.DeleteAll(ctx, joinPath(path, ch)); err != nil {
			return err
		}
	}
	err = c.Delete(ctx, path, AnyVersion)
	if errors.Is(err, ErrNoNode) {
		return nil
	}
	return err
}

func joinPath(parent, child string) string {
	if parent == "/" {
		return "/" + child
	}
	return parent + "/" + child
}

// Exists reports whether a node exists, with its Stat when it does.
func (c *Client) Exists(ctx context.Context, path string) (bool, *Stat, error) {
	return c.exists(ctx, path, nil)
}

// ExistsW is Exists that also sets a watch: the channel receives one
// event, NodeCreated if the node was missing, NodeDeleted or
// NodeDataChanged if it existed, and is then closed. The watch survives
// reconnects; it ends with EventNotWatching if the session ends first.
func (c *Client) ExistsW(ctx context.Context, path string) (bool, *Stat, <-chan Event, error) {
	w := newOneShot()
	ok, st, err := c.exists(ctx, path, w)
	if err != nil {
		return false, nil, nil, err
	}
	return ok, st, w.ch, nil
}

func (c *Client) exists(ctx context.Context, path string, w *oneShot) (bool, *Stat, error) {
	if err := checkPath("exists", path, false); err != nil {
		return false, nil, err
	}
	sp := c.serverPath(path)
	var resp proto.ExistsResponse
	r := newRequest(proto.OpExists, &proto.ExistsRequest{Path: sp, Watch: w != nil}, &resp)
	if w != nil {
		r.onReply = func(code int32) {
			switch proto.ErrCode(code) {
			case proto.ErrOK:
				c.watches.addOneShot(c.watches.data, sp, w)
			case proto.ErrNoNode:
				c.watches.addOneShot(c.watches.exist, sp, w)
			}
		}
	}
	err := c.do(ctx, r)
	if errors.Is(err, ErrNoNode) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, &OpError{Op: "exists", Path: path, Err: err}
	}
	return true, &resp.Stat, nil
}

// Get returns a node's data and Stat. It fails with ErrNoNode or ErrNoAuth.
func (c *Client) Get(ctx context.Context, path string) ([]byte, *Stat, error) {
	return c.get(ctx, "getData", path, c.serverPath(path), nil)
}

// GetW is Get that also sets a data watch: the channel receives one event,
// NodeDataChanged or NodeDeleted, and is then closed. See ExistsW.
func (c *Client) GetW(ctx context.Context, path string) ([]byte, *Stat, <-chan Event, error) {
	w := newOneShot()
	data, st, err := c.get(ctx, "getData", path, c.serverPath(path), w)
	if err != nil {
		return nil, nil, nil, err
	}
	return data, st, w.ch, nil
}

func (c *Client) get(ctx context.Context, name, path, sp string, w *oneShot) ([]byte, *Stat, error) {
	if err := checkPath(name, path, false); err != nil {
		return nil, nil, err
	}
	var resp proto.GetDataResponse
	r := newRequest(proto.OpGetData, &proto.GetDataRequest{Path: sp, Watch: w != nil}, &resp)
	if w != nil {
		r.onReply = func(code int32) {
			if code == 0 {
				c.watches.addOneShot(c.watches.data, sp, w)
			}
		}
	}
	if err := c.call(ctx, name, path, r); err != nil {
		return nil, nil, err
	}
	return resp.Data, &resp.Stat, nil
}

// Set replaces a node's data if its version matches (AnyVersion matches
// all) and returns the new Stat. Nil data is null, as for Create. It fails with ErrNoNode, ErrBadVersion or
// ErrNoAuth.
func (c *Client) Set(ctx context.Context, path string, data []byte, version int32) (*Stat, error) {
	if err := checkPath("setData", path, false); err != nil {
		return nil, err
	}
	var resp proto.SetDataResponse
	r := newRequest(proto.OpSetData, &proto.SetDataRequest{Path: c.serverPath(path), Data: data, Version: version}, &resp)
	if err := c.call(ctx, "setData", path, r); err != nil {
		return nil, err
	}
	return &resp.Stat, nil
}

// Children returns the names of a node's children (in no particular
// order) and the node's Stat.
func (c *Client) Children(ctx context.Context, path string) ([]string, *Stat, error) {
	return c.children(ctx, path, nil)
}

// ChildrenW is Children that also sets a child watch: the channel
// receives one event, NodeChildrenChanged or NodeDeleted, and is then
// closed. See ExistsW.
func (c *Client) ChildrenW(ctx context.Context, path string) ([]string, *Stat, <-chan Event, error) {
	w := newOneShot()
	ch, st, err := c.children(ctx, path, w)
	if err != nil {
		return nil, nil, nil, err
	}
	return ch, st, w.ch, nil
}

func (c *Client) children(ctx context.Context, path string, w *oneShot) ([]string, *Stat, error) {
	if err := checkPath("getChildren", path, false); err != nil {
		return nil, nil, err
	}
	sp := c.serverPath(path)
	var resp proto.GetChildren2Response
	r := newRequest(proto.OpGetChildren2, &proto.GetChildren2Request{Path: sp, Watch: w != nil}, &resp)
	if w != nil {
		r.onReply = func(code int32) {
			if code == 0 {
				c.watches.addOneShot(c.watches.child, sp, w)
			}
		}
	}
	if err := c.call(ctx, "getChildren", path, r); err != nil {
		return nil, nil, err
	}
	if resp.Children == nil {
		resp.Children = []string{}
	}
	return resp.Children, &resp.Stat, nil
}

// GetACL returns a node's ACL and Stat.
func (c *Client) GetACL(ctx context.Context, path string) ([]ACL, *Stat, error) {
	if err := checkPath("getACL", path, false); err != nil {
		return nil, nil, err
	}
	var resp proto.GetACLResponse
	r := newRequest(proto.OpGetACL, &proto.GetACLRequest{Path: c.serverPath(path)}, &resp)
	if err := c.call(ctx, "getACL", path, r); err != nil {
		return nil, nil, err
	}
	return resp.Acl, &resp.Stat, nil
}

// SetACL replaces a node's ACL if its ACL version (Stat.Aversion) matches
// and returns the new Stat.
func (c *Client) SetACL(ctx context.Context, path string, acl []ACL, version int32) (*Stat, error) {
	if err := checkPath("setACL", path, false); err != nil {
		return nil, err
	}
	var resp proto.SetACLResponse
	r := newRequest(proto.OpSetACL, &proto.SetACLRequest{Path: c.serverPath(path), Acl: acl, Version: version}, &resp)
	if err := c.call(ctx, "setACL", path, r); err != nil {
		return nil, err
	}
	return &resp.Stat, nil
}

// Check asserts that a node exists with this version (AnyVersion: just
// exists), as the standalone check operation (opcode 13). It fails with
// ErrNoNode or ErrBadVersion. Apache ZooKeeper answers the standalone
// check only from 3.9 on (3.8 never replies: the call waits for its
// context); Multi with CheckOp works everywhere.
func (c *Client) Check(ctx context.Context, path string, version int32) error {
	if err := checkPath("check", path, false); err != nil {
		return err
	}
	r := newRequest(proto.OpCheck, &proto.CheckVersionRequest{Path: c.serverPath(path), Version: version}, nil)
	return c.call(ctx, "check", path, r)
}

// Sync makes the connected server catch up with the leader, so that this
// client's later reads see every write committed before Sync was called.
func (c *Client) Sync(ctx context.Context, path string) error {
	if err := checkPath("sync", path, false); err != nil {
		return err
	}
	var resp proto.SyncResponse
	r := newRequest(proto.OpSync, &proto.SyncRequest{Path: c.serverPath(path)}, &resp)
	return c.call(ctx, "sync", path, r)
}

// GetEphemerals returns the paths of this session's ephemeral nodes whose
// path starts with prefix ("/" for all).
func (c *Client) GetEphemerals(ctx context.Context, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = "/"
	}
	var resp proto.GetEphemeralsResponse
	r := newRequest(proto.OpGetEphemerals, &proto.GetEphemeralsRequest{PrefixPath: c.serverPath(prefix)}, &resp)
	if err := c.call(ctx, "getEphemerals", prefix, r); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(resp.Ephemerals))
	for _, p := range resp.Ephemerals {
		out = append(out, c.clientPath(p))
	}
	return out, nil
}

// GetAllChildrenNumber returns the number of all descendants of a node.
func (c *Client) GetAllChildrenNumber(ctx context.Context, path string) (int, error) {
	if err := checkPath("getAllChildrenNumber", path, false); err != nil {
		return 0, err
	}
	var resp proto.GetAllChildrenNumberResponse
	r := newRequest(proto.OpGetAllChildrenNumber, &proto.GetAllChildrenNumberRequest{Path: c.serverPath(path)}, &resp)
	if err := c.call(ctx, "getAllChildrenNumber", path, r); err != nil {
		return 0, err
	}
	return int(resp.TotalNumber), nil
}

// WhoAmI returns the identities the connection is authenticated as,
// including the implicit ip identity.
func (c *Client) WhoAmI(ctx context.Context) ([]ClientInfo, error) {
	var resp proto.WhoAmIResponse
	r := newRequest(proto.OpWhoAmI, nil, &resp)
	if err := c.call(ctx, "whoAmI", "", r); err != nil {
		return nil, err
	}
	return resp.ClientInfo, nil
}

// AddAuth adds credentials to the session (for example scheme "digest"
// with "user:password") and waits for the server to accept them. They are
// re-sent after every reconnect. A refusal is terminal: the server closes
// the connection and the client moves to StateAuthFailed.
func (c *Client) AddAuth(ctx context.Context, scheme string, auth []byte) error {
	a := authInfo{scheme, append([]byte(nil), auth...)}
	c.mu.Lock()
	c.auth = append(c.auth, a)
	c.mu.Unlock()
	r := newRequest(proto.OpAuth, &proto.AuthPacket{Type: 0, Scheme: scheme, Auth: a.auth}, nil)
	r.xid = proto.XidAuth
	return c.call(ctx, "auth", "", r)
}

// GetConfig returns the ensemble's configuration (the node
// /zookeeper/config, read outside any chroot) and its Stat.
func (c *Client) GetConfig(ctx context.Context) ([]byte, *Stat, error) {
	return c.get(ctx, "getConfig", proto.ConfigPath, proto.ConfigPath, nil)
}

// GetConfigW is GetConfig that also watches for the next configuration
// change.
func (c *Client) GetConfigW(ctx context.Context) ([]byte, *Stat, <-chan Event, error) {
	w := newOneShot()
	data, st, err := c.get(ctx, "getConfig", proto.ConfigPath, proto.ConfigPath, w)
	if err != nil {
		return nil, nil, nil, err
	}
	return data, st, w.ch, nil
}

// reconfigRequest is ReconfigRequest with ZooKeeper's nulls: a missing
// list is sent as a null string, not an empty one, which the server would
// try to parse.
type reconfigRequest struct {
	joining, leaving, members string
	from                      int64
}

// Encode writes the request, empty lists as null strings.
func (r *reconfigRequest) Encode(e *proto.Encoder) {
	for _, s := range []string{r.joining, r.leaving, r.members} {
		if s == "" {
			e.Int(-1)
		} else {
			e.String(s)
		}
	}
	e.Long(r.from)
}

// Decode reads the request (for symmetry; the client never decodes one).
func (r *reconfigRequest) Decode(d *proto.Decoder) {
	r.joining, r.leaving, r.members, r.from = d.String(), d.String(), d.String(), d.Long()
}

// IncrementalReconfig adds and removes ensemble members and returns the
// new configuration. joining holds server specs as ZooKeeper writes them
// ("server.4=host:2888:3888;2181"), leaving holds server ids. fromConfig
// is the config version (the zxid in "version=") the change is based on,
// or -1 for any. It needs reconfig to be enabled on the servers and the
// right ACL on /zookeeper/config.
func (c *Client) IncrementalReconfig(ctx context.Context, joining, leaving []string, fromConfig int64) ([]byte, *Stat, error) {
	return c.reconfig(ctx, &reconfigRequest{joining: strings.Join(joining, ","), leaving: strings.Join(leaving, ","), from: fromConfig})
}

// Reconfig replaces the ensemble's membership with members (server specs,
// as for IncrementalReconfig) and returns the new configuration.
func (c *Client) Reconfig(ctx context.Context, members []string, fromConfig int64) ([]byte, *Stat, error) {
	return c.reconfig(ctx, &reconfigRequest{members: strings.Join(members, ","), from: fromConfig})
}

func (c *Client) reconfig(ctx context.Context, req *reconfigRequest) ([]byte, *Stat, error) {
	var resp proto.GetDataResponse
	r := newRequest(proto.OpReconfig, req, &resp)
	if err := c.call(ctx, "reconfig", "", r); err != nil {
		return nil, nil, err
	}
	return resp.Data, &resp.Stat, nil
}

// AddWatch sets a persistent watch on path (which need not exist) and
// returns its event stream. WatchPersistent fires for data and child
// changes of the node; WatchPersistentRecursive for creation, deletion
// and data changes of the node and all its descendants. Neither is
// removed when it fires. See Watcher.
func (c *Client) AddWatch(ctx context.Context, path string, mode AddWatchMode) (*Watcher, error) {
	if err := checkPath("addWatch", path, false); err != nil {
		return nil, err
	}
	sp := c.serverPath(path)
	w := newWatcher(c, sp, mode)
	var resp proto.ErrorResponse
	r := newRequest(proto.OpAddWatch, &proto.AddWatchRequest{Path: sp, Mode: int32(mode)}, &resp)
	r.onReply = func(code int32) {
		if code == 0 {
			c.watches.addWatcher(w)
		}
	}
	if err := c.call(ctx, "addWatch", path, r); err != nil {
		w.push(Event{}, true) // end the pump; nobody has the channel
		return nil, err
	}
	return w, nil
}

// RemoveWatches removes every watch of type t on path, on the server and
// here: each one-shot watch channel gets DataWatchRemoved or
// ChildWatchRemoved, and each Watcher PersistentWatchRemoved, before it is
// closed. It fails with ErrNoWatcher if this client has no such watch.
// With local set, the watches are removed here even if the server cannot
// be reached (ZooKeeper's "local" flag).
func (c *Client) RemoveWatches(ctx context.Context, path string, t WatcherType, local bool) error {
	if err := checkPath("removeWatches", path, false); err != nil {
		return err
	}
	sp := c.serverPath(path)
	if !c.watches.has(sp, t) {
		return &OpError{Op: "removeWatches", Path: path, Err: ErrNoWatcher}
	}
	r := newRequest(proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: sp, Type: int32(t)}, nil)
	r.onReply = func(code int32) {
		if code == 0 {
			c.watches.remove(sp, t)
		}
	}
	err := c.call(ctx, "removeWatches", path, r)
	if err != nil && local {
		c.watches.remove(sp, t)
		return nil
	}
	return err
}

// CheckWatches reports (nil or ErrNoWatcher) whether a watch of type t is
// set on path, both here and on the server.
func (c *Client) CheckWatches(ctx context.Context, path string, t WatcherType) error {
	if err := checkPath("checkWatches", path, false); err != nil {
		return err
	}
	sp := c.serverPath(path)
	if !c.watches.has(sp, t) {
		return &OpError{Op: "checkWatches", Path: path, Err: ErrNoWatcher}
	}
	r := newRequest(proto.OpCheckWatches, &proto.CheckWatchesRequest{Path: sp, Type: int32(t)}, nil)
	return c.call(ctx, "checkWatches", path, r)
}
