"""PolicyReports on a real API server with the session operator: the wgpolicyk8s.io/v1alpha2 CRDs
as published (tests/fixtures/policyreports), one report per namespace with one result per model
per gate, following the models' status.gates; and nothing breaks when the CRD is removed while the
operator runs, nor while it is absent, and reports appear when it is installed again.

The module installs the CRDs and removes them afterwards when they were not there before (other
test files on the same worker's cluster must not meet reports they did not ask for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_gating import wait_phase
from tests.support import manifests as m
from tests.support.kube import Kubectl, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "policyreports"
CRDS = ("policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io")
REPORT = "policyreports.wgpolicyk8s.io"
OWNED = re.compile(r"^(?P<rule>.+) \(policy (?P<policy>[^()]+)\)$")


def install(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-f", str(FIXTURES))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(FIXTURES))


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> Iterator[None]:
    present = {name for name in CRDS if kubectl.get("crd", name) is not None}
    install(kubectl)
    yield
    for name in set(CRDS) - present:
        kubectl("delete", "crd", name, "--ignore-not-found", "--wait=true", timeout=180)
    if present:
        install(kubectl)


def report(kubectl: Kubectl, ns: str) -> dict[str, Any] | None:
    return kubectl.get(REPORT, "modelgate", ns)  # type: ignore[no-any-return]


def expected(obj: dict[str, Any], policy: str) -> set[tuple[str, str, str, str]]:
    """(policy, rule, result, message) per gate of the model: every gate of these tests' policy is
    the policy's (a card field it requires, or a gate that names it)."""
    out = set()
    for g in obj["status"]["gates"]:
        owned = OWNED.match(g["requirement"])
        rule = owned["rule"] if owned else g["requirement"]
        out.add(
            (owned["policy"] if owned else policy, rule, "pass" if g["satisfied"] else "fail", g["message"])
        )
    return out


def reported(rep: dict[str, Any] | None, model: str) -> set[tuple[str, str, str, str]]:
    return {
        (r["policy"], r["rule"], r["result"], r["message"])
        for r in (rep or {}).get("results") or []
        if r["resources"][0]["name"] == model
    }


def report_matches(kubectl: Kubectl, ns: str, policy: str, *models: str) -> dict[str, Any] | None:
    """The report once it says exactly what each model's stored status.gates say (and no more)."""
    rep = report(kubectl, ns)
    if rep is None:
        return None
    names = {r["resources"][0]["name"] for r in rep.get("results") or []}
    if names != set(models):
        return None
    for name in models:
        obj = kubectl.get("mdep", name, ns)
        if not (obj or {}).get("status", {}).get("gates") or reported(rep, name) != expected(obj, policy):
            return None
    return rep  # type: ignore[no-any-return]


def log_since(op: OperatorProcess, offset: int) -> list[dict[str, Any]]:
    lines = op.log.read_text(errors="replace")[offset:].splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"message": line, "severity": "raw"})
    return out


