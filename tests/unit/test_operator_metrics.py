"""The operator's own metrics that are computed at scrape time (observe/metrics.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from modelgate.act import kube
from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import MetricCheck
from modelgate.config import OperatorConfig
from modelgate.decide.monitoring import Target
from modelgate.decide.plan import plan
from modelgate.decide.types import Plan
from modelgate.observe.metrics import ModelFacts, _AsyncioTasks, _Models, model_facts
from modelgate.observe.monitor import Monitor
from modelgate.observe.prometheus import QueryResult, Series
from modelgate.runtime import reconcile
from modelgate.runtime.loops import Loops
from modelgate.runtime.reconcile import Collaborators
from modelgate.runtime.wakeups import Wakeups
from tests.unit.factories import (
    DIGEST,
    NOW,
    PASSING,
    Story,
    approval,
    body_of,
    metric,
    model,
    monitoring,
    story_observed,
)


def samples(collector: _AsyncioTasks) -> list[float]:
    return [s.value for family in collector.collect() for s in family.samples]


def test_asyncio_task_gauge_counts_the_unfinished_tasks_of_the_watched_loop() -> None:
    collector = _AsyncioTasks()
    assert samples(collector) == []  # no loop yet: no sample rather than a made-up zero

    async def scenario() -> tuple[list[float], list[float], list[float]]:
        collector.watch(asyncio.get_running_loop())
        release = asyncio.Event()
        waiting = [asyncio.create_task(release.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        stale = samples(collector)  # counted in the loop every PERIOD seconds, not at scrape time
        collector.refresh()
        during = samples(collector)
        release.set()
        await asyncio.gather(*waiting)
        collector.refresh()
        return stale, during, samples(collector)

    stale, during, after = asyncio.run(scenario())

    assert stale == [1.0]
    assert during == [4.0]  # the three waiting tasks and the scenario itself
    assert after == [1.0]


def test_asyncio_task_gauge_is_counted_again_every_period() -> None:
    collector = _AsyncioTasks()
    collector.PERIOD = 0.01

    async def scenario() -> list[float]:
        collector.watch(asyncio.get_running_loop())
        release = asyncio.Event()
        waiting = [asyncio.create_task(release.wait()) for _ in range(2)]
        deadline = asyncio.get_running_loop().time() + 10
        while samples(collector) != [3.0] and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*waiting)
        return samples(collector)

    assert asyncio.run(scenario()) == [3.0]


class _Timer:
    def __init__(self, callback: Any) -> None:
        self.callback, self.cancelled = callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Timers:
    """A loop as _AsyncioTasks uses it (is_closed, call_later), recording each timer."""

    def __init__(self) -> None:
        self.timers: list[_Timer] = []

    def is_closed(self) -> bool:
        return False

    def call_later(self, delay: float, callback: Any) -> _Timer:
        self.timers.append(_Timer(callback))
        return self.timers[-1]


def test_asyncio_task_gauge_watched_twice_counts_on_one_timer() -> None:
    collector = _AsyncioTasks()
    loop = _Timers()
    collector.watch(loop)  # type: ignore[arg-type]
    collector.watch(loop)  # type: ignore[arg-type]
    loop.timers[-1].callback()  # the live timer fires: it schedules the next count

    assert [t.cancelled for t in loop.timers] == [True, False, False]  # the first watch's was cancelled
    assert samples(collector) == [0.0]  # no task runs on this loop


# --- the ModelDeployment gauges, from what a reconcile pass already holds ---------------------------


def exported(collector: _Models) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by metric name: [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in collector.collect():
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def facts_of(p: Plan) -> ModelFacts:
    return model_facts(p.status, p.watch.checks if p.watch else (), p.evidence_expires_at)


def test_a_blocked_model_exports_since_when_it_is_not_admitted_and_its_failing_gates() -> None:
    story = Story.of(model(), approvals=[])
    p = story.run()

    facts = facts_of(p)

    assert p.status["phase"] == c.PHASE_BLOCKED
    assert facts.blocked_since == story.now.timestamp()  # the Admitted condition's lastTransitionTime
    assert facts.gate_failures == {c.APPROVAL_NOT_FOUND: 1, c.APPROVAL_MISSING: 1}
    assert facts.evidence_expires_at is None


def test_blocked_since_stays_at_the_first_block_while_the_reason_changes() -> None:
    story = Story.of(model(), approvals=[])
    first = facts_of(story.run())
    story.change(add=[approval(expires_at=NOW - timedelta(minutes=1))])

    later = facts_of(story.run())

    assert later.gate_failures == {c.APPROVAL_EXPIRED: 1}
    assert first.blocked_since is not None and later.blocked_since == first.blocked_since


def test_an_admitted_model_exports_when_its_counted_approval_expires_and_no_block() -> None:
    expires = NOW + timedelta(days=3)
    story = Story.of(model(monitoring=monitoring()), approvals=[approval(expires_at=expires)])

    p = story.serve_v1()
    facts = facts_of(p)

    assert p.status["phase"] == c.PHASE_SERVING
    assert p.evidence_expires_at == expires
    assert facts.evidence_expires_at == expires.timestamp()
    assert facts.blocked_since is None and facts.gate_failures == {}
    assert facts.readings == (("psi", PASSING),)
    assert facts.thresholds == (("psi", "max", 0.25),)


def test_a_not_admitted_plan_has_no_evidence_expiry_even_when_an_approval_expires_later() -> None:
    later = NOW + timedelta(days=3)
    p = plan(story_observed(model(), approvals=[approval(expires_at=later)], policies=[]), NOW)

    assert p.status["phase"] == c.PHASE_BLOCKED  # no policy selects it
    assert p.evidence_expires_at is None


def test_an_inconclusive_reading_exports_no_value_but_keeps_its_thresholds() -> None:
    status = {
        "phase": c.PHASE_DEGRADED,
        "metrics": [
            {"name": "psi", "status": "Inconclusive", "checkedAt": "2026-12-01T12:00:00Z"},
            {"name": "latency", "value": 0.3, "status": "Pass", "checkedAt": "2026-12-01T12:00:00Z"},
        ],
    }
    checks = [MetricCheck.model_validate(metric("psi", min=0.0, max=0.2))]

    facts = model_facts(status, checks, None)

    assert facts.readings == (("latency", 0.3),)
    assert facts.thresholds == (("psi", "min", 0.0), ("psi", "max", 0.2))


def test_the_collector_exports_each_model_with_its_labels_and_forgets_a_retired_one() -> None:
    models = _Models()
    models.observe("ns", "a", ModelFacts(c.PHASE_BLOCKED, blocked_since=100.0, gate_failures={"X": 2}))
    models.observe(
        "ns", "b", ModelFacts(c.PHASE_SERVING, evidence_expires_at=200.0, readings=(("psi", 0.1),))
    )
    models.observe("other", "c", ModelFacts(c.PHASE_SERVING, thresholds=(("psi", "max", 0.25),)))

    out = exported(models)

    assert out["modelgate_models"] == [({"phase": "Blocked"}, 1), ({"phase": "Serving"}, 2)]
    assert ({"namespace": "ns", "name": "a", "phase": "Blocked"}, 1) in out["modelgate_model_phase"]
    assert out["modelgate_model_blocked_since_timestamp_seconds"] == [
        ({"namespace": "ns", "name": "a"}, 100.0)
    ]
    assert out["modelgate_model_gate_failures"] == [({"namespace": "ns", "name": "a", "reason": "X"}, 2)]
    assert out["modelgate_model_evidence_expiry_timestamp_seconds"] == [
        ({"namespace": "ns", "name": "b"}, 200.0)
    ]
    assert out["modelgate_model_metric_value"] == [({"namespace": "ns", "name": "b", "metric": "psi"}, 0.1)]
    assert out["modelgate_model_metric_threshold"] == [
        ({"namespace": "other", "name": "c", "metric": "psi", "bound": "max"}, 0.25)
    ]

    models.forget("ns", "a")

    after = exported(models)
    assert after["modelgate_models"] == [({"phase": "Serving"}, 2)]
    assert "modelgate_model_blocked_since_timestamp_seconds" not in after
    assert len(after["modelgate_model_phase"]) == 2


# --- the counters the alerts read ---------------------------------------------------------------------


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class AnswersByQuery:
    """A MetricSource whose answer depends on the query: `psi` answers, `latency` times out."""

    async def query(self, promql: str) -> QueryResult:
        if promql.startswith("psi"):
            return QueryResult("series", (Series({}, 0.1),))
        return QueryResult("timeout", error="timed out after 5s")


def test_each_prometheus_query_is_counted_by_its_result() -> None:
    checks = tuple(MetricCheck.model_validate(metric(name)) for name in ("psi", "latency"))
    target = Target("ns", "fraud", "fraud", "v1", DIGEST, dt.timedelta(seconds=30), checks)
    monitor = Monitor(AnswersByQuery(), Wakeups(), dict)
    monitor.watch(("ns", "fraud"), target)
    before = {r: counted("modelgate_prometheus_queries_total", result=r) for r in ("ok", "timeout")}

    asyncio.run(monitor._round(target.interval, {("ns", "fraud"): target}))

    assert counted("modelgate_prometheus_queries_total", result="ok") == before["ok"] + 1
    assert counted("modelgate_prometheus_queries_total", result="timeout") == before["timeout"] + 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RuntimeError("the API server answered 500"), "failed"),
        (kube.Conflict("the object has been modified"), "conflict"),
    ],
)
def test_a_reconcile_pass_that_raises_is_counted_by_kind(
    monkeypatch: pytest.MonkeyPatch, error: Exception, kind: str
) -> None:
    wake, stopping = asyncio.Event(), asyncio.Event()

    async def failing(*_: object) -> None:
        stopping.set()  # one pass only
        wake.set()
        raise error

    monkeypatch.setattr(reconcile, "reconcile_once", failing)
    wakeups = Wakeups()
    svc = Collaborators(OperatorConfig(), wakeups, Loops(wakeups), Monitor(None, wakeups, dict))
    indexes = {"modeldeployments": {("ns", "fraud"): [body_of(model())]}}
    before = counted("modelgate_reconcile_errors_total", error=kind)

    asyncio.run(reconcile.run_loop(("ns", "fraud"), indexes, svc, wake, stopping))

    assert counted("modelgate_reconcile_errors_total", error=kind) == before + 1
