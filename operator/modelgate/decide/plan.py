"""From an observed snapshot to a plan: the status to store, the serving objects wanted, the
decisions to record. Pure: `now` is passed in, nothing here reads a clock or the network.

The revision rule: only an admitted revision is ever served. When the requested revision (spec)
is admitted it becomes `servingRevision`. When it is not:
- and nothing serves yet, nothing is created (Blocked);
- and an older revision serves, that revision keeps serving untouched (the new one is Blocked,
  status shows both: `servingRevision` the old one, `gates` the new one);
- and it is the revision that serves (its evidence was revoked or expired), the strictest
  selecting policy's `onRevocation` applies: `suspend` scales it to zero, `keep` keeps it serving
  with Approved=False (Degraded).
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
from modelgate.decide.conditions import Cond, merge_conditions, rfc3339
from modelgate.decide.gates import GateInput, GateReport, evaluate
from modelgate.decide.serving import (
    Owner,
    Revision,
    ServingSpec,
    desired_deployment,
    desired_service,
    projection,
)

APPLIED_HASH = "modelgate.io/applied-hash"
"""Annotation on owned objects: the hash of the projection modelgate last applied. An object whose
projection no longer matches its own hash was edited by someone else (tampering)."""


@dataclass(frozen=True)
class Observed:
    """Everything one reconcile decides from, gathered before any decision."""

    body: Mapping[str, Any]
    """The ModelDeployment as the API server returned it (metadata, spec, status)."""
    deployment: ModelDeployment
    policies: Sequence[GovernancePolicy]
    """The policies that select this model (namespace labels and risk level already matched)."""
    approvals: Mapping[str, ModelApproval | None]
    evaluations: Mapping[str, ModelEvaluation | None]
    owned_deployment: Mapping[str, Any] | None
    owned_service: Mapping[str, Any] | None
    allow_no_policy: bool = False
    seal_valid: Mapping[tuple[str, str], bool] | None = None
    """Whether each referenced (kind, name) carries a valid seal; None when sealing is not enforced."""

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


def short(digest: str) -> str:
    return digest[:19] + "…" if len(digest) > 19 else digest


def describe(rev: Revision) -> str:
    return f"{rev.model} {rev.version} ({short(rev.digest)})"


def with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """Stamp the projection hash that tells our own writes from other people's edits."""
    digest = hashlib.sha256(json.dumps(projection(obj), sort_keys=True, default=str).encode()).hexdigest()
    obj["metadata"].setdefault("annotations", {})[APPLIED_HASH] = digest[:16]
    return obj


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
        meta = o.metadata
        out: dict[str, Any] = {
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "digest": o.spec.model.digest,
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

    md = obs.deployment
    return {
        "model": {
            "name": md.spec.model.name,
            "version": md.spec.model.version,
            "digest": md.spec.model.digest,
        },
        "policies": [{"name": p.name, "uid": p.metadata.get("uid")} for p in obs.policies],
        "approvals": [ident(a) for n in report.counted_approvals if (a := obs.approvals.get(n))],
        "evaluations": [ident(e) for n in report.counted_evaluations if (e := obs.evaluations.get(n))],
        "failedGates": [{"requirement": g.requirement, "reason": g.reason} for g in report.failures],
    }


def plan(obs: Observed, now: dt.datetime) -> Plan:
    md = obs.deployment
    meta = obs.body.get("metadata") or {}
    old = dict(obs.body.get("status") or {})
    generation = int(meta.get("generation") or 0)
    stamp = rfc3339(now)
    report = evaluate(
        GateInput(
            deployment=md,
            policies=obs.policies,
            approvals=obs.approvals,
            evaluations=obs.evaluations,
            now=now,
            allow_no_policy=obs.allow_no_policy,
            seal_ok=obs.seal_ok if obs.seal_valid is not None else None,
        )
    )
    owner = Owner(md.api_version, md.kind, md.name, md.namespace or "", str(meta.get("uid", "")))
    requested = requested_revision(md)
    serving = _stored_revision(old.get("servingRevision"), md.spec.model.name)
    serving_raw = old.get("servingRevision")
    spec_serving = md.spec.serving
    resources = (
        spec_serving.resources.model_dump(by_alias=True, exclude_defaults=True)
        if spec_serving.resources
        else {}
    )
    sspec = ServingSpec(
        replicas=spec_serving.replicas,
        port=spec_serving.port,
        resources=resources,
        env=[{"name": e.name, "value": e.value or ""} for e in spec_serving.env],
    )
    decisions: list[Decision] = []
    evidence = _evidence(obs, report)
    first = report.failures[0] if report.failures else None
    old_admitted = next((x for x in old.get("conditions") or [] if x.get("type") == c.ADMITTED), None)

    target: Revision | None
    replicas = sspec.replicas
    if report.admitted:
        target = requested
        if serving != requested:
            serving_raw = _revision_status(requested, stamp)
            decisions.append(
                Decision(
                    c.ACTION_ADMITTED,
                    c.ADMITTED_REASON,
                    f"Admitted {describe(requested)}: every gate is satisfied",
                    stamp,
                    evidence,
                    {"version": requested.version, "digest": requested.digest},
                )
            )
        elif old_admitted is not None and old_admitted.get("status") != c.TRUE:
            decisions.append(
                Decision(
                    c.ACTION_ADMITTED,
                    c.ADMITTED_REASON,
                    f"Re-admitted {describe(requested)}: every gate is satisfied again",
                    stamp,
                    evidence,
                    {"version": requested.version, "digest": requested.digest},
                )
            )
    elif serving is not None and serving == requested:
        target = serving
        if report.on_revocation == "suspend":
            replicas = 0
    else:
        target = serving  # an older admitted revision keeps serving untouched, or nothing serves

    blocked_message = f"{describe(requested)} is not admitted: {first.message}" if first else ""
    if not report.admitted and (
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
                {"version": requested.version, "digest": requested.digest},
                warning=True,
            )
        )

    want_dep = want_svc = None
    if target is not None:
        want_dep = with_hash(
            desired_deployment(owner, target, ServingSpec(replicas, sspec.port, sspec.resources, sspec.env))
        )
        want_svc = with_hash(desired_service(owner, target, sspec))
    dep_matches = projection(obs.owned_deployment) == projection(want_dep) if want_dep else True
    svc_matches = projection(obs.owned_service) == projection(want_svc) if want_svc else True
    for name, want, have, matches in (
        ("Deployment", want_dep, obs.owned_deployment, dep_matches),
        ("Service", want_svc, obs.owned_service, svc_matches),
    ):
        if want and have and not matches and _applied_hash(have) == _applied_hash(want):
            decisions.append(
                Decision(
                    "TamperReverted",
                    "TamperReverted",
                    f"Reverted an edit to {name} {md.name} that modelgate did not make",
                    stamp,
                    {
                        "object": {"kind": name, "name": md.name},
                        "observed": projection(have),
                        "desired": projection(want),
                    },
                    None,
                    warning=True,
                )
            )
    done, summary = rollout(obs.owned_deployment)
    ready_now = target is not None and dep_matches and done

    conds, phase = _conditions(report, requested, target, replicas, ready_now, summary, blocked_message)
    last_known_good = old.get("lastKnownGood")
    if (
        report.admitted
        and ready_now
        and serving_raw
        and (
            not last_known_good
            or last_known_good.get("digest") != requested.digest
            or last_known_good.get("version") != requested.version
        )
    ):
        last_known_good = dict(serving_raw)
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
        **{k: v for k, v in old.items() if k in ("metrics", "rejectedDigests", "quarantinedAt")},
        "observedGeneration": generation,
        "phase": phase,
        "conditions": merge_conditions(old.get("conditions") or [], conds, generation, now),
        "gates": [
            {"requirement": g.requirement, "satisfied": g.satisfied, "reason": g.reason, "message": g.message}
            for g in report.gates
        ],
        "history": history[-c.HISTORY_LIMIT :],
    }
    if serving_raw and target is not None:
        status["servingRevision"] = serving_raw
    if last_known_good:
        status["lastKnownGood"] = last_known_good
    return Plan(
        status=status,
        deployment=None if dep_matches else want_dep,
        service=None if svc_matches else want_svc,
        decisions=tuple(decisions),
        requeue_at=report.next_change,
        report=report,
    )


