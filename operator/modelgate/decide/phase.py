"""The conditions and phase of a ModelDeployment, from what a plan decided. Pure.

Ready summarizes the rest (Flux's kstatus convention): True only when the requested revision is
admitted, rolled out, and neither drifted, rolled back, quarantined nor inconclusive. kstatus' own
abnormal-true conditions, Reconciling and Stalled, follow from Ready and the phase alone (`progress`),
so they change only when those do and never cost a status write of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from modelgate.api import conditions as c
from modelgate.decide.conditions import Cond
from modelgate.decide.drift import DriftSummary
from modelgate.decide.gates import Gate
from modelgate.decide.serving import Revision


def short(digest: str) -> str:
    return digest[:19] + "…" if len(digest) > 19 else digest


def describe(rev: Revision) -> str:
    return f"{rev.model} {rev.version} ({short(rev.digest)})"


@dataclass(frozen=True)
class Situation:
    """What the plan decided, in the terms the conditions speak of."""

    requested: Revision
    target: Revision | None
    """The revision the serving objects are built for (None: nothing serves)."""
    admitted: bool
    approved: bool
    evaluated: bool
    gates: tuple[Gate, ...]
    replicas: int
    ready: bool
    """The serving Deployment has rolled out the target with every replica ready."""
    rollout: str
    blocked_message: str
    drift: DriftSummary
    quarantined_since: str | None = None
    rolled_back: str | None = None
    """Message when the requested digest was rolled back after drift."""
    suspended: bool = False
    """The revision that serves, not the requested one, lost its evidence and is scaled to zero."""
    refused: str | None = None
    """The API server refused the serving objects wanted (what it said), so what the other
    conditions promise (a rollout, traffic cut by a quarantine) is not happening."""


APPROVAL_KINDS: Final = ("approval-reference", "approval", "separation", "renewal")
"""The gates the Approved condition speaks of."""
EVALUATION_KINDS: Final = ("evaluation-reference", "evaluation")
"""The gates the Evaluated condition speaks of."""


def _gate_cond(s: Situation, satisfied: bool, ok: Cond, kinds: tuple[str, ...], missing: Cond) -> Cond:
    """`ok` when satisfied; otherwise the failing gates of its own kinds (the first one's reason,
    every message), so that Approved never repeats a missing evaluation nor Evaluated a missing
    approval. `missing` when none of them fails (the plan withheld it, as after a withdrawal in this
    very cycle): still about its own subject, never another condition's gate."""
    if satisfied:
        return ok
    own = [g for g in s.gates if not g.satisfied and g.kind in kinds]
    if not own:
        return missing
    return Cond(missing.type, c.FALSE, own[0].reason, "; ".join(g.message for g in own))


def conditions(s: Situation) -> tuple[list[Cond], str]:
    req = describe(s.requested)
    approved = _gate_cond(
        s,
        s.approved,
        Cond(c.APPROVED, c.TRUE, c.APPROVALS_GRANTED, f"every required approval is present for {req}"),
        APPROVAL_KINDS,
        Cond(c.APPROVED, c.FALSE, c.APPROVAL_MISSING, f"not every required approval counts for {req}"),
    )
    evaluated = _gate_cond(
        s,
        s.evaluated,
        Cond(c.EVALUATED, c.TRUE, c.EVALUATIONS_PASSED, f"every required evaluation passes for {req}"),
        EVALUATION_KINDS,
        Cond(c.EVALUATED, c.FALSE, c.EVALUATION_MISSING, f"not every required evaluation passes for {req}"),
    )
    if s.admitted:
        admitted = Cond(c.ADMITTED, c.TRUE, c.ADMITTED_REASON, f"{req} satisfies every gate")
    else:
        first = next((g for g in s.gates if not g.satisfied), None)
        admitted = Cond(c.ADMITTED, c.FALSE, first.reason if first else c.GATES_FAILED, s.blocked_message)
    ready, phase = _ready(s)
    drifted = s.drift.condition
    if s.quarantined_since:
        drifted = Cond(
            c.DRIFTED, c.TRUE, c.DRIFT_DETECTED, f"drift detected; quarantined since {s.quarantined_since}"
        )
    elif s.rolled_back:
        drifted = Cond(c.DRIFTED, c.TRUE, c.ROLLED_BACK, s.rolled_back)
    quarantined = (
        Cond(
            c.QUARANTINED,
            c.TRUE,
            c.QUARANTINED_REASON,
            f"traffic to {describe(s.target) if s.target else req} is cut since {s.quarantined_since}; "
            "its pods are kept for forensics; it serves again only with a new ModelApproval created after "
            "that time",
        )
        if s.quarantined_since
        else Cond(c.QUARANTINED, c.FALSE, c.NOT_QUARANTINED, "the model is not quarantined")
    )
    return [ready, approved, evaluated, admitted, drifted, quarantined, *progress(ready, phase)], phase


