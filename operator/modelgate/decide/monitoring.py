"""Monitoring decisions for one ModelDeployment: which checks it runs, what a round of readings
changes, and when a drift calls for the onDrift action. Pure: readings and `now` are passed in.

- `checks_for`: the policy's monitoring is a floor. Every metric a selecting policy requires runs
  with the policy's source (templateRef or query), thresholds and limits. A model's own metric of
  the same name can only tighten it: the effective check keeps the policy's source, takes the
  higher min, the lower max and the smaller failureLimit and inconclusiveLimit. Several policies
  requiring the same metric combine the same way (the source of the first policy by name). The
  model's other metrics are added as they are.
- `on_drift`: the strictest (alert < rollback < quarantine) of the model's spec.monitoring.onDrift
  and every selecting policy's onDrift. `on_inconclusive`: the strictest policy onInconclusive
  (default alert), for the policy metrics only (`policy_metrics`).
- `Readings`: one round of samples for the revision being watched, tagged with its digest so that
  samples taken before a rollback never count against the revision served after it.
- `advance_metrics`: previous counters (from status.metrics) + readings -> new states, the
  status.metrics to store and the verdict changes worth an Event.

onInconclusive and "a Prometheus outage is never acted on": with the default onInconclusive
`alert` missing data is still only reported (Drifted Unknown, MetricsInconclusive), never acted
on. A policy that sets onInconclusive rollback or quarantine says otherwise for its own metrics:
when one of them stays Inconclusive (no data, several series, Prometheus unreachable) past its
inconclusiveLimit, that action runs once, as a drift's would, with reason MetricsInconclusive and
a message naming the metric and why. A deployer who can make a series vanish or appear twice then
can no longer keep a drifting model serving; the price is that a long Prometheus outage withdraws
the models under such a policy, which is what that policy asks for. A new model's series that
Prometheus has not discovered yet is missing data too: choose inconclusiveLimit x interval above
the time service discovery and the first scrape take.

No status churn: a reading whose verdict and counters equal the stored one keeps the stored entry
(value and checkedAt included), so a model that keeps passing writes nothing. Prometheus keeps the
time series; status keeps the verdicts. `quiet`: a round in which every check passes; after a
counted round that was quiet too (every counter at zero, every verdict Pass), it changes nothing at
all, and the monitor wakes no pass for it (observe/monitor.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import (
    GovernancePolicy,
    MetricCheck,
    MetricReading,
    ModelDeployment,
    parse_duration,
)
from modelgate.decide.conditions import Cond
from modelgate.decide.drift import DriftSummary, MetricState, Sample, state_after, status_of, summarize

DEFAULT_INTERVAL = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Readings:
    """One round of samples for the revision being watched."""

    seq: int
    at: dt.datetime
    digest: str
    samples: Mapping[str, Sample] = field(default_factory=dict)
    """Metric name -> sample."""
    quiet: bool = False
    """Every check of the round passed (`quiet`)."""


def quiet(checks: Sequence[MetricCheck], samples: Mapping[str, Sample]) -> bool:
    """Every check has a reading and it passes. Counted after a quiet round, such a round leaves
    every counter at zero and every verdict Pass: it changes nothing the model's status holds."""
    return bool(checks) and all(
        (s := samples.get(ch.name)) is not None and status_of(s, ch.min, ch.max) == c.METRIC_PASS
        for ch in checks
    )


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


ACTION_ORDER: Final[dict[str, int]] = {"alert": 0, "rollback": 1, "quarantine": 2}
"""How strict each onDrift / onInconclusive action is: a policy sets the least, never the most."""


def strictest(actions: Iterable[str], default: str) -> str:
    """The strictest of `actions` (alert < rollback < quarantine); `default` when there is none."""
    return max(actions, key=ACTION_ORDER.__getitem__, default=default)


