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
test: vet unit selfcheck fuzz-smoke

unit:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# The compatibility suites aimed at Apache ZooKeeper (and the differential
# test at Apache vs Apache): proves the suites' expectations are
# ZooKeeper's, independently of Paddock.
selfcheck:
	PADDOCK_TEST_TARGET=apache PADDOCK_DIFF_SELF=1 $(GO) test -count=1 -timeout 10m \
		./test/differential ./test/kazoo ./test/zkcli ./test/curator ./test/zktop

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
