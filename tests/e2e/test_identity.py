"""Approvals that cannot be forged: identity from the authenticated request, separation of duties,
a seal that a bypassed webhook cannot produce, and roles that grant exactly what they say.

People appear through kubectl impersonation (--as/--as-group), the way real users reach the API.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration
WEBHOOKS = "modelgate.io"


def two_role_policy(kubectl: Kubectl, name: str, ns: str) -> None:
    kubectl.apply(
        m.policy(name, ns, roles=("ethics-board", "model-risk"), min_accuracy=None, separation=True)
    )


def gates(obj: dict[str, Any]) -> str:
    return " | ".join(
        f"{g['requirement']}: {g['message']}" for g in obj["status"]["gates"] if not g["satisfied"]
    )


def wait_status(kubectl: Kubectl, ns: str, what: str, pred: Any, timeout: float = 90) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kubectl.get("mdep", "fraud", ns)
        st = (obj or {}).get("status") or {}
        return (
            obj
            if obj and st.get("observedGeneration") == obj["metadata"]["generation"] and pred(obj)
            else None
        )

    return wait_until(what, probe, timeout=timeout)


def phase(p: str) -> Any:
    return lambda o: o["status"].get("phase") == p


@pytest.fixture
def saved_webhooks(kubectl: Kubectl) -> Iterator[dict[str, dict[str, Any]]]:
    """The registered webhook configurations, put back exactly after the test changes them."""
    saved = {
        kind: kubectl.json("get", kind, WEBHOOKS)
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
    }
    yield saved
    for obj in saved.values():
        restored = copy.deepcopy(obj)
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            restored["metadata"].pop(key, None)
        kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(restored))


def test_approvals_record_their_true_approvers_and_the_model_serves(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    two_role_policy(kubectl, policy_name, namespace)
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb", "mr")), user="alice")
    m.approve(kubectl, m.approval("eb", namespace, "fraud", role="ethics-board"), user="bob")
    m.approve(kubectl, m.approval("mr", namespace, "fraud", role="model-risk"), user="carol")
    wait_status(kubectl, namespace, "the model to serve", phase("Serving"))
    eb, mr = kubectl.get("mapr", "eb", namespace), kubectl.get("mapr", "mr", namespace)
    assert eb and eb["spec"]["approvedBy"]["username"] == "bob"
    assert "ethics-board" in eb["spec"]["approvedBy"]["groups"]
    assert mr and mr["spec"]["approvedBy"]["username"] == "carol"
    assert eb["spec"]["seal"].startswith("ed25519:")
    md = kubectl.get("mdep", "fraud", namespace)
    assert md and md["spec"]["digestSetBy"]["username"] == "alice"
    printed = kubectl("get", "mapr", "-n", namespace).stdout
    assert "bob" in printed and "carol" in printed


def test_a_forged_approver_claim_is_replaced_by_the_requester_and_does_not_count(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, namespace, min_accuracy=None))
    forged = m.approval("eb", namespace, "fraud", user="bob", stamp=True)  # claims approvedBy: bob
    m.approve(kubectl, forged, user="mallory", groups=("contractors",))
    stored = kubectl.get("mapr", "eb", namespace)
    assert stored and stored["spec"]["approvedBy"]["username"] == "mallory"
    assert stored["spec"]["approvedBy"]["groups"] == ["contractors", "system:authenticated"]
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb",)))
    obj = wait_status(kubectl, namespace, "the model to be blocked", phase("Blocked"))
    assert "mallory" in gates(obj), gates(obj)
    assert condition(obj, "Approved")["status"] == "False"  # type: ignore[index]


def test_separation_of_duties_refuses_self_approval_with_the_rule_named(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    two_role_policy(kubectl, policy_name, namespace)
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb",)), user="alice")
    wait_until(
        "the webhook's index to know who set the digest",
        lambda: (
            "separation of duties"
            in kubectl.apply(
                m.approval("probe", namespace, "fraud"),
                "--dry-run=server",
                as_user="alice",
                as_groups=("ethics-board",),
                check=False,
            ).stderr
        ),
    )
    res = kubectl.apply(
        m.approval("eb", namespace, "fraud"), as_user="alice", as_groups=("ethics-board",), check=False
    )
    assert res.returncode != 0
    assert "separation of duties: alice set the digest" in res.stderr
    assert f"GovernancePolicy {policy_name}" in res.stderr
    assert kubectl.get("mapr", "eb", namespace) is None


def test_an_approval_cannot_be_changed_and_deleting_it_revokes(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, namespace, min_accuracy=None))
    m.approve(kubectl, m.approval("eb", namespace, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb",)))
    wait_status(kubectl, namespace, "the model to serve", phase("Serving"))
    # Even a cluster admin cannot change a decision: approvals are immutable records.
    res = kubectl.apply(m.approval("eb", namespace, "fraud", decision="rejected"), check=False)
    assert res.returncode != 0 and "immutable" in res.stderr and "create a new ModelApproval" in res.stderr
    assert kubectl.get("mapr", "eb", namespace)["spec"]["decision"] == "approved"  # type: ignore[index]
    kubectl("delete", "mapr", "eb", "-n", namespace, "--as=bob", "--as-group=ethics-board")
    obj = wait_status(kubectl, namespace, "the revocation to suspend the model", phase("Blocked"))
    assert condition(obj, "Ready")["reason"] == "ApprovalRevoked"  # type: ignore[index]


def test_a_record_written_past_the_webhook_does_not_count_and_the_gate_says_its_seal_is_invalid(
    kubectl: Kubectl,
    namespace: str,
    policy_name: str,
    operator: OperatorProcess,
    saved_webhooks: dict[str, Any],
) -> None:
    kubectl.apply(m.policy(policy_name, namespace, min_accuracy=None))
    # A genuine record of another version: it does not count for v1 (all evidence of the model
    # counts, so one for v1 itself would admit it), but its seal is real.
    m.approve(kubectl, m.approval("genuine", namespace, "fraud", "v0"))
    genuine = kubectl.get("mapr", "genuine", namespace)
    assert genuine
    kubectl("delete", "mutatingwebhookconfiguration", WEBHOOKS)
    forged = m.approval("eb", namespace, "fraud", user="bob", stamp=True)
    forged["spec"]["seal"] = genuine["spec"]["seal"]  # a real seal, copied from another record
    kubectl.apply(forged)  # an admin with direct write access, the webhook out of the way
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb",)))
    obj = wait_status(kubectl, namespace, "the model to be blocked", phase("Blocked"))
    assert "seal" in gates(obj) and "SealInvalid" in json.dumps(obj["status"]["gates"]), gates(obj)
    assert kubectl.get("deployment", "fraud", namespace) is None


def test_with_the_webhook_server_down_approvals_fail_clearly_and_serving_is_undisturbed(
    kubectl: Kubectl,
    namespace: str,
    policy_name: str,
    operator: OperatorProcess,
    saved_webhooks: dict[str, Any],
) -> None:
    kubectl.apply(m.policy(policy_name, namespace, min_accuracy=None))
    m.approve(kubectl, m.approval("eb", namespace, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb",)))
    wait_status(kubectl, namespace, "the model to serve", phase("Serving"))
    dep_before = kubectl.get("deployment", "fraud", namespace)
    down = copy.deepcopy(saved_webhooks["mutatingwebhookconfiguration"])
    for hook in down["webhooks"]:  # point every webhook at a port where nothing listens
        hook["clientConfig"]["url"] = hook["clientConfig"]["url"].replace(
            hook["clientConfig"]["url"].split("/")[2], "127.0.0.1:1"
        )
    kubectl("replace", "-f", "-", input=json.dumps(down))
    res = kubectl.apply(
        m.approval("eb2", namespace, "fraud"), as_user="bob", as_groups=("ethics-board",), check=False
    )
    assert res.returncode != 0
    assert "failed calling webhook" in res.stderr and "stamp-approval.modelgate.io" in res.stderr
    assert kubectl.get("mapr", "eb2", namespace) is None
    obj = kubectl.get("mdep", "fraud", namespace)
    assert obj and obj["status"]["phase"] == "Serving"
    dep_after = kubectl.get("deployment", "fraud", namespace)
    assert dep_after and dep_after["metadata"]["generation"] == dep_before["metadata"]["generation"]  # type: ignore[index]


CAN = {
    # (group, verb, resource): allowed
    ("deployers", "create", "modeldeployments"): True,
    ("deployers", "delete", "modeldeployments"): True,
    ("deployers", "create", "modelapprovals"): False,
    ("deployers", "create", "modelevaluations"): False,
    ("deployers", "create", "governancepolicies"): False,
    ("ethics-board", "create", "modelapprovals"): True,
    ("ethics-board", "delete", "modelapprovals"): True,
    ("ethics-board", "update", "modelapprovals"): False,
    ("ethics-board", "create", "modeldeployments"): False,
    ("ethics-board", "create", "modelevaluations"): False,
    ("evaluators", "create", "modelevaluations"): True,
    ("evaluators", "delete", "modelevaluations"): False,
    ("evaluators", "create", "modelapprovals"): False,
    ("evaluators", "patch", "modeldeployments"): False,
    ("auditors", "list", "modeldeployments"): True,
    ("auditors", "list", "modelapprovals"): True,
    ("auditors", "list", "events"): True,
    ("auditors", "create", "modelapprovals"): False,
    ("auditors", "delete", "modeldeployments"): False,
    ("auditors", "patch", "modeldeployments/status"): False,
    ("auditors", "get", "secrets"): False,
}


@pytest.mark.parametrize(("group", "verb", "resource"), list(CAN), ids=["-".join(k) for k in CAN])
def test_each_shipped_role_grants_exactly_what_it_says(
    kubectl: Kubectl, namespace: str, group: str, verb: str, resource: str
) -> None:
    res = kubectl(
        "auth",
        "can-i",
        verb,
        resource,
        "-n",
        namespace,
        f"--as=someone-{group}",
        f"--as-group={group}",
        check=False,
    )
    assert res.stdout.strip() == ("yes" if CAN[(group, verb, resource)] else "no"), res.stdout + res.stderr


def test_forbidden_verbs_are_refused_with_403(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    attempts = [
        (m.approval("x", namespace, "fraud"), "alice", ("deployers",)),
        (m.evaluation("x", namespace, "fraud"), "bob", ("ethics-board",)),
        (m.model_deployment("fraud", namespace), "erin", ("evaluators",)),
        (m.model_deployment("fraud", namespace), "ann", ("auditors",)),
    ]
    for obj, user, groups in attempts:
        res = kubectl.apply(obj, as_user=user, as_groups=groups, check=False)
        assert res.returncode != 0 and "Forbidden" in res.stderr, (user, res.stderr)
        assert kubectl.get(obj["kind"].lower(), obj["metadata"]["name"], namespace) is None


def test_models_and_their_evidence_applied_in_one_go_get_their_revisions_filled_in(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    # What a GitOps sync or `kubectl apply -f dir/` does: each approval is created a request after
    # its ModelDeployment, sooner than the operator's watch delivers that ModelDeployment. The
    # webhook reads the namespace live before it says that no ModelDeployment requests the model.
    kubectl.apply(m.policy(policy_name, namespace, min_accuracy=None))
    names = [f"batch-{i}" for i in range(8)]
    items: list[dict[str, Any]] = []
    for name in names:
        items.append(m.model_deployment(name, namespace, approvals=(f"{name}-eb",)))
        items.append(m.approval(f"{name}-eb", namespace, name, revision=None))
    out = kubectl.apply(
        {"apiVersion": "v1", "kind": "List", "items": items},
        as_user="gitops",
        as_groups=(*m.DEPLOYERS, "ethics-board"),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    for name in names:
        stored = kubectl.get("mapr", f"{name}-eb", namespace)
        assert stored and stored["spec"]["model"]["revision"] == m.default_revision(name)
        assert stored["spec"]["approvedBy"]["username"] == "gitops"
    wait_until(
        "every model of the batch to serve",
        lambda: all(
            ((kubectl.get("mdep", n, namespace) or {}).get("status") or {}).get("phase") == "Serving"
            for n in names
        ),
        timeout=120,
    )
