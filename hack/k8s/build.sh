#!/usr/bin/env bash
# Build (or find in the cache) the Kubernetes control-plane tools for tests:
# one multi-call binary, k8s-tools, plus symlinks named kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd and kubectl.
#
# The result is stored under a content key:
#   ${PADDOCK_K8S_CACHE:-$HOME/.cache/paddock/k8s}/<key>/
# where <key> is the sha256 of go.mod, go.sum, main.go, the build flags, the
# tool names and the Go toolchain (go version, GOOS, GOARCH). If that
# directory exists the script does nothing; otherwise it builds into a
# temporary directory next to it and renames it into place (atomic). Either way it prints the directory
# on stdout (logs go to stderr) and points hack/k8s/bin at it.
#
#   hack/k8s/build.sh            build if needed, print the directory
#   hack/k8s/build.sh --key      print the key only (no build)
#   hack/k8s/build.sh --dir      print the directory the key maps to (no build)
#
# GOFLAGS and GOCACHE are left to the caller: with the default GOCACHE a
# rebuild after a key change only recompiles what changed (usually only the
# link). A cold build takes ~8 minutes on 2 idle cores (up to ~28 on a
# saturated machine); see README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi

# Kubernetes release the binary reports; must match k8s.io/kubernetes in go.mod.
KUBE_VERSION=v1.37.2
KUBE_MAJOR=1
KUBE_MINOR=37
TOOLS=(kube-apiserver kube-controller-manager kube-scheduler etcd kubectl)

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X ${pkg}.gitVersion=${KUBE_VERSION}"
	ldflags+=" -X ${pkg}.gitMajor=${KUBE_MAJOR}"
	ldflags+=" -X ${pkg}.gitMinor=${KUBE_MINOR}"
	ldflags+=" -X ${pkg}.gitTreeState=clean"
	ldflags+=" -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
done
# -trimpath is part of the build-cache key of every package: keep it (and use
# it for tests that share these dependencies) so compiles are reused.
buildflags=(-trimpath -buildvcs=false "-ldflags=${ldflags}")

key() {
	{
		sha256sum go.mod go.sum main.go | awk '{print $1}'
		printf '%s\n' "${buildflags[@]}" "${TOOLS[@]}"
		go env GOVERSION GOOS GOARCH
	} | sha256sum | cut -c1-16
}

cache="${PADDOCK_K8S_CACHE:-$HOME/.cache/paddock/k8s}"
k="$(key)"
dir="$cache/$k"

case "${1:-}" in
--key) echo "$k"; exit 0 ;;
--dir) echo "$dir"; exit 0 ;;
"") ;;
*) echo "usage: $0 [--key|--dir]" >&2; exit 2 ;;
esac

complete() { [ -x "$1/k8s-tools" ] && [ -f "$1/.complete" ]; }

link_bin() {
	# hack/k8s/bin -> the current cache directory (gitignored; convenience).
	ln -sfn "$dir" "$here/bin.tmp.$$" && mv -Tf "$here/bin.tmp.$$" "$here/bin" 2>/dev/null || rm -f "$here/bin.tmp.$$"
}

if complete "$dir"; then
	link_bin
	echo "$dir"
	exit 0
fi

mkdir -p "$cache"
# One builder at a time (parallel test packages may all ask for the tools).
exec 9>"$cache/.lock"
if command -v flock >/dev/null && ! flock -n 9; then
	echo "k8s-tools: another build holds $cache/.lock; waiting" >&2
	flock 9
fi
if complete "$dir"; then
	link_bin
	echo "$dir"
	exit 0
fi

tmp="$(mktemp -d "$cache/.build-$k.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "k8s-tools: building key $k (Kubernetes $KUBE_VERSION; cold: ~8 min on 2 idle cores, more when loaded)" >&2
start=$(date +%s)
go build "${buildflags[@]}" -o "$tmp/k8s-tools" .
for t in "${TOOLS[@]}"; do
	ln -s k8s-tools "$tmp/$t"
done
end=$(date +%s)
{
	echo "key=$k"
	echo "kubernetes=$KUBE_VERSION"
	echo "go=$(go env GOVERSION)"
	echo "build_seconds=$((end - start))"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$tmp/.complete"
chmod 755 "$tmp"
rm -rf "$dir" # an incomplete leftover, if any
mv -T "$tmp" "$dir"
trap - EXIT
echo "k8s-tools: built in $((end - start))s: $dir" >&2
link_bin
# Keep the newest few keys (other checkouts may still use an older one).
ls -1dt "$cache"/*/ 2>/dev/null | tail -n +$((${PADDOCK_K8S_KEEP:-3} + 1)) | while read -r old; do
	echo "k8s-tools: pruning old key $old" >&2
	rm -rf "$old"
done
echo "$dir"
