"""What a replica does when it loses the leadership (runtime/leading.py): it stops, whatever its
tasks did before."""

from __future__ import annotations

import asyncio
import logging

import pytest

from modelgate.act import kube
from modelgate.config import OperatorConfig
from modelgate.observe.monitor import Monitor
from modelgate.runtime.leading import Leadership
from modelgate.runtime.loops import Loops
from modelgate.runtime.reconcile import Collaborators
from modelgate.runtime.wakeups import Wakeups


def leadership() -> tuple[Leadership, list[str]]:
    wakeups = Wakeups()
    stopped: list[str] = []
    lead = Leadership("a")
    lead.bind(
        Collaborators(OperatorConfig(), wakeups, Loops(wakeups), Monitor(None, wakeups, dict)),
        lambda: stopped.append("stopped"),
    )
    return lead, stopped


async def _fails() -> None:
    raise RuntimeError("the list of evidence failed")


async def _runs() -> None:
    await asyncio.Event().wait()


def test_a_leader_whose_spawned_task_failed_still_stops_everything_when_it_loses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube, "_fenced", [])  # the fence is the process's: this test's only

    async def scenario() -> tuple[list[str], list[asyncio.Task[None]]]:
        lead, stopped = leadership()
        await lead.started()
        await lead.spawn(_fails(), "seal sweep")
        await lead.spawn(_runs(), "another")
        tasks = list(lead._tasks)
        await asyncio.sleep(0)  # the failing one fails
        await lead.lost("the Lease is held by intruder")
        return stopped, tasks

    stopped, tasks = asyncio.run(scenario())
    assert stopped == ["stopped"]
    assert all(t.done() for t in tasks), "every task of the leader has stopped"


def test_a_task_that_fails_is_logged_when_it_fails(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        lead, _ = leadership()
        await lead.spawn(_fails(), "seal sweep")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await lead.stop()

    with caplog.at_level(logging.ERROR, logger="modelgate.leader"):
        asyncio.run(scenario())
    assert "seal sweep failed" in caplog.text
    assert "the list of evidence failed" in caplog.text
