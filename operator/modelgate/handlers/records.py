"""ModelRecord handlers: wake the loops a record concerns, and end the retention of kept pods.

A record's event pokes every reconcile loop of its namespace (records change only at an
intervention, a release or a retirement: rare), so a ModelDeployment re-created while a record
holds its digest meets the renewal gate at once. A timer on each record deletes the ReplicaSets
(and with them the pods) kept after a quarantined model was retired, once `spec.kept.retainUntil`
has passed, and says so in the record and the audit trail.
"""

from __future__ import annotations

from typing import Any

import kopf

from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.runtime.retention import end_retention
from modelgate.runtime.wakeups import Wakeups

RETENTION_CHECK = 10.0
"""How often each record with kept pods checks its retention (seconds)."""


@kopf.on.event(GROUP, VERSION, "modelrecords", id="wake-record")
async def wake_record(namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    wakeups: Wakeups = memo["wakeups"]
    wakeups.poke_namespace(namespace or "")


def _keeps_pods(spec: kopf.Spec, **_: Any) -> bool:
    kept = spec.get("kept") or {}
    return bool(kept.get("retainUntil")) and not kept.get("deletedAt")


@kopf.timer(GROUP, VERSION, "modelrecords", id="retention", interval=RETENTION_CHECK, when=_keeps_pods)
async def retention(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> None:
    """Delete the kept ReplicaSets once the retention has passed (runtime/retention.py; returns
    nothing: no status)."""
    await end_retention(namespace or "", name, body)
