"""Start-up writes: the webhook configurations (the signing keys: act/keys.py).

Create-or-update and safe to repeat: a restart re-points the webhooks at the running server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate.act.kube import client

REGISTER_ATTEMPTS = 5


def _register(configs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    api: Any = kubernetes.client.AdmissionregistrationV1Api(client())
    written = []
    for cfg in configs:
        kind = cfg["kind"]
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
        for attempt in range(REGISTER_ATTEMPTS):
            try:
                was = _write_configuration(cfg, read, create, replace)
                if was:
                    written.append((kind, was))
                break
            except ApiException as e:
                # 409: another replica created or replaced it in between; read again and replace.
                if e.status != 409 or attempt == REGISTER_ATTEMPTS - 1:
                    raise
    return written


def _write_configuration(cfg: Mapping[str, Any], read: Any, create: Any, replace: Any) -> str:
    """Create when absent, replace when present: under a role that allows only get/update by
    resourceNames the replace works when the configuration exists (the chart rendered it). The
    webhooks are ours; the existing labels and annotations are kept. Returns what the stored one
    was when it was written ("missing", "different"), or "" when it was already as wanted."""
    name = cfg["metadata"]["name"]
    try:
        existing = read(name)
    except ApiException as e:
        if e.status != 404:
            raise
        create(dict(cfg))
        return "missing"
    body = dict(cfg)
    body["metadata"] = _kept_metadata(cfg["metadata"], existing.metadata)
    if _contains(client().sanitize_for_serialization(existing), body):  # type: ignore[no-untyped-call]
        return ""  # already as wanted (another replica registered it): no write
    replace(name, body)
    return "different"


def _kept_metadata(ours: Mapping[str, Any], existing: Any) -> dict[str, Any]:
    """Our metadata for a replace, keeping the labels and annotations already there (theirs win):
    a configuration the chart rendered stays Helm's (managed-by, release annotations), so that
    `helm upgrade` and `helm uninstall` still own it."""
    out = dict(ours, resourceVersion=existing.resource_version)
    for field, theirs in (("labels", existing.labels), ("annotations", existing.annotations)):
        kept = {**(ours.get(field) or {}), **(theirs or {})}
        if kept:  # an empty map is left out, as the API server stores it
            out[field] = kept
    return out


def _contains(have: Any, want: Any) -> bool:
    """Whether `have` (as stored: the API server adds defaults) says everything `want` says."""
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(_contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(have) == len(want)
            and all(_contains(h, w) for h, w in zip(have, want, strict=True))
        )
    return bool(have == want)


async def register_webhooks(configs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Write each configuration that is missing or differs; (kind, what it was) of each written."""
    return await asyncio.to_thread(_register, configs)
