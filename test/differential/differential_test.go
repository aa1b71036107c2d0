// Package differential runs the same seeded random sequences of ZooKeeper
// operations against Apache ZooKeeper and a server under test, through the
// go-zookeeper client, and fails on the first result that differs.
//
// Results are rendered to canonical strings on each side before they are
// compared, with everything that legitimately differs between two servers
// normalised: session ids become session labels (s0#1 = slot 0, first
// session), zxids become labels assigned in order of first sight together
// with their rank among the zxids already seen on that side, and times are
// only checked for plausibility (ctime > 0, mtime >= ctime). Child lists are
// sorted. Watch events received by each session are recorded in arrival
// order and compared after every operation.
//
// The server under test is, in order of precedence:
//   - a second Apache ZooKeeper when PADDOCK_DIFF_SELF=1 (validates the
//     harness itself: it must pass deterministically);
//   - the running server at PADDOCK_DIFF_TARGET=host:port;
//   - a Paddock server started by internal/testserver.
//
// Size: -diff.seeds / PADDOCK_DIFF_SEEDS (default 20), -diff.ops /
// PADDOCK_DIFF_OPS (default 200), first seed -diff.seed / PADDOCK_DIFF_SEED
// (default 1). For example:
//
//	PADDOCK_DIFF_SELF=1 go test ./test/differential -diff.seeds=100 -diff.ops=1000
package differential

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/paddockhq/paddock/internal/testserver"
	"github.com/paddockhq/paddock/internal/zkref"
)

var (
	flagSeeds = flag.Int("diff.seeds", envInt("PADDOCK_DIFF_SEEDS", 20), "number of random sequences")
	flagOps   = flag.Int("diff.ops", envInt("PADDOCK_DIFF_OPS", 200), "operations per sequence")
	flagSeed  = flag.Int("diff.seed", envInt("PADDOCK_DIFF_SEED", 1), "first seed")
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	testserver.CleanupBinary()
	os.Exit(code)
}

// apacheJVMFlags keep Apache's ContainerManager from reaping empty
// containers and expired TTL nodes in the middle of a run, which would
// make the reference nondeterministic.
var apacheJVMFlags = []string{"-Dznode.container.checkIntervalMs=86400000"}

func TestDifferential(t *testing.T) {
	zkref.Require(t)
	ref := zkref.Start(t, zkref.Options{JVMFlags: apacheJVMFlags})
	var target, targetName string
	switch {
	case os.Getenv("PADDOCK_DIFF_SELF") == "1":
		target, targetName = zkref.Start(t, zkref.Options{JVMFlags: apacheJVMFlags}).Addr, "apache2"
	case os.Getenv("PADDOCK_DIFF_TARGET") != "":
		target, targetName = os.Getenv("PADDOCK_DIFF_TARGET"), "target"
	default:
		target, targetName = testserver.Start(t, testserver.CompatOptions()).Addr, "paddock"
	}
	t.Logf("reference apache=%s, under test %s=%s, seeds %d..%d, %d ops each",
		ref.Addr, targetName, target, *flagSeed, *flagSeed+*flagSeeds-1, *flagOps)
	run := time.Now().UnixNano() % 1e9 // keeps roots unique on a reused external target
	for seed := *flagSeed; seed < *flagSeed+*flagSeeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			root := fmt.Sprintf("/diff-%d-%d", run, seed)
			runSeed(t, uint64(seed), *flagOps, root,
				newSide(t, "apache", ref.Addr), newSide(t, targetName, target))
		})
	}
}

// ---------------------------------------------------------------------------
// Operations

type opKind int

const (
	opCreate opKind = iota
	opDelete
	opSet
	opGet
	opExists
	opChildren
	opGetACL
	opSetACL
	opMulti
	opCheck // only inside multi
	opSync
	opAddAuth
	opReconnect
)

var opNames = map[opKind]string{
	opCreate: "create", opDelete: "delete", opSet: "set", opGet: "get", opExists: "exists",
	opChildren: "children", opGetACL: "getACL", opSetACL: "setACL", opMulti: "multi",
	opCheck: "check", opSync: "sync", opAddAuth: "addAuth", opReconnect: "reconnect",
}

