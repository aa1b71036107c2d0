// CuratorScenarios runs Apache Curator's recipes against a ZooKeeper server
// and checks each outcome. It is compiled and run by curator_test.go with
// Debian's Curator 5 and ZooKeeper 3.8 client jars.
//
// Usage: java CuratorScenarios <connectString> [scenario ...]
//
// Every scenario prints exactly one line, "PASS <name> | <facts>" or
// "FAIL <name> | <reason>"; the Go test asserts the PASS lines and some of
// their facts. Progress notes go to stderr. The exit code is 0 only if
// every scenario passed. All scenarios share one JVM (starting a JVM per
// scenario would cost seconds each) and run one after another, each under
// its own time limit and in its own subtree /curator-<run>/<scenario>-<i>.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.quorum.flexible.QuorumVerifier;

public class CuratorScenarios {
    static String connect;
    static String root;

    /** A failed check: the scenario's FAIL line carries the message. */
    static class CheckFailed extends Exception {
        CheckFailed(String msg) { super(msg); }
    }

    static void check(boolean ok, String what) throws CheckFailed {
        if (!ok) throw new CheckFailed(what);
    }

    static void checkEq(Object want, Object got, String what) throws CheckFailed {
        if (want == null ? got != null : !want.equals(got)) {
            throw new CheckFailed(what + ": want " + want + ", got " + got);
        }
    }

    static void note(String s) { System.err.println("[curator] " + s); }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static String s(byte[] b) { return b == null ? "null" : new String(b, StandardCharsets.UTF_8); }

    static final List<CuratorFramework> clients = new ArrayList<>();

