"""Control plane faults: kube-apiserver, etcd and kube-controller-manager restarted under a running
operator while models change, on a control plane of its own ("control").

Every test starts from two Serving models, `keep` and `revoke`, restarts one component with
`hack/cluster.py`, and makes its changes the moment the API server takes writes again (for the
controller-manager, while it is down): `revoke`'s approval is deleted, and `late` is created with
its approval but without its evaluation. Then:

- the operator reconnected by itself: the same process, still alive;
- it saw the deletion: `revoke` is suspended (Blocked, its Deployment at zero replicas), once;
- nothing without evidence was admitted: `late` stays Blocked with no Deployment until its
  evaluation is submitted, and then it is admitted, once;
- nothing was wrongly withdrawn: `keep` serves on, its history and its Deployment untouched.

The deletion right after an API server restart is the regression test for a missed deletion: Kopf
re-lists after the restart (410 Gone) and reported only the objects it listed, so an approval
deleted before the re-list stayed in the operator's indexes and its model stayed admitted
(observe/relist.py). The timing of each reaction is measured in bench/reconnect.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hack.launch import PROBE_ARGS, client_ca_args, probe_answered, probe_input

from tests.support import manifests as m
from tests.support.clusters import OFFSETS, ROOT, own_cluster
from tests.support.kube import Cluster, Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess, run_operator

pytestmark = pytest.mark.integration

NAME = "control"
NAMESPACES = "cp-*"


@pytest.fixture(scope="module")
def control() -> Iterator[Cluster]:
    with own_cluster(NAME) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def control_operator(control: Cluster) -> Iterator[OperatorProcess]:
    """One operator for the module: each test proves it survives one more restart."""
    log = ROOT / ".cache" / "test-logs" / "control-plane" / "operator.log"
    args = ("--namespace", NAMESPACES, *client_ca_args(control.kubeconfig))
    with run_operator(control.kubeconfig, log, *args) as op:
        kubectl = control.kubectl
        wait_until(
            "the admission webhooks to answer",
            lambda: probe_answered(*_probe(kubectl)),
        )
        yield op


def _probe(kubectl: Kubectl) -> tuple[int, str]:
    res = kubectl(*PROBE_ARGS, input=probe_input(), check=False)
    return res.returncode, res.stdout


@pytest.fixture
def ns(control: Cluster) -> Iterator[str]:
    with m.governed_namespace(control.kubectl, "cp") as name:
        yield name


# --- the cluster and its components ------------------------------------------------------------


def hack(cluster: Cluster, *args: str) -> subprocess.Popen[str]:
    """`hack/cluster.py ARGS` against the control plane of `cluster` (its state folder and ports)."""
    base = int(os.environ.get("MODELGATE_CLUSTER_PORT_OFFSET", "0"))
    env = {
        **os.environ,
        "MODELGATE_CLUSTER_DIR": str(Path(cluster.kubeconfig).parent),
        "MODELGATE_CLUSTER_PORT_OFFSET": str(base + OFFSETS[NAME]),
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "hack" / "cluster.py"), *args], env=env, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen[str]) -> str:
    """Wait for a hack/cluster.py command; its stderr; fail with it when the command failed."""
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, f"{proc.args!r} failed: {err}"
    return err


def retried(kubectl: Kubectl, *args: str, input: str | None = None) -> None:
    """A kubectl write retried until the API server takes it (it may be down, or etcd may be)."""

    def accepted() -> bool:
        return kubectl(*args, "--request-timeout=3s", input=input, check=False).returncode == 0

    wait_until(f"the API server to accept kubectl {' '.join(args[:3])}", accepted, timeout=120, interval=0.1)


RECONNECTS = 6
"""Kopf's backoff after its 6th failed attempt is 8 s: time enough to start kube-apiserver (3-6 s)."""


def failed_reconnects(op: OperatorProcess, ns: str) -> int:
    """How many attempts in a row Kopf has logged as failed to re-open the watch of approvals in `ns`."""
    pattern = re.compile(
        rf"Request attempt #(\d+)/\d+ failed; will retry: GET \S+/namespaces/{ns}/modelapprovals\?watch=true"
    )
    return max((int(n) for n in pattern.findall(op.log.read_text(errors="replace"))), default=0)


