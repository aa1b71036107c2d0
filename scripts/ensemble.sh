#!/usr/bin/env bash
# Start a 3-member Paddock ensemble on this machine, on loopback, with one
# command. Prints the connect string; Ctrl-C stops every member.
#
#   scripts/ensemble.sh                 # client ports 2181-2183, peers 2888-2890
#   BASE_CLIENT=3181 BASE_PEER=3888 scripts/ensemble.sh
#   DATA=/tmp/my-ensemble scripts/ensemble.sh   # keep data between runs
#
# Environment: PADDOCK (binary; default: build ./cmd/paddock into bin/),
# DATA (data root; default: a fresh temp dir, removed on exit),
# BASE_CLIENT, BASE_PEER, CLUSTER_ID, N (members, default 3),
# EXTRA (more flags for every member, e.g. "--reconfig-enabled").
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-3}
BASE_CLIENT=${BASE_CLIENT:-2181}
BASE_PEER=${BASE_PEER:-2888}
CLUSTER_ID=${CLUSTER_ID:-paddock-local}
EXTRA=${EXTRA:-}

if [[ -z "${PADDOCK:-}" ]]; then
	mkdir -p bin
	go build -o bin/paddock ./cmd/paddock
	PADDOCK=bin/paddock
fi

cleanup_data=0
if [[ -z "${DATA:-}" ]]; then
	DATA=$(mktemp -d -t paddock-ensemble.XXXXXX)
	cleanup_data=1
fi

peers=""
connect=""
for i in $(seq 1 "$N"); do
	cp=$((BASE_CLIENT + i - 1))
	pp=$((BASE_PEER + i - 1))
	peers+="${peers:+,}$i=127.0.0.1:$pp;127.0.0.1:$cp"
	connect+="${connect:+,}127.0.0.1:$cp"
done

pids=()
stopping=0
stop() {
	stopping=1
	trap - INT TERM EXIT
	echo
	echo "stopping ensemble..."
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ $cleanup_data == 1 ]]; then rm -rf "$DATA"; fi
}
trap stop INT TERM EXIT

for i in $(seq 1 "$N"); do
	cp=$((BASE_CLIENT + i - 1))
	pp=$((BASE_PEER + i - 1))
	mkdir -p "$DATA/$i"
	# shellcheck disable=SC2086
	"$PADDOCK" server --server-id "$i" --addr "127.0.0.1:$cp" --peer-addr "127.0.0.1:$pp" \
		--peers "$peers" --cluster-id "$CLUSTER_ID" --data-dir "$DATA/$i" $EXTRA \
		>"$DATA/$i.log" 2>&1 &
	pids+=($!)
done

echo "Paddock ensemble of $N members (cluster $CLUSTER_ID), data and logs in $DATA"
echo "connect string: $connect"
echo "Ctrl-C to stop."
wait -n "${pids[@]}" || true
if [[ $stopping == 0 ]]; then
	echo "a member exited; the end of its log:" >&2
	for i in $(seq 1 "$N"); do
		if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then tail -n 20 "$DATA/$i.log" >&2; fi
	done
	exit 1
fi
