"""Parallel test workers (pytest-xdist): each worker gets a local control plane and a Prometheus of
its own, so that its session operator, its cluster-scoped policies and its webhook configurations
meet no other worker's.

The integration tests spend most of their time waiting for a real API server, operator or
Prometheus to act, not computing; `make test` runs them on four workers, each file on one worker
(`--dist loadfile`: a module's own control plane and its module-scoped fixtures stay together).
Worker gw0 keeps the default state directory and ports (it reuses a `make cluster-up` cluster);
worker gwN adds N * SPACING to every port offset, and its state directories end in `-gwN`.

Against an external cluster (MODELGATE_TEST_KUBECONFIG) the workers would share one cluster and
meet each other's operators: `-n auto` then runs in one process, and more workers are refused."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# Offsets of worker N's control planes: N * SPACING plus tests/support/clusters.py's OFFSETS
# (up to 1100, tests/hack's scratch control planes included). The largest, 3 * 1500 + 1100,
# keeps kube-apiserver (26443 + offset) under the kernel's ephemeral port range (32768 and up),
# where free ports are picked.
SPACING = 1500
WORKERS = 4
PROMETHEUS_PORT = 29090
"""hack/prometheus.py's default port: worker N's Prometheus listens on it plus N."""
SCRATCH_PROMETHEUS_PORT = 19390
"""A Prometheus that must fail before it listens (tests/hack/test_local_env.py): below every
control plane's ports."""


def number() -> int:
    """This worker's number (0 outside pytest-xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


def suffix() -> str:
    """What this worker's state directories and logs end in: "" for gw0, "-gwN" for the others."""
    return f"-gw{number()}" if number() else ""


def cluster_dir() -> Path:
    """The session control plane's state directory (hack/cluster.py's MODELGATE_CLUSTER_DIR)."""
    return Path(os.environ.get("MODELGATE_CLUSTER_DIR", ROOT / ".cache" / "cluster"))


def configure() -> None:
    """Give this worker its own ports and state directories, through the environment that
    hack/cluster.py and hack/prometheus.py (run as subprocesses) read; before collection, which
    reads them in some test modules (tests/conftest.py's pytest_configure)."""
    n = number()
    if n == 0:
        return
    if n >= WORKERS:
        raise RuntimeError(f"at most {WORKERS} test workers (-n {WORKERS}): their ports are planned")
    base = int(os.environ.get("MODELGATE_CLUSTER_PORT_OFFSET", "0"))
    os.environ["MODELGATE_CLUSTER_PORT_OFFSET"] = str(base + n * SPACING)
    os.environ["MODELGATE_CLUSTER_DIR"] = str(ROOT / ".cache" / f"cluster{suffix()}")
    prometheus = int(os.environ.get("MODELGATE_PROMETHEUS_PORT", str(PROMETHEUS_PORT)))
    os.environ["MODELGATE_PROMETHEUS_PORT"] = str(prometheus + n)
    os.environ["MODELGATE_PROMETHEUS_DIR"] = str(ROOT / ".cache" / f"prometheus{suffix()}")
