"""Leader election: an asyncio elector on the coordination.k8s.io/v1 Lease `modelgate-leader`.

Semantics and defaults are controller-runtime's (client-go's leaderelection): lease duration 15 s,
renew deadline 10 s, retry period 2 s. A follower tries to acquire every retry period (jittered);
the leader renews every retry period. Expiry is judged on our own monotonic clock from the moment
we saw the lease record last change (decide/lease.py), and every write carries the resourceVersion
read, so of two replicas racing for the lease exactly one wins.

The leader stops leading when no renew succeeded within the renew deadline, or at once when it sees
another holder (stricter than client-go, which keeps retrying until the deadline): `on_lost` is then
awaited, and it must stop every write before anything else (runtime/leading.py). Since the renew
deadline is shorter than the lease duration, a leader that stops at its deadline has stopped before
any other replica can consider the lease expired (both measured from the same renew, the other
replica's observation of it necessarily later than our sending of it).

Why not the kubernetes client's own `kubernetes.leaderelection`: it is thread-based (its callbacks
run in a thread, and stopping the reconcile loops must happen on the event loop, at once), has no
release on a graceful stop, compares expiry against the holder's renewTime with the local wall
clock (trusting both clocks), and sleeps the full retry period inside a renew before it notices a
missed deadline. A ~150-line asyncio elector with its decisions pure and unit-tested is less risk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from modelgate.act import kube
from modelgate.act import lease as act_lease
from modelgate.decide.lease import Observed, Record, observe, overdue, release, step, taken
from modelgate.observe import metrics

log = logging.getLogger("modelgate.leader")
JITTER = 1.2
"""client-go's JitterFactor for the acquire retries: a follower retries after 2 s to 4.4 s."""


@dataclass(frozen=True)
class Timings:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


class LeaseApi(Protocol):
    async def get(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None: ...

    async def write(
        self, namespace: str, name: str, spec: dict[str, Any], resource_version: str | None, timeout: float
    ) -> dict[str, Any]: ...


class _KubeLeaseApi:
    async def get(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
        return await act_lease.get(namespace, name, timeout)

    async def write(
        self, namespace: str, name: str, spec: dict[str, Any], resource_version: str | None, timeout: float
    ) -> dict[str, Any]:
        return await act_lease.write(namespace, name, spec, resource_version, timeout)


class Elector:
    def __init__(
        self,
        identity: str,
        namespace: str,
        name: str,
        timings: Timings,
        on_started: Callable[[], Awaitable[None]],
        on_lost: Callable[[str], Awaitable[None]],
        api: LeaseApi | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity, self.namespace, self.name, self.timings = identity, namespace, name, timings
        self._on_started, self._on_lost = on_started, on_lost
        self._api: LeaseApi = api or _KubeLeaseApi()
        self._clock = clock
        self._observed: Observed | None = None
        self._last_renewed = 0.0
        self.leading = False
        self.lost_reason: str | None = None

    @property
    def where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    async def _try(self, timeout: float) -> tuple[bool, Record | None]:
        """One try to acquire or renew; (whether we hold the lease now, the record read)."""
        started = self._clock()
        current = await self._api.get(self.namespace, self.name, timeout)
        record = Record.of(current)
        if record is not None:
            self._observed = observe(self._observed, record, self._clock())
        if self.leading and (why := taken(self.identity, record)):
            raise _Lost(why)
        wall = dt.datetime.now(dt.UTC)
        s = step(self.identity, record, self._observed, self._clock(), wall, self.timings.lease_duration)
        if s.action == "wait" or s.spec is None:
            return False, record
        rv = None if current is None else str(current["metadata"]["resourceVersion"])
        try:
            written = await self._api.write(self.namespace, self.name, s.spec, rv, timeout)
        except act_lease.LeaseConflict:
            return False, record
        mine = Record.of(written)
        if mine is not None:
            self._observed = observe(self._observed, mine, self._clock())
        self._last_renewed = started
        kube.writes_valid_until(started + self.timings.renew_deadline)
        if s.other_holder and not self.leading:
            log.info(f"Took over expired {self.where} from {s.other_holder}; identity={self.identity}")
        return True, mine

    async def _acquire(self) -> None:
        while True:
            try:
                held, record = await self._try(self.timings.renew_deadline)
            except Exception as e:  # an unreachable API server: keep trying
                log.warning(f"Failed to read or write {self.where}: {e}; identity={self.identity}")
                held, record = False, None
            if held:
                return
            if record is not None and record.holder:
                log.debug(f"Found {self.where} held by {record.holder}; identity={self.identity}")
            await asyncio.sleep(self.timings.retry_period * (1 + random.random() * JITTER))

    async def _renew_until_lost(self) -> str:
        t = self.timings
        deadline = f"no renew succeeded within the renew deadline ({t.renew_deadline:g}s)"
        while True:
            remaining = self._last_renewed + t.renew_deadline - self._clock()
            await asyncio.sleep(max(0.0, min(t.retry_period, remaining)))
            remaining = self._last_renewed + t.renew_deadline - self._clock()
            if overdue(self._last_renewed, self._clock(), t.renew_deadline):
                return deadline
            try:
                await asyncio.wait_for(self._try(remaining), remaining)
            except _Lost as e:
                return str(e)
            except TimeoutError:
                return deadline
            except Exception as e:
                log.warning(f"Failed to renew {self.where}: {e}; identity={self.identity}")

    async def run(self) -> None:
        """Acquire, lead until the lease is lost, then call `on_lost` (which stops the process)."""
        log.info(f"Started leader election on {self.where}; identity={self.identity}")
        await self._acquire()
        self.leading = True
        metrics.LEADER.set(1)
        log.info(f"Acquired {self.where}; identity={self.identity}")
        await self._on_started()
        reason = await self._renew_until_lost()
        self.leading = False
        self.lost_reason = reason
        metrics.LEADER.set(0)
        await self._on_lost(reason)

    async def release(self) -> None:
        """Give the lease up at a graceful stop, after the leader's work has stopped: no holder, so
        the next replica takes over at its next try instead of after the expiry."""
        if not self.leading:
            return
        self.leading = False
        metrics.LEADER.set(0)
        try:
            current = await self._api.get(self.namespace, self.name, self.timings.retry_period)
            record = Record.of(current)
            if current is None or record is None or record.holder != self.identity:
                return
            spec = release(record, dt.datetime.now(dt.UTC))
            rv = str(current["metadata"]["resourceVersion"])
            await self._api.write(self.namespace, self.name, spec, rv, self.timings.retry_period)
            log.info(f"Released {self.where}; identity={self.identity}")
        except Exception as e:  # it expires by itself
            log.warning(f"Failed to release {self.where}: {e}; identity={self.identity}")


class _Lost(Exception):
    """Another holder seen while leading."""
