"""Kopf registrations for ModelDeployments: the watch handler that starts and wakes each model's
reconcile loop on the leader, and stops it when the model is gone. The loop itself, what a pass
does and the retirement at deletion (a pass of the same loop) are in runtime/ (runtime/reconcile.py,
runtime/retire.py); which replica runs loops is runtime/leading.py's.

No Kopf deletion handler: Kopf would add and remove its finalizer and write progress annotations
from every replica, and a follower must write nothing. The retirement is the leader's loop's work
and our code removes modelgate's finalizer (runtime/retire.py).
"""

from __future__ import annotations

from typing import Any

import kopf

from modelgate.api import selector
from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.runtime.leading import Leadership
from modelgate.runtime.policyreports import Reporter
from modelgate.runtime.reconcile import INDEXES, Collaborators


@kopf.on.event(GROUP, VERSION, "modeldeployments", id="reconcile")
async def reconcile(
    type: str | None, namespace: str | None, name: str, memo: kopf.Memo, **kwargs: Any
) -> None:
    """On the leader, start the model's reconcile loop at its first event and wake it at every later
    one (a model being deleted is retired by that loop); stop it once the model is gone, or once
    it belongs to another shard (--selector). A follower only notes that the indexes are populated."""
    key = (namespace or "", name)
    reporter: Reporter | None = memo.get("policy_reports")
    if reporter is not None:
        reporter.touch(key[0])  # its gates may have changed: its namespace's PolicyReport
    if type == "DELETED":
        await Collaborators.of(memo).loops.stop(key)
        return
    leadership: Leadership = memo["leadership"]
    if leadership.indexes is None:
        leadership.indexed({k: kwargs[k] for k in INDEXES})
    if not selector.claims(memo["config"].selector, kwargs.get("labels")):
        # Another shard's (or relabelled into one): stop our loop after its pass, retire nothing.
        await Collaborators.of(memo).loops.stop(key)
        return
    leadership.start_loop(key)
