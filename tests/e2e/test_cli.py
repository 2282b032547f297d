"""The CLI a cluster admin and an auditor use: `modelgate status` and `modelgate report`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def serving_model(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    policy = f"p-{uuid.uuid4().hex[:8]}"
    kubectl.apply(m.policy(policy, namespace, roles=("ethics-board", "model-risk"), min_accuracy=0.9))
    m.approve(kubectl, m.approval("eb", namespace, "fraud", role="ethics-board"), user="bob")
    m.approve(kubectl, m.approval("mr", namespace, "fraud", role="model-risk"), user="carol")
    m.submit(kubectl, m.evaluation("ev", namespace, "fraud", accuracy=0.93))
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb", "mr"), evaluations=("ev",)))
    wait_until(
        "the model to serve",
        lambda: (kubectl.get("mdep", "fraud", namespace) or {}).get("status", {}).get("phase") == "Serving",
    )
    yield policy
    kubectl("delete", "governancepolicy", policy, "--ignore-not-found", "--wait=false")


def cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelgate", *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_report_names_the_evidence_its_approvers_the_gates_and_the_history(
    cluster: Cluster, namespace: str, serving_model: str
) -> None:
    res = cli(cluster, "report", "-n", namespace, "-o", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    (model,) = json.loads(res.stdout)
    assert model["model"]["digest"] == m.digest("fraud-v1")
    assert model["digestSetBy"]["username"] == "alice"
    assert model["policies"] == [serving_model]
    approvers = {a["name"]: (a["approvedBy"]["username"], a["role"], a["sealed"]) for a in model["approvals"]}
    assert approvers == {"eb": ("bob", "ethics-board", True), "mr": ("carol", "model-risk", True)}
    assert model["evaluations"][0]["metrics"] == {"accuracy": 0.93}
    assert model["evaluations"][0]["submittedBy"]["username"] == "erin"
    assert all(g["satisfied"] for g in model["gates"]) and model["gates"]
    assert "Admitted" in [h["action"] for h in model["history"]]
    assert "Admitted" in [e["reason"] for e in model["events"]]

    text = cli(cluster, "report", "-n", namespace, "fraud")
    assert text.returncode == 0
    assert "ModelApproval eb" in text.stdout and "by bob" in text.stdout and "sealed" in text.stdout
    assert "accuracy=0.93" in text.stdout


def test_status_prints_a_table_and_one_model_in_detail(
    cluster: Cluster, namespace: str, serving_model: str
) -> None:
    table = cli(cluster, "status", "-n", namespace)
    assert table.returncode == 0
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:5] == ["NAMESPACE", "NAME", "MODEL", "VERSION", "PHASE"]
    assert row.split()[1:5] == ["fraud", "fraud", "v1", "Serving"]
    one = cli(cluster, "status", "-n", namespace, "fraud")
    assert "gates: 5/5 satisfied" in one.stdout, one.stdout


def test_report_for_a_missing_model_says_so_and_fails(cluster: Cluster, namespace: str) -> None:
    res = cli(cluster, "report", "-n", namespace, "nope")
    assert res.returncode == 1
    assert f"ModelDeployment {namespace}/nope not found" in res.stderr and not res.stdout
