"""The monitor: one task that queries Prometheus for every watched model, in batches.

Reconcile loops declare what they want watched (`watch(key, Target)`): the served revision's model,
version, digest, interval and checks. The monitor groups targets by interval; when a group is due
it runs all their checks as one batch (observe/batch.py: each MetricTemplate once, identical inline
queries once) and hands each model its `Readings`, then wakes its reconcile loop, which decides.

A model whose checks all pass, round after round, is woken once: after its loop has counted a
quiet round (decide/monitoring.py `quiet`: every check passes), the next quiet round changes nothing
in its status, so the monitor hands the readings over without waking the loop (a pass that runs
anyway takes them). At 10,000 models that keeps a round from waking 10,000 passes, and a drifting
model's pass from waiting behind them. Any round that is not quiet wakes the loop.

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

from modelgate.api.conditions import METRIC_PASS
from modelgate.api.v1alpha1 import MetricTemplate
from modelgate.decide.drift import Sample
from modelgate.decide.monitoring import Readings, Target, quiet
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
        self.settled: set[Key] = set()
        """Models whose loop counted a quiet round for their current target (`counted`)."""
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, key: Key, target: Target | None) -> None:
        if target != self.targets.get(key):
            self.settled.discard(key)  # another revision, other checks: its first round wakes it
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

    def counted(self, key: Key, readings: Readings, used: bool) -> None:
        """A pass decided on `readings` and wrote what they changed; `used`: they were taken for
        the revision it watches. Should a newer round have arrived meanwhile without waking the
        loop (it was settled then), wake it now."""
        if used and readings.quiet:
            self.settled.add(key)
        else:
            self.settled.discard(key)
        newer = self.latest.get(key)
        if newer is not None and newer.seq > readings.seq:
            self.wakeups.poke(key)

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
            unchanged = 0
            for model, target in group.items():
                if self.targets.get(model) != target:
                    continue  # the model moved on (new revision, deleted) while we were querying
                got = per_model.get(model, {})
                readings = Readings(seq, at, target.digest, got, quiet(target.checks, got))
                self.latest[model] = readings
                if readings.quiet and model in self.settled:
                    unchanged += 1  # passing again: nothing to write, no pass to wake
                    metrics.CHECKS.labels(verdict=METRIC_PASS).inc(len(target.checks))
                    continue
                self.wakeups.poke(model)
            elapsed = time.monotonic() - started
            metrics.MONITORING_ROUND_SECONDS.observe(elapsed)
            metrics.MONITORING_UNCHANGED.inc(unchanged)
            for _ in range(unchanged):  # decided here, with the round: their status holds it already
                metrics.VERDICT_DELAY_SECONDS.observe(elapsed)
        except Exception:
            log.exception("Monitoring round failed; interval=%s", interval)
        finally:
            self.running.discard(interval)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
