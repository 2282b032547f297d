"""Plan step 5: the serving objects wanted for the revision that serves, and whether the ones that
exist match them (a mismatch someone else made is tampering: reverted and recorded). Pure.

How a write reverts tampering. modelgate writes its Deployment and Service by server-side apply
(field manager `modelgate`, force on conflict; act/kube.py): the applied configuration is the
whole desired object, so every field modelgate sets is taken back from whoever changed it (an
image, a replica count, an env value), and a field modelgate stopped setting is removed. What apply
cannot do is remove a field that another manager added and modelgate never set: a `command`, an
init container, a volume, an extra env var or container added with `kubectl edit`. The apply's
response says whether any such field is left (`foreign_fields_patch`: its normal form still
differs from the desired one); if so, one JSON patch removes those fields (or puts our value back
for a list whose length changed), guarded by the resourceVersion the apply returned. We chose
this over the alternatives: delete and re-create would take the model's pods down; a replace (PUT)
for that case would again need the Service's allocated fields copied by hand, and would rewrite
every field for an edit of one. The patch touches only the foreign fields, and a steady state
still writes nothing (nothing differs, so nothing is applied). See docs/decisions.md."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelgate.api import conditions as c
from modelgate.decide.serving import (
    ANNOTATION_DIGEST,
    Owner,
    Path,
    Revision,
    ServingSpec,
    desired_deployment,
    desired_service,
    difference_paths,
    differences,
    normalised,
)
from modelgate.decide.types import Decision, Refusal

APPLIED_HASH = "modelgate.io/applied-hash"
"""Annotation on owned objects: the hash of the normal form modelgate last applied. An object whose
normal form no longer matches its own hash was edited by someone else (tampering)."""


@dataclass(frozen=True)
class ServingObjects:
    deployment: dict[str, Any] | None
    """The Deployment to write (None: the existing one matches, or nothing serves)."""
    service: dict[str, Any] | None
    deployment_matches: bool
    decisions: tuple[Decision, ...]
    """TamperReverted, once per object someone else edited."""
    refused: str | None = None
    """Why the API server refused the last write of an object this plan wants written again
    unchanged (`refusal_message`); None when nothing wanted was refused."""


def with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """Stamp the hash of the normal form that tells our own writes from other people's edits."""
    digest = hashlib.sha256(json.dumps(normalised(obj), sort_keys=True, default=str).encode()).hexdigest()
    obj["metadata"].setdefault("annotations", {})[APPLIED_HASH] = digest[:16]
    return obj


def _applied_hash(obj: Mapping[str, Any] | None) -> str | None:
    value = ((obj or {}).get("metadata") or {}).get("annotations", {}).get(APPLIED_HASH)
    return str(value) if value is not None else None


def rollout(dep: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether a Deployment has fully rolled out with every replica ready, and a summary."""
    if not dep:
        return False, "the serving Deployment does not exist yet"
    spec, st, meta = dep.get("spec") or {}, dep.get("status") or {}, dep.get("metadata") or {}
    want = int(spec.get("replicas", 1))
    ready = int(st.get("readyReplicas", 0) or 0)
    updated = int(st.get("updatedReplicas", 0) or 0)
    available = int(st.get("availableReplicas", 0) or 0)
    current = int(st.get("observedGeneration", 0) or 0) >= int(meta.get("generation", 0) or 0)
    done = current and updated >= want and available >= want and ready >= want
    return done, f"{ready}/{want} replicas ready"


def refusal_message(
    refusals: Mapping[str, Refusal], owner: Owner, writes: Mapping[str, Mapping[str, Any] | None]
) -> str | None:
    """What the API server said about the objects among `writes` (kind -> object to write, or None)
    whose last write it refused: only when the plan wants that very object again (same applied
    hash). Another object (the spec was fixed) deserves a write of its own before anything is said."""
    said = [
        f"{kind} {owner.name}, rendered from spec.serving, was refused by the API server: {r.message}"
        for kind, want in writes.items()
        if (r := refusals.get(kind)) is not None
        and want is not None
        and r.applied_hash == _applied_hash(want)
    ]
    return "; ".join(said) or None


def serving_objects(
    owner: Owner,
    target: Revision | None,
    serving: ServingSpec,
    quarantined: bool,
    have_deployment: Mapping[str, Any] | None,
    have_service: Mapping[str, Any] | None,
    stamp: str,
    refusals: Mapping[str, Refusal] | None = None,
) -> ServingObjects:
    """The Deployment and Service for `target` (nothing when nothing serves), what to write, and
    what the API server said when it refused the same write before (`refusals`)."""
    if target is None:
        return ServingObjects(None, None, True, ())
    want_dep = with_hash(desired_deployment(owner, target, serving))
    want_svc = with_hash(desired_service(owner, target, serving, quarantined=quarantined))
    dep_matches = normalised(have_deployment) == normalised(want_dep)
    svc_matches = normalised(have_service) == normalised(want_svc)
    decisions = []
    for kind, want, have, matches in (
        ("Deployment", want_dep, have_deployment, dep_matches),
        ("Service", want_svc, have_service, svc_matches),
    ):
        if have and not matches and _applied_hash(have) == _applied_hash(want):
            edited = differences(normalised(have), normalised(want))
            decisions.append(
                Decision(
                    c.ACTION_TAMPER_REVERTED,
                    c.TAMPER_REVERTED,
                    f"Reverted an edit to {kind} {owner.name} that modelgate did not make: "
                    f"{', '.join(edited)}",
                    stamp,
                    {"object": {"kind": kind, "name": owner.name}, "fields": edited},
                    None,
                    warning=True,
                )
            )
    deployment, service = None if dep_matches else want_dep, None if svc_matches else want_svc
    return ServingObjects(
        deployment,
        service,
        dep_matches,
        tuple(decisions),
        refusal_message(refusals or {}, owner, {"Deployment": deployment, "Service": service}),
    )


def _raw_path(path: Path) -> Path:
    """A place in the normal form as a place in the object: `labels` and `digest` are in metadata."""
    if path[:1] == ("labels",):
        return ("metadata", *path)
    if path == ("digest",):
        return ("metadata", "annotations", ANNOTATION_DIGEST)
    return path


def _pointer(path: Path) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _lookup(obj: Any, path: Path) -> tuple[bool, Any]:
    for part in path:
        in_list = isinstance(part, int) and isinstance(obj, list) and part < len(obj)
        if not (in_list or (isinstance(part, str) and isinstance(obj, Mapping) and part in obj)):
            return False, None
        obj = obj[part]
    return True, obj


def foreign_fields_patch(applied: Mapping[str, Any], want: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch (RFC 6902) that removes from `applied` (an owned object as a server-side apply of
    `want` left it) the fields other managers added, which the apply cannot remove: each place where
    the normal forms still differ is removed, or set to the wanted value when `want` has one (a
    list whose length changed). Empty when nothing differs. The patch starts by setting the
    resourceVersion the apply returned, so that it fails with a conflict if anyone wrote since."""
    paths = difference_paths(normalised(applied), normalised(want), limit=1000)
    if not paths:
        return []
    ops: list[dict[str, Any]] = [
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": applied["metadata"]["resourceVersion"],
        }
    ]
    for path in map(_raw_path, paths):
        found, value = _lookup(want, path)
        if not found:
            ops.append({"op": "remove", "path": _pointer(path)})
        else:
            ops.append(
                {
                    "op": "replace" if _lookup(applied, path)[0] else "add",
                    "path": _pointer(path),
                    "value": value,
                }
            )
    return ops
