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
from modelgate.decide.revision import requested_revision_id, revision_id

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
NAMESPACE = "fraud-prod"
MODEL = "fraud-detector"
VERSION = "1.0.0"
DIGEST = "sha256:" + "abcdef12" * 8
OTHER_DIGEST = "sha256:" + "1" * 64
DATASET = "fraud-holdout"
IMAGE = "registry.example/sklearn-server@sha256:" + "5e" * 32
"""The default serving image, pinned by digest (policies require it by default)."""
DEFAULT = "default"
"""`revision=DEFAULT`: the revision of the default make_deployment() of that model, version and
digest (what the webhook would fill in)."""


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
        "serving": {"image": IMAGE, **(serving or {})},
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
    revision: str | None = DEFAULT,
    risk_level: str | None = None,
) -> ModelApproval:
    """A ModelApproval; username None leaves approvedBy unset (never stamped by the webhook);
    `revision` DEFAULT names the revision of the default deployment of that model, None names none."""
    spec: dict[str, Any] = {
        "model": _model_ref(model, version, digest, revision),
        "role": role,
        "decision": decision,
    }
    if risk_level is not None:
        spec["riskLevel"] = risk_level
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
    revision: str | None = DEFAULT,
    submitted_by: str | None = None,
    submitter_groups: Sequence[str] = ("evaluators",),
    created_at: datetime | None = None,
) -> ModelEvaluation:
    """A ModelEvaluation, created (creationTimestamp) when it was evaluated unless `created_at`."""
    spec: dict[str, Any] = {
        "model": _model_ref(model, version, digest, revision),
        "dataset": {"name": dataset, "uri": f"s3://datasets/{dataset}.parquet"},
        "metrics": {"accuracy": 0.94} if metrics is None else metrics,
        "evaluatedAt": rfc3339(evaluated_at),
    }
    if seal is not None:
        spec["seal"] = seal
    if submitted_by is not None:
        spec["submittedBy"] = {"username": submitted_by, "groups": list(submitter_groups)}
    created = evaluated_at if created_at is None else created_at
    obj = parse(_object("ModelEvaluation", name, NAMESPACE, spec, created, uid=uid))
    assert isinstance(obj, ModelEvaluation)
    return obj


def default_revision(model: str = MODEL, version: str = VERSION, digest: str = DIGEST) -> str:
    """The revision id of the default make_deployment() of this model, version and digest."""
    md = make_deployment(model=model, version=version, digest=digest)
    return revision_id(md.spec.model_dump(by_alias=True, exclude_none=True, mode="json"))


def revision_of(md: ModelDeployment, policies: Sequence[GovernancePolicy] = ()) -> str:
    """The id of the revision `md` requests under `policies` (what the webhook would fill in)."""
    return requested_revision_id(md, policies)


def _model_ref(model: str, version: str, digest: str, revision: str | None) -> dict[str, Any]:
    ref = {"name": model, "version": version, "digest": digest}
    if revision == DEFAULT:
        ref["revision"] = default_revision(model, version, digest)
    elif revision is not None:
        ref["revision"] = revision
    return ref


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
    allow_all: bool | None = None,
    **extra: Any,
) -> GovernancePolicy:
    """A GovernancePolicy; without any requirement it is an allowAll policy (an empty one is
    refused) unless `allow_all` says otherwise; `extra` are more spec fields in wire form."""
    if allow_all is None:
        allow_all = not (required_card_fields or approvals or evaluations or monitoring)
    spec: dict[str, Any] = {
        "allowAll": allow_all,
        **extra,
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
    """A GateInput in which the given objects are all the evidence of the model in the namespace
    (referenced or not); a referenced name exists when one of them has it."""
    names = {("ModelApproval", a.name) for a in approvals} | {
        ("ModelEvaluation", e.name) for e in evaluations
    }
    references = {
        (kind, ref.name): (kind, ref.name) in names
        for kind, refs in (
            ("ModelApproval", deployment.spec.approvals),
            ("ModelEvaluation", deployment.spec.evaluations),
        )
        for ref in refs
    }
    return GateInput(
        deployment=deployment,
        policies=list(policies),
        approvals=list(approvals),
        evaluations=list(evaluations),
        now=kwargs.pop("now", NOW),
        references=kwargs.pop("references", references),
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
