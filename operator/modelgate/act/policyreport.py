"""Act: read, write and delete modelgate's PolicyReports (decide/policyreport.py says what they hold).

A report is written whole by server-side apply (field manager `modelgate`, force): its `results`
list is atomic in the CRD, so one apply replaces it, and removed models' results are gone with it.
Each call runs in the OBJECTS thread pool like every other object write. A 404 means the
PolicyReport CRD is not served (removed meanwhile): `Unserved`, which the reporter takes as "no
reports", not as an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate import executors
from modelgate.act.kube import APPLY, FIELD_MANAGER, client, namespace_terminating
from modelgate.decide.policyreport import GROUP, PLURAL, SELECTOR, VERSION

Stored = dict[str, dict[str, dict[str, Any]]]
"""namespace -> report name -> the report as stored."""


class Unserved(Exception):
    """The PolicyReport CRD is not (or no longer) served."""


def _api() -> Any:
    return kubernetes.client.CustomObjectsApi(client())


def _list() -> Stored:
    try:
        res = _api().list_cluster_custom_object(
            GROUP, VERSION, PLURAL, label_selector=SELECTOR, _preload_content=False
        )
    except ApiException as e:
        if e.status == 404:
            raise Unserved() from e
        raise
    out: Stored = {}
    for item in json.loads(res.data).get("items") or []:
        meta = item.get("metadata") or {}
        out.setdefault(str(meta.get("namespace")), {})[str(meta.get("name"))] = item
    return out


async def stored() -> Stored:
    """Every PolicyReport modelgate manages (by its label), by namespace and name: one list."""
    return await executors.run_in(executors.OBJECTS, _list)


def _apply(report: Mapping[str, Any]) -> dict[str, Any] | None:
    meta = report["metadata"]
    try:
        res = _api().patch_namespaced_custom_object(
            GROUP,
            VERSION,
            meta["namespace"],
            PLURAL,
            meta["name"],
            dict(report),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
            _preload_content=False,
        )
    except ApiException as e:
        if namespace_terminating(e) or _namespace_missing(e):
            return None
        if e.status == 404:
            raise Unserved() from e
        raise
    stored: dict[str, Any] = json.loads(res.data)
    return stored


def _namespace_missing(e: ApiException) -> bool:
    """A 404 about the namespace (deleted meanwhile), not about the resource type."""
    try:
        details = json.loads(e.body or "").get("details") or {}
    except (TypeError, ValueError, AttributeError):
        return False
    return e.status == 404 and details.get("kind") == "namespaces"


async def apply(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """Write the report whole; returns it as stored (None: its namespace is being deleted)."""
    return await executors.run_in(executors.OBJECTS, _apply, report)


def _delete(namespace: str, name: str) -> None:
    try:
        _api().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status == 404 or namespace_terminating(e):
            return  # gone already (or the CRD is: then every report is)
        raise


async def delete(namespace: str, name: str) -> None:
    await executors.run_in(executors.OBJECTS, _delete, namespace, name)
