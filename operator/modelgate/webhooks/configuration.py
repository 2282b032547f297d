"""The Mutating and Validating webhook configurations modelgate registers, built as manifests.

Scoped to modelgate's own resources, `failurePolicy: Fail` (no webhook, no approval: fail closed),
short timeouts, admission review v1. Each webhook's path is the id of the Kopf handler serving it.
Locally the API server calls a URL (https://127.0.0.1:PORT/ID); in a cluster, a Service.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from modelgate.api.v1alpha1 import FINALIZER, GROUP, VERSION

NAME: Final = "modelgate.io"
TIMEOUT_SECONDS: Final = 5


@dataclass(frozen=True)
class Hook:
    id: str
    plural: str
    operations: tuple[str, ...]


MUTATING: Final = (
    Hook("stamp-approval", "modelapprovals", ("CREATE", "UPDATE")),
    Hook("stamp-evaluation", "modelevaluations", ("CREATE", "UPDATE")),
    Hook("stamp-deployment", "modeldeployments", ("CREATE", "UPDATE")),
)
VALIDATING: Final = (
    Hook("validate-approval", "modelapprovals", ("CREATE", "UPDATE")),
    Hook("validate-evaluation", "modelevaluations", ("UPDATE",)),
)


@dataclass(frozen=True)
class Endpoint:
    """Where the API server reaches the webhook server: a URL base, or a Service."""

    ca_pem: bytes
    url: str | None = None
    service_namespace: str | None = None
    service_name: str | None = None
    service_port: int = 443

    def client_config(self, hook_id: str) -> dict[str, Any]:
        cfg: dict[str, Any] = {"caBundle": base64.b64encode(self.ca_pem).decode()}
        if self.url:
            cfg["url"] = f"{self.url.rstrip('/')}/{hook_id}"
        else:
            cfg["service"] = {
                "namespace": self.service_namespace,
                "name": self.service_name,
                "port": self.service_port,
                "path": f"/{hook_id}",
            }
        return cfg


def _webhook(hook: Hook, endpoint: Endpoint, mutating: bool) -> dict[str, Any]:
    w: dict[str, Any] = {
        "name": f"{hook.id}.{NAME}",
        "clientConfig": endpoint.client_config(hook.id),
        "rules": [
            {
                "apiGroups": [GROUP],
                "apiVersions": [VERSION],
                "resources": [hook.plural],
                "operations": list(hook.operations),
                "scope": "Namespaced",
            }
        ],
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
    }
    if mutating:
        w["reinvocationPolicy"] = "IfNeeded"
    if "UPDATE" in hook.operations:
        # Metadata-only updates (labels, Kopf's bookkeeping, the operator removing its finalizer from
        # a model being deleted) need no webhook call; a replace that drops the finalizer of a model
        # not being deleted does (the mutating webhook puts it back).
        w["matchConditions"] = [
            {
                "name": "spec-changed-or-finalizer-dropped",
                "expression": "request.operation != 'UPDATE' || object.spec != oldObject.spec || ("
                f"has(oldObject.metadata.finalizers) && '{FINALIZER}' in oldObject.metadata.finalizers"
                f" && !(has(object.metadata.finalizers) && '{FINALIZER}' in object.metadata.finalizers)"
                " && !has(object.metadata.deletionTimestamp))",
            }
        ]
    return w


def configurations(endpoint: Endpoint) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/managed-by": "modelgate"}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": NAME, "labels": labels},
            "webhooks": [_webhook(h, endpoint, True) for h in MUTATING],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": NAME, "labels": labels},
            "webhooks": [_webhook(h, endpoint, False) for h in VALIDATING],
        },
    ]


def ca_bundle_patch(config: Mapping[str, Any], ca_pem: bytes) -> list[dict[str, Any]]:
    """JSON-patch operations that set the caBundle of each webhook of `config` (a stored
    configuration) to `ca_pem`; empty when every one is right (then nothing is written). Each
    change is guarded by a test of the webhook's name at its index, so a configuration changed in
    between fails the patch instead of getting a caBundle at the wrong place. Nothing else of the
    configuration (the chart's in a cluster) is touched."""
    want = base64.b64encode(ca_pem).decode()
    ops: list[dict[str, Any]] = []
    for i, hook in enumerate(config.get("webhooks") or []):
        if (hook.get("clientConfig") or {}).get("caBundle") == want:
            continue
        ops.append({"op": "test", "path": f"/webhooks/{i}/name", "value": hook["name"]})
        ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": want})
    return ops
