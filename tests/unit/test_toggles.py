"""Kopf's start-up readiness set, counted: the same answers as Kopf's ToggleSet, its waiters woken
once per change of the set's state rather than once per object (runtime/toggles.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import pytest
from kopf._cogs.aiokits import aiotoggles

from modelgate.runtime import toggles
from modelgate.runtime.toggles import CountingToggleSet

KOPF_SET = aiotoggles.ToggleSet  # Kopf's own, as imported (before any install())


def test_all_is_on_when_empty_and_off_while_any_member_is_off() -> None:
    async def scenario() -> list[bool]:
        s = CountingToggleSet(all)
        seen = [s.is_on()]
        a = await s.make_toggle(name="a")
        b = await s.make_toggle(True, name="b")
        seen.append(s.is_on())
        await a.turn_to(True)
        seen.append(s.is_on())
        await b.turn_to(False)
        seen.append(s.is_on())
        await s.drop_toggle(b)
        seen.append(s.is_on())
        return seen

    assert asyncio.run(scenario()) == [True, False, True, False, True]


def test_any_is_off_when_empty_and_on_while_any_member_is_on() -> None:
    async def scenario() -> list[bool]:
        s = CountingToggleSet(any)
        seen = [s.is_on()]
        a = await s.make_toggle(name="a")
        seen.append(s.is_on())
        await a.turn_to(True)
        seen.append(s.is_on())
        b = await s.make_toggle(True, name="b")
        await s.drop_toggles([a])
        seen.append(s.is_on())
        await b.turn_to(False)
        seen.append(s.is_on())
        return seen

    assert asyncio.run(scenario()) == [False, False, True, True, False]


def test_a_dropped_toggle_that_turns_later_no_longer_counts() -> None:
    async def scenario() -> tuple[bool, bool]:
        s = CountingToggleSet(all)
        a = await s.make_toggle(True, name="a")
        await s.drop_toggle(a)
        await a.turn_to(False)
        await s.drop_toggle(a)  # twice: nothing more to uncount
        return s.is_on(), a.is_on()

    assert asyncio.run(scenario()) == (True, False)


def test_a_members_own_waiter_wakes_when_it_turns() -> None:
    async def scenario() -> bool:
        s = CountingToggleSet(any)
        a = await s.make_toggle(name="a")
        waiting = asyncio.create_task(a.wait_for(True))
        await asyncio.sleep(0)
        await a.turn_to(True)
        await asyncio.wait_for(waiting, 5)
        return s.is_on()

    assert asyncio.run(scenario()) is True


def test_only_all_and_any_are_counted() -> None:
    with pytest.raises(ValueError, match="all\\(\\) or any\\(\\)"):
        CountingToggleSet(lambda states: sum(states) > 1)


def _checks_until_ready(
    make: Callable[[Callable[[Iterable[bool]], bool]], aiotoggles.ToggleSet], n: int
) -> tuple[int, int]:
    """Kopf's start-up protocol over n objects: a toggle each (off), then each object indexed in
    turn (its toggle dropped) while the objects already indexed wait for the whole set. Returns how
    often the set's state was computed and how many waiters got through."""
    checks = 0

    def counted(states: Iterable[bool]) -> bool:
        nonlocal checks
        checks += 1
        return all(states)

    async def scenario() -> int:
        s = make(all)
        s._fn = counted  # the same function, counted
        made = [await s.make_toggle(name=str(i)) for i in range(n)]
        waiters = []
        for t in made:
            await s.drop_toggle(t)
            waiters.append(asyncio.create_task(s.wait_for(True)))
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*waiters), 30)
        return len(waiters)

    through = asyncio.run(scenario())
    return checks, through


def test_start_up_readiness_costs_a_few_checks_per_object_not_one_per_pair() -> None:
    n = 300
    counted_checks, counted_through = _checks_until_ready(CountingToggleSet, n)
    kopf_checks, kopf_through = _checks_until_ready(KOPF_SET, n)
    assert counted_through == kopf_through == n
    assert counted_checks <= 8 * n
    assert kopf_checks >= n * n // 4  # what the counting set saves: Kopf's own wakes every waiter


def test_install_makes_kopf_create_counting_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiotoggles, "ToggleSet", aiotoggles.ToggleSet)  # restored after the test
    toggles.install()
    from kopf._core.reactor import orchestration

    assert orchestration.aiotoggles.ToggleSet is CountingToggleSet
