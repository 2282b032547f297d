"""Approval requirements and separation of duties.

A policy's approval requirement {role, approvers, count} is met when at least `count` distinct
people, each allowed to decide for the role, approved exactly this revision, and nobody allowed to
decide for the role rejected its model artifact. Every ModelApproval of the model is considered,
referenced or not: the deployer does not choose the evidence. A ModelApproval of the role counts
only if it passes two ordered chains of checks:

1. attributable: bound to the model name and version, bound to the digest, bound to the revision
   (spec.model.revision: the uri, the image and every covered serving field), sealed (when sealing
   is enforced), approver known (spec.approvedBy, stamped by the webhook), approver allowed by the
   requirement (a listed user or a member of a listed group; no lists at all means anyone);
2. current (approvals only): not expired at `now`, created at or after `not_before` (approvals
   given before a quarantine do not re-admit), under separation of duties not given by the identity
   that set the digest, when a policy in force names the role in riskLevelConfirmation, confirming
   the model card's riskLevel (spec.riskLevel), and, when the requirement has a maxAge, not lapsed:
   created less than maxAge before `now`. Age counts from metadata.creationTimestamp, which the API
   server sets (a ModelApproval carries no date of its own a client could make younger); an approval
   without a readable one has an unknown age and does not count. Lapsing is checked last, so an
   approval that lapsed is one that would count but for its age: the recertification schedule
   (decide/recertification.py) is made of those and of the counted ones.

An attributable rejection (same chain, except that it binds to the digest, whatever revision it
names: a rejection is about the model) blocks the requirement whatever else was approved. It blocks
even when it has expired or predates a quarantine, and even when the person who set the digest
rejected it: fail closed, a rejection is withdrawn only by its author deleting it. An approver
counts once per requirement; of several approvals by one person the one that lasts longest is
counted, so the counted evidence does not change from one reconcile to the next.

Separation of duties is a property of the deployment: when any policy in force demands it, an
approval by spec.digestSetBy counts for no requirement, and an unknown digestSetBy fails the
separation gate (no approval could be shown to be independent).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import (
    ApprovalRequirement,
    Approvers,
    GovernancePolicy,
    Identity,
    ModelApproval,
    parse_duration,
)
from modelgate.decide.evidence import (
    Check,
    Context,
    Miss,
    Outcome,
    bound_to_digest,
    bound_to_model,
    bound_to_revision,
    closest_reason,
    created_at,
    first_miss,
    is_bound,
    not_counted,
    plural,
    sealed,
    short_digest,
    timestamp,
)


def approver_allowed(identity: Identity, approvers: Approvers) -> bool:
    """A listed user, or a member of a listed group; anyone when the policy lists nobody."""
    if not approvers.users and not approvers.groups:
        return True
    return identity.username in approvers.users or any(g in approvers.groups for g in identity.groups)


def describe_approvers(approvers: Approvers) -> str:
    """ "from group ethics-board", "from user alice or groups a, b", "from anyone"."""
    parts = [
        plural(word, names)
        for word, names in (("user", approvers.users), ("group", approvers.groups))
        if names
    ]
    return f"from {' or '.join(parts)}" if parts else "from anyone"


# --- the checks -----------------------------------------------------------------------------------


def _approver_known(approval: ModelApproval, _: ApprovalRequirement, __: Context) -> Miss | None:
    if approval.spec.approved_by is not None:
        return None
    return Miss(
        r.APPROVER_UNKNOWN,
        f"ModelApproval {approval.name} has no approvedBy, so its approver is unknown",
    )


def _approver_authorized(approval: ModelApproval, req: ApprovalRequirement, _: Context) -> Miss | None:
    identity = approval.spec.approved_by
    if identity is None or approver_allowed(identity, req.approvers):
        return None
    return Miss(
        r.APPROVER_NOT_AUTHORIZED,
        f"ModelApproval {approval.name} is by {identity.username}, who is not allowed to decide for role "
        f"{req.role} (allowed: {describe_approvers(req.approvers).removeprefix('from ')})",
    )


def _not_expired(approval: ModelApproval, _: ApprovalRequirement, ctx: Context) -> Miss | None:
    expires = approval.spec.expires_at
    if expires is None or expires > ctx.now:
        return None
    return Miss(r.APPROVAL_EXPIRED, f"ModelApproval {approval.name} expired at {timestamp(expires)}")


def _not_before(approval: ModelApproval, _: ApprovalRequirement, ctx: Context) -> Miss | None:
    if ctx.not_before is None:
        return None
    created = created_at(approval)
    if created is not None and created >= ctx.not_before:
        return None
    when = "has no readable creationTimestamp" if created is None else f"was created at {timestamp(created)}"
    return Miss(
        r.APPROVAL_PREDATES_QUARANTINE,
        f"ModelApproval {approval.name} {when}; only approvals given at or after "
        f"{timestamp(ctx.not_before)} (the last quarantine or rollback) count",
    )


def _independent(approval: ModelApproval, _: ApprovalRequirement, ctx: Context) -> Miss | None:
    identity = approval.spec.approved_by
    if not ctx.separation or identity is None or identity.username != ctx.digest_set_by:
        return None
    return Miss(
        r.SEPARATION_OF_DUTIES_VIOLATED,
        f"ModelApproval {approval.name} is by {identity.username}, who set the digest (separation of duties)",
    )


def _confirms_risk_level(approval: ModelApproval, req: ApprovalRequirement, ctx: Context) -> Miss | None:
    if req.role not in ctx.confirming_roles or approval.spec.risk_level == ctx.risk_level:
        return None
    confirmed = approval.spec.risk_level or "none"
    return Miss(
        r.RISK_LEVEL_NOT_CONFIRMED,
        f"ModelApproval {approval.name} confirms risk level {confirmed} (spec.riskLevel), not the model "
        f"card's {ctx.risk_level}; approvals of role {req.role} must confirm it (riskLevelConfirmation)",
    )


def lapses_at(approval: ModelApproval, req: ApprovalRequirement) -> datetime | None:
    """When the approval stops counting for `req` by age: its creation plus maxAge. None without a
    maxAge, or without a readable creationTimestamp (then it never counts: see `_not_lapsed`)."""
    created = created_at(approval)
    if req.max_age is None or created is None:
        return None
    return created + parse_duration(req.max_age)


def _not_lapsed(approval: ModelApproval, req: ApprovalRequirement, ctx: Context) -> Miss | None:
    if req.max_age is None:
        return None
    created, lapses = created_at(approval), lapses_at(approval, req)
    if created is None or lapses is None:
        return Miss(
            r.APPROVAL_LAPSED,
            f"ModelApproval {approval.name} has no readable creationTimestamp, so its age under "
            f"maxAge {req.max_age} is unknown",
        )
    if lapses > ctx.now:
        return None
    return Miss(
        r.APPROVAL_LAPSED,
        # No "now" in the message: it would change on every reconcile and churn status.
        f"ModelApproval {approval.name} by {_username(approval)} was created at {timestamp(created)}, "
        f"more than maxAge {req.max_age} ago (lapsed at {timestamp(lapses)}); role {req.role} needs a "
        f"new approval {describe_approvers(req.approvers)}",
    )


ATTRIBUTABLE: tuple[Check[ModelApproval, ApprovalRequirement], ...] = (
    bound_to_model,
    bound_to_digest,
    bound_to_revision,
    sealed,
    _approver_known,
    _approver_authorized,
)
REJECTING: tuple[Check[ModelApproval, ApprovalRequirement], ...] = tuple(
    c for c in ATTRIBUTABLE if c is not bound_to_revision
)
"""A rejection is about the model artifact: it blocks every revision of the digest."""
CURRENT: tuple[Check[ModelApproval, ApprovalRequirement], ...] = (
    _not_expired,
    _not_before,
    _independent,
    _confirms_risk_level,
    _not_lapsed,
)


# --- one requirement ------------------------------------------------------------------------------


def check_approval_requirement(
    req: ApprovalRequirement, approvals: Sequence[ModelApproval], ctx: Context
) -> Outcome:
    """The verdict on one approval requirement, from every approval of the model (in name order)."""
    valid, rejections, misses = _classify(req, approvals, ctx)
    if rejections:
        # Nothing counts while a rejection stands, and time does not lift it.
        return Outcome(False, r.APPROVAL_REJECTED, _rejected(rejections, req, ctx))
    counted = _one_per_approver(valid, req)
    misses += _duplicates(valid, counted)
    names = tuple(a.name for a in counted)
    changes_at = tuple(t for a in counted for t in (a.spec.expires_at, lapses_at(a, req)) if t is not None)
    wanted = _wanted(req, ctx)
    if len(counted) >= req.count:
        return Outcome(True, r.APPROVALS_GRANTED, f"has {wanted}: {_listing(counted)}", names, changes_at)
    found = f"{len(counted)}: {_listing(counted)}" if counted else "none"
    message = f"needs {wanted}; found {found}{not_counted(misses)}"
    return Outcome(False, closest_reason(misses, r.APPROVAL_MISSING), message, names, changes_at)


def _classify(
    req: ApprovalRequirement, approvals: Sequence[ModelApproval], ctx: Context
) -> tuple[list[ModelApproval], list[ModelApproval], list[tuple[int, Miss]]]:
    """Split the approvals of the role into valid approvals, standing rejections and near misses."""
    valid: list[ModelApproval] = []
    rejections: list[ModelApproval] = []
    misses: list[tuple[int, Miss]] = []
    for approval in (a for a in approvals if a.spec.role == req.role):
        if approval.spec.decision == "rejected":
            miss = first_miss(REJECTING, approval, req, ctx)
            if miss is None:
                rejections.append(approval)
            else:
                misses.append(miss)
            continue
        miss = first_miss(ATTRIBUTABLE, approval, req, ctx)
        miss = miss or first_miss(CURRENT, approval, req, ctx, start=len(ATTRIBUTABLE))
        if miss is None:
            valid.append(approval)
        else:
            misses.append(miss)
    return valid, rejections, misses


def standing(
    req: ApprovalRequirement, approvals: Sequence[ModelApproval], ctx: Context
) -> list[ModelApproval]:
    """The approvals that count for `req`, or would but for their age (maxAge), one per approver;
    none while a rejection stands (no re-approval helps then). What recertification is about."""
    valid, rejections, _ = _classify(req.model_copy(update={"max_age": None}), approvals, ctx)
    return [] if rejections else _one_per_approver(valid, req)


def _one_per_approver(valid: Sequence[ModelApproval], req: ApprovalRequirement) -> list[ModelApproval]:
    """One approval per approver username: the one that lasts longest (expiry and maxAge; never
    beats any date), ties by name; sorted by username."""
    best: dict[str, ModelApproval] = {}
    for approval in valid:
        assert approval.spec.approved_by is not None  # _approver_known
        user = approval.spec.approved_by.username
        if user not in best or _lasting(approval, req) > _lasting(best[user], req):
            best[user] = approval
    return [best[user] for user in sorted(best)]


def _lasting(approval: ModelApproval, req: ApprovalRequirement) -> tuple[int, float, str]:
    ends = [t for t in (approval.spec.expires_at, lapses_at(approval, req)) if t is not None]
    return (1, 0.0, approval.name) if not ends else (0, min(ends).timestamp(), approval.name)


def _duplicates(valid: Sequence[ModelApproval], counted: Sequence[ModelApproval]) -> list[tuple[int, Miss]]:
    counted_names = {a.name for a in counted}
    depth = len(ATTRIBUTABLE) + len(CURRENT)
    return [
        (
            depth,
            Miss(
                r.APPROVAL_MISSING,
                f"ModelApproval {a.name} is by {_username(a)}, who is already counted once",
            ),
        )
        for a in valid
        if a.name not in counted_names
    ]


def _wanted(req: ApprovalRequirement, ctx: Context) -> str:
    noun = "1 approval" if req.count == 1 else f"{req.count} approvals"
    distinct = "" if req.count == 1 else " (distinct approvers)"
    return f"{noun} by role {req.role} {describe_approvers(req.approvers)}{distinct} for {ctx.subject}"


def _listing(counted: Sequence[ModelApproval]) -> str:
    return ", ".join(f"{_username(a)} (ModelApproval {a.name})" for a in counted)


def _rejected(rejections: Sequence[ModelApproval], req: ApprovalRequirement, ctx: Context) -> str:
    texts = []
    for a in rejections:
        comment = f': "{a.spec.comment.strip()}"' if a.spec.comment and a.spec.comment.strip() else ""
        texts.append(f"{_username(a)} rejected {ctx.subject} in ModelApproval {a.name}{comment}")
    return (
        f"{'; '.join(texts)}; a rejection by role {req.role} blocks admission regardless of other "
        "approvals, until its author deletes it"
    )


def _username(approval: ModelApproval) -> str:
    identity = approval.spec.approved_by
    return "(unknown)" if identity is None else identity.username


# --- separation of duties -------------------------------------------------------------------------


def check_separation(
    policies: Sequence[GovernancePolicy], approvals: Sequence[ModelApproval], ctx: Context
) -> Outcome | None:
    """The separation-of-duties verdict, or None when no policy in force demands it."""
    demanding = [p.name for p in policies if p.spec.separation_of_duties]
    if not demanding:
        return None
    required_by = f"required by {plural('policy', demanding)}"
    if ctx.digest_set_by is None:
        return Outcome(
            False,
            r.SEPARATION_OF_DUTIES_VIOLATED,
            f"the identity that set the digest {short_digest(ctx.digest)} is unknown "
            f"(spec.digestSetBy is missing), so no approval can be shown to be independent of it; "
            f"{required_by}",
        )
    own = [
        a.name
        for a in approvals
        if a.spec.approved_by is not None
        and a.spec.approved_by.username == ctx.digest_set_by
        and a.spec.decision == "approved"
        and is_bound(a.spec.model, ctx)
    ]
    message = (
        f"approvals by {ctx.digest_set_by}, who set the digest {short_digest(ctx.digest)}, do not count; "
        f"{required_by}"
    )
    if own:
        message += f"; not counted: {plural('ModelApproval', own)}"
    return Outcome(True, r.SEPARATION_OF_DUTIES_MET, message)
