"""decide/retell.py: which history entries a new process tells again (their Event posted only if
missing, act/audit.py), and as what."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from modelgate.api import conditions as c
from modelgate.decide.retell import RETELL_WINDOW, WARNINGS, recent

NOW = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.UTC)


def entry(minutes_ago: float, action: str = c.ACTION_ADMITTED, **extra: Any) -> dict[str, Any]:
    at = (NOW - dt.timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    out = {"time": at, "action": action, "reason": "Why", "message": f"{action} then", "decision": "a" * 16}
    return out | extra


@pytest.mark.parametrize(
    ("history", "told"),
    [
        ([], 0),
        ([entry(1)], 1),
        ([entry(0)], 1),
        ([entry(RETELL_WINDOW.total_seconds() / 60)], 1),  # the window's edge is in
        ([entry(RETELL_WINDOW.total_seconds() / 60 + 0.1)], 0),  # older: told by a process that ran on
        ([entry(30), entry(2), entry(1)], 2),
        ([entry(1, decision=None)], 0),  # recorded before decisions had ids: no Event name to check
        ([entry(1, time="yesterday")], 0),
        ([entry(1, time="2026-12-05T07:59:00")], 0),  # no offset: not a time the operator writes
    ],
)
def test_recent_entries_with_an_id_are_told_again(history: list[dict[str, Any]], told: int) -> None:
    assert len(recent(history, NOW)) == told


def test_a_told_entry_keeps_its_id_time_words_and_revision() -> None:
    revision = {"version": "v1", "digest": "sha256:" + "ab" * 32}
    (d,) = recent([entry(1, c.ACTION_ROLLED_BACK, revision=revision)], NOW)
    assert (d.id, d.action, d.reason, d.message) == ("a" * 16, c.ACTION_ROLLED_BACK, "Why", "RolledBack then")
    assert d.time == entry(1)["time"] and d.revision == revision
    assert d.warning


@pytest.mark.parametrize(
    ("action", "warning"),
    [
        (c.ACTION_ADMITTED, False),
        (c.ACTION_RELEASED, False),
        (c.ACTION_CHECK_PASSED, False),
        (c.ACTION_BLOCKED, True),
        (c.ACTION_SUSPENDED, True),
        (c.ACTION_QUARANTINED, True),
        (c.ACTION_CHECK_FAILED, True),
        (c.ACTION_SERVING_OBJECT_INVALID, True),
    ],
)
def test_an_event_told_again_has_the_type_the_plan_gave_it(action: str, warning: bool) -> None:
    (d,) = recent([entry(1, action)], NOW)
    assert d.warning is warning and (action in WARNINGS) is warning
