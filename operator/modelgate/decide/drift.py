"""Drift verdicts: one Prometheus reading becomes Pass, Fail or Inconclusive; readings in a row become
counters; the counters of every metric become the Drifted condition and the decision to act.

Three pure steps, no I/O and no clock (the caller passes `now`):

1. `verdict(sample, min, max)`: a finite value inside [min, max] (either bound optional, both
   inclusive) passes; outside fails, with a message naming the value and the threshold it crossed.
   Everything else is *inconclusive*: an empty result, NaN, +/-Inf, more than one series, a PromQL
   error, a timeout, an unreachable Prometheus, an answer that is not the Prometheus API. Missing
   data is never a failure and never a pass.
2. `advance(previous, status, value, now, failure_limit, inconclusive_limit)`: the counters. A Pass
   resets both; a Fail adds one failure and ends an inconclusive run; an Inconclusive adds one to the
   inconclusive run and leaves the failure count alone, so an outage in the middle of a drift neither
   hides it nor makes it worse.
3. `summarize(states)`: Drifted is True as soon as one metric reached its failure limit (and the
   onDrift action should run), Unknown when none did but one reached its inconclusive limit (reason
   MetricsInconclusive: the operator cannot tell; it acts on that only when a policy's
   onInconclusive says so, decide/monitoring.py), False otherwise.

The state is level-based: `limit_reached` stays True while the failure count is at or above the
limit, so a restarted operator that reads the counters back from status.metrics (`from_reading`)
reaches the same decision; making the action itself idempotent is the caller's job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import MetricCheck, MetricReading
from modelgate.decide.conditions import Cond

SampleError = Literal["empty", "multiple-series", "query-error", "timeout", "unreachable", "bad-answer"]
SAMPLE_ERRORS: Final[tuple[SampleError, ...]] = (
    "empty",
    "multiple-series",
    "query-error",
    "timeout",
    "unreachable",
    "bad-answer",
)

# Reasons of one reading (status.metrics[].reason). Fail reasons come from the shared vocabulary.
WITHIN_THRESHOLDS: Final = "WithinThresholds"
NO_DATA: Final = "NoData"
NOT_A_NUMBER: Final = "NotANumber"
INFINITE_VALUE: Final = "InfiniteValue"
MULTIPLE_SERIES: Final = "MultipleSeries"
QUERY_ERROR: Final = "QueryError"
QUERY_TIMEOUT: Final = "QueryTimeout"
PROMETHEUS_UNREACHABLE: Final = "PrometheusUnreachable"
PROMETHEUS_BAD_ANSWER: Final = "PrometheusBadAnswer"
# Reasons of a Drifted=False condition that is not a clean bill of health.
FAILING_BELOW_LIMIT: Final = "FailingBelowLimit"
INCONCLUSIVE_BELOW_LIMIT: Final = "InconclusiveBelowLimit"

_ERROR_REASON: Final[dict[SampleError, tuple[str, str]]] = {
    "empty": (NO_DATA, "the query returned no data"),
    "multiple-series": (MULTIPLE_SERIES, "the query returned more than one series"),
    "query-error": (QUERY_ERROR, "the query failed"),
    "timeout": (QUERY_TIMEOUT, "the query timed out"),
    "unreachable": (PROMETHEUS_UNREACHABLE, "Prometheus is unreachable"),
    "bad-answer": (PROMETHEUS_BAD_ANSWER, "Prometheus gave no usable answer"),
}


@dataclass(frozen=True)
class Sample:
    """The outcome of one query for one metric of one model: a value, or why there is none.

    `query` is the PromQL that produced it, kept for events and the audit log."""

    value: float | None = None
    error: SampleError | None = None
    detail: str = ""
    query: str = ""
    slice: str = ""
    """The slice the value was read on (label=value), when the query groups by slice: the worst one."""

    def __post_init__(self) -> None:
        if (self.value is None) == (self.error is None):
            raise ValueError("a Sample has exactly one of value and error")

    @classmethod
    def of(cls, value: float, query: str = "", slice: str = "") -> Sample:
        return cls(value=float(value), query=query, slice=slice)

    @classmethod
    def failed(cls, error: SampleError, detail: str = "", query: str = "") -> Sample:
        return cls(error=error, detail=detail, query=query)


class Verdict(NamedTuple):
    status: r.MetricStatus
    reason: str
    message: str


def number(v: float) -> str:
    """A short, stable rendering of a reading or threshold: 0.25, 1e-06, 1234.57."""
    return f"{v:.6g}"


def describe_bounds(min: float | None, max: float | None) -> str:
    """ "0.1 <= value <= 0.25", "value <= 0.25", "any value"."""
    if min is not None and max is not None:
        return f"{number(min)} <= value <= {number(max)}"
    if min is not None:
        return f"value >= {number(min)}"
    if max is not None:
        return f"value <= {number(max)}"
    return "any value"


def status_of(sample: Sample, min: float | None, max: float | None) -> r.MetricStatus:
    """`verdict(...).status` without the reason and message: the monitor asks it of every check of
    every model each round (decide/monitoring.py `quiet`)."""
    value = sample.value
    if sample.error is not None or value is None or not math.isfinite(value):
        return r.METRIC_INCONCLUSIVE
    if (min is not None and value < min) or (max is not None and value > max):
        return r.METRIC_FAIL
    return r.METRIC_PASS


def verdict(sample: Sample, min: float | None, max: float | None) -> Verdict:
    """Pass, Fail or Inconclusive for one reading against inclusive bounds (either may be None)."""
    if sample.error is not None:
        reason, text = _ERROR_REASON[sample.error]
        return Verdict(r.METRIC_INCONCLUSIVE, reason, f"{text}: {sample.detail}" if sample.detail else text)
    value = sample.value
    assert value is not None  # guaranteed by Sample.__post_init__
    if math.isnan(value):
        return Verdict(r.METRIC_INCONCLUSIVE, NOT_A_NUMBER, "the query returned NaN")
    if math.isinf(value):
        return Verdict(r.METRIC_INCONCLUSIVE, INFINITE_VALUE, f"the query returned {value:+}")
    on = f" on slice {sample.slice}" if sample.slice else ""
    if min is not None and value < min:
        return Verdict(
            r.METRIC_FAIL,
            r.METRIC_BELOW_MINIMUM,
            f"value {number(value)}{on} is below the minimum {number(min)}",
        )
    if max is not None and value > max:
        return Verdict(
            r.METRIC_FAIL,
            r.METRIC_ABOVE_MAXIMUM,
            f"value {number(value)}{on} is above the maximum {number(max)}",
        )
    worst = f" (worst slice {sample.slice})" if sample.slice else ""
    return Verdict(
        r.METRIC_PASS,
        WITHIN_THRESHOLDS,
        f"value {number(value)}{worst} is within {describe_bounds(min, max)}",
    )


@dataclass(frozen=True)
class MetricState:
    """One metric after its latest reading: the reading, the consecutive counters and the limit flags."""

    name: str
    status: r.MetricStatus
    value: float | None
    """The value read; None when inconclusive (NaN and Inf are kept out of status, JSON has no NaN)."""
    reason: str
    message: str
    consecutive_failures: int
    consecutive_inconclusive: int
    checked_at: datetime
    failure_limit: int
    inconclusive_limit: int
    status_changed: bool = False
    """The status differs from the previous reading's (or this is the first): worth an Event."""

    @property
    def limit_reached(self) -> bool:
        """Failures in a row reached failureLimit: the onDrift action is due."""
        return self.consecutive_failures >= self.failure_limit

    @property
    def inconclusive_limit_reached(self) -> bool:
        """Inconclusive readings in a row reached inconclusiveLimit: Drifted becomes Unknown."""
        return self.consecutive_inconclusive >= self.inconclusive_limit

    def to_reading(self) -> MetricReading:
        """The status.metrics entry for this state."""
        return MetricReading(
            name=self.name,
            value=self.value,
            status=self.status,
            consecutive_failures=self.consecutive_failures,
            consecutive_inconclusive=self.consecutive_inconclusive,
            checked_at=self.checked_at,
            reason=self.reason or None,
            message=self.message[:1024] or None,
        )

    @classmethod
    def from_reading(cls, reading: MetricReading, failure_limit: int, inconclusive_limit: int) -> MetricState:
        """The state stored in status.metrics, with the limits of the current spec (they may have
        changed since the reading was taken)."""
        return cls(
            name=reading.name,
            status=reading.status,
            value=reading.value,
            reason=reading.reason or "",
            message=reading.message or "",
            consecutive_failures=reading.consecutive_failures,
            consecutive_inconclusive=reading.consecutive_inconclusive,
            checked_at=reading.checked_at,
            failure_limit=failure_limit,
            inconclusive_limit=inconclusive_limit,
        )


