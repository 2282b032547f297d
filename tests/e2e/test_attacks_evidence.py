"""Attacks on the evidence, each performed as the deployer (alice of group deployers, impersonated
through the real API server), and each shown to fail with a clear status or refusal (issue 10).

The deployer's rights: the modelgate-deployer role (ModelDeployments; read-only evidence and
policies). Approvers (bob, carol of ethics-board) and the evaluator pipeline (erin of evaluators)
act as themselves; policies are written by the cluster admin. Every test isolates its policy to
its own namespace.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration


def settled(
    kubectl: Kubectl, ns: str, phase: str, reason: str | None = None, timeout: float = 90
) -> dict[str, Any]:
    """ModelDeployment fraud once its status describes its current generation and is in `phase`
    (and, when given, its Admitted condition has `reason`: evidence created later has been seen)."""

    def probe() -> dict[str, Any] | None:
        obj = kubectl.get("mdep", "fraud", ns)
        st = (obj or {}).get("status") or {}
        current = obj is not None and st.get("observedGeneration") == obj["metadata"]["generation"]
        if not current or st.get("phase") != phase:
            return None
        return obj if reason is None or (condition(obj, "Admitted") or {}).get("reason") == reason else None

    what = f"phase {phase}" + (f" with Admitted reason {reason}" if reason else "")
    return wait_until(f"ModelDeployment {ns}/fraud to reach {what}", probe, timeout=timeout)


def admitted(obj: dict[str, Any]) -> dict[str, Any]:
    cond = condition(obj, "Admitted")
    assert cond is not None, obj.get("status")
    return cond


def failed_gates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [g for g in obj["status"]["gates"] if not g["satisfied"]]


def serve_v1(kubectl: Kubectl, ns: str, policy: dict[str, Any]) -> dict[str, Any]:
    """The admin's policy, bob's approval and erin's evaluation of fraud v1; alice deploys it."""
    kubectl.apply(policy)
    m.approve(kubectl, m.approval("v1-ethics", ns, "fraud"))
    m.submit(kubectl, m.evaluation("v1-eval", ns, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("v1-ethics",), evaluations=("v1-eval",)))
    return settled(kubectl, ns, "Serving")


def test_unreferenced_ethics_board_rejection_blocks(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, namespace))
    m.approve(kubectl, m.approval("v1-ethics", namespace, "fraud"))
    m.approve(kubectl, m.approval("v1-veto", namespace, "fraud", decision="rejected"), user="carol")
    m.submit(kubectl, m.evaluation("v1-eval", namespace, "fraud"))

    # alice references only the approval she likes.
    m.deploy(
        kubectl, m.model_deployment("fraud", namespace, approvals=("v1-ethics",), evaluations=("v1-eval",))
    )

    obj = settled(kubectl, namespace, "Blocked", "ApprovalRejected")
    cond = admitted(obj)
    assert (cond["status"], cond["reason"]) == ("False", "ApprovalRejected")
    assert "carol rejected fraud v1" in cond["message"] and "ModelApproval v1-veto" in cond["message"]
    assert kubectl.get("deployment", "fraud", namespace) is None

    # Only its author withdraws it.
    kubectl(
        "delete", "modelapproval", "v1-veto", "-n", namespace, "--as", "carol", "--as-group", "ethics-board"
    )
    settled(kubectl, namespace, "Serving")


def test_newer_unreferenced_failing_evaluation_beats_a_referenced_older_passing_one(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, namespace))
    m.approve(kubectl, m.approval("v1-ethics", namespace, "fraud"))
    m.submit(
        kubectl,
        m.evaluation("v1-old-pass", namespace, "fraud", evaluated_at=m.now_rfc3339(-dt.timedelta(days=2))),
    )
    m.submit(kubectl, m.evaluation("v1-new-fail", namespace, "fraud", accuracy=0.5))

    m.deploy(
        kubectl,
        m.model_deployment("fraud", namespace, approvals=("v1-ethics",), evaluations=("v1-old-pass",)),
    )

    obj = settled(kubectl, namespace, "Blocked", "MetricBelowMinimum")
    cond = admitted(obj)
    assert (cond["status"], cond["reason"]) == ("False", "MetricBelowMinimum")
    assert "ModelEvaluation v1-new-fail" in cond["message"] and "accuracy 0.5" in cond["message"]
    assert condition(obj, "Evaluated")["reason"] == "MetricBelowMinimum"  # type: ignore[index]


@pytest.mark.parametrize(
    ("field", "value"),
    [("image", m.pinned("evil-server")), ("uri", "s3://attacker/fraud-v1.pkl")],
)
def test_swapping_image_or_uri_under_the_approved_digest_is_a_new_revision_and_blocked(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess, field: str, value: str
) -> None:
    before = serve_v1(kubectl, namespace, m.policy(policy_name, namespace))
    serving = before["status"]["servingRevision"]

    swapped = m.model_deployment("fraud", namespace, approvals=("v1-ethics",), evaluations=("v1-eval",))
    if field == "image":
        swapped["spec"]["serving"]["image"] = value
    else:
        swapped["spec"]["model"]["uri"] = value
    m.deploy(kubectl, swapped)

    obj = settled(kubectl, namespace, "Blocked", "RevisionMismatch")
    cond = admitted(obj)
    assert (cond["status"], cond["reason"]) == ("False", "RevisionMismatch")
    assert "ModelApproval v1-ethics is for revision" in cond["message"]
    assert obj["status"]["servingRevision"] == serving  # the reviewed revision keeps serving
    dep = kubectl.get("deployment", "fraud", namespace)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (container["image"], env["MODEL_URI"]) == (m.IMAGE, "s3://models/fraud/v1")


