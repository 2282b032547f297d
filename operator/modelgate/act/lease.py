"""The leader election Lease: read, create, update. Thin: what to write is decide/lease.py's, when
to write it runtime/leader.py's.

Its own client, outside `act.kube`'s write fence: the elector must still be able to read the Lease
after the fence went up (it never writes it then). Every call has a timeout shorter than the retry
period, so a hung API server cannot hold a renew past the renew deadline unnoticed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate import executors
from modelgate.act import kube


class LeaseConflict(Exception):
    """Someone else created or updated the Lease first."""


@functools.cache
def _client() -> kubernetes.client.ApiClient:
    api = kubernetes.client.ApiClient()
    api.user_agent = kube.client().user_agent
    return api


def _api() -> Any:
    return kubernetes.client.CoordinationV1Api(_client())


def _get(namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
    try:
        res = _api().read_namespaced_lease(name, namespace, _preload_content=False, _request_timeout=timeout)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    out: dict[str, Any] = json.loads(res.data)
    return out


def _write(
    namespace: str, name: str, spec: Mapping[str, Any], rv: str | None, timeout: float
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": dict(spec)}
    try:
        if rv is None:
            res = _api().create_namespaced_lease(
                namespace, body, _preload_content=False, _request_timeout=timeout
            )
        else:
            meta["resourceVersion"] = rv
            res = _api().replace_namespaced_lease(
                name, namespace, body, _preload_content=False, _request_timeout=timeout
            )
    except ApiException as e:
        if e.status == 409:
            raise LeaseConflict(f"Lease {namespace}/{name} changed since it was read") from None
        raise
    out: dict[str, Any] = json.loads(res.data)
    return out


async def get(namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
    """The Lease, or None when it does not exist."""
    return await executors.run_in(executors.LEASE, _get, namespace, name, timeout)


async def write(
    namespace: str, name: str, spec: Mapping[str, Any], resource_version: str | None, timeout: float
) -> dict[str, Any]:
    """Create the Lease (`resource_version` None) or replace it at `resource_version`; raises
    LeaseConflict when someone else wrote first."""
    return await executors.run_in(executors.LEASE, _write, namespace, name, spec, resource_version, timeout)
