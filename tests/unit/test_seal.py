"""Seals (decide/seal.py): Ed25519 over what they cover; copied, altered, unknown-key and retired-key
seals fail with a message naming the problem; evidence counts through its status or admission seal."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelgate.decide import seal
from modelgate.decide.seal import KeyRing, SealError, Signer, Trust, TrustedKey

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
OTHER = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))
"""Fixed keys: test ids name them, and every xdist worker must collect the same ids."""


def trusted(*signers: Signer, retired: dict[str, dt.datetime] | None = None) -> Trust:
    retired = retired or {}
    return Trust(
        {
            s.key_id: TrustedKey(s.key_id, s.public_key, T0 + dt.timedelta(minutes=i), retired.get(s.key_id))
            for i, s in enumerate(signers)
        }
    )


def approval(name: str = "bob-ok", uid: str = "u-1", created: dt.datetime = T0) -> dict[str, Any]:
    spec = {
        "model": {"name": "fraud", "version": "v2", "digest": "sha256:" + "ab" * 32},
        "role": "ethics-board",
        "decision": "approved",
        "approvedBy": {"username": "bob", "groups": ["reviewers"]},
    }
    spec["seal"] = seal.admission_seal(SIGNER, "ModelApproval", "fraud-prod", spec, T0)
    return {
        "apiVersion": "modelgate.io/v1alpha1",
        "kind": "ModelApproval",
        "metadata": {
            "name": name,
            "namespace": "fraud-prod",
            "uid": uid,
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": spec,
    }


def bound(raw: dict[str, Any], signer: Signer = SIGNER) -> dict[str, Any]:
    return {**raw, "status": {"seal": seal.bind(signer, raw, T0 + dt.timedelta(seconds=1))}}


def test_a_seal_checks_over_what_it_covers_and_names_its_key() -> None:
    covers = {"kind": "ModelApproval", "namespace": "ns", "name": "a", "uid": "1"}
    made = seal.sign(SIGNER, covers, {"x": 1}, T0)
    assert made["keyId"] == SIGNER.key_id == hashlib.sha256(SIGNER.public_key).hexdigest()[:16]
    assert made["covers"] == covers and made["algorithm"] == "Ed25519"
    assert seal.check(trusted(SIGNER), made, covers, {"x": 1}) == made


def test_a_seal_copied_onto_another_object_fails_naming_both() -> None:
    covers = {"kind": "ModelApproval", "namespace": "ns", "name": "a", "uid": "1"}
    made = seal.sign(SIGNER, covers, {"x": 1}, T0)
    other = {**covers, "name": "b", "uid": "2"}
    with pytest.raises(
        SealError, match=r"covers ModelApproval ns/a \(uid 1\), not ModelApproval ns/b \(uid 2\)"
    ):
        seal.check(trusted(SIGNER), made, other, {"x": 1})
    with pytest.raises(SealError, match="copied from another object"):
        seal.check(trusted(SIGNER), made, {**covers, "uid": "re-created"}, {"x": 1})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: {**s, "signature": seal.sign(OTHER, s["covers"], {"x": 1}, T0)["signature"]},
            "does not match",
        ),
        (lambda s: {**s, "signedAt": "2026-12-01T12:00:01Z"}, "does not match"),
        (lambda s: {**s, "keyId": OTHER.key_id}, f"key {OTHER.key_id}, which the trust file does not list"),
        (lambda s: {**s, "algorithm": "HS256"}, "algorithm is 'HS256'"),
        (lambda s: {**s, "signature": "not base64!"}, "not base64"),
        (lambda s: {k: v for k, v in s.items() if k != "signedAt"}, "signedAt is missing"),
        (lambda s: "a string", "not an object"),
    ],
)
def test_an_altered_seal_fails_with_a_message_naming_the_problem(change: Any, message: str) -> None:
    covers = {"kind": "X", "namespace": "ns", "name": "a", "uid": "1"}
    made = seal.sign(SIGNER, covers, {"x": 1}, T0)
    with pytest.raises(SealError, match=message):
        seal.check(trusted(SIGNER), change(made), covers, {"x": 1})


def test_altered_content_fails() -> None:
    covers = {"kind": "X", "namespace": "ns"}
    made = seal.sign(SIGNER, covers, {"x": 1, "y": [1, 2]}, T0)
    for body in ({"x": 2, "y": [1, 2]}, {"x": 1, "y": [2, 1]}, {"x": 1}, {"x": 1, "y": [1, 2], "z": None}):
        with pytest.raises(SealError, match="altered"):
            seal.check(trusted(SIGNER), made, covers, body)


def test_a_retired_key_holds_for_history_made_before_its_retirement_and_never_for_a_live_object() -> None:
    covers = {"kind": "X", "namespace": "ns"}
    before = seal.sign(SIGNER, covers, {}, T0)
    after = seal.sign(SIGNER, covers, {}, T0 + dt.timedelta(days=2))
    trust = trusted(SIGNER, retired={SIGNER.key_id: T0 + dt.timedelta(days=1)})
    assert seal.check(trust, before, covers, {})
    with pytest.raises(SealError, match="that key was retired at 2026-12-02T12:00:00Z"):
        seal.check(trust, after, covers, {})
    with pytest.raises(SealError, match="retired"):
        seal.check(trust, before, covers, {}, live=True)


def test_the_trust_file_round_trips_and_refuses_a_key_listed_under_another_id() -> None:
    trust = trusted(SIGNER, OTHER, retired={OTHER.key_id: T0})
    assert Trust.from_json(trust.to_json()) == trust
    doc = trust.to_json()
    doc["keys"][SIGNER.key_id]["publicKey"] = doc["keys"][OTHER.key_id]["publicKey"]
    with pytest.raises(SealError, match=f"its publicKey has the id {OTHER.key_id}, not {SIGNER.key_id}"):
        Trust.from_json(doc)
    with pytest.raises(SealError, match="not a JSON object"):
        Trust.from_json([])


def test_the_newest_active_key_held_signs() -> None:
    ring = KeyRing((SIGNER, OTHER), trusted(SIGNER, OTHER))
    assert ring.current == OTHER.key_id  # created a minute later
    retired = KeyRing((SIGNER, OTHER), trusted(SIGNER, OTHER, retired={OTHER.key_id: T0}))
    assert retired.current == SIGNER.key_id
    only_published = KeyRing((SIGNER,), trusted(SIGNER, OTHER))
    assert only_published.current == SIGNER.key_id
    assert OTHER.key_id not in only_published.trust.keys  # a key only published counts for nothing


def test_evidence_counts_through_its_admission_seal_until_the_operator_binds_it() -> None:
    ring = KeyRing((SIGNER,), trusted(SIGNER))
    raw = approval()
    state = seal.evidence(raw, ring)
    assert (state.counts, state.rebind, state.key_id) == (True, "admission", SIGNER.key_id)
    state = seal.evidence(bound(raw), ring)
    assert (state.counts, state.rebind, state.reason) == (True, None, None)


def test_a_status_seal_copied_from_another_approval_does_not_make_it_count() -> None:
    ring = KeyRing((SIGNER,), trusted(SIGNER))
    genuine = bound(approval("a", "u-a"))
    unsealed = approval("b", "u-b")
    del unsealed["spec"]["seal"]
    copy = {**unsealed, "status": genuine["status"]}
    state = seal.evidence(copy, ring)
    assert not state.counts
    assert "its status seal does not hold" in (state.reason or "")
    assert "copied from another object" in (state.reason or "")


def test_a_spec_and_admission_seal_copied_into_a_later_object_do_not_count() -> None:
    ring = KeyRing((SIGNER,), trusted(SIGNER))
    late = approval("copy", "u-c", created=T0 + seal.ADMISSION_WINDOW + dt.timedelta(seconds=1))
    state = seal.evidence(late, ring)
    assert not state.counts and "copied into another object" in (state.reason or "")
    assert seal.evidence(approval(created=T0 + seal.ADMISSION_WINDOW), ring).counts


def test_an_altered_spec_or_a_missing_seal_does_not_count() -> None:
    ring = KeyRing((SIGNER,), trusted(SIGNER))
    raw = bound(approval())
    raw["spec"] = {**raw["spec"], "role": "product-owner"}
    state = seal.evidence(raw, ring)
    assert not state.counts and "altered" in (state.reason or "")
    unsealed = approval()
    del unsealed["spec"]["seal"]
    assert (
        seal.evidence(unsealed, ring).reason
        == "unsealed: it was written past the modelgate admission webhook"
    )


def test_a_seal_by_an_older_key_is_re_sealed_and_one_by_a_retired_key_does_not_count() -> None:
    raw = bound(approval())
    rotated = KeyRing((SIGNER, OTHER), trusted(SIGNER, OTHER))
    state = seal.evidence(raw, rotated)
    assert (state.counts, state.rebind, state.key_id) == (True, "rotation", SIGNER.key_id)
    retired = KeyRing((OTHER,), trusted(OTHER, SIGNER, retired={SIGNER.key_id: T0 + dt.timedelta(hours=1)}))
    state = seal.evidence(raw, retired)
    assert not state.counts and "retired" in (state.reason or "")


def test_an_hmac_seal_from_before_the_signatures_counts_and_is_re_sealed_only_where_it_verifies() -> None:
    key = b"k" * 32
    raw = approval()
    spec = {k: v for k, v in raw["spec"].items() if k != "seal"}
    payload = seal.canonical({"kind": "ModelApproval", "namespace": "fraud-prod", "spec": spec})
    raw["spec"] = {**spec, "seal": seal.LEGACY_PREFIX + hmac.new(key, payload, hashlib.sha256).hexdigest()}
    ring = KeyRing((SIGNER,), trusted(SIGNER), legacy=key)
    state = seal.evidence(raw, ring)
    assert (state.counts, state.rebind) == (True, "legacy")
    assert not seal.evidence(raw, KeyRing((SIGNER,), trusted(SIGNER), legacy=b"x" * 32)).counts
    assert not seal.evidence(raw, KeyRing((SIGNER,), trusted(SIGNER))).counts  # no old key: no re-seal


def test_key_ids_names_the_keys_an_objects_seals_use() -> None:
    raw = bound(approval(), OTHER)
    assert seal.key_ids(raw) == {SIGNER.key_id, OTHER.key_id}
    assert seal.key_ids({"spec": {"seal": "hmac-sha256:00"}}) == set()
