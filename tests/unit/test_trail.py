"""Decision records (decide/trail.py): the history entry and the audit line are one signed record,
the same for a retried decision, checkable on its own; history keeps count of what it dropped."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from modelgate.decide import seal, trail
from modelgate.decide.seal import SealError, Signer, Trust, TrustedKey
from modelgate.decide.types import Decision

SIGNER = Signer.generate()
TRUST = Trust(
    {SIGNER.key_id: TrustedKey(SIGNER.key_id, SIGNER.public_key, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))}
)
BODY = {"kind": "ModelDeployment", "metadata": {"namespace": "fraud-prod", "name": "fraud", "uid": "u-1"}}
DECISION = Decision(
    action="RolledBack",
    reason="DriftDetected",
    message="psi 0.31 > 0.25 three times; back to v1",
    time="2026-12-05T10:00:00Z",
    evidence={"readings": [{"metric": "psi", "value": 0.31}]},
    revision={"version": "v2", "digest": "sha256:" + "fb" * 32},
    id="0123456789abcdef",
)


def test_a_record_is_sealed_over_the_model_deployment_and_checks_on_its_own() -> None:
    record = trail.record(DECISION, BODY, SIGNER)
    assert record["seal"]["covers"] == {
        "kind": "ModelDeployment",
        "namespace": "fraud-prod",
        "name": "fraud",
        "uid": "u-1",
    }
    assert record["seal"]["signedAt"] == DECISION.time
    assert record["evidenceDigest"] == trail.evidence_digest(DECISION.evidence)
    assert seal.check_record(TRUST, record, trail.covers(BODY))


def test_a_retried_decision_gets_the_same_record_byte_for_byte() -> None:
    assert json.dumps(trail.record(DECISION, BODY, SIGNER)) == json.dumps(
        trail.record(DECISION, BODY, SIGNER)
    )


@pytest.mark.parametrize(
    "field", ["time", "action", "reason", "message", "revision", "decision", "evidenceDigest"]
)
def test_an_edited_record_fails(field: str) -> None:
    record = trail.record(DECISION, BODY, SIGNER)
    edited: dict[str, Any] = {**record, field: {"x": 1} if field == "revision" else "edited"}
    with pytest.raises(SealError):
        seal.check_record(TRUST, edited, trail.covers(BODY))


def test_a_record_moved_to_another_model_fails() -> None:
    record = trail.record(DECISION, BODY, SIGNER)
    other = {**BODY, "metadata": {**BODY["metadata"], "uid": "u-2"}}
    with pytest.raises(SealError, match="copied from another object"):
        seal.check_record(TRUST, record, trail.covers(other))


def test_the_audit_line_carries_the_record_and_the_evidence_it_digests() -> None:
    record = trail.record(DECISION, BODY, SIGNER)
    line = {**record, "audit": True, "object": {"uid": "u-1"}, "evidence": DECISION.evidence}
    assert trail.of_line(line) == record
    assert trail.evidence_digest(line["evidence"]) == line["evidenceDigest"]


def test_unsigned_records_keep_the_history_entry_shape() -> None:
    assert trail.record(DECISION, BODY, None) == {
        "time": DECISION.time,
        "action": "RolledBack",
        "reason": "DriftDetected",
        "message": DECISION.message,
        "revision": dict(DECISION.revision or {}),
        "decision": DECISION.id,
    }


def test_sign_keeps_a_record_already_made() -> None:
    kept = Decision(action="Admitted", reason="GatesPassed", message="", time=DECISION.time, record={"x": 1})
    signed = trail.sign([DECISION, kept], BODY, SIGNER)
    assert signed[1].record == {"x": 1}
    assert signed[0].record == trail.record(DECISION, BODY, SIGNER)
