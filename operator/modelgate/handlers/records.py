"""ModelRecord handlers: wake the loops a record concerns.

A record's event pokes every reconcile loop of its namespace (records change only at an
intervention, a release or a retirement: rare), so a ModelDeployment re-created while a record
holds its digest meets the renewal gate at once. The end of a retention (deleting the ReplicaSets,
and with them the pods, kept after a quarantined model was retired) is the leader's periodic sweep
over the records index (runtime/retention.py `sweep`), not a Kopf timer: a timer would run on
every replica and make Kopf put a finalizer on each record from every replica.
"""

from __future__ import annotations

from typing import Any

import kopf

from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.runtime.leading import Leadership
from modelgate.runtime.reconcile import INDEXES
from modelgate.runtime.wakeups import Wakeups


@kopf.on.event(GROUP, VERSION, "modelrecords", id="wake-record")
async def wake_record(namespace: str | None, memo: kopf.Memo, **kwargs: Any) -> None:
    leadership: Leadership = memo["leadership"]
    if leadership.indexes is None:  # the retention sweep reads the records index (no model may exist)
        leadership.indexed({k: kwargs[k] for k in INDEXES})
    wakeups: Wakeups = memo["wakeups"]
    wakeups.poke_namespace(namespace or "")
