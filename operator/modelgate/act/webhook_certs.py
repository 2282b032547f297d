"""The webhook certificate Secret and the configurations' caBundle: thin API calls.

What to write is decided elsewhere (webhooks/certs.py `plan`, webhooks/configuration.py
`ca_bundle_patch`); these functions read, create, update and patch, and report a conflict (409) to
the caller instead of raising, so that it can re-read what a concurrent replica wrote.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate.act.kube import client

KINDS: Final = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


@dataclass(frozen=True)
class StoredSecret:
    data: dict[str, bytes]
    resource_version: str


def _read_secret(namespace: str, name: str) -> StoredSecret | None:
    core: Any = kubernetes.client.CoreV1Api(client())
    try:
        raw = core.read_namespaced_secret(name, namespace, _preload_content=False)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    obj = json.loads(raw.data)
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    return StoredSecret(data, obj["metadata"]["resourceVersion"])


def _body(namespace: str, name: str, data: Mapping[str, bytes], rv: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "modelgate"},
    }
    if rv is not None:
        meta["resourceVersion"] = rv
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": meta,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def _create_secret(namespace: str, name: str, data: Mapping[str, bytes]) -> bool:
    core: Any = kubernetes.client.CoreV1Api(client())
    try:
        core.create_namespaced_secret(namespace, _body(namespace, name, data, None))
    except ApiException as e:
        if e.status == 409:
            return False
        if e.status == 404:
            raise RuntimeError(
                f"namespace {namespace} does not exist: create it, or pass --operator-namespace"
            ) from e
        raise
    return True


def _update_secret(namespace: str, name: str, data: Mapping[str, bytes], rv: str) -> bool:
    core: Any = kubernetes.client.CoreV1Api(client())
    try:
        core.replace_namespaced_secret(name, namespace, _body(namespace, name, data, rv))
    except ApiException as e:
        if e.status in (409, 404):  # changed or deleted meanwhile: re-read
            return False
        raise
    return True


async def read_secret(namespace: str, name: str) -> StoredSecret | None:
    return await asyncio.to_thread(_read_secret, namespace, name)


async def create_secret(namespace: str, name: str, data: Mapping[str, bytes]) -> bool:
    """Create the Secret; False when it exists already (another replica made it)."""
    return await asyncio.to_thread(_create_secret, namespace, name, data)


async def update_secret(namespace: str, name: str, data: Mapping[str, bytes], rv: str) -> bool:
    """Replace the Secret at resourceVersion `rv`; False when it changed meanwhile."""
    return await asyncio.to_thread(_update_secret, namespace, name, data, rv)


def _api(kind: str) -> tuple[Any, Any]:
    api: Any = kubernetes.client.AdmissionregistrationV1Api(client())
    if kind == "MutatingWebhookConfiguration":
        return api.read_mutating_webhook_configuration, api.patch_mutating_webhook_configuration
    return api.read_validating_webhook_configuration, api.patch_validating_webhook_configuration


def _read_configuration(kind: str, name: str) -> dict[str, Any] | None:
    read, _patch = _api(kind)
    try:
        raw = read(name, _preload_content=False)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    out: dict[str, Any] = json.loads(raw.data)
    return out


def _patch_configuration(kind: str, name: str, ops: Sequence[Mapping[str, Any]]) -> None:
    _read, patch = _api(kind)
    patch(name, [dict(op) for op in ops])  # a list: sent as application/json-patch+json


async def read_configuration(kind: str, name: str) -> dict[str, Any] | None:
    return await asyncio.to_thread(_read_configuration, kind, name)


async def patch_configuration(kind: str, name: str, ops: Sequence[Mapping[str, Any]]) -> None:
    await asyncio.to_thread(_patch_configuration, kind, name, ops)
