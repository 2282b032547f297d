"""Seals: Ed25519 signatures by the operator's keys over what an object or a record says.

Anyone holding the public keys (the ConfigMap `modelgate-trust`, or the trust file
`modelgate keys export-trust` writes) can check a seal without the cluster; only the operator, which
holds the private keys (a Secret in its namespace), can make one. Every seal names its key id and
what it covers, and the signature is over both plus the content, in canonical JSON (sorted keys, no
spaces): a seal copied onto another object names the wrong object and fails.

What is sealed:
- evidence (ModelApproval, ModelEvaluation): `status.seal` covers the object's kind, namespace,
  name and uid, and its spec without `spec.seal`. The operator writes it (`bind`) once it has
  checked the admission seal; the gate counts evidence only while one of the two holds (`evidence`).
- the admission seal `spec.seal`, written by the webhook at CREATE over the kind, namespace and
  spec it stamped: mutating webhooks run before the API server names the object (generateName) and
  gives it a uid, so this seal cannot cover them. It proves the identity stamp passed the webhook,
  and it carries the time it was made: the operator binds it only to an object created within
  `ADMISSION_WINDOW` of that time, so a spec and seal copied into a later object are refused.
- decision records and evidence bundles: `seal` covers the ModelDeployment (kind, namespace, name,
  uid) and the record without its seal.
- objects sealed before the signatures (an HMAC in `spec.seal`, "hmac-sha256:...") are re-sealed
  where the HMAC still verifies with the old key; nothing unsealed starts to count.

Key ids are the first 16 hex digits of the SHA-256 of the raw public key, so a trust file cannot
list a key under another key's id. A key is retired by marking it so in the trust file: a seal by a
retired key no longer holds for a live object, and a record sealed after the key's retirement fails.

Pure: keys and times are passed in.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM: Final = "Ed25519"
ADMISSION_PREFIX: Final = "ed25519:"
LEGACY_PREFIX: Final = "hmac-sha256:"
ADMISSION_WINDOW: Final = dt.timedelta(seconds=30)
"""How long after the webhook sealed a spec the API server may create the object: an admission
request takes well under a second; the margin covers clocks that differ between the webhook's node
and the API server's."""
UNDATED: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""The date of a held key the trust ConfigMap does not list yet (the operator publishes it at start)."""
CLOCK_SKEW: Final = dt.timedelta(seconds=30)
"""How much earlier than its admission seal an object may have been created (clock differences)."""


class SealError(ValueError):
    """A seal that does not hold; the message names what is wrong, for people."""


def canonical(value: Any) -> bytes:
    """The bytes a seal signs: JSON with sorted keys and no spaces, as stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, str):
        raise SealError(f"{what} is missing or not a time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SealError(f"{what} {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise SealError(f"{what} {value!r} has no time zone")
    return parsed


def _b64decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise SealError(f"{what} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SealError(f"{what} is not base64") from None


@dataclass(frozen=True)
class TrustedKey:
    """A public key the trust file lists."""

    key_id: str
    public_key: bytes
    created_at: dt.datetime
    retired_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "algorithm": ALGORITHM,
            "publicKey": base64.b64encode(self.public_key).decode(),
            "createdAt": _time(self.created_at),
        }
        if self.retired_at is not None:
            out["retiredAt"] = _time(self.retired_at)
        return out

    @classmethod
    def from_json(cls, kid: str, doc: Any) -> TrustedKey:
        if not isinstance(doc, Mapping):
            raise SealError(f"trusted key {kid} is not an object")
        if doc.get("algorithm", ALGORITHM) != ALGORITHM:
            raise SealError(f"trusted key {kid} has algorithm {doc.get('algorithm')!r}, not {ALGORITHM}")
        public = _b64decode(doc.get("publicKey"), f"trusted key {kid}: publicKey")
        if len(public) != 32:
            raise SealError(f"trusted key {kid}: publicKey is {len(public)} bytes, not 32 (Ed25519)")
        if key_id(public) != kid:
            raise SealError(f"trusted key {kid}: its publicKey has the id {key_id(public)}, not {kid}")
        retired = doc.get("retiredAt")
        return cls(
            kid,
            public,
            parse_time(doc.get("createdAt"), f"trusted key {kid}: createdAt"),
            parse_time(retired, f"trusted key {kid}: retiredAt") if retired is not None else None,
        )


@dataclass(frozen=True)
class Trust:
    """The public keys seals are checked against, by key id."""

    keys: Mapping[str, TrustedKey] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"keys": {kid: k.to_json() for kid, k in sorted(self.keys.items())}}

    @classmethod
    def from_json(cls, doc: Any) -> Trust:
        """The trust file (`{"keys": {id: {...}}}`) or the ConfigMap's data (`{id: "<json>"}`)."""
        if not isinstance(doc, Mapping):
            raise SealError("the trust document is not a JSON object")
        entries = doc.get("keys") if "keys" in doc else doc
        if not isinstance(entries, Mapping):
            raise SealError('the trust document\'s "keys" is not an object')
        keys = {}
        for kid, entry in entries.items():
            if isinstance(entry, str):
                try:
                    entry = json.loads(entry)
                except json.JSONDecodeError:
                    raise SealError(f"trusted key {kid} is not JSON") from None
            keys[str(kid)] = TrustedKey.from_json(str(kid), entry)
        return cls(keys)

    def active(self) -> list[TrustedKey]:
        """Keys not retired, newest first (the first one signs)."""
        live = [k for k in self.keys.values() if k.retired_at is None]
        return sorted(live, key=lambda k: (k.created_at, k.key_id), reverse=True)


@dataclass(frozen=True)
class Signer:
    """A private key, named by the id of its public key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def from_pem(cls, data: bytes) -> Signer:
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SealError("the private key is not an Ed25519 key")
        return cls(key)


def _signed(header: Mapping[str, Any], body: Any) -> bytes:
    return canonical({**header, "body": body})


def sign(signer: Signer, covers: Mapping[str, Any], body: Any, signed_at: dt.datetime) -> dict[str, Any]:
    """A seal over `body`, naming what it covers (the object or record it belongs to)."""
    header = {
        "algorithm": ALGORITHM,
        "keyId": signer.key_id,
        "signedAt": _time(signed_at),
        "covers": dict(covers),
    }
    signature = signer.private_key.sign(_signed(header, body))
    return {**header, "signature": base64.b64encode(signature).decode()}


def _describe(covers: Mapping[str, Any]) -> str:
    where = "/".join(str(covers[k]) for k in ("namespace", "name") if covers.get(k))
    uid = f" (uid {covers['uid']})" if covers.get("uid") else ""
    return f"{covers.get('kind', '?')} {where}{uid}".strip()


def check(
    trust: Trust,
    seal: Any,
    covers: Mapping[str, Any],
    body: Any,
    *,
    live: bool = False,
) -> dict[str, Any]:
    """Raise SealError naming what is wrong unless `seal` is a seal by a trusted key over exactly
    `covers` and `body`; return it. With `live`, a retired key fails whenever the seal was made
    (a live object must not depend on it); otherwise only a seal made after the retirement fails."""
    if not isinstance(seal, Mapping):
        raise SealError("no seal" if seal is None else "the seal is not an object")
    if seal.get("algorithm") != ALGORITHM:
        raise SealError(f"the seal's algorithm is {seal.get('algorithm')!r}, not {ALGORITHM}")
    kid = seal.get("keyId")
    signed_at = parse_time(seal.get("signedAt"), "the seal's signedAt")
    sealed_covers = seal.get("covers")
    if not isinstance(sealed_covers, Mapping) or dict(sealed_covers) != dict(covers):
        named = _describe(sealed_covers) if isinstance(sealed_covers, Mapping) else "nothing readable"
        raise SealError(
            f"the seal covers {named}, not {_describe(covers)}: it was copied from another object"
        )
    key = trust.keys.get(str(kid))
    if key is None:
        raise SealError(f"sealed with key {kid}, which the trust file does not list")
    if key.retired_at is not None and (live or signed_at >= key.retired_at):
        raise SealError(
            f"sealed with key {kid} at {_time(signed_at)}; that key was retired at {_time(key.retired_at)}"
        )
    signature = _b64decode(seal.get("signature"), "the seal's signature")
    header = {k: seal[k] for k in ("algorithm", "keyId", "signedAt", "covers")}
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, _signed(header, body))
    except InvalidSignature:
        raise SealError(
            f"the signature by key {kid} does not match: the sealed content was altered"
        ) from None
    return dict(seal)


# Evidence ---------------------------------------------------------------------------------------


def evidence_covers(raw: Mapping[str, Any]) -> dict[str, str]:
    meta = raw.get("metadata") or {}
    return {
        "kind": str(raw.get("kind") or ""),
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
        "uid": str(meta.get("uid") or ""),
    }


def unsealed_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "seal"}


def admission_seal(
    signer: Signer, kind: str, namespace: str, spec: Mapping[str, Any], now: dt.datetime
) -> str:
    """The webhook's seal for `spec.seal`: a compact string (the schema's field is a string)."""
    sealed = sign(signer, {"kind": kind, "namespace": namespace}, unsealed_spec(spec), now)
    epoch = int(parse_time(sealed["signedAt"], "signedAt").timestamp())
    return f"{ADMISSION_PREFIX}{sealed['keyId']}:{epoch}:{sealed['signature']}"


def read_admission_seal(value: str, kind: str, namespace: str) -> dict[str, Any]:
    """The admission seal string as a seal object (for `check`)."""
    parts = value[len(ADMISSION_PREFIX) :].split(":")
    if not value.startswith(ADMISSION_PREFIX) or len(parts) != 3 or not parts[1].isdigit():
        raise SealError("spec.seal is not an admission seal (ed25519:<key id>:<time>:<signature>)")
    kid, epoch, signature = parts
    return {
        "algorithm": ALGORITHM,
        "keyId": kid,
        "signedAt": _time(dt.datetime.fromtimestamp(int(epoch), dt.UTC)),
        "covers": {"kind": kind, "namespace": namespace},
        "signature": signature,
    }


def check_admission(trust: Trust, raw: Mapping[str, Any], *, live: bool = True) -> str:
    """Raise SealError unless `spec.seal` is the webhook's seal of this spec, made when this object
    was created; return the key id. `live` as for `check`: an auditor checking a bundle after the
    key's retirement passes False (the seal was made before it)."""
    spec = raw.get("spec") or {}
    covers = evidence_covers(raw)
    value = spec.get("seal")
    if not isinstance(value, str) or not value:
        raise SealError("unsealed: it was written past the modelgate admission webhook")
    seal = read_admission_seal(value, covers["kind"], covers["namespace"])
    check(trust, seal, seal["covers"], unsealed_spec(spec), live=live)
    created = parse_time((raw.get("metadata") or {}).get("creationTimestamp"), "metadata.creationTimestamp")
    sealed_at = parse_time(seal["signedAt"], "the admission seal's time")
    if not sealed_at - CLOCK_SKEW <= created <= sealed_at + ADMISSION_WINDOW:
        raise SealError(
            f"the admission seal was made at {_time(sealed_at)} but the object was created at "
            f"{_time(created)}: the spec and its seal were copied into another object"
        )
    return str(seal["keyId"])


