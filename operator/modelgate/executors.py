"""The thread pools blocking clients run in: one policy, every pool and its size in one place.

The Kubernetes and Prometheus clients are synchronous; each call runs in a worker thread so the
event loop never blocks. Work is split by what must not wait for what:

- `STATUS`: status writes, which report admissions. Creating a Service waits for the API server's
  ClusterIP allocator (over a second each when hundreds arrive at once, measured in
  bench/admission), and must never hold them up.
- `OBJECTS`: serving-object writes (Deployments, Services, pod labels, NetworkPolicies, records).
- `EVENTS`: Kubernetes Events, posted in the background: no decision waits for its Event.
- `LEASE`: the leader election Lease (read, renew): a renew never queues behind a burst of writes,
  which could otherwise hold it past the renew deadline and cost the leadership under load.
- `DEFAULT`: everything else (Prometheus queries, policy status, start-up), installed as the event
  loop's default executor by `modelgate run`: the asyncio default (cores + 4) is too small to keep
  the API server busy when hundreds of models reconcile at once.

This module sits below act/ and observe/ (they import it) and imports nothing of the operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

SIZES = {"status": 16, "objects": 16, "events": 4, "lease": 2, "default": 16}
"""Workers of each pool, by its thread name prefix."""
STATUS = ThreadPoolExecutor(max_workers=SIZES["status"], thread_name_prefix="status")
OBJECTS = ThreadPoolExecutor(max_workers=SIZES["objects"], thread_name_prefix="objects")
EVENTS = ThreadPoolExecutor(max_workers=SIZES["events"], thread_name_prefix="events")
LEASE = ThreadPoolExecutor(max_workers=SIZES["lease"], thread_name_prefix="lease")
DEFAULT_WORKERS = SIZES["default"]
"""Size of the event loop's default executor (`install_default`)."""
THREADS = sum(SIZES.values())
"""Threads that may call the API server at once: the size of the Kubernetes client's connection
pool (observe/kube.py), which otherwise closes every connection returned above its size."""


async def run_in(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    """Run the blocking `fn(*args)` in `pool` and wait for it."""
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


def submit(pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any) -> None:
    """Run the blocking `fn(*args)` in `pool` without waiting for it (from the event loop)."""
    asyncio.get_running_loop().run_in_executor(pool, fn, *args)


def install_default() -> None:
    """Make a `DEFAULT_WORKERS` pool the running event loop's default executor (`asyncio.to_thread`,
    `run_in_executor(None, ...)`)."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=DEFAULT_WORKERS, thread_name_prefix="default")
    )
