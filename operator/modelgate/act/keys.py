"""The operator's signing keys: a Secret of private keys, a ConfigMap of public ones.

- Secret `modelgate-signing-keys` (the operator's namespace): one PEM private key per data entry,
  keyed by key id. Only the operator (and an admin) reads it.
- ConfigMap `modelgate-trust`: one JSON entry per key id (`publicKey`, `createdAt`, `retiredAt`),
  readable by the auditor role; `modelgate keys export-trust` writes it out as the trust file.

New seals use the newest key the ConfigMap lists as active and the Secret holds. The operator
trusts only keys it holds a private key for (a public key added to the ConfigMap alone makes
nothing count), less those the ConfigMap marks retired. Every replica re-reads both every
`REFRESH` seconds and whenever it meets a key id it does not know, so a rotation reaches running
replicas without a restart.

`rotate` publishes the new public key before it stores the private one, so no replica signs with a
key the others cannot check yet. `retire` refuses while a live approval or evaluation depends on
the key (its status seal, or an admission seal not yet bound), naming them; the operator re-seals
evidence sealed with an older key (`decide.seal.EvidenceSeal.rebind`), so after a rotation that
list empties by itself while the operator runs.

Start-up (`KeyStore.ensure`): the first key is made only while nothing sealed with a signature
exists. A lost Secret with sealed approvals and evaluations around is refused (`SealKeyLost`, one
line naming the Secret, the count and the way out): a fresh key would silently invalidate every
seal and, under `onRevocation: suspend`, take every serving model down. The HMAC key objects
were sealed with before (Secret `modelgate-seal-key`) is read when present, to re-seal them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.decide import seal
from modelgate.decide.seal import KeyRing as Keys
from modelgate.decide.seal import Signer, Trust, TrustedKey

SECRET: Final = "modelgate-signing-keys"
CONFIGMAP: Final = "modelgate-trust"
LEGACY_SECRET: Final = "modelgate-seal-key"
LEGACY_FIELD: Final = "key"
SEALED_PLURALS: Final = ("modelapprovals", "modelevaluations")
REFRESH: Final = 10.0
"""Seconds between two reads of the Secret and the ConfigMap by a running replica."""
RELOAD_AT_MOST: Final = 2.0
"""Seconds between two reads forced by an unknown key id (a flood of bad seals reads once)."""
LABELS: Final = {"app.kubernetes.io/managed-by": "modelgate"}

log = logging.getLogger("modelgate.keys")


class SealKeyLost(RuntimeError):
    """The signing key Secret is missing while sealed objects exist: the operator must not start."""


class KeyCommandError(RuntimeError):
    """A key command that cannot be done; the message says why, for people."""


def _core(api_client: Any) -> Any:
    return kubernetes.client.CoreV1Api(api_client)


def read(api_client: Any, namespace: str) -> Keys:
    """The keys as stored now (empty when the Secret or the ConfigMap is missing)."""
    core = _core(api_client)
    signers: list[Signer] = []
    try:
        secret = core.read_namespaced_secret(SECRET, namespace)
        for kid, data in sorted((secret.data or {}).items()):
            signer = Signer.from_pem(base64.b64decode(data))
            if signer.key_id != kid:
                log.warning(
                    "Secret %s/%s: entry %s holds key %s; ignored", namespace, SECRET, kid, signer.key_id
                )
                continue
            signers.append(signer)
    except ApiException as e:
        if e.status != 404:
            raise
    published = read_published(api_client, namespace)
    legacy = None
    try:
        old = core.read_namespaced_secret(LEGACY_SECRET, namespace)
        if old.data and LEGACY_FIELD in old.data:
            legacy = base64.b64decode(old.data[LEGACY_FIELD])
    except ApiException as e:
        if e.status not in (403, 404):  # the chart's role may not name the old Secret
            raise
    return Keys(tuple(signers), published, legacy)


def read_published(api_client: Any, namespace: str) -> Trust:
    """The trust ConfigMap's keys (none when it is missing): what auditors may read."""
    try:
        cm = _core(api_client).read_namespaced_config_map(CONFIGMAP, namespace)
    except ApiException as e:
        if e.status != 404:
            raise
        return Trust()
    return Trust.from_json(cm.data or {})


