"""From an observed snapshot to a plan: the status to store, the serving objects wanted, the
decisions to record, what to monitor. Pure: `now` is passed in, nothing here reads a clock.

`plan` runs six named steps, each a pure function with its own tests:

1. `judge`           the gates of the requested revision, the renewal gate included (decide/gates.py);
2. `choose`          which revision serves: only an admitted revision is ever served;
3. `advance`         the monitoring counters of the revision that serves traffic (decide/intervene.py);
4. `intervene`       onDrift: rollback, quarantine or alert, once per drifting digest (decide/intervene.py);
5. `serving_objects` the Deployment and Service wanted, and tampering to revert (decide/objects.py);
6. `build_status`    conditions, phase, known-good revisions, history (decide/summary.py).

The revision rule: when the requested revision (spec) is admitted it becomes `servingRevision`.
When it is not:
- and nothing serves yet, nothing is created (Blocked);
- and an older revision serves, that revision keeps serving untouched (the new one is Blocked,
  status shows both: `servingRevision` the old one, `gates` the new one);
- and it is the revision that serves (its evidence was revoked or expired), the strictest
  selecting policy's `onRevocation` applies: `suspend` scales it to zero, `keep` keeps it serving.

A digest withdrawn by a rollback or quarantine (`rejectedDigests`) is admitted again only with a
ModelApproval created after the withdrawal: the renewal gate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide.conditions import merge_conditions, rfc3339
from modelgate.decide.gates import Gate, GateInput, GateReport, Subject, evaluate, subject_of
from modelgate.decide.intervene import (
    Intervention,
    Watching,
    advance,
    intervene,
    ref,
    revision_status,
    rolled_back_message,
    served_with,
    stored_revision,
)
from modelgate.decide.monitoring import Target, checks_for, interval_of, passed
from modelgate.decide.objects import rollout, serving_objects
from modelgate.decide.revision import operational_fields
from modelgate.decide.serving import Owner, Revision, ServingSpec
from modelgate.decide.summary import Situation, conditions, describe, short
from modelgate.decide.types import Decision, Observed, Plan

KNOWN_GOOD_LIMIT = 10

__all__ = ["plan"]


def plan(obs: Observed, now: dt.datetime) -> Plan:
    md = obs.deployment
    old = dict(obs.body.get("status") or {})
    stamp = rfc3339(now)
    requested = requested_revision(md, obs.policies)
    # Withdrawn digests: status.rejectedDigests united with the ModelRecords, which outlive a delete.
    rejected = {d: {"digest": d, "reason": r["reason"], "time": r["time"]} for d, r in obs.records.items()}
    rejected.update({str(r["digest"]): dict(r) for r in old.get("rejectedDigests") or []})
    serving = stored_revision(old.get("servingRevision"), md.spec.model.name)

    verdict = judge(obs, now, requested, rejected.get(requested.digest))
    # The revision that serves is justified at every moment, not only when it is the one requested.
    rejudged = (
        judge(obs, now, serving, None, requested=requested)
        if not verdict.admitted
        and serving is not None
        and serving != requested
        and serving.digest not in rejected
        else None
    )
    choice = choose(
        md, verdict, requested, serving, rejudged, old, rejected, stamp, _evidence(obs, verdict.report)
    )

    # Quarantine in force: the quarantined digest still serves (pods kept) without traffic.
    quarantined_at: str | None = old.get("quarantinedAt")
    quarantined = bool(
        quarantined_at
        and choice.target is not None
        and choice.rejected.get(choice.target.digest, {}).get("reason") == c.QUARANTINED_REASON
    )
    label_pods: bool | None = None
    if quarantined_at and not quarantined:
        quarantined_at, label_pods = None, False

    checks = checks_for(md, obs.policies)
    fresh_revision = choice.serving_raw is not old.get("servingRevision")
    watching = advance(
        checks,
        _traffic(choice.target, choice.replicas, quarantined),
        [] if fresh_revision else list(old.get("metrics") or []),
        obs.readings,
        stamp,
    )
    step4 = intervene(
        md,
        obs.policies,
        checks,
        watching,
        choice.target,
        choice.serving_raw,
        choice.rejected,
        old.get("knownGood") or [],
        _condition(old, c.DRIFTED),
        stamp,
        admissible=lambda raw: _admissible(obs, now, raw, requested),
    )
    if step4.quarantined_at:
        quarantined, quarantined_at, label_pods = True, step4.quarantined_at, True
    withdrawn = step4.rejected.get(requested.digest)
    if withdrawn and requested.digest not in rejected:  # withdrawn by this very plan
        verdict = replace(with_renewal(verdict, obs, requested, withdrawn), admitted=False, approved=False)

    owner = Owner(
        md.api_version,
        md.kind,
        md.name,
        md.namespace or "",
        str((obs.body.get("metadata") or {}).get("uid", "")),
    )
    sspec = replace(
        served_with(choice.serving, step4.serving_raw, operational_fields(obs.policies)),
        replicas=choice.replicas,
    )
    objects = serving_objects(
        owner, step4.target, sspec, quarantined, obs.owned_deployment, obs.owned_service, stamp
    )
    done, summary = rollout(obs.owned_deployment)
    decisions = (*choice.decisions, *watching.decisions, *step4.decisions, *objects.decisions)
    status = build_status(
        obs,
        now,
        Situation(
            requested=requested,
            target=step4.target,
            admitted=verdict.admitted,
            approved=verdict.approved,
            evaluated=verdict.report.evaluated,
            gates=verdict.gates,
            replicas=choice.replicas,
            ready=step4.target is not None and objects.deployment_matches and done,
            rollout=summary,
            blocked_message=choice.blocked_message,
            drift=step4.outcome.summary,
            quarantined_since=quarantined_at if quarantined else None,
            rolled_back=rolled_back_message(requested, step4.target, step4.rejected),
            suspended=choice.suspended,
        ),
        step4,
        watching,
        decisions,
        checks_passed=passed(step4.outcome, checks)
        and (not checks or watching.readings is not None or watching.stored),
    )
    if quarantined and quarantined_at:
        status["quarantinedAt"] = quarantined_at
    watched = _traffic(step4.target, choice.replicas, quarantined)
    return Plan(
        status=status,
        deployment=objects.deployment,
        service=objects.service,
        decisions=decisions,
        requeue_at=verdict.report.next_change,
        watch=_watch(md, watched, checks),
        label_pods=label_pods,
        verdicts=watching.verdicts,
    )


def requested_revision(md: ModelDeployment, policies: Sequence[GovernancePolicy]) -> Revision:
    s = subject_of(md, policies)
    return Revision(s.model, s.version, s.uri, s.digest, s.image, s.revision)


def _traffic(target: Revision | None, replicas: int, quarantined: bool) -> Revision | None:
    """The revision that serves traffic, whose readings count."""
    return target if target is not None and replicas > 0 and not quarantined else None


def _watch(md: ModelDeployment, watched: Revision | None, checks: Sequence[Any]) -> Target | None:
    if watched is None or not checks:
        return None
    ns = md.namespace or ""
    return Target(ns, md.name, watched.model, watched.version, watched.digest, interval_of(md), tuple(checks))


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((x for x in status.get("conditions") or [] if x.get("type") == type_), None)


def _time(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


# --- step 1: the gates -----------------------------------------------------------------------------


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
    withdrawn_at = _time(withdrawn.get("time")) if withdrawn else None
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


def _admissible(obs: Observed, now: dt.datetime, raw: Mapping[str, Any], requested: Revision) -> bool:
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
    """The verdict with the renewal gate of a withdrawn digest: it needs a ModelApproval for that
    digest created after the withdrawal."""
    digest = revision.digest
    since = _time(withdrawn.get("time"))
    if since is None:
        return verdict
    why = "quarantine" if withdrawn.get("reason") == c.QUARANTINED_REASON else "rollback"
    fresh = sorted(
        a.name
        for a in obs.approvals
        if a.spec.model.digest == digest
        and a.spec.decision == "approved"
        and obs.seal_ok(a)
        and (created := _time(a.metadata.get("creationTimestamp"))) is not None
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


def _evidence(obs: Observed, report: GateReport) -> dict[str, Any]:
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


# --- step 2: which revision serves -------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    target: Revision | None
    """The revision the serving objects are built for (None: nothing serves)."""
    serving_raw: Mapping[str, Any] | None
    """status.servingRevision to store (the stored mapping itself when unchanged)."""
    serving: ServingSpec
    replicas: int
    rejected: dict[str, dict[str, Any]]
    """rejectedDigests, less the requested digest when a renewal re-admitted it."""
    decisions: tuple[Decision, ...]
    blocked_message: str
    """Why the requested revision is not admitted, and why the one that serves no longer may."""
    suspended: bool = False
    """The revision that serves (not the requested one) lost its evidence and is scaled to zero."""


def serving_spec(md: ModelDeployment) -> ServingSpec:
    s = md.spec.serving
    resources = s.resources.model_dump(by_alias=True, exclude_defaults=True) if s.resources else {}
    return ServingSpec(
        s.replicas, s.port, resources, [{"name": e.name, "value": e.value or ""} for e in s.env]
    )


def choose(
    md: ModelDeployment,
    verdict: Verdict,
    requested: Revision,
    serving: Revision | None,
    rejudged: Verdict | None,
    old: Mapping[str, Any],
    rejected: Mapping[str, Mapping[str, Any]],
    stamp: str,
    evidence: Mapping[str, Any],
) -> Choice:
    """Step 2: an admitted request serves; otherwise what served keeps serving while its own gates
    hold (`rejudged`: its verdict now, when it is not the requested revision). A serving revision
    whose evidence no longer holds, requested or not, is scaled to zero under onRevocation: suspend
    and kept, with the reason in status, under keep."""
    kept = {k: dict(v) for k, v in rejected.items()}
    sspec = serving_spec(md)
    replicas, target, serving_raw = sspec.replicas, serving, old.get("servingRevision")
    old_admitted = _condition(old, c.ADMITTED)
    rej = kept.get(requested.digest)
    decisions = []

    def decide(action: str, reason: str, message: str, warning: bool = False) -> None:
        decisions.append(Decision(action, reason, message, stamp, evidence, ref(requested), warning))

    if verdict.admitted:
        target = requested
        if rej:
            del kept[requested.digest]
            why = "quarantine" if rej.get("reason") == c.QUARANTINED_REASON else "rollback"
            decide(
                c.ACTION_RELEASED,
                c.APPROVALS_GRANTED,
                f"Re-admitted {describe(requested)}: a new approval was given after the {why}",
            )
        if serving != requested:
            serving_raw = revision_status(requested, stamp, sspec)
            decide(
                c.ACTION_ADMITTED,
                c.ADMITTED_REASON,
                f"Admitted {describe(requested)}: every gate is satisfied",
            )
        elif old_admitted is not None and old_admitted.get("status") != c.TRUE and not rej:
            decide(
                c.ACTION_ADMITTED,
                c.ADMITTED_REASON,
                f"Re-admitted {describe(requested)}: every gate is satisfied again",
            )
    elif (
        serving is not None and serving == requested and not rej and verdict.report.on_revocation == "suspend"
    ):
        replicas = 0
    blocked_message, lost = verdict.blocked_message, False
    if not verdict.admitted and serving is not None and rejudged is not None and not rejudged.admitted:
        lost = rejudged.report.on_revocation == "suspend"
        why = next((g.message for g in rejudged.gates if not g.satisfied), "")
        blocked_message += f"; {describe(serving)}, which serves, no longer satisfies its gates: {why}; " + (
            "it is suspended" if lost else "it keeps serving (onRevocation: keep)"
        )
        if lost:
            replicas = 0
    if not verdict.admitted and (
        old_admitted is None
        or old_admitted.get("status") != c.FALSE
        or old_admitted.get("message") != blocked_message
    ):
        first = next((g for g in verdict.gates if not g.satisfied), None)
        suspended = (serving == requested or lost) and replicas == 0
        decide(
            c.ACTION_SUSPENDED if suspended else c.ACTION_BLOCKED,
            first.reason if first else c.GATES_FAILED,
            blocked_message,
            warning=True,
        )
    return Choice(target, serving_raw, sspec, replicas, kept, tuple(decisions), blocked_message, lost)


# --- step 6: status ------------------------------------------------------------------------------------


def build_status(
    obs: Observed,
    now: dt.datetime,
    situation: Situation,
    step4: Intervention,
    watching: Watching,
    decisions: Sequence[Decision],
    checks_passed: bool,
) -> dict[str, Any]:
    """Step 6: conditions, phase, known-good revisions and history, as one status to store."""
    old = obs.body.get("status") or {}
    generation = int((obs.body.get("metadata") or {}).get("generation") or 0)
    conds, phase = conditions(situation)
    known_good = [dict(g) for g in old.get("knownGood") or []]
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
    history = list(old.get("history") or [])
    for d in decisions:
        entry: dict[str, Any] = {
            "time": d.time,
            "action": d.action,
            "reason": d.reason,
            "message": d.message[:4000],
        }
        if d.revision:
            entry["revision"] = dict(d.revision)
        history.append(entry)
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
