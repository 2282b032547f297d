"""Attacks on monitoring (issue 10, point 5), performed as the deployer (alice, group deployers)
through the real API server, against a real Prometheus scraping the reference exporter.

The policy requires `psi <= 0.25` (failureLimit 2) and sets onDrift rollback. The deployer tries
to switch that off from their own ModelDeployment: a metric of the same name that always passes
(`query: vector(0)`, a huge max), failureLimit 1000, onDrift alert. None of it loosens the
policy's check: the drifting model is withdrawn (rollback; with nothing to roll back to, that is a
quarantine). And a duplicated series, which makes the check Inconclusive for as long as it lasts,
quarantines the model when the policy says onInconclusive: quarantine.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.conftest import Prometheus
from tests.support import manifests as m
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess
from tests.support.simulator import Simulator, simulator

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def series(prometheus: Prometheus, ns: str) -> int:
    """How many psi series Prometheus holds for fraud v1 of `ns` (the simulator also serves v2)."""
    query = urllib.parse.urlencode(
        {"query": f'modelgate_prediction_psi{{namespace="{ns}",model="fraud",version="v1"}}'}
    )
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?{query}", timeout=5) as r:
        return len(json.loads(r.read())["data"]["result"])


def policy_psi(template: str) -> dict[str, Any]:
    return {
        "name": "psi",
        "templateRef": {"name": template},
        "max": 0.25,
        "failureLimit": 2,
        "inconclusiveLimit": 2,
    }


def setup(
    kubectl: Kubectl, ns: str, names: dict[str, str], monitoring: list[dict[str, Any]], **spec: Any
) -> None:
    pol = m.policy(names["policy"], ns, min_accuracy=None)
    pol["spec"].update(monitoring=monitoring, **spec)
    kubectl.apply(pol)
    kubectl.apply(m.psi_template(names["template"]))


def deploy(kubectl: Kubectl, ns: str, own_monitoring: dict[str, Any]) -> None:
    m.approve(kubectl, m.approval("v1-ethics", ns, "fraud", "v1"))
    m.deploy(
        kubectl, m.model_deployment("fraud", ns, "v1", approvals=("v1-ethics",), monitoring=own_monitoring)
    )


def wait_for(kubectl: Kubectl, ns: str, what: str, pred: Any, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kubectl.get("mdep", "fraud", ns)
        st = (obj or {}).get("status") or {}
        return (
            obj
            if obj and st.get("observedGeneration") == obj["metadata"]["generation"] and pred(obj)
            else None
        )

    return wait_until(what, probe, timeout=timeout)


def serving_and_passing(obj: dict[str, Any]) -> bool:
    return any(g["version"] == "v1" for g in obj["status"].get("knownGood") or [])


def history(obj: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [h for h in obj["status"].get("history") or [] if h["action"] == action]


LOOSENINGS = {
    "an always-passing query under the policy metric's name": {
        "interval": "2s",
        "metrics": [{"name": "psi", "query": "vector(0)", "max": 1e12}],
    },
    "failureLimit 1000 on the policy metric": {
        "interval": "2s",
        "metrics": [{"name": "psi", "templateRef": {"name": "TEMPLATE"}, "max": 0.25, "failureLimit": 1000}],
    },
    "onDrift alert under a rollback policy": {"interval": "2s", "onDrift": "alert", "metrics": []},
}


@pytest.mark.parametrize("attack", list(LOOSENINGS))
def test_the_deployer_cannot_loosen_the_policys_monitoring(
    attack: str,
    kubectl: Kubectl,
    namespace: str,
    names: dict[str, str],
    sim: Simulator,
    operator: OperatorProcess,
) -> None:
    setup(kubectl, namespace, names, [policy_psi(names["template"])], onDrift="rollback")
    own = {
        **LOOSENINGS[attack],
        "metrics": [
            {**x, "templateRef": {"name": names["template"]}} if "templateRef" in x else x
            for x in LOOSENINGS[attack]["metrics"]
        ],
    }
    deploy(kubectl, namespace, own)
    wait_for(kubectl, namespace, "v1 to serve and pass its checks", serving_and_passing)

    sim.drift("fraud", True, version="v1")

    obj = wait_for(kubectl, namespace, "the drift to withdraw v1", lambda o: history(o, "Quarantined"))
    [q] = history(obj, "Quarantined")
    assert q["reason"] == "DriftDetected"
    assert "psi failed 2 checks in a row (limit 2)" in q["message"] and "0.25" in q["message"], q
    assert "no last known good revision to roll back to" in q["message"]
    assert obj["status"]["phase"] == "Quarantined"
    assert condition(obj, "Quarantined")["status"] == "True"  # type: ignore[index]
    assert not history(obj, "DriftDetected")  # not merely reported, as onDrift alert would


def test_a_duplicated_series_quarantines_under_on_inconclusive_quarantine(
    kubectl: Kubectl,
    namespace: str,
    names: dict[str, str],
    sim: Simulator,
    prometheus: Prometheus,
    operator: OperatorProcess,
) -> None:
    raw = {
        "name": "psi",
        # No aggregation: two series for one model stay two (the template's max by () would hide it).
        "query": 'modelgate_prediction_psi{namespace="{{namespace}}",model="{{model}}",'
        'version="{{version}}"}',
        "max": 0.25,
        "failureLimit": 2,
        "inconclusiveLimit": 2,
    }
    setup(kubectl, namespace, names, [raw], onInconclusive="quarantine")
    # Missing data counts too under onInconclusive: quarantine, so serve only once Prometheus has
    # scraped the model's exporter (a cluster needs inconclusiveLimit x interval above discovery).
    wait_until("Prometheus to scrape the simulator", lambda: series(prometheus, namespace) == 1)
    deploy(kubectl, namespace, {"interval": "2s", "metrics": []})
    wait_for(kubectl, namespace, "v1 to serve and pass its checks", serving_and_passing)

    # The deployer runs a second exporter claiming the same model (in a cluster: a pod of theirs
    # that Prometheus discovers); here its scrape target is added next to the simulator's.
    with simulator([f"{namespace}/fraud/v1"]) as twin:
        prometheus.add_target(f"{namespace}-twin", twin.address)
        try:
            wait_until("Prometheus to scrape the twin", lambda: series(prometheus, namespace) == 2)
            obj = wait_for(
                kubectl, namespace, "the duplicate to be acted on", lambda o: history(o, "Quarantined")
            )
        finally:
            prometheus.remove_target(f"{namespace}-twin")

    [q] = history(obj, "Quarantined")
    assert q["reason"] == "MetricsInconclusive"
    assert "onInconclusive: quarantine" in q["message"]
    assert "psi inconclusive 2 checks in a row (limit 2)" in q["message"]
    assert "more than one series" in q["message"], q
    assert obj["status"]["phase"] == "Quarantined"
    assert obj["status"]["rejectedDigests"][0]["digest"] == m.digest("fraud-v1")
