"""The operator's own Prometheus metrics, served on /metrics by `modelgate run`."""

from __future__ import annotations

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
