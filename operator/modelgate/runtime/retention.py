"""The end of a retention: the ReplicaSets (and with them the pods) kept after a quarantined model
was retired are deleted once the record's `spec.kept.retainUntil` has passed, and the record and the
audit trail say so. Checked by the leader every RETENTION_CHECK seconds over the records index
(`sweep`, started by runtime/leading.py): a Kopf timer would run on every replica, and Kopf adds a
finalizer to every object a timer runs on (a write from every replica).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelgate.act import audit, kube
from modelgate.act import records as act_records
from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import FINALIZER
from modelgate.decide.ids import decision_id
from modelgate.decide.records import expire, retention_due
from modelgate.decide.types import Decision
from modelgate.observe import metrics

log = logging.getLogger("modelgate.records")
RETENTION_CHECK = 10.0
"""How often the leader checks the retention of each record with kept pods (seconds)."""


async def end_retention(ns: str, name: str, body: Mapping[str, Any]) -> None:
    """Delete the kept ReplicaSets of ModelRecord `ns/name` if its retention has passed."""
    now = dt.datetime.now(dt.UTC)
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
        id=decision_id(
            record["metadata"].get("uid"), c.ACTION_RETENTION_EXPIRED, spec["kept"]["retainUntil"]
        ),
    )
    audit.record(record, decision)
    metrics.DECISIONS.labels(action=decision.action).inc()
    log.info(f"Deleted kept ReplicaSets of ModelRecord {ns}/{name}: retention ended; deleted={deleted}")


def _keeps_pods(spec: Mapping[str, Any]) -> bool:
    kept = spec.get("kept") or {}
    return bool(kept.get("retainUntil")) and not kept.get("deletedAt")


async def _let_go(ns: str, record: Mapping[str, Any]) -> None:
    """Take modelgate's finalizer off a ModelRecord being deleted. Only Kopf ever put it there (its
    timer, which ended retentions before the leader's sweep did, required one): without this, a
    record whose retention was running at the upgrade could never be deleted."""
    meta = record.get("metadata") or {}
    if not meta.get("deletionTimestamp") or FINALIZER not in (meta.get("finalizers") or []):
        return
    try:
        await kube.remove_finalizer(
            ns, str(meta.get("name")), list(meta["finalizers"]), FINALIZER, "modelrecords"
        )
        log.info(
            f"Released ModelRecord {ns}/{meta.get('name')} for deletion: removed the former timer's finalizer"
        )
    except kube.Conflict:
        pass  # its next event (in the index) brings the current finalizers: the next sweep retries


async def sweep(records: Callable[[], Mapping[Any, Any] | None], interval: float = RETENTION_CHECK) -> None:
    """Forever: end every due retention among the indexed ModelRecords (keyed (namespace, model),
    as handlers/indexes.py `records` stores them)."""
    while True:
        index = records() or {}
        now = dt.datetime.now(dt.UTC)
        for (ns, _model), stored in list(index.items()):
            for record in list(stored):
                await _let_go(ns, record)
                spec = record.get("spec") or {}
                if not (_keeps_pods(spec) and retention_due(spec, now)):
                    continue
                name = str((record.get("metadata") or {}).get("name"))
                try:
                    await end_retention(ns, name, record)
                except Exception:
                    log.exception(f"Failed to end the retention of ModelRecord {ns}/{name}")
        await asyncio.sleep(interval)
