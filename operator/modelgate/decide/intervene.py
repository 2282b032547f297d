"""Plan steps 3 and 4: advance the monitoring counters of the revision that serves traffic, and
intervene when it drifts. Pure.

A round of readings counts only for the revision it was taken from (the digest it is tagged with),
and only while that revision serves traffic (replicas > 0, not quarantined). When a metric reaches
its failure limit, `onDrift` (the strictest of the model's and its policies') runs once per drifting
digest: `rollback` serves the newest known-good revision with another digest (none: quarantine
instead), `quarantine` cuts the Service off from the pods and keeps them, `alert` only reports.
When a policy metric stays Inconclusive past its limit, the policies' `onInconclusive` runs the
same way (reason MetricsInconclusive; `alert`, the default, only reports). The withdrawn digest is
recorded in `rejectedDigests` (and, by the runtime, in its ModelRecord): the spec is never edited,
and a GitOps re-sync of the same spec does not bring it back.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GovernancePolicy, MetricCheck, ModelDeployment
from modelgate.decide.conditions import rfc3339
from modelgate.decide.drift import MetricState
from modelgate.decide.monitoring import (
    MonitoringOutcome,
    Readings,
    advance_metrics,
    inconclusive_message,
    on_drift,
    on_inconclusive,
    retention_of,
    stuck_policy_metrics,
)
from modelgate.decide.phase import describe, short
from modelgate.decide.revision import requested_revision_id
from modelgate.decide.serving import Revision, ServingSpec
from modelgate.decide.types import Decision

_VERB = {c.METRIC_PASS: c.ACTION_CHECK_PASSED, c.METRIC_FAIL: c.ACTION_CHECK_FAILED}


def ref(rev: Revision) -> dict[str, str]:
    """The revision as a history entry names it."""
    return {"version": rev.version, "digest": rev.digest}


def stored_revision(raw: Mapping[str, Any] | None, model: str) -> Revision | None:
    """A revision as status.servingRevision / knownGood keep it."""
    if not raw:
        return None
    return Revision(
        model=model,
        version=raw["version"],
        uri=raw["uri"],
        digest=raw["digest"],
        image=raw["image"],
        id=str(raw.get("revision") or ""),
    )


def revision_status(rev: Revision, admitted_at: str, serving: ServingSpec) -> dict[str, Any]:
    """status.servingRevision for an admitted revision: what it is, and the covered serving fields
    it is served with for as long as it serves."""
    out: dict[str, Any] = {"version": rev.version, "uri": rev.uri, "digest": rev.digest, "image": rev.image}
    if rev.id:
        out["revision"] = rev.id
    out |= {"port": serving.port, "env": [dict(e) for e in serving.env], "admittedAt": admitted_at}
    return out


def served_with(spec: ServingSpec, raw: Mapping[str, Any] | None, operational: frozenset[str]) -> ServingSpec:
    """The serving fields of a stored revision: its own port and env unless the policies count them
    as operational (then the spec's), the spec's replicas and resources."""
    if not raw:
        return spec
    port = spec.port if "port" in operational or raw.get("port") is None else int(raw["port"])
    env = spec.env if "env" in operational or "env" not in raw else [dict(e) for e in raw["env"]]
    return ServingSpec(spec.replicas, port, spec.resources, env)


@dataclass(frozen=True)
class Watching:
    """Step 3's result: the counters of the revision that serves traffic, after this round."""

    watched: Revision | None
    """The revision whose readings count (None: nothing serves traffic)."""
    outcome: MonitoringOutcome
    readings: Readings | None
    """The round taken into account (None: none for the watched revision)."""
    stored: bool
    """Counters were carried over from status (the watched revision did not just change)."""
    decisions: tuple[Decision, ...]
    verdicts: tuple[str, ...]


def advance(
    checks: Sequence[MetricCheck],
    watched: Revision | None,
    stored_metrics: Sequence[Mapping[str, Any]],
    readings: Readings | None,
    stamp: str,
) -> Watching:
    """Step 3: take a round of readings into account for the watched revision (counters from
    `stored_metrics`, empty when the watched revision just changed)."""
    by_name = {ch.name: ch for ch in checks}
    if not (readings and watched and readings.digest == watched.digest):
        readings = None
    outcome = advance_metrics(stored_metrics, checks, readings)
    verdicts = tuple(s.status for s in outcome.states if readings and s.name in readings.samples)
    decisions = [
        Decision(
            _VERB.get(s.status, c.ACTION_CHECK_INCONCLUSIVE),
            s.reason or _VERB.get(s.status, c.ACTION_CHECK_INCONCLUSIVE),
            f"{s.name}: {s.message}",
            stamp,
            {
                "checks": drift_evidence([s], by_name),
                "query": readings.samples[s.name].query if readings else "",
            },
            ref(watched) if watched else None,
            warning=s.status != c.METRIC_PASS,
        )
        for s in outcome.changed
    ]
    # Once, at the reading that reaches the inconclusive limit (not on every pass while it lasts).
    newly_inconclusive = readings is not None and any(
        s.name in readings.samples
        and s.consecutive_inconclusive == s.inconclusive_limit
        and not s.limit_reached
        for s in outcome.states
    )
    if outcome.summary.status == c.UNKNOWN and newly_inconclusive:
        cond = outcome.summary.condition
        decisions.append(
            Decision(c.ACTION_METRICS_INCONCLUSIVE, cond.reason, cond.message, stamp, {}, None, warning=True)
        )
    return Watching(watched, outcome, readings, bool(stored_metrics), tuple(decisions), verdicts)


@dataclass(frozen=True)
class Intervention:
    """Step 4's result: what serves after a drift was acted on."""

    target: Revision | None
    serving_raw: Mapping[str, Any] | None
    rejected: dict[str, dict[str, Any]]
    quarantined_at: str | None
    """Set when this step quarantined the watched revision."""
    outcome: MonitoringOutcome
    decisions: tuple[Decision, ...]


ROLLBACK_REASONS = (c.DRIFT_DETECTED, c.METRICS_INCONCLUSIVE)
"""rejectedDigests reasons of a rollback (a quarantine's is Quarantined)."""


def _cause(rej: Mapping[str, Any]) -> str:
    return "inconclusive metrics" if rej.get("reason") == c.METRICS_INCONCLUSIVE else "drift"


def _trigger(
    md: ModelDeployment, policies: Sequence[GovernancePolicy], outcome: MonitoringOutcome
) -> tuple[str | None, str, str, list[MetricState]]:
    """(action, reason, message, metrics) of the intervention due, if any: onDrift at a drift,
    onInconclusive when a policy metric is stuck Inconclusive past its limit."""
    if outcome.summary.act:
        drifted = [s for s in outcome.states if s.limit_reached]
        return on_drift(md, policies), c.DRIFT_DETECTED, outcome.summary.condition.message, drifted
    stuck = list(stuck_policy_metrics(outcome.states, policies))
    action = on_inconclusive(policies)
    if not stuck or action == "alert":
        return None, c.DRIFT_DETECTED, "", []
    why = "; ".join(inconclusive_message(s) for s in stuck)
    return (
        action,
        c.METRICS_INCONCLUSIVE,
        f"policy metrics inconclusive past their limit (onInconclusive: {action}): {why}",
        stuck,
    )


def _withdrawn(
    watched: Revision, md: ModelDeployment, policies: Sequence[GovernancePolicy]
) -> dict[str, str]:
    """The withdrawn revision, for its ModelRecord: its revision id when it is the requested one."""
    out = {"model": watched.model, **ref(watched)}
    rid = watched.id or ""
    if not rid and watched.digest == md.spec.model.digest:
        rid = requested_revision_id(md, policies)
    if rid:
        out["revisionId"] = rid
    return out


def intervene(
    md: ModelDeployment,
    policies: Sequence[GovernancePolicy],
    checks: Sequence[MetricCheck],
    watching: Watching,
    target: Revision | None,
    serving_raw: Mapping[str, Any] | None,
    rejected: Mapping[str, Mapping[str, Any]],
    known_good: Sequence[Mapping[str, Any]],
    old_drifted: Mapping[str, Any] | None,
    stamp: str,
    admissible: Callable[[Mapping[str, Any]], bool] = lambda _: True,
) -> Intervention:
    """Step 4: run onDrift (or onInconclusive) once per withdrawn digest. A rollback goes only to a
    known-good revision that passes its gates now (`admissible`); with none, the model is
    quarantined instead."""
    withdrawn = {k: dict(v) for k, v in rejected.items()}
    outcome, watched = watching.outcome, watching.watched
    unchanged = Intervention(target, serving_raw, withdrawn, None, outcome, ())
    action, cause, message, acted = _trigger(md, policies, outcome)
    if action is None or watched is None or watched.digest in withdrawn:
        return unchanged
    by_name = {ch.name: ch for ch in checks}
    drift_ev = {
        "checks": drift_evidence(acted, by_name),
        "revision": ref(watched),
        "withdrawn": _withdrawn(watched, md, policies),
    }
    if action == "alert":
        if (old_drifted or {}).get("status") == c.TRUE:
            return unchanged
        alert = Decision(
            c.ACTION_DRIFT_DETECTED,
            c.DRIFT_DETECTED,
            f"Drift detected on {describe(watched)} (onDrift: alert): {message}",
            stamp,
            drift_ev,
            ref(watched),
            warning=True,
        )
        return replace(unchanged, decisions=(alert,))
    reset = advance_metrics([], checks, None)  # the next revision (or a release) starts counting afresh
    candidates = rollback_candidates(known_good, watched.digest, withdrawn)
    back_raw = next((g for g in candidates if admissible(g)), None) if action == "rollback" else None
    if back_raw is not None:  # the newest one that passes its gates now (each candidate is judged)
        back = stored_revision(back_raw, md.spec.model.name)
        assert back is not None
        withdrawn[watched.digest] = {"digest": watched.digest, "reason": cause, "time": stamp}
        rolled = Decision(
            c.ACTION_ROLLED_BACK,
            cause,
            f"Rolled back {describe(watched)} to {describe(back)}: {message}",
            stamp,
            {**drift_ev, "to": ref(back)},
            ref(back),
            warning=True,
        )
        return Intervention(back, {**back_raw, "admittedAt": stamp}, withdrawn, None, reset, (rolled,))
    why = (
        ""
        if action == "quarantine"
        else " (no known-good revision passes its gates now to roll back to)"
        if candidates
        else " (no last known good revision to roll back to)"
    )
    withdrawn[watched.digest] = {"digest": watched.digest, "reason": c.QUARANTINED_REASON, "time": stamp}
    quarantine = Decision(
        c.ACTION_QUARANTINED,
        cause,
        f"Quarantined {describe(watched)}{why}: traffic cut, pods kept: {message}",
        stamp,
        {**drift_ev, "retention": retention_of(policies)},
        ref(watched),
        warning=True,
    )
    return Intervention(target, serving_raw, withdrawn, stamp, reset, (quarantine,))


def rollback_candidates(
    known_good: Sequence[Mapping[str, Any]], digest: str, withdrawn: Container[str]
) -> list[Mapping[str, Any]]:
    """The known-good revisions a rollback of `digest` may go to, newest first."""
    return [g for g in reversed(known_good) if g["digest"] != digest and g["digest"] not in withdrawn]


def rolled_back_message(
    requested: Revision, target: Revision | None, rejected: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """Why another revision serves than the one requested after a drift, if one does."""
    if target is None or target == requested:
        return None
    req_rej = rejected.get(requested.digest)
    if req_rej and req_rej.get("reason") in ROLLBACK_REASONS:
        return (
            f"{describe(requested)} was rolled back after {_cause(req_rej)} at {req_rej['time']}; "
            f"{describe(target)} serves instead"
        )
    latest = max(rejected.values(), key=lambda r: str(r["time"]), default=None)
    if latest and latest.get("reason") in ROLLBACK_REASONS and latest["digest"] != target.digest:
        # An older serving revision drifted while a newer one waits for its evidence.
        return (
            f"{short(latest['digest'])} was rolled back after {_cause(latest)} at {latest['time']}; "
            f"{describe(target)} serves instead while {describe(requested)} is not admitted"
        )
    return None


def drift_evidence(states: Sequence[MetricState], checks: Mapping[str, MetricCheck]) -> list[dict[str, Any]]:
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
