"""What only the leader runs, and how it starts and stops.

Every replica watches and indexes everything (the admission webhooks read the indexes) and serves
the webhooks and the health endpoint. Only the leader writes: it runs the reconcile loops (and with
them the retirements), the monitor, the retention sweep and the GovernancePolicy status writes. A
follower's watch handlers keep the indexes current and do nothing else, so it writes nothing at all.

- Acquired (`started`): start the monitor, the retention sweep, the PolicyReport writer, a
  reconcile loop for every ModelDeployment already indexed (a model whose approval arrived while
  nobody led is admitted now), and the `on_lead` hooks (the policy statuses).
- Lost (`lost`): first refuse every write of the process (`act.kube.fence`: a write already queued
  in a thread pool is refused too), then cancel every loop in the middle of its pass and the
  leader's tasks, then stop the operator; `modelgate run` exits 1 so that the pod restarts clean.
- A graceful stop (`stop`): let every loop finish its pass, stop the tasks; the elector then
  releases the Lease.

Without --leader-elect the single operator leads from its start (`started` at configure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from modelgate.act import kube
from modelgate.observe import metrics
from modelgate.observe.snapshot import first
from modelgate.runtime import retention
from modelgate.runtime.reconcile import Collaborators, run_loop
from modelgate.runtime.wakeups import Key

log = logging.getLogger("modelgate.leader")


async def _logged(work: Coroutine[Any, Any, None], name: str) -> None:
    try:
        await work
    except Exception:
        log.exception(f"{name} failed")


class Leadership:
    def __init__(
        self,
        identity: str,
        claims: Callable[[dict[str, str] | None], bool] = lambda _labels: True,
        cluster_duties: bool = True,
    ) -> None:
        self.identity = identity
        self.claims = claims
        """Which ModelDeployments get a loop here, by their labels: this shard's (--selector)."""
        self.cluster_duties = cluster_duties
        """Run the retention sweep (api/selector.py `cluster_duties`)."""
        self.leading = False
        self.indexes: Mapping[str, Any] | None = None
        """Kopf's indexes, once a ModelDeployment event showed they are populated (Kopf calls no
        resource handler before every index has been listed)."""
        self.on_lead: list[Callable[[], Awaitable[None]]] = []
        self.tasks: list[Callable[[], Coroutine[Any, Any, None]]] = []
        """More tasks only the leader runs (the PolicyReport writer), started with the monitor."""
        self.lost_reason: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._svc: Collaborators | None = None
        self._stop_operator: Callable[[], None] = lambda: None

    def bind(self, svc: Collaborators, stop_operator: Callable[[], None]) -> None:
        self._svc, self._stop_operator = svc, stop_operator

    def indexed(self, indexes: Mapping[str, Any]) -> None:
        self.indexes = indexes

    def start_loop(self, key: Key) -> None:
        """Start the reconcile loop of `key` (if it does not run) and wake it; only when leading."""
        svc, indexes = self._svc, self.indexes
        if not self.leading or svc is None or indexes is None:
            return
        body = first(indexes["modeldeployments"], key)
        if body is None or not self.claims((body.get("metadata") or {}).get("labels")):
            return  # gone, or another shard's: the webhook-serving shards index every model
        if key not in svc.loops:
            svc.loops.start(key, lambda wake, stopping: run_loop(key, indexes, svc, wake, stopping))
        svc.wakeups.poke(key)

    async def started(self) -> None:
        svc = self._svc
        assert svc is not None, "bind() first"
        self.leading = True
        metrics.LEADER.set(1)
        self._tasks = [asyncio.create_task(svc.monitor.run(), name="modelgate-monitor")]
        if self.cluster_duties:
            self._tasks.append(
                asyncio.create_task(
                    retention.sweep(lambda: (self.indexes or {}).get("records")), name="modelgate-retention"
                )
            )
        if (
            self.cluster_duties
        ):  # one writer per namespace's PolicyReport: the shard with the cluster's duties
            self._tasks += [asyncio.create_task(task()) for task in self.tasks]
        known = list((self.indexes or {}).get("modeldeployments") or ())
        for key in known:
            self.start_loop(key)
        for hook in self.on_lead:
            await hook()
        claimed = sum(key in svc.loops for key in known)
        log.info(f"Started leading; identity={self.identity} models={claimed}")

    async def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` beside the leader's other tasks (as an `on_lead` hook: it does not hold up the
        start): cancelled when the leadership is lost or the operator stops; a failure is logged."""
        self._tasks.append(asyncio.create_task(_logged(work, name), name=name))

    async def _stop_tasks(self) -> None:
        """Cancel the leader's tasks and wait for them; whatever one of them raised before (it is
        logged) does not stop the others from stopping, nor the operator from stopping."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                log.error(f"A leader's task had failed: {result!r}")
        if self._svc is not None:
            await self._svc.monitor.stop()

    async def lost(self, reason: str) -> None:
        """Stop writing at once, stop every loop and task mid-pass, then stop the operator (even if
        stopping something failed: a replica that lost must go)."""
        kube.fence(f"lost the leadership: {reason}")  # before anything else, synchronously
        self.leading = False
        self.lost_reason = reason
        metrics.LEADER.set(0)
        try:
            if self._svc is not None:
                await self._svc.loops.cancel_all()
            await self._stop_tasks()
        finally:
            log.error(
                f"Lost the leadership: {reason}; stopped every loop and exiting; identity={self.identity}"
            )
            self._stop_operator()

    async def stop(self) -> None:
        """A graceful stop: every loop finishes its pass, the tasks stop."""
        if self._svc is not None:
            await self._svc.loops.stop_all()
        await self._stop_tasks()