def legacy_verifies(key: bytes, raw: Mapping[str, Any]) -> bool:
    """The HMAC seal objects carried before the signatures (kind, namespace, spec without seal)."""
    spec = raw.get("spec") or {}
    value = spec.get("seal")
    if not isinstance(value, str) or not value.startswith(LEGACY_PREFIX):
        return False
    payload = canonical(
        {
            "kind": raw.get("kind"),
            "namespace": (raw.get("metadata") or {}).get("namespace") or "",
            "spec": unsealed_spec(spec),
        }
    )
    return hmac.compare_digest(value, LEGACY_PREFIX + hmac.new(key, payload, hashlib.sha256).hexdigest())


@dataclass(frozen=True)
class EvidenceSeal:
    """What the seals of one approval or evaluation prove, and what the operator should write."""

    counts: bool
    """The evidence passed the webhook, as this object: its status seal or its admission seal holds."""
    reason: str | None
    """Why it does not count (None when it does)."""
    key_id: str | None
    """The key the evidence depends on now: its status seal's, else its admission seal's."""
    rebind: Literal["admission", "legacy", "rotation"] | None
    """Why the operator should (re)write `status.seal` with its current key: none yet (admission),
    an HMAC seal that verifies (legacy), or a seal by an older key (rotation)."""


