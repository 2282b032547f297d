"""Act: write serving objects and status to the API server.

The Kubernetes client is synchronous; each call runs in a worker thread so Kopf's event loop never
blocks. Status writes, serving-object writes and Events use separate thread pools (the policy is
modelgate/executors.py): a slow Service creation never holds up the status writes that report
admissions, and no decision waits for its Event.

The owned Deployment and Service are written by server-side apply (`write_owned`; decide/objects.py
says how an edit by someone else is reverted). A write that meets a conflict (an object modelgate
does not control, or one that changed between the apply and its follow-up patch) raises Conflict,
and the next reconcile (woken by that very write) decides again. One the API server refuses as
invalid raises Refused, with what it said: the plan reports it in status (ServingObjectInvalid).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate import executors
from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.decide.objects import foreign_fields_patch
from modelgate.decide.serving import LABEL_DEPLOYMENT, LABEL_QUARANTINED

PLURAL = "modeldeployments"
USER_AGENT = "modelgate-operator"
"""The product token of our user agent. The API server names the field manager of a write without
an explicit fieldManager after the user agent up to its first "/": this stays the manager, whatever
version and replica identity follow it."""
READS = frozenset({"GET", "HEAD", "OPTIONS"})

log = logging.getLogger("modelgate.kube")
_identity = {"user_agent": USER_AGENT}
_fenced: list[str] = []
_valid_until = [float("inf")]


def user_agent(version: str, identity: str) -> str:
    """`modelgate-operator/<version> (<identity>)`: the API server's audit log tells the replicas
    apart, and the field manager stays `modelgate-operator`."""
    return f"{USER_AGENT}/{version} ({identity})"


def set_user_agent(agent: str) -> None:
    """Identify this replica in every request of `client()` (call before its first use)."""
    _identity["user_agent"] = agent


class Fenced(RuntimeError):
    """A write refused because this replica lost the leadership (`fence`)."""


def fence(reason: str) -> None:
    """Refuse every later write of `client()`, from any thread: a replica that lost the lease must
    not write, even a write already queued in a thread pool. Requests already sent complete."""
    _fenced.append(reason)


def writes_valid_until(deadline: float) -> None:
    """Refuse writes after `deadline` (time.monotonic) unless it is moved on: the leader's renew
    deadline. Even an event loop stalled past it (so the elector could not yet notice the loss)
    writes nothing then."""
    _valid_until[0] = deadline


class _FencedClient(kubernetes.client.ApiClient):
    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method.upper() not in READS:
            if _fenced:
                raise Fenced(f"refused {method} {url}: {_fenced[0]}")
            if time.monotonic() > _valid_until[0]:
                raise Fenced(f"refused {method} {url}: the leader election renew deadline passed")
        return super().call_api(method, url, *args, **kwargs)


@functools.cache
def client() -> kubernetes.client.ApiClient:
    """One client (one connection pool) for the process; created after the config is loaded."""
    api = _FencedClient()
    api.user_agent = _identity["user_agent"]
    return api


class Conflict(Exception):
    """The object changed since it was read; retry after the next watch event."""


class NotOwned(Conflict):
    """An object with the wanted name exists and the ModelDeployment does not control it: modelgate
    neither adopts nor overwrites it (retried with backoff until someone removes or renames it)."""


def namespace_terminating(e: BaseException) -> bool:
    """A write refused because its namespace is being deleted (403 NamespaceTerminating): the
    model goes with the namespace, so there is nothing to report beyond a line."""
    return isinstance(e, ApiException) and e.status == 403 and "NamespaceTerminating" in str(e.body or "")


class Refused(Exception):
    """The API server refused a serving object as invalid (422): the spec asks for something the
    object's own validation does not admit. Retrying the same write cannot succeed; the loop reports
    it (decide/objects.py `refusal_message`) and retries with backoff until the object changes."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind} refused: {message}")
        self.kind = kind
        self.message = message


MAX_REFUSAL = 2000
"""How much of the API server's answer a refusal keeps (it ends up in a condition and an Event)."""


