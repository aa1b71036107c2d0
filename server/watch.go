package server

import (
	"sort"
	"strings"
	"sync"

	"github.com/paddockhq/paddock/proto"
)

// watchMode is a set of the ways one watcher watches one path in one table,
// as ZooKeeper 3.9's WatchStats: a (path, watcher) pair may hold a standard
// one-shot watch, a persistent watch and a persistent-recursive watch at the
// same time, and each can be removed on its own.
type watchMode uint8

const (
	modeStandard   watchMode = 1 << iota // one-shot: exists/getData/getChildren
	modePersistent                       // addWatch PERSISTENT
	modeRecursive                        // addWatch PERSISTENT_RECURSIVE
)

// watcher is whoever receives events: in the server a *conn. The watch
// manager only needs it to be comparable; sessionID is used for the
// wchc/wchp reports, and a dead watcher (a closed connection) gets no new
// watches, so a read racing with the close cannot leave one behind
// (WatchManager.isDeadWatcher).
type watcher interface {
	sessionID() int64
	dead() bool
}

// watchTable is one of ZooKeeper's two WatchManagers (dataWatches or
// childWatches): path → watcher → modes, with the reverse index so a closed
// connection's watches can be dropped in one step.
type watchTable struct {
	byPath    map[string]map[watcher]watchMode
	byWatcher map[watcher]map[string]watchMode
	recursive int // number of (path, watcher) pairs holding modeRecursive
}

func newWatchTable() watchTable {
	return watchTable{
		byPath:    map[string]map[watcher]watchMode{},
		byWatcher: map[watcher]map[string]watchMode{},
	}
}

func (t *watchTable) add(path string, w watcher, m watchMode) {
	if w.dead() {
		return
	}
	ws := t.byPath[path]
	if ws == nil {
		ws = map[watcher]watchMode{}
		t.byPath[path] = ws
	}
	ps := t.byWatcher[w]
	if ps == nil {
		ps = map[string]watchMode{}
		t.byWatcher[w] = ps
	}
	old := ws[w]
	if old&modeRecursive == 0 && m&modeRecursive != 0 {
		t.recursive++
	}
	ws[w] = old | m
	ps[path] = old | m
}

// set stores the modes of (path, w), deleting the pair when none are left.
func (t *watchTable) set(path string, w watcher, m watchMode) {
	old := t.byPath[path][w]
	if old&modeRecursive != 0 && m&modeRecursive == 0 {
		t.recursive--
	}
	if m == 0 {
		if ws := t.byPath[path]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(t.byPath, path)
			}
		}
		if ps := t.byWatcher[w]; ps != nil {
			delete(ps, path)
			if len(ps) == 0 {
				delete(t.byWatcher, w)
			}
		}
		return
	}
	t.byPath[path][w] = m
	t.byWatcher[w][path] = m
}

// trigger implements WatchManager.triggerWatch of ZooKeeper 3.9: every
// watcher of path itself fires (whatever its modes) and loses its standard
// watch; every watcher holding a recursive watch on an ancestor fires too,
// except for NodeChildrenChanged. The watchers are added to into, a set, so
// a watcher reached several ways is told once.
func (t *watchTable) trigger(path string, typ proto.EventType, into map[watcher]bool) {
	fire := func(w watcher) { into[w] = true }
	for w, m := range t.byPath[path] {
		fire(w)
		if m&modeStandard != 0 {
			t.set(path, w, m&^modeStandard)
		}
	}
	if t.recursive == 0 || typ == proto.EventNodeChildrenChanged {
		return
	}
	for p := parentPath(path); p != ""; p = parentPath(p) {
		for w, m := range t.byPath[p] {
			if m&modeRecursive != 0 {
				fire(w)
			}
		}
	}
}

