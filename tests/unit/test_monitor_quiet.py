"""A round in which every check passes again wakes no reconcile pass (observe/monitor.py), and which
rounds count as quiet (decide/monitoring.py `quiet`)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from modelgate.api.v1alpha1 import MetricCheck
from modelgate.decide.drift import Sample
from modelgate.decide.monitoring import Readings, Target, quiet
from modelgate.observe.monitor import Monitor
from modelgate.observe.prometheus import QueryResult, Series
from tests.unit.factories import DIGEST, OTHER_DIGEST, metric

KEY = ("ns", "fraud")
CHECKS = tuple(MetricCheck.model_validate(metric(name, max=0.25)) for name in ("psi", "latency"))


def target(digest: str = DIGEST, checks: tuple[MetricCheck, ...] = CHECKS) -> Target:
    return Target("ns", "fraud", "fraud", "v1", digest, dt.timedelta(seconds=10), checks)


# --- quiet: pure ------------------------------------------------------------------------------------


def test_a_round_is_quiet_only_when_every_check_has_a_passing_reading() -> None:
    both = {"psi": Sample.of(0.1), "latency": Sample.of(0.25)}  # the bound itself passes
    assert quiet(CHECKS, both)
    assert not quiet(CHECKS, {**both, "latency": Sample.of(0.26)}), "a failing check"
    assert not quiet(CHECKS, {"psi": Sample.of(0.1)}), "a check without a reading"
    assert not quiet(CHECKS, {**both, "psi": Sample.failed("empty")}), "an inconclusive reading"
    assert not quiet(CHECKS, {**both, "psi": Sample.of(float("nan"))}), "NaN is inconclusive"
    assert not quiet((), {}), "no checks: nothing passed"


def test_a_minimum_counts_as_well_as_a_maximum() -> None:
    checks = (MetricCheck.model_validate(metric("accuracy", min=0.9, max=None)),)
    assert quiet(checks, {"accuracy": Sample.of(0.95)})
    assert not quiet(checks, {"accuracy": Sample.of(0.85)})


# --- the monitor ------------------------------------------------------------------------------------


class Pokes:
    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def poke(self, key: tuple[str, str]) -> None:
        self.keys.append(key)


class Values:
    """A MetricSource answering every query with one value, settable between rounds."""

    def __init__(self, value: float) -> None:
        self.value = value

    async def query(self, promql: str) -> QueryResult:
        return QueryResult("series", (Series({}, self.value),))


def monitor(value: float = 0.1) -> tuple[Monitor, Values, Pokes]:
    source, pokes = Values(value), Pokes()
    m = Monitor(source, pokes, dict)
    m.watch(KEY, target())
    return m, source, pokes


def round_of(m: Monitor) -> Readings:
    t = m.targets[KEY]
    asyncio.run(m._round(t.interval, {KEY: t}))
    return m.latest[KEY]


def counted(m: Monitor, used: bool = True) -> Readings:
    """What a reconcile pass does with the newest readings: take them, write, say so."""
    readings = m.take(KEY, 0)
    assert readings is not None
    m.counted(KEY, readings, used=used)
    return readings


def test_passing_again_after_a_counted_passing_round_wakes_nothing_but_hands_the_readings_over() -> None:
    m, _, pokes = monitor()
    first = round_of(m)
    assert first.quiet and pokes.keys == [KEY], "the first passing round is counted by a pass"
    counted(m)
    second = round_of(m)
    assert second.quiet and second.seq > first.seq
    assert pokes.keys == [KEY], "the second passing round changes nothing: no pass"
    assert m.take(KEY, first.seq) is second, "a pass that runs anyway takes the newest readings"


@pytest.mark.parametrize("value", [0.9, float("nan")], ids=["failing", "inconclusive"])
def test_a_round_that_is_not_all_passing_always_wakes_the_pass(value: float) -> None:
    m, source, pokes = monitor()
    round_of(m)
    counted(m)
    source.value = value
    drifting = round_of(m)
    assert not drifting.quiet and pokes.keys == [KEY, KEY]
    counted(m)
    source.value = 0.1
    assert round_of(m).quiet and pokes.keys == [KEY, KEY, KEY], "the pass after a failure resets the counters"


def test_until_a_pass_counted_a_passing_round_every_round_wakes_it() -> None:
    m, _, pokes = monitor()
    round_of(m)
    round_of(m)  # the loop has not run yet (or its write failed): nothing is settled
    assert pokes.keys == [KEY, KEY]


def test_readings_a_pass_did_not_use_settle_nothing() -> None:
    """Readings of a revision the pass no longer watches (a rollback in between) count for nothing."""
    m, _, pokes = monitor()
    round_of(m)
    counted(m, used=False)
    round_of(m)
    assert pokes.keys == [KEY, KEY]


def test_another_revision_or_other_checks_wake_the_pass_at_their_first_round() -> None:
    m, _, pokes = monitor()
    round_of(m)
    counted(m)
    m.watch(KEY, target(digest=OTHER_DIGEST))
    round_of(m)
    assert pokes.keys == [KEY, KEY], "a new revision"
    counted(m)
    m.watch(KEY, target(digest=OTHER_DIGEST, checks=CHECKS[:1]))
    round_of(m)
    assert pokes.keys == [KEY, KEY, KEY], "a check fewer"
    counted(m)
    m.watch(KEY, target(digest=OTHER_DIGEST, checks=CHECKS[:1]))  # the same target again
    round_of(m)
    assert pokes.keys == [KEY, KEY, KEY]


def test_a_model_no_longer_watched_is_forgotten() -> None:
    m, _, pokes = monitor()
    round_of(m)
    counted(m)
    m.watch(KEY, None)
    assert KEY not in m.settled
    m.watch(KEY, target())
    round_of(m)
    assert pokes.keys == [KEY, KEY]


def test_a_round_that_arrived_unwoken_while_a_pass_counted_an_older_one_wakes_the_loop() -> None:
    """The pass took a failing round; meanwhile a passing round came, and the model was still
    settled from before, so it woke nothing. The pass, counting the failing one, must wake the loop
    again, or the passing round that resets the counter would wait for the next round."""
    m, source, pokes = monitor()
    round_of(m)
    counted(m)
    source.value = 0.9
    failing = round_of(m)
    taken = m.take(KEY, 0)
    assert taken is failing
    source.value = 0.1
    round_of(m)
    assert pokes.keys == [KEY, KEY], "settled from before: the passing round woke nothing"
    m.counted(KEY, failing, used=True)
    assert pokes.keys == [KEY, KEY, KEY]
