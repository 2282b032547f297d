"""Reconcile passes run a bounded number at once (runtime/loops.py `PASSES`): a monitoring round
that wakes thousands of models must not fill the event loop that also answers the webhooks."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from modelgate.config import OperatorConfig
from modelgate.observe.monitor import Monitor
from modelgate.runtime import reconcile
from modelgate.runtime.loops import Loops
from modelgate.runtime.reconcile import Collaborators
from modelgate.runtime.wakeups import Wakeups
from tests.unit.factories import body_of, model


def test_woken_loops_take_turns_within_the_pass_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    n, limit = 12, 3
    running, most, passes = 0, 0, []
    stops = {f"m{i}": asyncio.Event() for i in range(n)}
    wakes = {name: asyncio.Event() for name in stops}

    async def one_pass(body: dict[str, Any], *_: object) -> dt.datetime | None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        for _ in range(5):  # a pass awaits its writes: others get the loop meanwhile
            await asyncio.sleep(0)
        running -= 1
        name = body["metadata"]["name"]
        passes.append(name)
        stops[name].set()  # one pass each
        wakes[name].set()
        return None

    monkeypatch.setattr(reconcile, "reconcile_once", one_pass)
    wakeups = Wakeups()
    svc = Collaborators(OperatorConfig(), wakeups, Loops(wakeups, passes=limit), Monitor(None, wakeups, dict))
    indexes = {
        "modeldeployments": {("ns", name): [body_of(model(name=name))] for name in stops},
    }

    async def everyone() -> None:
        await asyncio.gather(
            *(reconcile.run_loop(("ns", name), indexes, svc, wakes[name], stops[name]) for name in stops)
        )

    asyncio.run(asyncio.wait_for(everyone(), 10))

    assert sorted(passes) == sorted(stops)
    assert most == limit
