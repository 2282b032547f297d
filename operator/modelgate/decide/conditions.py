"""metav1.Condition bookkeeping: set a condition, keep lastTransitionTime unless the status flips.

Conditions are plain dicts in the wire shape (type, status, observedGeneration, lastTransitionTime,
reason, message) so that the result compares equal to what the API server returns and a steady
state produces no write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cond:
    """A condition as a decision states it, before timestamps are reconciled with the old ones."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    old: Iterable[Mapping[str, Any]], new: Iterable[Cond], generation: int, now: dt.datetime
) -> list[dict[str, Any]]:
    """The condition list to store: `new` in order, lastTransitionTime kept from `old` unless the
    status changed. Conditions present in `old` but not in `new` are dropped."""
    previous = {str(c.get("type")): c for c in old}
    out: list[dict[str, Any]] = []
    for c in new:
        before = previous.get(c.type)
        keep_time = (
            before is not None and before.get("status") == c.status and before.get("lastTransitionTime")
        )
        out.append(
            {
                "type": c.type,
                "status": c.status,
                "observedGeneration": generation,
                "lastTransitionTime": before["lastTransitionTime"] if keep_time and before else rfc3339(now),
                "reason": c.reason,
                "message": c.message,
            }
        )
    return out
