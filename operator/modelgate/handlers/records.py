"""ModelRecord handlers: wake the loops a record concerns, and end the retention of kept pods.

A record's event pokes every reconcile loop of its namespace (records change only at an
intervention, a release or a retirement: rare), so a ModelDeployment re-created while a record
holds its digest meets the renewal gate at once. A timer on each record deletes the ReplicaSets
(and with them the pods) kept after a quarantined model was retired, once `spec.kept.retainUntil`
has passed, and says so in the record and the audit trail.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import kopf

from modelgate.act import audit
from modelgate.act import records as act_records
from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.decide.records import expire, retention_due
from modelgate.decide.types import Decision
from modelgate.observe import metrics
from modelgate.runtime.wakeups import Wakeups

RETENTION_CHECK = 10.0
"""How often each record with kept pods checks its retention (seconds)."""
log = logging.getLogger("modelgate.records")


@kopf.on.event(GROUP, VERSION, "modelrecords", id="wake-record")
async def wake_record(namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    wakeups: Wakeups = memo["wakeups"]
    wakeups.poke_namespace(namespace or "")


def _keeps_pods(spec: kopf.Spec, **_: Any) -> bool:
    kept = spec.get("kept") or {}
    return bool(kept.get("retainUntil")) and not kept.get("deletedAt")


@kopf.timer(GROUP, VERSION, "modelrecords", id="retention", interval=RETENTION_CHECK, when=_keeps_pods)
async def retention(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> None:
    """Delete the kept ReplicaSets once the retention has passed (returns nothing: no status)."""
    now = dt.datetime.now(dt.UTC)
    ns = namespace or ""
    if not retention_due(body.get("spec") or {}, now):
        return
    record = await act_records.read(ns, name)  # the live object: the timer's body may be stale
    if record is None or not retention_due(record.get("spec") or {}, now):
        return
    deleted = await act_records.delete(ns, record)
    spec = expire(record["spec"], deleted, now)
    await act_records.replace_spec(ns, record, spec)
    entry = spec["entries"][-1]
    decision = Decision(
        c.ACTION_RETENTION_EXPIRED,
        c.RETENTION_EXPIRED,
        f"ModelRecord {name}: {entry['message']}",
        entry["time"],
        {"record": name, "deleted": deleted, "kept": spec.get("kept")},
    )
    audit.record(record, decision)
    metrics.DECISIONS.labels(action=decision.action).inc()
    log.info(f"Deleted kept ReplicaSets of ModelRecord {ns}/{name}: retention ended; deleted={deleted}")
