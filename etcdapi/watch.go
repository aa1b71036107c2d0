package etcdapi

import (
	"errors"
	"io"
	"sort"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"

	"github.com/paddockhq/paddock/statemachine"
	"github.com/paddockhq/paddock/statemachine/etcdkv"
)

// Watches are pulled, not pushed: each watch stream is one goroutine that
// keeps, per watcher, the next revision it needs, and reads the events
// from the keyspace's event log (everything since the compact revision)
// whenever the apply path signals a change. So there are no per-watcher
// queues to overflow, a slow client only slows its own stream, a watch
// from an old revision replays through the same code as a live one, and
// the guarantees follow from the event log: ordered by revision, each
// event once, a revision never split across responses (one txn = one
// response), resumable from any revision not below the compact revision.

// hub wakes watch streams when the keyspace changes.
type hub struct {
	mu sync.Mutex
	ch chan struct{}
}

func newHub() *hub { return &hub{ch: make(chan struct{})} }

func (h *hub) wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ch
}

func (h *hub) notify() {
	h.mu.Lock()
	close(h.ch)
	h.ch = make(chan struct{})
	h.mu.Unlock()
}

type watcher struct {
	id       int64
	key, end []byte
	next     int64 // next revision to deliver
	prevKV   bool
	noPut    bool
	noDelete bool
	progress bool
	quiet    bool // no events sent since the last progress tick
}

type watchStream struct {
	a        *API
	stream   pb.Watch_WatchServer
	watchers map[int64]*watcher
	nextID   int64
	lastRev  int64
}

// maxEventsPerResponse bounds a response, except that a revision is never
// split.
const maxEventsPerResponse = 1000

// errWatcherDuplicateID is etcd's mvcc error text for a reused watch id.
const errWatcherDuplicateID = "mvcc: duplicate watch ID provided on the WatchStream"

// Watch serves one watch stream.
func (a *API) Watch(stream pb.Watch_WatchServer) error {
	ws := &watchStream{a: a, stream: stream, watchers: map[int64]*watcher{}}
	ctx := stream.Context()
	requireLeader := false
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get(rpctypes.MetadataRequireLeaderKey) {
			requireLeader = requireLeader || v == rpctypes.MetadataHasLeader
		}
	}
	reqs := make(chan *pb.WatchRequest)
	errc := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	progress := time.NewTicker(a.cfg.ProgressNotifyInterval)
	defer progress.Stop()
	leaderCheck := time.NewTicker(250 * time.Millisecond)
	defer leaderCheck.Stop()
	var noLeaderSince time.Time
	for {
		wake := a.hub.wait()
		if _, err := ws.sync(); err != nil {
			return err
		}
		select {
		case req := <-reqs:
			if err := ws.handle(req); err != nil {
				return err
			}
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-wake:
		case <-progress.C:
			if err := ws.progressTick(); err != nil {
				return err
			}
		case now := <-leaderCheck.C:
			if !requireLeader {
				continue
			}
			if a.srv.Raft().Leader != 0 {
				noLeaderSince = time.Time{}
			} else if noLeaderSince.IsZero() {
				noLeaderSince = now
			} else if now.Sub(noLeaderSince) > 3*time.Second {
				return rpctypes.ErrGRPCNoLeader
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-a.ctx.Done():
			return rpctypes.ErrGRPCStopped
		}
	}
}

func (ws *watchStream) send(r *pb.WatchResponse) error {
	if r.Header.Revision < ws.lastRev {
		r.Header.Revision = ws.lastRev
	}
	ws.lastRev = r.Header.Revision
	return ws.stream.Send(r)
}

