"""Plan step 5: the serving objects wanted for the revision that serves, and whether the ones that
exist match them (a mismatch someone else made is tampering: reverted and recorded). Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelgate.api import conditions as c
from modelgate.decide.serving import (
    Owner,
    Revision,
    ServingSpec,
    desired_deployment,
    desired_service,
    differences,
    normalised,
)
from modelgate.decide.types import Decision

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


def serving_objects(
    owner: Owner,
    target: Revision | None,
    serving: ServingSpec,
    quarantined: bool,
    have_deployment: Mapping[str, Any] | None,
    have_service: Mapping[str, Any] | None,
    stamp: str,
) -> ServingObjects:
    """The Deployment and Service for `target` (nothing when nothing serves), and what to write."""
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
    return ServingObjects(
        None if dep_matches else want_dep,
        None if svc_matches else want_svc,
        dep_matches,
        tuple(decisions),
    )
