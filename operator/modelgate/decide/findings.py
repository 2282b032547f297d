"""What `modelgate audit` reports of one ModelDeployment, from its stored status alone. Pure.

An auditor (read-only) wants the models that need someone's attention, across the cluster:

- NotCompliant (overdue): it serves although its evidence stopped counting, because every policy
  selecting it says onRevocation: keep (status.compliance);
- Lapsed (overdue): an approval requirement's maxAge has passed (status.recertification.dueAt), so
  it was suspended, or serves NotCompliant, or the operator has not caught up yet;
- Stale (overdue): it serves traffic while a gate of its evidence failed on age or expiry
  (EvaluationStale, ApprovalLapsed, ApprovalExpired);
- Quarantined (overdue): drift cut its traffic; its pods wait for forensics and a new approval;
- DueSoon: a requirement lapses within the window asked for (`within`), or, without one, the
  policy's own recertification.warnBefore has begun (status.recertification.warnAt).

The status holds absolute dates only, so the report does not depend on when the operator last
wrote: a date that has passed is overdue even if the operator is down.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from modelgate.api import conditions as c

NOT_COMPLIANT: Final = "NotCompliant"
LAPSED: Final = "Lapsed"
STALE: Final = "Stale"
QUARANTINED: Final = "Quarantined"
DUE_SOON: Final = "DueSoon"
OVERDUE: Final = frozenset({NOT_COMPLIANT, LAPSED, STALE, QUARANTINED})
AGED_OUT: Final = frozenset({c.EVALUATION_STALE, c.APPROVAL_LAPSED, c.APPROVAL_EXPIRED})
"""Gate reasons that mean evidence is older than a policy allows."""


@dataclass(frozen=True)
class Finding:
    """One reason a model needs attention."""

    namespace: str
    name: str
    model: str
    version: str
    phase: str
    kind: str
    """NotCompliant, Lapsed, Stale, Quarantined or DueSoon."""
    at: str
    """When it happened or falls due (RFC 3339), "" when unknown."""
    message: str

    @property
    def overdue(self) -> bool:
        return self.kind in OVERDUE

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "phase": self.phase,
            "finding": self.kind,
            "overdue": self.overdue,
            "at": self.at or None,
            "message": self.message,
        }


def findings(obj: Mapping[str, Any], now: dt.datetime, within: dt.timedelta | None) -> list[Finding]:
    """Everything overdue or due soon about one ModelDeployment as the API server returned it."""
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    served = st.get("servingRevision") or {}
    model = spec.get("model") or {}

    def finding(kind: str, at: str, message: str) -> Finding:
        return Finding(
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
            str(model.get("name") or ""),
            str(served.get("version") or model.get("version") or ""),
            str(st.get("phase") or "-"),
            kind,
            at,
            message,
        )

    conds = {x.get("type"): x for x in st.get("conditions") or []}
    out: list[Finding] = []
    if st.get("compliance") == c.NOT_COMPLIANT:
        admitted = conds.get(c.ADMITTED) or {}
        out.append(finding(NOT_COMPLIANT, str(admitted.get("lastTransitionTime") or ""), _text(admitted)))
    out += _recertification(st.get("recertification"), conds.get(c.RECERTIFICATION_DUE), now, within, finding)
    aged = [g for g in st.get("gates") or [] if not g.get("satisfied") and g.get("reason") in AGED_OUT]
    if st.get("compliance") and aged:
        out.append(finding(STALE, "", "; ".join(str(g.get("message") or "") for g in aged)))
    quarantined = conds.get(c.QUARANTINED) or {}
    if quarantined.get("status") == c.TRUE or st.get("quarantinedAt"):
        out.append(finding(QUARANTINED, str(st.get("quarantinedAt") or ""), _text(quarantined)))
    return out


def _recertification(
    schedule: Mapping[str, Any] | None,
    due: Mapping[str, Any] | None,
    now: dt.datetime,
    within: dt.timedelta | None,
    finding: Callable[[str, str, str], Finding],
) -> list[Finding]:
    """Lapsed or DueSoon from status.recertification (one finding for the earliest requirement)."""
    if not schedule:
        return []
    due_at, warn_at = _time(schedule.get("dueAt")), _time(schedule.get("warnAt"))
    if due_at is None:
        return []
    message = _text(due or {}) or _describe(schedule.get("requirements") or [])
    if due_at <= now:
        return [finding(LAPSED, schedule["dueAt"], message)]
    soon = due_at - now <= within if within is not None else warn_at is not None and warn_at <= now
    return [finding(DUE_SOON, schedule["dueAt"], message)] if soon else []


def _describe(requirements: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(
        f"role {r.get('role')} (policy {r.get('policy')}) due by {r.get('dueAt')}: needs a new approval "
        f"from {r.get('approvers')}"
        for r in requirements
    )


def _text(cond: Mapping[str, Any]) -> str:
    return str(cond.get("message") or "")


def _time(text: object) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None
