"""Kubernetes client set-up shared by the operator's readers and writers.

The official client is synchronous; every call from Kopf's event loop goes through
`asyncio.to_thread` (see act/), so the loop never stalls on the network.
"""

from __future__ import annotations

import os

import kubernetes

from modelgate import executors


def load_kube_config(kubeconfig: str | None) -> None:
    """In-cluster config inside a pod; else the given kubeconfig (also handed to Kopf's login)."""
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
        kubernetes.config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    cfg = kubernetes.client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = executors.THREADS
    kubernetes.client.Configuration.set_default(cfg)