// Create modes as the test names them; the flag passed to go-zookeeper is
// in createFlags.
const (
	modePersistent = iota
	modeEphemeral
	modeSequential
	modeEphemeralSequential
	modeContainer
	modeTTL
	modeTTLSequential
	numModes
)

var modeNames = []string{"persistent", "ephemeral", "sequential", "ephemeral-sequential", "container", "ttl", "ttl-sequential"}
var createFlags = []int32{zk.FlagPersistent, zk.FlagEphemeral, zk.FlagSequence, zk.FlagEphemeralSequential,
	zk.FlagContainer, zk.FlagTTL, zk.FlagPersistentSequentialWithTTL}

// Users for digest auth. Session slot 0 starts authenticated as alice,
// slot 2 as bob, slot 1 anonymous.
var users = []struct{ name, password string }{{"alice", "apw"}, {"bob", "bpw"}, {"carol", "cpw"}}

var defaultAuth = map[int]int{0: 0, 2: 1}

const numSessions = 3

// aclChoices are the ACL lists operations pick from.
var aclChoices = []struct {
	name string
	acl  []zk.ACL
}{
	{"open", zk.WorldACL(zk.PermAll)},
	{"world-read", zk.WorldACL(zk.PermRead)},
	{"alice", zk.DigestACL(zk.PermAll, "alice", "apw")},
	{"alice+world-read", append(zk.DigestACL(zk.PermAll, "alice", "apw"), zk.WorldACL(zk.PermRead)...)},
	{"auth", zk.AuthACL(zk.PermAll)},
	{"world-no-delete", zk.WorldACL(zk.PermAll &^ zk.PermDelete)},
	{"world-create-read", zk.WorldACL(zk.PermCreate | zk.PermRead)},
	{"bob-admin+world-rw", append(zk.DigestACL(zk.PermAdmin, "bob", "bpw"), zk.WorldACL(zk.PermRead|zk.PermWrite|zk.PermCreate|zk.PermDelete)...)},
	{"empty", []zk.ACL{}},
}

type op struct {
	kind    opKind
	sess    int
	path    string
	data    []byte
	version int32
	mode    int
	ttl     time.Duration
	acl     int
	watch   bool
	user    int
	sub     []op
}

func (o op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "s%d %s", o.sess, opNames[o.kind])
	switch o.kind {
	case opCreate:
		fmt.Fprintf(&b, " %s %s data=%q acl=%s", modeNames[o.mode], o.path, o.data, aclChoices[o.acl].name)
		if o.mode == modeTTL || o.mode == modeTTLSequential {
			fmt.Fprintf(&b, " ttl=%v", o.ttl)
		}
	case opDelete, opCheck:
		fmt.Fprintf(&b, " %s v=%d", o.path, o.version)
	case opSet:
		fmt.Fprintf(&b, " %s data=%q v=%d", o.path, o.data, o.version)
	case opGet, opExists, opChildren:
		fmt.Fprintf(&b, " %s watch=%v", o.path, o.watch)
	case opGetACL, opSync:
		fmt.Fprintf(&b, " %s", o.path)
	case opSetACL:
		fmt.Fprintf(&b, " %s acl=%s v=%d", o.path, aclChoices[o.acl].name, o.version)
	case opAddAuth:
		fmt.Fprintf(&b, " digest %s", users[o.user].name)
	case opMulti:
		for i, s := range o.sub {
			fmt.Fprintf(&b, "\n      [%d] %s", i, strings.TrimPrefix(s.String(), fmt.Sprintf("s%d ", s.sess)))
		}
	}
	return b.String()
}

// gen produces a deterministic operation sequence. Its path pool grows with
// the names of sequential nodes the servers hand out (identical on both
// sides, or the run has already failed).
type gen struct {
	r    *rand.Rand
	root string
	pool []string // fixed names
	seqs []string // sequential nodes created so far
}

func newGen(seed uint64, root string) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x5eed)), root: root}
	for _, p := range []string{"a", "b", "c", "a/x", "a/y", "b/x", "c/x", "a/x/q", "a/y/q", "b/x/q"} {
		g.pool = append(g.pool, root+"/"+p)
	}
	return g
}

