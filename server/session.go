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
//
// In an ensemble every member runs one, but only the leader's decides
// (expiryLoop). A member relays the liveness of the sessions whose
// connections it holds to the leader through OpTouchSessions log entries
// (takeDirty collects them, touchRemote applies them on every member), and
// a member that becomes leader gives every session a fresh timeout
// (refreshAll), so a leader change never expires sessions en masse.
type sessionTracker struct {
	mu       sync.Mutex
	sessions map[int64]*trackedSession
	// dirty holds the sessions heard from on this member's connections
	// since the last takeDirty.
	dirty map[int64]struct{}
	// closingRetry is how long a session may stay closing before its
	// closeSession is presumed lost (a leader change dropped it) and the
	// session may expire again; 0 means never.
	closingRetry time.Duration
}

type trackedSession struct {
	timeout      time.Duration
	deadline     time.Time
	closing      bool
	closingSince time.Time
}

func newSessionTracker() *sessionTracker {
	return &sessionTracker{sessions: map[int64]*trackedSession{}, dirty: map[int64]struct{}{}}
}

// takeDirty returns (sorted) and forgets the sessions heard from on this
// member's connections since the last call.
func (t *sessionTracker) takeDirty() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dirty) == 0 {
		return nil
	}
	out := make([]int64, 0, len(t.dirty))
	for id := range t.dirty {
		out = append(out, id)
	}
	clear(t.dirty)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// touchRemote records liveness relayed by another member (an applied
// OpTouchSessions entry).
func (t *sessionTracker) touchRemote(ids []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		if s, ok := t.sessions[id]; ok && !s.closing {
			s.deadline = now.Add(s.timeout)
		}
	}
}

// refreshAll gives every session a full timeout from now and forgets
// closings in flight: called when this member becomes leader, since the
// old leader's knowledge of liveness is lost with it.
func (t *sessionTracker) refreshAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for _, s := range t.sessions {
		s.deadline = now.Add(s.timeout)
		s.closing = false
	}
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
	t.dirty[id] = struct{}{}
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
		t.dirty[id] = struct{}{}
		return true
	}
	if s.closing {
		return false
	}
	s.timeout = timeout
	s.deadline = time.Now().Add(timeout)
	t.dirty[id] = struct{}{}
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
		s.closing, s.closingSince = true, time.Now()
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
		stale := s.closing && t.closingRetry > 0 && now.Sub(s.closingSince) > t.closingRetry
		if (!s.closing || stale) && now.After(s.deadline) {
			s.closing, s.closingSince = true, now
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
