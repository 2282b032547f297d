"""Seals on the real API server: the operator binds every approval's admission seal to the object
(its name and uid) in status.seal, checkable with the published public keys alone; a status seal
copied from another approval is noticed and replaced; history records carry seals too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelgate.decide import seal, trail
from modelgate.decide.seal import SealError, Trust
from tests.support import manifests as m
from tests.support.kube import Kubectl, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration


def trust(kubectl: Kubectl) -> Trust:
    """The public keys, as an auditor reads them (ConfigMap modelgate-trust)."""
    cm = kubectl.json("get", "configmap", "modelgate-trust", "-n", "modelgate-system")
    return Trust.from_json(cm["data"])


def status_seal(kubectl: Kubectl, name: str, ns: str) -> dict[str, Any]:
    return wait_until(
        f"the operator's seal on ModelApproval {name}",
        lambda: ((kubectl.get("mapr", name, ns) or {}).get("status") or {}).get("seal"),
    )


def test_the_operator_binds_each_approval_to_its_name_and_uid_and_anyone_can_check_it(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, namespace, roles=("ethics-board",), min_accuracy=None))
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb",)), user="alice")
    m.approve(kubectl, m.approval("eb", namespace, "fraud"), user="bob")
    sealed = status_seal(kubectl, "eb", namespace)
    stored = kubectl.get("mapr", "eb", namespace)
    assert stored is not None
    assert sealed["covers"] == {
        "kind": "ModelApproval",
        "namespace": namespace,
        "name": "eb",
        "uid": stored["metadata"]["uid"],
    }
    published = trust(kubectl)
    assert sealed["keyId"] in published.keys
    seal.check(published, sealed, seal.evidence_covers(stored), seal.unsealed_spec(stored["spec"]))
    assert seal.check_admission(published, stored) == stored["spec"]["seal"].split(":")[1]

    admitted = wait_until(
        "the model admitted, its decision sealed",
        lambda: next(
            (
                h
                for h in ((kubectl.get("mdep", "fraud", namespace) or {}).get("status") or {}).get("history")
                or []
                if h["action"] == "Admitted" and h.get("seal")
            ),
            None,
        ),
    )
    md = kubectl.get("mdep", "fraud", namespace)
    assert md is not None
    seal.check_record(published, admitted, trail.covers(md))


def test_a_status_seal_copied_from_another_approval_fails_and_the_operator_puts_back_its_own(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("a", "b")), user="alice")
    m.approve(kubectl, m.approval("a", namespace, "fraud"), user="bob")
    m.approve(kubectl, m.approval("b", namespace, "fraud", role="model-risk"), user="carol")
    genuine = status_seal(kubectl, "a", namespace)
    status_seal(kubectl, "b", namespace)
    b = kubectl.get("mapr", "b", namespace)
    assert b is not None
    with pytest.raises(SealError, match="copied from another object"):
        seal.check(trust(kubectl), genuine, seal.evidence_covers(b), seal.unsealed_spec(b["spec"]))

    # An admin (who may write status) copies a's seal onto b: b's own admission seal still holds,
    # so the operator notices and binds b again, to b.
    patch = json.dumps({"status": {"seal": genuine}})
    kubectl("patch", "mapr", "b", "-n", namespace, "--subresource=status", "--type=merge", "-p", patch)
    rebound = wait_until(
        "b's seal bound to b again",
        lambda: (
            s
            if (s := ((kubectl.get("mapr", "b", namespace) or {}).get("status") or {}).get("seal"))
            and s["covers"]["name"] == "b"
            else None
        ),
    )
    assert rebound["covers"]["uid"] == b["metadata"]["uid"]