def _applied_hash(obj: Mapping[str, Any] | None) -> str | None:
    value = ((obj or {}).get("metadata") or {}).get("annotations", {}).get(APPLIED_HASH)
    return str(value) if value is not None else None


def _conditions(
    report: GateReport,
    requested: Revision,
    target: Revision | None,
    replicas: int,
    ready: bool,
    summary: str,
    blocked_message: str,
) -> tuple[list[Cond], str]:
    def gate_cond(ctype: str, ok: bool, kinds: tuple[str, ...], ok_reason: str, ok_msg: str) -> Cond:
        bad = [g for g in report.failures if g.kind in kinds]
        if ok:
            return Cond(ctype, c.TRUE, ok_reason, ok_msg)
        first = bad[0] if bad else (report.failures[0] if report.failures else None)
        return Cond(
            ctype,
            c.FALSE,
            first.reason if first else c.GATES_FAILED,
            "; ".join(g.message for g in bad) if bad else (first.message if first else ""),
        )

    approved = gate_cond(
        c.APPROVED,
        report.approved,
        ("approval", "separation", "reference", "policy"),
        c.APPROVALS_GRANTED,
        f"every required approval is present for {describe(requested)}",
    )
    evaluated = gate_cond(
        c.EVALUATED,
        report.evaluated,
        ("evaluation", "reference", "policy"),
        c.EVALUATIONS_PASSED,
        f"every required evaluation passes for {describe(requested)}",
    )
    if report.admitted:
        admitted = Cond(c.ADMITTED, c.TRUE, c.ADMITTED_REASON, f"{describe(requested)} satisfies every gate")
    else:
        first = report.failures[0] if report.failures else None
        admitted = Cond(c.ADMITTED, c.FALSE, first.reason if first else c.GATES_FAILED, blocked_message)

    if report.admitted:
        phase = c.PHASE_SERVING if ready else c.PHASE_PROGRESSING
        ready_c = (
            Cond(c.READY, c.TRUE, c.SERVING_READY, f"{describe(requested)} serves: {summary}")
            if ready
            else Cond(
                c.READY, c.FALSE, c.ROLLOUT_IN_PROGRESS, f"rolling out {describe(requested)}: {summary}"
            )
        )
    elif target is not None and target == requested and replicas > 0:
        phase = c.PHASE_DEGRADED
        ready_c = Cond(
            c.READY,
            c.TRUE if ready else c.FALSE,
            c.APPROVAL_REVOKED,
            f"{describe(target)} keeps serving ({summary}) although its evidence no longer "
            "satisfies every gate (policy onRevocation: keep)",
        )
    elif target is not None and target == requested:
        phase = c.PHASE_BLOCKED
        ready_c = Cond(
            c.READY,
            c.FALSE,
            c.APPROVAL_REVOKED,
            f"{describe(target)} is suspended (scaled to zero): {blocked_message}",
        )
    elif target is not None:
        phase = c.PHASE_BLOCKED
        ready_c = Cond(
            c.READY,
            c.FALSE,
            c.NOT_ADMITTED,
            f"{blocked_message}; {describe(target)} keeps serving ({summary})",
        )
    else:
        phase = c.PHASE_BLOCKED
        ready_c = Cond(c.READY, c.FALSE, c.NOT_ADMITTED, blocked_message)
    drifted = Cond(c.DRIFTED, c.FALSE, c.MONITORING_NOT_CONFIGURED, "no drift checks have run")
    quarantined = Cond(c.QUARANTINED, c.FALSE, c.NOT_QUARANTINED, "the model is not quarantined")
    return [ready_c, approved, evaluated, admitted, drifted, quarantined], phase
