"""Leader election decisions (decide/lease.py): when a lease is expired, what a try writes, when a
leader must stop. Expiry is judged on our own clock from when we saw the record change, never from
the holder's renewTime."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from modelgate.act import kube
from modelgate.act.lease import LeaseConflict
from modelgate.decide.lease import Observed, Record, expired, observe, overdue, release, step, taken
from modelgate.runtime.leader import Elector, Timings

WALL = dt.datetime(2026, 12, 4, 18, 0, 0, 123456, tzinfo=dt.UTC)
STAMP = "2026-12-04T18:00:00.123456Z"
HELD = Record(holder="b", duration=15, acquire_time="x", renew_time="r1", transitions=3)


@pytest.mark.parametrize(
    ("since", "now", "duration", "default", "want"),
    [
        (100.0, 114.9, 15, 15.0, False),  # within the duration
        (100.0, 115.0, 15, 15.0, True),  # exactly the duration: expired
        (100.0, 105.1, 5, 15.0, True),  # the lease's own duration wins over the default
        (100.0, 110.0, None, 15.0, False),  # no duration written: the default
        (100.0, 116.0, None, 15.0, True),
    ],
)
def test_a_lease_expires_a_duration_after_its_record_last_changed_on_our_clock(
    since: float, now: float, duration: int | None, default: float, want: bool
) -> None:
    assert expired(Observed(Record(holder="b", duration=duration), since), now, default) is want


def test_an_unchanged_record_keeps_the_time_it_was_first_seen() -> None:
    first = observe(None, HELD, 100.0)
    assert observe(first, HELD, 130.0) == Observed(HELD, 100.0)


def test_a_renewed_record_restarts_the_clock_whatever_time_the_holder_wrote() -> None:
    first = observe(None, HELD, 100.0)
    renewed = Record(holder="b", duration=15, acquire_time="x", renew_time="1999-01-01T00:00:00.000000Z")
    assert observe(first, renewed, 130.0).since == 130.0


def test_no_lease_is_created_held_by_us() -> None:
    s = step("a", None, None, 0.0, WALL, 15.0)
    assert s.action == "create"
    assert s.spec == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "acquireTime": STAMP,
        "renewTime": STAMP,
        "leaseTransitions": 0,
    }


@pytest.mark.parametrize(
    ("record", "seen_since", "now", "action", "transitions", "other"),
    [
        (HELD, 100.0, 110.0, "wait", None, "b"),  # another holder, lease valid: wait
        (HELD, 100.0, 115.0, "update", 4, "b"),  # expired: take over, one more transition
        (HELD, None, 1000.0, "wait", None, "b"),  # never observed before: wait a duration first
        (Record(holder="", duration=1, transitions=3), None, 0.0, "update", 4, None),  # released
        (Record(holder="a", duration=15, acquire_time="t0", transitions=3), 100.0, 200.0, "update", 3, None),
    ],
)
def test_a_try_waits_takes_over_or_renews(
    record: Record,
    seen_since: float | None,
    now: float,
    action: str,
    transitions: int | None,
    other: str | None,
) -> None:
    observed = None if seen_since is None else Observed(record, seen_since)
    s = step("a", record, observed, now, WALL, 15.0)
    assert s.action == action
    assert s.other_holder == other
    if transitions is None:
        assert s.spec is None
    else:
        assert s.spec is not None
        assert s.spec["holderIdentity"] == "a"
        assert s.spec["leaseTransitions"] == transitions
        assert s.spec["renewTime"] == STAMP


def test_a_renew_keeps_the_acquire_time() -> None:
    mine = Record(holder="a", duration=15, acquire_time="t0", renew_time="t1", transitions=2)
    s = step("a", mine, Observed(mine, 0.0), 5.0, WALL, 15.0)
    assert s.spec is not None and s.spec["acquireTime"] == "t0"


def test_a_fractional_duration_is_written_as_whole_seconds_rounded_up() -> None:
    s = step("a", None, None, 0.0, WALL, 2.5)
    assert s.spec is not None and s.spec["leaseDurationSeconds"] == 3


def test_a_release_clears_the_holder_and_keeps_the_transitions() -> None:
    spec = release(Record(holder="a", duration=15, transitions=7), WALL)
    assert spec["holderIdentity"] is None
    assert spec["leaseTransitions"] == 7
    assert spec["leaseDurationSeconds"] == 1


@pytest.mark.parametrize(
    ("record", "want"),
    [
        (Record(holder="a"), None),
        (Record(holder="b"), "the Lease is held by b"),
        (Record(holder=""), "the Lease is held by nobody"),
        (None, "the Lease was deleted"),
    ],
)
def test_a_leader_that_sees_another_holder_has_lost(record: Record | None, want: str | None) -> None:
    assert taken("a", record) == want


@pytest.mark.parametrize(
    ("last", "now", "want"),
    [(100.0, 109.9, False), (100.0, 110.0, True), (100.0, 130.0, True)],
)
def test_a_leader_is_overdue_once_the_renew_deadline_passed_since_its_last_renew(
    last: float, now: float, want: bool
) -> None:
    assert overdue(last, now, 10.0) is want


def test_a_lease_record_is_read_from_a_lease_object() -> None:
    lease = {
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "acquireTime": "t0",
            "renewTime": "t1",
            "leaseTransitions": 2,
        }
    }
    assert Record.of(lease) == Record("a", 15, "t0", "t1", 2)
    assert Record.of({"spec": {}}) == Record()
    assert Record.of(None) is None


# --- the elector's state machine over an in-memory Lease (no API server: its timing and transitions)


class MemoryLease:
    """A Lease store with resourceVersion optimistic concurrency, as the API server keeps one."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.rv = 0
        self.failing = False

    async def get(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
        if self.failing:
            raise OSError("connection refused")
        return None if self.lease is None else copy.deepcopy(self.lease)

    async def write(
        self, namespace: str, name: str, spec: dict[str, Any], resource_version: str | None, timeout: float
    ) -> dict[str, Any]:
        if self.failing:
            raise OSError("connection refused")
        current = None if self.lease is None else self.lease["metadata"]["resourceVersion"]
        if resource_version != current:
            raise LeaseConflict("changed")
        self.put(spec)
        assert self.lease is not None
        return copy.deepcopy(self.lease)

    def put(self, spec: dict[str, Any]) -> None:
        self.rv += 1
        self.lease = {"metadata": {"resourceVersion": str(self.rv)}, "spec": dict(spec)}


@pytest.fixture(autouse=True)
def _no_write_deadline_left_behind() -> Iterator[None]:
    yield
    kube.writes_valid_until(float("inf"))  # the elector moves the process-wide write deadline


FAST = Timings(lease_duration=3.0, renew_deadline=2.0, retry_period=0.1)
"""Short, with room for a loaded machine: a renew every 0.1 s must not miss a 2 s deadline."""


def _elector(identity: str, store: MemoryLease, events: list[str]) -> Elector:
    async def started() -> None:
        events.append(f"{identity} started")

    async def lost(reason: str) -> None:
        events.append(f"{identity} lost: {reason}")

    return Elector(identity, "ns", "modelgate-leader", FAST, started, lost, api=store)


async def _until(what: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not what():
            await asyncio.sleep(0.01)


def test_of_two_electors_one_leads_and_the_other_takes_over_when_it_stops_renewing() -> None:
    async def scenario() -> list[str]:
        store, events = MemoryLease(), []
        a = asyncio.create_task(_elector("a", store, events).run())
        await _until(lambda: events == ["a started"])
        b = asyncio.create_task(_elector("b", store, events).run())
        # a renews (each renew a new resourceVersion): over more than a lease duration of renewals,
        # b must not take over.
        renewals = int(FAST.lease_duration * 1.5 / FAST.retry_period)
        start = store.rv
        await _until(lambda: store.rv >= start + renewals)
        assert events == ["a started"]
        a.cancel()  # a dies without releasing
        await _until(lambda: "b started" in events)
        assert store.lease is not None and store.lease["spec"]["leaseTransitions"] == 1
        b.cancel()
        return events

    assert asyncio.run(scenario()) == ["a started", "b started"]


def test_a_leader_that_sees_another_holder_stops_at_its_next_renew() -> None:
    async def scenario() -> list[str]:
        store, events = MemoryLease(), []
        task = asyncio.create_task(_elector("a", store, events).run())
        await _until(lambda: events == ["a started"])
        store.put({"holderIdentity": "intruder", "leaseDurationSeconds": 15, "leaseTransitions": 9})
        await _until(lambda: len(events) == 2, timeout=FAST.renew_deadline)  # at a renew, not the deadline
        await task
        return events

    assert asyncio.run(scenario()) == ["a started", "a lost: the Lease is held by intruder"]


def test_a_leader_that_cannot_renew_stops_at_its_renew_deadline() -> None:
    async def scenario() -> tuple[list[str], float]:
        store, events = MemoryLease(), []
        task = asyncio.create_task(_elector("a", store, events).run())
        await _until(lambda: events == ["a started"])
        store.failing = True
        started = time.monotonic()
        await task
        return events, time.monotonic() - started

    events, took = asyncio.run(scenario())
    assert events[1] == "a lost: no renew succeeded within the renew deadline (2s)"
    assert took <= FAST.renew_deadline + 1.0


def test_a_released_lease_is_taken_at_the_next_try() -> None:
    async def scenario() -> list[str]:
        store, events = MemoryLease(), []
        a = _elector("a", store, events)
        task_a = asyncio.create_task(a.run())
        await _until(lambda: events == ["a started"])
        task_b = asyncio.create_task(_elector("b", store, events).run())
        task_a.cancel()
        await a.release()
        assert store.lease is not None and store.lease["spec"]["holderIdentity"] is None
        await _until(lambda: "b started" in events, timeout=FAST.lease_duration)  # before any expiry
        task_b.cancel()
        return events

    assert asyncio.run(scenario()) == ["a started", "b started"]
