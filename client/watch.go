package client

import (
	"context"
	"errors"
	"sync"

	"github.com/paddockhq/paddock/proto"
)

// oneShot is a standard watch: one event, then its channel is closed.
type oneShot struct {
	ch chan Event
}

func newOneShot() *oneShot { return &oneShot{ch: make(chan Event, 1)} }

func (w *oneShot) fire(ev Event) {
	w.ch <- ev // never blocks: capacity 1, fired once
	close(w.ch)
}

// Watcher is a persistent watch set by AddWatch: a stream of events that
// stays armed until Remove, the session's end or Close. Events arrive on
// Events in the order the server sent them; the last one is
// EventPersistentWatchRemoved or EventNotWatching, after which the channel
// is closed. Besides node events it carries EventNone events with
// StateDisconnected and StateConnected: persistent watches are re-armed
// after a reconnect but changes made meanwhile are not replayed, so a
// consumer that caches state should re-read it on reconnection.
//
// Read Events until it is closed: undelivered events are buffered without
// bound.
type Watcher struct {
	c    *Client
	path string // server path
	mode AddWatchMode
	ch   chan Event

	mu       sync.Mutex
	queue    []Event
	inflight bool
	final    bool
	wake     chan struct{}
}

func newWatcher(c *Client, path string, mode AddWatchMode) *Watcher {
	w := &Watcher{c: c, path: path, mode: mode, ch: make(chan Event, 64), wake: make(chan struct{}, 1)}
	go w.pump()
	return w
}

// Events returns the event stream.
func (w *Watcher) Events() <-chan Event { return w.ch }

// Path returns the watched path (relative to the chroot).
func (w *Watcher) Path() string { return w.c.clientPath(w.path) }

// Mode returns the kind of persistent watch.
func (w *Watcher) Mode() AddWatchMode { return w.mode }

// Remove ends the watch: the stream gets EventPersistentWatchRemoved and
// is closed. The server's watch is removed when no other Watcher of the
// same mode on this path remains; if that request fails (the client is
// disconnected), the local watch is removed anyway and the error returned.
func (w *Watcher) Remove(ctx context.Context) error {
	m := w.c.watches
	m.mu.Lock()
	table := m.persistent
	wt := WatcherPersistent
	if w.mode == WatchPersistentRecursive {
		table, wt = m.recursive, WatcherPersistentRecursive
	}
	list := table[w.path]
	found := false
	for i, x := range list {
		if x == w {
			list = append(list[:i:i], list[i+1:]...)
			found = true
			break
		}
	}
	if len(list) == 0 {
		delete(table, w.path)
	} else {
		table[w.path] = list
	}
	last := len(list) == 0
	m.mu.Unlock()
	if !found {
		return nil
	}
	w.push(Event{Type: EventPersistentWatchRemoved, State: w.c.State(), Path: w.Path()}, true)
	if !last {
		return nil
	}
	r := newRequest(proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: w.path, Type: int32(wt)}, nil)
	err := w.c.do(ctx, r)
	if errors.Is(err, ErrMarshallingError) || errors.Is(err, ErrBadArguments) {
		// Apache ZooKeeper before 3.9 removes persistent watches only
		// with WatcherAny. Use it when no other watch of this client is
		// on the path; otherwise leave the server's watch: its events
		// find no local watcher and are dropped, and it is not re-armed
		// after a reconnect.
		err = nil
		if !m.has(w.path, WatcherAny) {
			r := newRequest(proto.OpRemoveWatches, &proto.RemoveWatchesRequest{Path: w.path, Type: int32(WatcherAny)}, nil)
			err = w.c.do(ctx, r)
		}
	}
	if err != nil && !errors.Is(err, ErrNoWatcher) {
		return &OpError{Op: "removeWatches", Path: w.Path(), Err: err}
	}
	return nil
}

// push queues ev; final marks the last event of the stream. The event goes
// straight into the channel when nothing is queued ahead of it, so it is
// there before the reader handles the server's next message.
func (w *Watcher) push(ev Event, final bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.final {
		return
	}
	w.final = final
	if len(w.queue) == 0 && !w.inflight {
		select {
		case w.ch <- ev:
			if final {
				w.signal()
			}
			return
		default:
		}
	}
	w.queue = append(w.queue, ev)
	w.signal()
}