def evidence(raw: Mapping[str, Any], ring: KeyRing) -> EvidenceSeal:
    """What the seals of an approval or evaluation prove, checked against the keys held."""
    trust, current, legacy_key = ring.trust, ring.current, ring.legacy
    covers = evidence_covers(raw)
    body = unsealed_spec(raw.get("spec") or {})
    status_seal = (raw.get("status") or {}).get("seal")
    status_problem = None
    if status_seal is not None:
        try:
            check(trust, status_seal, covers, body, live=True)
            kid = str(status_seal["keyId"])
            return EvidenceSeal(True, None, kid, "rotation" if current and kid != current else None)
        except SealError as e:
            status_problem = f"its status seal does not hold ({e})"
    if legacy_key is not None and legacy_verifies(legacy_key, raw):
        return EvidenceSeal(True, None, None, "legacy")
    try:
        kid = check_admission(trust, raw)
    except SealError as e:
        return EvidenceSeal(False, status_problem or str(e), None, None)
    return EvidenceSeal(True, None, kid, "admission")


def bind(signer: Signer, raw: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The status seal of evidence whose admission (or legacy) seal the caller has checked."""
    return sign(signer, evidence_covers(raw), unsealed_spec(raw.get("spec") or {}), now)


# Records and bundles ----------------------------------------------------------------------------


def record_covers(kind: str, namespace: str, name: str, uid: str) -> dict[str, str]:
    return {"kind": kind, "namespace": namespace, "name": name, "uid": uid}


def seal_record(
    signer: Signer, record: Mapping[str, Any], covers: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """`record` with a `seal` over everything else in it."""
    body = {k: v for k, v in record.items() if k != "seal"}
    return {**body, "seal": sign(signer, covers, body, now)}


def check_record(
    trust: Trust, record: Mapping[str, Any], covers: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Raise SealError unless the record's seal holds (over `covers` when given, else over what
    the seal itself names)."""
    seal = record.get("seal")
    if not isinstance(seal, Mapping):
        raise SealError("unsealed record")
    named = covers if covers is not None else seal.get("covers")
    if not isinstance(named, Mapping):
        raise SealError("the seal names nothing it covers")
    return check(trust, seal, named, {k: v for k, v in record.items() if k != "seal"})


@dataclass(frozen=True)
class KeyRing:
    """The keys a replica holds: private ones (the Secret), the published trust (the ConfigMap),
    and the HMAC key of the seals made before the signatures, to re-seal those."""

    signers: tuple[Signer, ...] = ()
    published: Trust = field(default_factory=Trust)
    legacy: bytes | None = None

    @cached_property
    def trust(self) -> Trust:
        """What the operator checks live seals against: the keys it holds (dated and retired as the
        trust ConfigMap says; a key only published there counts for nothing), plus the retired
        ones, known as retired."""
        keys = {
            s.key_id: self.published.keys.get(s.key_id) or TrustedKey(s.key_id, s.public_key, UNDATED)
            for s in self.signers
        }
        keys |= {kid: k for kid, k in self.published.keys.items() if k.retired_at is not None}
        return Trust(keys)

    @cached_property
    def signer(self) -> Signer | None:
        """The newest active key held: new seals use it."""
        by_id = {s.key_id: s for s in self.signers}
        return next((by_id[k.key_id] for k in self.trust.active() if k.key_id in by_id), None)

    @property
    def current(self) -> str | None:
        return self.signer.key_id if self.signer else None


def key_ids(raw: Mapping[str, Any]) -> set[str]:
    """The key ids the seals of an approval or evaluation name (to learn of a new key first)."""
    out = set()
    status_seal = (raw.get("status") or {}).get("seal")
    if isinstance(status_seal, Mapping) and status_seal.get("keyId"):
        out.add(str(status_seal["keyId"]))
    admission = (raw.get("spec") or {}).get("seal")
    if isinstance(admission, str) and admission.startswith(ADMISSION_PREFIX):
        out.add(admission[len(ADMISSION_PREFIX) :].split(":")[0])
    return out
