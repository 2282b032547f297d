"""Fairness on the real API server: a model accurate overall but with a slice gap above the policy's
maxGap is blocked and the gate names the slices; a fairer evaluation admits it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration


def sliced(name: str, ns: str, regions: dict[str, float], evaluated_at: str | None = None) -> dict[str, Any]:
    ev = m.evaluation(name, ns, "fraud", evaluated_at=evaluated_at)
    ev["spec"]["slices"] = [
        {"name": region, "size": 1000, "metrics": {"accuracy": value}} for region, value in regions.items()
    ]
    return ev


def evaluated(kubectl: Kubectl, ns: str, reason: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kubectl.get("mdep", "fraud", ns)
        cond = condition(obj, "Evaluated") if obj and obj.get("status") else None
        return cond if cond and cond["reason"] == reason else None

    return wait_until(f"Evaluated with reason {reason}", probe)


def test_a_slice_gap_above_max_gap_blocks_naming_the_slices_and_a_fairer_evaluation_admits(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess
) -> None:
    policy = m.policy(policy_name, namespace)
    policy["spec"]["evaluations"][0]["slices"] = {"required": ["region=EU"], "maxGap": 0.05}
    kubectl.apply(policy)
    m.deploy(kubectl, m.model_deployment("fraud", namespace, approvals=("eb",), evaluations=("uneven",)))
    m.approve(kubectl, m.approval("eb", namespace, "fraud"))
    an_hour_ago = m.now_rfc3339(-dt.timedelta(hours=1))  # the newer evaluation below must decide
    m.submit(kubectl, sliced("uneven", namespace, {"region=EU": 0.97, "region=LATAM": 0.88}, an_hour_ago))

    cond = evaluated(kubectl, namespace, "SliceGapExceeded")
    assert cond["status"] == "False"
    assert (
        "accuracy gap 0.09 between region=EU (0.97) and region=LATAM (0.88) exceeds maxGap 0.05"
        in cond["message"]
    ), cond
    assert (kubectl.get("mdep", "fraud", namespace) or {})["status"]["phase"] == "Blocked"
    assert kubectl.get("deployment", "fraud", namespace) is None, "a blocked model got serving objects"

    # The newest evaluation on the dataset decides: a fairer measurement admits the model.
    m.submit(kubectl, sliced("even", namespace, {"region=EU": 0.96, "region=LATAM": 0.93}))
    evaluated(kubectl, namespace, "EvaluationsPassed")
    gates = (kubectl.get("mdep", "fraud", namespace) or {})["status"]["gates"]
    accuracy = next(g for g in gates if "accuracy" in g["requirement"])
    assert accuracy["satisfied"], accuracy
    assert (
        "gap 0.03 between region=EU (0.96) and region=LATAM (0.93) within maxGap 0.05" in accuracy["message"]
    )
