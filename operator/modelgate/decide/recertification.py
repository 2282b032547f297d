"""Recertification: when the approvals a model serves on lapse under a policy's maxAge, and when
to warn. Pure: `now` is passed in.

A policy's approval requirement with `maxAge` is met only by approvals younger than that (counted
from their creationTimestamp, decide/approvals.py). For each such requirement the schedule holds the
approvals that count for it, or would but for their age, one per approver (`standing`), each with
the instant it lapses. The requirement itself lapses when fewer than `count` of them remain: at the
count-th latest lapse. The warning window opens `recertification.warnBefore` earlier (at the lapse
itself when the policy sets no warnBefore).

The RecertificationDue condition, present while a policy in force sets maxAge, says it:
True from the start of the earliest window until a new approval counts (reason RecertificationDue,
then ApprovalLapsed), False with the dates before (RecertificationScheduled). Its message names
each date, each approval and who must approve again; it holds absolute times only, so it changes
exactly at the instants `wake_at` returns, which the reconcile loop sleeps until (no polling).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import ApprovalRequirement, GovernancePolicy, ModelApproval, parse_duration
from modelgate.decide.approvals import describe_approvers, lapses_at, standing
from modelgate.decide.conditions import Cond, rfc3339
from modelgate.decide.evidence import Context, created_at


@dataclass(frozen=True)
class Lapse:
    """One approval a requirement rests on, and when it lapses."""

    approval: str
    approver: str
    created: datetime
    lapses_at: datetime


@dataclass(frozen=True)
class Due:
    """One approval requirement with a maxAge: when it lapses, and when to start warning."""

    policy: str
    role: str
    approvers: str
    """Who may approve again: "group ethics-board"."""
    count: int
    max_age: str
    lapses: tuple[Lapse, ...]
    """Sorted by lapse, earliest first."""
    due_at: datetime
    """When fewer than `count` approvals remain: the requirement lapses."""
    warn_at: datetime
    """When the warning window opens: due_at - warnBefore (due_at without one)."""


def requirement_due(
    policy: GovernancePolicy, req: ApprovalRequirement, approvals: Sequence[ModelApproval], ctx: Context
) -> Due | None:
    """The schedule of one requirement; None without maxAge, or when fewer than `count` approvals
    would count even ignoring their age (then it is missing evidence, not recertification)."""
    if req.max_age is None:
        return None
    lapses = sorted(
        (
            Lapse(a.name, a.spec.approved_by.username if a.spec.approved_by else "(unknown)", created, until)
            for a in standing(req, approvals, ctx)
            if (until := lapses_at(a, req)) is not None and (created := created_at(a)) is not None
        ),
        key=lambda lapse: (lapse.lapses_at, lapse.approval),
    )
    if len(lapses) < req.count:
        return None
    due_at = lapses[len(lapses) - req.count].lapses_at
    rec = policy.spec.recertification
    warn = parse_duration(rec.warn_before) if rec is not None else timedelta(0)
    approvers = describe_approvers(req.approvers).removeprefix("from ")
    return Due(policy.name, req.role, approvers, req.count, req.max_age, tuple(lapses), due_at, due_at - warn)


def schedule(
    policies: Sequence[GovernancePolicy], approvals: Sequence[ModelApproval], ctx: Context
) -> tuple[Due, ...]:
    """Every requirement with a maxAge that has one, policies in name order, earliest due first."""
    dues = (
        requirement_due(p, req, approvals, ctx)
        for p in sorted(policies, key=lambda p: p.name)
        for req in p.spec.approvals
    )
    return tuple(sorted((d for d in dues if d is not None), key=lambda d: (d.due_at, d.policy, d.role)))


def applies(policies: Iterable[GovernancePolicy]) -> bool:
    """Whether a policy in force bounds approvals by age: then the condition is present."""
    return any(req.max_age is not None for p in policies for req in p.spec.approvals)


def wake_at(dues: Iterable[Due], now: datetime) -> datetime | None:
    """The next instant after `now` the condition changes by itself: a window opens or a
    requirement lapses (the gate engine wakes for each approval's own lapse already)."""
    return min((t for d in dues for t in (d.warn_at, d.due_at) if t > now), default=None)


def condition(dues: Sequence[Due], now: datetime) -> Cond:
    """RecertificationDue, from the schedule (see the module docstring)."""
    lapsed = [d for d in dues if d.due_at <= now]
    warned = [d for d in dues if d.warn_at <= now < d.due_at]
    if lapsed:
        return Cond(c.RECERTIFICATION_DUE, c.TRUE, c.APPROVAL_LAPSED, _message(dues, now))
    if warned:
        return Cond(c.RECERTIFICATION_DUE, c.TRUE, c.RECERTIFICATION_DUE_REASON, _message(dues, now))
    if not dues:
        return Cond(
            c.RECERTIFICATION_DUE,
            c.FALSE,
            c.NOTHING_TO_RECERTIFY,
            "no approval that a maxAge bounds counts yet, so nothing is due",
        )
    return Cond(c.RECERTIFICATION_DUE, c.FALSE, c.RECERTIFICATION_SCHEDULED, _message(dues, now))


def _message(dues: Sequence[Due], now: datetime) -> str:
    """ "role ethics-board (policy prod, maxAge 180d) is due by T (warning from W): ModelApproval eb
    by bob lapses at T; it needs a new approval from group ethics-board". Absolute times only: it
    changes at a lapse or a window's start, never merely because time passes."""
    parts = []
    for d in dues:
        when = (
            f"lapsed at {rfc3339(d.due_at)}"
            if d.due_at <= now
            else f"is due by {rfc3339(d.due_at)} (warning from {rfc3339(d.warn_at)})"
        )
        listing = ", ".join(
            f"ModelApproval {x.approval} by {x.approver} {'lapsed' if x.lapses_at <= now else 'lapses'} at "
            f"{rfc3339(x.lapses_at)}"
            for x in d.lapses
        )
        noun = "a new approval" if d.count == 1 else f"{d.count} approvals (distinct approvers) in all"
        parts.append(
            f"role {d.role} (policy {d.policy}, maxAge {d.max_age}) {when}: {listing}; it needs {noun} "
            f"from {d.approvers}"
        )
    return "; ".join(parts)


def status_of(dues: Sequence[Due]) -> dict[str, Any] | None:
    """status.recertification: the schedule in wire form; None when nothing is scheduled."""
    if not dues:
        return None
    return {
        "dueAt": rfc3339(min(d.due_at for d in dues)),
        "warnAt": rfc3339(min(d.warn_at for d in dues)),
        "requirements": [
            {
                "policy": d.policy,
                "role": d.role,
                "approvers": d.approvers,
                "count": d.count,
                "maxAge": d.max_age,
                "dueAt": rfc3339(d.due_at),
                "warnAt": rfc3339(d.warn_at),
                "approvals": [
                    {
                        "name": x.approval,
                        "approvedBy": x.approver,
                        "createdAt": rfc3339(x.created),
                        "lapsesAt": rfc3339(x.lapses_at),
                    }
                    for x in d.lapses
                ],
            }
            for d in dues
        ],
    }


def newly_due(old: Mapping[str, Any] | None, new: Cond) -> bool:
    """Whether the condition turns True now (from absent or False): the one Warning Event."""
    return new.status == c.TRUE and (old is None or old.get("status") != c.TRUE)
