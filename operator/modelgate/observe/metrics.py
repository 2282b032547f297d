"""The operator's own Prometheus metrics, served on /metrics by `modelgate run`."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

DECISIONS = Counter("modelgate_decisions", "Decisions recorded, by action", ["action"])
RECONCILE_SECONDS = Histogram(
    "modelgate_reconcile_duration_seconds",
    "Duration of one ModelDeployment reconcile",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
)
CHECKS = Counter("modelgate_checks", "Monitoring checks, by verdict", ["verdict"])
QUERY_SECONDS = Histogram("modelgate_prometheus_query_duration_seconds", "Duration of Prometheus queries")
LEADER = Gauge(
    "modelgate_leader",
    "1 while this replica leads (holds the leader election Lease; always 1 without --leader-elect)",
)


class _Phases(Collector):
    """modelgate_models{phase}: how many ModelDeployments are in each phase right now."""

    def __init__(self) -> None:
        self._phase: dict[tuple[str, str], str] = {}

    def observe(self, namespace: str, name: str, phase: object) -> None:
        self._phase[(namespace, name)] = str(phase)

    def forget(self, namespace: str, name: str) -> None:
        self._phase.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("modelgate_models", "ModelDeployments by phase", labels=["phase"])
        for phase, n in sorted(Tally(self._phase.values()).items()):
            g.add_metric([phase], n)
        yield g


PHASE = _Phases()
REGISTRY.register(PHASE)


class _AsyncioTasks(Collector):
    """modelgate_asyncio_tasks: the event loop's unfinished tasks. One reconcile loop per model and
    Kopf's watchers make a count that follows the number of models; one that grows while the models
    stay the same is a leak (bench/soak.py watches it). Read at scrape time, from the metrics
    server's thread: asyncio.all_tasks tolerates a loop that changes its tasks meanwhile."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "modelgate_asyncio_tasks", "Unfinished asyncio tasks of the operator's event loop"
        )
        loop = self._loop
        if loop is not None and not loop.is_closed():
            g.add_metric([], len(asyncio.all_tasks(loop)))
        yield g


ASYNCIO_TASKS = _AsyncioTasks()
REGISTRY.register(ASYNCIO_TASKS)
