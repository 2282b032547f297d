"""Decision records: each decision the operator takes, signed, as status.history and the audit log
keep it.

A record is the history entry (decision id, time, action, reason, message, revision) plus the
sha256 of the decision's evidence (`evidenceDigest`) and a seal covering the ModelDeployment
(kind, namespace, name, uid). The audit line of the decision is the same record with the evidence
itself beside it, so an auditor holding only the log pipeline can check each line's seal, and its
evidence against the digest; a history entry checks the same way.

The seal is made at the decision's own time with the current key: a decision retried after a lost
status write gets the same id and time, and so the same record, byte for byte (Ed25519 signatures
are deterministic). Pure: the signer is passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from modelgate.decide import seal
from modelgate.decide.types import Decision

MAX_MESSAGE: Final = 4000
RECORD_FIELDS: Final = (
    "decision",
    "time",
    "action",
    "reason",
    "message",
    "revision",
    "evidenceDigest",
    "seal",
)
"""The fields of a record; an audit line carries more (`audit`, `object`, `evidence`, `retold`)."""


def evidence_digest(evidence: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(seal.canonical(evidence)).hexdigest()


def covers(body: Mapping[str, Any]) -> dict[str, str]:
    """What a decision about the ModelDeployment `body` covers."""
    meta = body.get("metadata") or {}
    return seal.record_covers(
        str(body.get("kind") or "ModelDeployment"),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str(meta.get("uid") or ""),
    )


def record(decision: Decision, body: Mapping[str, Any], signer: seal.Signer | None) -> dict[str, Any]:
    """The decision as a history entry: sealed when a signer is given."""
    entry: dict[str, Any] = {
        "time": decision.time,
        "action": decision.action,
        "reason": decision.reason,
        "message": decision.message[:MAX_MESSAGE],
    }
    if decision.revision:
        entry["revision"] = dict(decision.revision)
    if decision.id:
        entry["decision"] = decision.id
    if signer is None:
        return entry
    entry["evidenceDigest"] = evidence_digest(decision.evidence)
    at = seal.parse_time(decision.time, "the decision's time")
    return seal.seal_record(signer, entry, covers(body), at)


def sign(
    decisions: Iterable[Decision], body: Mapping[str, Any], signer: seal.Signer | None
) -> tuple[Decision, ...]:
    """The decisions, each carrying its record (a retold one keeps the record it had)."""
    return tuple(d if d.record is not None else replace(d, record=record(d, body, signer)) for d in decisions)


def of_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """The record inside an audit line (what its seal covers)."""
    return {k: line[k] for k in RECORD_FIELDS if k in line}