def advance(
    previous: MetricState | None,
    status: r.MetricStatus,
    value: float | None,
    now: datetime,
    failure_limit: int,
    inconclusive_limit: int,
    *,
    name: str | None = None,
    reason: str = "",
    message: str = "",
) -> MetricState:
    """The state after one more reading. `name` defaults to the previous state's."""
    failures = previous.consecutive_failures if previous else 0
    inconclusive = previous.consecutive_inconclusive if previous else 0
    if status == r.METRIC_PASS:
        failures, inconclusive = 0, 0
    elif status == r.METRIC_FAIL:
        failures, inconclusive = failures + 1, 0
    else:  # missing data says nothing about drift: keep the failure count, count the gap
        inconclusive += 1
    finite = value is not None and math.isfinite(value)
    return MetricState(
        name=name if name is not None else (previous.name if previous else ""),
        status=status,
        value=value if finite and status != r.METRIC_INCONCLUSIVE else None,
        reason=reason,
        message=message,
        consecutive_failures=failures,
        consecutive_inconclusive=inconclusive,
        checked_at=now,
        failure_limit=failure_limit,
        inconclusive_limit=inconclusive_limit,
        status_changed=previous is None or previous.status != status,
    )


def state_after(
    previous: MetricState | None, check: MetricCheck, sample: Sample, now: datetime
) -> MetricState:
    """`verdict` then `advance` for one check of a ModelDeployment: the usual way in."""
    v = verdict(sample, check.min, check.max)
    return advance(
        previous,
        v.status,
        sample.value,
        now,
        check.failure_limit,
        check.inconclusive_limit,
        name=check.name,
        reason=v.reason,
        message=v.message,
    )


