"""Restart the operator at any moment and it converges without duplicate actions: a second operator
process over the same models writes nothing, records nothing and changes no serving object."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess, run_operator

pytestmark = pytest.mark.integration


@pytest.fixture
def x_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"x-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, f"modelgate.io/test={name}")
    wait_until("the default service account", lambda: kubectl.get("serviceaccount", "default", name))
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def reconciles(op: OperatorProcess) -> float:
    line = next(
        ln for ln in op.metrics().splitlines() if ln.startswith("modelgate_reconcile_duration_seconds_count")
    )
    return float(line.split()[-1])


def test_a_restarted_operator_converges_without_duplicate_actions(
    cluster: Cluster, kubectl: Kubectl, x_namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    ns = x_namespace
    policy = f"p-{uuid.uuid4().hex[:8]}"
    kubectl.apply(m.policy(policy, ns, min_accuracy=None))
    try:
        args = ("--namespace", "x-*", "--webhook-port", "0")  # the session's operator serves the webhooks
        with run_operator(cluster.kubeconfig, tmp_path / "first.log", *args):
            m.approve(kubectl, m.approval("eb", ns, "fraud"))
            m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("eb",)))
            wait_until(
                "the model to serve",
                lambda: (kubectl.get("mdep", "fraud", ns) or {}).get("status", {}).get("phase") == "Serving",
            )
        before = kubectl.get("mdep", "fraud", ns)
        dep_before = kubectl.get("deployment", "fraud", ns)
        assert before and dep_before
        with run_operator(cluster.kubeconfig, tmp_path / "second.log", *args) as second:
            wait_until("the restarted operator to reconcile the model", lambda: reconciles(second) >= 1)
            assert "modelgate_decisions_total{" not in second.metrics()  # it decided nothing new
        after = kubectl.get("mdep", "fraud", ns)
        dep_after = kubectl.get("deployment", "fraud", ns)
        assert after and dep_after
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert after["status"]["history"] == before["status"]["history"]
        assert dep_after["metadata"]["resourceVersion"] == dep_before["metadata"]["resourceVersion"]
        assert "audit" not in (tmp_path / "second.log").read_text()
    finally:
        kubectl("delete", "governancepolicy", policy, "--ignore-not-found")
