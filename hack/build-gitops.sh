#!/usr/bin/env bash
# Builds gitops-health (hack/gitops) from its Go modules into a cache outside git, like hack/build.sh
# builds the control plane. It tells what Argo CD and kstatus make of objects, with their own engines:
#   gitops-health argocd SCRIPT  Argo CD's way of running a health.lua, on gopher-lua (github.com/yuin/gopher-lua)
#   gitops-health kstatus        sigs.k8s.io/cli-utils' kstatus, the status Flux's healthChecks compute
# Its own folder, keyed by a hash of hack/gitops and this script, so that a change here never
# rebuilds the control plane (and the other way round): $MODELGATE_CACHE/gitops/<key>/. A warm run
# is a no-op. Prints the binary's path on stdout.
set -euo pipefail
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/versions.env
source "$HACK/versions.env"

die() { echo "modelgate build: $*" >&2; exit 1; }
command -v go >/dev/null || die "Go is not installed; install Go >= ${GO_MIN_VERSION} (https://go.dev/doc/install or apt-get install golang-go) and retry."

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"
key="$(cat "$HACK"/gitops/go.{mod,sum} "$HACK"/gitops/*.go "$HACK/build-gitops.sh" | sha256sum | cut -c1-16)"
DIR="${MODELGATE_CACHE:-$HOME/.cache/modelgate}/gitops/$key"
if [ -f "$DIR/.complete" ]; then echo "$DIR/gitops-health"; exit 0; fi
mkdir -p "$DIR"

(cd "$HACK/gitops" && timeout 600 go mod download 2>"$DIR/download.log") \
  || die "could not download Go modules for hack/gitops (is the Go module proxy reachable? see $DIR/download.log)"
start=$SECONDS
(cd "$HACK/gitops" && go build -trimpath -ldflags "-s -w" -o "$DIR/gitops-health" .) >&2
echo "modelgate build: built gitops-health in $((SECONDS - start))s into $DIR" >&2
touch "$DIR/.complete"
# Keep only this build.
find "$(dirname "$DIR")" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
echo "$DIR/gitops-health"
