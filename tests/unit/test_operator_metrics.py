"""The operator's own metrics that are computed at scrape time (observe/metrics.py)."""

from __future__ import annotations

import asyncio

from modelgate.observe.metrics import _AsyncioTasks


def samples(collector: _AsyncioTasks) -> list[float]:
    return [s.value for family in collector.collect() for s in family.samples]


def test_asyncio_task_gauge_counts_the_unfinished_tasks_of_the_watched_loop() -> None:
    collector = _AsyncioTasks()
    assert samples(collector) == []  # no loop yet: no sample rather than a made-up zero

    async def scenario() -> tuple[list[float], list[float]]:
        collector.watch(asyncio.get_running_loop())
        release = asyncio.Event()
        waiting = [asyncio.create_task(release.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        during = samples(collector)
        release.set()
        await asyncio.gather(*waiting)
        return during, samples(collector)

    during, after = asyncio.run(scenario())

    assert during == [4.0]  # the three waiting tasks and the scenario itself
    assert after == [1.0]
