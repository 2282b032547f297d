"""Gathering an evidence bundle (decide/bundle.py) from the API server: the ModelDeployment, the
approvals, evaluations and ModelRecords of its namespace, the policies in force. Read as stored
(not from the operator's indexes, which trim objects): a seal signs an object exactly as the API
server holds it. Used by `modelgate report --bundle` and by the retirement (runtime/retire.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.decide import bundle
from modelgate.decide.policy import read_policy, select_policies


def _items(api: Any, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = None
    while True:
        if namespace is None:
            page = api.list_cluster_custom_object(GROUP, VERSION, plural, limit=500, _continue=token)
        else:
            page = api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, limit=500, _continue=token
            )
        out += page.get("items", [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return out


def in_force(api_client: Any, namespace: str, model: dict[str, Any]) -> list[dict[str, Any]]:
    """The GovernancePolicies in force for `model`, as stored (an unreadable one included: it
    blocks what it selects)."""
    custom: Any = kubernetes.client.CustomObjectsApi(api_client)
    raws = {str(p["metadata"]["name"]): p for p in _items(custom, "governancepolicies")}
    core: Any = kubernetes.client.CoreV1Api(api_client)
    labels = core.read_namespace(namespace).metadata.labels or {}
    risk = str(((model.get("spec") or {}).get("card") or {}).get("riskLevel") or "")
    chosen = select_policies([read_policy(p) for p in raws.values()], labels, risk)
    return [raws[p.name] for p in chosen if p.name in raws]


def gather(api_client: Any, namespace: str, name: str, now: dt.datetime, made_by: str) -> dict[str, Any]:
    """The unsealed bundle of ModelDeployment `namespace/name`; LookupError when it does not exist."""
    custom: Any = kubernetes.client.CustomObjectsApi(api_client)
    try:
        model = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", name)
    except ApiException as e:
        if e.status == 404:
            raise LookupError(f"ModelDeployment {namespace}/{name} not found") from None
        raise
    evidence = _items(custom, "modelapprovals", namespace) + _items(custom, "modelevaluations", namespace)
    records = _items(custom, "modelrecords", namespace)
    return bundle.build(model, evidence, in_force(api_client, namespace, model), records, now, made_by)
