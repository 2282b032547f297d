"""Plan step 6: the status to store, as one write: conditions, phase, known-good revisions and
history. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from modelgate.api import conditions as c
from modelgate.decide import trail
from modelgate.decide.conditions import Cond, merge_conditions
from modelgate.decide.intervene import Intervention, Watching
from modelgate.decide.phase import Situation, conditions
from modelgate.decide.types import Decision, Observed

KNOWN_GOOD_LIMIT: Final = 10


def build_status(
    obs: Observed,
    now: dt.datetime,
    situation: Situation,
    step4: Intervention,
    watching: Watching,
    decisions: Sequence[Decision],
    checks_passed: bool,
    recertification: Cond | None = None,
) -> dict[str, Any]:
    """Step 6: conditions, phase, known-good revisions and history, as one status to store;
    RecertificationDue joins the conditions while a policy sets maxAge (decide/recertification.py)."""
    old = obs.body.get("status") or {}
    generation = int((obs.body.get("metadata") or {}).get("generation") or 0)
    conds, phase = conditions(situation)
    if recertification is not None:
        conds = [*conds, recertification]
    # A digest withdrawn by a rollback or quarantine is no longer known good: it leaves the list
    # (so lastKnownGood names what may serve), and rejoins it only once re-admitted and passing.
    known_good = [dict(g) for g in old.get("knownGood") or [] if g["digest"] not in step4.rejected]
    requested, serving_raw = situation.requested, step4.serving_raw
    if (
        situation.admitted
        and situation.ready
        and serving_raw
        and situation.target == requested
        and situation.quarantined_since is None
        and checks_passed
        and not any(g["digest"] == requested.digest for g in known_good)
    ):
        known_good = [*known_good, dict(serving_raw)][-KNOWN_GOOD_LIMIT:]
    history = [
        *(old.get("history") or []),
        *(dict(d.record or trail.record(d, obs.body, None)) for d in decisions),
    ]
    dropped = int(old.get("historyDropped") or 0) + max(0, len(history) - c.HISTORY_LIMIT)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": merge_conditions(old.get("conditions") or [], conds, generation, now),
        "gates": [
            {"requirement": g.requirement, "satisfied": g.satisfied, "reason": g.reason, "message": g.message}
            for g in situation.gates
        ],
        "history": history[-c.HISTORY_LIMIT :],
    }
    if dropped:
        status["historyDropped"] = dropped
    if serving_raw and situation.target is not None:
        status["servingRevision"] = serving_raw
    if known_good:
        status["knownGood"] = known_good
        status["lastKnownGood"] = known_good[-1]
    if step4.outcome.metrics:
        status["metrics"] = step4.outcome.metrics
    if step4.rejected:
        status["rejectedDigests"] = list(step4.rejected.values())[-50:]
    return status
