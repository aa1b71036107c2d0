package client

import (
	"context"
	"io"
	"sync"
)

// SessionEvents is the session-wide watcher: one ordered stream of every
// event of a Client's session, the counterpart of the default Watcher
// given to the constructor of ZooKeeper's Java client (the one zkCli's
// printwatches prints). Ask for it with WithSessionEvents; read it with
// Next or TryNext.
//
// The stream carries, in the order they happened:
//
//   - every state change of the session, as an EventNone event whose State
//     is the new state: StateConnected (or StateConnectedReadOnly) when a
//     connection is established, the first one included, StateDisconnected
//     when it is lost, and last the terminal state (StateExpired,
//     StateAuthFailed or StateClosed);
//   - every watch notification from the server that triggers at least one
//     of the client's watches (GetW, ExistsW, ChildrenW, GetConfigW,
//     AddWatch), once, however many watches it triggers, as ZooKeeper's
//     ZKWatchManager hands one event to a watcher registered several times;
//     a notification no watch of the client claims is dropped, as Java's
//     client drops it;
//   - the removal events of RemoveWatches: ChildWatchRemoved,
//     DataWatchRemoved and PersistentWatchRemoved, one for each kind of
//     watch removed from the path, in that order.
//
// After the terminal state event Next returns io.EOF.
//
// Nothing is lost, reordered or duplicated: the stream buffers without
// bound, so a reader that falls behind costs memory, never events. It
// keeps ZooKeeper's ordering promise exactly: an event is in the stream
// before the reply to any request sent after the server sent the event is
// returned to its caller. So after a call returns, TryNext finds every
// event the server delivered before that reply; a client that sees new
// data has been given the event for it.
//
// The one-shot channels of GetW, ExistsW and ChildrenW hold at most one
// event each, so a program that reads only the session stream may ignore
// them. A Watcher from AddWatch buffers its own copy of its events until
// Remove: drain its channel or remove it.
//
// SessionEvents is safe for concurrent use; with several readers each
// event goes to one of them.
type SessionEvents struct {
	mu    sync.Mutex
	queue []Event
	head  int
	ended bool          // the terminal event is queued; nothing follows
	wake  chan struct{} // closed and replaced when an event is queued
}

func newSessionEvents() *SessionEvents {
	return &SessionEvents{wake: make(chan struct{})}
}

// push queues ev; final marks the terminal state event. Pushes after the
// final one are dropped.
func (s *SessionEvents) push(ev Event, final bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.queue = append(s.queue, ev)
	s.ended = final
	close(s.wake)
	s.wake = make(chan struct{})
}

// pop takes the oldest queued event; ok is false when none is queued. It
// also reports whether the stream has ended and, if it may go on, the
// channel that is closed at the next push. s.mu is not held.
func (s *SessionEvents) pop() (ev Event, ok, ended bool, wake chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head < len(s.queue) {
		ev = s.queue[s.head]
		s.queue[s.head] = Event{}
		s.head++
		if s.head == len(s.queue) {
			s.queue, s.head = s.queue[:0], 0
		}
		return ev, true, false, nil
	}
	return Event{}, false, s.ended, s.wake
}

// Next returns the next event, waiting for one until ctx is done (then it
// returns ctx's error). After the terminal state event (StateExpired,
// StateAuthFailed or StateClosed) it returns io.EOF.
func (s *SessionEvents) Next(ctx context.Context) (Event, error) {
	for {
		ev, ok, ended, wake := s.pop()
		if ok {
			return ev, nil
		}
		if ended {
			return Event{}, io.EOF
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// TryNext returns the next event if one is queued, without waiting.
func (s *SessionEvents) TryNext() (Event, bool) {
	ev, ok, _, _ := s.pop()
	return ev, ok
}

// Len returns the number of events queued and not yet read.
func (s *SessionEvents) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head
}

// Ended reports whether the stream is over: its terminal event is queued
// or already read. Next still returns what is queued, then io.EOF.
func (s *SessionEvents) Ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}
