#!/usr/bin/env python3
"""bench/bare_kopf: Kopf's own floor, the RSS of an operator that watches what modelgate watches and
does nothing.

    .venv/bin/python bench/admission.py --n 10000 --keep      # leaves 10,000 served models running
    .venv/bin/python bench/bare_kopf.py [--chunk-size 500] [--backlog 200]

Runs `kopf run` on this file against the kept bench control plane (`--namespace 'bench-*'`), with a
no-op watch handler on each kind modelgate's operator watches (ModelDeployments, approvals,
evaluations, owned Deployments and Services, namespaces). After `--after` seconds (time to list
every kind and follow the watch) it prints its peak RSS (VmHWM), RSS and CPU seconds: what
modelgate holds beyond this is modelgate's own. It also prints when Kopf had handled an event of
every object it listed and then nothing more for 5 s: the floor of `bench/admission.py
--cold-start`'s "start to caught up", measured the same way from the process's start.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kopf

OWNED = {"modelgate.io/deployment": kopf.PRESENT}


def backpressure(limit: int) -> None:
    """The change proposed to Kopf (BENCHMARKS.md, "10,000 models"), tried on this operator only: a
    resource's watcher stops reading its stream while `limit` of its objects have a worker (events
    queued or being handled), so that a list or a burst waits in the API server's stream instead of
    as parsed bodies in this process. Kopf spawns a worker per object with no limit on queued
    bodies; `settings.queueing.worker_limit` bounds running workers, not queued ones. Patches two
    Kopf internals, which is why it lives in a bench and not in modelgate (whose index handlers wait
    for every object to be indexed: a bound like this one needs Kopf to count only those)."""
    from kopf._cogs.clients import watching
    from kopf._core.reactor import queueing

    active: collections.Counter[object] = collections.Counter()
    spawn, watch = queueing.worker, watching.infinite_watch

    def worker(*, key: Any, **kwargs: Any) -> Any:
        active[key[0]] += 1

        async def run() -> None:
            try:
                await spawn(key=key, **kwargs)
            finally:
                active[key[0]] -= 1

        return run()

    async def infinite_watch(*, resource: Any, **kwargs: Any) -> Any:
        async for event in watch(resource=resource, **kwargs):
            while active[resource] >= limit:
                await asyncio.sleep(0.01)
            yield event

    queueing.worker = worker  # type: ignore[assignment]
    watching.infinite_watch = infinite_watch  # type: ignore[assignment]


if os.environ.get("BARE_KOPF_BACKLOG"):
    backpressure(int(os.environ["BARE_KOPF_BACKLOG"]))

if os.environ.get("BARE_KOPF_HANDLERS"):  # only where `kopf run` loads this file

    @kopf.on.startup()
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        chunk = int(os.environ.get("BARE_KOPF_CHUNK", "0"))
        settings.watching.chunk_size = chunk or None
        settings.posting.enabled = False
        settings.queueing.idle_timeout = 0.5

    @kopf.on.event("modelgate.io", "v1alpha1", "modeldeployments")
    @kopf.on.event("modelgate.io", "v1alpha1", "modelapprovals")
    @kopf.on.event("modelgate.io", "v1alpha1", "modelevaluations")
    @kopf.on.event("apps", "v1", "deployments", labels=OWNED)
    @kopf.on.event("", "v1", "services", labels=OWNED)
    @kopf.on.event("", "v1", "namespaces")
    async def nothing(**_: Any) -> None:
        """Kopf's per-event work only, counted."""
        HANDLED[0] += 1
        HANDLED[1] = time.time()

    HANDLED: list[float] = [0, 0.0]
    """Events handled, and the wall-clock time of the last one."""

    @kopf.on.startup()
    async def progress(**_: Any) -> None:
        """Every 0.5 s, the count and the last event's time to BARE_KOPF_PROGRESS (for main())."""

        async def write() -> None:
            while True:
                with open(os.environ["BARE_KOPF_PROGRESS"], "w") as f:
                    f.write(f"{HANDLED[0]:.0f} {HANDLED[1]:.3f}\n")
                await asyncio.sleep(0.5)

        asyncio.get_running_loop().create_task(write())


def main() -> int:
    from bench.common import KUBECONFIG, cpu_seconds, peak_rss_mb, rss_mb

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunk-size", type=int, default=0, help="Kopf's list page size (0: the whole list)")
    p.add_argument("--after", type=float, default=120, help="seconds to let it list and watch")
    p.add_argument(
        "--backlog",
        type=int,
        default=0,
        help="try the proposed backpressure: at most this many objects per kind in flight",
    )
    args = p.parse_args()
    env = {**os.environ, "BARE_KOPF_HANDLERS": "1", "BARE_KOPF_CHUNK": str(args.chunk_size)}
    if args.backlog:
        env["BARE_KOPF_BACKLOG"] = str(args.backlog)
    env["KUBECONFIG"] = str(KUBECONFIG)
    progress = Path(tempfile.mkdtemp(prefix="bare-kopf-")) / "progress"
    env["BARE_KOPF_PROGRESS"] = str(progress)
    cmd = [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", "bench-*", __file__]
    started = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(args.after)
        hwm, rss = peak_rss_mb(proc.pid), rss_mb(proc.pid)
        cpu = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    handled, last = (float(x) for x in (progress.read_text().split() if progress.exists() else ["0", "0"]))
    shutil.rmtree(progress.parent)
    quiet = f", the last at {last - started:.1f} s from its start" if handled else ""
    print(
        f"| bare Kopf (no-op handlers, list chunk {args.chunk_size or 'whole'}, "
        f"{f'at most {args.backlog} objects in flight' if args.backlog else 'no backpressure'}), after {args.after:.0f} s | "
        f"peak RSS {hwm:.0f} MB, RSS {rss:.0f} MB, {cpu:.1f} CPU s; {handled:.0f} events handled{quiet} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