    /** newClient starts a client and waits for its session. */
    static CuratorFramework newClient() throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
                .connectString(connect)
                .sessionTimeoutMs(10000)
                .connectionTimeoutMs(10000)
                .retryPolicy(new ExponentialBackoffRetry(100, 5))
                .build();
        c.start();
        synchronized (clients) { clients.add(c); }
        if (!c.blockUntilConnected(20, TimeUnit.SECONDS)) {
            throw new CheckFailed("client did not connect to " + connect + " within 20s");
        }
        return c;
    }

    interface Scenario { String run(String base) throws Exception; }

    static final Map<String, Scenario> scenarios = new LinkedHashMap<>();
    static {
        scenarios.put("crud", CuratorScenarios::crud);
        scenarios.put("transaction", CuratorScenarios::transaction);
        scenarios.put("leaderlatch", CuratorScenarios::leaderLatch);
        scenarios.put("mutex", CuratorScenarios::mutex);
        scenarios.put("cache", CuratorScenarios::cache);
        scenarios.put("barrier", CuratorScenarios::barrier);
        scenarios.put("sharedcount", CuratorScenarios::sharedCount);
        scenarios.put("ttl", CuratorScenarios::ttl);
        scenarios.put("ensembletracker", CuratorScenarios::ensembleTracker);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: CuratorScenarios <connectString> [scenario ...]");
            System.exit(2);
        }
        connect = args[0];
        root = "/curator-" + Long.toHexString(System.nanoTime());
        List<String> names = args.length > 1
                ? Arrays.asList(args).subList(1, args.length)
                : new ArrayList<>(scenarios.keySet());
        int failed = 0;
        ExecutorService exec = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        for (int i = 0; i < names.size(); i++) {
            String name = names.get(i);
            String base = root + "/" + name + "-" + i;
            Scenario sc = scenarios.get(name);
            if (sc == null) {
                System.out.println("FAIL " + name + " | unknown scenario");
                failed++;
                continue;
            }
            long start = System.nanoTime();
            note("start " + name);
            Future<String> f = exec.submit(() -> sc.run(base));
            String line;
            try {
                String facts = f.get(60, TimeUnit.SECONDS);
                line = "PASS " + name + " | " + facts;
            } catch (TimeoutException e) {
                f.cancel(true);
                line = "FAIL " + name + " | timed out after 60s";
            } catch (java.util.concurrent.ExecutionException e) {
                Throwable c = e.getCause();
                if (!(c instanceof CheckFailed)) c.printStackTrace();
                line = "FAIL " + name + " | " + c;
            }
            if (line.startsWith("FAIL")) failed++;
            note(String.format("end %s in %d ms", name, (System.nanoTime() - start) / 1000000));
            System.out.println(line);
            System.out.flush();
            closeClients();
        }
        System.out.println("SUMMARY scenarios=" + names.size() + " failed=" + failed);
        System.out.flush();
        // Curator's and ZooKeeper's threads are not all daemons.
        System.exit(failed == 0 ? 0 : 1);
    }

    static void closeClients() {
        synchronized (clients) {
            for (CuratorFramework c : clients) {
                try { c.close(); } catch (Exception e) { note("close: " + e); }
            }
            clients.clear();
        }
    }

    // crud: the basic builders, including create2 (storingStatIn), versions,
    // sequential and ephemeral nodes, a one-shot watch and recursive delete.
    static String crud(String base) throws Exception {
        CuratorFramework c = newClient();
        Stat st = new Stat();
        String p = c.create().creatingParentsIfNeeded().storingStatIn(st).forPath(base + "/a", b("one"));
        checkEq(base + "/a", p, "created path");
        check(st.getCzxid() > 0 && st.getCzxid() == st.getMzxid(), "create2 stat czxid=mzxid>0: " + st);
        checkEq(0, st.getVersion(), "new node version");
        checkEq(3, st.getDataLength(), "new node dataLength");
        checkEq("one", s(c.getData().forPath(base + "/a")), "getData");

        CountDownLatch fired = new CountDownLatch(1);
        String[] evt = new String[1];
        c.checkExists().usingWatcher((org.apache.zookeeper.Watcher) e -> {
            evt[0] = e.getType() + " " + e.getPath();
            fired.countDown();
        }).forPath(base + "/a");

        Stat st2 = c.setData().withVersion(0).forPath(base + "/a", b("two"));
        checkEq(1, st2.getVersion(), "version after setData");
        check(fired.await(10, TimeUnit.SECONDS), "exists watch did not fire on setData");
        checkEq("NodeDataChanged " + base + "/a", evt[0], "watch event");
        try {
            c.setData().withVersion(0).forPath(base + "/a", b("three"));
            throw new CheckFailed("setData with stale version succeeded");
        } catch (KeeperException.BadVersionException expected) {
        }

        String seq = c.create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(base + "/s-");
        check(seq.matches(java.util.regex.Pattern.quote(base) + "/s-\\d{10}"), "sequential name " + seq);
        String eph = c.create().withMode(CreateMode.EPHEMERAL).forPath(base + "/e");
        Stat est = c.checkExists().forPath(eph);
        checkEq(c.getZookeeperClient().getZooKeeper().getSessionId(), est.getEphemeralOwner(), "ephemeralOwner");

        List<String> kids = c.getChildren().forPath(base);
        java.util.Collections.sort(kids);
        String kidsStr = String.join(",", kids);
        checkEq("a,e," + seq.substring(base.length() + 1), kidsStr, "children");

        c.create().creatingParentsIfNeeded().forPath(base + "/deep/x/y/z");
        c.delete().deletingChildrenIfNeeded().forPath(base + "/deep");
        check(c.checkExists().forPath(base + "/deep") == null, "deletingChildrenIfNeeded left the node");
        c.delete().guaranteed().forPath(base + "/a");
        check(c.checkExists().forPath(base + "/a") == null, "delete left the node");
        return "children=" + kidsStr.replaceAll("\\d{10}", "N");
    }

    // transaction: CuratorFramework.transaction() (one multi request) with
    // every operation type, then a failing one that must change nothing.
    static String transaction(String base) throws Exception {
        CuratorFramework c = newClient();
        c.create().creatingParentsIfNeeded().forPath(base, b("b"));
        List<CuratorTransactionResult> rs = c.transaction().forOperations(
                c.transactionOp().create().forPath(base + "/x", b("1")),
                c.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(base + "/s-", b("s")),
                c.transactionOp().setData().withVersion(0).forPath(base + "/x", b("2")),
                c.transactionOp().check().withVersion(0).forPath(base),
                c.transactionOp().create().forPath(base + "/y", b("y")),
                c.transactionOp().delete().forPath(base + "/y"));
        List<String> types = new ArrayList<>();
        for (CuratorTransactionResult r : rs) {
            types.add(r.getType().toString());
            checkEq(0, r.getError(), "result error of " + r.getType() + " " + r.getForPath());
        }
        check(rs.get(1).getResultPath().matches(java.util.regex.Pattern.quote(base) + "/s-\\d{10}"),
                "sequential result path " + rs.get(1).getResultPath());
        checkEq(1, rs.get(2).getResultStat().getVersion(), "setData result stat version");
        checkEq("2", s(c.getData().forPath(base + "/x")), "data after transaction");
        check(c.checkExists().forPath(base + "/y") == null, "/y created and deleted in the same transaction");

        String failCode;
        try {
            c.transaction().forOperations(
                    c.transactionOp().create().forPath(base + "/z", b("z")),
                    c.transactionOp().setData().withVersion(7).forPath(base + "/x", b("3")));
            throw new CheckFailed("transaction with a bad version succeeded");
        } catch (KeeperException e) {
            failCode = e.code().toString();
        }
        checkEq("BADVERSION", failCode, "failed transaction's error");
        check(c.checkExists().forPath(base + "/z") == null, "failed transaction applied its create");
        checkEq("2", s(c.getData().forPath(base + "/x")), "failed transaction changed data");
        return "types=" + String.join(",", types) + " failed=" + failCode;
    }

    // leaderlatch: two latches on two sessions; exactly one leads, both
    // agree on which, and leadership moves when the leader closes.
    static String leaderLatch(String base) throws Exception {
        CuratorFramework c1 = newClient(), c2 = newClient();
        LeaderLatch a = new LeaderLatch(c1, base, "a");
        LeaderLatch b = new LeaderLatch(c2, base, "b");
        a.start();
        b.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!a.hasLeadership() && !b.hasLeadership()) {
            check(System.nanoTime() < deadline, "no leader within 20s");
            Thread.sleep(20);
        }
        // Both must have registered before we look at the participants.
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (a.getParticipants().size() < 2 || b.getParticipants().size() < 2) {
            check(System.nanoTime() < deadline, "participants did not reach 2");
            Thread.sleep(20);
        }
        Thread.sleep(300);
        check(a.hasLeadership() ^ b.hasLeadership(),
                "exactly one leader: a=" + a.hasLeadership() + " b=" + b.hasLeadership());
        LeaderLatch leader = a.hasLeadership() ? a : b, other = leader == a ? b : a;
        checkEq(leader.getId(), a.getLeader().getId(), "leader seen by a");
        checkEq(leader.getId(), b.getLeader().getId(), "leader seen by b");
        Collection<Participant> ps = a.getParticipants();
        checkEq(2, ps.size(), "participants");
        String first = leader.getId();
        leader.close();
        check(other.await(20, TimeUnit.SECONDS), "leadership did not move to " + other.getId());
        checkEq(other.getId(), other.getLeader().getId(), "new leader");
        checkEq(1, other.getParticipants().size(), "participants after close");
        other.close();
        // LeaderLatch.close deletes its node in the background.
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!c1.getChildren().forPath(base).isEmpty()) {
            check(System.nanoTime() < until, "latch nodes left after both closed: " + c1.getChildren().forPath(base));
            Thread.sleep(20);
        }
        return "leaders=2 handover=ok first=" + first + " second=" + other.getId();
    }

    // mutex: two sessions increment a znode counter under
    // InterProcessMutex; no lost update, never two holders; reentrancy.
    static String mutex(String base) throws Exception {
        CuratorFramework c1 = newClient(), c2 = newClient();
        String lock = base + "/lock", counter = base + "/counter";
        c1.create().creatingParentsIfNeeded().forPath(counter, b("0"));
        InterProcessMutex m1 = new InterProcessMutex(c1, lock), m2 = new InterProcessMutex(c2, lock);
        final int n = 20;
        AtomicInteger inside = new AtomicInteger(), overlaps = new AtomicInteger();
        ExecutorService ex = Executors.newFixedThreadPool(2);
        List<Future<Void>> fs = new ArrayList<>();
        for (Object[] w : new Object[][] {{m1, c1}, {m2, c2}}) {
            InterProcessMutex m = (InterProcessMutex) w[0];
            CuratorFramework c = (CuratorFramework) w[1];
            fs.add(ex.submit((Callable<Void>) () -> {
                for (int i = 0; i < n; i++) {
                    check(m.acquire(20, TimeUnit.SECONDS), "acquire timed out");
                    try {
                        if (inside.incrementAndGet() != 1) overlaps.incrementAndGet();
                        int v = Integer.parseInt(s(c.getData().forPath(counter)));
                        Thread.sleep(1);
                        c.setData().forPath(counter, b(Integer.toString(v + 1)));
                        inside.decrementAndGet();
                    } finally {
                        m.release();
                    }
                }
                return null;
            }));
        }
        for (Future<Void> f : fs) f.get(50, TimeUnit.SECONDS);
        ex.shutdown();
        checkEq(0, overlaps.get(), "times two holders overlapped");
        checkEq(Integer.toString(2 * n), s(c1.getData().forPath(counter)), "counter");

        // Reentrancy: m1 twice, m2 kept out until both releases.
        check(m1.acquire(10, TimeUnit.SECONDS), "m1 first acquire");
        check(m1.acquire(10, TimeUnit.SECONDS), "m1 reentrant acquire");
        check(m1.isAcquiredInThisProcess(), "m1 isAcquiredInThisProcess");
        checkEq(1, c1.getChildren().forPath(lock).size(), "lock nodes while m1 holds twice");
        ExecutorService other = Executors.newSingleThreadExecutor();
        try {
            // InterProcessMutex is per thread: m2 must try from its own thread.
            check(!other.submit(() -> tryOnce(m2, 300)).get(10, TimeUnit.SECONDS), "m2 got the lock m1 holds");
            m1.release();
            check(!other.submit(() -> tryOnce(m2, 300)).get(10, TimeUnit.SECONDS), "m2 got the lock after one of two releases");
            m1.release();
            check(other.submit(() -> tryOnce(m2, 10000)).get(15, TimeUnit.SECONDS), "m2 did not get the free lock");
        } finally {
            other.shutdown();
        }
        checkEq(0, c1.getChildren().forPath(lock).size(), "lock nodes left after release");
        return "counter=" + (2 * n) + " overlaps=0 reentrant=ok";
    }

    static boolean tryOnce(InterProcessMutex m, long ms) throws Exception {
        if (!m.acquire(ms, TimeUnit.MILLISECONDS)) return false;
        m.release();
        return true;
    }

    // cache: CuratorCache (a persistent recursive watch, addWatch) sees
    // another session's creates, changes and deletes, in order.
    static String cache(String base) throws Exception {
        CuratorFramework c1 = newClient(), c2 = newClient();
        c1.create().creatingParentsIfNeeded().forPath(base + "/pre", b("p"));
        BlockingQueue<String> events = new LinkedBlockingQueue<>();
        CuratorCache cache = CuratorCache.build(c1, base);
        cache.listenable().addListener(new CuratorCacheListener() {
            @Override
            public void event(Type type, ChildData oldData, ChildData data) {
                ChildData d = data != null ? data : oldData;
                String rel = d.getPath().substring(base.length());
                events.add(type + " " + (rel.isEmpty() ? "/" : rel) + " " + s(d.getData()));
            }

            @Override
            public void initialized() { events.add("INITIALIZED"); }
        });
        cache.start();
        List<String> got = new ArrayList<>();
        // Initial load: the root, then its child, then initialized.
        for (String want : new String[] {"NODE_CREATED / ", "NODE_CREATED /pre p", "INITIALIZED"}) {
            expectEvent(events, want, got);
        }
        c2.create().forPath(base + "/a", b("1"));
        expectEvent(events, "NODE_CREATED /a 1", got);
        c2.setData().forPath(base + "/a", b("2"));
        expectEvent(events, "NODE_CHANGED /a 2", got);
        c2.create().forPath(base + "/a/b", b("x"));
        expectEvent(events, "NODE_CREATED /a/b x", got);
        c2.delete().forPath(base + "/a/b");
        expectEvent(events, "NODE_DELETED /a/b x", got);
        c2.delete().forPath(base + "/a");
        expectEvent(events, "NODE_DELETED /a 2", got);
        // A burst without waiting: the creates arrive in order.
        for (int i = 1; i <= 5; i++) c2.create().forPath(base + "/q" + i, b("q" + i));
        for (int i = 1; i <= 5; i++) expectEvent(events, "NODE_CREATED /q" + i + " q" + i, got);
        checkEq("q3", s(cache.get(base + "/q3").map(ChildData::getData).orElse(null)), "cache.get");
        checkEq(7, cache.size(), "cache size");
        cache.close();
        Thread.sleep(200);
        events.clear();
        c2.create().forPath(base + "/after-close");
        String stray = events.poll(500, TimeUnit.MILLISECONDS);
        check(stray == null, "event after close: " + stray);
        return "events=" + got.size() + " order=ok";
    }

    static void expectEvent(BlockingQueue<String> q, String want, List<String> got) throws Exception {
        String e = q.poll(10, TimeUnit.SECONDS);
        checkEq(want, e, "cache event #" + (got.size() + 1) + " (after " + got + ")");
        got.add(e);
    }

    // barrier: DistributedBarrier holds a waiter on another session until
    // removed; DistributedDoubleBarrier lets two members enter and leave.
    static String barrier(String base) throws Exception {
        CuratorFramework c1 = newClient(), c2 = newClient();
        DistributedBarrier b1 = new DistributedBarrier(c1, base + "/b");
        DistributedBarrier b2 = new DistributedBarrier(c2, base + "/b");
        check(b2.waitOnBarrier(100, TimeUnit.MILLISECONDS), "waitOnBarrier without a barrier");
        b1.setBarrier();
        ExecutorService ex = Executors.newFixedThreadPool(2);
        try {
            Future<Boolean> w = ex.submit(() -> b2.waitOnBarrier(30, TimeUnit.SECONDS));
            Thread.sleep(500);
            check(!w.isDone(), "waiter passed a set barrier");
            b1.removeBarrier();
            check(w.get(15, TimeUnit.SECONDS), "waiter not released by removeBarrier");

            DistributedDoubleBarrier d1 = new DistributedDoubleBarrier(c1, base + "/double", 2);
            DistributedDoubleBarrier d2 = new DistributedDoubleBarrier(c2, base + "/double", 2);
            Future<Boolean> e1 = ex.submit(() -> d1.enter(20, TimeUnit.SECONDS));
            Thread.sleep(300);
            check(!e1.isDone(), "double barrier entered with one member");
            Future<Boolean> e2 = ex.submit(() -> d2.enter(20, TimeUnit.SECONDS));
            check(e1.get(25, TimeUnit.SECONDS) && e2.get(25, TimeUnit.SECONDS), "double barrier enter");
            Future<Boolean> l1 = ex.submit(() -> d1.leave(20, TimeUnit.SECONDS));
            Future<Boolean> l2 = ex.submit(() -> d2.leave(20, TimeUnit.SECONDS));
            check(l1.get(25, TimeUnit.SECONDS) && l2.get(25, TimeUnit.SECONDS), "double barrier leave");
        } finally {
            ex.shutdownNow();
        }
        return "barrier=released double=entered,left";
    }

    // sharedcount: SharedCount on two sessions, trySetCount with versions.
    static String sharedCount(String base) throws Exception {
        CuratorFramework c1 = newClient(), c2 = newClient();
        SharedCount s1 = new SharedCount(c1, base, 0), s2 = new SharedCount(c2, base, 0);
        s1.start();
        s2.start();
        CountDownLatch saw5 = new CountDownLatch(1), saw6 = new CountDownLatch(1);
        s2.addListener(listener(5, saw5));
        s1.addListener(listener(6, saw6));
        VersionedValue<Integer> v1 = s1.getVersionedValue(), v2 = s2.getVersionedValue();
        checkEq(0, v1.getValue(), "initial count");
        checkEq(0, v1.getVersion(), "initial version");
        check(s1.trySetCount(v1, 5), "trySetCount with the current version");
        check(!s2.trySetCount(v2, 7), "trySetCount with a stale version succeeded");
        check(saw5.await(10, TimeUnit.SECONDS), "s2 was not told of 5");
        VersionedValue<Integer> v = s2.getVersionedValue();
        checkEq(5, v.getValue(), "s2 count");
        checkEq(1, v.getVersion(), "s2 version");
        check(s2.trySetCount(v, 6), "trySetCount after refresh");
        check(saw6.await(10, TimeUnit.SECONDS), "s1 was not told of 6");
        checkEq(6, s1.getCount(), "s1 count");
        Stat st = c1.checkExists().forPath(base);
        checkEq(2, st.getVersion(), "znode version");
        s1.close();
        s2.close();
        return "count=6 version=2 stale=refused";
    }

    static SharedCountListener listener(int want, CountDownLatch latch) {
        return new SharedCountListener() {
            @Override
            public void countHasChanged(SharedCountReader r, int n) {
                if (n == want) latch.countDown();
            }

            @Override
            public void stateChanged(CuratorFramework c, ConnectionState s) {}
        };
    }

    // ttl: PersistentNode with CreateMode.PERSISTENT_WITH_TTL (create2 with
    // a TTL, extended types), recreated after an outside delete; plain TTL
    // creates, sequential included.
    static String ttl(String base) throws Exception {
        CuratorFramework c1 = newClient(), c2 = newClient();
        c1.create().creatingParentsIfNeeded().forPath(base);
        String path = base + "/node";
        PersistentNode pn = new PersistentNode(c1, CreateMode.PERSISTENT_WITH_TTL, false, path, b("v1"), 60000, false);
        pn.start();
        check(pn.waitForInitialCreate(15, TimeUnit.SECONDS), "PersistentNode not created");
        Stat st = c2.checkExists().forPath(path);
        check(st != null, "TTL node missing");
        checkEq("v1", s(c2.getData().forPath(path)), "TTL node data");
        String owner = Long.toHexString(st.getEphemeralOwner());

        c2.delete().forPath(path);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (c2.checkExists().forPath(path) == null) {
            check(System.nanoTime() < deadline, "PersistentNode not recreated after delete");
            Thread.sleep(20);
        }
        pn.setData(b("v2")); // a background setData
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!"v2".equals(s(c2.getData().forPath(path)))) {
            check(System.nanoTime() < deadline, "data after PersistentNode.setData: want v2, got " + s(c2.getData().forPath(path)));
            Thread.sleep(20);
        }
        pn.close();
        check(c2.checkExists().forPath(path) == null, "PersistentNode left its node after close");

        Stat cs = new Stat();
        String p2 = c1.create().withTtl(30000).storingStatIn(cs).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(base + "/plain", b("t"));
        check(cs.getCzxid() > 0, "create2 stat of TTL node");
        String p3 = c1.create().withTtl(30000).withMode(CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL).forPath(base + "/seq-");
        check(p3.matches(java.util.regex.Pattern.quote(base) + "/seq-\\d{10}"), "TTL sequential name " + p3);
        Stat s3 = c2.checkExists().forPath(p3);
        checkEq(Long.toHexString(cs.getEphemeralOwner()), Long.toHexString(s3.getEphemeralOwner()), "ephemeralOwner of two 30s TTL nodes");
        return "recreated=ok ephemeralOwner=0x" + owner + " plainOwner=0x" + Long.toHexString(cs.getEphemeralOwner());
    }

    // ensembletracker: every Curator 5 client reads /zookeeper/config with a
    // watch (EnsembleTracker) and may rewrite its connection string from
    // it; a standalone server's config must leave the client working.
    static String ensembleTracker(String base) throws Exception {
        CuratorFramework c = newClient();
        byte[] cfg = c.getConfig().forEnsemble();
        String cfgText = s(cfg).trim().replace("\n", "\\n");
        Thread.sleep(1000); // let the tracker's background read finish
        QuorumVerifier qv = c.getCurrentConfig();
        String conn = c.getZookeeperClient().getCurrentConnectionString();
        // The client must still work after the tracker has seen the config.
        c.create().creatingParentsIfNeeded().forPath(base + "/alive", b("y"));
        checkEq("y", s(c.getData().forPath(base + "/alive")), "read after tracker");
        CuratorFramework c2 = newClient();
        checkEq("y", s(c2.getData().forPath(base + "/alive")), "second client read");
        return "conn=" + conn + " members=" + (qv == null ? 0 : qv.getAllMembers().size())
                + " config=" + (cfgText.isEmpty() ? "<empty>" : cfgText);
    }
}
