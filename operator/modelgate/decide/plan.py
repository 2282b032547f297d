"""From an observed snapshot to a plan: the status to store, the serving objects wanted, the
decisions to record, what to monitor. Pure: `now` is passed in, nothing here reads a clock.

`plan` runs six named steps, each a pure function with its own tests, after a step 0 that rebuilds
the status a lost pass would have stored from its ModelRecord (decide/recovery.py):

1. `judge`           the gates of the requested revision, renewal gate included (decide/verdict.py);
2. `choose`          which revision serves: only an admitted revision, while its gates hold;
3. `advance`         the monitoring counters of the revision that serves traffic (decide/intervene.py);
4. `intervene`       onDrift: rollback, quarantine or alert, once per drifting digest (decide/intervene.py);
5. `serving_objects` the Deployment and Service wanted, and tampering to revert (decide/objects.py);
6. `build_status`    conditions, phase, known-good revisions, history (decide/status.py), with the
                     recertification schedule of what serves (decide/recertification.py).

The revision rule: when the requested revision (spec) is admitted it becomes `servingRevision`.
When it is not:
- and nothing serves yet, nothing is created (Blocked);
- and an older revision serves, that revision keeps serving untouched (the new one is Blocked,
  status shows both: `servingRevision` the old one, `gates` the new one);
- and the revision that serves (requested or not) no longer passes its own gates (evidence
  revoked, rejected or expired, a policy changed), the strictest selecting policy's
  `onRevocation` applies: `suspend` scales it to zero, `keep` keeps it serving and says so.

A digest withdrawn by a rollback or quarantine (`rejectedDigests`) is admitted again only with a
ModelApproval created after the withdrawal: the renewal gate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GovernancePolicy, MetricCheck, ModelDeployment
from modelgate.decide import recertification, trail
from modelgate.decide.conditions import Cond, rfc3339
from modelgate.decide.gates import subject_of
from modelgate.decide.ids import identify
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
from modelgate.decide.objects import ServingObjects, rollout, serving_objects
from modelgate.decide.phase import Situation, describe
from modelgate.decide.recovery import recover
from modelgate.decide.revision import operational_fields
from modelgate.decide.serving import Owner, Revision, ServingSpec
from modelgate.decide.status import build_status
from modelgate.decide.types import Decision, Observed, Plan
from modelgate.decide.verdict import Verdict, admissible, evidence_of, judge, with_renewal

__all__ = ["plan"]


def plan(obs: Observed, now: dt.datetime) -> Plan:
    md = obs.deployment
    requested = requested_revision(md, obs.policies)
    # 0. A rollback or quarantine a lost pass left in a ModelRecord only: what it would have stored.
    obs, recovery = recover(obs, lambda raw: admissible(obs, now, raw, requested))
    old = dict(obs.body.get("status") or {})
    stamp = rfc3339(now)
    rejected = withdrawn_digests(obs)

    # 1-2. The requested revision's gates; which revision serves (re-judged when it is another one).
    verdict, rejudged, choice = _judge_and_choose(obs, now, requested, old, rejected, stamp)
    # The verdict on what serves (or would): its recertification schedule and compliance.
    judged = verdict if choice.target in (None, requested) else rejudged
    served = judged or verdict
    due = _recertification(obs, served, now)
    quarantined_at, label_pods = _quarantine_in_force(old.get("quarantinedAt"), choice)
    if quarantined_at and recovery.quarantined:
        label_pods = True  # the lost pass never labelled the pods

    # 3-4. Monitoring of what serves traffic, and the intervention it may call for.
    checks = checks_for(md, obs.policies)
    watching, step4 = _monitor(obs, now, requested, old, choice, checks, quarantined_at is not None, stamp)
    if step4.quarantined_at:
        quarantined_at, label_pods = step4.quarantined_at, True
    withdrawn = step4.rejected.get(requested.digest)
    if withdrawn and requested.digest not in rejected:  # withdrawn by this very plan
        verdict = replace(with_renewal(verdict, obs, requested, withdrawn), admitted=False, approved=False)

    # 5-6. The serving objects for what serves now, and the status.
    objects = _objects(obs, choice, step4, quarantined_at is not None, stamp)
    refused = objects.refused or still_refused(obs, objects)
    decisions = identify(
        (
            *choice.decisions,
            *watching.decisions,
            *step4.decisions,
            *objects.decisions,
            *_refusal_told(old, refused, step4.target, stamp),
            *_recertification_told(old, due, obs, served, stamp),
        ),
        str((obs.body.get("metadata") or {}).get("uid") or ""),
        old.get("history") or [],
    )
    situation = _situation(obs, requested, verdict, choice, step4, objects, quarantined_at, refused)
    decisions = trail.sign((*recovery.decisions, *decisions), obs.body, obs.signer)
    status = build_status(
        obs,
        now,
        situation,
        step4,
        watching,
        decisions,
        checks_passed=passed(step4.outcome, checks)
        and (not checks or watching.readings is not None or watching.stored),
        recertification=due,
    )
    if quarantined_at:
        status["quarantinedAt"] = quarantined_at
    if (schedule := recertification.status_of(served.report.recertification)) is not None:
        status["recertification"] = schedule
    serves = step4.target is not None and choice.replicas > 0 and not quarantined_at
    if serves:
        kept = step4.target == choice.target and judged is not None and not judged.admitted
        status["compliance"] = c.NOT_COMPLIANT if kept else c.COMPLIANT
    wakes = (
        verdict.report.next_change,
        served.report.next_change,
        recertification.wake_at(served.report.recertification, now),
    )
    return Plan(
        status=status,
        deployment=objects.deployment,
        service=objects.service,
        decisions=decisions,
        requeue_at=min((t for t in wakes if t is not None), default=None),
        watch=_watch(md, _traffic(step4.target, choice.replicas, quarantined_at is not None), checks),
        label_pods=label_pods,
        verdicts=watching.verdicts,
        evidence_expires_at=verdict.report.next_change if verdict.admitted else None,
    )


def _judge_and_choose(
    obs: Observed,
    now: dt.datetime,
    requested: Revision,
    old: Mapping[str, Any],
    rejected: dict[str, dict[str, Any]],
    stamp: str,
) -> tuple[Verdict, Verdict | None, Choice]:
    """Steps 1-2: the requested revision's gates, and which revision serves (the one serving now is
    judged again when the requested one is not admitted: `rejudged`)."""
    md = obs.deployment
    serving = stored_revision(old.get("servingRevision"), md.spec.model.name)
    verdict = judge(obs, now, requested, rejected.get(requested.digest))
    rejudged = (
        judge(obs, now, serving, None, requested=requested)
        if not verdict.admitted
        and serving is not None
        and serving != requested
        and serving.digest not in rejected
        else None
    )
    evidence = evidence_of(obs, verdict.report)
    choice = choose(md, verdict, requested, serving, rejudged, old, rejected, stamp, evidence)
    return verdict, rejudged, choice


def _recertification(obs: Observed, served: Verdict, now: dt.datetime) -> Cond | None:
    """The RecertificationDue condition of what serves, while a policy in force sets maxAge."""
    if not recertification.applies(obs.policies):
        return None
    return recertification.condition(served.report.recertification, now)


def _recertification_told(
    old: Mapping[str, Any], due: Cond | None, obs: Observed, served: Verdict, stamp: str
) -> tuple[Decision, ...]:
    """One Warning Event (a decision) when RecertificationDue turns True: the start of the window."""
    if due is None or not recertification.newly_due(_condition(old, c.RECERTIFICATION_DUE), due):
        return ()
    return (
        Decision(
            c.ACTION_RECERTIFICATION_DUE,
            due.reason,
            f"Recertification due for {obs.deployment.spec.model.name}: {due.message}",
            stamp,
            evidence_of(obs, served.report),
            None,
            True,
        ),
    )


def _monitor(
    obs: Observed,
    now: dt.datetime,
    requested: Revision,
    old: Mapping[str, Any],
    choice: Choice,
    checks: Sequence[MetricCheck],
    quarantined: bool,
    stamp: str,
) -> tuple[Watching, Intervention]:
    """Steps 3-4: the monitoring counters of what serves traffic, and the intervention they call for."""
    fresh_revision = choice.serving_raw is not old.get("servingRevision")
    watching = advance(
        checks,
        _traffic(choice.target, choice.replicas, quarantined),
        [] if fresh_revision else list(old.get("metrics") or []),
        obs.readings,
        stamp,
    )
    step4 = intervene(
        obs.deployment,
        obs.policies,
        checks,
        watching,
        choice.target,
        choice.serving_raw,
        choice.rejected,
        old.get("knownGood") or [],
        _condition(old, c.DRIFTED),
        stamp,
        admissible=lambda raw: admissible(obs, now, raw, requested),
    )
    return watching, step4


def withdrawn_digests(obs: Observed) -> dict[str, dict[str, Any]]:
    """Digests withdrawn by a rollback or quarantine: status.rejectedDigests united with the
    ModelRecords, which outlive a delete of the ModelDeployment."""
    rejected = {d: {"digest": d, "reason": r["reason"], "time": r["time"]} for d, r in obs.records.items()}
    status = obs.body.get("status") or {}
    rejected.update({str(r["digest"]): dict(r) for r in status.get("rejectedDigests") or []})
    return rejected


def _quarantine_in_force(quarantined_at: str | None, choice: Choice) -> tuple[str | None, bool | None]:
    """A quarantine stays in force while the quarantined digest is the one that serves (its pods
    kept, without traffic); otherwise it ends and the pods are released (label_pods False)."""
    target = choice.target
    if not quarantined_at:
        return None, None
    if target is not None and choice.rejected.get(target.digest, {}).get("reason") == c.QUARANTINED_REASON:
        return quarantined_at, None
    return None, False


def _objects(
    obs: Observed, choice: Choice, step4: Intervention, quarantined: bool, stamp: str
) -> ServingObjects:
    md = obs.deployment
    uid = str((obs.body.get("metadata") or {}).get("uid", ""))
    owner = Owner(md.api_version, md.kind, md.name, md.namespace or "", uid)
    sspec = served_with(choice.serving, step4.serving_raw, operational_fields(obs.policies))
    sspec = replace(sspec, replicas=choice.replicas)
    return serving_objects(
        owner, step4.target, sspec, quarantined, obs.owned_deployment, obs.owned_service, stamp, obs.refusals
    )


def still_refused(obs: Observed, objects: ServingObjects) -> str | None:
    """The stored ServingObjectInvalid message, while this loop has not yet learnt how the write goes:
    after a restart the refusal is known only from status, and flipping Ready to "rolling out" for
    one pass would tell the same refusal twice. Only for the same generation (a spec change is
    written before anything is said) and while an object is still to be written."""
    ready = _condition(obs.body.get("status") or {}, c.READY) or {}
    generation = (obs.body.get("metadata") or {}).get("generation")
    if obs.refusals or (objects.deployment is None and objects.service is None):
        return None
    if ready.get("reason") != c.SERVING_OBJECT_INVALID or ready.get("observedGeneration") != generation:
        return None
    return str(ready.get("message") or "") or None


def _refusal_told(
    old: Mapping[str, Any], refused: str | None, target: Revision | None, stamp: str
) -> tuple[Decision, ...]:
    """A ServingObjectInvalid decision (Event, audit line, history) when a refusal starts or what the
    API server says changes; nothing while Ready already says it: once per streak, not per retry."""
    ready = _condition(old, c.READY) or {}
    if refused is None or (
        ready.get("reason") == c.SERVING_OBJECT_INVALID and ready.get("message") == refused
    ):
        return ()
    revision = ref(target) if target is not None else None
    return (
        Decision(
            c.ACTION_SERVING_OBJECT_INVALID, c.SERVING_OBJECT_INVALID, refused, stamp, {}, revision, True
        ),
    )


def _situation(
    obs: Observed,
    requested: Revision,
    verdict: Verdict,
    choice: Choice,
    step4: Intervention,
    objects: ServingObjects,
    quarantined_at: str | None,
    refused: str | None,
) -> Situation:
    # The Deployment this very pass creates counts as created with nothing ready: the next pass, which
    # sees it stored, says the same, so the rollout costs no status write between admission and Ready.
    done, summary = rollout(obs.owned_deployment if obs.owned_deployment is not None else objects.deployment)
    return Situation(
        requested=requested,
        target=step4.target,
        admitted=verdict.admitted,
        approved=verdict.approved,
        evaluated=verdict.report.evaluated,
        gates=verdict.gates,
        replicas=choice.replicas,
        ready=step4.target is not None and objects.deployment_matches and done,
        rollout=summary,
        blocked_message=choice.blocked_message
        or verdict.blocked_message,  # withdrawn in this pass: the renewal gate
        drift=step4.outcome.summary,
        quarantined_since=quarantined_at,
        rolled_back=rolled_back_message(requested, step4.target, step4.rejected),
        suspended=choice.suspended,
        refused=refused,
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