def publish(api_client: Any, namespace: str, keys: Iterable[TrustedKey]) -> None:
    """Add or update entries of the trust ConfigMap (created when missing)."""
    core = _core(api_client)
    data = {k.key_id: json.dumps(k.to_json(), sort_keys=True) for k in keys}
    try:
        core.patch_namespaced_config_map(CONFIGMAP, namespace, {"data": data})
    except ApiException as e:
        if e.status != 404:
            raise
        body = {"metadata": {"name": CONFIGMAP, "namespace": namespace, "labels": LABELS}, "data": data}
        core.create_namespaced_config_map(namespace, body)


def store_private(api_client: Any, namespace: str, signer: Signer, *, create: bool) -> None:
    core = _core(api_client)
    data = {signer.key_id: base64.b64encode(signer.pem()).decode()}
    if create:
        body = {
            "metadata": {"name": SECRET, "namespace": namespace, "labels": LABELS},
            "type": "Opaque",
            "data": data,
        }
        core.create_namespaced_secret(namespace, body)
    else:
        core.patch_namespaced_secret(SECRET, namespace, {"data": data})


def rotate(api_client: Any, namespace: str, now: dt.datetime) -> Signer:
    """Make a new key: publish its public half, then store its private half. New seals use it."""
    signer = Signer.generate()
    publish(api_client, namespace, [TrustedKey(signer.key_id, signer.public_key, now)])
    existing = read(api_client, namespace)
    try:
        store_private(api_client, namespace, signer, create=not existing.signers)
    except ApiException as e:
        if e.status != 409:
            raise
        store_private(api_client, namespace, signer, create=False)  # made meanwhile by a replica
    return signer


def pages(api_client: Any, plural: str) -> Iterator[list[Mapping[str, Any]]]:
    """Every object of `plural` in the cluster, as stored, 500 at a time: at 10,000 models a whole
    list held at once was the start-up's largest allocation."""
    api: Any = kubernetes.client.CustomObjectsApi(api_client)
    token = None
    while True:
        page = api.list_cluster_custom_object(GROUP, VERSION, plural, limit=500, _continue=token)
        yield list(page.get("items", []))
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def items(api_client: Any, plural: str) -> Iterable[Mapping[str, Any]]:
    for page in pages(api_client, plural):
        yield from page


def dependents(api_client: Any, keys: Keys, key_id: str) -> list[str]:
    """The live approvals and evaluations that count only through a seal by `key_id`."""
    out = []
    for plural in SEALED_PLURALS:
        for raw in items(api_client, plural):
            state = seal.evidence(raw, keys)
            if state.counts and state.key_id == key_id:
                meta = raw.get("metadata") or {}
                out.append(f"{raw.get('kind')} {meta.get('namespace')}/{meta.get('name')}")
    return out


def retire(api_client: Any, namespace: str, key_id: str, now: dt.datetime) -> TrustedKey:
    """Mark `key_id` retired in the ConfigMap and drop its private key; refuses (KeyCommandError) when it
    is unknown, already retired, the only active key, or live objects still depend on it."""
    keys = read(api_client, namespace)
    listed = keys.published.keys.get(key_id)
    if listed is None:
        known = ", ".join(sorted(keys.published.keys)) or "none"
        raise KeyCommandError(f"no key {key_id} in ConfigMap {namespace}/{CONFIGMAP} (keys: {known})")
    if listed.retired_at is not None:
        raise KeyCommandError(f"key {key_id} was already retired at {listed.retired_at.isoformat()}")
    if not [
        k
        for k in keys.published.active()
        if k.key_id != key_id and k.key_id in {s.key_id for s in keys.signers}
    ]:
        raise KeyCommandError(f"key {key_id} is the only active key: run `modelgate keys rotate` first")
    if keys.current == key_id:
        raise KeyCommandError(f"key {key_id} still signs new seals; run `modelgate keys rotate` first")
    waiting = dependents(api_client, keys, key_id)
    if waiting:
        shown = ", ".join(waiting[:20]) + (f" and {len(waiting) - 20} more" if len(waiting) > 20 else "")
        raise KeyCommandError(
            f"key {key_id} still seals {len(waiting)} live objects: {shown}. The operator re-seals "
            "them with the current key while it runs (a rotation is picked up within "
            f"{int(REFRESH)} s); retry once it has, or delete the objects"
        )
    retired = TrustedKey(listed.key_id, listed.public_key, listed.created_at, now)
    publish(api_client, namespace, [retired])
    try:
        _core(api_client).patch_namespaced_secret(
            SECRET, namespace, [{"op": "remove", "path": f"/data/{key_id}"}]
        )
    except ApiException as e:
        if e.status not in (404, 422):  # gone already
            raise
    return retired


