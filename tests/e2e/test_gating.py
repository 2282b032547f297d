"""Admission gating on a real control plane: the operator serves a model only with its evidence.

Every test isolates itself: its GovernancePolicy selects only its own namespace (label
modelgate.io/test=<namespace>). Assertions read what the API server stores, as `kubectl` shows it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration


def mdep(kubectl: Kubectl, ns: str, name: str = "fraud") -> dict[str, Any]:
    obj = kubectl.get("mdep", name, ns)
    assert obj is not None, f"ModelDeployment {ns}/{name} is gone"
    check_kstatus(obj)
    return obj


def check_kstatus(obj: dict[str, Any]) -> None:
    """kstatus invariants on every observed status: Ready present, observedGeneration <= generation."""
    st = obj.get("status") or {}
    if not st:
        return
    assert condition(obj, "Ready") is not None, f"Ready condition missing: {st}"
    assert st["observedGeneration"] <= obj["metadata"]["generation"]
    for c in st.get("conditions", []):
        assert c["observedGeneration"] <= obj["metadata"]["generation"]


def wait_phase(
    kubectl: Kubectl, ns: str, phase: str, name: str = "fraud", timeout: float = 90
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = mdep(kubectl, ns, name)
        st = obj.get("status") or {}
        current = st.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if current and st.get("phase") == phase else None

    return wait_until(f"ModelDeployment {ns}/{name} to reach phase {phase}", probe, timeout=timeout)


def events(kubectl: Kubectl, ns: str, reason: str) -> list[dict[str, Any]]:
    items = kubectl.json("get", "events", "-n", ns, "--field-selector", f"reason={reason}")["items"]
    return [e for e in items if e["involvedObject"]["kind"] == "ModelDeployment"]


def served_digest(kubectl: Kubectl, ns: str, name: str = "fraud") -> str | None:
    dep = kubectl.get("deployment", name, ns)
    if not dep:
        return None
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    return env.get("MODEL_DIGEST")


def admit_v1(
    kubectl: Kubectl,
    ns: str,
    policy_name: str,
    *,
    on_revocation: str = "suspend",
    expires_at: str | None = None,
) -> dict[str, Any]:
    kubectl.apply(m.policy(policy_name, ns, on_revocation=on_revocation))
    m.approve(kubectl, m.approval("v1-ethics", ns, "fraud", expires_at=expires_at))
    m.submit(kubectl, m.evaluation("v1-eval", ns, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("v1-ethics",), evaluations=("v1-eval",)))
    return wait_phase(kubectl, ns, "Serving")


def test_model_without_a_selecting_policy_is_blocked_with_reason_no_policy(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    m.deploy(kubectl, m.model_deployment("fraud", namespace))
    obj = wait_phase(kubectl, namespace, "Blocked")
    admitted = condition(obj, "Admitted")
    assert admitted and admitted["status"] == "False" and admitted["reason"] == "NoPolicy"
    assert f"namespace {namespace}" in admitted["message"]
    assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
    assert kubectl.get("deployment", "fraud", namespace) is None
    assert kubectl.get("service", "fraud", namespace) is None


def test_blocked_model_is_admitted_when_its_evidence_arrives_and_serves_ready_pods(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, namespace))
    m.deploy(
        kubectl, m.model_deployment("fraud", namespace, approvals=("v1-ethics",), evaluations=("v1-eval",))
    )
    obj = wait_phase(kubectl, namespace, "Blocked")
    missing = {g["requirement"]: g for g in obj["status"]["gates"] if not g["satisfied"]}
    assert any("ModelApproval" in r and "v1-ethics" in r for r in missing), missing
    assert any("ModelEvaluation" in r and "v1-eval" in r for r in missing), missing
    # Each condition speaks of its own evidence; Ready names the first failure in one line.
    approved, evaluated = condition(obj, "Approved"), condition(obj, "Evaluated")
    assert approved is not None and evaluated is not None
    assert approved["reason"] == "ApprovalNotFound" and "ModelEvaluation" not in approved["message"], approved
    assert evaluated["reason"] == "EvaluationNotFound" and "ModelApproval" not in evaluated["message"], (
        evaluated
    )
    ready = condition(obj, "Ready")
    assert ready is not None and "\n" not in ready["message"] and ready["message"].count("not found") == 1
    assert kubectl.get("deployment", "fraud", namespace) is None

    m.approve(kubectl, m.approval("v1-ethics", namespace, "fraud"))
    m.submit(kubectl, m.evaluation("v1-eval", namespace, "fraud"))
    obj = wait_phase(kubectl, namespace, "Serving")
    for ctype in ("Approved", "Evaluated", "Admitted", "Ready"):
        assert condition(obj, ctype)["status"] == "True", condition(obj, ctype)  # type: ignore[index]
    assert all(g["satisfied"] for g in obj["status"]["gates"])
    rev = obj["status"]["servingRevision"]
    assert (rev["version"], rev["digest"]) == ("v1", m.digest("fraud-v1"))
    assert obj["status"]["lastKnownGood"]["digest"] == m.digest("fraud-v1")

    dep = kubectl.get("deployment", "fraud", namespace)
    assert dep is not None
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "ModelDeployment",
        "fraud",
        obj["metadata"]["uid"],
    )
    assert dep["metadata"]["labels"]["modelgate.io/model"] == "fraud"
    assert dep["metadata"]["labels"]["modelgate.io/version"] == "v1"
    assert dep["metadata"]["labels"]["modelgate.io/deployment"] == "fraud"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODEL_URI"] == "s3://models/fraud/v1"
    assert env["MODEL_DIGEST"] == m.digest("fraud-v1")
    assert container["image"] == m.IMAGE
    assert dep["spec"]["replicas"] == 2 and dep["status"]["readyReplicas"] == 2
    svc = kubectl.get("service", "fraud", namespace)
    assert svc is not None and svc["spec"]["selector"]["modelgate.io/deployment"] == "fraud"
    wait_until(
        "the Service to get 2 ready endpoints",
        lambda: (
            sum(
                1
                for s in kubectl.json(
                    "get", "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=fraud"
                )["items"]
                for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready")
            )
            == 2
        ),
    )

    assert events(kubectl, namespace, "Blocked") and events(kubectl, namespace, "Admitted")
    actions = [h["action"] for h in obj["status"]["history"]]
    assert actions[-1] == "Admitted" and "Blocked" in actions
    audit = [a for a in operator.audit_lines() if a["object"]["namespace"] == namespace]
    admitted = [a for a in audit if a["action"] == "Admitted"]
    assert admitted, audit
    ev = admitted[-1]["evidence"]
    assert ev["model"]["digest"] == m.digest("fraud-v1")
    assert [a["approver"] for a in ev["approvals"]] == ["bob"]
    assert ev["approvals"][0]["uid"] and ev["evaluations"][0]["metrics"] == {"accuracy": 0.95}
    assert ev["policies"][0]["name"] == policy_name


def test_steady_state_writes_nothing(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    obj = admit_v1(kubectl, namespace, policy_name)
    rv = obj["metadata"]["resourceVersion"]

    def reconciles() -> float:
        line = next(
            ln
            for ln in operator.metrics().splitlines()
            if ln.startswith("modelgate_reconcile_duration_seconds_count")
        )
        return float(line.split()[-1])

    # Wake the loop several times with changes that do not alter the decision, and wait until the
    # operator has reconciled after each; the ModelDeployment must not have been written.
    for i in range(3):
        before = reconciles()
        kubectl("label", "modelapproval", "v1-ethics", f"touch=n{i}", "--overwrite", "-n", namespace)
        wait_until("the operator to reconcile after the touch", lambda b=before: reconciles() > b)
    assert mdep(kubectl, namespace)["metadata"]["resourceVersion"] == rv


def test_new_version_waits_while_the_old_one_serves_then_is_admitted(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    admit_v1(kubectl, namespace, policy_name)
    m.deploy(
        kubectl,
        m.model_deployment("fraud", namespace, "v2", approvals=("v2-ethics",), evaluations=("v2-eval",)),
    )
    obj = wait_phase(kubectl, namespace, "Blocked")
    assert obj["status"]["servingRevision"]["version"] == "v1"
    assert any(not g["satisfied"] and "v2-ethics" in g["requirement"] for g in obj["status"]["gates"])
    ready = condition(obj, "Ready")
    assert ready and ready["status"] == "False" and "keeps serving" in ready["message"]
    assert served_digest(kubectl, namespace) == m.digest("fraud-v1")
    assert kubectl.get("deployment", "fraud", namespace)["status"]["readyReplicas"] == 2  # type: ignore[index]

    m.approve(kubectl, m.approval("v2-ethics", namespace, "fraud", "v2"))
    m.submit(kubectl, m.evaluation("v2-eval", namespace, "fraud", "v2"))
    obj = wait_phase(kubectl, namespace, "Serving")
    assert obj["status"]["servingRevision"]["version"] == "v2"
    assert obj["status"]["lastKnownGood"]["version"] == "v2"
    assert served_digest(kubectl, namespace) == m.digest("fraud-v2")


def test_approval_for_another_digest_does_not_count(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(policy_name, namespace, min_accuracy=None))
    wrong = m.approval("v1-ethics", namespace, "fraud")
    wrong["spec"]["model"]["digest"] = m.digest("something-else")
    m.approve(kubectl, wrong)
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("v1-ethics",)))
    obj = wait_phase(kubectl, namespace, "Blocked")
    messages = " ".join(g["message"] for g in obj["status"]["gates"] if not g["satisfied"])
    assert m.digest("something-else")[:15] in messages, messages
    assert kubectl.get("deployment", "fraud", namespace) is None


def test_revocation_with_suspend_scales_to_zero_and_says_why(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    admit_v1(kubectl, namespace, policy_name)
    kubectl("delete", "modelapproval", "v1-ethics", "-n", namespace)
    obj = wait_phase(kubectl, namespace, "Blocked")
    ready = condition(obj, "Ready")
    assert ready and ready["status"] == "False" and "suspended" in ready["message"]
    assert condition(obj, "Approved")["status"] == "False"  # type: ignore[index]
    wait_until(
        "the serving Deployment to scale to zero",
        lambda: (kubectl.get("deployment", "fraud", namespace) or {}).get("spec", {}).get("replicas") == 0,
    )
    assert obj["status"]["history"][-1]["action"] == "Suspended"
    assert events(kubectl, namespace, "Suspended")


def test_revocation_with_keep_keeps_serving_with_approved_false(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    admit_v1(kubectl, namespace, policy_name, on_revocation="keep")
    kubectl("delete", "modelapproval", "v1-ethics", "-n", namespace)
    m.approve(kubectl, m.approval("v1-ethics", namespace, "fraud", decision="rejected"))
    obj = wait_until(
        "Approved=False with reason ApprovalRejected",
        lambda: (
            o
            if (o := wait_phase(kubectl, namespace, "Degraded"))
            and condition(o, "Approved")["reason"] == "ApprovalRejected"
            else None
        ),
    )  # type: ignore[index]
    assert condition(obj, "Approved")["status"] == "False"  # type: ignore[index]
    dep = kubectl.get("deployment", "fraud", namespace)
    assert dep and dep["spec"]["replicas"] == 2


def test_approval_expiry_is_acted_on_at_the_moment_it_expires(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    import datetime as dt

    admit_v1(kubectl, namespace, policy_name, expires_at=m.now_rfc3339(dt.timedelta(seconds=20)))
    obj = wait_phase(kubectl, namespace, "Blocked", timeout=60)
    assert condition(obj, "Approved")["reason"] in ("ApprovalExpired", "ApprovalMissing")  # type: ignore[index]
    assert "expired" in condition(obj, "Approved")["message"]  # type: ignore[index]


def test_edits_to_the_owned_deployment_are_reverted_and_recorded(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    admit_v1(kubectl, namespace, policy_name)
    kubectl("set", "image", "deployment/fraud", "model=registry.example/evil:6", "-n", namespace)
    wait_until(
        "the image edit to be reverted",
        lambda: (
            (kubectl.get("deployment", "fraud", namespace) or {})
            .get("spec", {})
            .get("template", {})
            .get("spec", {})
            .get("containers", [{}])[0]
            .get("image")
            == m.IMAGE
        ),
    )
    kubectl("scale", "deployment/fraud", "--replicas=7", "-n", namespace)
    wait_until(
        "the replica edit to be reverted",
        lambda: (kubectl.get("deployment", "fraud", namespace) or {}).get("spec", {}).get("replicas") == 2,
    )
    kubectl("set", "env", "deployment/fraud", "MODEL_DIGEST=sha256:" + "0" * 64, "-n", namespace)
    wait_until(
        "the env edit to be reverted", lambda: served_digest(kubectl, namespace) == m.digest("fraud-v1")
    )
    assert len(events(kubectl, namespace, "TamperReverted")) >= 1
    assert any(h["action"] == "TamperReverted" for h in mdep(kubectl, namespace)["status"]["history"])


def test_deleting_the_model_deployment_retires_it(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    obj = admit_v1(kubectl, namespace, policy_name)
    assert "modelgate.io/finalizer" in obj["metadata"]["finalizers"]
    kubectl("delete", "mdep", "fraud", "-n", namespace, "--timeout=60s")
    assert kubectl.get("mdep", "fraud", namespace) is None
    wait_until(
        "the serving Deployment and Service to be gone",
        lambda: (
            kubectl.get("deployment", "fraud", namespace) is None
            and kubectl.get("service", "fraud", namespace) is None
        ),
    )
    assert events(kubectl, namespace, "Retired")
    retired = [
        a
        for a in operator.audit_lines()
        if a["action"] == "Retired" and a["object"]["namespace"] == namespace
    ]
    assert retired and retired[0]["evidence"]["servingRevision"]["digest"] == m.digest("fraud-v1")


def test_a_model_deployment_is_created_with_the_finalizer_and_never_patched_by_kopf(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    admit_v1(kubectl, namespace, policy_name)

    obj = kubectl.json("get", "mdep", "fraud", "-n", namespace, "--show-managed-fields")

    assert obj["metadata"]["finalizers"] == ["modelgate.io/finalizer"]
    assert obj["metadata"]["generation"] == 1
    managers = {(f["manager"], f.get("subresource", "")) for f in obj["metadata"]["managedFields"]}
    assert ("modelgate", "status") in managers
    assert not [mgr for mgr, _sub in managers if mgr.startswith("kopf")], managers


def test_a_policy_change_re_evaluates_serving_models(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    admit_v1(kubectl, namespace, policy_name)
    # The policy now also demands model-risk: the serving model no longer satisfies it (suspend).
    kubectl.apply(m.policy(policy_name, namespace, roles=("ethics-board", "model-risk")))
    obj = wait_phase(kubectl, namespace, "Blocked")
    assert any(not g["satisfied"] and "model-risk" in g["requirement"] for g in obj["status"]["gates"])
    # Deleting the policy leaves no policy in force: fail closed.
    kubectl("delete", "governancepolicy", policy_name)
    obj = wait_until(
        "reason NoPolicy",
        lambda: (o := mdep(kubectl, namespace)) and condition(o, "Admitted")["reason"] == "NoPolicy" and o,
    )  # type: ignore[index]
    assert obj["status"]["phase"] == "Blocked"


def test_a_namespace_label_change_re_evaluates_its_models(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    admit_v1(kubectl, namespace, policy_name)
    kubectl(
        "label",
        "namespace",
        namespace,
        "modelgate.io/test-",
    )
    obj = wait_until(
        "reason NoPolicy once the namespace leaves the policy's selector",
        lambda: (o := mdep(kubectl, namespace)) and condition(o, "Admitted")["reason"] == "NoPolicy" and o,
    )  # type: ignore[index]
    assert obj["status"]["phase"] == "Blocked"


def test_the_operator_exposes_its_own_metrics(namespace: str, operator: OperatorProcess) -> None:
    text = operator.metrics()
    for name in (
        "modelgate_decisions_total",
        "modelgate_reconcile_duration_seconds_count",
        "modelgate_models{",
        "modelgate_prometheus_query_duration_seconds_count",
    ):
        assert name in text, name
    tasks = next(ln for ln in text.splitlines() if ln.startswith("modelgate_asyncio_tasks "))
    assert float(tasks.split()[-1]) >= 1, tasks  # at least Kopf's own tasks run on the loop
