"""How the CLI reaches the API server: the kubeconfig (or in-cluster config), with the problems a
user meets said in one line (`KubeError`), never as a traceback."""

from __future__ import annotations

import os
from typing import Any

import kubernetes
from kubernetes.config.config_exception import ConfigException


class KubeError(RuntimeError):
    """The cluster cannot be reached as configured; the message says why and what to do."""


def api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A client for the kubeconfig given (else $KUBECONFIG, ~/.kube/config, then in-cluster)."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        first = path.split(os.pathsep)[0]
        if not os.path.exists(first):
            raise KubeError(f"kubeconfig {first} does not exist: pass --kubeconfig or set KUBECONFIG")
    try:
        return kubernetes.config.new_client_from_config(config_file=path, context=context)  # type: ignore[no-untyped-call]
    except ConfigException as e:
        if path or os.path.exists(os.path.expanduser("~/.kube/config")):
            raise KubeError(f"cannot use the kubeconfig: {e}") from None
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except ConfigException:
        raise KubeError(
            "no kubeconfig found (~/.kube/config, $KUBECONFIG) and not running in a cluster: "
            "pass --kubeconfig"
        ) from None
    return kubernetes.client.ApiClient()