def _lower(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _higher(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def tighten(floor: MetricCheck, other: MetricCheck) -> MetricCheck:
    """`floor` (a policy's check) made at least as strict as `other`: the floor's source and name,
    the higher min, the lower max, the smaller limits. `other` can never loosen `floor`."""
    return floor.model_copy(
        update={
            "min": _higher(floor.min, other.min),
            "max": _lower(floor.max, other.max),
            "failure_limit": min(floor.failure_limit, other.failure_limit),
            "inconclusive_limit": min(floor.inconclusive_limit, other.inconclusive_limit),
        }
    )


def _by_name(policies: Sequence[GovernancePolicy]) -> list[GovernancePolicy]:
    return sorted(policies, key=lambda p: p.name)


def policy_checks(policies: Sequence[GovernancePolicy]) -> dict[str, MetricCheck]:
    """Every metric the policies require, combined by name (strictest; first policy's source)."""
    required: dict[str, MetricCheck] = {}
    for policy in _by_name(policies):
        for check in policy.spec.monitoring:
            have = required.get(check.name)
            required[check.name] = check if have is None else tighten(have, check)
    return required


def checks_for(md: ModelDeployment, policies: Sequence[GovernancePolicy]) -> tuple[MetricCheck, ...]:
    """The checks a model runs: its own (each tightening the policy check of its name, if any), then
    the policy checks it does not name."""
    required = policy_checks(policies)
    own = list(md.spec.monitoring.metrics) if md.spec.monitoring else []
    out = [tighten(required[m.name], m) if m.name in required else m for m in own]
    names = {m.name for m in own}
    out.extend(check for name, check in required.items() if name not in names)
    return tuple(out)


def policy_metrics(policies: Sequence[GovernancePolicy]) -> frozenset[str]:
    """Names of the metrics some selecting policy requires (onInconclusive applies to these)."""
    return frozenset(check.name for p in policies for check in p.spec.monitoring)


def stuck_policy_metrics(
    states: Sequence[MetricState], policies: Sequence[GovernancePolicy]
) -> tuple[MetricState, ...]:
    """Policy metrics Inconclusive at or past their inconclusiveLimit (and not drifted): what
    onInconclusive acts on. A model's own metrics never trigger it."""
    required = policy_metrics(policies)
    return tuple(
        s
        for s in sorted(states, key=lambda s: s.name)
        if s.name in required and s.inconclusive_limit_reached and not s.limit_reached
    )


def inconclusive_message(s: MetricState) -> str:
    """ "psi inconclusive 3 checks in a row (limit 3): the query returned more than one series"."""
    n = s.consecutive_inconclusive
    why = f": {s.message}" if s.message else ""
    return (
        f"{s.name} inconclusive {n} check{'s' if n != 1 else ''} in a row (limit {s.inconclusive_limit}){why}"
    )


DEFAULT_RETENTION = "168h"


def retention_of(policies: Sequence[GovernancePolicy]) -> str:
    """How long a quarantined model's pods are kept after its ModelDeployment is deleted: the
    longest quarantineRetention of the selecting policies (168h when none)."""
    return max(
        (p.spec.quarantine_retention for p in policies),
        key=parse_duration,
        default=DEFAULT_RETENTION,
    )


def interval_of(md: ModelDeployment) -> dt.timedelta:
    if md.spec.monitoring and md.spec.monitoring.interval:
        return max(dt.timedelta(seconds=1), parse_duration(md.spec.monitoring.interval))
    return DEFAULT_INTERVAL


def on_drift(md: ModelDeployment, policies: Sequence[GovernancePolicy] = ()) -> str:
    """The strictest of the model's onDrift (rollback when it sets no monitoring) and every
    selecting policy's onDrift: a model may ask for more than its policies, never for less."""
    own = md.spec.monitoring.on_drift if md.spec.monitoring else "rollback"
    return strictest([own, *(p.spec.on_drift for p in policies if p.spec.on_drift)], "rollback")


def on_inconclusive(policies: Sequence[GovernancePolicy]) -> str:
    """What a policy metric Inconclusive past its inconclusiveLimit calls for: the strictest
    onInconclusive of the selecting policies (alert when none says otherwise)."""
    return strictest((p.spec.on_inconclusive for p in policies), "alert")


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
        state = state_after(previous, check, sample, readings.at)
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
                c.AWAITING_FIRST_CHECK,
                f"{len(checks)} metric(s) configured; no check has run yet",
            ),
            act=False,
        )
    return MonitoringOutcome(tuple(states), summary, metrics, tuple(changed))


def passed(outcome: MonitoringOutcome, checks: Sequence[MetricCheck]) -> bool:
    """The watched revision passed its checks: no checks at all, or every check read and passing."""
    if not checks:
        return True
    return len(outcome.states) == len(checks) and all(s.status == c.METRIC_PASS for s in outcome.states)
