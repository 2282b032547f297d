"""The operator's own Prometheus metrics, served on /metrics by `modelgate run`."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from modelgate.api.conditions import ADMITTED, FALSE, PHASE_BLOCKED
from modelgate.api.v1alpha1 import MetricCheck

DECISIONS = Counter("modelgate_decisions", "Decisions recorded, by action", ["action"])
RECONCILE_SECONDS = Histogram(
    "modelgate_reconcile_duration_seconds",
    "Duration of one ModelDeployment reconcile",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
)
CHECKS = Counter("modelgate_checks", "Monitoring checks, by verdict", ["verdict"])
QUERY_SECONDS = Histogram("modelgate_prometheus_query_duration_seconds", "Duration of Prometheus queries")
MONITORING_ROUND_SECONDS = Histogram(
    "modelgate_monitoring_round_duration_seconds",
    "One monitoring round: every query of one interval's checks and the readings handed to the models",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MONITORING_UNCHANGED = Counter(
    "modelgate_monitoring_unchanged",
    "Readings handed to a model without waking its reconcile pass: every check passed again, so they "
    "change nothing its status holds (observe/monitor.py)",
)
VERDICT_DELAY_BUCKETS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300)
VERDICT_DELAY_SECONDS = Histogram(
    "modelgate_monitoring_verdict_delay_seconds",
    "From the start of a monitoring round to the reconcile pass that decided on its readings, per model",
    buckets=VERDICT_DELAY_BUCKETS,
)
WEBHOOK_SECONDS = Histogram(
    "modelgate_webhook_duration_seconds",
    "One admission review, from its body read to its answer, by webhook (the API server gives up at 5 s)",
    ["webhook"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LEADER = Gauge(
    "modelgate_leader",
    "1 while this replica leads (holds the leader election Lease; always 1 without --leader-elect)",
)


QUERIES = Counter(
    "modelgate_prometheus_queries",
    "Prometheus queries made by the monitor, by result: ok, query-error, timeout, unreachable or bad-answer",
    ["result"],
)
POLICY_REPORT_WRITES = Counter(
    "modelgate_policyreport_writes",
    "PolicyReport writes (runtime/policyreports.py), by verb: apply (a report written whole) or delete",
    ["verb"],
)
RECONCILE_ERRORS = Counter(
    "modelgate_reconcile_errors",
    "Reconcile passes that ended in an error, by kind: conflict (a write raced another), refused "
    "(the API server refused a serving object), invalid (the object could not be parsed), failed "
    "(anything else; the operator log has the traceback)",
    ["error"],
)
for _result in ("ok", "query-error", "timeout", "unreachable", "bad-answer"):
    QUERIES.labels(result=_result)  # a zero from the start: rate() and alerts see the series
for _error in ("conflict", "refused", "invalid", "failed"):
    RECONCILE_ERRORS.labels(error=_error)


@dataclass(frozen=True)
class ModelFacts:
    """What the operator exports about one ModelDeployment, from the status its last pass stored."""

    phase: str
    blocked_since: float | None = None
    """Unix time the model stopped being admitted (the Admitted condition's last flip), while Blocked."""
    gate_failures: Mapping[str, int] = field(default_factory=dict)
    """Unsatisfied gates by reason."""
    evidence_expires_at: float | None = None
    """Unix time the admitted revision's evidence next expires or goes stale."""
    readings: tuple[tuple[str, float], ...] = ()
    """(metric, value) of the last conclusive reading of each monitoring check."""
    thresholds: tuple[tuple[str, str, float], ...] = ()
    """(metric, bound: min or max, value) of each check that serving traffic is held to."""


def model_facts(
    status: Mapping[str, Any], checks: Iterable[MetricCheck], evidence_expires_at: dt.datetime | None
) -> ModelFacts:
    """The exported facts of a model, from a plan's status, the checks it monitors and when its
    evidence expires: nothing that needs another API request."""
    phase = str(status.get("phase"))
    admitted = next((c for c in status.get("conditions") or [] if c.get("type") == ADMITTED), None)
    since = None
    if phase == PHASE_BLOCKED and admitted and admitted.get("status") == FALSE:
        since = _unix(admitted.get("lastTransitionTime"))
    gates = status.get("gates") or []
    return ModelFacts(
        phase=phase,
        blocked_since=since,
        gate_failures=dict(Tally(str(g.get("reason")) for g in gates if not g.get("satisfied"))),
        evidence_expires_at=evidence_expires_at.timestamp() if evidence_expires_at else None,
        readings=tuple(
            (str(m["name"]), float(m["value"]))
            for m in status.get("metrics") or []
            if isinstance(m.get("value"), int | float)
        ),
        thresholds=tuple(
            (check.name, bound, value)
            for check in checks
            for bound, value in (("min", check.min), ("max", check.max))
            if value is not None
        ),
    )


def _unix(text: object) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() if text else None
    except ValueError:
        return None


class _Models(Collector):
    """The ModelDeployments this replica reconciles, as gauges computed at scrape time from the facts
    each reconcile pass left (only the leader reconciles: the other replicas export none).

    modelgate_models{phase} counts them; the per-model series carry namespace and name, for alerts
    that say which model (kube-state-metrics' style: one series per object, value 1 for its phase)."""

    def __init__(self) -> None:
        self._facts: dict[tuple[str, str], ModelFacts] = {}

    def observe(self, namespace: str, name: str, facts: ModelFacts) -> None:
        self._facts[(namespace, name)] = facts

    def forget(self, namespace: str, name: str) -> None:
        self._facts.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        facts = sorted(dict(self._facts).items())  # a copy: reconcile passes write meanwhile
        models = GaugeMetricFamily("modelgate_models", "ModelDeployments by phase", labels=["phase"])
        for in_phase, n in sorted(Tally(f.phase for _, f in facts).items()):
            models.add_metric([in_phase], n)
        yield models
        families = {
            key: GaugeMetricFamily(name, doc, labels=["namespace", "name", *labels])
            for key, (name, doc, labels) in PER_MODEL.items()
        }
        for (ns, name), f in facts:
            for key, labels, value in _per_model(f):
                families[key].add_metric([ns, name, *labels], value)
        yield from families.values()


PER_MODEL: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "phase": ("modelgate_model_phase", "1 for the phase each ModelDeployment is in", ("phase",)),
    "blocked": (
        "modelgate_model_blocked_since_timestamp_seconds",
        "While a ModelDeployment is Blocked: the Unix time it stopped being admitted",
        (),
    ),
    "gates": (
        "modelgate_model_gate_failures",
        "Unsatisfied admission gates of each ModelDeployment, by reason",
        ("reason",),
    ),
    "expiry": (
        "modelgate_model_evidence_expiry_timestamp_seconds",
        "The Unix time an admitted ModelDeployment's evidence next expires (an approval's expiresAt, an "
        "evaluation's maxAge); absent when none expires",
        (),
    ),
    "readings": (
        "modelgate_model_metric_value",
        "The last conclusive reading of each monitoring check of a ModelDeployment",
        ("metric",),
    ),
    "thresholds": (
        "modelgate_model_metric_threshold",
        "The thresholds (bound: min or max) each monitoring check of a serving ModelDeployment is held to",
        ("metric", "bound"),
    ),
}
"""The per-model gauges: key -> (name, help, labels after namespace and name)."""


