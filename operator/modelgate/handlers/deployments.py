"""Kopf registrations for ModelDeployments: the watch handler that starts, wakes and stops each
model's reconcile loop, and the retirement at deletion. The loop itself, and what a pass does, are
in runtime/ (runtime/reconcile.py, runtime/retire.py).
"""

from __future__ import annotations

from typing import Any

import kopf

from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.runtime import retire as runtime_retire
from modelgate.runtime.reconcile import INDEXES, Collaborators, run_loop


@kopf.on.event(GROUP, VERSION, "modeldeployments", id="reconcile")
async def reconcile(
    type: str | None, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Start the model's reconcile loop at its first event and wake it at every later one; stop it
    when the model is being deleted (the retirement takes over)."""
    svc = Collaborators.of(memo)
    key = (namespace or "", name)
    if type == "DELETED" or body.get("metadata", {}).get("deletionTimestamp"):
        await svc.loops.stop(key)
        return
    if key not in svc.loops:
        indexes = {k: kwargs[k] for k in INDEXES}
        svc.loops.start(key, lambda wake, stopping: run_loop(key, indexes, svc, wake, stopping))
    svc.wakeups.poke(key)


@kopf.on.delete(GROUP, VERSION, "modeldeployments", id="retire")
async def retire(body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    """Remove the serving objects and record the retirement (runtime/retire.py); the finalizer holds
    the object until then."""
    await runtime_retire.retire(body, namespace, name, Collaborators.of(memo))
