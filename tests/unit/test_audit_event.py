"""The Event each decision becomes: what `kubectl describe` and `kubectl get events` show."""

from __future__ import annotations

import datetime as dt

from modelgate.act.audit import MAX_MESSAGE, event
from modelgate.decide.types import Decision

BODY = {
    "apiVersion": "modelgate.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"namespace": "fraud-prod", "name": "fraud-detector", "uid": "u-1", "resourceVersion": "7"},
}
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def test_event_names_the_model_deployment_and_the_decision() -> None:
    ev = event(BODY, Decision("Admitted", "Admitted", "Admitted v1", "t"), NOW)

    assert ev["metadata"] == {"namespace": "fraud-prod", "generateName": "fraud-detector."}
    assert ev["involvedObject"] == {
        "apiVersion": "modelgate.io/v1alpha1",
        "kind": "ModelDeployment",
        "namespace": "fraud-prod",
        "name": "fraud-detector",
        "uid": "u-1",
        "resourceVersion": "7",
    }
    assert (ev["type"], ev["reason"], ev["message"]) == ("Normal", "Admitted", "Admitted v1")
    assert ev["source"] == {"component": "modelgate"}
    assert ev["firstTimestamp"] == ev["lastTimestamp"] == "2026-12-03T12:00:00Z"


def test_warning_decisions_are_warning_events_with_bounded_messages() -> None:
    ev = event(BODY, Decision("RolledBack", "DriftDetected", "x" * 5000, "t", warning=True), NOW)

    assert ev["type"] == "Warning"
    assert len(ev["message"]) == MAX_MESSAGE
