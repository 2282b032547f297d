"""Restart the operator at any moment and it converges without duplicate actions: a second operator
process over the same models writes nothing, records nothing and changes no serving object."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, create_test_namespace, wait_until
from tests.support.operator import OperatorProcess, run_operator

pytestmark = pytest.mark.integration


ARGS = ("--namespace", "x-*", "--webhook-port", "0")
"""The operators of these tests watch x-* namespaces only; the session's operator serves the webhooks."""


@pytest.fixture
def x_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace outside the session operator's t-*, with a policy that wants one approval."""
    name = f"x-{uuid.uuid4().hex[:6]}"
    policy = f"p-{uuid.uuid4().hex[:8]}"
    create_test_namespace(kubectl, name)
    kubectl.apply(m.policy(policy, name, min_accuracy=None))
    yield name
    kubectl("delete", "governancepolicy", policy, "--ignore-not-found")
    kubectl("delete", "namespace", name, "--wait=false")


def approve_and_deploy(kubectl: Kubectl, ns: str) -> None:
    m.approve(kubectl, m.approval("eb", ns, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("eb",)))


def reconciles(op: OperatorProcess) -> float:
    line = next(
        ln for ln in op.metrics().splitlines() if ln.startswith("modelgate_reconcile_duration_seconds_count")
    )
    return float(line.split()[-1])


def test_a_restarted_operator_converges_without_duplicate_actions(
    cluster: Cluster, kubectl: Kubectl, x_namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    ns = x_namespace
    with run_operator(cluster.kubeconfig, tmp_path / "first.log", *ARGS):
        approve_and_deploy(kubectl, ns)
        wait_until(
            "the model to serve",
            lambda: (kubectl.get("mdep", "fraud", ns) or {}).get("status", {}).get("phase") == "Serving",
        )
    before = kubectl.get("mdep", "fraud", ns)
    dep_before = kubectl.get("deployment", "fraud", ns)
    assert before and dep_before
    with run_operator(cluster.kubeconfig, tmp_path / "second.log", *ARGS) as second:
        wait_until("the restarted operator to reconcile the model", lambda: reconciles(second) >= 1)
        assert "modelgate_decisions_total{" not in second.metrics()  # it decided nothing new
    after = kubectl.get("mdep", "fraud", ns)
    dep_after = kubectl.get("deployment", "fraud", ns)
    assert after and dep_after
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["status"]["history"] == before["status"]["history"]
    assert dep_after["metadata"]["resourceVersion"] == dep_before["metadata"]["resourceVersion"]
    assert "audit" not in (tmp_path / "second.log").read_text()


def admitted_events(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    items = kubectl.json("get", "events", "-n", ns)["items"]
    return [
        e for e in items if e["involvedObject"]["kind"] == "ModelDeployment" and e["reason"] == "Admitted"
    ]


def test_a_decision_a_stopped_operator_never_told_is_told_by_the_next_once(
    cluster: Cluster, kubectl: Kubectl, x_namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    """An operator killed between the status write and the Event leaves the decision in history,
    untold (act/audit.py): the next process tells it, and only it."""
    ns = x_namespace
    with run_operator(cluster.kubeconfig, tmp_path / "first.log", *ARGS):
        approve_and_deploy(kubectl, ns)
        (told,) = wait_until("the Admitted Event", lambda: admitted_events(kubectl, ns))
    name = told["metadata"]["name"]
    kubectl("delete", "event", name, "-n", ns)  # as if the first had been killed before posting it
    history = (kubectl.get("mdep", "fraud", ns) or {})["status"]["history"]
    assert [(h["action"], h["decision"]) for h in history] == [("Admitted", name.split(".")[-1])]

    with run_operator(cluster.kubeconfig, tmp_path / "second.log", *ARGS) as second:
        (again,) = wait_until("the Event told again", lambda: admitted_events(kubectl, ns))
        assert again["metadata"]["name"] == name and again["type"] == "Normal"
        lines = wait_until(
            "the audit line told again",
            lambda: [a for a in second.audit_lines() if a["object"]["namespace"] == ns],
        )
        assert [(a["action"], a["decision"], a.get("retold")) for a in lines] == [
            ("Admitted", name.split(".")[-1], True)
        ]
        assert "modelgate_decisions_total{" not in second.metrics()  # told again, not decided again
    assert (kubectl.get("mdep", "fraud", ns) or {})["status"]["history"] == history
