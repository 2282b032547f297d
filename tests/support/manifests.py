"""Manifests for integration tests, built as dicts; each test isolates its policy to its namespace.

Defaults tell one story: the serving image is pinned by digest (policies require it by default), and
`approval()`/`evaluation()` name the revision of the matching default `model_deployment()` (what
the admission webhook would fill in); pass `revision=` to name another one, or None for none.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelgate.decide.revision import revision_id
from tests.support.kube import Kubectl, wait_until

DEPLOYERS = ("deployers",)
EVALUATORS = ("evaluators",)

API = "modelgate.io/v1alpha1"
IMAGE = "registry.example/serve@sha256:" + hashlib.sha256(b"serve-1").hexdigest()
"""The default serving image, pinned by digest."""
DEFAULT = "default"
"""`revision=DEFAULT`: the revision of the default model_deployment() of that model and version."""


def pinned(name: str) -> str:
    """An image reference pinned by a made-up digest: registry.example/<name>@sha256:..."""
    return f"registry.example/{name}@sha256:" + hashlib.sha256(name.encode()).hexdigest()


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def now_rfc3339(delta: dt.timedelta = dt.timedelta()) -> str:
    return (dt.datetime.now(dt.UTC) + delta).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy(
    name: str,
    namespace: str,
    *,
    roles: tuple[str, ...] = ("ethics-board",),
    min_accuracy: float | None = 0.9,
    on_revocation: str = "suspend",
    separation: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"modelgate.io/test": namespace}},
        "requiredCardFields": ["owner", "intendedUse"],
        "approvals": [{"role": r, "approvers": {"groups": [r]}, "count": 1} for r in roles],
        "separationOfDuties": separation,
        "onRevocation": on_revocation,
    }
    if min_accuracy is not None:
        spec["evaluations"] = [{"metric": "accuracy", "min": min_accuracy, "maxAge": "30d"}]
    return {"apiVersion": API, "kind": "GovernancePolicy", "metadata": {"name": name}, "spec": spec}


def model_deployment(
    name: str,
    namespace: str,
    version: str = "v1",
    *,
    replicas: int = 2,
    approvals: tuple[str, ...] = (),
    evaluations: tuple[str, ...] = (),
    image: str = IMAGE,
    digest_set_by: str | None = None,
    monitoring: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {
            "name": name,
            "version": version,
            "uri": f"s3://models/{name}/{version}",
            "digest": digest(f"{name}-{version}"),
        },
        "card": {"owner": "team@example.com", "intendedUse": "testing", "riskLevel": "high"},
        "serving": {"image": image, "replicas": replicas, "port": 8080},
        "approvals": [{"name": a} for a in approvals],
        "evaluations": [{"name": e} for e in evaluations],
    }
    if monitoring:
        spec["monitoring"] = monitoring
    if digest_set_by:
        spec["digestSetBy"] = {"username": digest_set_by, "groups": ["deployers"]}
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def default_revision(model: str, version: str = "v1") -> str:
    """The revision id of the default model_deployment(model, ..., version)."""
    return revision_id(model_deployment(model, "any", version)["spec"])


def _model_ref(model: str, version: str, revision: str | None) -> dict[str, Any]:
    ref = {"name": model, "version": version, "digest": digest(f"{model}-{version}")}
    if revision is not None:
        ref["revision"] = default_revision(model, version) if revision == DEFAULT else revision
    return ref


def approval(
    name: str,
    namespace: str,
    model: str,
    version: str = "v1",
    *,
    role: str = "ethics-board",
    user: str = "bob",
    groups: tuple[str, ...] | None = None,
    decision: str = "approved",
    expires_at: str | None = None,
    stamp: bool = False,
    revision: str | None = DEFAULT,
    risk_level: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": _model_ref(model, version, revision),
        "role": role,
        "decision": decision,
    }
    if stamp:  # a forged claim: the identity webhook overwrites it with the requester
        spec["approvedBy"] = {"username": user, "groups": list(groups if groups is not None else (role,))}
    if expires_at:
        spec["expiresAt"] = expires_at
    if risk_level:
        spec["riskLevel"] = risk_level
    return {
        "apiVersion": API,
        "kind": "ModelApproval",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def evaluation(
    name: str,
    namespace: str,
    model: str,
    version: str = "v1",
    *,
    accuracy: float = 0.95,
    user: str = "erin",
    stamp: bool = False,
    revision: str | None = DEFAULT,
    evaluated_at: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": _model_ref(model, version, revision),
        "dataset": {"name": "holdout", "uri": "s3://datasets/holdout"},
        "metrics": {"accuracy": accuracy},
        "evaluatedAt": evaluated_at or now_rfc3339(),
    }
    if stamp:
        spec["submittedBy"] = {"username": user, "groups": ["evaluators"]}
    return {
        "apiVersion": API,
        "kind": "ModelEvaluation",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# --- acting as the people who do these things (kubectl impersonation) ---------------------------


def deploy(kubectl: Kubectl, obj: dict[str, Any], user: str = "alice") -> None:
    kubectl.apply(obj, as_user=user, as_groups=DEPLOYERS)


def approve(
    kubectl: Kubectl, obj: dict[str, Any], user: str = "bob", groups: tuple[str, ...] | None = None
) -> None:
    kubectl.apply(obj, as_user=user, as_groups=groups if groups is not None else (obj["spec"]["role"],))


def submit(kubectl: Kubectl, obj: dict[str, Any], user: str = "erin") -> None:
    kubectl.apply(obj, as_user=user, as_groups=EVALUATORS)


def psi_template(name: str) -> dict[str, Any]:
    """A MetricTemplate over the reference exporter's prediction PSI, one series per model."""
    return {
        "apiVersion": API,
        "kind": "MetricTemplate",
        "metadata": {"name": name},
        "spec": {
            "query": "max by (namespace, model, version) (modelgate_prediction_psi)",
            "description": "PSI of the prediction distribution",
        },
    }


def psi_monitoring(
    template: str,
    on_drift: str = "rollback",
    failure_limit: int = 2,
    inconclusive_limit: int = 2,
    interval: str = "2s",
) -> dict[str, Any]:
    return {
        "interval": interval,
        "onDrift": on_drift,
        "metrics": [
            {
                "name": "psi",
                "templateRef": {"name": template},
                "max": 0.25,
                "failureLimit": failure_limit,
                "inconclusiveLimit": inconclusive_limit,
            }
        ],
    }


@contextmanager
def governed_namespace(kubectl: Kubectl, prefix: str) -> Iterator[str]:
    """A fresh namespace `<prefix>-xxxxxx` (its default ServiceAccount made) with a default policy
    `p-<namespace>` of its own; both deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, f"modelgate.io/test={name}")
    wait_until("the default service account", lambda: kubectl.get("serviceaccount", "default", name))
    kubectl.apply(policy(f"p-{name}", name))
    try:
        yield name
    finally:
        kubectl("delete", "governancepolicy", f"p-{name}", "--ignore-not-found", check=False)
        kubectl("delete", "namespace", name, "--wait=false", check=False)
