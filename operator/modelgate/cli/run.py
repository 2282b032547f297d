"""`modelgate run`: Kopf underneath, our settings, a liveness endpoint and /metrics."""

from __future__ import annotations

import asyncio
import logging

import kopf
import prometheus_client

from modelgate.config import OperatorConfig


def run(cfg: OperatorConfig) -> int:
    kopf.configure(verbose=False, log_format=kopf.LogFormat.JSON, log_refkey="object")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    import modelgate.handlers  # noqa: F401  (registers the handlers with Kopf)
    from modelgate.observe.kube import load_kube_config
    from modelgate.observe.wakeups import Wakeups

    load_kube_config(cfg.kubeconfig)
    if cfg.metrics_port:
        prometheus_client.start_http_server(cfg.metrics_port, addr="0.0.0.0")
    liveness = f"http://0.0.0.0:{cfg.liveness_port}/healthz" if cfg.liveness_port else None
    memo = kopf.Memo(config=cfg, wakeups=Wakeups())
    try:
        asyncio.run(
            kopf.operator(
                clusterwide=not cfg.namespaces,
                namespaces=cfg.namespaces,
                standalone=True,
                liveness_endpoint=liveness,
                memo=memo,
            )
        )
    except KeyboardInterrupt:
        return 130
    return 0
