"""Retiring a deleted ModelDeployment: its serving objects removed, the retirement recorded.

modelgate's finalizer (the mutating webhook puts it on every ModelDeployment) holds the object
until then. The retirement is a pass of the model's own reconcile loop (runtime/reconcile.py), so
only the leader retires and it never races a pass that might recreate the serving objects; our
code, not Kopf, then removes the finalizer (no Kopf deletion handler: Kopf would add and remove
finalizers, and write progress annotations, from every replica).

A quarantined model's pods are kept for the policies' quarantineRetention: its Deployment is deleted
orphaning them, and its ModelRecord owns them until then.

The retirement is a signed decision record like every other (decide/trail.py), and the model's
final evidence bundle (decide/bundle.py: its history plus that record, signed with the current
key) is written to the audit log before the finalizer comes off: once the object is gone, the log
pipeline alone still holds the whole lifecycle, checkable with `modelgate verify`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from modelgate.act import audit, kube
from modelgate.act import records as act_records
from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import FINALIZER, parse_duration
from modelgate.decide import bundle, ids, seal, trail
from modelgate.decide.conditions import rfc3339
from modelgate.decide.monitoring import DEFAULT_RETENTION
from modelgate.decide.records import in_force, record_name, retained_until
from modelgate.decide.records import keep as keep_record
from modelgate.decide.recovery import replay
from modelgate.decide.types import Decision
from modelgate.observe import metrics
from modelgate.observe.bundle import gather

MADE_BY = "modelgate operator at the retirement"


async def _keep_quarantined(
    ns: str, name: str, status: Mapping[str, Any], uid: str | None, now: dt.datetime, decision: str
) -> dict[str, Any] | None:
    """Hand a quarantined model's ReplicaSets and pods to its ModelRecord for the retention; None
    when the model is not quarantined (or no record holds the quarantine). A retirement retried
    after a crash keeps the retention the record already holds for it, and adds no second entry."""
    serving = status.get("servingRevision") or {}
    if not status.get("quarantinedAt") or not serving.get("digest"):
        return None
    record = await act_records.read(ns, record_name(str(serving.get("model") or ""), serving["digest"]))
    if record is None:
        return None
    retention = str(((record.get("spec") or {}).get("kept") or {}).get("retention") or DEFAULT_RETENTION)
    before = retained_until(record["spec"], decision)
    until = dt.datetime.fromisoformat(before) if before else now + parse_duration(retention)
    sets, pods = await act_records.keep(ns, name, record, until)
    current = await act_records.read(ns, record["metadata"]["name"]) or record
    spec = keep_record(current["spec"], sets, pods, now, retention, name, uid, decision)
    if spec != current["spec"]:
        await act_records.replace_spec(ns, current, spec)
    return {
        "record": record["metadata"]["name"],
        "replicaSets": sets,
        "pods": pods,
        "retainUntil": rfc3339(until),
    }


def retirement_id(uid: object) -> str:
    """A model (one uid) is retired once: its retirement's decision id depends on nothing else."""
    return ids.decision_id(uid, c.ACTION_RETIRED)


def retiring(body: Mapping[str, Any]) -> bool:
    """The model is being deleted and modelgate's finalizer still holds it: it must be retired."""
    meta = body.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) and FINALIZER in (meta.get("finalizers") or [])


async def release(body: Mapping[str, Any]) -> None:
    """Take modelgate's finalizer off a retired model so that its deletion completes."""
    meta = body.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name"))
    await kube.remove_finalizer(ns, name, list(meta.get("finalizers") or []), FINALIZER)


async def retire(
    body: Mapping[str, Any],
    namespace: str | None,
    name: str,
    records: Mapping[Any, Iterable[Mapping[str, Any]]],
    signer: seal.Signer | None = None,
) -> None:
    """Remove the serving objects and record the retirement (the finalizer holds the object until
    then). A quarantined model's pods are kept for the policies' quarantineRetention: its Deployment
    is deleted orphaning them, and its ModelRecord owns them until then. A rollback or quarantine in
    the model's records (the `records` index) that its status never stored (decide/recovery.py) is
    told of first, and such a quarantine keeps the pods too. Every decision is signed with
    `signer`; the final bundle is written last (raises when it cannot be read: the loop retries, and
    the finalizer stays until it is written)."""
    ns = namespace or ""
    model = str((body.get("spec") or {}).get("model", {}).get("name") or "")
    recovered = replay(body, in_force(records.get((ns, model)) or ()), model)
    for lost in trail.sign(recovered.decisions, body, signer):
        audit.record(body, lost)
        metrics.DECISIONS.labels(action=lost.action).inc()
    status = dict(recovered.status)
    serving = dict(status.get("servingRevision") or {})
    now = dt.datetime.now(dt.UTC)
    uid = body.get("metadata", {}).get("uid")
    decision_id = retirement_id(uid)
    kept = await _keep_quarantined(
        ns, name, {**status, "servingRevision": {**serving, "model": model}}, uid, now, decision_id
    )
    kinds = ("Service",) if kept is not None else ("Deployment", "Service")
    removed = [kind for kind in kinds if await kube.delete_owned(kind, ns, name)]
    what = ", ".join(removed) or "no serving objects"
    if kept is not None:
        what += (
            f"; kept the quarantined pods {', '.join(kept['pods']) or '(none)'} until {kept['retainUntil']} "
            f"(ModelRecord {kept['record']})"
        )
    (decision,) = trail.sign(
        [
            Decision(
                action=c.ACTION_RETIRED,
                reason=c.RETIRING,
                message=f"Retired ModelDeployment {name}: removed {what}",
                time=rfc3339(now),
                evidence={"servingRevision": serving, "removed": removed, **({"kept": kept} if kept else {})},
                revision={"version": serving["version"], "digest": serving["digest"]} if serving else None,
                id=decision_id,
            )
        ],
        body,
        signer,
    )
    audit.record(body, decision)
    metrics.DECISIONS.labels(action=decision.action).inc()
    await write_final_bundle(body, decision, signer, now)
    metrics.MODELS.forget(ns, name)


async def write_final_bundle(
    body: Mapping[str, Any], retired: Decision, signer: seal.Signer | None, now: dt.datetime
) -> None:
    """The model's last evidence bundle, as one audit line: what the API server holds now (the
    status history), plus the retirement's own record, which no status write will store."""
    meta = body.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    doc = await asyncio.to_thread(gather, kube.client(), ns, name, now, MADE_BY)
    doc["history"]["records"].append(retired.record)
    audit.final_bundle(body, retired.id, bundle.sign(signer, doc, now) if signer else doc)