def _count_sealed(api_client: Any) -> dict[str, int]:
    """Approvals and evaluations sealed with a signature (status or admission seal)."""
    counts = {}
    for plural in SEALED_PLURALS:
        counts[plural] = sum(
            1
            for o in items(api_client, plural)
            if (o.get("status") or {}).get("seal")
            or str((o.get("spec") or {}).get("seal") or "").startswith(seal.ADMISSION_PREFIX)
        )
    return counts


def seal_key_lost_message(namespace: str, sealed: Mapping[str, int]) -> str:
    counts = ", ".join(f"{n} {plural}" for plural, n in sealed.items() if n)
    return (
        f"signing key Secret {namespace}/{SECRET} is missing while {sum(sealed.values())} sealed objects "
        f"exist ({counts}); a new key would invalidate every seal. Restore the Secret from backup "
        "and restart; or, knowing that every existing approval and evaluation then counts as "
        f"unsealed and must be issued again, make a new key yourself: modelgate keys rotate -n {namespace}"
    )


def ensure(api_client: Any, namespace: str) -> Keys:
    """The keys at start-up: the first one made when there is none and nothing depends on one;
    every held key published. Raises SealKeyLost instead of replacing a lost key."""
    keys = read(api_client, namespace)
    if not keys.signers:
        try:
            sealed = _count_sealed(api_client)
        except ApiException as e:
            if e.status != 403:
                raise
            raise SealKeyLost(
                f"signing key Secret {namespace}/{SECRET} is missing and the operator may not list "
                f"{' and '.join(SEALED_PLURALS)} cluster-wide to check that no sealed object depends on it; "
                "grant that (charts/modelgate/templates/rbac-operator.yaml) or restore the Secret from backup"
            ) from None
        if any(sealed.values()):
            raise SealKeyLost(seal_key_lost_message(namespace, sealed))
        try:
            rotate(api_client, namespace, dt.datetime.now(dt.UTC))
        except ApiException as e:
            if e.status == 404:
                raise RuntimeError(
                    f"namespace {namespace} does not exist: create it, or pass --operator-namespace"
                ) from e
            raise
        keys = read(api_client, namespace)
    unpublished = [s for s in keys.signers if s.key_id not in keys.published.keys]
    if unpublished:  # a key restored into the Secret alone
        publish(
            api_client,
            namespace,
            [TrustedKey(s.key_id, s.public_key, dt.datetime.now(dt.UTC)) for s in unpublished],
        )
        keys = read(api_client, namespace)
    return keys


class KeyStore:
    """A replica's current view of the keys, re-read every REFRESH seconds and on unknown ids."""

    def __init__(self, api_client: Callable[[], Any], namespace: str, keys: Keys | None = None) -> None:
        self._client = api_client
        self.namespace = namespace
        self.keys = keys or Keys()
        self._read_at = time.monotonic()

    def reload(self) -> Keys:
        """Read the keys again. A Secret found empty or deleted while the operator runs does not
        make it forget the keys it holds (seals would stop verifying and evidence stop counting):
        it warns, and keeps them until the Secret is restored or the operator restarts."""
        before = {s.key_id for s in self.keys.signers}, self.keys.published
        found = read(self._client(), self.namespace)
        if not found.signers and self.keys.signers:
            log.warning(
                "Secret %s/%s holds no signing key any more; keeping the %d read before: restore it",
                self.namespace,
                SECRET,
                len(self.keys.signers),
            )
            found = Keys(self.keys.signers, found.published, found.legacy)
        self.keys = found
        self._read_at = time.monotonic()
        if ({s.key_id for s in self.keys.signers}, self.keys.published) != before:
            log.info(
                "signing keys changed: current %s, trusted %s",
                self.keys.current,
                ", ".join(sorted(self.keys.trust.keys)),
            )
        return self.keys

    def knows(self, key_id: str) -> bool:
        """Whether `key_id` is known, reading the keys again (at most every RELOAD_AT_MOST s) if not."""
        if key_id in self.keys.trust.keys:
            return True
        if time.monotonic() - self._read_at >= RELOAD_AT_MOST:
            self.reload()
        return key_id in self.keys.trust.keys
