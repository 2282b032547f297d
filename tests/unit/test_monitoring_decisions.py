"""Monitoring decisions (decide/monitoring.py): which checks a model runs, how often, and what a
round of readings does to the stored counters, without status churn."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import MetricCheck
from modelgate.decide.drift import Sample
from modelgate.decide.monitoring import (
    DEFAULT_INTERVAL,
    advance_metrics,
    checks_for,
    interval_of,
    on_drift,
    passed,
)
from tests.unit.factories import DIGEST, NO_DATA, NOW, metric, model, monitoring, policy, readings

PSI = MetricCheck.model_validate(metric("psi", max=0.25, failure_limit=3, inconclusive_limit=2))
LATENCY = MetricCheck.model_validate(metric("latency", max=0.5))
LATER = NOW + timedelta(minutes=1)


# --- checks, interval, action ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("own", "required", "want"),
    [
        pytest.param(None, [], [], id="nothing configured"),
        pytest.param([metric("psi")], [], [("psi", 0.25)], id="model only"),
        pytest.param(None, [[metric("error-rate", max=0.02)]], [("error-rate", 0.02)], id="policy only"),
        pytest.param(
            [metric("psi")],
            [[metric("error-rate", max=0.02)]],
            [("psi", 0.25), ("error-rate", 0.02)],
            id="policy metric added after the model's",
        ),
        pytest.param(
            [metric("psi", max=0.25)],
            [[metric("psi", max=0.9)]],
            [("psi", 0.25)],
            id="model may tighten the policy's max",
        ),
        pytest.param(
            None,
            [[metric("error-rate", max=0.02)], [metric("error-rate", max=0.5), metric("p99", max=0.3)]],
            [("error-rate", 0.02), ("p99", 0.3)],
            id="the strictest policy wins among policies",
        ),
    ],
)
def test_checks_are_the_models_own_plus_every_policy_requirement(
    own: list[dict[str, Any]] | None, required: list[list[dict[str, Any]]], want: list[tuple[str, float]]
) -> None:
    md = model(monitoring=None if own is None else monitoring(*own))
    policies = [policy(monitoring=m) for m in required]

    assert [(ch.name, ch.max) for ch in checks_for(md, policies)] == want


@pytest.mark.parametrize(
    ("mon", "want"),
    [
        (None, DEFAULT_INTERVAL),
        (monitoring(interval="30s"), timedelta(seconds=30)),
        (monitoring(interval="1h30m"), timedelta(minutes=90)),
        (monitoring(interval="200ms"), timedelta(seconds=1)),  # never faster than once a second
    ],
)
def test_interval_of(mon: dict[str, Any] | None, want: timedelta) -> None:
    assert interval_of(model(monitoring=mon)) == want


@pytest.mark.parametrize(
    ("mon", "want"),
    [
        (None, "rollback"),
        (monitoring(), "rollback"),
        (monitoring(on_drift="quarantine"), "quarantine"),
        (monitoring(on_drift="alert"), "alert"),
    ],
)
def test_on_drift_defaults_to_rollback(mon: dict[str, Any] | None, want: str) -> None:
    assert on_drift(model(monitoring=mon)) == want


# --- advance_metrics -------------------------------------------------------------------------------


def stored_after(*rounds: Any, checks: tuple[MetricCheck, ...] = (PSI,)) -> list[dict[str, Any]]:
    """status.metrics after the given rounds (each a dict of name -> value or Sample)."""
    metrics: list[dict[str, Any]] = []
    for i, values in enumerate(rounds):
        metrics = advance_metrics(
            metrics, checks, readings(DIGEST, NOW + timedelta(seconds=i), values)
        ).metrics
    return metrics


def test_no_reading_yet_awaits_the_first_check() -> None:
    out = advance_metrics([], (PSI, LATENCY), None)

    assert out.metrics == []
    assert out.states == ()
    assert out.summary.condition.reason == "AwaitingFirstCheck"
    assert "2 metric(s) configured" in out.summary.condition.message
    assert not out.summary.act
    assert not passed(out, (PSI, LATENCY))


def test_no_checks_means_monitoring_not_configured_and_passed() -> None:
    out = advance_metrics([], (), readings(DIGEST, NOW, psi=0.1))

    assert out.summary.condition.reason == c.MONITORING_NOT_CONFIGURED
    assert passed(out, ())


def test_first_reading_is_stored_and_reported() -> None:
    out = advance_metrics([], (PSI,), readings(DIGEST, NOW, psi=0.1))

    assert out.metrics == [
        {
            "name": "psi",
            "value": 0.1,
            "status": "Pass",
            "consecutiveFailures": 0,
            "consecutiveInconclusive": 0,
            "checkedAt": "2026-12-01T12:00:00Z",
            "reason": "WithinThresholds",
            "message": "value 0.1 is within value <= 0.25",
        }
    ]
    assert [s.name for s in out.changed] == ["psi"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param({"psi": 0.1}, {"psi": 0.2}, id="passing again"),
        pytest.param({"psi": 0.25}, {"psi": -3.0}, id="passing at the bound, then far inside"),
    ],
)
def test_same_verdict_keeps_the_stored_entry_verbatim(
    before: dict[str, float], after: dict[str, float]
) -> None:
    stored = stored_after(before)

    out = advance_metrics(stored, (PSI,), readings(DIGEST, LATER, after))

    assert out.metrics == stored  # value and checkedAt of the earlier reading: nothing to write
    assert out.changed == ()


def test_counter_change_rewrites_the_entry_without_reporting_a_verdict_change() -> None:
    stored = stored_after({"psi": 0.4})

    out = advance_metrics(stored, (PSI,), readings(DIGEST, LATER, psi=0.5))

    assert out.metrics[0]["consecutiveFailures"] == 2
    assert out.metrics[0]["value"] == 0.5
    assert out.changed == ()


@pytest.mark.parametrize(
    ("rounds", "status", "failures", "inconclusive", "act"),
    [
        ([{"psi": 0.4}] * 3, "Fail", 3, 0, True),
        ([{"psi": 0.4}, {"psi": 0.4}, {"psi": 0.1}], "Pass", 0, 0, False),
        ([{"psi": 0.4}, {"psi": 0.4}, {"psi": NO_DATA}], "Inconclusive", 2, 1, False),
        ([{"psi": 0.4}, {"psi": NO_DATA}, {"psi": 0.4}, {"psi": 0.4}], "Fail", 3, 0, True),
        ([{"psi": NO_DATA}] * 5, "Inconclusive", 0, 5, False),
    ],
)
def test_counters_across_rounds(
    rounds: list[dict[str, Any]], status: str, failures: int, inconclusive: int, act: bool
) -> None:
    stored = stored_after(*rounds)

    out = advance_metrics(stored, (PSI,), None)

    [entry] = out.metrics
    assert (entry["status"], entry["consecutiveFailures"], entry["consecutiveInconclusive"]) == (
        status,
        failures,
        inconclusive,
    )
    assert out.summary.act == act


def test_missing_sample_for_one_metric_keeps_its_stored_entry() -> None:
    stored = stored_after({"psi": 0.4, "latency": 0.1}, checks=(PSI, LATENCY))

    out = advance_metrics(stored, (PSI, LATENCY), readings(DIGEST, LATER, psi=0.4))

    assert [m["name"] for m in out.metrics] == ["psi", "latency"]
    assert out.metrics[1] == stored[1]
    assert out.metrics[0]["consecutiveFailures"] == 2


def test_entries_of_metrics_no_longer_configured_are_dropped() -> None:
    stored = stored_after({"psi": 0.1, "latency": 0.1}, checks=(PSI, LATENCY))

    out = advance_metrics(stored, (PSI,), None)

    assert [m["name"] for m in out.metrics] == ["psi"]


def test_unreadable_stored_entry_counts_as_no_previous_reading() -> None:
    broken = [{"name": "psi", "status": "Sideways", "checkedAt": "yesterday"}]

    out = advance_metrics(broken, (PSI,), readings(DIGEST, NOW, psi=0.4))

    assert out.metrics[0]["consecutiveFailures"] == 1
    assert [s.name for s in out.changed] == ["psi"]


def test_limits_of_the_current_spec_apply_to_stored_counters() -> None:
    stored = stored_after({"psi": 0.4}, {"psi": 0.4})
    stricter = MetricCheck.model_validate(metric("psi", failure_limit=2))

    assert not advance_metrics(stored, (PSI,), None).summary.act
    assert advance_metrics(stored, (stricter,), None).summary.act


def test_inconclusive_value_is_never_stored() -> None:
    out = advance_metrics([], (PSI,), readings(DIGEST, NOW, psi=Sample.of(float("nan"))))

    assert "value" not in out.metrics[0]
    assert out.metrics[0]["reason"] == "NotANumber"


@pytest.mark.parametrize(
    ("rounds", "want"),
    [
        ([{"psi": 0.1, "latency": 0.1}], True),
        ([{"psi": 0.1}], False),
        ([{"psi": 0.1, "latency": 0.9}], False),
        ([{"psi": 0.1, "latency": NO_DATA}], False),
        ([{"psi": 0.4, "latency": 0.1}, {"psi": 0.1}], True),
    ],
)
def test_passed_needs_every_check_read_and_passing(rounds: list[dict[str, Any]], want: bool) -> None:
    stored = stored_after(*rounds, checks=(PSI, LATENCY))

    assert passed(advance_metrics(stored, (PSI, LATENCY), None), (PSI, LATENCY)) == want
