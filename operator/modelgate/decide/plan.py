"""From an observed snapshot to a plan: the status to store, the serving objects wanted, the
decisions to record, what to monitor. Pure: `now` is passed in, nothing here reads a clock.

The revision rule: only an admitted revision is ever served. When the requested revision (spec)
is admitted it becomes `servingRevision`. When it is not:
- and nothing serves yet, nothing is created (Blocked);
- and an older revision serves, that revision keeps serving untouched (the new one is Blocked,
  status shows both: `servingRevision` the old one, `gates` the new one);
- and it is the revision that serves (its evidence was revoked or expired), the strictest
  selecting policy's `onRevocation` applies: `suspend` scales it to zero, `keep` keeps it serving.

Drift: the served revision's readings advance its metric counters (decide/monitoring.py). When a
metric reaches its failure limit, `onDrift` runs once: `rollback` serves the newest known-good
revision with another digest (none: quarantine instead), `quarantine` cuts the Service off from
the pods and keeps them, `alert` only reports. The drifting digest is recorded in
`rejectedDigests`: the spec is never edited, and a GitOps re-sync of the same spec does not bring
it back; only a new digest or a new ModelApproval created after the intervention does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide.conditions import merge_conditions, rfc3339
from modelgate.decide.drift import MetricState
from modelgate.decide.gates import Gate, GateInput, GateReport, evaluate
from modelgate.decide.monitoring import (
    MonitoringOutcome,
    Readings,
    Target,
    advance_metrics,
    checks_for,
    interval_of,
    on_drift,
    passed,
)
from modelgate.decide.serving import (
    Owner,
    Revision,
    ServingSpec,
    desired_deployment,
    desired_service,
    projection,
)
from modelgate.decide.summary import Situation, conditions, describe, short

APPLIED_HASH = "modelgate.io/applied-hash"
"""Annotation on owned objects: the hash of the projection modelgate last applied. An object whose
projection no longer matches its own hash was edited by someone else (tampering)."""
KNOWN_GOOD_LIMIT = 10

__all__ = ["Decision", "Observed", "Plan", "describe", "plan", "short"]


@dataclass(frozen=True)
class Observed:
    """Everything one reconcile decides from, gathered before any decision."""

    body: Mapping[str, Any]
    """The ModelDeployment as the API server returned it (metadata, spec, status)."""
    deployment: ModelDeployment
    policies: Sequence[GovernancePolicy]
    """The policies that select this model (namespace labels and risk level already matched)."""
    approvals: Sequence[ModelApproval]
    """Every ModelApproval of the model (spec.model.name) in the namespace, referenced or not."""
    evaluations: Sequence[ModelEvaluation]
    """Every ModelEvaluation of the model in the namespace, referenced or not."""
    owned_deployment: Mapping[str, Any] | None
    owned_service: Mapping[str, Any] | None
    allow_no_policy: bool = False
    seal_valid: Mapping[tuple[str, str], bool] | None = None
    """Whether each approval and evaluation (kind, name) carries a valid seal; None when sealing is
    not enforced."""
    references: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    """(kind, name) -> whether it exists, for every name in spec.approvals and spec.evaluations."""
    readings: Readings | None = None
    """A round of monitoring samples not yet taken into account, if any."""

    def seal_ok(self, evidence: ModelApproval | ModelEvaluation) -> bool:
        return self.seal_valid is None or self.seal_valid.get((evidence.kind, evidence.name), False)


@dataclass(frozen=True)
class Decision:
    """One auditable decision: an Event, a history entry and a JSON log line."""

    action: str
    reason: str
    message: str
    time: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    revision: Mapping[str, str] | None = None
    warning: bool = False


@dataclass(frozen=True)
class Plan:
    status: dict[str, Any]
    deployment: dict[str, Any] | None
    """The Deployment to create or replace, or None to leave serving objects as they are."""
    service: dict[str, Any] | None
    decisions: tuple[Decision, ...]
    requeue_at: dt.datetime | None
    report: GateReport
    watch: Target | None = None
    """What the monitor should query next for this model (None: nothing to monitor)."""
    label_pods: bool | None = None
    """Label the serving pods quarantined (True) or release them (False); None: leave them."""
    verdicts: tuple[str, ...] = ()
    """The verdict of every check taken into account by this plan (for the operator's metrics)."""


def requested_revision(md: ModelDeployment) -> Revision:
    m = md.spec.model
    return Revision(model=m.name, version=m.version, uri=m.uri, digest=m.digest, image=md.spec.serving.image)


def _stored_revision(raw: Mapping[str, Any] | None, model: str) -> Revision | None:
    if not raw:
        return None
    return Revision(
        model=model, version=raw["version"], uri=raw["uri"], digest=raw["digest"], image=raw["image"]
    )


def _revision_status(rev: Revision, admitted_at: str) -> dict[str, Any]:
    return {
        "version": rev.version,
        "uri": rev.uri,
        "digest": rev.digest,
        "image": rev.image,
        "admittedAt": admitted_at,
    }


def _ref(rev: Revision) -> dict[str, str]:
    return {"version": rev.version, "digest": rev.digest}


def _time(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """Stamp the projection hash that tells our own writes from other people's edits."""
    digest = hashlib.sha256(json.dumps(projection(obj), sort_keys=True, default=str).encode()).hexdigest()
    obj["metadata"].setdefault("annotations", {})[APPLIED_HASH] = digest[:16]
    return obj


def _applied_hash(obj: Mapping[str, Any] | None) -> str | None:
    value = ((obj or {}).get("metadata") or {}).get("annotations", {}).get(APPLIED_HASH)
    return str(value) if value is not None else None


def rollout(dep: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether a Deployment has fully rolled out with every replica ready, and a summary."""
    if not dep:
        return False, "the serving Deployment does not exist yet"
    spec, st, meta = dep.get("spec") or {}, dep.get("status") or {}, dep.get("metadata") or {}
    want = int(spec.get("replicas", 1))
    ready = int(st.get("readyReplicas", 0) or 0)
    updated = int(st.get("updatedReplicas", 0) or 0)
    available = int(st.get("availableReplicas", 0) or 0)
    current = int(st.get("observedGeneration", 0) or 0) >= int(meta.get("generation", 0) or 0)
    done = current and updated >= want and available >= want and ready >= want
    return done, f"{ready}/{want} replicas ready"


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


def _renewal_gate(obs: Observed, digest: str, since: dt.datetime, why: str) -> Gate:
    """After a rollback or quarantine, the digest needs a ModelApproval created after it."""
    fresh = [
        a.name
        for a in obs.approvals
        if a.spec.model.digest == digest
        and a.spec.decision == "approved"
        and obs.seal_ok(a)
        and (created := _time(a.metadata.get("creationTimestamp"))) is not None
        and created >= since
    ]
    when = rfc3339(since)
    if fresh:
        return Gate(
            f"new approval after {why}",
            True,
            c.APPROVALS_GRANTED,
            f"ModelApproval {', '.join(sorted(fresh))} was created after the {why} at {when}",
            "renewal",
        )
    return Gate(
        f"new approval after {why}",
        False,
        c.APPROVAL_PREDATES_QUARANTINE,
        f"{short(digest)} was withdrawn by a {why} at {when}; it serves again only with a new "
        "ModelApproval for this digest created after that time",
        "renewal",
    )


def _drift_evidence(states: Sequence[MetricState], checks: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in states:
        check = checks.get(s.name)
        out.append(
            {
                "metric": s.name,
                "status": s.status,
                "value": s.value,
                "reason": s.reason,
                "message": s.message,
                "consecutiveFailures": s.consecutive_failures,
                "min": getattr(check, "min", None),
                "max": getattr(check, "max", None),
                "checkedAt": rfc3339(s.checked_at),
            }
        )
    return out


def plan(obs: Observed, now: dt.datetime) -> Plan:
    md = obs.deployment
    meta = obs.body.get("metadata") or {}
    old = dict(obs.body.get("status") or {})
    generation = int(meta.get("generation") or 0)
    stamp = rfc3339(now)
    requested = requested_revision(md)
    rejected = {str(r["digest"]): dict(r) for r in old.get("rejectedDigests") or []}
    quarantined_at: str | None = old.get("quarantinedAt")

    # 1. Gates, with approvals older than a rollback or quarantine of this digest not counting.
    rej = rejected.get(requested.digest)
    withdrawn_at = _time(rej.get("time")) if rej else None
    report = evaluate(
        GateInput(
            deployment=md,
            policies=obs.policies,
            approvals=obs.approvals,
            evaluations=obs.evaluations,
            now=now,
            allow_no_policy=obs.allow_no_policy,
            seal_ok=obs.seal_ok if obs.seal_valid is not None else None,
            not_before=withdrawn_at,
            references=obs.references,
        )
    )
    gates = list(report.gates)
    if rej and withdrawn_at:
        why = "quarantine" if rej.get("reason") == c.QUARANTINED_REASON else "rollback"
        gates.append(_renewal_gate(obs, requested.digest, withdrawn_at, why))
    admitted = all(g.satisfied for g in gates) and report.admitted
    approved = report.approved and all(g.satisfied for g in gates if g.kind == "renewal")
    evidence = _evidence(obs, report)
    decisions: list[Decision] = []
    label_pods: bool | None = None

    # 2. Which revision serves.
    serving = _stored_revision(old.get("servingRevision"), md.spec.model.name)
    serving_raw = old.get("servingRevision")
    old_admitted = next((x for x in old.get("conditions") or [] if x.get("type") == c.ADMITTED), None)
    first = next((g for g in gates if not g.satisfied), None)
    blocked_message = f"{describe(requested)} is not admitted: {first.message}" if first else ""
    spec_serving = md.spec.serving
    resources = (
        spec_serving.resources.model_dump(by_alias=True, exclude_defaults=True)
        if spec_serving.resources
        else {}
    )
    sspec = ServingSpec(
        spec_serving.replicas,
        spec_serving.port,
        resources,
        [{"name": e.name, "value": e.value or ""} for e in spec_serving.env],
    )
    replicas = sspec.replicas
    target: Revision | None = serving
    if admitted:
        target = requested
        if rej:
            del rejected[requested.digest]
            decisions.append(
                Decision(
                    c.ACTION_RELEASED,
                    c.APPROVALS_GRANTED,
                    f"Re-admitted {describe(requested)}: a new approval was given after the "
                    f"{'quarantine' if rej.get('reason') == c.QUARANTINED_REASON else 'rollback'}",
                    stamp,
                    evidence,
                    _ref(requested),
                )
            )
        if serving != requested:
            serving_raw = _revision_status(requested, stamp)
            decisions.append(
                Decision(
                    c.ACTION_ADMITTED,
                    c.ADMITTED_REASON,
                    f"Admitted {describe(requested)}: every gate is satisfied",
                    stamp,
                    evidence,
                    _ref(requested),
                )
            )
        elif old_admitted is not None and old_admitted.get("status") != c.TRUE and not rej:
            decisions.append(
                Decision(
                    c.ACTION_ADMITTED,
                    c.ADMITTED_REASON,
                    f"Re-admitted {describe(requested)}: every gate is satisfied again",
                    stamp,
                    evidence,
                    _ref(requested),
                )
            )
    elif serving is not None and serving == requested and not rej and report.on_revocation == "suspend":
        replicas = 0
    if not admitted and (
        old_admitted is None
        or old_admitted.get("status") != c.FALSE
        or old_admitted.get("message") != blocked_message
    ):
        action = c.ACTION_SUSPENDED if (serving == requested and replicas == 0) else c.ACTION_BLOCKED
        decisions.append(
            Decision(
                action,
                first.reason if first else c.GATES_FAILED,
                blocked_message,
                stamp,
                evidence,
                _ref(requested),
                warning=True,
            )
        )

    # 3. Quarantine in force: the quarantined digest still serves (pods kept) without traffic.
    quarantined = bool(
        quarantined_at
        and target is not None
        and rejected.get(target.digest, {}).get("reason") == c.QUARANTINED_REASON
    )
    if quarantined_at and not quarantined:
        quarantined_at = None
        label_pods = False

    # 4. Monitoring the revision that serves traffic.
    checks = checks_for(md, obs.policies)
    by_name = {ch.name: ch for ch in checks}
    watched = target if target is not None and replicas > 0 and not quarantined else None
    fresh_revision = serving_raw is not old.get("servingRevision")
    stored = [] if fresh_revision else list(old.get("metrics") or [])
    readings = obs.readings if obs.readings and watched and obs.readings.digest == watched.digest else None
    outcome: MonitoringOutcome = advance_metrics(stored, checks, readings if watched else None)
    outcome_verdicts = [s.status for s in outcome.states if readings and s.name in readings.samples]
    for s in outcome.changed:
        verb = {"Pass": "CheckPassed", "Fail": "CheckFailed"}.get(s.status, "CheckInconclusive")
        decisions.append(
            Decision(
                verb,
                s.reason or verb,
                f"{s.name}: {s.message}",
                stamp,
                {
                    "checks": _drift_evidence([s], by_name),
                    "query": readings.samples[s.name].query if readings else "",
                },
                _ref(watched) if watched else None,
                warning=s.status != "Pass",
            )
        )
    old_drifted = next((x for x in old.get("conditions") or [] if x.get("type") == c.DRIFTED), None)
    # Once, at the reading that reaches the inconclusive limit (not on every pass while it lasts).
    newly_inconclusive = readings is not None and any(
        s.name in readings.samples
        and s.consecutive_inconclusive == s.inconclusive_limit
        and not s.limit_reached
        for s in outcome.states
    )
    if outcome.summary.status == c.UNKNOWN and newly_inconclusive:
        decisions.append(
            Decision(
                "MetricsInconclusive",
                outcome.summary.condition.reason,
                outcome.summary.condition.message,
                stamp,
                {},
                None,
                warning=True,
            )
        )

    # 5. Intervention, once per drifting digest.
    rolled_back: str | None = None
    if outcome.summary.act and watched is not None and watched.digest not in rejected:
        action = on_drift(md)
        drift_ev = {
            "checks": _drift_evidence([s for s in outcome.states if s.limit_reached], by_name),
            "revision": _ref(watched),
        }
        message = outcome.summary.condition.message
        if action == "alert":
            if (old_drifted or {}).get("status") != c.TRUE:
                decisions.append(
                    Decision(
                        c.ACTION_DRIFT_DETECTED,
                        c.DRIFT_DETECTED,
                        f"Drift detected on {describe(watched)} (onDrift: alert): {message}",
                        stamp,
                        drift_ev,
                        _ref(watched),
                        warning=True,
                    )
                )
        else:
            good = [
                g
                for g in reversed(old.get("knownGood") or [])
                if g["digest"] != watched.digest and g["digest"] not in rejected
            ]
            if action == "rollback" and good:
                back = _stored_revision(good[0], md.spec.model.name)
                assert back is not None
                rejected[watched.digest] = {
                    "digest": watched.digest,
                    "reason": c.DRIFT_DETECTED,
                    "time": stamp,
                }
                decisions.append(
                    Decision(
                        c.ACTION_ROLLED_BACK,
                        c.DRIFT_DETECTED,
                        f"Rolled back {describe(watched)} to {describe(back)}: {message}",
                        stamp,
                        {**drift_ev, "to": _ref(back)},
                        _ref(back),
                        warning=True,
                    )
                )
                target, serving_raw = back, _revision_status(back, stamp)
                outcome = advance_metrics([], checks, None)
            else:
                why = "" if action == "quarantine" else " (no last known good revision to roll back to)"
                rejected[watched.digest] = {
                    "digest": watched.digest,
                    "reason": c.QUARANTINED_REASON,
                    "time": stamp,
                }
                quarantined, quarantined_at, label_pods = True, stamp, True
                outcome = advance_metrics([], checks, None)  # a release starts counting afresh
                decisions.append(
                    Decision(
                        c.ACTION_QUARANTINED,
                        c.DRIFT_DETECTED,
                        f"Quarantined {describe(watched)}{why}: traffic cut, pods kept: {message}",
                        stamp,
                        drift_ev,
                        _ref(watched),
                        warning=True,
                    )
                )
    req_rej = rejected.get(requested.digest)
    if req_rej and not rej:  # withdrawn by this very plan: the renewal gate applies from now on
        why = "quarantine" if req_rej.get("reason") == c.QUARANTINED_REASON else "rollback"
        withdrawn = _time(req_rej["time"])
        assert withdrawn is not None
        gates.append(_renewal_gate(obs, requested.digest, withdrawn, why))
        admitted = approved = False
        first = next((g for g in gates if not g.satisfied), None)
        blocked_message = f"{describe(requested)} is not admitted: {first.message}" if first else ""
    latest = max(rejected.values(), key=lambda r: str(r["time"]), default=None)
    if req_rej and req_rej.get("reason") == c.DRIFT_DETECTED and target is not None and target != requested:
        rolled_back = (
            f"{describe(requested)} was rolled back after drift at {req_rej['time']}; "
            f"{describe(target)} serves instead"
        )
    elif (
        latest
        and latest.get("reason") == c.DRIFT_DETECTED
        and target is not None
        and target != requested
        and latest["digest"] != target.digest
    ):
        # An older serving revision drifted while a newer one waits for its evidence.
        rolled_back = (
            f"{short(latest['digest'])} was rolled back after drift at {latest['time']}; "
            f"{describe(target)} serves instead while {describe(requested)} is not admitted"
        )

    # 6. Serving objects for the final target.
    owner = Owner(md.api_version, md.kind, md.name, md.namespace or "", str(meta.get("uid", "")))
    want_dep = want_svc = None
    if target is not None:
        want_dep = with_hash(
            desired_deployment(owner, target, ServingSpec(replicas, sspec.port, sspec.resources, sspec.env))
        )
        want_svc = with_hash(desired_service(owner, target, sspec, quarantined=quarantined))
    dep_matches = projection(obs.owned_deployment) == projection(want_dep) if want_dep else True
    svc_matches = projection(obs.owned_service) == projection(want_svc) if want_svc else True
    for kind, want, have, matches in (
        ("Deployment", want_dep, obs.owned_deployment, dep_matches),
        ("Service", want_svc, obs.owned_service, svc_matches),
    ):
        if want and have and not matches and _applied_hash(have) == _applied_hash(want):
            decisions.append(
                Decision(
                    "TamperReverted",
                    "TamperReverted",
                    f"Reverted an edit to {kind} {md.name} that modelgate did not make",
                    stamp,
                    {
                        "object": {"kind": kind, "name": md.name},
                        "observed": projection(have),
                        "desired": projection(want),
                    },
                    None,
                    warning=True,
                )
            )
    done, summary = rollout(obs.owned_deployment)
    ready_now = target is not None and dep_matches and done

    # 7. Conditions, phase, known-good revisions, status.
    conds, phase = conditions(
        Situation(
            requested=requested,
            target=target,
            admitted=admitted,
            approved=approved,
            evaluated=report.evaluated,
            gates=tuple(gates),
            replicas=replicas,
            ready=ready_now,
            rollout=summary,
            blocked_message=blocked_message,
            drift=outcome.summary,
            quarantined_since=quarantined_at if quarantined else None,
            rolled_back=rolled_back,
        )
    )
    known_good = [dict(g) for g in old.get("knownGood") or []]
    if (
        admitted
        and ready_now
        and serving_raw
        and target == requested
        and not quarantined
        and passed(outcome, checks)
        and (not checks or readings is not None or stored)
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
            for g in gates
        ],
        "history": history[-c.HISTORY_LIMIT :],
    }
    if serving_raw and target is not None:
        status["servingRevision"] = serving_raw
    if known_good:
        status["knownGood"] = known_good
        status["lastKnownGood"] = known_good[-1]
    if outcome.metrics:
        status["metrics"] = outcome.metrics
    if rejected:
        status["rejectedDigests"] = list(rejected.values())[-50:]
    if quarantined and quarantined_at:
        status["quarantinedAt"] = quarantined_at
    watch = None
    watched = target if target is not None and replicas > 0 and not quarantined else None
    if watched is not None and checks:
        watch = Target(
            md.namespace or "",
            md.name,
            watched.model,
            watched.version,
            watched.digest,
            interval_of(md),
            checks,
        )
    return Plan(
        status=status,
        deployment=None if dep_matches else want_dep,
        service=None if svc_matches else want_svc,
        decisions=tuple(decisions),
        requeue_at=report.next_change,
        report=report,
        watch=watch,
        label_pods=label_pods,
        verdicts=tuple(outcome_verdicts),
    )
