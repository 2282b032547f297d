#!/usr/bin/env python3
"""A real Prometheus server on loopback whose scrape targets the tests control.

    python hack/prometheus.py up      # start (or reuse) Prometheus on 127.0.0.1:29090
    python hack/prometheus.py down    # stop it and remove its state
    python hack/prometheus.py status  # exit 0 when it answers /-/ready

Scrape targets come from file service discovery: every `*.json` file in
.cache/prometheus/targets/ (the `targets_dir` printed by `status`) is a list of
`{"targets": ["127.0.0.1:PORT"], "labels": {...}}` groups. A test adds an exporter by writing a
file there; Prometheus picks it up within a second or two, with no restart or reload. Scrapes run
every second. There is no `honor_labels`: the labels of a target file are this setup's service
discovery labels and win over what an exporter says about itself (a clashing scraped `namespace`,
`model`, `version` or `pod` is renamed `exported_*` and dropped), as in the shipped Kubernetes
scrape configuration (examples/02-metric-templates/README.md). A target file without labels
leaves the exporter's own labels in place, which is how the tests' one simulator serves many
models.

The server is Debian's `prometheus` package (`apt-get install prometheus`), or any `prometheus`
binary named by $PROMETHEUS_BINARY.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from hack.procs import (
    HackError,
    check_ports,
    healthy,
    http_ok,
    load_pids,
    log,
    service_main,
    start,
    stop_all,
    wait_for,
)

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("MODELGATE_PROMETHEUS_DIR", ROOT / ".cache" / "prometheus"))
PORT = int(os.environ.get("MODELGATE_PROMETHEUS_PORT", "29090"))
PREFIX = "prometheus"

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: modelgate-test-targets
    file_sd_configs:
      - files: ["{targets}/*.json"]
        refresh_interval: 1s
    metric_relabel_configs:
      - regex: exported_(namespace|model|version|pod)
        action: labeldrop
"""


def binary() -> str:
    found = os.environ.get("PROMETHEUS_BINARY") or shutil.which("prometheus")
    if not found:
        raise HackError(
            "prometheus is not installed; install it with `apt-get install prometheus` "
            "(Debian/Ubuntu) or set PROMETHEUS_BINARY"
        )
    return found


def promtool() -> str:
    """promtool (rule checks and unit tests): $PROMTOOL_BINARY, the one beside the prometheus
    binary in use (Debian's package installs both), or on PATH."""
    found = os.environ.get("PROMTOOL_BINARY")
    if not found:
        beside = Path(binary()).with_name("promtool")
        found = str(beside) if beside.is_file() else shutil.which("promtool")
    if not found:
        raise HackError(
            "promtool is not installed; install it with `apt-get install prometheus` "
            "(Debian/Ubuntu) or set PROMTOOL_BINARY"
        )
    return found


def url() -> str:
    return f"http://127.0.0.1:{PORT}"


def up() -> None:
    pids = load_pids(STATE)
    if healthy(pids, lambda: http_ok(f"{url()}/-/ready")):
        log(PREFIX, f"reusing Prometheus at {url()}")
        return
    if pids:
        down()
    check_ports({"prometheus": PORT}, "MODELGATE_PROMETHEUS_PORT")
    exe = binary()
    targets = STATE / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    (STATE / "prometheus.yml").write_text(CONFIG.format(targets=targets))
    pids = {}
    started = time.monotonic()
    try:
        start(
            STATE,
            "prometheus",
            [
                exe,
                f"--config.file={STATE / 'prometheus.yml'}",
                f"--storage.tsdb.path={STATE / 'data'}",
                f"--web.listen-address=127.0.0.1:{PORT}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            pids,
        )
        wait_for(STATE, "Prometheus /-/ready", lambda: http_ok(f"{url()}/-/ready"), pids, 60)
    except BaseException:
        stop_all(pids)
        shutil.rmtree(STATE, ignore_errors=True)
        raise
    log(PREFIX, f"ready at {url()} in {time.monotonic() - started:.1f}s; targets in {targets}")


def down() -> None:
    pids = load_pids(STATE)
    stop_all(pids)
    shutil.rmtree(STATE, ignore_errors=True)
    log(PREFIX, "stopped" if pids else "Prometheus was not running")


def status() -> int:
    if healthy(load_pids(STATE), lambda: http_ok(f"{url()}/-/ready")):
        print(f"url={url()}\ntargets_dir={STATE / 'targets'}")
        return 0
    log(PREFIX, "Prometheus is not running; start it with `make prometheus-up`")
    return 1


if __name__ == "__main__":
    sys.exit(service_main(__doc__, PREFIX, up, down, status))
