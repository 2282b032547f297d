"""Migration from the HMAC seals of before the signatures: at start-up the operator re-seals (with
a status seal by its current key) only the evidence whose HMAC verifies with the old key (Secret
modelgate-seal-key), logging each; evidence with a wrong HMAC gets nothing and never counts.

The HMAC-sealed approvals are written by an admin past the stamping webhook (its configuration
removed and put back with server-side apply, as tests/e2e/test_attacks_identity.py does). A second
operator process, its webhooks off and watching only this test's namespace, is the one that
starts; the model deployments are made after it stops, for the session operator to judge.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelgate.decide import seal
from tests.e2e.test_attacks_identity import stamping_away  # noqa: F401 (a fixture)
from tests.e2e.test_bundle import OPERATOR_NS
from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess, run_operator

pytestmark = pytest.mark.integration
LEGACY = "modelgate-seal-key"


def hmac_sealed(obj: dict[str, Any], key: bytes) -> dict[str, Any]:
    """`obj` as the webhook sealed evidence before the signatures: stamped, HMAC over kind,
    namespace and spec."""
    spec = {**obj["spec"], "approvedBy": {"username": "bob", "groups": ["ethics-board"]}}
    payload = seal.canonical({"kind": obj["kind"], "namespace": obj["metadata"]["namespace"], "spec": spec})
    spec["seal"] = seal.LEGACY_PREFIX + hmac.new(key, payload, hashlib.sha256).hexdigest()
    return {**obj, "spec": spec}


@pytest.fixture
def legacy_key(kubectl: Kubectl) -> Iterator[bytes]:
    """The old HMAC key; the test stores it in the Secret the operator reads it from once the
    objects exist (so the session operator, which has seen them already, does not re-seal them
    first). The Secret is removed afterwards."""
    yield os.urandom(32)
    kubectl("delete", "secret", LEGACY, "-n", OPERATOR_NS, "--ignore-not-found")


def store_legacy_key(kubectl: Kubectl, key: bytes) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": LEGACY, "namespace": OPERATOR_NS},
        "data": {"key": base64.b64encode(key).decode()},
    }
    kubectl("apply", "-f", "-", input=json.dumps(secret))


def phase(kubectl: Kubectl, name: str, ns: str) -> Any:
    return ((kubectl.get("mdep", name, ns) or {}).get("status") or {}).get("phase")


def test_only_evidence_whose_hmac_verifies_is_re_sealed_at_start_up_and_the_rest_never_counts(
    cluster: Cluster,
    kubectl: Kubectl,
    namespace: str,
    operator: OperatorProcess,
    stamping_away: Any,  # noqa: F811
    legacy_key: bytes,
    tmp_path: Path,
) -> None:
    good = hmac_sealed(m.approval("good", namespace, "fraud"), legacy_key)
    bad = hmac_sealed(m.approval("bad", namespace, "churn"), os.urandom(32))  # another key's HMAC
    for obj in (good, bad):
        kubectl("create", "-f", "-", input=json.dumps(obj))
    stamping_away()  # the stamping webhook back
    stored = {n: kubectl.get("mapr", n, namespace) for n in ("good", "bad")}
    assert seal.legacy_verifies(legacy_key, stored["good"]), "the stored spec differs from what was sealed"
    assert not seal.legacy_verifies(legacy_key, stored["bad"])
    assert all("status" not in o for o in stored.values())

    store_legacy_key(kubectl, legacy_key)
    log = tmp_path / "operator.log"
    with run_operator(cluster.kubeconfig, log, "--namespace", namespace, "--webhook-port", "0"):
        sealed = wait_until(
            "the good approval re-sealed",
            lambda: (kubectl.get("mapr", "good", namespace) or {}).get("status"),
        )
        wait_until(
            "the re-seal logged", lambda: f"re-sealed ModelApproval {namespace}/good" in log.read_text()
        )
    text = log.read_text()
    (line,) = [ln for ln in text.splitlines() if f"re-sealed ModelApproval {namespace}/good" in ln]
    assert f"with key {sealed['seal']['keyId']}: its HMAC seal from before the signatures verifies" in line
    assert f"{namespace}/bad" not in text
    assert sealed["seal"]["covers"]["uid"] == stored["good"]["metadata"]["uid"]
    assert "status" not in (kubectl.get("mapr", "bad", namespace) or {})

    # The session operator judges: the re-sealed approval counts, the wrong HMAC never does.
    policy = f"p-{uuid.uuid4().hex[:8]}"
    kubectl.apply(m.policy(policy, namespace, roles=("ethics-board",), min_accuracy=None))
    try:
        m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("good",)))
        m.deploy(kubectl, m.model_deployment("churn", namespace, approvals=("bad",)))
        wait_until(
            "fraud to serve on its re-sealed approval",
            lambda: phase(kubectl, "fraud", namespace) == "Serving",
        )

        def churn_gate() -> Any:
            obj = kubectl.get("mdep", "churn", namespace) or {}
            st = obj.get("status") or {}
            if st.get("observedGeneration") != obj.get("metadata", {}).get("generation"):
                return None
            return next(
                (g for g in st.get("gates") or [] if g["requirement"].startswith("approval role")), None
            )

        gate = wait_until("churn's approval gate", churn_gate)
        assert phase(kubectl, "churn", namespace) == "Blocked"
        assert not gate["satisfied"] and "ModelApproval bad" in gate["message"], gate
        assert "status" not in (kubectl.get("mapr", "bad", namespace) or {})
    finally:
        kubectl("delete", "governancepolicy", policy, "--ignore-not-found", "--wait=false")
