"""Act: write ModelRecords, keep a retired quarantined model's pods, delete them when their
retention ends. Thin: what to write is decided in decide/records.py.

Records are written before the status patch of the same reconcile, so a crash in between leaves
the record (the harder one to lose), and the next pass rebuilds the status from it and tells of the
decision then (decide/recovery.py). Every write reads the
record first and merges (entries keyed by time and action): a repeated write is a no-op.

Keeping pods: `retire` deletes the owned Deployment with propagationPolicy Orphan, waits until the
garbage collector has released its ReplicaSets, then makes the record their controller (so a new
Deployment of the same name cannot adopt and scale them down) and annotates them
`modelgate.io/retain-until`. NetworkPolicies labelled for the model are re-owned the same way, so
the ingress cut of a quarantine outlives the ModelDeployment too.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate import executors
from modelgate.act.kube import client
from modelgate.api.v1alpha1 import API_VERSION, GROUP, VERSION
from modelgate.decide.conditions import rfc3339
from modelgate.decide.records import RecordUpdate, merge
from modelgate.decide.serving import LABEL_DEPLOYMENT

PLURAL = "modelrecords"
RETAIN_UNTIL = "modelgate.io/retain-until"
LABEL_RETAINED = "modelgate.io/retained"
log = logging.getLogger("modelgate.records")


def _api() -> Any:
    return kubernetes.client.CustomObjectsApi(client())


def get(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = _api().get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return obj


def put(namespace: str, name: str, existing: Mapping[str, Any] | None, spec: Mapping[str, Any]) -> str:
    """Create the record or replace its spec (guarded by resourceVersion); returns the new one."""
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "ModelRecord",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "modelgate"},
        },
        "spec": dict(spec),
    }
    if existing is None:
        res = _api().create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    else:
        body["metadata"] = dict(existing["metadata"])
        res = _api().replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)
    return str(res["metadata"]["resourceVersion"])


def _write(namespace: str, update: RecordUpdate) -> str | None:
    for _ in range(5):
        existing = get(namespace, update.name)
        spec = merge((existing or {}).get("spec"), update)
        if existing is not None and existing.get("spec") == spec:
            return None
        try:
            return put(namespace, update.name, existing, spec)
        except ApiException as e:
            if e.status != 409:
                raise
    raise RuntimeError(f"ModelRecord {namespace}/{update.name} kept changing under the write")


async def write(namespace: str, updates: Sequence[RecordUpdate]) -> str | None:
    """Merge `updates` into their records; returns the newest resourceVersion written, if any."""
    newest: str | None = None
    for u in updates:
        rv = await executors.run_in(executors.OBJECTS, _write, namespace, u)
        if rv is not None:
            newest = rv
            log.info(
                f"Recorded {', '.join(e['action'] for e in u.entries)} in ModelRecord {namespace}/{u.name}"
            )
    return newest


# --- retirement of a quarantined model: keep the pods ------------------------------------------------


def _owner(record: Mapping[str, Any]) -> dict[str, Any]:
    meta = record["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelRecord",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": False,
    }


def keep_pods(
    namespace: str, deployment: str, record: Mapping[str, Any], until: dt.datetime, timeout: float = 30.0
) -> tuple[list[str], list[str]]:
    """Delete the Deployment leaving its ReplicaSets and pods, and hand them to the record; returns
    the names of the ReplicaSets and pods kept."""
    apps: Any = kubernetes.client.AppsV1Api(client())
    core: Any = kubernetes.client.CoreV1Api(client())
    net: Any = kubernetes.client.NetworkingV1Api(client())
    selector = f"{LABEL_DEPLOYMENT}={deployment}"
    try:
        apps.delete_namespaced_deployment(deployment, namespace, propagation_policy="Orphan")
    except ApiException as e:
        if e.status != 404:
            raise
    deadline = time.monotonic() + timeout
    while True:  # the garbage collector removes the Deployment's ownerReference from its ReplicaSets
        sets = apps.list_namespaced_replica_set(namespace, label_selector=selector).items
        owned = [rs for rs in sets if any(o.kind == "Deployment" for o in rs.metadata.owner_references or [])]
        gone = apps.list_namespaced_deployment(namespace, field_selector=f"metadata.name={deployment}").items
        if (not owned and not gone) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    patch = {
        "metadata": {
            "ownerReferences": [_owner(record)],
            "annotations": {RETAIN_UNTIL: rfc3339(until)},
            "labels": {LABEL_RETAINED: "true"},
        }
    }
    kept = []
    for rs in sets:
        apps.patch_namespaced_replica_set(
            rs.metadata.name, namespace, patch, _content_type="application/merge-patch+json"
        )
        kept.append(rs.metadata.name)
    with_np = net.list_namespaced_network_policy(namespace, label_selector=selector).items
    for np in with_np:  # still controlled by the ModelDeployment: a merge patch replaces that owner
        net.patch_namespaced_network_policy(
            np.metadata.name, namespace, patch, _content_type="application/merge-patch+json"
        )
    pods = sorted(p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=selector).items)
    return sorted(kept), pods


async def keep(
    namespace: str, deployment: str, record: Mapping[str, Any], until: dt.datetime
) -> tuple[list[str], list[str]]:
    return await executors.run_in(executors.OBJECTS, keep_pods, namespace, deployment, record, until)


def delete_kept(namespace: str, record: Mapping[str, Any]) -> list[str]:
    """Delete the ReplicaSets (and so the pods) and NetworkPolicies the record keeps."""
    apps: Any = kubernetes.client.AppsV1Api(client())
    net: Any = kubernetes.client.NetworkingV1Api(client())
    uid = record["metadata"]["uid"]
    deleted = []
    for lister, deleter in (
        (apps.list_namespaced_replica_set, apps.delete_namespaced_replica_set),
        (net.list_namespaced_network_policy, net.delete_namespaced_network_policy),
    ):
        for obj in lister(namespace, label_selector=f"{LABEL_RETAINED}=true").items:
            if any(o.uid == uid for o in obj.metadata.owner_references or []):
                try:
                    deleter(obj.metadata.name, namespace, propagation_policy="Background")
                    deleted.append(obj.metadata.name)
                except ApiException as e:
                    if e.status != 404:
                        raise
    return deleted


async def delete(namespace: str, record: Mapping[str, Any]) -> list[str]:
    return await executors.run_in(executors.OBJECTS, delete_kept, namespace, record)


async def replace_spec(namespace: str, record: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    return await executors.run_in(executors.OBJECTS, put, namespace, record["metadata"]["name"], record, spec)


async def read(namespace: str, name: str) -> dict[str, Any] | None:
    return await executors.run_in(executors.OBJECTS, get, namespace, name)