# --- models -----------------------------------------------------------------------------------------


def admit(kubectl: Kubectl, ns: str, *names: str) -> None:
    for name in names:
        m.approve(kubectl, m.approval(f"{name}-ok", ns, name))
        m.submit(kubectl, m.evaluation(f"{name}-eval", ns, name))
        model = m.model_deployment(
            name, ns, replicas=1, approvals=(f"{name}-ok",), evaluations=(f"{name}-eval",)
        )
        m.deploy(kubectl, model)
    for name in names:
        wait_phase(kubectl, ns, name, "Serving")


def late_model(ns: str) -> dict[str, Any]:
    """`late`: approved, its evaluation referenced but not submitted yet."""
    return m.model_deployment("late", ns, replicas=1, approvals=("late-ok",), evaluations=("late-eval",))


def as_user(obj: dict[str, Any], who: str) -> tuple[str, ...]:
    """kubectl arguments for applying `obj` as `who` (impersonation, as tests/support/manifests)."""
    groups = {"bob": ("ethics-board",), "erin": m.EVALUATORS, "alice": m.DEPLOYERS}[who]
    return ("apply", "-f", "-", f"--as={who}", *(f"--as-group={g}" for g in groups))


def phase(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any] | None:
    obj = kubectl.get("mdep", name, ns)
    return obj if obj and obj.get("status") else None


def wait_phase(kubectl: Kubectl, ns: str, name: str, want: str, timeout: float = 90) -> dict[str, Any]:
    def current() -> dict[str, Any] | None:
        obj = phase(kubectl, ns, name)
        if obj is None:
            return None
        st = obj["status"]
        fresh = st.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if fresh and st.get("phase") == want else None

    return wait_until(f"ModelDeployment {ns}/{name} to reach {want}", current, timeout=timeout)


def decisions(op: OperatorProcess, ns: str, name: str) -> list[str]:
    """The operator's audit actions for one model, in order."""
    return [
        line["action"]
        for line in op.audit_lines()
        if (line.get("object") or {}).get("namespace") == ns and line["object"].get("name") == name
    ]


class Before:
    """What `keep` and `revoke` looked like before the fault."""

    def __init__(self, kubectl: Kubectl, ns: str, op: OperatorProcess) -> None:
        keep, deployment = kubectl.get("mdep", "keep", ns), kubectl.get("deployment", "keep", ns)
        assert keep and deployment, "keep and its Deployment exist before the fault"
        self.keep: dict[str, Any] = keep
        self.keep_deployment: dict[str, Any] = deployment
        self.decisions = {name: decisions(op, ns, name) for name in ("keep", "revoke")}


def changes(kubectl: Kubectl, ns: str) -> None:
    """The changes made while the operator may still be blind: each retried until accepted."""
    retried(kubectl, "delete", "modelapproval", "revoke-ok", "-n", ns)
    approval = m.approval("late-ok", ns, "late")
    retried(kubectl, *as_user(approval, "bob"), input=json.dumps(approval))
    model = late_model(ns)
    retried(kubectl, *as_user(model, "alice"), input=json.dumps(model))


