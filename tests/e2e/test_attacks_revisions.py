"""Attacks on the serving revision, performed as the deployer through the real API server: the
revision that serves must be justified at every moment, whatever the spec asks for next.

The trick these tests try: ask for a newer revision that has no evidence, so that the revision
which serves is no longer the requested one, then let the serving revision's evidence go (revoked,
rejected, expired). Before issue 10 the old revision kept serving indefinitely. And the same for a
rollback target: a known-good revision whose approval was revoked since is no place to go back to.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess
from tests.support.simulator import Simulator

pytestmark = pytest.mark.integration


def status_of(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    obj = kubectl.get("mdep", "fraud", ns)
    assert obj is not None
    return obj


def replicas(kubectl: Kubectl, ns: str) -> int | None:
    dep = kubectl.get("deployment", "fraud", ns)
    return None if dep is None else int(dep["spec"].get("replicas", 1))


def serve_v1_then_ask_for_v2(kubectl: Kubectl, ns: str, policy_name: str, on_revocation: str) -> None:
    """v1 serves with its evidence; the deployer asks for v2, which has none."""
    kubectl.apply(m.policy(policy_name, ns, on_revocation=on_revocation))
    m.approve(kubectl, m.approval("v1-ethics", ns, "fraud"))
    m.submit(kubectl, m.evaluation("v1-eval", ns, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("v1-ethics",), evaluations=("v1-eval",)))
    wait_until(
        "v1 to serve",
        lambda: (status_of(kubectl, ns).get("status") or {}).get("phase") == "Serving",
        timeout=90,
    )
    m.deploy(
        kubectl, m.model_deployment("fraud", ns, "v2", approvals=("v2-ethics",), evaluations=("v2-eval",))
    )
    wait_until(
        "v2 to be Blocked while v1 keeps serving",
        lambda: (
            (st := status_of(kubectl, ns).get("status") or {}).get("phase") == "Blocked"
            and st.get("servingRevision", {}).get("version") == "v1"
        ),
        timeout=90,
    )
    assert replicas(kubectl, ns) == 2


def test_revoking_the_serving_revision_suspends_it_even_while_a_newer_one_is_requested(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    serve_v1_then_ask_for_v2(kubectl, namespace, policy_name, "suspend")

    kubectl("delete", "modelapproval", "v1-ethics", "-n", namespace)  # the approver revokes v1

    wait_until("v1 to be scaled to zero", lambda: replicas(kubectl, namespace) == 0, timeout=90)
    obj = status_of(kubectl, namespace)
    admitted = condition(obj, "Admitted")
    assert admitted and admitted["status"] == "False"
    assert "fraud v1" in admitted["message"] and "no longer" in admitted["message"], admitted["message"]
    assert obj["status"]["history"][-1]["action"] == "Suspended"


def test_an_unreferenced_rejection_of_the_serving_revision_suspends_it(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    serve_v1_then_ask_for_v2(kubectl, namespace, policy_name, "suspend")

    # Another ethics-board member rejects v1; the deployer never references that rejection.
    m.approve(kubectl, m.approval("v1-rejected", namespace, "fraud", decision="rejected"), user="dave")

    wait_until("v1 to be scaled to zero", lambda: replicas(kubectl, namespace) == 0, timeout=90)
    admitted = condition(status_of(kubectl, namespace), "Admitted")
    assert admitted and "rejected" in admitted["message"], admitted


def test_with_keep_the_unjustified_serving_revision_keeps_serving_and_says_so(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    serve_v1_then_ask_for_v2(kubectl, namespace, policy_name, "keep")

    kubectl("delete", "modelapproval", "v1-ethics", "-n", namespace)

    def says_so() -> dict[str, Any] | None:
        admitted = condition(status_of(kubectl, namespace), "Admitted")
        return admitted if admitted and "no longer" in admitted["message"] else None

    admitted = wait_until("the status to say v1 lost its evidence", says_so, timeout=90)
    assert "onRevocation: keep" in admitted["message"], admitted["message"]
    assert replicas(kubectl, namespace) == 2


def serve_monitored(kubectl: Kubectl, ns: str, template: str, version: str) -> None:
    m.approve(kubectl, m.approval(f"{version}-ethics", ns, "fraud", version))
    m.deploy(
        kubectl,
        m.model_deployment(
            "fraud", ns, version, approvals=(f"{version}-ethics",), monitoring=m.psi_monitoring(template)
        ),
    )
    wait_until(
        f"{version} to serve and pass its checks",
        lambda: any(
            g["version"] == version
            for g in (status_of(kubectl, ns).get("status") or {}).get("knownGood") or []
        ),
        timeout=120,
    )


@pytest.mark.prometheus
def test_a_rollback_never_returns_to_a_revision_whose_approval_was_revoked_since(
    kubectl: Kubectl, namespace: str, names: dict[str, str], sim: Simulator, operator: OperatorProcess
) -> None:
    kubectl.apply(m.policy(names["policy"], namespace, min_accuracy=None))
    kubectl.apply(m.psi_template(names["template"]))
    serve_monitored(kubectl, namespace, names["template"], "v1")
    serve_monitored(kubectl, namespace, names["template"], "v2")  # v1 and v2 are both known good
    kubectl("delete", "modelapproval", "v1-ethics", "-n", namespace)  # v1's approval is revoked since

    sim.drift("fraud", True, version="v2")

    def withdrawn() -> dict[str, Any] | None:
        st = status_of(kubectl, namespace).get("status") or {}
        done = [h for h in st.get("history") or [] if h["action"] in ("Quarantined", "RolledBack")]
        return done[-1] if done else None

    last = wait_until("the drifting v2 to be withdrawn", withdrawn, timeout=120)
    assert last["action"] == "Quarantined", last
    assert "no known-good revision passes its gates now" in last["message"], last["message"]
    st = status_of(kubectl, namespace)["status"]
    assert st["servingRevision"]["version"] == "v2"  # kept for forensics, without traffic
    assert st["phase"] == "Quarantined"
