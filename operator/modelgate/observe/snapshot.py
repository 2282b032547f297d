"""Gather: build the frozen `Observed` snapshot for one ModelDeployment from Kopf's indexes.

No API calls: the indexes hold the latest approvals, evaluations, policies, namespace labels and
owned objects, kept current by watches. Objects that fail to parse count as absent (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic

from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide import seal
from modelgate.decide.monitoring import Readings
from modelgate.decide.plan import Observed
from modelgate.decide.policy import select_policies

T = TypeVar("T", ModelApproval, ModelEvaluation, GovernancePolicy)


def _first(index: Mapping[Any, Any], key: Any) -> Mapping[str, Any] | None:
    store = index.get(key)
    return next(iter(store), None) if store is not None else None


def _parse(cls: type[T], raw: Mapping[str, Any] | None) -> T | None:
    if raw is None:
        return None
    try:
        return cls.model_validate(dict(raw))
    except pydantic.ValidationError:
        return None


def parse_policies(policies: Mapping[Any, Any]) -> list[GovernancePolicy]:
    return [p for key in policies for p in [_parse(GovernancePolicy, _first(policies, key))] if p]


def _seals(
    kind: str, ns: str, index: Mapping[Any, Any], names: list[str], key: bytes
) -> dict[tuple[str, str], bool]:
    out = {}
    for name in names:
        raw = _first(index, (ns, name))
        out[(kind, name)] = raw is not None and seal.verify(key, kind, ns, raw.get("spec") or {})
    return out


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
    seal_key: bytes | None,
    readings: Readings | None = None,
) -> Observed:
    """Raises pydantic.ValidationError when the ModelDeployment itself does not parse."""
    md = ModelDeployment.model_validate(
        {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
    )
    ns, name = md.namespace or "", md.name
    all_policies = parse_policies(policies)
    seal_valid = None
    if seal_key is not None:
        seal_valid = _seals("ModelApproval", ns, approvals, [r.name for r in md.spec.approvals], seal_key)
        seal_valid |= _seals(
            "ModelEvaluation", ns, evaluations, [r.name for r in md.spec.evaluations], seal_key
        )
    labels = _first(namespaces, ns) or {}
    return Observed(
        body=body,
        deployment=md,
        policies=select_policies(all_policies, labels, md.spec.card.risk_level),
        approvals={r.name: _parse(ModelApproval, _first(approvals, (ns, r.name))) for r in md.spec.approvals},
        evaluations={
            r.name: _parse(ModelEvaluation, _first(evaluations, (ns, r.name))) for r in md.spec.evaluations
        },
        owned_deployment=_first(owned_deployments, (ns, name, "Deployment")),
        owned_service=_first(owned_services, (ns, name, "Service")),
        allow_no_policy=allow_no_policy,
        seal_valid=seal_valid,
        readings=readings,
    )
