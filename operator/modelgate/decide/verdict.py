"""Plan step 1: the gates of a revision and what they add up to, the renewal gate included. Pure.

`judge` runs the gate engine (decide/gates.py) for the requested revision, or for another revision
(the one that serves, a rollback target) as its `Subject`. A digest withdrawn by a rollback or
quarantine (`rejectedDigests`, ModelRecords) is admitted again only with a ModelApproval created
after the withdrawal: `with_renewal`, the one place that gate is made.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import ModelApproval, ModelEvaluation
from modelgate.decide.conditions import rfc3339
from modelgate.decide.gates import Gate, GateInput, GateReport, Subject, evaluate
from modelgate.decide.intervene import stored_revision
from modelgate.decide.phase import describe, short
from modelgate.decide.serving import Revision
from modelgate.decide.types import Observed


def parse_time(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Verdict:
    """The gates of the requested revision and what they add up to."""

    report: GateReport
    gates: tuple[Gate, ...]
    """The report's gates, plus the renewal gate when the digest was withdrawn."""
    admitted: bool
    approved: bool
    blocked_message: str
    """"<revision> is not admitted: <first failure>", empty when admitted."""


def judge(
    obs: Observed,
    now: dt.datetime,
    revision: Revision,
    withdrawn: Mapping[str, Any] | None,
    requested: Revision | None = None,
) -> Verdict:
    """Step 1: every gate of a revision: the requested one (`requested` None), or another one, such
    as the revision that serves or a rollback target (then its references are not required: they
    belong to the spec). After a rollback or quarantine of its digest (`withdrawn`), approvals older
    than the withdrawal do not count and the renewal gate applies."""
    withdrawn_at = parse_time(withdrawn.get("time")) if withdrawn else None
    subject = None
    if requested is not None and revision != requested:
        subject = Subject(
            revision.model, revision.version, revision.uri, revision.digest, revision.image, revision.id
        )
    report = evaluate(
        GateInput(
            deployment=obs.deployment,
            policies=obs.policies,
            approvals=obs.approvals,
            evaluations=obs.evaluations,
            now=now,
            allow_no_policy=obs.allow_no_policy,
            seal_ok=obs.seal_ok if obs.seal_valid is not None else None,
            references=obs.references,
            not_before=withdrawn_at,
            subject=subject,
        )
    )
    verdict = _verdict(report, report.gates, revision)
    if withdrawn and withdrawn_at:
        verdict = with_renewal(verdict, obs, revision, withdrawn)
    return verdict


def admissible(obs: Observed, now: dt.datetime, raw: Mapping[str, Any], requested: Revision) -> bool:
    """Whether a stored (known-good) revision passes its gates now: a rollback goes nowhere else."""
    rev = stored_revision(raw, obs.deployment.spec.model.name)
    return rev is not None and judge(obs, now, rev, None, requested=requested).admitted


def _verdict(report: GateReport, gates: Sequence[Gate], requested: Revision) -> Verdict:
    first = next((g for g in gates if not g.satisfied), None)
    renewal = all(g.satisfied for g in gates if g.kind == "renewal")
    return Verdict(
        report,
        tuple(gates),
        admitted=report.admitted and first is None,
        approved=report.approved and renewal,
        blocked_message=f"{describe(requested)} is not admitted: {first.message}" if first else "",
    )


def with_renewal(
    verdict: Verdict, obs: Observed, revision: Revision, withdrawn: Mapping[str, Any]
) -> Verdict:
    """The verdict with the renewal gate of a withdrawn digest: it needs a ModelApproval created
    after the withdrawal that counts towards a requirement (the whole evidence chain: role, approver,
    revision, seal, expiry, separation of duties), not merely any approval of the digest."""
    digest = revision.digest
    since = parse_time(withdrawn.get("time"))
    if since is None:
        return verdict
    why = "quarantine" if withdrawn.get("reason") == c.QUARANTINED_REASON else "rollback"
    counted = set(verdict.report.counted_approvals)
    fresh = sorted(
        a.name
        for a in obs.approvals
        if a.name in counted
        and a.spec.model.digest == digest
        and (created := parse_time(a.metadata.get("creationTimestamp"))) is not None
        and created >= since
    )
    when = rfc3339(since)
    if fresh:
        gate = Gate(
            f"new approval after {why}",
            True,
            c.APPROVALS_GRANTED,
            f"ModelApproval {', '.join(fresh)} was created after the {why} at {when}",
            "renewal",
        )
    else:
        gate = Gate(
            f"new approval after {why}",
            False,
            c.APPROVAL_PREDATES_QUARANTINE,
            f"{short(digest)} was withdrawn by a {why} at {when}; it serves again only with a new "
            "ModelApproval for this digest created after that time",
            "renewal",
        )
    return _verdict(verdict.report, (*verdict.gates, gate), revision)


def evidence_of(obs: Observed, report: GateReport) -> dict[str, Any]:
    def ident(o: ModelApproval | ModelEvaluation) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": o.metadata.get("name"),
            "uid": o.metadata.get("uid"),
            "digest": o.spec.model.digest,
            "revision": o.spec.model.revision,
        }
        if isinstance(o, ModelApproval):
            out |= {
                "role": o.spec.role,
                "decision": o.spec.decision,
                "approver": o.spec.approved_by.username if o.spec.approved_by else None,
            }
        else:
            out |= {"dataset": o.spec.dataset.name, "metrics": dict(o.spec.metrics)}
        return out

    m = obs.deployment.spec.model
    approvals = {a.name: a for a in obs.approvals}
    evaluations = {e.name: e for e in obs.evaluations}
    return {
        "model": {"name": m.name, "version": m.version, "digest": m.digest},
        "policies": [{"name": p.name, "uid": p.metadata.get("uid")} for p in obs.policies],
        "approvals": [ident(a) for n in report.counted_approvals if (a := approvals.get(n))],
        "evaluations": [ident(e) for n in report.counted_evaluations if (e := evaluations.get(n))],
        "failedGates": [{"requirement": g.requirement, "reason": g.reason} for g in report.failures],
    }
