"""How a write reverts an edit the server-side apply cannot undo (decide/objects.py
`foreign_fields_patch`): after the apply, the fields other managers added are removed by a JSON
patch. Checked on what a real kube-apiserver v1.37 returns for our objects (tests/unit/data/), with
each foreign edit of tests/unit/test_serving.py applied to it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelgate.decide import serving as s
from modelgate.decide.objects import foreign_fields_patch
from tests.unit.test_serving import FOREIGN, Edit, load


def _parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def apply_json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add/replace/remove, enough to apply what foreign_fields_patch makes (a test double of
    the API server's patch, whose real counterpart runs in the e2e tamper tests)."""
    out = copy.deepcopy(obj)
    for op in ops:
        *parents, last = _parts(op["path"])
        target: Any = out
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        key: Any = int(last) if isinstance(target, list) else last
        if op["op"] == "remove":
            del target[key]
        elif op["op"] == "replace":
            assert (key < len(target)) if isinstance(target, list) else (key in target), op
            target[key] = op["value"]
        else:
            assert op["op"] == "add" and not isinstance(target, list), op
            target[key] = op["value"]
    return out


def applied(kind: str) -> dict[str, Any]:
    obj = load(f"apiserver-v1.37-{kind}.json")
    obj["metadata"]["resourceVersion"] = "42"
    return obj


@pytest.mark.parametrize("kind", ["deployment", "service"])
def test_nothing_is_patched_when_the_apply_left_nothing_foreign(kind: str) -> None:
    assert foreign_fields_patch(applied(kind), load(f"desired-{kind}.json")) == []


@pytest.mark.parametrize(("what", "edit", "field"), FOREIGN, ids=[w for w, _, _ in FOREIGN])
def test_a_field_another_manager_added_to_the_deployment_is_removed(
    what: str, edit: Edit, field: str
) -> None:
    want, got = load("desired-deployment.json"), applied("deployment")
    edit(got)

    ops = foreign_fields_patch(got, want)

    assert ops[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"}
    assert any(field in op["path"] for op in ops[1:]), ops
    assert s.normalised(apply_json_patch(got, ops)) == s.normalised(want), what


SERVICE_EDITS: list[tuple[str, Edit]] = [
    ("type", lambda v: v["spec"].update(type="NodePort")),
    ("externalIPs", lambda v: v["spec"].update(externalIPs=["1.2.3.4"])),
    ("selector", lambda v: v["spec"]["selector"].update(extra="x")),
    ("sessionAffinity", lambda v: v["spec"].update(sessionAffinity="ClientIP")),
    ("a modelgate label", lambda v: v["metadata"]["labels"].update({s.LABEL_QUARANTINED: "true"})),
]


@pytest.mark.parametrize(("field", "edit"), SERVICE_EDITS, ids=[f for f, _ in SERVICE_EDITS])
def test_a_field_another_manager_added_to_the_service_is_removed_and_allocations_are_kept(
    field: str, edit: Edit
) -> None:
    want, got = load("desired-service.json"), applied("service")
    edit(got)

    ops = foreign_fields_patch(got, want)
    patched = apply_json_patch(got, ops)

    assert len(ops) > 1, field
    assert s.normalised(patched) == s.normalised(want)
    assert all(patched["spec"].get(k) == got["spec"].get(k) for k in s.SERVICE_ALLOCATED_FIELDS)


def test_a_list_whose_length_changed_gets_the_wanted_list_back() -> None:
    want, got = load("desired-deployment.json"), applied("deployment")
    got["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "evil:1"})

    ops = foreign_fields_patch(got, want)

    assert ops[1:] == [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers",
            "value": want["spec"]["template"]["spec"]["containers"],
        }
    ]


def test_paths_escape_label_keys_with_slashes() -> None:
    want, got = load("desired-deployment.json"), applied("deployment")
    got["metadata"]["labels"][s.LABEL_QUARANTINED] = "true"

    assert foreign_fields_patch(got, want)[1:] == [
        {"op": "remove", "path": "/metadata/labels/modelgate.io~1quarantined"}
    ]