def refusal(e: ApiException) -> str:
    """What the API server objected to: `field: why` for each cause of its Status, or its message."""
    try:
        status = json.loads(e.body or "")
    except (TypeError, ValueError):
        status = None
    if not isinstance(status, dict):
        return str(e.reason or "invalid")[:MAX_REFUSAL]
    causes = (status.get("details") or {}).get("causes") or []
    said = "; ".join(
        f"{c.get('field') or '(object)'}: {c.get('message')}" for c in causes if isinstance(c, dict)
    )
    return (said or str(status.get("message") or e.reason or "invalid"))[:MAX_REFUSAL]


FIELD_MANAGER = "modelgate"
CREATE_ONLY = str(2**63 - 1)
"""A resourceVersion no object has. As the precondition of an apply it makes the apply create-only:
when the object is missing the API server ignores it and creates the object; when an object of that
name exists (one the ModelDeployment does not control, or the watch has not shown us ours yet) the
versions differ and the apply fails with 409 Conflict, having changed nothing."""
APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"


def _write(obj: dict[str, Any], existing: Mapping[str, Any] | None) -> str:
    """Server-side apply of the whole desired object (field manager `modelgate`, force on conflict),
    then, only if fields other managers added survive it, the JSON patch that removes them
    (decide/objects.py says why). An update is guarded by the existing object's uid, a create by
    CREATE_ONLY, so that modelgate never adopts or overwrites an object it does not control."""
    meta = obj["metadata"]
    name, ns = meta["name"], meta["namespace"]
    api: Any = (
        kubernetes.client.AppsV1Api(client()).patch_namespaced_deployment
        if obj["kind"] == "Deployment"
        else kubernetes.client.CoreV1Api(client()).patch_namespaced_service
    )
    precondition = (
        {"resourceVersion": CREATE_ONLY} if existing is None else {"uid": existing["metadata"]["uid"]}
    )
    try:
        res = api(
            name,
            ns,
            dict(obj, metadata=dict(meta, **precondition)),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
            _preload_content=False,
        )
    except ApiException as e:
        if e.status == 409 and existing is None:
            raise NotOwned(
                f"{obj['kind']} {ns}/{name} already exists and is not controlled by "
                f"{obj['metadata']['ownerReferences'][0]['kind']} {name} "
                f"(uid {obj['metadata']['ownerReferences'][0]['uid']}): modelgate will not adopt or "
                "overwrite it; delete or rename it"
            ) from e
        if e.status == 409:
            raise Conflict(f"{obj['kind']} {ns}/{name} changed concurrently") from e
        if e.status == 422:
            raise Refused(obj["kind"], refusal(e)) from e
        raise
    applied = json.loads(res.data)
    patch = foreign_fields_patch(applied, obj)
    if not patch:
        return str(applied["metadata"]["resourceVersion"])
    try:
        res = api(
            name, ns, patch, field_manager=FIELD_MANAGER, _content_type=JSON_PATCH, _preload_content=False
        )
    except ApiException as e:
        if e.status in (409, 422):
            # The apply of the whole object passed validation: a patch that no longer applies (a
            # path gone) means the object changed after the apply, not that the spec is invalid.
            raise Conflict(f"{obj['kind']} {ns}/{name} changed after the apply") from e
        raise
    log.info(
        f"Removed fields another manager added to {obj['kind']} {ns}/{name}; "
        f"paths={[op['path'] for op in patch[1:]]}"
    )
    return _resource_version(res)


def _finish(response: Any) -> None:
    """Read a raw answer (`_preload_content=False`) to its end, which hands its connection back to
    the pool. An answer left unread closes its connection, and the next request opens another: a
    new TLS handshake for the operator and the API server each (measured: 20 Event creates left
    unread opened 20 connections, read they reused one; at 10,000 models handshakes were 15% of the
    operator's CPU)."""
    response.data  # noqa: B018 - reading is the point


