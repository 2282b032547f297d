"""Live monitoring with a real Prometheus scraping the reference exporter under simulated traffic:
drift leads to rollback or quarantine, an outage is inconclusive and never acted on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Prometheus
from tests.support import manifests as m
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess
from tests.support.simulator import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def get(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    obj = kubectl.get("mdep", "fraud", ns)
    assert obj is not None
    return obj


def wait_for(kubectl: Kubectl, ns: str, what: str, pred: Any, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = get(kubectl, ns)
        st = obj.get("status") or {}
        return obj if st.get("observedGeneration") == obj["metadata"]["generation"] and pred(obj) else None

    return wait_until(what, probe, timeout=timeout)


def served_digest(kubectl: Kubectl, ns: str) -> str | None:
    dep = kubectl.get("deployment", "fraud", ns)
    env = (
        {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        if dep
        else {}
    )
    return env.get("MODEL_DIGEST")


def serve(kubectl: Kubectl, ns: str, names: dict[str, str], version: str, on_drift: str = "rollback") -> None:
    m.approve(kubectl, m.approval(f"{version}-ethics", ns, "fraud", version))
    m.deploy(
        kubectl,
        m.model_deployment(
            "fraud",
            ns,
            version,
            approvals=(f"{version}-ethics",),
            monitoring=m.psi_monitoring(names["template"], on_drift),
        ),
    )


def known_good(obj: dict[str, Any]) -> list[str]:
    return [g["version"] for g in obj["status"].get("knownGood") or []]


def setup(kubectl: Kubectl, ns: str, names: dict[str, str]) -> None:
    kubectl.apply(m.policy(names["policy"], ns, min_accuracy=None))
    kubectl.apply(m.psi_template(names["template"]))


def test_drift_rolls_back_to_the_last_known_good_revision_with_the_story_told(
    kubectl: Kubectl, namespace: str, names: dict[str, str], sim: Simulator, operator: OperatorProcess
) -> None:
    setup(kubectl, namespace, names)
    serve(kubectl, namespace, names, "v1")
    wait_for(kubectl, namespace, "v1 to serve and pass its checks", lambda o: "v1" in known_good(o))
    serve(kubectl, namespace, names, "v2")
    wait_for(kubectl, namespace, "v2 to serve and pass its checks", lambda o: "v2" in known_good(o))
    assert served_digest(kubectl, namespace) == m.digest("fraud-v2")

    sim.drift("fraud", True, version="v2")
    obj = wait_for(kubectl, namespace, "the rollback", lambda o: o["status"].get("phase") == "RolledBack")
    assert served_digest(kubectl, namespace) == m.digest("fraud-v1")
    st = obj["status"]
    assert st["servingRevision"]["version"] == "v1"
    assert [r["digest"] for r in st["rejectedDigests"]] == [m.digest("fraud-v2")]
    assert st["lastKnownGood"]["version"] == "v1" and known_good(obj) == ["v1"], st.get("knownGood")
    assert condition(obj, "Drifted")["status"] == "True"  # type: ignore[index]
    assert condition(obj, "Ready")["reason"] == "RolledBack"  # type: ignore[index]
    actions = [h["action"] for h in st["history"]]
    assert actions.count("CheckFailed") == 1 and actions.count("RolledBack") == 1, actions
    assert actions.index("CheckFailed") < actions.index("RolledBack")
    rolled = next(h for h in st["history"] if h["action"] == "RolledBack")
    assert "psi" in rolled["message"] and "0.25" in rolled["message"], rolled
    events = kubectl.json("get", "events", "-n", namespace, "--field-selector", "reason=RolledBack")["items"]
    assert events and "v1" in events[0]["message"]
    audit = [
        a
        for a in operator.audit_lines()
        if a["action"] == "RolledBack" and a["object"]["namespace"] == namespace
    ]
    check = audit[-1]["evidence"]["checks"][0]
    assert check["metric"] == "psi" and check["value"] > 0.25 and check["max"] == 0.25
    assert check["consecutiveFailures"] >= 2
    failed = [
        a
        for a in operator.audit_lines()
        if a["action"] == "CheckFailed" and a["object"]["namespace"] == namespace
    ]
    assert "modelgate_prediction_psi" in failed[-1]["evidence"]["query"]

    # A GitOps re-sync of the same spec does not bring the drifting digest back.
    serve(kubectl, namespace, names, "v2")
    obj = wait_for(
        kubectl,
        namespace,
        "the re-sync to be decided",
        lambda o: any(g.get("reason") == "ApprovalPredatesQuarantine" for g in o["status"]["gates"]),
    )
    assert obj["status"]["phase"] == "RolledBack"
    assert served_digest(kubectl, namespace) == m.digest("fraud-v1")

    # The monitor times its rounds and the verdicts they lead to (bench/monitoring.py reads both).
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(operator.metrics())
        for s in family.samples
        if s.name.startswith("modelgate_monitoring_")
    }
    # At least the two failing checks that reached failureLimit, each from a round and decided on.
    assert samples["modelgate_monitoring_round_duration_seconds_count"] >= 2, samples
    assert samples["modelgate_monitoring_verdict_delay_seconds_count"] >= 2, samples
    assert samples["modelgate_monitoring_verdict_delay_seconds_sum"] > 0, samples


def test_a_prometheus_outage_is_inconclusive_and_never_acted_on(
    kubectl: Kubectl,
    namespace: str,
    names: dict[str, str],
    sim: Simulator,
    prometheus: Prometheus,
    operator: OperatorProcess,
) -> None:
    setup(kubectl, namespace, names)
    serve(kubectl, namespace, names, "v1")
    wait_for(kubectl, namespace, "v1 to serve and pass its checks", lambda o: "v1" in known_good(o))
    prometheus.stop()
    try:
        obj = wait_for(
            kubectl,
            namespace,
            "Ready to become Unknown",
            lambda o: condition(o, "Ready")["status"] == "Unknown",
        )  # type: ignore[index]
        ready, drifted = condition(obj, "Ready"), condition(obj, "Drifted")
        assert ready and drifted and drifted["status"] == "Unknown"
        assert ready["reason"] == "MetricsInconclusive" and "unreachable" in ready["message"].lower(), ready
        reading = obj["status"]["metrics"][0]
        assert reading["status"] == "Inconclusive" and reading["consecutiveFailures"] == 0
        assert obj["status"]["phase"] == "Degraded"
        assert "rejectedDigests" not in obj["status"]
        assert served_digest(kubectl, namespace) == m.digest("fraud-v1")
        assert kubectl.json(
            "get", "events", "-n", namespace, "--field-selector", "reason=MetricsInconclusive"
        )["items"]
    finally:
        prometheus.start()
    obj = wait_for(
        kubectl,
        namespace,
        "the checks to recover",
        lambda o: (
            condition(o, "Ready")["status"] == "True"  # type: ignore[index]
            and condition(o, "Drifted")["status"] == "False"
        ),
    )  # type: ignore[index]
    assert obj["status"]["phase"] == "Serving"
    actions = {h["action"] for h in obj["status"]["history"]}
    assert not actions & {"RolledBack", "Quarantined", "DriftDetected"}, actions
    assert served_digest(kubectl, namespace) == m.digest("fraud-v1")


def ready_endpoints(kubectl: Kubectl, ns: str) -> int:
    slices = kubectl.json("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=fraud")[
        "items"
    ]
    return sum(
        1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
    )


def test_quarantine_cuts_traffic_keeps_pods_and_only_a_new_approval_releases_it(
    kubectl: Kubectl, namespace: str, names: dict[str, str], sim: Simulator, operator: OperatorProcess
) -> None:
    setup(kubectl, namespace, names)
    serve(kubectl, namespace, names, "v1", on_drift="quarantine")
    wait_for(kubectl, namespace, "v1 to serve and pass its checks", lambda o: "v1" in known_good(o))
    wait_until("the Service to have 2 ready endpoints", lambda: ready_endpoints(kubectl, namespace) == 2)
    pods_before = sorted(
        p["metadata"]["name"]
        for p in kubectl.json("get", "pods", "-n", namespace, "-l", "modelgate.io/deployment=fraud")["items"]
    )

    sim.drift("fraud", True, version="v1")
    obj = wait_for(kubectl, namespace, "the quarantine", lambda o: o["status"].get("phase") == "Quarantined")
    assert condition(obj, "Quarantined")["status"] == "True"  # type: ignore[index]
    assert obj["status"]["quarantinedAt"]
    wait_until("the Service to lose its endpoints", lambda: ready_endpoints(kubectl, namespace) == 0)
    wait_until(
        "the quarantine NetworkPolicy", lambda: kubectl.get("networkpolicy", "fraud-quarantine", namespace)
    )
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", "modelgate.io/deployment=fraud")["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == pods_before  # the same pods, kept
    wait_until(
        "the pods to be marked quarantined",
        lambda: all(
            p["metadata"]["labels"].get("modelgate.io/quarantined") == "true"
            for p in kubectl.json("get", "pods", "-n", namespace, "-l", "modelgate.io/deployment=fraud")[
                "items"
            ]
        ),
    )

    # Re-applying the same manifests changes nothing.
    sim.drift("fraud", False, version="v1")
    serve(kubectl, namespace, names, "v1", on_drift="quarantine")
    before = operator.metrics()
    kubectl("annotate", "mdep", "fraud", "-n", namespace, "resync=1", "--overwrite")
    wait_until("the operator to reconcile the re-sync", lambda: operator.metrics() != before)
    obj = get(kubectl, namespace)
    assert obj["status"]["phase"] == "Quarantined" and ready_endpoints(kubectl, namespace) == 0

    # A new approval, created after the quarantine, releases it.
    kubectl("delete", "mapr", "v1-ethics", "-n", namespace)
    m.approve(kubectl, m.approval("v1-ethics", namespace, "fraud", "v1"))
    obj = wait_for(kubectl, namespace, "the release", lambda o: o["status"].get("phase") == "Serving")
    assert condition(obj, "Quarantined")["status"] == "False"  # type: ignore[index]
    assert "Released" in [h["action"] for h in obj["status"]["history"]]
    wait_until("the Service to get its endpoints back", lambda: ready_endpoints(kubectl, namespace) == 2)
    assert json.dumps(obj["status"]).count("quarantinedAt") == 0
    assert kubectl.get("networkpolicy", "fraud-quarantine", namespace) is None
