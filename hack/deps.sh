#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine, and nothing when it is there:
# the Python virtualenv (.venv, from pyproject.toml), Debian's prometheus and tmux. Go must be installed
# (>= the version in hack/versions.env); the control plane itself is built by hack/build.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "modelgate deps: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed; install Python >= 3.11."
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python >= 3.11 is required, found $(python3 -V)."
command -v go >/dev/null || die "Go is not installed; install Go >= 1.26 (apt-get install golang-go, or https://go.dev/dl)."

if ! command -v prometheus >/dev/null && [ -z "${PROMETHEUS_BINARY:-}" ]; then
  [ "$(id -u)" = 0 ] || die "prometheus is not installed; run: sudo apt-get install prometheus"
  command -v apt-get >/dev/null || die "prometheus is not installed and apt-get is not available; install Prometheus >= 2.40 and set PROMETHEUS_BINARY."
  echo "modelgate deps: installing Debian's prometheus" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq >/dev/null || die "apt-get update failed: is the Debian mirror reachable?"
  timeout 600 apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || die "apt-get install prometheus failed"
fi

# Debian's package $1 unless its command is there already (as root; else the command to run).
debian_package() {
  command -v "$1" >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "$1 is not installed; run: sudo apt-get install $1"
  command -v apt-get >/dev/null || die "$1 is not installed and apt-get is not available; install $1."
  echo "modelgate deps: installing Debian's $1" >&2
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq >/dev/null || die "apt-get update failed: is the Debian mirror reachable?"
  timeout 900 apt-get install -y -qq --no-install-recommends "$1" >/dev/null || die "apt-get install $1 failed"
}
debian_package tmux      # the terminal tests of `kubectl modelgate wait` (tests/e2e/test_plugin_terminal.py)
debian_package chromium  # the HTML report rendered in a real browser (tests/e2e/test_report_html.py)

stamp="$ROOT/.venv/.installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "modelgate deps: installing the Python package and its test tools into .venv" >&2
  [ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv" || die "python3 -m venv failed (apt-get install python3-venv)."
  "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  timeout 900 "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT[test]" || die "pip install failed: is PyPI reachable?"
  touch "$stamp"
fi

# hack/ and bench/ are packages imported from the repository root (`from hack.launch import ...`),
# whether a script runs as `python hack/cluster.py` or as `python -m hack.cluster`: the root goes on
# the virtualenv's path, the way pip's editable install puts operator/ there (hack/__init__.py).
site="$("$ROOT/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
[ "$(cat "$site/modelgate-repository-root.pth" 2>/dev/null)" = "$ROOT" ] || echo "$ROOT" > "$site/modelgate-repository-root.pth"