def progress(ready: Cond, phase: str) -> list[Cond]:
    """kstatus' Reconciling or Stalled (or neither), present only while True as kstatus' abnormal-true
    polarity has it. Stalled (kstatus Failed): the requested revision will not serve until someone
    acts (a new approval after a rollback, quarantine or suspension; a spec the API server accepts).
    Reconciling (kstatus InProgress): a rollout, or gates waiting for evidence, the normal way to
    Serving. Neither: Serving, or Degraded while it serves (kstatus reads Ready: Current when True,
    InProgress when monitoring is inconclusive). Both carry Ready's reason and message."""
    stalled = (
        ready.reason == c.SERVING_OBJECT_INVALID
        or phase in (c.PHASE_ROLLED_BACK, c.PHASE_QUARANTINED)
        or (phase == c.PHASE_BLOCKED and ready.reason == c.APPROVAL_REVOKED)
    )
    if stalled:
        return [Cond(c.STALLED, c.TRUE, ready.reason, ready.message)]
    if phase in (c.PHASE_PROGRESSING, c.PHASE_BLOCKED):
        return [Cond(c.RECONCILING, c.TRUE, ready.reason, ready.message)]
    return []


def _ready(s: Situation) -> tuple[Cond, str]:
    target = describe(s.target) if s.target else ""
    if s.refused:
        # First: whatever else is decided, the objects that would carry it out do not exist as wanted.
        return Cond(c.READY, c.FALSE, c.SERVING_OBJECT_INVALID, s.refused), c.PHASE_DEGRADED
    if s.quarantined_since:
        return Cond(
            c.READY, c.FALSE, c.QUARANTINED_REASON, f"{target} is quarantined: no traffic"
        ), c.PHASE_QUARANTINED
    if s.rolled_back:
        return Cond(c.READY, c.FALSE, c.ROLLED_BACK, s.rolled_back), c.PHASE_ROLLED_BACK
    if s.admitted:
        if not s.ready:
            return (
                Cond(c.READY, c.FALSE, c.ROLLOUT_IN_PROGRESS, f"rolling out {target}: {s.rollout}"),
                c.PHASE_PROGRESSING,
            )
        if s.drift.status == c.UNKNOWN:
            return Cond(
                c.READY, c.UNKNOWN, s.drift.condition.reason, s.drift.condition.message
            ), c.PHASE_DEGRADED
        if s.drift.failing or s.drift.status == c.TRUE:
            return (
                Cond(
                    c.READY,
                    c.TRUE,
                    c.SERVING_READY,
                    f"{target} serves ({s.rollout}); {s.drift.condition.message}",
                ),
                c.PHASE_DEGRADED,
            )
        return Cond(c.READY, c.TRUE, c.SERVING_READY, f"{target} serves: {s.rollout}"), c.PHASE_SERVING
    if s.target is not None and s.target == s.requested and s.replicas > 0:
        return (
            Cond(
                c.READY,
                c.TRUE if s.ready else c.FALSE,
                c.APPROVAL_REVOKED,
                f"{target} keeps serving ({s.rollout}) although its evidence no longer satisfies every "
                "gate (policy onRevocation: keep)",
            ),
            c.PHASE_DEGRADED,
        )
    if s.target is not None and (s.target == s.requested or s.suspended):
        return (
            Cond(
                c.READY,
                c.FALSE,
                c.APPROVAL_REVOKED,
                f"{target} is suspended (scaled to zero): {s.blocked_message}",
            ),
            c.PHASE_BLOCKED,
        )
    if s.target is not None:
        return (
            Cond(
                c.READY, c.FALSE, c.NOT_ADMITTED, f"{s.blocked_message}; {target} keeps serving ({s.rollout})"
            ),
            c.PHASE_BLOCKED,
        )
    return Cond(c.READY, c.FALSE, c.NOT_ADMITTED, s.blocked_message), c.PHASE_BLOCKED
