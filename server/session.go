package server

import (
	"sort"
	"sync"
	"time"
)

// sessionTracker decides when sessions expire, like ZooKeeper's
// SessionTrackerImpl on the leader: every packet from a session's
// connection pushes its deadline to now + timeout; a session whose deadline
// passes is marked closing and the server proposes its closeSession. It is
// in-memory only: after a restart (or a leader change) every session in the
// state starts again with a full timeout.
type sessionTracker struct {
	mu       sync.Mutex
	sessions map[int64]*trackedSession
}

type trackedSession struct {
	timeout  time.Duration
	deadline time.Time
	closing  bool
}

func newSessionTracker() *sessionTracker {
	return &sessionTracker{sessions: map[int64]*trackedSession{}}
}

// add starts tracking a session (created, or loaded after a restart).
func (t *sessionTracker) add(id int64, timeout time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.sessions[id]; ok {
		s.timeout = timeout
		s.deadline = time.Now().Add(timeout)
		return
	}
	t.sessions[id] = &trackedSession{timeout: timeout, deadline: time.Now().Add(timeout)}
}

// touch records that the session was heard from. It reports false if the
// session is unknown or already closing (ZooKeeper's touchSession).
func (t *sessionTracker) touch(id int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[id]
	if !ok || s.closing {
		return false
	}
	s.deadline = time.Now().Add(s.timeout)
	return true
}

// revalidate is a reconnect: the session takes the newly negotiated timeout
// and a fresh deadline. It reports false if the session is closing.
func (t *sessionTracker) revalidate(id int64, timeout time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[id]
	if !ok {
		// Known to the state but not to the tracker (e.g. this server was
		// not the leader when it was created): start tracking it.
		t.sessions[id] = &trackedSession{timeout: timeout, deadline: time.Now().Add(timeout)}
		return true
	}
	if s.closing {
		return false
	}
	s.timeout = timeout
	s.deadline = time.Now().Add(timeout)
	return true
}

func (t *sessionTracker) remove(id int64) {
	t.mu.Lock()
	delete(t.sessions, id)
	t.mu.Unlock()
}

func (t *sessionTracker) closing(id int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.sessions[id]
	return ok && s.closing
}

// markClosing marks a session as closing (a client's closeSession is in
// flight), so it is neither expired again nor revalidated.
func (t *sessionTracker) markClosing(id int64) {
	t.mu.Lock()
	if s, ok := t.sessions[id]; ok {
		s.closing = true
	}
	t.mu.Unlock()
}

func (t *sessionTracker) unmarkClosing(id int64) {
	t.mu.Lock()
	if s, ok := t.sessions[id]; ok {
		s.closing = false
		s.deadline = time.Now().Add(s.timeout)
	}
	t.mu.Unlock()
}

// expired returns the sessions whose deadline is before now, sorted, and
// marks them closing.
func (t *sessionTracker) expired(now time.Time) []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int64
	for id, s := range t.sessions {
		if !s.closing && now.After(s.deadline) {
			s.closing = true
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// count returns the number of tracked sessions (global sessions).
func (t *sessionTracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions)
}
