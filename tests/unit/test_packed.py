"""What the indexes hold, packed: it decodes to what was indexed, a fresh copy each time; evidence
parses back to what it parsed to when indexed; a fingerprint changes exactly when the value does."""

from __future__ import annotations

from typing import Any

from modelgate.observe.packed import Packed, fingerprint
from modelgate.observe.snapshot import first, index_evidence
from tests.unit.factories import make_approval, make_evaluation


def wire(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    return out


def test_a_packed_value_decodes_to_what_was_packed_in_its_key_order() -> None:
    value = {"z": 1, "a": {"é": ["x", None, 2.5, True]}, "m": "ünïcode"}
    packed = Packed.of(value)

    assert packed.unpack() == value
    assert list(packed.unpack()) == ["z", "a", "m"]
    assert len(packed.data) < 60  # compact: no spaces, no escapes of non-ASCII


def test_each_read_is_a_fresh_copy_so_a_reader_cannot_change_the_index() -> None:
    index = {("ns", "m"): [Packed.of({"status": {"phase": "Serving"}})]}

    mine = first(index, ("ns", "m"))
    mine["status"]["phase"] = "Blocked"

    assert first(index, ("ns", "m")) == {"status": {"phase": "Serving"}}


def test_first_reads_plain_values_and_missing_keys_as_they_are() -> None:
    index = {"a": [{"plain": True}], "b": []}

    assert first(index, "a") == {"plain": True}
    assert first(index, "b") is None
    assert first(index, "missing") is None


def test_indexed_evidence_parses_back_to_the_object_it_was_indexed_from() -> None:
    for obj in (make_approval(), make_evaluation()):
        indexed = index_evidence(wire(obj), None)
        assert indexed.packed is not None
        assert indexed.parse() == type(obj).model_validate(wire(obj))


def test_evidence_that_does_not_parse_is_indexed_without_a_body() -> None:
    raw = wire(make_approval())
    raw["spec"]["model"] = "not an object"

    indexed = index_evidence(raw, None)

    assert indexed.packed is None and indexed.parse() is None
    assert (indexed.kind, indexed.name) == ("ModelApproval", raw["metadata"]["name"])


def test_a_fingerprint_changes_with_the_value_and_not_with_key_order() -> None:
    base = {"spec": {"replicas": 1, "image": "i"}, "labels": {"a": "1"}}

    assert fingerprint(base) == fingerprint({"labels": {"a": "1"}, "spec": {"image": "i", "replicas": 1}})
    assert fingerprint(base) != fingerprint({**base, "spec": {"replicas": 0, "image": "i"}})
    assert fingerprint(base) != fingerprint({**base, "labels": {"a": "2"}})
    assert len(fingerprint(base)) == 16
