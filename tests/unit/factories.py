"""Small factories for modelgate objects, built from dicts through `parse`, so every object a test
uses is one the real API would accept (schema, patterns and validators included).

Defaults describe one coherent story: model fraud-detector 1.0.0 with DIGEST in namespace
fraud-prod, approved by bob of the ethics-board group, evaluated on the fraud-holdout dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from modelgate.api.v1alpha1 import (
    API_VERSION,
    GovernancePolicy,
    ModelApproval,
    ModelDeployment,
    ModelEvaluation,
    parse,
)
from modelgate.decide.gates import GateInput

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
NAMESPACE = "fraud-prod"
MODEL = "fraud-detector"
VERSION = "1.0.0"
DIGEST = "sha256:" + "abcdef12" * 8
OTHER_DIGEST = "sha256:" + "1" * 64
DATASET = "fraud-holdout"


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_deployment(
    *,
    name: str = MODEL,
    namespace: str = NAMESPACE,
    model: str = MODEL,
    version: str = VERSION,
    digest: str = DIGEST,
    risk_level: str = "high",
    card: dict[str, Any] | None = None,
    approvals: Sequence[str] = (),
    evaluations: Sequence[str] = (),
    digest_set_by: str | None = "dave",
    monitoring: dict[str, Any] | None = None,
    serving: dict[str, Any] | None = None,
    uid: str | None = None,
    generation: int | None = None,
) -> ModelDeployment:
    """A ModelDeployment; `card` entries override (or, with None, remove) the default card fields,
    `serving` entries override the default serving spec (image only), `monitoring` is
    spec.monitoring as written in a manifest; `uid` and `generation` go to metadata as the API
    server would set them."""
    full_card: dict[str, Any] = {
        "owner": "team-fraud@example.com",
        "intendedUse": "Scores card-not-present transactions.",
        "limitations": "EU traffic only.",
        "trainingData": "14 months of EU card transactions.",
        "riskLevel": risk_level,
    }
    for key, value in (card or {}).items():
        if value is None:
            full_card.pop(key, None)
        else:
            full_card[key] = value
    spec: dict[str, Any] = {
        "model": {
            "name": model,
            "version": version,
            "uri": f"s3://models/{model}/{version}",
            "digest": digest,
        },
        "card": full_card,
        "serving": {"image": "registry.example/sklearn-server:1.4", **(serving or {})},
        "approvals": [{"name": n} for n in approvals],
        "evaluations": [{"name": n} for n in evaluations],
    }
    if monitoring is not None:
        spec["monitoring"] = monitoring
    if digest_set_by is not None:
        spec["digestSetBy"] = {"username": digest_set_by, "groups": ["ml-engineers"]}
    raw = _object("ModelDeployment", name, namespace, spec, uid=uid)
    if generation is not None:
        raw["metadata"]["generation"] = generation
    obj = parse(raw)
    assert isinstance(obj, ModelDeployment)
    return obj


def make_approval(
    name: str = "bob-ok",
    *,
    role: str = "ethics-board",
    decision: str = "approved",
    username: str | None = "bob",
    groups: Sequence[str] = ("ethics-board",),
    model: str = MODEL,
    version: str = VERSION,
    digest: str = DIGEST,
    expires_at: datetime | None = None,
    created_at: datetime | str | None = NOW - timedelta(days=1),
    comment: str | None = None,
    seal: str | None = None,
    uid: str | None = None,
) -> ModelApproval:
    """A ModelApproval; username None leaves approvedBy unset (never stamped by the webhook)."""
    spec: dict[str, Any] = {
        "model": {"name": model, "version": version, "digest": digest},
        "role": role,
        "decision": decision,
    }
    if username is not None:
        spec["approvedBy"] = {"username": username, "groups": list(groups)}
    if expires_at is not None:
        spec["expiresAt"] = rfc3339(expires_at)
    if comment is not None:
        spec["comment"] = comment
    if seal is not None:
        spec["seal"] = seal
    obj = parse(_object("ModelApproval", name, NAMESPACE, spec, created_at, uid=uid))
    assert isinstance(obj, ModelApproval)
    return obj


def make_evaluation(
    name: str = "holdout",
    *,
    metrics: dict[str, float] | None = None,
    dataset: str = DATASET,
    evaluated_at: datetime = NOW - timedelta(days=1),
    model: str = MODEL,
    version: str = VERSION,
    digest: str = DIGEST,
    seal: str | None = None,
    uid: str | None = None,
) -> ModelEvaluation:
    spec: dict[str, Any] = {
        "model": {"name": model, "version": version, "digest": digest},
        "dataset": {"name": dataset, "uri": f"s3://datasets/{dataset}.parquet"},
        "metrics": {"accuracy": 0.94} if metrics is None else metrics,
        "evaluatedAt": rfc3339(evaluated_at),
    }
    if seal is not None:
        spec["seal"] = seal
    obj = parse(_object("ModelEvaluation", name, NAMESPACE, spec, evaluated_at, uid=uid))
    assert isinstance(obj, ModelEvaluation)
    return obj


def approval_requirement(
    role: str = "ethics-board",
    *,
    users: Sequence[str] = (),
    groups: Sequence[str] = ("ethics-board",),
    count: int = 1,
) -> dict[str, Any]:
    approvers: dict[str, Any] = {}
    if users:
        approvers["users"] = list(users)
    if groups:
        approvers["groups"] = list(groups)
    return {"role": role, "approvers": approvers, "count": count}


def evaluation_requirement(
    metric: str = "accuracy",
    *,
    min: float | None = None,
    max: float | None = None,
    max_age: str | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    req: dict[str, Any] = {"metric": metric}
    for key, value in (("min", min), ("max", max), ("maxAge", max_age), ("dataset", dataset)):
        if value is not None:
            req[key] = value
    return req


def make_policy(
    name: str = "prod-governance",
    *,
    namespace_selector: dict[str, Any] | None = None,
    risk_levels: Sequence[str] = (),
    required_card_fields: Sequence[str] = (),
    approvals: Sequence[dict[str, Any]] = (),
    evaluations: Sequence[dict[str, Any]] = (),
    separation_of_duties: bool = False,
    on_revocation: str = "suspend",
    monitoring: Sequence[dict[str, Any]] = (),
) -> GovernancePolicy:
    spec: dict[str, Any] = {
        "riskLevels": list(risk_levels),
        "requiredCardFields": list(required_card_fields),
        "approvals": list(approvals),
        "evaluations": list(evaluations),
        "separationOfDuties": separation_of_duties,
        "onRevocation": on_revocation,
        "monitoring": list(monitoring),
    }
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    obj = parse(
        {"apiVersion": API_VERSION, "kind": "GovernancePolicy", "metadata": {"name": name}, "spec": spec}
    )
    assert isinstance(obj, GovernancePolicy)
    return obj


def gate_input(
    deployment: ModelDeployment,
    policies: Sequence[GovernancePolicy] = (),
    approvals: Sequence[ModelApproval] = (),
    evaluations: Sequence[ModelEvaluation] = (),
    **kwargs: Any,
) -> GateInput:
    """A GateInput that finds exactly the given objects among the deployment's references."""
    found_a = {a.name: a for a in approvals}
    found_e = {e.name: e for e in evaluations}
    return GateInput(
        deployment=deployment,
        policies=list(policies),
        approvals={ref.name: found_a.get(ref.name) for ref in deployment.spec.approvals},
        evaluations={ref.name: found_e.get(ref.name) for ref in deployment.spec.evaluations},
        now=kwargs.pop("now", NOW),
        **kwargs,
    )


def _object(
    kind: str,
    name: str,
    namespace: str,
    spec: dict[str, Any],
    created: datetime | str | None = None,
    *,
    uid: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid is not None:
        metadata["uid"] = uid
    if created is not None:
        metadata["creationTimestamp"] = created if isinstance(created, str) else rfc3339(created)
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}
