"""What a piece of evidence covers: a revision, the exact thing that serves.

A revision is the model artifact (name, version, uri, digest), the serving image, and every other
field of the served pod template that the policies in force do not list as operational. Approvals
and evaluations name the revision they cover (`spec.model.revision`); a change to any covered field
is a new revision that needs its own evidence. Replicas and resources are operational by default:
scaling a model or giving it more memory is not a new thing to review.

The revision id is the first 32 hex digits of the SHA-256 of the covered fields as canonical JSON
(128 bits: finding another set of serving fields with the same id is out of reach). It fits a label
value, so pods and the Service can carry and select it (`modelgate.io/revision`).

Pure: the webhook (filling in what an approver approves), the CLI (`modelgate revision`), the gate
engine and the serving objects all call the same function.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from modelgate.api.v1alpha1 import GovernancePolicy, ModelDeployment
from modelgate.api.v1alpha1 import policy as policy_defaults

DEFAULT_OPERATIONAL: Final[frozenset[str]] = frozenset(policy_defaults.DEFAULT_OPERATIONAL)
"""Serving fields operational without a policy (api/v1alpha1/policy.py). The model (name, version,
uri, digest) and the image are always covered."""
ID_LENGTH: Final = 32


def operational_fields(policies: Iterable[GovernancePolicy]) -> frozenset[str]:
    """The fields every policy in force lists as operational (the strictest reading wins: a field
    one policy covers is covered). With no policy: the defaults."""
    sets = [frozenset(p.spec.operational_fields) for p in policies]
    if not sets:
        return DEFAULT_OPERATIONAL
    return frozenset.intersection(*sets)


def covered_fields(spec: Mapping[str, Any], operational: frozenset[str]) -> dict[str, Any]:
    """The covered part of a ModelDeployment spec (wire form: camelCase keys), normalised so that
    equal meaning gives equal bytes (env sorted by name, absent = default)."""
    model = spec.get("model") or {}
    serving = spec.get("serving") or {}
    out: dict[str, Any] = {
        "model": {k: str(model.get(k) or "") for k in ("name", "version", "uri", "digest")},
        "image": str(serving.get("image") or ""),
    }
    if "port" not in operational:
        out["port"] = int(serving.get("port") or 8080)
    if "replicas" not in operational:
        out["replicas"] = int(serving.get("replicas", 1) if serving.get("replicas") is not None else 1)
    if "resources" not in operational:
        out["resources"] = serving.get("resources") or {}
    if "env" not in operational:
        out["env"] = sorted(
            (
                {"name": str(e.get("name")), "value": str(e.get("value") or "")}
                for e in serving.get("env") or []
            ),
            key=lambda e: e["name"],
        )
    return out


def revision_id(spec: Mapping[str, Any], operational: frozenset[str] = DEFAULT_OPERATIONAL) -> str:
    """The id of the revision a ModelDeployment spec (wire form) asks for."""
    canonical = json.dumps(covered_fields(spec, operational), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:ID_LENGTH]


def requested_revision_id(md: ModelDeployment, policies: Iterable[GovernancePolicy]) -> str:
    """The id of the revision `md` asks for, under the policies that select it."""
    wire = md.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return revision_id(wire, operational_fields(policies))
