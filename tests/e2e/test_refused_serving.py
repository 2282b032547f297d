"""A ModelDeployment whose Deployment the real API server refuses (422 Invalid): a spec the CRD schema
admits but the Deployment's own validation does not. The operator must say so where users look
(Ready False, reason ServingObjectInvalid, the API server's words naming the field), tell it once
as a Warning Event, retry with backoff without a traceback per attempt, and serve as soon as the
spec is fixed, without a restart."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration
UNKNOWN_RESOURCE = {"requests": {"cpu": "100m", "gpu": "1"}}
"""`gpu` is neither a standard resource nor qualified (nvidia.com/gpu): the schema's map of
quantities admits it, the Deployment's validation refuses it."""
FIXED = {"requests": {"cpu": "100m"}}


def model(ns: str, resources: dict[str, Any]) -> dict[str, Any]:
    md = m.model_deployment("fraud", ns, approvals=("v1-ethics",), evaluations=("v1-eval",))
    md["spec"]["serving"]["resources"] = resources
    return md


def current(kubectl: Kubectl, ns: str) -> dict[str, Any] | None:
    """The ModelDeployment once its status speaks of its current generation."""
    obj = kubectl.get("mdep", "fraud", ns) or {}
    st = obj.get("status") or {}
    return obj if obj and st.get("observedGeneration") == obj["metadata"]["generation"] else None


def ready_reason(kubectl: Kubectl, ns: str, reason: str) -> dict[str, Any] | None:
    cond = condition(current(kubectl, ns), "Ready")
    return cond if cond and cond["reason"] == reason else None


def events(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    items = kubectl.json("get", "events", "-n", ns, "--field-selector", "reason=ServingObjectInvalid")[
        "items"
    ]
    return [e for e in items if e["involvedObject"]["kind"] == "ModelDeployment"]


def attempts(log: str, ns: str) -> int:
    """How many refused writes of the model's serving objects the operator logged."""
    found = re.findall(rf"Refused serving object of ModelDeployment {ns}/fraud: .*?attempt=(\d+)", log)
    return max(map(int, found), default=0)


def test_a_refused_deployment_is_reported_once_retried_quietly_and_served_once_fixed(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    ns = namespace
    start = operator.log.stat().st_size
    kubectl.apply(m.policy(policy_name, ns))
    m.approve(kubectl, m.approval("v1-ethics", ns, "fraud"))
    m.submit(kubectl, m.evaluation("v1-eval", ns, "fraud"))
    m.deploy(kubectl, model(ns, UNKNOWN_RESOURCE))

    cond = wait_until(
        "Ready=False ServingObjectInvalid", lambda: ready_reason(kubectl, ns, "ServingObjectInvalid")
    )
    assert cond["status"] == "False"
    assert "spec.template.spec.containers[0].resources.requests[gpu]" in cond["message"], cond
    assert "must be a standard resource" in cond["message"], cond
    assert "does not exist yet" not in cond["message"]
    assert kubectl.get("deployment", "fraud", ns) is None

    # Retried with backoff (each attempt logged in one line), the refusal told once.
    def log() -> str:
        """The operator's log lines about this namespace (others' tests share the operator)."""
        text = operator.log.read_bytes()[start:].decode(errors="replace")
        return "\n".join(line for line in text.splitlines() if ns in line)

    wait_until("a retry after a backoff", lambda: attempts(log(), ns) >= 4, timeout=60)
    told = wait_until("the Warning Event", lambda: events(kubectl, ns))
    assert len(told) == 1 and told[0]["type"] == "Warning" and told[0].get("count", 1) == 1, told
    assert "requests[gpu]" in told[0]["message"]
    audit = [a for a in operator.audit_lines() if a["object"]["namespace"] == ns]
    assert [a["action"] for a in audit if a["action"] == "ServingObjectInvalid"] == ["ServingObjectInvalid"]
    assert f"Reconcile of ModelDeployment {ns}/fraud failed" not in log()
    assert "Traceback" not in log()

    # Fixed by the deployer: served without a restart, and nothing more is told of the refusal.
    m.deploy(kubectl, model(ns, FIXED))
    wait_until(
        "the model to serve", lambda: (current(kubectl, ns) or {}).get("status", {}).get("phase") == "Serving"
    )
    cond = condition(kubectl.get("mdep", "fraud", ns), "Ready")
    assert cond is not None and (cond["status"], cond["reason"]) == ("True", "ServingReady")
    dep = kubectl.get("deployment", "fraud", ns)
    assert dep is not None
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "100m"}}
    assert len(events(kubectl, ns)) == 1
    assert "Traceback" not in log()


def test_requests_above_their_limit_are_refused_at_admission_naming_the_resource(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    too_much = {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}

    res = kubectl.apply(model(namespace, too_much), as_user="alice", as_groups=m.DEPLOYERS, check=False)

    assert res.returncode != 0, res.stdout
    assert "spec.serving.resources.requests.cpu: 2 must be less than or equal to its limit 1" in res.stderr
    assert "memory" not in res.stderr
    assert kubectl.get("mdep", "fraud", namespace) is None
