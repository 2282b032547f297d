"""Attacks on the retirement of a model, as the deployer through the real API server (with
Kubernetes' `edit` role in their namespace, as most teams have): taking modelgate's finalizer off a
ModelDeployment so that its retirement never runs, and deleting the pods and ReplicaSets kept for
forensics after a quarantine (charts/modelgate/templates/admission-forensics.yaml refuses both)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration
AS_DEPLOYER = ("--as", "alice", "--as-group", "deployers")
FINALIZER = "modelgate.io/finalizer"


@pytest.fixture
def team(kubectl: Kubectl, namespace: str) -> str:
    """The deployer's team may edit its namespace, as Kubernetes' `edit` role allows."""
    kubectl("create", "rolebinding", "team-edit", "-n", namespace, "--clusterrole=edit", "--group=deployers")
    return namespace


def test_the_deployer_cannot_take_the_finalizer_off_to_skip_the_retirement(
    kubectl: Kubectl, team: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, team))
    m.deploy(kubectl, m.model_deployment("fraud", team))
    obj = wait_until("the ModelDeployment", lambda: kubectl.get("mdep", "fraud", team))
    assert FINALIZER in obj["metadata"]["finalizers"]

    # A patch, or a replace of the manifest as written in git (which has no finalizers): the
    # mutating webhook puts the finalizer back on a model that is not being deleted.
    attempts: list[list[str]] = [
        [
            "patch",
            "mdep",
            "fraud",
            "-n",
            team,
            "--type=json",
            "-p",
            json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]),
        ],
        [
            "patch",
            "mdep",
            "fraud",
            "-n",
            team,
            "--type=merge",
            "-p",
            json.dumps({"metadata": {"finalizers": ["example.com/other"]}}),
        ],
    ]
    for args in attempts:
        kubectl(*args, *AS_DEPLOYER)
        assert FINALIZER in kubectl.get("mdep", "fraud", team)["metadata"]["finalizers"], args
    stored = kubectl.get("mdep", "fraud", team)
    replaced = {**m.model_deployment("fraud", team), "metadata": {**stored["metadata"], "finalizers": []}}
    kubectl("replace", "-f", "-", *AS_DEPLOYER, input=json.dumps(replaced))
    assert FINALIZER in kubectl.get("mdep", "fraud", team)["metadata"]["finalizers"]


def kept(name: str, ns: str, kind: str, label: str | None) -> dict[str, Any]:
    labels = {"modelgate.io/deployment": "fraud", **({label: "true"} if label else {})}
    pod_spec = {"containers": [{"name": "model", "image": m.IMAGE}]}
    if kind == "Pod":
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": pod_spec,
        }
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("Pod", "modelgate.io/quarantined"),
        ("ReplicaSet", "modelgate.io/retained"),
        ("ReplicaSet", None),  # deleting it would take the (quarantined) pods it owns along
        ("Deployment", None),  # likewise, through its ReplicaSets
    ],
    ids=["quarantined-pod", "retained-replicaset", "serving-replicaset", "serving-deployment"],
)
def test_the_deployer_cannot_delete_forensic_pods_nor_the_workloads_that_own_them(
    kubectl: Kubectl, team: str, kind: str, label: str | None
) -> None:
    # What the operator keeps after a quarantine, made here by the cluster admin (who may).
    kubectl.apply(kept("forensic", team, kind, label))
    kubectl.apply(
        {**kept("ordinary", team, kind, label), "metadata": {"name": "ordinary", "namespace": team}}
    )

    res = kubectl("delete", kind.lower(), "forensic", "-n", team, "--wait=false", *AS_DEPLOYER, check=False)

    assert res.returncode != 0
    assert "modelgate-forensics" in res.stderr and "belongs to a governed model" in res.stderr, res.stderr
    assert kubectl.get(kind.lower(), "forensic", team) is not None
    # The same verb on an unlabelled object of the same kind is the deployer's to use.
    kubectl("delete", kind.lower(), "ordinary", "-n", team, "--wait=false", *AS_DEPLOYER)