def test_unpinned_image_is_blocked_naming_the_policy(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, namespace, min_accuracy=None))
    md = m.model_deployment("fraud", namespace, image="registry.example/serve:1")
    m.deploy(kubectl, md)
    settled(kubectl, namespace, "Blocked")
    # Even with evidence for exactly that revision (the webhook fills it in from the ModelDeployment).
    m.approve(kubectl, m.approval("v1-ethics", namespace, "fraud", revision=None))
    stored = kubectl.get("modelapproval", "v1-ethics", namespace)
    assert stored["spec"]["model"]["revision"] == m.revision_id(md["spec"])

    def only_the_image_gate_fails() -> dict[str, Any] | None:
        obj = settled(kubectl, namespace, "Blocked", "ImageNotPinned")
        return obj if [g["reason"] for g in failed_gates(obj)] == ["ImageNotPinned"] else None

    obj = wait_until("the approval to count and only the image gate to fail", only_the_image_gate_fails)
    gate = failed_gates(obj)[0]
    assert "registry.example/serve:1 is not pinned by digest" in gate["message"]
    assert f"policy {policy_name}" in gate["message"]
    assert kubectl.get("deployment", "fraud", namespace) is None


def test_empty_policy_is_refused_and_only_allow_all_admits_without_evidence(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    empty = {
        "apiVersion": m.API,
        "kind": "GovernancePolicy",
        "metadata": {"name": policy_name},
        "spec": {"namespaceSelector": {"matchLabels": {"modelgate.io/test": namespace}}},
    }
    res = kubectl.apply(empty, check=False)
    assert res.returncode != 0 and "empty policy" in res.stderr and "allowAll" in res.stderr

    m.deploy(kubectl, m.model_deployment("fraud", namespace))
    assert admitted(settled(kubectl, namespace, "Blocked"))["reason"] == "NoPolicy"

    empty["spec"]["allowAll"] = True
    kubectl.apply(empty)
    settled(kubectl, namespace, "Serving")
    valid = wait_until(
        "the policy's Valid condition",
        lambda: condition(kubectl.get("governancepolicy", policy_name) or {}, "Valid"),
    )
    assert (valid["status"], valid["reason"]) == ("True", "PolicyValid")


def test_deployer_lying_about_the_risk_level_is_caught_by_risk_level_confirmation(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    policy = m.policy(policy_name, namespace, min_accuracy=None)
    policy["spec"]["riskLevelConfirmation"] = {"role": "ethics-board"}
    kubectl.apply(policy)
    md = m.model_deployment("fraud", namespace, approvals=("v1-ethics",))
    md["spec"]["card"]["riskLevel"] = "minimal"  # the board assessed it as high
    m.deploy(kubectl, md)
    m.approve(
        kubectl,
        m.approval("v1-ethics", namespace, "fraud", revision=m.revision_id(md["spec"]), risk_level="high"),
    )

    obj = settled(kubectl, namespace, "Blocked", "RiskLevelNotConfirmed")
    cond = admitted(obj)
    assert (cond["status"], cond["reason"]) == ("False", "RiskLevelNotConfirmed")
    assert "confirms risk level high (spec.riskLevel), not the model card's minimal" in cond["message"]
    gate = next(g for g in failed_gates(obj) if g["requirement"].startswith("risk level confirmation"))
    assert "confirming the model card's risk level minimal" in gate["message"]


def test_evaluation_by_a_non_evaluator_does_not_count(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    policy = m.policy(policy_name, namespace)
    policy["spec"]["evaluators"] = {"groups": ["evaluators"]}
    kubectl.apply(policy)
    # A namespace editor's rights (an aggregated `edit` role) let alice record evaluations here.
    kubectl(
        "create",
        "role",
        "record-evaluations",
        "--verb=create,get",
        "--resource=modelevaluations.modelgate.io",
        "-n",
        namespace,
    )
    kubectl(
        "create", "rolebinding", "alice-records", "--role=record-evaluations", "--user=alice", "-n", namespace
    )
    m.approve(kubectl, m.approval("v1-ethics", namespace, "fraud"))
    kubectl.apply(m.evaluation("v1-eval", namespace, "fraud"), as_user="alice", as_groups=m.DEPLOYERS)

    m.deploy(
        kubectl, m.model_deployment("fraud", namespace, approvals=("v1-ethics",), evaluations=("v1-eval",))
    )

    obj = settled(kubectl, namespace, "Blocked", "EvaluatorNotAuthorized")
    cond = admitted(obj)
    assert (cond["status"], cond["reason"]) == ("False", "EvaluatorNotAuthorized")
    assert "ModelEvaluation v1-eval was submitted by alice, who is not an evaluator" in cond["message"]

    m.submit(kubectl, m.evaluation("v1-eval-ci", namespace, "fraud"))  # erin, of evaluators
    settled(kubectl, namespace, "Serving")
