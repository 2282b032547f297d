"""Start-up writes: the seal key Secret and the webhook configurations.

Both are create-or-update and safe to repeat: a restart finds the key it made before (so existing
seals keep verifying) and re-points the webhooks at the running server.

A new seal key is made only while no sealed object exists. A lost Secret with sealed approvals and
evaluations still around is refused (`SealKeyLost`, one line naming the Secret, the count and the
way out): a fresh key would silently invalidate every seal, and under `onRevocation: suspend` take
every serving model down. There is deliberately no flag that makes a key anyway: a flag left in a
Deployment manifest would turn this check off for every later loss. Making a new key by hand
(`kubectl create secret`) is the knowing act, and the message says what it costs.
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
from modelgate.api.v1alpha1 import GROUP, VERSION

KEY_FIELD = "key"
SEALED_PLURALS = ("modelapprovals", "modelevaluations")
REGISTER_ATTEMPTS = 5


class SealKeyLost(RuntimeError):
    """The seal key Secret is missing while sealed objects exist: the operator must not start."""


def seal_key_lost_message(namespace: str, name: str, sealed: Mapping[str, int]) -> str:
    """One line: which Secret is missing, how many sealed objects depend on it, what to do."""
    counts = ", ".join(f"{n} {plural}" for plural, n in sealed.items() if n)
    return (
        f"seal key Secret {namespace}/{name} is missing while {sum(sealed.values())} sealed objects "
        f"exist ({counts}); a new key would invalidate every seal. Restore the Secret from backup "
        "and restart; or, knowing that every existing approval and evaluation then counts as "
        f"unsealed and must be issued again, create a new key yourself: kubectl -n {namespace} "
        f'create secret generic {name} --from-literal={KEY_FIELD}="$(openssl rand -hex 32)"'
    )


def _count_sealed() -> dict[str, int]:
    """Sealed ModelApprovals and ModelEvaluations in the whole cluster (`spec.seal` set)."""
    api: Any = kubernetes.client.CustomObjectsApi(client())
    counts = {}
    for plural in SEALED_PLURALS:
        n, token = 0, None
        while True:
            page = api.list_cluster_custom_object(GROUP, VERSION, plural, limit=500, _continue=token)
            n += sum(1 for o in page.get("items", []) if (o.get("spec") or {}).get("seal"))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        counts[plural] = n
    return counts


def _seal_key(namespace: str, name: str) -> bytes:
    core: Any = kubernetes.client.CoreV1Api(client())
    try:
        secret = core.read_namespaced_secret(name, namespace)
        return base64.b64decode(secret.data[KEY_FIELD])
    except ApiException as e:
        if e.status != 404:
            raise
    try:
        sealed = _count_sealed()
    except ApiException as e:
        if e.status != 403:
            raise
        raise SealKeyLost(
            f"seal key Secret {namespace}/{name} is missing and the operator may not list "
            f"{' and '.join(SEALED_PLURALS)} cluster-wide to check that no sealed object depends on it; "
            "grant that (charts/modelgate/templates/rbac-operator.yaml) or restore the Secret from backup"
        ) from None
    if any(sealed.values()):
        raise SealKeyLost(seal_key_lost_message(namespace, name, sealed))
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
    """The HMAC key from Secret namespace/name, created with 32 random bytes when absent and no
    sealed object exists; raises SealKeyLost when it is absent and sealed objects exist."""
    return await asyncio.to_thread(_seal_key, namespace, name)


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
