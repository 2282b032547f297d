"""Monitoring decisions for one ModelDeployment: which checks it runs, what a round of readings
changes, and when a drift calls for the onDrift action. Pure: readings and `now` are passed in.

- `checks_for`: the ModelDeployment's own metrics plus every metric a selecting policy requires
  (a policy metric the model does not define is added; the model's own definition wins by name).
- `Readings`: one round of samples for the revision being watched, tagged with its digest so that
  samples taken before a rollback never count against the revision served after it.
- `advance_metrics`: previous counters (from status.metrics) + readings -> new states, the
  status.metrics to store and the verdict changes worth an Event.

No status churn: a reading whose verdict and counters equal the stored one keeps the stored entry
(value and checkedAt included), so a model that keeps passing writes nothing. Prometheus keeps the
time series; status keeps the verdicts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import (
    GovernancePolicy,
    MetricCheck,
    MetricReading,
    ModelDeployment,
    parse_duration,
)
from modelgate.decide.conditions import Cond
from modelgate.decide.drift import DriftSummary, MetricState, Sample, observe, summarize

DEFAULT_INTERVAL = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Readings:
    """One round of samples for the revision being watched."""

    seq: int
    at: dt.datetime
    digest: str
    samples: Mapping[str, Sample] = field(default_factory=dict)
    """Metric name -> sample."""


@dataclass(frozen=True)
class Target:
    """What the monitor should query for one ModelDeployment, and how often."""

    namespace: str
    deployment: str
    model: str
    version: str
    digest: str
    interval: dt.timedelta
    checks: tuple[MetricCheck, ...]


def checks_for(md: ModelDeployment, policies: Sequence[GovernancePolicy]) -> tuple[MetricCheck, ...]:
    own = list(md.spec.monitoring.metrics) if md.spec.monitoring else []
    names = {c.name for c in own}
    for policy in policies:
        for check in policy.spec.monitoring:
            if check.name not in names:
                own.append(check)
                names.add(check.name)
    return tuple(own)


def interval_of(md: ModelDeployment) -> dt.timedelta:
    if md.spec.monitoring and md.spec.monitoring.interval:
        return max(dt.timedelta(seconds=1), parse_duration(md.spec.monitoring.interval))
    return DEFAULT_INTERVAL


def on_drift(md: ModelDeployment) -> str:
    return md.spec.monitoring.on_drift if md.spec.monitoring else "rollback"


@dataclass(frozen=True)
class MonitoringOutcome:
    states: tuple[MetricState, ...]
    summary: DriftSummary
    metrics: list[dict[str, Any]]
    """status.metrics to store."""
    changed: tuple[MetricState, ...]
    """States whose verdict changed with this round (Events, history)."""


def _stored(raw: Mapping[str, Any], check: MetricCheck) -> MetricState | None:
    try:
        reading = MetricReading.model_validate(dict(raw))
    except ValueError:
        return None
    return MetricState.from_reading(reading, check.failure_limit, check.inconclusive_limit)


def _same(a: MetricState, b: MetricState) -> bool:
    return (a.status, a.reason, a.consecutive_failures, a.consecutive_inconclusive) == (
        b.status,
        b.reason,
        b.consecutive_failures,
        b.consecutive_inconclusive,
    )


def advance_metrics(
    stored: Sequence[Mapping[str, Any]],
    checks: Sequence[MetricCheck],
    readings: Readings | None,
) -> MonitoringOutcome:
    by_name = {str(r.get("name")): r for r in stored}
    states: list[MetricState] = []
    metrics: list[dict[str, Any]] = []
    changed: list[MetricState] = []
    for check in checks:
        raw = by_name.get(check.name)
        previous = _stored(raw, check) if raw else None
        sample = readings.samples.get(check.name) if readings else None
        if sample is None or readings is None:
            if previous is not None and raw is not None:
                states.append(previous)
                metrics.append(dict(raw))
            continue
        state = observe(previous, check, sample, readings.at)
        states.append(state)
        if previous is not None and raw is not None and _same(previous, state):
            metrics.append(dict(raw))  # nothing new to say: keep the stored entry, write nothing
            continue
        metrics.append(state.to_reading().model_dump(by_alias=True, exclude_none=True, mode="json"))
        if state.status_changed:
            changed.append(state)
    summary = summarize(states)
    if checks and not states:
        summary = DriftSummary(
            Cond(
                c.DRIFTED,
                c.FALSE,
                "AwaitingFirstCheck",
                f"{len(checks)} metric(s) configured; no check has run yet",
            ),
            act=False,
        )
    return MonitoringOutcome(tuple(states), summary, metrics, tuple(changed))


def passed(outcome: MonitoringOutcome, checks: Sequence[MetricCheck]) -> bool:
    """The watched revision passed its checks: no checks at all, or every check read and passing."""
    if not checks:
        return True
    return len(outcome.states) == len(checks) and all(s.status == "Pass" for s in outcome.states)
