"""Leader election on a coordination.k8s.io/v1 Lease: what to write, and when a lease has expired.

Pure: the elector (runtime/leader.py) reads the Lease, passes what it saw and both clocks in, and
writes what `step` says with the Lease's resourceVersion (optimistic concurrency: of two replicas
racing for a free lease, one gets a conflict and stays a follower).

Expiry is judged like client-go's leaderelection does, never by trusting the holder's clock: a
replica remembers when (on its own monotonic clock) it last saw the lease record *change* (holder,
renewTime, acquireTime, transitions or duration), and considers the lease expired once
leaseDurationSeconds have passed on its own clock since then without a change. The renewTime
written is informational (and what `kubectl get lease` shows); clock skew between replicas does
not matter.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"
"""metav1.MicroTime, as the Lease's acquireTime and renewTime are written."""


@dataclass(frozen=True)
class Record:
    """The parts of a Lease's spec that leader election reads (empty holder: free)."""

    holder: str = ""
    duration: int | None = None
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def of(cls, lease: Mapping[str, Any] | None) -> Record | None:
        if lease is None:
            return None
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=spec.get("leaseDurationSeconds"),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )


@dataclass(frozen=True)
class Observed:
    """The record last seen and when it was first seen as it is (our monotonic clock, seconds)."""

    record: Record
    since: float


def observe(previous: Observed | None, record: Record, now: float) -> Observed:
    """What we know after reading `record` at `now`: the time only moves when the record changed."""
    if previous is not None and previous.record == record:
        return previous
    return Observed(record, now)


def expired(observed: Observed, now: float, default_duration: float) -> bool:
    """Whether the lease as observed has gone unrenewed for its duration on our clock."""
    duration = observed.record.duration or default_duration
    return now >= observed.since + duration


Action = Literal["create", "update", "wait"]


@dataclass(frozen=True)
class Step:
    """What to do: create the Lease, update it (with the resourceVersion read), or wait (another
    replica holds it and it has not expired). `spec` is the Lease spec to write."""

    action: Action
    spec: dict[str, Any] | None = None
    other_holder: str | None = None
    """Who holds it, when that is not us (also set when we take an expired lease over)."""


def _micro(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime(MICRO)


def step(
    identity: str,
    record: Record | None,
    observed: Observed | None,
    now: float,
    wall: dt.datetime,
    duration: float,
) -> Step:
    """Acquire or renew: the decision of one try of client-go's tryAcquireOrRenew.

    - no Lease: create it, held by us;
    - held by someone else and not expired (as observed): wait;
    - held by us: renew (renewTime now, the rest kept);
    - free (empty holder: released) or expired: take it over (acquireTime now, transitions + 1).
    """
    seconds = max(1, math.ceil(duration))
    stamp = _micro(wall)
    if record is None:
        spec = {
            "holderIdentity": identity,
            "leaseDurationSeconds": seconds,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": 0,
        }
        return Step("create", spec)
    if record.holder == identity:
        spec = {
            "holderIdentity": identity,
            "leaseDurationSeconds": seconds,
            "acquireTime": record.acquire_time or stamp,
            "renewTime": stamp,
            "leaseTransitions": record.transitions,
        }
        return Step("update", spec)
    if record.holder and (observed is None or not expired(observed, now, duration)):
        return Step("wait", other_holder=record.holder)
    spec = {
        "holderIdentity": identity,
        "leaseDurationSeconds": seconds,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": record.transitions + 1,
    }
    return Step("update", spec, other_holder=record.holder or None)


def release(record: Record, wall: dt.datetime) -> dict[str, Any]:
    """The spec written at a graceful stop (client-go's ReleaseOnCancel): no holder, a 1 s
    duration, so the next replica takes over at its next try instead of waiting for the expiry."""
    stamp = _micro(wall)
    return {
        "holderIdentity": None,
        "leaseDurationSeconds": 1,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": record.transitions,
    }


def taken(identity: str, record: Record | None) -> str | None:
    """Why a leader that has just read `record` no longer leads, or None: the Lease is gone, was
    released, or someone else holds it (it was taken over, or replaced by hand)."""
    if record is None:
        return "the Lease was deleted"
    if record.holder != identity:
        return f"the Lease is held by {record.holder or 'nobody'}"
    return None


def overdue(last_renewed: float, now: float, renew_deadline: float) -> bool:
    """Whether the renew deadline has passed: no renew succeeded within `renew_deadline` seconds
    of the start of the last successful one (our clock)."""
    return now - last_renewed >= renew_deadline
