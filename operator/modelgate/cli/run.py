"""`modelgate run`: Kopf underneath, our settings, a liveness endpoint and /metrics."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import importlib.metadata
import logging
import os
import sys
import threading

import kopf
import prometheus_client

from modelgate import executors
from modelgate.config import OperatorConfig
from modelgate.observe import relist

LOSS_EXIT_TIMEOUT = 20.0
"""Seconds a replica that lost the leadership waits for Kopf's shutdown before it exits anyway."""


def _fewer_malloc_arenas() -> None:
    """glibc gives each thread that allocates an arena of its own (up to 8 per core); with the
    worker threads of the Kubernetes and Prometheus clients that fragments the heap and inflates RSS
    (measured in bench/admission). Two arenas are plenty for one event loop and I/O threads."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


GC_THRESHOLDS = (50_000, 20, 10)
"""The cyclic collector's thresholds (Python's defaults: 700, 10, 10). A full collection walks every
live object: over 10,000 models the start-up heap reaches millions, and the defaults ran 33 full
collections of 1-3 s each during one cold start (29 s of GC in 111 s); with these it caught up in
75-100 s instead of 111-125 s (BENCHMARKS.md, 2026-12-07). Most of the operator's garbage is acyclic
and freed by reference counting; cycles still go, in bigger and rarer batches."""


def run(cfg: OperatorConfig) -> int:
    _fewer_malloc_arenas()
    gc.set_threshold(*GC_THRESHOLDS)
    kopf.configure(verbose=False, log_format=kopf.LogFormat.JSON, log_refkey="object")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    # Kopf logs every handler and webhook success at INFO, and aiohttp every webhook request: at
    # hundreds of models that is most of the log and a good part of the CPU. Decisions are logged
    # by the audit logger; warnings and errors still show.
    for noisy in ("kopf.objects", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import modelgate.handlers

    if cfg.webhook_port:
        import modelgate.webhooks.handlers  # noqa: F401
    from modelgate.act import kube
    from modelgate.api import selector
    from modelgate.observe import metrics
    from modelgate.observe.kube import load_kube_config
    from modelgate.runtime import nowait, toggles
    from modelgate.runtime.leading import Leadership
    from modelgate.runtime.loops import Loops
    from modelgate.runtime.wakeups import Wakeups

    load_kube_config(cfg.kubeconfig)
    kube.set_user_agent(kube.user_agent(_version(), cfg.identity))
    metrics.LEADER.set(0)
    if cfg.metrics_port:
        prometheus_client.start_http_server(cfg.metrics_port, addr="0.0.0.0")
    liveness = f"http://0.0.0.0:{cfg.liveness_port}/healthz" if cfg.liveness_port else None
    wakeups = Wakeups()
    leadership = Leadership(
        cfg.identity,
        lambda labels: selector.claims(cfg.selector, labels),
        selector.cluster_duties(cfg.selector),
    )
    memo = kopf.Memo(config=cfg, wakeups=wakeups, loops=Loops(wakeups), templates={}, leadership=leadership)

    async def main() -> None:
        executors.install_default()  # the thread pools' policy: modelgate/executors.py
        metrics.ASYNCIO_TASKS.watch(asyncio.get_running_loop())
        relist.report_hidden_deletions()  # deletions a watch's re-list hides: observe/relist.py
        toggles.install()  # Kopf's start-up wait for its indexes, linear: runtime/toggles.py
        nowait.install()  # ... and only for the objects that need it: runtime/nowait.py
        stop = asyncio.Event()
        memo["stop_operator"] = lambda: _stop_after_loss(stop)
        await kopf.operator(
            clusterwide=not cfg.namespaces,
            namespaces=cfg.namespaces,
            standalone=True,
            liveness_endpoint=liveness,
            memo=memo,
            stop_flag=stop,
        )

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        refusal = _start_refusal(e)
        if refusal is None:
            raise
        print(f"modelgate run: {refusal}", file=sys.stderr)
        return 1
    if leadership.lost_reason is not None:
        print(f"modelgate run: lost the leadership ({leadership.lost_reason}); exiting", file=sys.stderr)
        return 1
    return 0


def _version() -> str:
    try:
        return importlib.metadata.version("modelgate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _stop_after_loss(stop: asyncio.Event) -> None:
    """Stop Kopf after a lost leadership (the exit code says so); should its shutdown hang, end the
    process anyway: a replica that lost must go, and nothing it does can write any more."""
    stop.set()
    timer = threading.Timer(LOSS_EXIT_TIMEOUT, os._exit, args=(1,))
    timer.daemon = True
    timer.start()


def _start_refusal(exc: BaseException) -> str | None:
    """The message of a start-up refusal (a lost seal key, an unreadable webhook CA, a webhook port
    held by a server of another CA) somewhere in the exception's chain: Kopf wraps a failed startup
    handler in its own error, and that is no reason for a traceback."""
    from modelgate.act.keys import SealKeyLost
    from modelgate.webhooks.certs import CertSecretInvalid
    from modelgate.webhooks.tls import PortTaken

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, SealKeyLost | CertSecretInvalid | PortTaken):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None
