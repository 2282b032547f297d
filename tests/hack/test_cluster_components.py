"""`hack/cluster.py stop|start|restart COMPONENT`, its bad paths: each ends in one clear line and
changes nothing. (The good paths, on a real control plane under a running operator, are
tests/faults/test_control_plane.py.) A scratch state folder on other ports: no cluster is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.clusters import OFFSETS

ROOT = Path(__file__).resolve().parents[2]


def cluster_py(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    offset = int(os.environ.get("MODELGATE_CLUSTER_PORT_OFFSET", "0")) + OFFSETS["scratch-components"]
    env = {**os.environ, "MODELGATE_CLUSTER_DIR": str(state), "MODELGATE_CLUSTER_PORT_OFFSET": str(offset)}
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / "cluster.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def error_lines(res: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if "error" in ln]


def test_an_unknown_component_is_refused_with_the_list_of_components(tmp_path: Path) -> None:
    res = cluster_py(tmp_path / "cluster", "restart", "kube-apiservr")
    assert res.returncode == 2
    [line] = error_lines(res)
    assert "invalid choice: 'kube-apiservr'" in line and "'kube-apiserver'" in line, line
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "cluster").exists()


def test_a_component_command_without_a_component_names_the_choices(tmp_path: Path) -> None:
    res = cluster_py(tmp_path / "cluster", "stop")
    assert res.returncode == 2
    [line] = error_lines(res)
    assert "stop needs a component: one of etcd, kube-apiserver" in line, line


def test_stop_on_a_control_plane_that_is_not_running_says_so(tmp_path: Path) -> None:
    res = cluster_py(tmp_path / "cluster", "stop", "etcd")
    assert res.returncode == 1
    assert error_lines(res) == [
        "cluster: error: the local control plane is not running; start it with `make cluster-up`"
    ]
    assert not (tmp_path / "cluster").exists()


def test_stop_of_a_component_that_has_exited_says_how_to_start_it(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    state.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    pids = {"etcd": gone.pid, "kube-scheduler": gone.pid}
    (state / "pids.json").write_text(json.dumps(pids))
    res = cluster_py(state, "stop", "kube-scheduler")
    assert res.returncode == 1
    assert error_lines(res) == [
        f"cluster: error: kube-scheduler is not running (pid {gone.pid} has exited); "
        "start it with `python hack/cluster.py start kube-scheduler`"
    ]
    assert json.loads((state / "pids.json").read_text()) == pids


def test_start_of_a_component_never_started_here_says_so(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    state.mkdir()
    (state / "pids.json").write_text(json.dumps({"etcd": 1}))
    res = cluster_py(state, "start", "kwok")
    assert res.returncode == 1
    [line] = error_lines(res)
    assert line.startswith("cluster: error: kwok was not started here (no command line in"), line


@pytest.mark.parametrize(
    ("short", "full"), [("apiserver", "kube-apiserver"), ("controller-manager", "kube-controller-manager")]
)
def test_a_component_may_be_named_without_its_kube_prefix(tmp_path: Path, short: str, full: str) -> None:
    state = tmp_path / "cluster"
    state.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    (state / "pids.json").write_text(json.dumps({"etcd": gone.pid, full: gone.pid}))
    res = cluster_py(state, "restart", short)
    assert res.returncode == 1
    assert error_lines(res) == [
        f"cluster: error: {full} is not running (pid {gone.pid} has exited); "
        f"start it with `python hack/cluster.py start {full}`"
    ]
