"""The local environment's bad paths: a busy port, a missing tool, a component that dies at start.
Each ends in one clear line and leaves no process or state behind. These run the hack/ scripts
themselves in a scratch state folder on other ports, next to (not against) the session's cluster."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import workers
from tests.support.clusters import OFFSETS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


SCRATCH_OFFSET = int(os.environ.get("MODELGATE_CLUSTER_PORT_OFFSET", "0")) + OFFSETS["scratch"]
"""Above this test worker's control planes (tests/support/clusters.py, workers.py)."""


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for another control plane: its own state folder and ports."""
    env = {
        **os.environ,
        "MODELGATE_CLUSTER_DIR": str(tmp_path / "cluster"),
        "MODELGATE_CLUSTER_PORT_OFFSET": str(SCRATCH_OFFSET),
    }
    yield env
    subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "down"], env=env, capture_output=True)


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", text], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def test_a_busy_port_is_named_in_one_line_and_nothing_starts(scratch: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 26443 + SCRATCH_OFFSET))
        s.listen()
        res = run("cluster.py", "up", env=scratch)
    assert res.returncode == 1
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    busy = f"port {26443 + SCRATCH_OFFSET} (kube-apiserver)"
    assert errors == [errors[0]] and busy in errors[0], res.stderr
    assert "MODELGATE_CLUSTER_PORT_OFFSET" in errors[0]
    assert not Path(scratch["MODELGATE_CLUSTER_DIR"]).exists()


def test_a_component_that_dies_at_start_is_named_and_leaves_no_process_behind(
    scratch: dict[str, str], tmp_path: Path
) -> None:
    real = Path(
        subprocess.run(
            ["bash", str(ROOT / "hack" / "build.sh")], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    bins = tmp_path / "bin"
    bins.mkdir()
    for name in ("etcd", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"):
        (bins / name).symlink_to(real / name)
    broken = bins / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'Error: unknown flag: --pretend-broken' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    res = run("cluster.py", "up", env={**scratch, "MODELGATE_BIN_DIR": str(bins)})
    assert res.returncode == 1
    assert "kube-apiserver exited during start-up: Error: unknown flag" in res.stderr, res.stderr
    assert processes_mentioning(scratch["MODELGATE_CLUSTER_DIR"]) == []  # etcd, started first, is gone
    assert not Path(scratch["MODELGATE_CLUSTER_DIR"]).exists()


def test_a_missing_go_toolchain_is_named_with_how_to_fix_it(tmp_path: Path) -> None:
    path = ":".join(p for p in os.environ["PATH"].split(":") if not (Path(p) / "go").exists())
    env = {**os.environ, "PATH": path, "MODELGATE_CACHE": str(tmp_path / "cache")}
    res = subprocess.run(
        ["bash", str(ROOT / "hack" / "build.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert (
        res.stderr.strip().splitlines() == [res.stderr.strip().splitlines()[0]]
        and "Go is not installed; install Go >= 1.26" in res.stderr
    )


def test_a_missing_prometheus_binary_is_named_with_how_to_fix_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MODELGATE_PROMETHEUS_DIR": str(tmp_path / "prom"),
        "MODELGATE_PROMETHEUS_PORT": str(workers.SCRATCH_PROMETHEUS_PORT),
        "PROMETHEUS_BINARY": "",
        "PATH": "/nonexistent",
    }
    res = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "prometheus.py"), "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert "prometheus is not installed; install it with `apt-get install prometheus`" in res.stderr
    assert not (tmp_path / "prom").exists()  # refused before anything was written


def test_cluster_up_twice_reuses_the_running_control_plane(cluster: object) -> None:
    if not getattr(cluster, "local", False):
        pytest.skip("the local control plane only")
    res = run("cluster.py", "up", env=dict(os.environ))
    assert res.returncode == 0 and "reusing the running control plane" in res.stderr


def test_a_bin_dir_missing_binaries_is_named_and_nothing_starts(
    scratch: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "etcd").write_text("#!/bin/sh\n")
    res = run("cluster.py", "up", env={**scratch, "MODELGATE_BIN_DIR": str(tmp_path / "bin")})
    assert res.returncode == 1
    expected = "lacks kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok"
    assert f"cluster: error: MODELGATE_BIN_DIR={tmp_path / 'bin'} {expected}" in res.stderr, res.stderr
    assert not Path(scratch["MODELGATE_CLUSTER_DIR"]).exists()
