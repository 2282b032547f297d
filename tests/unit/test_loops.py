"""The per-model reconcile tasks: one per key, stopped gracefully, never two at once for one key."""

from __future__ import annotations

import asyncio
import contextvars

from modelgate.runtime.loops import Loops, Run
from modelgate.runtime.wakeups import Wakeups

KEY = ("ns", "fraud-detector")


def _loop_recording(passes: list[str], tag: str, pass_seconds: float = 0.0) -> Run:
    async def run(wake: asyncio.Event, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            wake.clear()
            passes.append(f"{tag} start")
            await asyncio.sleep(pass_seconds)
            passes.append(f"{tag} end")
            await wake.wait()

    return run


def test_a_key_runs_one_loop_however_often_it_is_started() -> None:
    async def scenario() -> list[str]:
        loops, passes = Loops(Wakeups()), list[str]()
        loops.start(KEY, _loop_recording(passes, "a"))
        loops.start(KEY, _loop_recording(passes, "b"))
        await asyncio.sleep(0.01)
        await loops.stop(KEY)
        return passes

    assert asyncio.run(scenario()) == ["a start", "a end"]


def test_a_poke_runs_another_pass() -> None:
    async def scenario() -> list[str]:
        wakeups = Wakeups()
        loops, passes = Loops(wakeups), list[str]()
        loops.start(KEY, _loop_recording(passes, "a"))
        await asyncio.sleep(0.01)
        wakeups.poke(KEY)
        await asyncio.sleep(0.01)
        await loops.stop(KEY)
        return passes

    assert asyncio.run(scenario()) == ["a start", "a end", "a start", "a end"]


def test_stop_lets_the_pass_in_flight_finish_and_forgets_the_key() -> None:
    async def scenario() -> tuple[list[str], bool]:
        wakeups = Wakeups()
        loops, passes = Loops(wakeups), list[str]()
        loops.start(KEY, _loop_recording(passes, "a", pass_seconds=0.05))
        await asyncio.sleep(0.01)
        await loops.stop(KEY)
        return passes, KEY in loops

    assert asyncio.run(scenario()) == (["a start", "a end"], False)


def test_a_loop_that_does_not_finish_in_time_is_cancelled() -> None:
    async def scenario() -> tuple[list[str], bool]:
        loops, passes = Loops(Wakeups()), list[str]()
        loops.start(KEY, _loop_recording(passes, "a", pass_seconds=60))
        await asyncio.sleep(0.01)
        await loops.stop(KEY, timeout=0.05)
        return passes, KEY in loops

    assert asyncio.run(scenario()) == (["a start"], False)


def test_a_key_whose_loop_is_stopping_counts_as_not_running() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        loops = Loops(Wakeups())
        loops.start(KEY, _loop_recording([], "a", pass_seconds=0.05))
        await asyncio.sleep(0.01)
        running = KEY in loops
        stopping = asyncio.create_task(loops.stop(KEY))
        await asyncio.sleep(0)
        while_stopping = KEY in loops
        await stopping
        return running, while_stopping, KEY in loops

    assert asyncio.run(scenario()) == (True, False, False)


def test_a_new_loop_for_a_key_still_stopping_begins_after_the_old_one_ends() -> None:
    async def scenario() -> list[str]:
        loops, passes = Loops(Wakeups()), list[str]()
        loops.start(KEY, _loop_recording(passes, "old", pass_seconds=0.05))
        await asyncio.sleep(0.01)
        stopping = asyncio.create_task(loops.stop(KEY))
        await asyncio.sleep(0)
        loops.start(KEY, _loop_recording(passes, "new"))
        await stopping
        await asyncio.sleep(0.01)
        await loops.stop(KEY)
        return passes

    assert asyncio.run(scenario()) == ["old start", "old end", "new start", "new end"]


def test_a_loop_keeps_nothing_of_the_context_that_started_it() -> None:
    handler_var: contextvars.ContextVar[str] = contextvars.ContextVar("handler_var")

    async def scenario() -> list[str]:
        loops, seen = Loops(Wakeups()), list[str]()

        async def run(wake: asyncio.Event, stopping: asyncio.Event) -> None:
            seen.append(handler_var.get("unset"))
            await stopping.wait()

        handler_var.set("the watch event that started the loop")
        loops.start(KEY, run)
        await asyncio.sleep(0.01)
        await loops.stop(KEY)
        return seen

    assert asyncio.run(scenario()) == ["unset"]
