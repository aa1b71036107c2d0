# Paddock build and test entry points. CI runs `make test` (see .ci/run).

GO          ?= go
TEST_TIMEOUT ?= 20m
# Fuzz time per target: fuzz-smoke (CI) and fuzz (long runs).
FUZZTIME    ?= 10s
FUZZ_LONG   ?= 5m
# Crash schedule for `make crash` (test/crash).
CRASH_ROUNDS ?= 200
# Build the Paddock binary the system tests start with -race.
export PADDOCK_RACE ?= 1

.PHONY: all build vet test unit fuzz-smoke fuzz bench crash diff-long run selfcheck clean ensemble

all: build

build:
	$(GO) build -o bin/paddock ./cmd/paddock

vet:
	$(GO) vet ./...

# Everything CI checks: vet, all tests under the race detector, the
# compatibility suites validated against Apache ZooKeeper itself, and a
# short run of every fuzz target. Bounded to well under 30 minutes.
test: vet unit selfcheck storage-ensemble fuzz-smoke

unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# The compatibility suites aimed at Apache ZooKeeper (and the differential
# test at Apache vs Apache): proves the suites' expectations are
# ZooKeeper's, independently of Paddock. Likewise kube-apiserver's storage
# conformance tests (test/k8sstorage) against a real etcd 3.7.
selfcheck:
	PADDOCK_TEST_TARGET=apache PADDOCK_DIFF_SELF=1 $(GO) test -count=1 -timeout 10m \
		./test/differential ./test/kazoo ./test/zkcli ./test/curator ./test/zktop
	PADDOCK_STORAGE_TARGET=etcd $(GO) test -count=1 -timeout 10m ./test/k8sstorage

# kube-apiserver's storage conformance tests (test/k8sstorage; `unit` runs
# them on a standalone server) on a 3-member ensemble, through a follower.
.PHONY: storage-ensemble
storage-ensemble:
	PADDOCK_STORAGE_TARGET=ensemble $(GO) test -count=1 -timeout 10m ./test/k8sstorage

# Run each fuzz target (found with `go test -list`) for $(FUZZTIME).
# Go allows only one -fuzz target per invocation.
fuzz-smoke:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$fz in $$pkg for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

fuzz:
	$(MAKE) fuzz-smoke FUZZTIME=$(FUZZ_LONG)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

# Long kill -9 schedule (test/crash).
crash:
	$(GO) test -count=1 -v -timeout 3h ./test/crash -crash.rounds=$(CRASH_ROUNDS)

# Long differential run against Apache ZooKeeper.
diff-long:
	$(GO) test -count=1 -timeout 2h ./test/differential -diff.seeds=500 -diff.ops=2000

run:
	$(GO) run ./cmd/paddock server

# A 3-member ensemble on loopback (client ports 2181-2183); Ctrl-C stops it.
ensemble: build
	PADDOCK=bin/paddock scripts/ensemble.sh

clean:
	rm -rf bin

# Kubernetes control-plane tools for tests (kube-apiserver, -controller-manager,
# -scheduler, etcd, kubectl): hack/k8s, a separate Go module. Cached by content
# key under ~/.cache/paddock/k8s; a cold build takes ~8 min on 2 idle cores
# (hack/k8s/README.md).
.PHONY: k8s-tools
k8s-tools:
	hack/k8s/build.sh

# End-to-end proof of the operator (test/k8se2e): a real control plane, a
# vnode whose pods are `paddock server` processes (internal/vnode), the
# operator, a client writing throughout; create 3, scale 5 and 3, rolling
# upgrade leader last, kill a member, delete a pod and its volume, backup
# and restore, delete. `make test` runs it as part of `unit` (about 2-4
# min); this runs it alone, verbose, keeping every component's log under
# $(E2E_LOGDIR)/<test>/. Needs root and the Kubernetes tools (make k8s-tools).
E2E_LOGDIR ?= test-artifacts/e2e
.PHONY: e2e
e2e:
	PADDOCK_K8S_LOGDIR=$(CURDIR)/$(E2E_LOGDIR) $(GO) test -race -count=1 -v -timeout 30m ./internal/vnode/ ./test/k8se2e/

# The whole seed for a person to watch (hack/demo, the steps of test/seed):
# a control plane on a 3-member Paddock ensemble's etcd API, a vnode, the
# operator deploying a PaddockCluster of 3 on it, a ZooKeeper client using
# it; then it stays up with the kubeconfig and commands to try until
# Ctrl-C tears it down. Needs root; builds the Kubernetes tools if needed.
.PHONY: demo-k8s
demo-k8s: build
	$(GO) build -o bin/paddock-demo ./hack/demo
	PADDOCK_RACE=0 PADDOCK_BIN=$(CURDIR)/bin/paddock PADDOCK_K8S_BIN="$${PADDOCK_K8S_BIN:-$$(hack/k8s/build.sh)}" bin/paddock-demo $(DEMO_FLAGS)

