"""`modelgate run`: Kopf underneath, our settings, a liveness endpoint and /metrics."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys

import kopf
import prometheus_client

from modelgate import executors
from modelgate.config import OperatorConfig


def _fewer_malloc_arenas() -> None:
    """glibc gives each thread that allocates an arena of its own (up to 8 per core); with the
    worker threads of the Kubernetes and Prometheus clients that fragments the heap and inflates RSS
    (measured in bench/admission). Two arenas are plenty for one event loop and I/O threads."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def run(cfg: OperatorConfig) -> int:
    _fewer_malloc_arenas()
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
    from modelgate.observe.kube import load_kube_config
    from modelgate.runtime.loops import Loops
    from modelgate.runtime.wakeups import Wakeups

    load_kube_config(cfg.kubeconfig)
    if cfg.metrics_port:
        prometheus_client.start_http_server(cfg.metrics_port, addr="0.0.0.0")
    liveness = f"http://0.0.0.0:{cfg.liveness_port}/healthz" if cfg.liveness_port else None
    wakeups = Wakeups()
    memo = kopf.Memo(config=cfg, wakeups=wakeups, loops=Loops(wakeups), templates={})

    async def main() -> None:
        executors.install_default()  # the thread pools' policy: modelgate/executors.py
        await kopf.operator(
            clusterwide=not cfg.namespaces,
            namespaces=cfg.namespaces,
            standalone=True,
            liveness_endpoint=liveness,
            memo=memo,
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
    return 0


def _start_refusal(exc: BaseException) -> str | None:
    """The message of a start-up refusal (a lost seal key, an unreadable webhook CA, a webhook port
    held by a server of another CA) somewhere in the exception's chain: Kopf wraps a failed startup
    handler in its own error, and that is no reason for a traceback."""
    from modelgate.act.setup import SealKeyLost
    from modelgate.webhooks.certs import CertSecretInvalid
    from modelgate.webhooks.tls import PortTaken

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, SealKeyLost | CertSecretInvalid | PortTaken):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None
