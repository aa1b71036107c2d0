#!/usr/bin/python3
"""Scripted Kazoo scenario against a ZooKeeper-compatible server.

Usage: /usr/bin/python3 scenario.py HOST:PORT [STEP ...]

Runs every step (or only the named ones) with asserts and exits non-zero on
the first failure. Each step works under its own fresh root so the scenario
can run repeatedly against the same server. Uses Debian's python3-kazoo.
"""

import logging
import sys
import threading
import time
import traceback
import uuid

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from kazoo.protocol.states import EventType
from kazoo.security import OPEN_ACL_UNSAFE, make_acl, make_digest_acl
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock, Semaphore
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue

HOSTS = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2181"
RUN = "/kazoo-" + uuid.uuid4().hex[:10]
WAIT = 10  # seconds to wait for any asynchronous outcome

_clients = []


def client(**kwargs):
    """A started client; stopped at the end of the run."""
    c = KazooClient(hosts=HOSTS, timeout=10, **kwargs)
    c.start(timeout=15)
    assert c.state == KazooState.CONNECTED, c.state
    _clients.append(c)
    return c


def stop(c):
    c.stop()
    c.close()
    if c in _clients:
        _clients.remove(c)


def wait_until(cond, what, timeout=WAIT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def expect(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc:
        return
    except Exception as e:  # noqa: BLE001 - report the wrong exception
        raise AssertionError("%s%r: want %s, got %r" % (fn.__name__, args, exc.__name__, e))
    raise AssertionError("%s%r: want %s, got success" % (fn.__name__, args, exc.__name__))


def is_seq(name, prefix):
    suffix = name[len(prefix):]
    return name.startswith(prefix) and len(suffix) == 10 and suffix.isdigit()


# --------------------------------------------------------------------------
# Steps. Each takes a connected client `zk` and its own root path.

def step_crud(zk, root):
    assert zk.create(root, b"r") == root
    assert zk.exists(root + "/missing") is None
    st = zk.exists(root)
    assert st is not None and st.version == 0 and st.numChildren == 0

    assert zk.create(root + "/a", b"one") == root + "/a"
    data, st = zk.get(root + "/a")
    assert data == b"one" and st.version == 0 and st.dataLength == 3, (data, st)
    assert st.czxid == st.mzxid and st.ephemeralOwner == 0

    st2 = zk.set(root + "/a", b"two", version=0)
    assert st2.version == 1 and st2.mzxid > st.mzxid and st2.czxid == st.czxid
    expect(BadVersionError, zk.set, root + "/a", b"x", version=0)
    assert zk.set(root + "/a", b"three").version == 2  # version -1
    assert zk.get(root + "/a")[0] == b"three"

    expect(NodeExistsError, zk.create, root + "/a")
    expect(NoNodeError, zk.create, root + "/nope/child")
    expect(NoNodeError, zk.get, root + "/nope")
    expect(NoNodeError, zk.set, root + "/nope", b"")

    zk.create(root + "/a/c1")
    zk.create(root + "/a/c2", b"")
    expect(NotEmptyError, zk.delete, root + "/a")
    assert sorted(zk.get_children(root + "/a")) == ["c1", "c2"]
    kids, st = zk.get_children(root + "/a", include_data=True)
    assert sorted(kids) == ["c1", "c2"] and st.numChildren == 2 and st.cversion == 2, st

    expect(BadVersionError, zk.delete, root + "/a/c1", version=5)
    zk.delete(root + "/a/c1", version=0)
    expect(NoNodeError, zk.delete, root + "/a/c1")
    assert zk.get_children(root + "/a") == ["c2"]

    # Empty data and makepath.
    zk.create(root + "/deep/er/path", b"", makepath=True)
    assert zk.get(root + "/deep/er/path")[0] == b""
    assert zk.exists(root + "/deep/er").numChildren == 1

    # ensure_path is idempotent.
    assert zk.ensure_path(root + "/e1/e2/e3")
    assert zk.ensure_path(root + "/e1/e2/e3")
    assert zk.exists(root + "/e1/e2/e3") is not None

    # Recursive delete.
    zk.delete(root + "/deep", recursive=True)
    assert zk.exists(root + "/deep") is None

    # Large-ish value round trip.
    big = bytes(range(256)) * 1000
    zk.create(root + "/big", big)
    assert zk.get(root + "/big")[0] == big

    # sync
    assert zk.sync(root) in (root, None)


def step_create_modes(zk, root):
    zk.create(root)
    # sequential: 10-digit suffix from the parent's cversion
    s1 = zk.create(root + "/seq-", b"", sequence=True)
    s2 = zk.create(root + "/seq-", b"", sequence=True)
    assert is_seq(s1, root + "/seq-") and is_seq(s2, root + "/seq-"), (s1, s2)
    assert int(s2[-10:]) == int(s1[-10:]) + 1, (s1, s2)
    zk.create(root + "/plain")
    s3 = zk.create(root + "/seq-", sequence=True)
    assert int(s3[-10:]) == int(s2[-10:]) + 2, (s2, s3)  # counter = cversion
    # sequential without prefix, directly under parent
    s4 = zk.create(root + "/", sequence=True)
    assert is_seq(s4, root + "/"), s4

    other = client()
    e = other.create(root + "/eph", b"e", ephemeral=True)
    es = other.create(root + "/eseq-", b"", ephemeral=True, sequence=True)
    assert is_seq(es, root + "/eseq-")
    sid = other.client_id[0]
    assert zk.exists(e).ephemeralOwner == sid
    assert zk.exists(es).ephemeralOwner == sid
    assert zk.exists(s1).ephemeralOwner == 0
    expect(NoChildrenForEphemeralsError, other.create, e + "/child")
    stop(other)  # closing the session removes its ephemerals
    assert zk.exists(e) is None and zk.exists(es) is None

    # makepath with ephemeral leaf
    leaf = zk.create(root + "/mp/x/leaf", ephemeral=True, makepath=True)
    assert zk.exists(leaf).ephemeralOwner == zk.client_id[0]
    assert zk.exists(root + "/mp/x").ephemeralOwner == 0


def step_watches(zk, root):
    zk.create(root, b"v0")
    other = client()

    # DataWatch: called with the current data, on every change, and None on delete.
    seen = []
    cond = threading.Condition()

    @zk.DataWatch(root + "/dw")
    def dw(data, stat):
        with cond:
            seen.append(data)
            cond.notify_all()

    wait_until(lambda: seen == [None], "initial DataWatch call")
    other.create(root + "/dw", b"1")
    wait_until(lambda: seen[-1:] == [b"1"], "DataWatch create")
    other.set(root + "/dw", b"2")
    wait_until(lambda: seen[-1:] == [b"2"], "DataWatch set")
    other.delete(root + "/dw")
    wait_until(lambda: len(seen) >= 4 and seen[-1] is None, "DataWatch delete")

    # ChildrenWatch
    kids = []

    @zk.ChildrenWatch(root)
    def cw(children):
        kids.append(sorted(children))

    wait_until(lambda: kids and kids[-1] == [], "initial ChildrenWatch")
    other.create(root + "/k1")
    wait_until(lambda: kids[-1] == ["k1"], "ChildrenWatch add")
    other.create(root + "/k2")
    wait_until(lambda: kids[-1] == ["k1", "k2"], "ChildrenWatch add 2")
    other.delete(root + "/k1")
    wait_until(lambda: kids[-1] == ["k2"], "ChildrenWatch delete")

    # Raw one-shot watches.
    events = []
    zk.create(root + "/raw", b"x")
    zk.get(root + "/raw", watch=events.append)
    other.set(root + "/raw", b"y")
    wait_until(lambda: len(events) == 1, "get watch")
    assert events[0].type == EventType.CHANGED and events[0].path == root + "/raw", events
    other.set(root + "/raw", b"z")  # one-shot: no second event
    time.sleep(0.3)
    assert len(events) == 1, events

    ex = []
    assert zk.exists(root + "/later", watch=ex.append) is None
    other.create(root + "/later")
    wait_until(lambda: len(ex) == 1, "exists watch")
    assert ex[0].type == EventType.CREATED and ex[0].path == root + "/later"

    ch = []
    zk.get_children(root + "/raw", watch=ch.append)
    other.create(root + "/raw/c")
    wait_until(lambda: len(ch) == 1, "child watch")
    assert ch[0].type == EventType.CHILD and ch[0].path == root + "/raw", ch

    dl = []
    zk.get(root + "/later", watch=dl.append)
    other.delete(root + "/later")
    wait_until(lambda: len(dl) == 1, "delete watch")
    assert dl[0].type == EventType.DELETED, dl

    # A session's own write triggers its own watch.
    own = []
    zk.get(root + "/raw", watch=own.append)
    zk.set(root + "/raw", b"self")
    wait_until(lambda: len(own) == 1, "self-triggered watch")
    assert own[0].type == EventType.CHANGED, own
    stop(other)


def step_transactions(zk, root):
    zk.create(root)
    zk.create(root + "/t", b"0")

    t = zk.transaction()
    t.create(root + "/t/new", b"n")
    t.set_data(root + "/t", b"1", version=0)
    t.check(root + "/t", 1)
    t.create(root + "/t/s-", b"", sequence=True)
    res = t.commit()
    assert res[0] == root + "/t/new", res
    assert res[1].version == 1, res
    assert res[2] is True, res
    assert is_seq(res[3], root + "/t/s-"), res
    assert zk.get(root + "/t")[0] == b"1"

    # A failing check rolls back every operation.
    t = zk.transaction()
    t.create(root + "/t/never")
    t.check(root + "/t", 99)
    t.delete(root + "/t/new")
    res = t.commit()
    assert isinstance(res[0], RolledBackError), res
    assert isinstance(res[1], BadVersionError), res
    # Operations after the failing one report RuntimeInconsistency.
    assert type(res[2]).__name__ == "RuntimeInconsistency", res
    assert zk.exists(root + "/t/never") is None
    assert zk.exists(root + "/t/new") is not None

    # Delete + create in one transaction, and a failing delete.
    t = zk.transaction()
    t.delete(root + "/t/new")
    t.create(root + "/t/new2")
    res = t.commit()
    assert res == [True, root + "/t/new2"], res
    t = zk.transaction()
    t.delete(root + "/t/gone")
    res = t.commit()
    assert isinstance(res[0], NoNodeError), res

    # The context-manager form.
    with zk.transaction() as t:
        t.create(root + "/t/ctx", b"c")
    assert zk.get(root + "/t/ctx")[0] == b"c"


def step_acls(zk, root):
    zk.create(root)
    alice = make_digest_acl("alice", "secret", all=True)
    everyone_read = make_acl("world", "anyone", read=True)
    zk.create(root + "/private", b"p", acl=[alice])
    zk.create(root + "/shared", b"s", acl=[alice, everyone_read])

    anon = client()
    expect(NoAuthError, anon.get, root + "/private")
    expect(NoAuthError, anon.set, root + "/shared", b"x")
    assert anon.get(root + "/shared")[0] == b"s"
    expect(NoAuthError, anon.set_acls, root + "/shared", OPEN_ACL_UNSAFE)
    assert anon.exists(root + "/private") is not None  # exists needs no permission

    expect(NoAuthError, zk.get_acls, root + "/private")
    acls, st = zk.get_acls(root + "/shared")  # world-readable
    assert len(acls) == 2 and st.aversion == 0, acls

    # Authenticate later with add_auth.
    anon.add_auth("digest", "alice:secret")
    assert anon.get(root + "/private")[0] == b"p"
    acls, st = anon.get_acls(root + "/private")
    assert len(acls) == 1 and acls[0].id.scheme == "digest", acls
    assert acls[0].id.id.startswith("alice:") and acls[0].perms == 31, acls
    anon.set(root + "/shared", b"by-alice")

    # Authenticate at connect time with auth_data.
    a2 = client(auth_data=[("digest", "alice:secret")])
    assert a2.get(root + "/private")[0] == b"p"
    st = a2.set_acls(root + "/private", OPEN_ACL_UNSAFE, version=0)
    assert st.aversion == 1, st
    expect(BadVersionError, a2.set_acls, root + "/private", [alice], version=0)

    wrong = client(auth_data=[("digest", "alice:wrong")])
    zk.create(root + "/locked", b"l", acl=[alice])
    expect(NoAuthError, wrong.get, root + "/locked")

    # A child create needs CREATE on the parent.
    ro = make_acl("world", "anyone", read=True)
    zk.create(root + "/ro", acl=[ro])
    expect(NoAuthError, anon.create, root + "/ro/child")
    stop(wrong)
    stop(a2)
    stop(anon)


def step_lock(zk, root):
    other = client()
    l1 = Lock(zk, root + "/lock", "one")
    l2 = Lock(other, root + "/lock", "two")
    assert l1.acquire(timeout=WAIT)
    assert not l2.acquire(blocking=False)  # held by l1
    got = threading.Event()

    def take():
        if l2.acquire(timeout=WAIT):
            got.set()

    th = threading.Thread(target=take)
    th.start()
    wait_until(lambda: len(l1.contenders()) == 2, "two contenders")
    assert l1.contenders() == ["one", "two"], l1.contenders()
    assert not got.is_set()
    l1.release()
    th.join(WAIT)
    assert got.is_set()
    l2.release()

    # Semaphore with two leases.
    s1 = Semaphore(zk, root + "/sem", "a", max_leases=2)
    s2 = Semaphore(other, root + "/sem", "b", max_leases=2)
    s3 = Semaphore(client(), root + "/sem", "c", max_leases=2)
    assert s1.acquire(timeout=WAIT) and s2.acquire(timeout=WAIT)
    assert not s3.acquire(blocking=False)
    s1.release()
    assert s3.acquire(timeout=WAIT)
    assert sorted(s2.lease_holders()) == ["b", "c"]
    s2.release()
    s3.release()
    stop(other)


def step_election(zk, root):
    other = client()
    e1 = Election(zk, root + "/election", "first")
    e2 = Election(other, root + "/election", "second")
    leaders = []
    release1 = threading.Event()

    def lead(name, release):
        leaders.append(name)
        release.wait(WAIT)

    t1 = threading.Thread(target=e1.run, args=(lead, "first", release1))
    t1.start()
    wait_until(lambda: leaders == ["first"], "first leader")
    release2 = threading.Event()
    t2 = threading.Thread(target=e2.run, args=(lead, "second", release2))
    t2.start()
    wait_until(lambda: len(e1.contenders()) == 2, "two contenders")
    assert e1.contenders() == ["first", "second"], e1.contenders()
    assert leaders == ["first"]
    release1.set()
    t1.join(WAIT)
    wait_until(lambda: leaders == ["first", "second"], "second leader")
    release2.set()
    t2.join(WAIT)

    # Leadership passes when the leader's session goes away.
    e3 = Election(other, root + "/election2", "dies")
    e4 = Election(zk, root + "/election2", "survives")
    started = threading.Event()
    t3 = threading.Thread(target=e3.run, args=(lambda: (started.set(), time.sleep(60)),))
    t3.daemon = True
    t3.start()
    wait_until(started.is_set, "leader dies elected")
    done = []
    t4 = threading.Thread(target=e4.run, args=(lambda: done.append(True),))
    t4.start()
    wait_until(lambda: len(e4.contenders()) == 2, "two contenders (2)")
    stop(other)
    t4.join(WAIT)
    assert done == [True]


def step_barrier(zk, root):
    b = Barrier(zk, root + "/barrier")
    b.create()
    other = client()
    waiter = Barrier(other, root + "/barrier")
    assert waiter.wait(timeout=0.3) is False
    passed = threading.Event()
    th = threading.Thread(target=lambda: waiter.wait(timeout=WAIT) and passed.set())
    th.start()
    time.sleep(0.2)
    assert not passed.is_set()
    b.remove()
    th.join(WAIT)
    assert passed.is_set()

    # DoubleBarrier with two participants.
    c2 = client()
    log = []
    lock = threading.Lock()

    def participant(c, name):
        db = DoubleBarrier(c, root + "/double", 2, identifier=name)
        db.enter()
        with lock:
            log.append("in-" + name)
        db.leave()
        with lock:
            log.append("out-" + name)

    ta = threading.Thread(target=participant, args=(other, "a"))
    ta.start()
    time.sleep(0.3)
    assert log == [], log  # a waits for b to enter
    tb = threading.Thread(target=participant, args=(c2, "b"))
    tb.start()
    ta.join(WAIT)
    tb.join(WAIT)
    assert sorted(log[:2]) == ["in-a", "in-b"] and sorted(log[2:]) == ["out-a", "out-b"], log
    stop(c2)
    stop(other)


def step_counter(zk, root):
    c = Counter(zk, root + "/counter")
    assert c.value == 0
    c += 5
    c -= 2
    assert c.value == 3
    other = Counter(client(), root + "/counter")
    other += 10
    assert c.value == 13
    f = Counter(zk, root + "/fcounter", default=0.5)
    f += 0.25
    assert f.value == 0.75

    # Concurrent increments from two clients: nothing is lost.
    def bump(counter, n):
        for _ in range(n):
            counter += 1

    t1 = threading.Thread(target=bump, args=(c, 25))
    t2 = threading.Thread(target=bump, args=(other, 25))
    t1.start(), t2.start()
    t1.join(WAIT * 3), t2.join(WAIT * 3)
    assert c.value == 63, c.value


def step_queue(zk, root):
    q = Queue(zk, root + "/queue")
    for v in (b"1", b"2", b"3"):
        q.put(v)
    q.put(b"urgent", priority=1)
    assert len(q) == 4
    assert [q.get() for _ in range(4)] == [b"urgent", b"1", b"2", b"3"]
    assert q.get() is None

    lq = LockingQueue(zk, root + "/lqueue")
    lq.put(b"a")
    lq.put_all([b"b", b"c"])
    assert len(lq) == 3
    consumer = LockingQueue(client(), root + "/lqueue")
    assert consumer.get(timeout=WAIT) == b"a"
    assert lq.get(timeout=WAIT) == b"b"  # a is taken (locked) by consumer
    assert consumer.consume()
    assert lq.consume()
    assert lq.get(timeout=WAIT) == b"c" and lq.consume()
    assert lq.get(timeout=0.3) is None
    # A get() blocks until another client puts.
    got = []
    th = threading.Thread(target=lambda: got.append(consumer.get(timeout=WAIT)))
    th.start()
    time.sleep(0.2)
    lq.put(b"late")
    th.join(WAIT)
    assert got == [b"late"], got
    assert consumer.consume()


def step_party(zk, root):
    other = client()
    p1 = Party(zk, root + "/party", "alice")
    p2 = Party(other, root + "/party", "bob")
    p1.join()
    p2.join()
    assert sorted(p1) == ["alice", "bob"] and len(p1) == 2
    p2.leave()
    assert list(p1) == ["alice"]
    p2.join()
    stop(other)  # ephemeral membership goes with the session
    wait_until(lambda: list(p1) == ["alice"], "bob gone")

    s = ShallowParty(zk, root + "/shallow", "x")
    s.join()
    assert list(s) == ["x"] and len(s) == 1
    s.leave()
    assert len(s) == 0


STEPS = [
    ("crud", step_crud),
    ("create_modes", step_create_modes),
    ("watches", step_watches),
    ("transactions", step_transactions),
    ("acls", step_acls),
    ("lock", step_lock),
    ("election", step_election),
    ("barrier", step_barrier),
    ("counter", step_counter),
    ("queue", step_queue),
    ("party", step_party),
]


def main():
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    only = set(sys.argv[2:])
    zk = client()
    zk.create(RUN)
    failed = 0
    for name, fn in STEPS:
        if only and name not in only:
            continue
        start = time.time()
        try:
            fn(zk, RUN + "/" + name)
        except Exception:  # noqa: BLE001 - report and carry on with the next step
            failed += 1
            print("FAIL %s (%.2fs)" % (name, time.time() - start), flush=True)
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            continue
        print("ok   %s (%.2fs)" % (name, time.time() - start), flush=True)
    for c in list(_clients):
        try:
            stop(c)
        except Exception:  # noqa: BLE001
            pass
    if failed:
        print("%d step(s) failed against %s" % (failed, HOSTS))
        return 1
    print("all steps passed against %s" % HOSTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
