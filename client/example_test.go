package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/paddockhq/paddock/client"
)

// Connect to a server list, create a node, read it back.
func Example() {
	ctx := context.Background()
	c, err := client.Connect(ctx, servers, client.WithSessionTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, _, err := c.Create(ctx, "/example", []byte("hello"), client.ModePersistent, nil); err != nil {
		log.Fatal(err)
	}
	data, stat, err := c.Get(ctx, "/example")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (version %d)\n", data, stat.Version)

	// Conditional update: only if nobody changed it since we read it.
	if _, err := c.Set(ctx, "/example", []byte("world"), stat.Version); err != nil {
		log.Fatal(err)
	}
	_, err = c.Set(ctx, "/example", []byte("stale"), stat.Version)
	fmt.Println(errors.Is(err, client.ErrBadVersion))
	// Output:
	// hello (version 0)
	// true
}

// Sequential nodes get a 10-digit suffix from their parent's counter;
// ephemeral nodes vanish with the session.
func ExampleClient_Create() {
	ctx := context.Background()
	c, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	c.Create(ctx, "/jobs", nil, client.ModePersistent, nil)
	for range 2 {
		p, _, err := c.Create(ctx, "/jobs/job-", []byte("payload"), client.ModePersistentSequential, nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p)
	}
	_, st, _ := c.Create(ctx, "/jobs/worker", nil, client.ModeEphemeral, nil)
	fmt.Println(st.EphemeralOwner == c.SessionID())
	// Output:
	// /jobs/job-0000000000
	// /jobs/job-0000000001
	// true
}

// A one-shot watch: the channel gets the next change, then closes.
func ExampleClient_GetW() {
	ctx := context.Background()
	c, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	c.Create(ctx, "/config-node", []byte("v1"), client.ModePersistent, nil)
	data, _, changed, err := c.GetW(ctx, "/config-node")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %s\n", data)
	c.Set(ctx, "/config-node", []byte("v2"), client.AnyVersion)
	ev := <-changed
	fmt.Println(ev.Type, ev.Path)
	// Output:
	// read v1
	// NodeDataChanged /config-node
}

// A persistent recursive watch sees every change below a path, for as
// long as it is armed.
func ExampleClient_AddWatch() {
	ctx := context.Background()
	c, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	w, err := c.AddWatch(ctx, "/tree", client.WatchPersistentRecursive)
	if err != nil {
		log.Fatal(err)
	}
	c.Create(ctx, "/tree", nil, client.ModePersistent, nil)
	c.Create(ctx, "/tree/a", nil, client.ModePersistent, nil)
	c.Set(ctx, "/tree/a", []byte("x"), client.AnyVersion)
	c.Delete(ctx, "/tree/a", client.AnyVersion)
	for range 4 {
		ev := <-w.Events()
		fmt.Println(ev.Type, ev.Path)
	}
	w.Remove(ctx)
	for ev := range w.Events() { // drained until closed
		fmt.Println(ev.Type)
	}
	// Output:
	// NodeCreated /tree
	// NodeCreated /tree/a
	// NodeDataChanged /tree/a
	// NodeDeleted /tree/a
	// PersistentWatchRemoved
}

// A transaction applies all of its operations or none; a failure names
// the operation that failed.
func ExampleClient_Multi() {
	ctx := context.Background()
	c, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	res, err := c.Multi(ctx,
		client.CreateOp("/accounts", nil, client.ModePersistent, nil),
		client.CreateOp("/accounts/alice", []byte("100"), client.ModePersistent, nil),
		client.CreateOp("/accounts/bob", []byte("0"), client.ModePersistent, nil),
	)
	fmt.Println(len(res), err)

	// Move money only if alice's balance is still the version we read.
	_, err = c.Multi(ctx,
		client.SetOp("/accounts/alice", []byte("50"), 0),
		client.SetOp("/accounts/bob", []byte("50"), 7), // wrong version
	)
	fmt.Println(errors.Is(err, client.ErrBadVersion))
	fmt.Println(err)
	data, _, _ := c.Get(ctx, "/accounts/alice")
	fmt.Printf("alice still has %s\n", data)
	// Output:
	// 3 <nil>
	// true
	// zk: multi /accounts/bob: version does not match
	// alice still has 100
}

// MultiRead batches reads; each may fail on its own.
func ExampleClient_MultiRead() {
	ctx := context.Background()
	c, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	c.Create(ctx, "/batch", []byte("parent"), client.ModePersistent, nil)
	c.Create(ctx, "/batch/x", nil, client.ModePersistent, nil)
	res, err := c.MultiRead(ctx, client.GetDataOp("/batch"), client.GetChildrenOp("/batch"), client.GetDataOp("/batch/missing"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %v %v\n", res[0].Data, res[1].Children, res[2].Err)
	// Output:
	// parent [x] zk: node does not exist
}

// Digest credentials and an ACL that only they satisfy.
func ExampleDigestACL() {
	ctx := context.Background()
	admin, err := client.Connect(ctx, servers, client.WithDigestAuth("admin", "s3cret"))
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()
	admin.Create(ctx, "/secret", []byte("42"), client.ModePersistent, client.DigestACL(client.PermAll, "admin", "s3cret"))

	guest, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer guest.Close()
	_, _, err = guest.Get(ctx, "/secret")
	fmt.Println(err)
	guest.AddAuth(ctx, "digest", []byte("admin:s3cret"))
	data, _, _ := guest.Get(ctx, "/secret")
	fmt.Printf("%s\n", data)
	// Output:
	// zk: getData /secret: not authorized
	// 42
}

// A chroot makes a subtree look like the whole tree.
func ExampleWithChroot() {
	ctx := context.Background()
	root, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()
	root.Create(ctx, "/apps", nil, client.ModePersistent, nil)
	root.Create(ctx, "/apps/billing", nil, client.ModePersistent, nil)

	app, err := client.Connect(ctx, servers, client.WithChroot("/apps/billing"))
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	p, _, _ := app.Create(ctx, "/invoices", nil, client.ModePersistent, nil)
	fmt.Println(p)
	kids, _, _ := root.Children(ctx, "/apps/billing")
	fmt.Println(kids)
	// Output:
	// /invoices
	// [invoices]
}

// State changes arrive in order; Expired and Closed are terminal. After
// an expiry, NewSession starts over with the same configuration.
func ExampleWithStateCallback() {
	ctx := context.Background()
	var states []client.State
	closed := make(chan struct{})
	c, err := client.Connect(ctx, servers, client.WithStateCallback(func(s client.State) {
		states = append(states, s)
		if s == client.StateClosed {
			close(closed)
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	c.Close()
	<-closed
	fmt.Println(states)
	// Output:
	// [SyncConnected Closed]
}

// Reacting to an expired session: make a new client and rebuild what the
// old session owned (its ephemeral nodes and watches are gone).
func ExampleClient_NewSession() {
	ctx := context.Background()
	c, err := client.Connect(ctx, servers)
	if err != nil {
		log.Fatal(err)
	}
	_, _, err = c.Get(ctx, "/")
	if errors.Is(err, client.ErrSessionExpired) {
		c, err = c.NewSession(ctx)
		if err != nil {
			log.Fatal(err)
		}
	}
	defer c.Close()
}

func ExampleParseConnectString() {
	hosts, chroot, _ := client.ParseConnectString("zk1:2181,zk2,[::1]:2182/app")
	fmt.Println(hosts, chroot)
	// Output:
	// [zk1:2181 zk2:2181 [::1]:2182] /app
}

// The session-wide watcher: one ordered stream of the session's state
// changes and watch events, like the default Watcher of ZooKeeper's Java
// client. An event is in the stream before the reply to any later
// request, so after a call returns TryNext finds it without waiting.
func ExampleWithSessionEvents() {
	ctx := context.Background()
	c, err := client.Connect(ctx, servers, client.WithSessionEvents())
	if err != nil {
		log.Fatal(err)
	}
	events := c.SessionEvents()

	c.Create(ctx, "/example-events", []byte("v1"), client.ModePersistent, nil)
	// The one-shot channel may be ignored: the stream gets the event too.
	if _, _, _, err := c.GetW(ctx, "/example-events"); err != nil {
		log.Fatal(err)
	}
	c.Set(ctx, "/example-events", []byte("v2"), client.AnyVersion)
	c.Delete(ctx, "/example-events", client.AnyVersion)
	for {
		ev, ok := events.TryNext()
		if !ok {
			break
		}
		fmt.Println(ev)
	}

	c.Close()
	for {
		ev, err := events.Next(ctx)
		if err == io.EOF {
			break
		}
		fmt.Println(ev)
	}
	// Output:
	// None SyncConnected
	// NodeDataChanged /example-events
	// None Closed
}