func (g *gen) path() string {
	switch n := g.r.IntN(100); {
	case n < 3:
		return g.root
	case n < 25 && len(g.seqs) > 0:
		return g.seqs[g.r.IntN(len(g.seqs))]
	default:
		return g.pool[g.r.IntN(len(g.pool))]
	}
}

func (g *gen) version() int32 {
	if g.r.IntN(100) < 45 {
		return -1
	}
	return int32(g.r.IntN(4))
}

func (g *gen) data() []byte {
	switch g.r.IntN(10) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, 1+g.r.IntN(8))
	for i := range b {
		b[i] = byte('a' + g.r.IntN(26))
	}
	return b
}

func (g *gen) aclIndex() int {
	if g.r.IntN(100) < 60 {
		return 0
	}
	return g.r.IntN(len(aclChoices))
}

func (g *gen) create(inMulti bool) op {
	o := op{kind: opCreate, sess: g.r.IntN(numSessions), data: g.data(), acl: g.aclIndex()}
	if inMulti {
		o.mode = g.r.IntN(modeContainer + 1) // plain create opcode: no TTL
	} else {
		o.mode = g.r.IntN(numModes)
	}
	o.path = g.path()
	if o.mode == modeSequential || o.mode == modeEphemeralSequential || o.mode == modeTTLSequential {
		if o.path == g.root {
			// root+"-" would be a child of "/", whose cversion (and so
			// the sequence number) depends on the server's history.
			o.path += "/n"
		}
		o.path += "-"
	}
	if o.mode == modeTTL || o.mode == modeTTLSequential {
		o.ttl = []time.Duration{time.Hour, 2 * time.Hour, 0}[g.r.IntN(3)]
	}
	return o
}

func (g *gen) next() op {
	s := g.r.IntN(numSessions)
	switch n := g.r.IntN(100); {
	case n < 28:
		return g.create(false)
	case n < 38:
		return op{kind: opDelete, sess: s, path: g.path(), version: g.version()}
	case n < 48:
		return op{kind: opSet, sess: s, path: g.path(), data: g.data(), version: g.version()}
	case n < 56:
		return op{kind: opGet, sess: s, path: g.path(), watch: g.r.IntN(3) != 0}
	case n < 64:
		return op{kind: opExists, sess: s, path: g.path(), watch: g.r.IntN(3) != 0}
	case n < 72:
		return op{kind: opChildren, sess: s, path: g.path(), watch: g.r.IntN(3) != 0}
	case n < 76:
		return op{kind: opGetACL, sess: s, path: g.path()}
	case n < 80:
		return op{kind: opSetACL, sess: s, path: g.path(), acl: g.aclIndex(), version: g.version()}
	case n < 92:
		o := op{kind: opMulti, sess: s}
		for range 1 + g.r.IntN(4) {
			var sub op
			switch g.r.IntN(4) {
			case 0:
				sub = g.create(true)
			case 1:
				sub = op{kind: opDelete, path: g.path(), version: g.version()}
			case 2:
				sub = op{kind: opSet, path: g.path(), data: g.data(), version: g.version()}
			case 3:
				sub = op{kind: opCheck, path: g.path(), version: g.version()}
			}
			sub.sess = s
			o.sub = append(o.sub, sub)
		}
		return o
	case n < 95:
		return op{kind: opSync, sess: s, path: g.path()}
	case n < 97:
		return op{kind: opAddAuth, sess: s, user: g.r.IntN(len(users))}
	default:
		return op{kind: opReconnect, sess: s}
	}
}

// learn adds sequential node names from a result to the path pool.
func (g *gen) learn(paths []string) {
	for _, p := range paths {
		if p != "" && !slices.Contains(g.seqs, p) && !slices.Contains(g.pool, p) {
			g.seqs = append(g.seqs, p)
		}
	}
	if len(g.seqs) > 40 {
		g.seqs = g.seqs[len(g.seqs)-40:]
	}
}

// ---------------------------------------------------------------------------
// One server's view: sessions, event logs and normalisation state.

type session struct {
	conn  *zk.Conn
	label string // "s<slot>#<generation>"
	mu    sync.Mutex
	evs   []string
}

