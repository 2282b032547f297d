"""One reconcile task per ModelDeployment: started at its first watch event, stopped when it is
deleted or the operator stops.

Plain asyncio tasks rather than Kopf daemons: a Kopf daemon keeps the object's whole last-seen
body (managedFields included) and a set of per-daemon helpers alive for as long as the object
exists, and at 1,000 models that was the largest part of the operator's memory. A task here holds
only its coroutine; it reads the object from an index (trimmed) each time it is woken.

A stop is graceful: the task finishes the pass it is in (its writes complete and are recorded),
then exits; only a task that does not finish within the timeout is cancelled. A lost leadership
cancels every task at once instead (`cancel_all`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any

from modelgate.runtime.wakeups import Key, Wakeups

Run = Callable[[asyncio.Event, asyncio.Event], Coroutine[Any, Any, None]]
"""A loop body: `run(wake, stopping)` returns once `stopping` is set."""

PASSES = 32
"""Passes that decide at once; the other woken loops wait their turn. A monitoring round can wake
thousands of models at once (every model's first round, or a Prometheus outage that makes every
reading inconclusive): at 10,000 models, thousands of passes ready together filled the event loop's
queue (and held the admission webhooks past their 5 s timeout when they were served by it; they
have a thread of their own since: webhooks/thread.py).

A pass gives its turn back when it starts writing (`Turn.release`): its writes wait for a thread
of the two pools of 16 (act/executors), not for a turn. Held through the writes, the turns all
went to passes waiting on the slowest write: at 10,000 models the API server took 3.2 s per
Service apply (0.1-0.3 s per status patch), and passes ended at 5 per second (bench/monitoring,
2026-12-07): 4,372 new models still had no status after 25 minutes, although the status writes'
threads were idle."""


class Turn:
    """One pass's turn (an async context manager): taken before it reads the indexes and decides,
    given back by `release` when it starts writing, or at the end of the pass."""

    def __init__(self, passes: asyncio.Semaphore) -> None:
        self._passes = passes
        self._held = False

    async def __aenter__(self) -> Turn:
        await self._passes.acquire()
        self._held = True
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._passes.release()


class Loops:
    def __init__(self, wakeups: Wakeups, passes: int = PASSES) -> None:
        self._wakeups = wakeups
        self._tasks: dict[Key, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self.passes = asyncio.Semaphore(passes)
        """Turns to decide (`turn`; runtime/reconcile.py `run_loop`)."""

    def turn(self) -> Turn:
        """A pass's turn to decide: `async with loops.turn() as turn`."""
        return Turn(self.passes)

    def __contains__(self, key: Key) -> bool:
        """Whether a loop runs for `key` and is not stopping."""
        entry = self._tasks.get(key)
        return entry is not None and not entry[1].is_set()

    def start(self, key: Key, run: Run) -> None:
        """Start the loop of `key` unless it runs already. A loop still stopping (its object was
        deleted and one of the same name created) is let finish before the new one begins."""
        if key in self:
            return
        previous = self._tasks.get(key)
        wake, stopping = self._wakeups.register(key), asyncio.Event()
        # A fresh context for the task and its callback: they would otherwise keep the Kopf
        # handler's context variables, and with them the watch event (and its whole body) that
        # started the loop, for the loop's whole life.
        fresh = contextvars.Context()
        task = asyncio.create_task(
            _after(previous[0] if previous else None, run(wake, stopping)),
            name=f"reconcile {key[0]}/{key[1]}",
            context=fresh,
        )
        self._tasks[key] = (task, stopping)
        task.add_done_callback(lambda t: self._finished(key, t), context=fresh)

    def _finished(self, key: Key, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key, (None,))[0] is task:
            del self._tasks[key]
            self._wakeups.unregister(key)

    async def stop(self, key: Key, timeout: float = 10.0) -> None:
        """Let the loop of `key` finish its current pass and exit; cancel it after `timeout`."""
        entry = self._tasks.get(key)
        if entry is None:
            return
        task, stopping = entry
        stopping.set()
        self._wakeups.poke(key)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop_all(self, timeout: float = 10.0) -> None:
        await asyncio.gather(*(self.stop(key, timeout) for key in list(self._tasks)))

    async def cancel_all(self) -> None:
        """Cancel every loop at once, in the middle of its pass: a replica that lost the leadership
        must not finish a pass (runtime/leading.py); its writes would come after it knew."""
        tasks = [task for task, _stopping in self._tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _after(previous: asyncio.Task[None] | None, loop: Coroutine[Any, Any, None]) -> None:
    if previous is not None:
        await asyncio.wait([previous])  # neither raises its error nor swallows our cancellation
    await loop
