"""ModelDeployment `spec.digestSetBy` is the request's identity or nothing, never the client's word.

The admission handler runs on Kopf's Body/Patch, and the JSON patch it answers with is built here
exactly as Kopf builds it for the API server (`Patch.as_json_patch` against the request's object).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import jsonpatch  # type: ignore[import-untyped]
import kopf
import pytest

from modelgate.api.v1alpha1 import FINALIZER
from modelgate.webhooks.handlers import stamp_deployment

ALICE = {"username": "alice", "groups": ["deployers", "system:authenticated"]}
BOB = {"username": "bob", "groups": ["deployers"]}
MALLORY = {"username": "mallory", "groups": ["deployers", "system:authenticated"]}


def md(digest: str = "sha256:aa", set_by: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"name": "fraud", "version": "v1", "digest": digest}}
    if set_by is not None:
        spec["digestSetBy"] = set_by
    return {
        "apiVersion": "modelgate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud", "namespace": "team"},
        "spec": spec,
    }


def admit(operation: str, new: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The object the API server stores after applying the webhook's JSON patch."""
    return admit_warned(operation, new, old)[0]


def admit_warned(
    operation: str, new: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The stored object and the warnings the requester sees."""
    body = kopf.Body(copy.deepcopy(new))
    patch = kopf.Patch(body=body)
    warnings: list[str] = []
    asyncio.run(
        stamp_deployment(
            body=body,
            patch=patch,
            userinfo=MALLORY,
            operation=operation,
            old=kopf.Body(copy.deepcopy(old)) if old is not None else None,
            warnings=warnings,
        )
    )
    ops = patch.as_json_patch()
    return dict(jsonpatch.JsonPatch(ops).apply(copy.deepcopy(new))), warnings


CASES = [
    # (what, operation, new object, old object, stored digestSetBy)
    ("a create records the requester", "CREATE", md(), None, MALLORY),
    ("a create's claim is replaced by the requester", "CREATE", md(set_by=ALICE), None, MALLORY),
    ("an update keeps the stored setter", "UPDATE", md(), md(set_by=ALICE), ALICE),
    ("an update's claim is replaced by the stored setter", "UPDATE", md(set_by=BOB), md(set_by=ALICE), ALICE),
    ("an update's claim on an object without a setter is removed", "UPDATE", md(set_by=ALICE), md(), None),
    ("an update without a claim leaves no setter", "UPDATE", md(), md(), None),
    (
        "a new digest records the requester",
        "UPDATE",
        md("sha256:bb", set_by=ALICE),
        md(set_by=ALICE),
        MALLORY,
    ),
    (
        "a new digest on an object without a setter records the requester",
        "UPDATE",
        md("sha256:bb"),
        md(),
        MALLORY,
    ),
]


@pytest.mark.parametrize(("what", "operation", "new", "old", "expected"), CASES, ids=[c[0] for c in CASES])
def test_digest_set_by_is_the_requester_the_stored_setter_or_nothing(
    what: str, operation: str, new: dict[str, Any], old: dict[str, Any] | None, expected: Any
) -> None:
    stored = admit(operation, new, old)
    if expected is None:
        assert "digestSetBy" not in stored["spec"], what
    else:
        assert stored["spec"]["digestSetBy"]["username"] == expected["username"], what
        assert stored["spec"]["digestSetBy"]["groups"] == expected["groups"], what


def test_a_create_adds_modelgates_finalizer() -> None:
    stored = admit("CREATE", md())
    assert stored["metadata"]["finalizers"] == [FINALIZER]


@pytest.mark.parametrize(
    ("operation", "new", "old", "warned"),
    [
        ("UPDATE", md(set_by=ALICE), md(), "kept: none"),
        ("UPDATE", md(set_by=BOB), md(set_by=ALICE), "kept: alice"),
        ("CREATE", md(set_by=ALICE), None, "kept: mallory"),
        ("UPDATE", md(set_by=ALICE), md(set_by=ALICE), None),  # a read-modify-write round trip
        ("UPDATE", md(), md(set_by=ALICE), None),
    ],
)
def test_a_claimed_setter_is_answered_with_a_warning_naming_what_was_kept(
    operation: str, new: dict[str, Any], old: dict[str, Any] | None, warned: str | None
) -> None:
    _stored, warnings = admit_warned(operation, new, old)
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and "the value written was ignored" in warnings[0] and warned in warnings[0]


def with_finalizers(obj: dict[str, Any], *finalizers: str, deleting: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["finalizers"] = list(finalizers)
    if deleting:
        out["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    return out


def test_a_replace_that_drops_the_finalizer_of_a_live_model_keeps_it() -> None:
    old = with_finalizers(md(set_by=ALICE), FINALIZER)

    stored = admit("UPDATE", md(set_by=ALICE), old)

    assert FINALIZER in stored["metadata"]["finalizers"]


def test_the_finalizer_is_not_put_back_on_a_model_being_deleted() -> None:
    old = with_finalizers(md(set_by=ALICE), FINALIZER, deleting=True)

    stored = admit("UPDATE", with_finalizers(md(set_by=ALICE), deleting=True), old)

    assert FINALIZER not in (stored["metadata"].get("finalizers") or [])