func (s *session) record(ev zk.Event) {
	if ev.Type == zk.EventSession || ev.Type == zk.EventNotWatching {
		return
	}
	s.mu.Lock()
	s.evs = append(s.evs, fmt.Sprintf("%s %s", ev.Type, ev.Path))
	s.mu.Unlock()
}

func (s *session) takeEvents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.evs
	s.evs = nil
	return evs
}

type side struct {
	t        testing.TB
	name     string
	addr     string
	members  []string // ensemble mode: session slot i talks only to members[i%len]
	sessions [numSessions]*session
	gens     [numSessions]int
	owners   map[int64]string // session id -> label
	zxSorted []int64
	zxLabel  map[int64]int
}

// newSide makes one side; addr is one server, or for an ensemble the
// members' addresses joined by commas (see ensemble_test.go).
func newSide(t testing.TB, name, addr string) *side {
	sd := &side{t: t, name: name, addr: addr, owners: map[int64]string{}, zxLabel: map[int64]int{}}
	if members := strings.Split(addr, ","); len(members) > 1 {
		sd.members = members
	}
	return sd
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func (sd *side) open(slot int) error {
	sd.gens[slot]++
	s := &session{label: fmt.Sprintf("s%d#%d", slot, sd.gens[slot])}
	target := []string{sd.addr}
	if sd.members != nil {
		target = []string{sd.members[slot%len(sd.members)]}
	}
	conn, evc, err := zk.Connect(target, 10*time.Second,
		zk.WithLogger(quietLogger{}), zk.WithEventCallback(s.record))
	if err != nil {
		return err
	}
	timeout := time.After(20 * time.Second)
	for connected := false; !connected; {
		select {
		case ev := <-evc:
			if ev.State == zk.StateHasSession {
				connected = true
			}
		case <-timeout:
			conn.Close()
			return fmt.Errorf("%s: no session with %s after 20s", sd.name, sd.addr)
		}
	}
	go func() {
		for range evc {
		}
	}()
	s.conn = conn
	sd.owners[conn.SessionID()] = s.label
	sd.sessions[slot] = s
	if u, ok := defaultAuth[slot]; ok {
		if err := conn.AddAuth("digest", []byte(users[u].name+":"+users[u].password)); err != nil {
			return fmt.Errorf("%s: addAuth: %w", sd.name, err)
		}
	}
	return nil
}

func (sd *side) close() {
	for _, s := range sd.sessions {
		if s != nil {
			s.conn.Close()
		}
	}
}

// zxid renders a zxid as its label (order of first sight on this side);
// a zxid seen for the first time also carries its rank among the zxids
// seen before, so both equality and order are compared.
func (sd *side) zxid(z int64) string {
	if l, ok := sd.zxLabel[z]; ok {
		return fmt.Sprintf("z%d", l)
	}
	pos, _ := slices.BinarySearch(sd.zxSorted, z)
	l := len(sd.zxLabel)
	sd.zxLabel[z] = l
	sd.zxSorted = slices.Insert(sd.zxSorted, pos, z)
	return fmt.Sprintf("z%d@%d", l, pos)
}

func (sd *side) owner(id int64) string {
	if id == 0 {
		return "-"
	}
	if l, ok := sd.owners[id]; ok {
		return l
	}
	return fmt.Sprintf("%#x", uint64(id)) // container / TTL markers are deterministic
}

func (sd *side) stat(st *zk.Stat) string {
	if st == nil {
		return "stat=nil"
	}
	times := "ok"
	if st.Ctime <= 0 || st.Mtime < st.Ctime {
		times = fmt.Sprintf("BAD(ctime=%d,mtime=%d)", st.Ctime, st.Mtime)
	}
	return fmt.Sprintf("{czxid=%s mzxid=%s pzxid=%s v=%d cv=%d av=%d len=%d nc=%d owner=%s times=%s}",
		sd.zxid(st.Czxid), sd.zxid(st.Mzxid), sd.zxid(st.Pzxid), st.Version, st.Cversion, st.Aversion,
		st.DataLength, st.NumChildren, sd.owner(st.EphemeralOwner), times)
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func aclString(acl []zk.ACL) string {
	parts := make([]string, len(acl))
	for i, a := range acl {
		parts[i] = fmt.Sprintf("%s:%s:%d", a.Scheme, a.ID, a.Perms)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// result is one operation's canonical outcome plus any sequential node
// names it produced.
type result struct {
	text  string
	paths []string
}

// do runs o on this side and renders the outcome, followed by every watch
// event any session received because of it.
func (sd *side) do(o op) result {
	var r result
	c := sd.sessions[o.sess].conn
	var b strings.Builder
	if sd.members != nil && o.kind != opReconnect {
		// Sessions sit on different members: reads are only
		// sequentially consistent, so bring this session's member up
		// to date with the other sessions' writes first.
		c.Sync("/")
	}
	switch o.kind {
	case opCreate:
		var p string
		var err error
		acl := aclChoices[o.acl].acl
		switch o.mode {
		case modeContainer:
			p, err = c.CreateContainer(o.path, o.data, createFlags[o.mode], acl)
		case modeTTL, modeTTLSequential:
			p, err = c.CreateTTL(o.path, o.data, createFlags[o.mode], acl, o.ttl)
		default:
			p, err = c.Create(o.path, o.data, createFlags[o.mode], acl)
		}
		fmt.Fprintf(&b, "err=%s path=%q", errString(err), p)
		if err == nil {
			r.paths = append(r.paths, p)
			// Read the new node back: stat (ephemeral owner, container
			// and TTL markers, zxids) and data as stored.
			ok, st, err := c.Exists(p)
			fmt.Fprintf(&b, " exists=%v err=%s %s", ok, errString(err), sd.stat(st))
		}
	case opDelete:
		fmt.Fprintf(&b, "err=%s", errString(c.Delete(o.path, o.version)))
	case opSet:
		st, err := c.Set(o.path, o.data, o.version)
		fmt.Fprintf(&b, "err=%s", errString(err))
		if err == nil {
			fmt.Fprintf(&b, " %s", sd.stat(st))
		}
	case opGet:
		var data []byte
		var st *zk.Stat
		var err error
		if o.watch {
			data, st, _, err = c.GetW(o.path)
		} else {
			data, st, err = c.Get(o.path)
		}
		fmt.Fprintf(&b, "err=%s", errString(err))
		if err == nil {
			fmt.Fprintf(&b, " data=%q %s", data, sd.stat(st))
		}
	case opExists:
		var ok bool
		var st *zk.Stat
		var err error
		if o.watch {
			ok, st, _, err = c.ExistsW(o.path)
		} else {
			ok, st, err = c.Exists(o.path)
		}
		fmt.Fprintf(&b, "err=%s exists=%v", errString(err), ok)
		if err == nil && ok {
			fmt.Fprintf(&b, " %s", sd.stat(st))
		}
	case opChildren:
		var kids []string
		var st *zk.Stat
		var err error
		if o.watch {
			kids, st, _, err = c.ChildrenW(o.path)
		} else {
			kids, st, err = c.Children(o.path)
		}
		fmt.Fprintf(&b, "err=%s", errString(err))
		if err == nil {
			sort.Strings(kids)
			fmt.Fprintf(&b, " children=%v %s", kids, sd.stat(st))
			for _, k := range kids {
				r.paths = append(r.paths, o.path+"/"+k)
			}
		}
	case opGetACL:
		acl, st, err := c.GetACL(o.path)
		fmt.Fprintf(&b, "err=%s", errString(err))
		if err == nil {
			fmt.Fprintf(&b, " acl=%s %s", aclString(acl), sd.stat(st))
		}
	case opSetACL:
		st, err := c.SetACL(o.path, aclChoices[o.acl].acl, o.version)
		fmt.Fprintf(&b, "err=%s", errString(err))
		if err == nil {
			fmt.Fprintf(&b, " %s", sd.stat(st))
		}
	case opSync:
		p, err := c.Sync(o.path)
		fmt.Fprintf(&b, "err=%s path=%q", errString(err), p)
	case opAddAuth:
		u := users[o.user]
		fmt.Fprintf(&b, "err=%s", errString(c.AddAuth("digest", []byte(u.name+":"+u.password))))
	case opReconnect:
		c.Close()
		if err := sd.open(o.sess); err != nil {
			sd.t.Fatalf("%s: reopen session %d: %v", sd.name, o.sess, err)
		}
		fmt.Fprintf(&b, "reopened as %s", sd.sessions[o.sess].label)
	case opMulti:
		var ops []any
		for _, s := range o.sub {
			switch s.kind {
			case opCreate:
				ops = append(ops, &zk.CreateRequest{Path: s.path, Data: s.data, Acl: aclChoices[s.acl].acl, Flags: createFlags[s.mode]})
			case opDelete:
				ops = append(ops, &zk.DeleteRequest{Path: s.path, Version: s.version})
			case opSet:
				ops = append(ops, &zk.SetDataRequest{Path: s.path, Data: s.data, Version: s.version})
			case opCheck:
				ops = append(ops, &zk.CheckVersionRequest{Path: s.path, Version: s.version})
			}
		}
		res, err := c.Multi(ops...)
		fmt.Fprintf(&b, "err=%s n=%d", errString(err), len(res))
		for i, mr := range res {
			fmt.Fprintf(&b, "\n      [%d] err=%s", i, errString(mr.Error))
			if mr.String != "" {
				fmt.Fprintf(&b, " path=%q", mr.String)
				if mr.Error == nil && err == nil {
					r.paths = append(r.paths, mr.String)
				}
			}
			if mr.Stat != nil {
				fmt.Fprintf(&b, " %s", sd.stat(mr.Stat))
			}
		}
	default:
		panic(fmt.Sprintf("unknown op %v", o.kind))
	}
	// A closed session's ephemerals are deleted in an unspecified order
	// (ZooKeeper walks a hash set), so its events are compared as a set.
	b.WriteString(sd.drainEvents(o.kind == opReconnect))
	r.text = b.String()
	return r
}

// drainEvents makes sure every session has received all notifications
// caused by the operations so far (a server delivers a session's events
// before its response to any later request of that session), then returns
// them in arrival order, session by session.
func (sd *side) drainEvents(unordered bool) string {
	var b strings.Builder
	for _, s := range sd.sessions {
		if sd.members != nil {
			s.conn.Sync("/") // the member has applied every earlier write
		}
		if _, _, err := s.conn.Exists("/"); err != nil {
			fmt.Fprintf(&b, "\n    %s round trip: %v", s.label[:2], err)
		}
		var lines []string
		for _, ev := range s.takeEvents() {
			lines = append(lines, fmt.Sprintf("\n    event %s: %s", s.label[:2], ev))
		}
		if unordered {
			sort.Strings(lines)
		}
		b.WriteString(strings.Join(lines, ""))
	}
	return b.String()
}

// ---------------------------------------------------------------------------

func runSeed(t *testing.T, seed uint64, n int, root string, a, b *side) {
	for _, sd := range []*side{a, b} {
		for slot := range numSessions {
			if err := sd.open(slot); err != nil {
				t.Fatal(err)
			}
		}
		defer sd.close()
	}
	g := newGen(seed, root)
	history := make([]string, 0, n)
	for i := 0; i <= n; i++ {
		// Op #0 creates the sequence's root; the rest are random. The
		// generator learns sequential names from results, which are equal
		// on both sides up to the first mismatch.
		o := op{kind: opCreate, sess: 0, path: root, data: []byte("root"), mode: modePersistent}
		if i > 0 {
			o = g.next()
		}
		ra, rb := a.do(o), b.do(o)
		if ra.text != rb.text {
			t.Fatalf("MISMATCH seed=%d op #%d (root %s)\n  op: %s\n  %s:\n    %s\n  %s:\n    %s\n  previous ops:\n    %s",
				seed, i, root, o, a.name, ra.text, b.name, rb.text, strings.Join(lastN(history, 1000), "\n    "))
		}
		g.learn(ra.paths)
		history = append(history, fmt.Sprintf("#%d %s => %s", i, o, ra.text))
		if testing.Verbose() && os.Getenv("PADDOCK_DIFF_TRACE") == "1" {
			t.Logf("#%d %s => %s", i, o, ra.text)
		}
	}
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
