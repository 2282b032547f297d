"""Recent decisions to tell again after a restart or a change of leader. Pure: `now` is passed in.

A decision's Event and audit line follow the status write that stores it in history (runtime/
reconcile.py), so an operator killed between the two leaves the decision in history, untold. The
first pass of a reconcile loop in a process (a restarted operator, a new leader) therefore tells
the recent history entries again: their Events are named after their decision ids (act/audit.py),
so the API server refuses one already posted as AlreadyExists, and only a missing Event is posted,
with its audit line. "Recent" bounds the cost of a start: a decision older than RETELL_WINDOW was
told by a process that ran on for that long.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Final

from modelgate.api import conditions as c
from modelgate.decide.types import Decision

RETELL_WINDOW: Final = dt.timedelta(minutes=5)
WARNINGS: Final = frozenset(
    {
        c.ACTION_BLOCKED,
        c.ACTION_SUSPENDED,
        c.ACTION_DRIFT_DETECTED,
        c.ACTION_ROLLED_BACK,
        c.ACTION_QUARANTINED,
        c.ACTION_TAMPER_REVERTED,
        c.ACTION_CHECK_FAILED,
        c.ACTION_CHECK_INCONCLUSIVE,
        c.ACTION_METRICS_INCONCLUSIVE,
        c.ACTION_NOT_OWNED,
        c.ACTION_SERVING_OBJECT_INVALID,
    }
)
"""Actions whose Events are Warnings (as the plan's decisions mark them)."""


def _time(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def recent(
    history: Iterable[Mapping[str, Any]], now: dt.datetime, window: dt.timedelta = RETELL_WINDOW
) -> tuple[Decision, ...]:
    """The history entries with a decision id recorded within `window` before `now`, as decisions."""
    out = []
    for entry in history:
        at = _time(entry.get("time"))
        if not entry.get("decision") or at is None or at.tzinfo is None or now - at > window:
            continue
        action = str(entry.get("action"))
        out.append(
            Decision(
                action=action,
                reason=str(entry.get("reason") or action),
                message=str(entry.get("message") or ""),
                time=str(entry["time"]),
                revision=entry.get("revision"),
                warning=action in WARNINGS,
                id=str(entry["decision"]),
                record=dict(entry) if entry.get("seal") else None,
            )
        )
    return tuple(out)
