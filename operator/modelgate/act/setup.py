"""Start-up writes: the seal key Secret and the webhook configurations.

Both are create-or-update and safe to repeat: a restart finds the key it made before (so existing
seals keep verifying) and re-points the webhooks at the running server.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate.act.kube import client

KEY_FIELD = "key"


def _seal_key(namespace: str, name: str) -> bytes:
    core: Any = kubernetes.client.CoreV1Api(client())
    try:
        secret = core.read_namespaced_secret(name, namespace)
        return base64.b64decode(secret.data[KEY_FIELD])
    except ApiException as e:
        if e.status != 404:
            raise
    key = secrets.token_bytes(32)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "modelgate"},
        },
        "data": {KEY_FIELD: base64.b64encode(key).decode()},
    }
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as e:
        if e.status == 409:  # another replica made it first: use theirs
            return _seal_key(namespace, name)
        if e.status == 404:
            raise RuntimeError(
                f"namespace {namespace} does not exist: create it, or pass --operator-namespace"
            ) from e
        raise
    return key


async def seal_key(namespace: str, name: str) -> bytes:
    """The HMAC key from Secret namespace/name, created with 32 random bytes when absent."""
    return await asyncio.to_thread(_seal_key, namespace, name)


def _register(configs: Sequence[Mapping[str, Any]]) -> None:
    api: Any = kubernetes.client.AdmissionregistrationV1Api(client())
    for cfg in configs:
        kind, name = cfg["kind"], cfg["metadata"]["name"]
        read, create, replace = (
            (
                api.read_mutating_webhook_configuration,
                api.create_mutating_webhook_configuration,
                api.replace_mutating_webhook_configuration,
            )
            if kind == "MutatingWebhookConfiguration"
            else (
                api.read_validating_webhook_configuration,
                api.create_validating_webhook_configuration,
                api.replace_validating_webhook_configuration,
            )
        )
        try:
            existing = read(name)
        except ApiException as e:
            if e.status != 404:
                raise
            create(dict(cfg))
            continue
        body = dict(cfg)
        body["metadata"] = dict(cfg["metadata"], resourceVersion=existing.metadata.resource_version)
        replace(name, body)


async def register_webhooks(configs: Sequence[Mapping[str, Any]]) -> None:
    await asyncio.to_thread(_register, configs)
