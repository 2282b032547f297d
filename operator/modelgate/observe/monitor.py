"""The monitor: one task that queries Prometheus for every watched model, in batches.

Reconcile loops declare what they want watched (`watch(key, Target)`): the served revision's model,
version, digest, interval and checks. The monitor groups targets by interval; when a group is due
it runs all their checks as one batch (observe/batch.py: each MetricTemplate once, identical inline
queries once) and hands each model its `Readings`, then wakes its reconcile loop, which decides.
The monitor itself decides nothing.

Without a Prometheus URL every check is read as unreachable: inconclusive, never a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Protocol

from modelgate.api.v1alpha1 import MetricTemplate
from modelgate.decide.drift import Sample
from modelgate.decide.monitoring import Readings, Target
from modelgate.observe import metrics
from modelgate.observe.batch import CheckRequest, run_checks
from modelgate.observe.prometheus import MetricSource

log = logging.getLogger("modelgate.monitor")
TICK = 0.5
Key = tuple[str, str]
"""(namespace, name) of a ModelDeployment."""


class Wakeups(Protocol):
    """What the monitor needs of the wake-ups (runtime/wakeups.py): wake a model's loop."""

    def poke(self, key: Key) -> None: ...


class Monitor:
    def __init__(
        self,
        source: MetricSource | None,
        wakeups: Wakeups,
        templates: Callable[[], Mapping[str, MetricTemplate]],
    ) -> None:
        self.source = source
        self.wakeups = wakeups
        self.templates = templates
        self.targets: dict[Key, Target] = {}
        self.latest: dict[Key, Readings] = {}
        self.next_due: dict[dt.timedelta, float] = {}
        self.running: set[dt.timedelta] = set()
        self.seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, key: Key, target: Target | None) -> None:
        if target is None:
            self.targets.pop(key, None)
            self.latest.pop(key, None)
            return
        self.targets[key] = target
        self.next_due.setdefault(target.interval, time.monotonic() + target.interval.total_seconds())

    def take(self, key: Key, after: int) -> Readings | None:
        """The newest readings for `key` with a sequence number above `after`, if any."""
        readings = self.latest.get(key)
        return readings if readings is not None and readings.seq > after else None

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            for interval, due in list(self.next_due.items()):
                if due <= now and interval not in self.running:
                    self.next_due[interval] = now + interval.total_seconds()
                    group = {k: t for k, t in self.targets.items() if t.interval == interval}
                    if not group:
                        del self.next_due[interval]
                        continue
                    self.running.add(interval)
                    task = asyncio.create_task(self._round(interval, group))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(TICK)

    async def _round(self, interval: dt.timedelta, group: Mapping[Key, Target]) -> None:
        try:
            requests = [
                CheckRequest(t.namespace, t.deployment, t.model, t.version, check)
                for t in group.values()
                for check in t.checks
            ]
            at = dt.datetime.now(dt.UTC)
            started = time.monotonic()
            if self.source is None:
                samples = {
                    r.key: Sample.failed("unreachable", "no Prometheus URL is configured (--prometheus-url)")
                    for r in requests
                }
            else:
                result = await run_checks(self.source, self.templates(), requests)
                samples = result.samples
                for r in result.results.values():
                    metrics.QUERY_SECONDS.observe(r.elapsed)
                    metrics.QUERIES.labels(result="ok" if r.ok else r.kind).inc()
            per_model: dict[Key, dict[str, Sample]] = defaultdict(dict)
            for check, sample in samples.items():
                per_model[(check.namespace, check.deployment)][check.metric] = sample
            seq = next(self.seq)
            for model, target in group.items():
                if self.targets.get(model) != target:
                    continue  # the model moved on (new revision, deleted) while we were querying
                self.latest[model] = Readings(seq, at, target.digest, per_model.get(model, {}))
                self.wakeups.poke(model)
            metrics.MONITORING_ROUND_SECONDS.observe(time.monotonic() - started)
        except Exception:
            log.exception("Monitoring round failed; interval=%s", interval)
        finally:
            self.running.discard(interval)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