func (w *Watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) pump() {
	for range w.wake {
		for {
			w.mu.Lock()
			if len(w.queue) == 0 {
				final := w.final
				w.mu.Unlock()
				if final {
					close(w.ch)
					return
				}
				break
			}
			ev := w.queue[0]
			w.queue = w.queue[1:]
			w.inflight = true
			w.mu.Unlock()
			w.ch <- ev
			w.mu.Lock()
			w.inflight = false
			w.mu.Unlock()
		}
	}
}

// watchManager holds the client's watches by server path, as ZooKeeper's
// ZKWatchManager does: data watches (Get, Exists on an existing node),
// exist watches (Exists on a missing node), child watches, and persistent
// and persistent-recursive watchers.
type watchManager struct {
	c *Client

	mu         sync.Mutex
	data       map[string][]*oneShot
	exist      map[string][]*oneShot
	child      map[string][]*oneShot
	persistent map[string][]*Watcher
	recursive  map[string][]*Watcher
	ended      bool
	endState   State
	endErr     error
	connected  bool // last session event delivered to persistent watchers
}

func newWatchManager(c *Client) *watchManager {
	return &watchManager{
		c:          c,
		data:       map[string][]*oneShot{},
		exist:      map[string][]*oneShot{},
		child:      map[string][]*oneShot{},
		persistent: map[string][]*Watcher{},
		recursive:  map[string][]*Watcher{},
	}
}

// addOneShot registers w in table under path (called from the reader when
// the reply that sets the watch arrives).
func (m *watchManager) addOneShot(table map[string][]*oneShot, path string, w *oneShot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		w.fire(Event{Type: EventNotWatching, State: m.endState, Path: m.c.clientPath(path), Err: m.endErr})
		return
	}
	table[path] = append(table[path], w)
}

func (m *watchManager) addWatcher(w *Watcher) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		w.push(Event{Type: EventNotWatching, State: m.endState, Path: w.Path(), Err: m.endErr}, true)
		return
	}
	if w.mode == WatchPersistentRecursive {
		m.recursive[w.path] = append(m.recursive[w.path], w)
	} else {
		m.persistent[w.path] = append(m.persistent[w.path], w)
	}
}

// dispatch delivers a server notification to the watches it triggers, by
// ZooKeeper's rules (ZKWatchManager.materialize).
func (m *watchManager) dispatch(we proto.WatcherEvent, zxid int64) {
	path := we.Path
	typ := EventType(we.Type)
	ev := Event{Type: typ, State: State(we.State), Path: m.c.clientPath(path), Zxid: zxid}
	var shots []*oneShot
	var ws []*Watcher
	m.mu.Lock()
	take := func(t map[string][]*oneShot) {
		shots = append(shots, t[path]...)
		delete(t, path)
	}
	switch typ {
	case EventNodeCreated, EventNodeDataChanged:
		take(m.data)
		take(m.exist)
	case EventNodeChildrenChanged:
		take(m.child)
	case EventNodeDeleted:
		take(m.data)
		take(m.exist)
		take(m.child)
	}
	ws = append(ws, m.persistent[path]...)
	if typ != EventNodeChildrenChanged {
		for p := path; ; p = parentPath(p) {
			ws = append(ws, m.recursive[p]...)
			if p == "/" {
				break
			}
		}
	}
	// Delivered under m.mu so that a concurrent Remove or terminate cannot
	// slip a final event in front of this one; no delivery blocks. The
	// session stream gets the event once if any watch took it, as the
	// Java client's default watcher does (materialize returns a set).
	for _, w := range shots {
		w.fire(ev)
	}
	for _, w := range ws {
		w.push(ev, false)
	}
	if len(shots)+len(ws) > 0 {
		m.c.events.push(ev, false)
	}
	m.mu.Unlock()
}

// sessionEvent tells persistent watchers that the connection was lost or
// re-established.
func (m *watchManager) sessionEvent(s State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended || m.connected == s.Connected() {
		m.connected = s.Connected()
		return
	}
	m.connected = s.Connected()
	ev := Event{Type: EventNone, State: s}
	for _, t := range []map[string][]*Watcher{m.persistent, m.recursive} {
		for _, list := range t {
			for _, w := range list {
				w.push(ev, false)
			}
		}
	}
}

// terminate ends every watch with EventNotWatching.
func (m *watchManager) terminate(s State, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended, m.endState, m.endErr = true, s, err
	for _, t := range []map[string][]*oneShot{m.data, m.exist, m.child} {
		for p, list := range t {
			for _, w := range list {
				w.fire(Event{Type: EventNotWatching, State: s, Path: m.c.clientPath(p), Err: err})
			}
			delete(t, p)
		}
	}
	for _, t := range []map[string][]*Watcher{m.persistent, m.recursive} {
		for p, list := range t {
			for _, w := range list {
				w.push(Event{Type: EventNotWatching, State: s, Path: m.c.clientPath(p), Err: err}, true)
			}
			delete(t, p)
		}
	}
}