// parentPath returns the parent of p, "/" for a top-level node and "" for
// the root itself (which has no parent).
func parentPath(p string) string {
	if p == "/" || p == "" {
		return ""
	}
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func (t *watchTable) removeWatcher(w watcher) {
	for p, m := range t.byWatcher[w] {
		if m&modeRecursive != 0 {
			t.recursive--
		}
		if ws := t.byPath[p]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(t.byPath, p)
			}
		}
	}
	delete(t.byWatcher, w)
}

// has reports whether (path, w) holds any mode in want (0 = any mode).
func (t *watchTable) has(path string, w watcher, want watchMode) bool {
	m := t.byWatcher[w][path]
	if want == 0 {
		return m != 0
	}
	return m&want != 0
}

// remove clears the modes in rm (0 = all) of (path, w) and reports whether
// anything was removed.
func (t *watchTable) remove(path string, w watcher, rm watchMode) bool {
	m := t.byWatcher[w][path]
	if rm == 0 {
		rm = m
	}
	if m&rm == 0 {
		return false
	}
	t.set(path, w, m&^rm)
	return true
}

// WatchManager holds the watches of every connection of this server. Watches
// are not replicated: like ZooKeeper, each server keeps the watches of the
// sessions connected to it and fires them as it applies the log. It mirrors
// DataTree's pair of WatchManagers (data and child tables) so the trigger
// rules come out exactly as ZooKeeper 3.9 has them:
//
//   - exists and getData set a standard watch in the data table,
//     getChildren one in the child table;
//   - addWatch PERSISTENT sets a persistent watch in both tables,
//     PERSISTENT_RECURSIVE a recursive one in the data table only;
//   - NodeCreated and NodeDataChanged fire the data table at the path (and
//     recursive watches on ancestors); NodeChildrenChanged fires the child
//     table at the parent; NodeDeleted fires both tables at the path, a
//     connection being told once.
//
// It is safe for concurrent use; the server calls Trigger while holding the
// state's write lock and registers watches while holding its read lock, so
// a watch set by a read can never miss a change applied after that read.
type WatchManager struct {
	mu    sync.Mutex
	data  watchTable
	child watchTable
}

// NewWatchManager returns an empty watch manager.
func NewWatchManager() *WatchManager {
	return &WatchManager{data: newWatchTable(), child: newWatchTable()}
}

// AddData sets a one-shot data watch (getData, or exists on an existing or
// missing node).
func (m *WatchManager) AddData(path string, w watcher) {
	m.mu.Lock()
	m.data.add(path, w, modeStandard)
	m.mu.Unlock()
}

// AddChild sets a one-shot child watch (getChildren, getChildren2).
func (m *WatchManager) AddChild(path string, w watcher) {
	m.mu.Lock()
	m.child.add(path, w, modeStandard)
	m.mu.Unlock()
}

// AddPersistent sets a persistent watch (addWatch mode 0), or a
// persistent-recursive one (mode 1), as DataTree.addWatch does in 3.9.
func (m *WatchManager) AddPersistent(path string, w watcher, recursive bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if recursive {
		m.data.add(path, w, modeRecursive)
		return
	}
	m.data.add(path, w, modePersistent)
	m.child.add(path, w, modePersistent)
}

// Trigger fires the watches a change sets off and returns the watchers to
// notify, each once, sorted by session id for determinism. One-shot watches
// that fired are removed.
func (m *WatchManager) Trigger(typ proto.EventType, path string) []watcher {
	m.mu.Lock()
	defer m.mu.Unlock()
	fired := map[watcher]bool{}
	switch typ {
	case proto.EventNodeCreated, proto.EventNodeDataChanged:
		m.data.trigger(path, typ, fired)
	case proto.EventNodeChildrenChanged:
		m.child.trigger(path, typ, fired)
	case proto.EventNodeDeleted:
		m.data.trigger(path, typ, fired)
		// DataTree.deleteNode passes the data watchers as the suppress
		// set of the child trigger: their child watches are consumed too,
		// but they are told once (fired is a set).
		m.child.trigger(path, typ, fired)
	default:
		return nil
	}
	if len(fired) == 0 {
		return nil
	}
	out := make([]watcher, 0, len(fired))
	for w := range fired {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sessionID() < out[j].sessionID() })
	return out
}