func (ws *watchStream) handle(req *pb.WatchRequest) error {
	a := ws.a
	switch u := req.RequestUnion.(type) {
	case *pb.WatchRequest_CreateRequest:
		c := u.CreateRequest
		if c == nil {
			return nil
		}
		key, end := c.Key, c.RangeEnd
		if len(key) == 0 {
			key = []byte{0}
		}
		rev, _ := a.currentRev()
		if c.StartRevision < 0 {
			return ws.send(&pb.WatchResponse{Header: a.header(rev), WatchId: -1, Created: true, Canceled: true, CancelReason: rpctypes.ErrCompacted.Error()})
		}
		id := c.WatchId
		if id != 0 {
			if _, dup := ws.watchers[id]; dup {
				return ws.send(&pb.WatchResponse{Header: a.header(rev), WatchId: -1, Created: true, Canceled: true, CancelReason: errWatcherDuplicateID})
			}
		} else {
			for ws.watchers[ws.nextID] != nil {
				ws.nextID++
			}
			id = ws.nextID
			ws.nextID++
		}
		w := &watcher{id: id, key: key, end: end, prevKV: c.PrevKv, progress: c.ProgressNotify, quiet: true}
		for _, f := range c.Filters {
			switch f {
			case pb.WatchCreateRequest_NOPUT:
				w.noPut = true
			case pb.WatchCreateRequest_NODELETE:
				w.noDelete = true
			}
		}
		// The header and the start are read together, so a watch from
		// "now" misses nothing after the revision its Created reports.
		var cur int64
		a.srv.ReadState(func(st *statemachine.State) { cur = st.Etcd().Rev() })
		w.next = c.StartRevision
		if w.next == 0 {
			w.next = cur + 1
		}
		ws.watchers[id] = w
		return ws.send(&pb.WatchResponse{Header: a.header(cur), WatchId: id, Created: true})
	case *pb.WatchRequest_CancelRequest:
		if u.CancelRequest == nil {
			return nil
		}
		id := u.CancelRequest.WatchId
		if _, ok := ws.watchers[id]; !ok {
			return nil
		}
		delete(ws.watchers, id)
		rev, _ := a.currentRev()
		return ws.send(&pb.WatchResponse{Header: a.header(rev), WatchId: id, Canceled: true})
	case *pb.WatchRequest_ProgressRequest:
		if u.ProgressRequest == nil {
			return nil
		}
		// Linearizable: the reply covers every write committed before
		// the request, once every watcher on the stream has delivered
		// everything up to the revision it reports.
		if err := a.barrier(ws.stream.Context()); err != nil {
			return err
		}
		rev, err := ws.sync()
		if err != nil {
			return err
		}
		return ws.send(&pb.WatchResponse{Header: a.header(rev), WatchId: -1})
	}
	return nil
}

// sync delivers every pending event to every watcher and returns the
// revision they are all synced to.
func (ws *watchStream) sync() (int64, error) {
	a := ws.a
	for {
		var out []*pb.WatchResponse
		var cur int64
		done := true
		ids := make([]int64, 0, len(ws.watchers))
		for id := range ws.watchers {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		a.srv.ReadState(func(st *statemachine.State) {
			store := st.Etcd()
			cur = store.Rev()
			for _, id := range ids {
				w := ws.watchers[id]
				if w.next > cur {
					continue
				}
				evs, next, err := store.EventsSince(w.next, w.key, w.end, maxEventsPerResponse, w.prevKV)
				if errors.Is(err, etcdkv.ErrCompacted) {
					out = append(out, &pb.WatchResponse{WatchId: id, Canceled: true, CompactRevision: store.CompactRev()})
					delete(ws.watchers, id)
					continue
				}
				w.next = next
				if next <= cur {
					done = false
				}
				evs = filterEvents(evs, w)
				if len(evs) > 0 {
					out = append(out, &pb.WatchResponse{WatchId: id, Events: evs})
					w.quiet = false
				}
			}
		})
		for _, r := range out {
			r.Header = a.header(cur)
			if err := ws.send(r); err != nil {
				return 0, err
			}
		}
		if done {
			return cur, nil
		}
	}
}

func filterEvents(evs []*mvccpb.Event, w *watcher) []*mvccpb.Event {
	if !w.noPut && !w.noDelete {
		return evs
	}
	out := evs[:0]
	for _, ev := range evs {
		if (ev.Type == mvccpb.Event_PUT && w.noPut) || (ev.Type == mvccpb.Event_DELETE && w.noDelete) {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// progressTick sends a progress notification to each watcher that asked
// for them and got no events since the last tick.
func (ws *watchStream) progressTick() error {
	cur, err := ws.sync()
	if err != nil {
		return err
	}
	ids := make([]int64, 0, len(ws.watchers))
	for id := range ws.watchers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		w := ws.watchers[id]
		if !w.progress {
			continue
		}
		if w.quiet {
			if err := ws.send(&pb.WatchResponse{Header: ws.a.header(cur), WatchId: id}); err != nil {
				return err
			}
		}
		w.quiet = true
	}
	return nil
}
