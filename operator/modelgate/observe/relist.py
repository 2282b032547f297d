"""Deletions hidden by a watch's re-list, reported as DELETED events.

Kopf lists each resource (per namespace), then watches from the list's resourceVersion. When the
watch cannot go on (410 Gone: the API server restarted and its watch cache starts after that
version, or etcd compacted it) or an error ends the stream, Kopf lists again and reports every
listed object as an event of type None, and nothing about the objects that are no longer there.
Each deletion between the last event of the old watch and the new list is lost: Kopf keeps the
deleted object in its indexes for good and calls no handler. An approval deleted right after a
kube-apiserver restart left its model admitted (tests/faults/test_control_plane.py). client-go's
Reflector reports such deletions (`DeletedFinalStateUnknown`), as kube-rs's watcher does; Kopf 1.45
does not, and has no hook for it.

The same wrapper also drops from every watched object what nothing in the operator reads
(`slim`: managedFields, kubectl's last-applied copy) before Kopf holds it.

`report_hidden_deletions()` wraps two functions of Kopf's watching module: `infinite_watch`, one
stream of one resource in one namespace (Kopf may run two on the same resource: namespaces are
watched by its namespace observer and by our index), and `continuous_watch`, one list-then-watch
session of such a stream, run one after another. Across the sessions of a stream, `Seen` remembers
a small copy of every object reported; each session starts with a listing, and when the listing
ends, a DELETED event is yielded, with the last copy, for every remembered object the listing did
not contain. Kopf handles it as a deletion seen live: it
drops the object from its indexes and its memory and calls the watch handlers (which wake the
models that depended on it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from kopf._cogs.clients import watching

log = logging.getLogger("modelgate.relist")
Event = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def slim(event: Mapping[str, Any]) -> None:
    """Drop, in place, what nobody in the operator reads of a watched object: `managedFields` and
    kubectl's last-applied copy (half of a ModelDeployment, most of a Deployment). Kopf holds each
    event's body in the object's worker until it is handled, and at start-up every object's first
    event waits in its worker until every index is filled: over 10,000 models, 50,000 bodies at once."""
    obj = event.get("object")
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)


KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "labels", "ownerReferences")
"""What a deletion's handlers read of metadata: identity, the labels Kopf filters handlers on, the
owner a Deployment or Service is woken for."""


def kept(body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an object a DELETED event needs: kind, identity, labels, owners, spec (evidence
    is woken by its spec.model). Status, annotations and managedFields are most of an object and
    no deletion reads them."""
    meta = body.get("metadata") or {}
    out: dict[str, Any] = {k: body[k] for k in ("apiVersion", "kind", "spec") if k in body}
    out["metadata"] = {k: meta[k] for k in KEPT_METADATA if k in meta}
    return out


class Seen:
    """The objects one watch stream has reported, and the deletions a listing reveals. Pure."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.listing: set[str] = set()

    def listing_starts(self) -> None:
        self.listing = set()

    def saw(self, event: Mapping[str, Any]) -> None:
        """Note one event of the stream: a listed object (type None), or a live change."""
        obj = event.get("object") or {}
        uid = (obj.get("metadata") or {}).get("uid")
        if not uid:
            return
        if event.get("type") is None:
            self.listing.add(uid)
        if event.get("type") == "DELETED":
            self.bodies.pop(uid, None)
        else:
            self.bodies[uid] = kept(obj)

    def listing_ends(self) -> list[Event]:
        """DELETED events for every remembered object the listing just ended did not contain."""
        gone = [uid for uid in self.bodies if uid not in self.listing]
        self.listing = set()
        return [{"type": "DELETED", "object": self.bodies.pop(uid)} for uid in gone]


SESSION = object()
"""Marks the start of a list-then-watch session in a stream (each one lists first: Kopf's
initial_streaming is off)."""


def marking_sessions(original: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """Kopf's continuous_watch (one session), preceded by SESSION."""

    async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
        yield SESSION
        async for event in original(**kwargs):
            yield event

    continuous_watch.__wrapped__ = original  # type: ignore[attr-defined]
    return continuous_watch


def reporting(original: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """Kopf's infinite_watch (one stream, for one resource in one namespace: its sessions one after
    another), with the hidden deletions yielded right before each end-of-listing marker (so that
    Kopf's readiness waits for them too), the SESSION marks taken out, and every object `slim`."""

    async def infinite_watch(**kwargs: Any) -> AsyncIterator[Any]:
        seen = Seen()
        async for event in original(**kwargs):
            if event is SESSION:
                seen.listing_starts()
                continue
            if event is watching.Bookmark.LISTED:
                for deletion in seen.listing_ends():
                    _log(deletion["object"])
                    yield deletion
            elif isinstance(event, dict) and event.get("type") != "BOOKMARK":
                slim(event)
                seen.saw(event)
            yield event

    infinite_watch.__wrapped__ = original  # type: ignore[attr-defined]
    return infinite_watch


def _log(body: Mapping[str, Any]) -> None:
    meta = body.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    log.info(
        f"Found {body.get('kind', 'object')} {where}{meta.get('name')} deleted while the watch was "
        f"interrupted (missing from the re-list); reported it as deleted; uid={meta.get('uid')}"
    )


def report_hidden_deletions() -> None:
    """Install the wrappers in Kopf's watching module (once, before the operator starts). Fails at
    once, rather than run blind to such deletions, if Kopf has changed under it."""
    session = getattr(watching, "continuous_watch", None)
    stream = getattr(watching, "infinite_watch", None)
    if session is None or stream is None or not hasattr(watching, "Bookmark"):
        raise RuntimeError("kopf._cogs.clients.watching has changed: modelgate.observe.relist needs updating")
    if hasattr(stream, "__wrapped__"):
        return
    watching.continuous_watch = marking_sessions(session)
    watching.infinite_watch = reporting(stream)