// Contains implements checkWatches: whether w has a watch of watcherType
// on exactly path.
func (m *WatchManager) Contains(path string, w watcher, watcherType int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch watcherType {
	case proto.WatcherChildren:
		return m.child.has(path, w, modeStandard)
	case proto.WatcherData:
		return m.data.has(path, w, modeStandard)
	case proto.WatcherAny:
		return m.child.has(path, w, 0) || m.data.has(path, w, 0)
	case proto.WatcherPersistent:
		// 3.9 checks the data table only: a persistent watch is always in both.
		return m.data.has(path, w, modePersistent)
	case proto.WatcherPersistentRecursive:
		return m.data.has(path, w, modeRecursive)
	}
	return false
}

// Remove implements removeWatches: it removes w's watches of watcherType on
// path and reports whether any existed. The server sends no event for a
// removal: DataWatchRemoved/ChildWatchRemoved/PersistentWatchRemoved are made
// by the client library once the reply says OK.
func (m *WatchManager) Remove(path string, w watcher, watcherType int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch watcherType {
	case proto.WatcherChildren:
		return m.child.remove(path, w, modeStandard)
	case proto.WatcherData:
		return m.data.remove(path, w, modeStandard)
	case proto.WatcherAny:
		c := m.child.remove(path, w, 0)
		d := m.data.remove(path, w, 0)
		return c || d
	case proto.WatcherPersistent:
		c := m.child.remove(path, w, modePersistent)
		d := m.data.remove(path, w, modePersistent)
		return c || d
	case proto.WatcherPersistentRecursive:
		return m.data.remove(path, w, modeRecursive)
	}
	return false
}

// RemoveWatcher drops every watch of w; watches die with their connection.
func (m *WatchManager) RemoveWatcher(w watcher) {
	m.mu.Lock()
	m.data.removeWatcher(w)
	m.child.removeWatcher(w)
	m.mu.Unlock()
}

// WatchSummary is the wchs report: ZooKeeper adds up the data and child
// tables' WatchesSummary.
type WatchSummary struct {
	Connections, Paths, Watches int
}

// Summary returns the wchs counts, summed over both tables as
// ZooKeeper's DataTree.getWatchesSummary does.
func (m *WatchManager) Summary() WatchSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s WatchSummary
	for _, t := range []*watchTable{&m.data, &m.child} {
		s.Connections += len(t.byWatcher)
		s.Paths += len(t.byPath)
		for _, ps := range t.byWatcher {
			s.Watches += len(ps)
		}
	}
	return s
}

// Count returns the total number of (path, watcher) pairs (mntr's
// zk_watch_count).
func (m *WatchManager) Count() int { return m.Summary().Watches }

// BySession returns session id → watched paths (wchc), both tables merged.
func (m *WatchManager) BySession() map[int64][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := map[int64]map[string]bool{}
	for _, t := range []*watchTable{&m.data, &m.child} {
		for w, ps := range t.byWatcher {
			id := w.sessionID()
			if set[id] == nil {
				set[id] = map[string]bool{}
			}
			for p := range ps {
				set[id][p] = true
			}
		}
	}
	out := map[int64][]string{}
	for id, ps := range set {
		out[id] = sortedKeys(ps)
	}
	return out
}

// ByPath returns path → watching session ids (wchp), both tables merged.
func (m *WatchManager) ByPath() map[string][]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := map[string]map[int64]bool{}
	for _, t := range []*watchTable{&m.data, &m.child} {
		for p, ws := range t.byPath {
			if set[p] == nil {
				set[p] = map[int64]bool{}
			}
			for w := range ws {
				set[p][w.sessionID()] = true
			}
		}
	}
	out := map[string][]int64{}
	for p, ids := range set {
		for id := range ids {
			out[p] = append(out[p], id)
		}
		sort.Slice(out[p], func(i, j int) bool { return out[p][i] < out[p][j] })
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
