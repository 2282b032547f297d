"""Decision ids: each decision is recorded once, even when the write that records it is retried.

A reconcile records its decisions in four places: an Event, a JSON audit line, a ModelRecord entry
(interventions) and a status history entry. The status write comes last; when it fails, or the
operator is killed before it, the next pass decides again from the same stored status and takes
the same decisions at a later `now`. Named by time, they would be recorded a second time.

A decision's id is therefore derived from what the retried pass sees unchanged: the object's uid,
the newest history entry already stored (the anchor: every recorded decision moves it), the
decision's place in the plan, its action and the digest it concerns. Not from its time or message
(the message of a drift decision quotes the latest reading). The Event is named after the id, the
record merges entries by it, and the audit line carries it. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from modelgate.decide.types import Decision


def decision_id(*parts: object) -> str:
    """16 hex digits of the SHA-256 of `parts` (a DecisionId)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def anchor(history: Sequence[Mapping[str, Any]]) -> str:
    """What identifies the stored history: its newest entry (its id, or time and action)."""
    if not history:
        return ""
    last = history[-1]
    return str(last.get("decision") or f"{last.get('time')}/{last.get('action')}")


def identify(
    decisions: Iterable[Decision], uid: str, history: Sequence[Mapping[str, Any]]
) -> tuple[Decision, ...]:
    """The plan's decisions with their ids (see the module docstring)."""
    base = anchor(history)
    return tuple(
        replace(d, id=decision_id(uid, base, i, d.action, (d.revision or {}).get("digest", "")))
        for i, d in enumerate(decisions)
    )