// has reports whether any watch of type t is set on path.
func (m *watchManager) has(path string, t WatcherType) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	data := len(m.data[path])+len(m.exist[path]) > 0
	child := len(m.child[path]) > 0
	pers := len(m.persistent[path]) > 0
	rec := len(m.recursive[path]) > 0
	switch t {
	case WatcherData:
		return data
	case WatcherChildren:
		return child
	case WatcherPersistent:
		return pers
	case WatcherPersistentRecursive:
		return rec
	case WatcherAny:
		return data || child || pers || rec
	}
	return false
}

// remove drops the watches of type t on path, giving each its removal
// event, as ZooKeeper's client does after removeWatches.
func (m *watchManager) remove(path string, t WatcherType) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.c.State()
	cp := m.c.clientPath(path)
	fire := func(table map[string][]*oneShot, typ EventType) bool {
		list := table[path]
		for _, w := range list {
			w.fire(Event{Type: typ, State: st, Path: cp})
		}
		delete(table, path)
		return len(list) > 0
	}
	end := func(table map[string][]*Watcher) bool {
		list := table[path]
		for _, w := range list {
			w.push(Event{Type: EventPersistentWatchRemoved, State: st, Path: cp}, true)
		}
		delete(table, path)
		return len(list) > 0
	}
	var child, data, pers bool
	if t == WatcherData || t == WatcherAny {
		data = fire(m.data, EventDataWatchRemoved)
		data = fire(m.exist, EventDataWatchRemoved) || data
	}
	if t == WatcherChildren || t == WatcherAny {
		child = fire(m.child, EventChildWatchRemoved)
	}
	if t == WatcherPersistent || t == WatcherAny {
		pers = end(m.persistent)
	}
	if t == WatcherPersistentRecursive || t == WatcherAny {
		pers = end(m.recursive) || pers
	}
	// The session stream gets one event per kind removed, as the Java
	// client's default watcher gets one from each set of removed watchers.
	for _, k := range []struct {
		removed bool
		typ     EventType
	}{{child, EventChildWatchRemoved}, {data, EventDataWatchRemoved}, {pers, EventPersistentWatchRemoved}} {
		if k.removed {
			m.c.events.push(Event{Type: k.typ, State: st, Path: cp}, false)
		}
	}
}

// setWatches builds the packets that re-arm every watch after a
// reconnect: SetWatches, or SetWatches2 when a persistent watch exists,
// split so that no packet carries more than 128 KB of paths.
func (m *watchManager) setWatches(relativeZxid int64) []proto.Record {
	m.mu.Lock()
	keys := func(t map[string][]*oneShot) []string {
		var out []string
		for p, l := range t {
			if len(l) > 0 {
				out = append(out, p)
			}
		}
		return out
	}
	wkeys := func(t map[string][]*Watcher) []string {
		var out []string
		for p, l := range t {
			if len(l) > 0 {
				out = append(out, p)
			}
		}
		return out
	}
	lists := [5][]string{keys(m.data), keys(m.exist), keys(m.child), wkeys(m.persistent), wkeys(m.recursive)}
	m.mu.Unlock()
	v2 := len(lists[3])+len(lists[4]) > 0
	var out []proto.Record
	var cur [5][]string
	size := 0
	flush := func() {
		if v2 {
			out = append(out, &proto.SetWatches2{RelativeZxid: relativeZxid,
				DataWatches: cur[0], ExistWatches: cur[1], ChildWatches: cur[2],
				PersistentWatches: cur[3], PersistentRecursiveWatches: cur[4]})
		} else {
			out = append(out, &proto.SetWatches{RelativeZxid: relativeZxid,
				DataWatches: cur[0], ExistWatches: cur[1], ChildWatches: cur[2]})
		}
		cur = [5][]string{}
		size = 0
	}
	any := false
	for k, l := range lists {
		for _, p := range l {
			cur[k] = append(cur[k], p)
			size += len(p)
			any = true
			if size > setWatchesMaxLength {
				flush()
				any = false
			}
		}
	}
	if any {
		flush()
	}
	return out
}

// parentPath returns the parent of a server path ("/" for "/a").
func parentPath(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}
