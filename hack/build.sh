#!/usr/bin/env bash
# Builds the local control plane from upstream Go modules into a cache outside git:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes, hack/k8s),
#   etcd (hack/etcd), kwok (hack/kwok).
# The bin folder is keyed by a hash of the pinned modules, so a warm rebuild is a no-op.
# Prints the bin folder on stdout.
set -euo pipefail
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$HACK/versions.env"

die() { echo "modelgate build: $*" >&2; exit 1; }
command -v go >/dev/null || die "Go is not installed; install Go >= ${GO_MIN_VERSION} (https://go.dev/doc/install or apt-get install golang-go) and retry."
gov="$(go env GOVERSION | sed 's/^go//')"
[ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$gov" | sort -V | head -1)" = "$GO_MIN_VERSION" ] \
  || die "Go $gov is too old; Go >= ${GO_MIN_VERSION} is required."

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"
key="$(cat "$HACK/versions.env" "$HACK"/{k8s,etcd,kwok}/go.{mod,sum} "$HACK"/k8s/cmd/*/main.go "$HACK"/etcd/main.go "$HACK/build.sh" | sha256sum | cut -c1-16)"
BIN="${MODELGATE_CACHE:-$HOME/.cache/modelgate}/bin/$key"
if [ -f "$BIN/.complete" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$BIN"

# Fetch modules first so that a registry that cannot be reached fails in seconds with one clear line.
for m in k8s etcd kwok; do
  (cd "$HACK/$m" && timeout 600 go mod download 2>"$BIN/download-$m.log") \
    || die "could not download Go modules for hack/$m (is the Go module proxy reachable? see $BIN/download-$m.log)"
done

gitv="$K8S_VERSION"; major="${gitv#v}"; major="${major%%.*}"; minor="${gitv#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $p.gitVersion=$gitv -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  ldflags+=" -X $p.buildDate=1970-01-01T00:00:00Z"
done
start=$SECONDS
(cd "$HACK/k8s" && go build -trimpath -ldflags "$ldflags" -o "$BIN/" ./cmd/...) >&2
(cd "$HACK/etcd" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .) >&2
(cd "$HACK/kwok" && go build -trimpath -ldflags "-s -w" -o "$BIN/kwok" sigs.k8s.io/kwok/cmd/kwok) >&2
echo "modelgate build: built the control plane in $((SECONDS - start))s into $BIN" >&2
touch "$BIN/.complete"
# Keep only this build: older keys are dead weight (about 450 MB each).
find "$(dirname "$BIN")" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "$BIN"