def _resource_version(response: Any) -> str:
    # The raw response, not the client's model objects: only the new resourceVersion is needed, and
    # building V1Deployment objects for a thousand writes costs memory and CPU for nothing.
    return str(json.loads(response.data)["metadata"]["resourceVersion"])


async def write_owned(obj: dict[str, Any], existing: Mapping[str, Any] | None) -> str:
    """Create or update a Deployment or Service to `obj`; returns the new resourceVersion."""
    return await executors.run_in(executors.OBJECTS, _write, obj, existing)


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning `old` status into `new`: keys that disappeared are set to null."""
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    patch.update({k: v for k, v in new.items() if old.get(k) != v})
    return patch


def _patch_status(namespace: str, name: str, patch: Mapping[str, Any], plural: str = PLURAL) -> str:
    api: Any = kubernetes.client.CustomObjectsApi(client())
    res = api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        plural,
        name,
        {"status": dict(patch)},
        field_manager="modelgate",
        _preload_content=False,
    )
    return _resource_version(res)


def _json_patch(plural: str, namespace: str, name: str, patch: Sequence[Any], *, status: bool) -> None:
    """A JSON patch (its `test` ops make it conditional) of the object, or of its status."""
    api: Any = kubernetes.client.CustomObjectsApi(client())
    call = api.patch_namespaced_custom_object_status if status else api.patch_namespaced_custom_object
    _finish(
        call(
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            patch,
            _content_type="application/json-patch+json",
            _preload_content=False,
        )
    )


def _write_seal(
    plural: str, namespace: str, name: str, uid: str, resource_version: str, seal: Mapping[str, Any]
) -> bool:
    """Patch status.seal of the object namespace/name if it is still the version that was read and
    sealed (JSON patch tests: a seal never lands on an object re-created under the same name, and of
    two writers sealing the same version, the start-up sweep and the object's own event, one wins)."""
    patch = [
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
        {"op": "add", "path": "/status", "value": {"seal": dict(seal)}},
    ]
    try:
        _json_patch(plural, namespace, name, patch, status=True)
    except ApiException as e:
        if e.status in (404, 409, 422) or namespace_terminating(e):  # gone, changed or another object
            return False
        raise
    return True


async def write_seal(
    plural: str, namespace: str, name: str, uid: str, resource_version: str, seal: Mapping[str, Any]
) -> bool:
    """Write an approval's or evaluation's status seal; False when the object is gone, replaced or
    changed since `resource_version` (its next event seals it again)."""
    return await executors.run_in(
        executors.STATUS, _write_seal, plural, namespace, name, uid, resource_version, seal
    )


def _remove_finalizer(namespace: str, name: str, finalizers: list[str], finalizer: str, plural: str) -> None:
    patch = [
        {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
        {"op": "replace", "path": "/metadata/finalizers", "value": [f for f in finalizers if f != finalizer]},
    ]
    try:
        _json_patch(plural, namespace, name, patch, status=False)
    except ApiException as e:
        if e.status == 404:
            return  # gone already
        if e.status in (409, 422):  # the finalizers changed since they were read (the test failed)
            raise Conflict(f"{plural} {namespace}/{name}: finalizers changed concurrently") from e
        raise


async def remove_finalizer(
    namespace: str, name: str, finalizers: list[str], finalizer: str, plural: str = PLURAL
) -> None:
    """Take `finalizer` off the ModelDeployment (or `plural`) namespace/name, if its finalizers are
    still `finalizers` (a JSON patch test: nothing else of the object is touched or overwritten)."""
    await executors.run_in(
        executors.OBJECTS, _remove_finalizer, namespace, name, finalizers, finalizer, plural
    )


async def write_status(
    namespace: str, name: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> str | None:
    """Write the status if it differs; returns the new resourceVersion, or None when nothing changed."""
    patch = status_patch(old, new)
    if not patch:
        return None
    return await executors.run_in(executors.STATUS, _patch_status, namespace, name, patch)


def _delete(kind: str, namespace: str, name: str) -> bool:
    fn: Any = (
        kubernetes.client.AppsV1Api(client()).delete_namespaced_deployment
        if kind == "Deployment"
        else kubernetes.client.CoreV1Api(client()).delete_namespaced_service
    )
    try:
        fn(name, namespace, propagation_policy="Background")
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


async def delete_owned(kind: str, namespace: str, name: str) -> bool:
    """Delete a serving object; False when it was already gone."""
    return await executors.run_in(executors.OBJECTS, _delete, kind, namespace, name)


def _label_pods(namespace: str, deployment: str, quarantined: bool) -> int:
    core: Any = kubernetes.client.CoreV1Api(client())
    pods = core.list_namespaced_pod(namespace, label_selector=f"{LABEL_DEPLOYMENT}={deployment}").items
    value = "true" if quarantined else None
    changed = 0
    for pod in pods:
        if (pod.metadata.labels or {}).get(LABEL_QUARANTINED) != value:
            core.patch_namespaced_pod(
                pod.metadata.name, namespace, {"metadata": {"labels": {LABEL_QUARANTINED: value}}}
            )
            changed += 1
    return changed


async def label_pods(namespace: str, deployment: str, quarantined: bool) -> int:
    """Mark the serving pods as quarantined (kept for forensics), or remove the mark; returns how many
    pods changed."""
    return await executors.run_in(executors.OBJECTS, _label_pods, namespace, deployment, quarantined)


def _quarantine_policy(policy: Mapping[str, Any], present: bool, ensure_only: bool) -> bool:
    net: Any = kubernetes.client.NetworkingV1Api(client())
    meta = policy["metadata"]
    try:
        if not present:
            net.delete_namespaced_network_policy(meta["name"], meta["namespace"])
            return True
        if ensure_only:
            _finish(
                net.read_namespaced_network_policy(meta["name"], meta["namespace"], _preload_content=False)
            )
            return False
        _finish(
            net.create_namespaced_network_policy(
                meta["namespace"], policy, field_manager="modelgate", _preload_content=False
            )
        )
        return True
    except ApiException as e:
        if e.status == 404 and present and ensure_only:
            return _quarantine_policy(policy, present, ensure_only=False)
        if e.status in (404, 409):  # already gone / already there
            return False
        raise


async def quarantine_policy(policy: Mapping[str, Any], present: bool, *, ensure_only: bool = False) -> bool:
    """Create (present) or delete the quarantine NetworkPolicy; with `ensure_only`, read it first and
    create it only when missing. Returns whether anything was written."""
    return await executors.run_in(executors.OBJECTS, _quarantine_policy, policy, present, ensure_only)


def _create_event(event: Mapping[str, Any]) -> bool:
    """Whether the Event was created (False: it was already posted, or lost and logged)."""
    core: Any = kubernetes.client.CoreV1Api(client())
    try:
        _finish(core.create_namespaced_event(event["metadata"]["namespace"], event, _preload_content=False))
        return True
    except ApiException as e:
        if e.status != 409:  # 409: named after its decision id, this decision's Event is already posted
            _event_lost(event, e)
    except OSError as e:
        _event_lost(event, e)
    return False


def _event_lost(event: Mapping[str, Any], e: Exception) -> None:
    # The decision stands and its audit line and history entry are written; only the Event is lost.
    obj = event["involvedObject"]
    what = f"Event {event['reason']} for {obj['kind']} {obj['namespace']}/{obj['name']}"
    if namespace_terminating(e):
        log.info(f"Could not post {what}: its namespace is being deleted")
        return
    log.warning(f"Could not post {what}: {e}")


def post_event(event: Mapping[str, Any]) -> None:
    """Post an Event in the background (from the event loop); failures are logged, not raised."""
    executors.submit(executors.EVENTS, _create_event, event)


async def create_event(event: Mapping[str, Any]) -> bool:
    """Post an Event and wait: whether it was created (False when already there, or lost)."""
    return await executors.run_in(executors.EVENTS, _create_event, event)
