package recipes

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/paddockhq/paddock/client"
)

// Registry is service registration and discovery (the "naming service"
// use of ZooKeeper): each instance of a service registers an ephemeral
// node dir/<service>/<id> holding its data (an address, a JSON
// document...). The node lives as long as the instance's session, so a
// crashed instance disappears from discovery once its session expires.
// Clients list the instances, or follow the membership with Watch.
type Registry struct {
	c   *client.Client
	dir string
}

// NewRegistry returns the registry rooted at dir.
func NewRegistry(c *client.Client, dir string) *Registry { return &Registry{c: c, dir: dir} }

// Instance is one registered instance of a service.
type Instance struct {
	// ID is the instance's id, unique within the service.
	ID string
	// Data is what the instance registered.
	Data []byte
}

// Registration is this process's registration of one instance.
type Registration struct {
	r    *Registry
	path string
}

// Register registers instance id of service with data. An instance left
// over from an earlier session with the same id is replaced. The
// registration lasts until Deregister or the end of the client's session:
// after an expiry, register again with the new client.
func (r *Registry) Register(ctx context.Context, service, id string, data []byte) (*Registration, error) {
	if strings.Contains(service, "/") || strings.Contains(id, "/") {
		return nil, errors.New("recipes: service and id may not contain /")
	}
	dir := join(r.dir, service)
	p := join(dir, id)
	for {
		_, _, err := r.c.Create(ctx, p, data, client.ModeEphemeral, nil)
		switch {
		case err == nil:
			return &Registration{r, p}, nil
		case errors.Is(err, client.ErrNoNode):
			if err := retry(ctx, r.c, func() error { return r.c.EnsurePath(ctx, dir, nil) }); err != nil {
				return nil, err
			}
		case errors.Is(err, client.ErrNodeExists):
			// Ours already (a retry after a connection loss)? Otherwise a
			// stale node from an old session: replace it.
			var st *client.Stat
			err := retry(ctx, r.c, func() (err error) { _, st, err = r.c.Exists(ctx, p); return })
			if err != nil {
				return nil, err
			}
			if st != nil && st.EphemeralOwner == r.c.SessionID() {
				_, err := r.c.Set(ctx, p, data, client.AnyVersion)
				return &Registration{r, p}, err
			}
			if st != nil {
				if err := r.c.Delete(ctx, p, st.Version); err != nil && !errors.Is(err, client.ErrNoNode) && !errors.Is(err, client.ErrBadVersion) {
					return nil, err
				}
			}
		case errors.Is(err, client.ErrConnectionLoss):
			if err := r.c.WaitConnected(ctx); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
}

// Path returns the registration's node.
func (g *Registration) Path() string { return g.path }

// Update replaces the instance's data; watchers see the change.
func (g *Registration) Update(ctx context.Context, data []byte) error {
	return retry(ctx, g.r.c, func() error { _, err := g.r.c.Set(ctx, g.path, data, client.AnyVersion); return err })
}

// Deregister removes the instance.
func (g *Registration) Deregister(ctx context.Context) error { return deleteNode(ctx, g.r.c, g.path) }

// Instances returns the registered instances of service, sorted by id.
func (r *Registry) Instances(ctx context.Context, service string) ([]Instance, error) {
	return r.instances(ctx, service)
}

// Services returns the names of the services with a registry node.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	var names []string
	err := retry(ctx, r.c, func() (err error) { names, _, err = r.c.Children(ctx, r.dir); return })
	if errors.Is(err, client.ErrNoNode) {
		return nil, nil
	}
	slices.Sort(names)
	return names, err
}

// instances lists the instances of service (nil if it has none).
func (r *Registry) instances(ctx context.Context, service string) ([]Instance, error) {
	dir := join(r.dir, service)
	var names []string
	err := retry(ctx, r.c, func() (err error) { names, _, err = r.c.Children(ctx, dir); return })
	if errors.Is(err, client.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	ops := make([]client.Op, len(names))
	for i, n := range names {
		ops[i] = client.GetDataOp(join(dir, n))
	}
	var res []client.OpResult
	if err := retry(ctx, r.c, func() (err error) { res, err = r.c.MultiRead(ctx, ops...); return }); err != nil {
		return nil, err
	}
	out := make([]Instance, 0, len(names))
	for i, n := range names {
		if res[i].Err == nil { // an instance gone meanwhile is skipped
			out = append(out, Instance{ID: n, Data: res[i].Data})
		}
	}
	return out, nil
}

// Watch follows the instances of service: the channel receives the
// current list at once and a new list after every registration,
// deregistration or data change (changes that come in a burst may be
// reported as one list). It is closed when ctx ends or the session
// ends. It uses one persistent recursive watch on the service's node.
func (r *Registry) Watch(ctx context.Context, service string) <-chan []Instance {
	out := make(chan []Instance, 1)
	go func() {
		defer close(out)
		var w *client.Watcher
		err := retry(ctx, r.c, func() (err error) {
			w, err = r.c.AddWatch(ctx, join(r.dir, service), client.WatchPersistentRecursive)
			return
		})
		if err != nil {
			return
		}
		defer func() {
			rm, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.c.SessionTimeout())
			w.Remove(rm)
			cancel()
			for range w.Events() {
			}
		}()
		var last []Instance
		first := true
		for {
			list, err := r.instances(ctx, service)
			if err != nil {
				return
			}
			if first || !sameInstances(last, list) {
				select {
				case out <- list:
				case <-ctx.Done():
					return
				}
				last, first = list, false
			}
			// Wait for a change; then drain what else is already queued so
			// a burst costs one listing.
			select {
			case ev, ok := <-w.Events():
				if !ok || ev.Type == client.EventNotWatching {
					return
				}
			case <-ctx.Done():
				return
			}
		drain:
			for {
				select {
				case ev, ok := <-w.Events():
					if !ok || ev.Type == client.EventNotWatching {
						return
					}
				default:
					break drain
				}
			}
		}
	}()
	return out
}

func sameInstances(a, b []Instance) bool {
	return slices.EqualFunc(a, b, func(x, y Instance) bool { return x.ID == y.ID && string(x.Data) == string(y.Data) })
}
