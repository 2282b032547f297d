"""observe/relist.py: a re-list reports, as DELETED, what it no longer contains (the deletions Kopf's
re-list after a 410 Gone would hide), and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from kopf._cogs.clients import watching

from modelgate.observe.relist import LAST_APPLIED, SESSION, Seen, kept, marking_sessions, reporting

LISTED = watching.Bookmark.LISTED


def obj(uid: str, rv: str = "1", **extra: Any) -> dict[str, Any]:
    meta = {"name": f"n-{uid}", "namespace": "ns", "uid": uid, "resourceVersion": rv}
    return {"apiVersion": "modelgate.io/v1alpha1", "kind": "ModelApproval", "metadata": meta, **extra}


def listed(uid: str) -> dict[str, Any]:
    return {"type": None, "object": obj(uid)}


def live(kind: str, uid: str) -> dict[str, Any]:
    return {"type": kind, "object": obj(uid, "2")}


def run(events: list[Any]) -> list[Any]:
    """What the wrapped stream yields for a Kopf stream that yields `events`."""

    async def stream(**_: Any) -> AsyncIterator[Any]:
        for e in events:
            yield e

    async def collect() -> list[Any]:
        return [e async for e in reporting(stream)(resource="r", namespace="ns")]

    return asyncio.run(collect())


def deleted(out: list[Any]) -> list[str]:
    return [e["object"]["metadata"]["uid"] for e in out if isinstance(e, dict) and e["type"] == "DELETED"]


def test_an_object_missing_from_a_re_list_is_reported_deleted_before_the_end_of_listing() -> None:
    out = run([SESSION, listed("a"), listed("b"), LISTED, SESSION, listed("a"), LISTED])
    assert deleted(out) == ["b"]
    assert out.index(LISTED, 3) == out.index({"type": "DELETED", "object": kept(obj("b"))}) + 1


def test_the_first_listing_reports_no_deletion() -> None:
    assert deleted(run([SESSION, listed("a"), LISTED])) == []


def test_an_object_added_by_the_watch_and_then_missing_from_a_re_list_is_reported() -> None:
    out = run([SESSION, LISTED, live("ADDED", "c"), SESSION, LISTED])
    assert deleted(out) == ["c"]


def test_a_deletion_seen_live_is_not_reported_again() -> None:
    out = run([SESSION, listed("a"), LISTED, live("DELETED", "a"), SESSION, LISTED])
    assert deleted(out) == ["a"]  # only the live one
    assert sum(1 for e in out if isinstance(e, dict) and e["type"] == "DELETED") == 1


def test_a_re_list_that_still_contains_everything_reports_nothing_and_passes_events_through() -> None:
    events = [SESSION, listed("a"), LISTED, live("MODIFIED", "a"), SESSION, listed("a"), LISTED]
    out = run(events)
    assert deleted(out) == []
    assert out == [e for e in events if e is not SESSION]


def test_a_listing_cut_short_does_not_count_for_the_next_one() -> None:
    """A session whose listing failed half-way: the next listing alone decides what is gone."""
    out = run([SESSION, listed("a"), listed("b"), LISTED, SESSION, listed("b"), SESSION, listed("a"), LISTED])
    assert deleted(out) == ["b"]


def test_watch_bookmarks_are_not_objects() -> None:
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}
    out = run([SESSION, LISTED, bookmark, SESSION, LISTED])
    assert deleted(out) == [] and bookmark in out


def test_the_kept_copy_has_what_deletion_handlers_read_and_drops_the_bulk() -> None:
    body = obj("a", spec={"model": {"name": "fraud", "digest": "sha256:1"}}, status={"big": "x" * 1000})
    body["metadata"].update(
        labels={"modelgate.io/deployment": "fraud"},
        ownerReferences=[{"uid": "o"}],
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        managedFields=[{"manager": "kubectl"}],
    )
    copy = kept(body)
    assert copy["spec"] == body["spec"] and copy["kind"] == "ModelApproval"
    assert copy["metadata"]["labels"] and copy["metadata"]["ownerReferences"]
    assert "status" not in copy
    assert not {"annotations", "managedFields"} & set(copy["metadata"])


def test_each_session_of_kopf_s_continuous_watch_starts_with_a_session_mark() -> None:
    async def session(**_: Any) -> AsyncIterator[Any]:
        yield listed("a")
        yield LISTED

    async def collect() -> list[Any]:
        return [e async for e in marking_sessions(session)()]

    assert asyncio.run(collect()) == [SESSION, listed("a"), LISTED]


def test_seen_forgets_what_it_reported() -> None:
    seen = Seen()
    seen.listing_starts()
    seen.saw(listed("a"))
    assert seen.listing_ends() == []
    seen.listing_starts()
    assert [e["object"]["metadata"]["uid"] for e in seen.listing_ends()] == ["a"]
    seen.listing_starts()
    assert seen.listing_ends() == []


def test_every_object_reaches_kopf_without_managed_fields_or_kubectl_s_last_applied_copy() -> None:
    meta_extra = {
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        "annotations": {LAST_APPLIED: '{"spec": {}}', "kopf.zalando.org/touch": "x"},
        "labels": {"app": "a"},
    }
    event = {"type": "MODIFIED", "object": obj("a", "3")}
    event["object"]["metadata"].update(meta_extra)
    out = run([SESSION, LISTED, event, {"type": "BOOKMARK", "object": {"metadata": {}}}])
    meta = out[1]["object"]["metadata"]
    assert "managedFields" not in meta
    assert meta["annotations"] == {"kopf.zalando.org/touch": "x"}  # Kopf's own and the others stay
    assert meta["labels"] == {"app": "a"} and meta["uid"] == "a"