def check_after(kubectl: Kubectl, ns: str, op: OperatorProcess, pid: int, before: Before) -> None:
    """The invariants once the component is back (see the module docstring)."""
    assert op.proc.pid == pid and op.proc.poll() is None, "the operator did not survive the restart"
    revoked = wait_phase(kubectl, ns, "revoke", "Blocked")
    ready = condition(revoked, "Ready")
    assert ready and "suspended" in ready["message"], ready
    wait_until(
        "revoke's Deployment to scale to zero",
        lambda: (kubectl.get("deployment", "revoke", ns) or {}).get("spec", {}).get("replicas") == 0,
    )
    assert decisions(op, ns, "revoke") == [*before.decisions["revoke"], "Suspended"]

    blocked = wait_phase(kubectl, ns, "late", "Blocked")
    evaluated = condition(blocked, "Evaluated")
    assert evaluated and evaluated["status"] == "False", evaluated
    assert kubectl.get("deployment", "late", ns) is None
    assert "Admitted" not in decisions(op, ns, "late")
    m.submit(kubectl, m.evaluation("late-eval", ns, "late"))
    # Admitted once and its Deployment written. Not waited to Serve: after a long API outage the
    # controller-manager's own informers take up to a minute to make pods again (measured).
    wait_until("late to be admitted", lambda: "Admitted" in decisions(op, ns, "late"))
    assert wait_until("late's Deployment", lambda: kubectl.get("deployment", "late", ns))
    assert decisions(op, ns, "late").count("Admitted") == 1

    keep = wait_phase(kubectl, ns, "keep", "Serving")
    assert keep["status"]["history"] == before.keep["status"]["history"]
    assert decisions(op, ns, "keep") == before.decisions["keep"]
    dep = kubectl.get("deployment", "keep", ns)
    assert dep and dep["metadata"]["uid"] == before.keep_deployment["metadata"]["uid"]
    assert dep["spec"]["replicas"] == 1


# --- the faults (kube-apiserver last: after a long API outage the controller-manager takes up to a
# minute to recover, and every other test needs it) --------------------------------------------------


def test_while_the_controller_manager_is_down_nothing_unready_is_called_serving(
    control: Cluster, control_operator: OperatorProcess, ns: str
) -> None:
    kubectl, op = control.kubectl, control_operator
    admit(kubectl, ns, "keep", "revoke")
    before = Before(kubectl, ns, op)
    pid = op.proc.pid
    finish(hack(control, "stop", "kube-controller-manager"))
    try:
        changes(kubectl, ns)
        wait_phase(kubectl, ns, "revoke", "Blocked")
        wait_phase(kubectl, ns, "late", "Blocked")
        assert kubectl.get("deployment", "late", ns) is None
        m.submit(kubectl, m.evaluation("late-eval", ns, "late"))
        # Admitted, its Deployment written, but no controller makes its pods: not Serving.
        progressing = wait_phase(kubectl, ns, "late", "Progressing")
        assert kubectl.get("deployment", "late", ns) is not None
        assert condition(progressing, "Ready")["status"] == "False"  # type: ignore[index]
    finally:
        finish(hack(control, "start", "kube-controller-manager"))
    assert op.proc.pid == pid and op.proc.poll() is None
    wait_phase(kubectl, ns, "late", "Serving")
    assert decisions(op, ns, "late").count("Admitted") == 1
    assert decisions(op, ns, "revoke") == [*before.decisions["revoke"], "Suspended"]
    keep = wait_phase(kubectl, ns, "keep", "Serving")
    assert keep["status"]["history"] == before.keep["status"]["history"]
    assert decisions(op, ns, "keep") == before.decisions["keep"]


@pytest.mark.parametrize("component", ["etcd", "kube-apiserver"])
def test_after_a_restart_the_operator_sees_changes_made_the_moment_the_api_is_back(
    control: Cluster, control_operator: OperatorProcess, ns: str, component: str
) -> None:
    kubectl, op = control.kubectl, control_operator
    admit(kubectl, ns, "keep", "revoke")
    before = Before(kubectl, ns, op)
    pid = op.proc.pid
    if component == "kube-apiserver":
        finish(hack(control, "stop", component))
        # Back while the operator waits 8 s for its next attempt (Kopf's backoff 1, 1, 2, 3, 5, 8 s):
        # the changes land before its watches reconnect and re-list, every time.
        wait_until(
            "the operator's watch to fail 6 reconnects",
            lambda: failed_reconnects(op, ns) >= RECONNECTS,
            timeout=60,
        )
        restart = hack(control, "start", component)
    else:
        restart = hack(control, "restart", component)
    changes(kubectl, ns)
    finish(restart)
    check_after(kubectl, ns, op, pid, before)