# Randomized fault schedules on 3- and 5-member ensembles (test/ensemble,
# internal/faults): kill -9, SIGSTOP, partitions, restarts, with porcupine-
# checked workloads. `make test` runs 4 schedules; this runs thousands and
# appends one JSON line per schedule to $(FAULTS_SUMMARY). A failure prints
# its seed and the command that reproduces it. Servers are built without
# -race here (FAULTS_RACE=1 to keep it) so more schedules fit in the time.
FAULTS_SCHEDULES ?= 1000
FAULTS_SEED      ?= 1
FAULTS_RACE      ?= 0
FAULTS_SUMMARY   ?= faults-summary.jsonl
FAULTS_FLAGS     ?=
.PHONY: faults faults-measure
faults:
	PADDOCK_RACE=$(FAULTS_RACE) $(GO) test -count=1 -v -timeout 0 ./test/ensemble -run 'Schedule' \
		-ens.seed=$(FAULTS_SEED) -ens.schedules=$(FAULTS_SCHEDULES) -ens.summary=$(CURDIR)/$(FAULTS_SUMMARY) $(FAULTS_FLAGS)

# The same fault schedules against the etcd API (test/etcd TestEtcdSchedule):
# every member serves --etcd-listen; etcd clients do Put/Get/Range/Txn/
# DeleteRange, one watcher per member; porcupine checks the history against
# a revision-aware etcd KV model and the watch streams are checked against
# each other and the history. `make test` runs 2 schedules of 12 s.
ETCD_FAULTS_SCHEDULES ?= 200
ETCD_FAULTS_SEED      ?= 1
ETCD_FAULTS_FLAGS     ?= -etcd.duration=20s
.PHONY: etcd-faults
etcd-faults:
	PADDOCK_RACE=$(FAULTS_RACE) $(GO) test -count=1 -v -timeout 0 ./test/etcd -run 'EtcdSchedule' \
		-etcd.seed=$(ETCD_FAULTS_SEED) -etcd.schedules=$(ETCD_FAULTS_SCHEDULES) $(ETCD_FAULTS_FLAGS)

# Leader fail-over (Paddock and Apache ZooKeeper, 3 members each) and
# catch-up after 100k writes, for docs/PERFORMANCE.md (RESULT lines).
faults-measure:
	PADDOCK_RACE=0 $(GO) test -count=1 -v -timeout 30m ./test/ensemble -run 'Failover|CatchUp' -ens.measure

# Paddock vs Apache ZooKeeper 3.8, standalone and 3-member, a fresh server
# for every point; writes docs/perf/ (tables, plots, the commands used).
.PHONY: perf
perf:
	scripts/bench-compare

# Paddock's etcd API against etcd 3.7 (the tools module's binary, see
# k8s-tools), on this machine in one run, a fresh cluster for every point,
# fsync on for both: put/range/txn through etcd's Go client (standalone and
# 3 members), then a real kube-apiserver on each creating and listing
# ConfigMaps. Rewrites the generated sections of docs/PERFORMANCE.md (and
# docs/perf/etcd-compare.jsonl). `make test` runs a short seeded slice of
# the same tests. Servers are built without -race.
PERF_ETCD_FLAGS ?=
.PHONY: perf-etcd perf-etcd-memory perf-etcd-pause
perf-etcd:
	PADDOCK_RACE=0 $(GO) test -count=1 -v -timeout 0 ./test/etcdperf -run 'TestEtcdCompare|TestKubeCompare' -etcdperf.run $(PERF_ETCD_FLAGS)

# Resident memory of Paddock and etcd 3.7 as the etcd keyspace grows (100k,
# 250k, 500k keys of 1-4 KiB), with 3 versions per key, then compacted.
# Needs a few GiB of free memory; rewrites docs/PERFORMANCE.md's section.
perf-etcd-memory:
	PADDOCK_RACE=0 $(GO) test -count=1 -v -timeout 0 ./test/etcdperf -run 'TestEtcdMemory' -etcdperf.memory $(PERF_ETCD_FLAGS)

# What a snapshot of ~1 GiB of etcd keyspace costs clients: probe-put
# latency while 400k keys are written, rewritten and compacted, Paddock
# against etcd 3.7 (add baseline to -etcdperf.pause.kinds with
# PADDOCK_BASELINE_BIN=<older paddock> to compare builds). ~15 min.
perf-etcd-pause:
	PADDOCK_RACE=0 $(GO) test -count=1 -v -timeout 0 ./test/etcdperf -run 'TestEtcdSnapshotPause' -etcdperf.pause $(PERF_ETCD_FLAGS)
