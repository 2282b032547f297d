#!/usr/bin/env bash
# Builds Helm (helm.sh/helm/v4, pinned in hack/helm/go.mod) into a cache outside git, like
# hack/build.sh builds the control plane. Its own folder, keyed by a hash of hack/helm's go.mod,
# go.sum and this script, so that a new Helm never rebuilds the control plane (and the other way
# round): $MODELGATE_CACHE/helm/<key>/helm. A warm run is a no-op. Prints the binary's path on stdout.
set -euo pipefail
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$HACK/versions.env"

die() { echo "modelgate build: $*" >&2; exit 1; }
command -v go >/dev/null || die "Go is not installed; install Go >= ${GO_MIN_VERSION} (https://go.dev/doc/install or apt-get install golang-go) and retry."

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"
key="$(cat "$HACK"/helm/go.{mod,sum} "$HACK/build-helm.sh" | sha256sum | cut -c1-16)"
DIR="${MODELGATE_CACHE:-$HOME/.cache/modelgate}/helm/$key"
if [ -f "$DIR/.complete" ]; then echo "$DIR/helm"; exit 0; fi
mkdir -p "$DIR"

version="$(cd "$HACK/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v4)" \
  || die "could not read Helm's version from hack/helm/go.mod"
(cd "$HACK/helm" && timeout 600 go mod download 2>"$DIR/download.log") \
  || die "could not download Go modules for hack/helm (is the Go module proxy reachable? see $DIR/download.log)"
start=$SECONDS
# `helm version` prints internal/version.version; Helm's own Makefile stamps it the same way.
(cd "$HACK/helm" && go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  -o "$DIR/helm" helm.sh/helm/v4/cmd/helm) >&2
echo "modelgate build: built helm $version in $((SECONDS - start))s into $DIR" >&2
touch "$DIR/.complete"
# Keep only this build.
find "$(dirname "$DIR")" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "$DIR/helm"
