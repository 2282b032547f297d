#!/usr/bin/env bash
# Builds the peers that bench/peers.py measures modelgate against (Flagger, github.com/fluxcd/flagger)
# into a cache outside git, like hack/build-helm.sh: $MODELGATE_CACHE/peers/<key>/, keyed by a hash of
# this script (which pins the version). Optional: no test needs it, and `make test` never builds it.
# Besides the binary it copies Flagger's CRDs from the module source (artifacts/flagger/crd.yaml), so
# the benchmark installs exactly the CRDs of the version it runs. A warm run is a no-op. Prints the
# folder on stdout.
set -euo pipefail
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FLAGGER_VERSION="v1.36.1"

die() { echo "modelgate build: $*" >&2; exit 1; }
command -v go >/dev/null || die "Go is not installed; install Go (https://go.dev/doc/install or apt-get install golang-go) and retry."

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"
key="$(sha256sum "$HACK/build-peers.sh" | cut -c1-16)"
DIR="${MODELGATE_CACHE:-$HOME/.cache/modelgate}/peers/$key"
if [ -f "$DIR/.complete" ]; then echo "$DIR"; exit 0; fi
mkdir -p "$DIR"

module="github.com/fluxcd/flagger@$FLAGGER_VERSION"
src="$(timeout 600 go mod download -json "$module" 2>"$DIR/download.log" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')" \
  || die "could not download $module (is the Go module proxy reachable? see $DIR/download.log)"
[ -f "$src/artifacts/flagger/crd.yaml" ] || die "$module has no artifacts/flagger/crd.yaml (looked in '$src')"
start=$SECONDS
# Flagger's Makefile stamps nothing into the binary that the benchmark reads; a plain install.
GOBIN="$DIR" go install -trimpath -ldflags "-s -w" "github.com/fluxcd/flagger/cmd/flagger@$FLAGGER_VERSION" >&2
cp "$src/artifacts/flagger/crd.yaml" "$DIR/flagger-crd.yaml"
echo "$FLAGGER_VERSION" >"$DIR/flagger.version"
echo "modelgate build: built flagger $FLAGGER_VERSION in $((SECONDS - start))s into $DIR" >&2
touch "$DIR/.complete"
# Keep only this build.
find "$(dirname "$DIR")" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "$DIR"