@dataclass(frozen=True)
class DriftSummary:
    """The Drifted condition over every metric of a model, and whether onDrift should run."""

    condition: Cond
    act: bool
    """At least one metric reached its failure limit. Never True because data was missing."""
    drifted: tuple[str, ...] = ()
    """Metrics at or past their failure limit."""
    inconclusive: tuple[str, ...] = ()
    """Metrics at or past their inconclusive limit (and not drifted)."""
    failing: tuple[str, ...] = ()
    """Metrics whose last reading failed, below the limit: the model is degraded, not drifted."""

    @property
    def status(self) -> str:
        return self.condition.status


def _checks(n: int) -> str:
    return f"{n} check{'s' if n != 1 else ''}"


def _why(s: MetricState) -> str:
    return f": {s.message}" if s.message else ""


def summarize(states: Iterable[MetricState]) -> DriftSummary:
    """Drifted True (DriftDetected, act), Unknown (MetricsInconclusive, never act) or False."""
    ordered = sorted(states, key=lambda s: s.name)
    if not ordered:
        return DriftSummary(
            Cond(r.DRIFTED, r.FALSE, r.MONITORING_NOT_CONFIGURED, "No monitoring metrics are configured"),
            act=False,
        )
    drifted = [s for s in ordered if s.limit_reached]
    inconclusive = [s for s in ordered if s.inconclusive_limit_reached and not s.limit_reached]
    failing = [s for s in ordered if s.status == r.METRIC_FAIL and not s.limit_reached]
    names = (
        tuple(s.name for s in drifted),
        tuple(s.name for s in inconclusive),
        tuple(s.name for s in failing),
    )
    if drifted:
        message = "; ".join(
            f"{s.name} failed {_checks(s.consecutive_failures)} in a row (limit {s.failure_limit}){_why(s)}"
            for s in drifted
        )
        return DriftSummary(Cond(r.DRIFTED, r.TRUE, r.DRIFT_DETECTED, message), True, *names)
    if inconclusive:
        message = "; ".join(
            f"{s.name} inconclusive {_checks(s.consecutive_inconclusive)} in a row "
            f"(limit {s.inconclusive_limit}){_why(s)}"
            for s in inconclusive
        )
        return DriftSummary(Cond(r.DRIFTED, r.UNKNOWN, r.METRICS_INCONCLUSIVE, message), False, *names)
    if failing:
        message = "; ".join(
            f"{s.name} failed {_checks(s.consecutive_failures)} in a row (limit {s.failure_limit}){_why(s)}"
            for s in failing
        )
        return DriftSummary(Cond(r.DRIFTED, r.FALSE, FAILING_BELOW_LIMIT, message), False, *names)
    gaps = [s for s in ordered if s.status == r.METRIC_INCONCLUSIVE]
    if gaps:
        message = "; ".join(
            f"{s.name} inconclusive {_checks(s.consecutive_inconclusive)} in a row "
            f"(limit {s.inconclusive_limit}){_why(s)}"
            for s in gaps
        )
        return DriftSummary(Cond(r.DRIFTED, r.FALSE, INCONCLUSIVE_BELOW_LIMIT, message), False, *names)
    count = f"{len(ordered)} metric{'s' if len(ordered) != 1 else ''}"
    return DriftSummary(
        Cond(r.DRIFTED, r.FALSE, r.METRICS_WITHIN_THRESHOLDS, f"{count} within thresholds"), False, *names
    )
