"""Gather: build the frozen `Observed` snapshot for one ModelDeployment from Kopf's indexes.

No API calls: the indexes hold the latest approvals, evaluations, policies, namespace labels and
owned objects, kept current by watches. Evidence and policies are parsed (and evidence seals
verified) once, when the watch delivers them (`index_evidence`, `index_policy`), not on every
reconcile of every model that references them. Objects that fail to parse count as absent (fail
closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic

from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide import seal
from modelgate.decide.monitoring import Readings
from modelgate.decide.policy import select_policies
from modelgate.decide.records import in_force
from modelgate.decide.types import Observed

T = TypeVar("T", ModelApproval, ModelEvaluation, GovernancePolicy)


@dataclass(frozen=True)
class IndexedEvidence:
    """A ModelApproval or ModelEvaluation as the indexes keep it."""

    obj: ModelApproval | ModelEvaluation | None
    """The parsed object; None when it does not parse."""
    sealed: bool | None
    """Whether its seal verifies; None when no seal key is known (sealing not enforced)."""


def first(index: Mapping[Any, Any], key: Any) -> Any:
    """The value a Kopf index holds under `key` (one object per key), or None."""
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def _parse(cls: type[T], raw: Mapping[str, Any] | None) -> T | None:
    if raw is None:
        return None
    try:
        return cls.model_validate(dict(raw))
    except pydantic.ValidationError:
        return None


def index_evidence(raw: Mapping[str, Any], seal_key: bytes | None) -> IndexedEvidence:
    """Parse an approval or evaluation and verify its seal, once per watch event."""
    sealed = None
    if seal_key is not None:
        ns = str((raw.get("metadata") or {}).get("namespace") or "")
        sealed = seal.verify(seal_key, str(raw.get("kind")), ns, raw.get("spec") or {})
    parsed = (
        _parse(ModelApproval, raw) if raw.get("kind") == "ModelApproval" else _parse(ModelEvaluation, raw)
    )
    return IndexedEvidence(parsed, sealed)


def index_policy(raw: Mapping[str, Any]) -> GovernancePolicy | None:
    return _parse(GovernancePolicy, raw)


def parse_policies(policies: Mapping[Any, Any]) -> list[GovernancePolicy]:
    """Every valid policy in the policies index."""
    return [p for key in policies if (p := first(policies, key)) is not None]


def _evidence(index: Mapping[Any, Any], ns: str, names: list[str]) -> dict[str, IndexedEvidence]:
    return {n: first(index, (ns, n)) or IndexedEvidence(None, False) for n in names}


def snapshot(
    body: Mapping[str, Any],
    *,
    approvals: Mapping[Any, Any],
    evaluations: Mapping[Any, Any],
    policies: Mapping[Any, Any],
    namespaces: Mapping[Any, Any],
    owned_deployments: Mapping[Any, Any],
    owned_services: Mapping[Any, Any],
    allow_no_policy: bool,
    readings: Readings | None = None,
    records: Mapping[Any, Any] | None = None,
) -> Observed:
    """Raises pydantic.ValidationError when the ModelDeployment itself does not parse."""
    md = ModelDeployment.model_validate(
        {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
    )
    ns = md.namespace or ""
    found_approvals = _evidence(approvals, ns, [r.name for r in md.spec.approvals])
    found_evaluations = _evidence(evaluations, ns, [r.name for r in md.spec.evaluations])
    seals = {
        (kind, n): e.sealed
        for kind, found in (("ModelApproval", found_approvals), ("ModelEvaluation", found_evaluations))
        for n, e in found.items()
        if e.obj is not None
    }
    enforced = any(v is not None for v in seals.values())
    labels = first(namespaces, ns) or {}
    uid = str((body.get("metadata") or {}).get("uid") or "")  # owned objects are found by owner uid
    return Observed(
        body=body,
        deployment=md,
        policies=select_policies(parse_policies(policies), labels, md.spec.card.risk_level),
        approvals={n: e.obj for n, e in found_approvals.items() if isinstance(e.obj, ModelApproval | None)},
        evaluations={
            n: e.obj for n, e in found_evaluations.items() if isinstance(e.obj, ModelEvaluation | None)
        },
        owned_deployment=first(owned_deployments, (ns, uid, "Deployment")) if uid else None,
        owned_service=first(owned_services, (ns, uid, "Service")) if uid else None,
        allow_no_policy=allow_no_policy,
        seal_valid={k: bool(v) for k, v in seals.items()} if enforced else None,
        readings=readings,
        records=in_force((records or {}).get((ns, md.spec.model.name)) or ()),
    )