def _per_model(f: ModelFacts) -> Iterator[tuple[str, list[str], float]]:
    """(PER_MODEL key, label values after namespace and name, value) of each sample of one model."""
    yield "phase", [f.phase], 1
    if f.blocked_since is not None:
        yield "blocked", [], f.blocked_since
    for reason, n in sorted(f.gate_failures.items()):
        yield "gates", [reason], n
    if f.evidence_expires_at is not None:
        yield "expiry", [], f.evidence_expires_at
    for metric, value in f.readings:
        yield "readings", [metric], value
    for metric, bound, threshold in f.thresholds:
        yield "thresholds", [metric, bound], threshold


MODELS = _Models()
REGISTRY.register(MODELS)


class _AsyncioTasks(Collector):
    """modelgate_asyncio_tasks: the event loop's unfinished tasks. One reconcile loop per model and
    Kopf's watchers make a count that follows the number of models; one that grows while the models
    stay the same is a leak (bench/soak.py watches it). Counted in the loop itself every few
    seconds, not at scrape time from the metrics server's thread: there, asyncio.all_tasks copies
    the task set while the loop changes it, retries, and after 1,000 tries gives up; a cold start
    over 10,000 models (tens of thousands of tasks started) made every scrape time out that way."""

    PERIOD = 5.0

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count `loop`'s tasks from now on, every PERIOD seconds; called from within the running
        loop. Watching another loop (or the same one again) replaces the earlier count's timer."""
        if self._timer is not None:
            self._timer.cancel()
        self._loop = loop
        self._tick()

    def refresh(self) -> None:
        """Count now (in the loop's thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            self._count = len(asyncio.all_tasks(loop))

    def _tick(self) -> None:
        self.refresh()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            self._timer = loop.call_later(self.PERIOD, self._tick)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "modelgate_asyncio_tasks", "Unfinished asyncio tasks of the operator's event loop"
        )
        if self._loop is not None:
            g.add_metric([], self._count)
        yield g


ASYNCIO_TASKS = _AsyncioTasks()
REGISTRY.register(ASYNCIO_TASKS)