def test_a_namespace_report_has_one_result_per_model_per_gate_and_follows_their_changes(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess, crds: None
) -> None:
    kubectl.apply(m.policy(policy_name, namespace))
    m.approve(kubectl, m.approval("fraud-ethics", namespace, "fraud"))
    m.submit(kubectl, m.evaluation("fraud-eval", namespace, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", namespace, replicas=1))
    m.deploy(kubectl, m.model_deployment("churn", namespace, replicas=1))
    wait_phase(kubectl, namespace, "Serving", "fraud")
    wait_phase(kubectl, namespace, "Blocked", "churn")

    rep = wait_until(
        "the PolicyReport to match both models' gates",
        lambda: report_matches(kubectl, namespace, policy_name, "fraud", "churn"),
    )
    assert rep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelgate"
    results = rep["results"]
    counts = {
        k: sum(1 for r in results if r["result"] == k) for k in ("pass", "fail", "warn", "error", "skip")
    }
    assert rep["summary"] == counts and counts["fail"] > 0 and counts["pass"] > 0
    rules = {r["rule"] for r in results}
    assert {"card.owner", "card.intendedUse", "approval role=ethics-board", "evaluation accuracy"} <= rules
    fraud = kubectl.get("mdep", "fraud", namespace)
    for r in results:
        assert r["source"] == "modelgate" and r["severity"] == "high" and r["timestamp"]["seconds"] > 0
        assert r["resources"][0]["kind"] == "ModelDeployment"
    assert {r["resources"][0]["uid"] for r in results if r["resources"][0]["name"] == "fraud"} == {
        fraud["metadata"]["uid"]
    }
    before = [r for r in results if r["resources"][0]["name"] == "fraud"]

    # churn gets its evidence: its results turn to pass, fraud's stay exactly as they were
    m.approve(kubectl, m.approval("churn-ethics", namespace, "churn"))
    m.submit(kubectl, m.evaluation("churn-eval", namespace, "churn"))
    wait_phase(kubectl, namespace, "Serving", "churn")
    rep = wait_until(
        "churn's results to pass",
        lambda: (
            (r := report_matches(kubectl, namespace, policy_name, "fraud", "churn"))
            and r["summary"]["fail"] == 0
            and r
        ),
    )
    assert [r for r in rep["results"] if r["resources"][0]["name"] == "fraud"] == before
    assert rep["summary"]["pass"] == len(rep["results"])

    # a removed model's results disappear; the last one gone, the report goes
    kubectl("delete", "mdep", "churn", "-n", namespace)
    wait_until(
        "churn's results to disappear", lambda: report_matches(kubectl, namespace, policy_name, "fraud")
    )
    kubectl("delete", "mdep", "fraud", "-n", namespace)
    wait_until("the PolicyReport to be deleted", lambda: report(kubectl, namespace) is None)


def test_removing_the_crd_breaks_nothing_and_installing_it_brings_the_reports_back(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess, crds: None
) -> None:
    offset = len(operator.log.read_text(errors="replace"))
    kubectl.apply(m.policy(policy_name, namespace))
    m.approve(kubectl, m.approval("fraud-ethics", namespace, "fraud"))
    m.submit(kubectl, m.evaluation("fraud-eval", namespace, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", namespace, replicas=1))
    wait_phase(kubectl, namespace, "Serving", "fraud")
    wait_until("the PolicyReport", lambda: report_matches(kubectl, namespace, policy_name, "fraud"))

    kubectl("delete", "crd", CRDS[0], "--wait=true", timeout=180)
    wait_until(
        "the operator to notice the CRD is gone",
        lambda: any(
            "Lost the PolicyReport CRD" in line.get("message", "") for line in log_since(operator, offset)
        ),
    )
    # models are still admitted without it
    m.approve(kubectl, m.approval("churn-ethics", namespace, "churn"))
    m.submit(kubectl, m.evaluation("churn-eval", namespace, "churn"))
    m.deploy(kubectl, m.model_deployment("churn", namespace, replicas=1))
    wait_phase(kubectl, namespace, "Serving", "churn")

    install(kubectl)
    rep = wait_until(
        "both models' reports after the CRD is back",
        lambda: report_matches(kubectl, namespace, policy_name, "fraud", "churn"),
    )
    assert rep["summary"]["pass"] == len(rep["results"]) > 0

    logged = log_since(operator, offset)
    troubles = [
        line
        for line in logged
        if line.get("severity") in ("warning", "error", "critical", "raw")
        and re.search(r"policyreport|wgpolicyk8s|unresolved resources|traceback", json.dumps(line), re.I)
    ]
    assert troubles == [], troubles
    assert any("Found the PolicyReport CRD" in line.get("message", "") for line in logged)


def test_an_approval_due_for_recertification_is_reported_as_a_warning(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess, crds: None
) -> None:
    policy = m.policy(policy_name, namespace)
    policy["spec"]["approvals"][0]["maxAge"] = "1h"
    policy["spec"]["recertification"] = {"warnBefore": "2h"}  # the window is open from the start
    kubectl.apply(policy)
    m.approve(kubectl, m.approval("fraud-ethics", namespace, "fraud"))
    m.submit(kubectl, m.evaluation("fraud-eval", namespace, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", namespace, replicas=1))
    wait_phase(kubectl, namespace, "Serving", "fraud")

    def warned() -> dict[str, Any] | None:
        rep = report(kubectl, namespace)
        approval = [r for r in (rep or {}).get("results") or [] if r["rule"] == "approval role=ethics-board"]
        return rep if approval and approval[0]["result"] == "warn" else None

    rep = wait_until("the approval's result to warn", warned)
    obj = kubectl.get("mdep", "fraud", namespace)
    due = obj["status"]["recertification"]["dueAt"]
    (approval,) = [r for r in rep["results"] if r["rule"] == "approval role=ethics-board"]
    assert approval["policy"] == policy_name and approval["scored"] is False
    assert approval["message"].endswith(f"due for recertification by {due}"), approval["message"]
    assert rep["summary"]["warn"] == 1 and rep["summary"]["fail"] == 0
    assert rep["summary"]["pass"] == len(rep["results"]) - 1
