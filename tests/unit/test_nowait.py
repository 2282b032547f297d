"""Kopf's start-up wait left out for the kinds whose handlers read only their own object
(runtime/nowait.py): their events are processed at once and their readiness toggle dropped after,
while every other kind's event reaches Kopf's processor as it came."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kopf._cogs.structs.references import Resource
from kopf._core.reactor import processing

from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.runtime import nowait
from modelgate.runtime.toggles import CountingToggleSet

APPROVALS = Resource(GROUP, VERSION, "modelapprovals")
MODELS = Resource(GROUP, VERSION, "modeldeployments")
DEPLOYMENTS = Resource("apps", "v1", "deployments")


class Recorder:
    """Stands in for Kopf's processor: records what each call was given; waits as Kopf does."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    async def __call__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        if self.fail:
            raise RuntimeError("handler failed")
        ready, mine = kwargs.get("operator_indexed"), kwargs.get("resource_indexed")
        if ready is not None and mine is not None:  # indexed: Kopf drops the object's toggle
            await ready.drop_toggle(mine)
        if ready is not None:
            await ready.wait_for(True)
        self.seen = dict(kwargs["raw_event"].get("object") or {})  # what the handlers get
        return "done"


async def _startup() -> tuple[CountingToggleSet, Any, Any]:
    ready = CountingToggleSet(all)
    return ready, await ready.make_toggle(name="model"), await ready.make_toggle(name="approval")


def test_an_approval_is_handled_before_the_index_is_whole_and_its_toggle_dropped() -> None:
    async def scenario() -> tuple[Recorder, str, bool, bool]:
        ready, model, approval = await _startup()
        original = Recorder()
        process = nowait.without_wait(original)
        result = await asyncio.wait_for(
            process(resource=APPROVALS, raw_event={}, resource_indexed=approval, operator_indexed=ready), 5
        )
        still_waiting_for_the_model = not ready.is_on()
        await ready.drop_toggle(model)
        return original, result, still_waiting_for_the_model, ready.is_on()

    original, result, waiting, on = asyncio.run(scenario())

    assert result == "done"
    assert original.calls == [{"resource": APPROVALS, "raw_event": {}}]
    assert waiting and on


def test_a_model_deployment_still_waits_for_the_whole_index() -> None:
    async def scenario() -> tuple[bool, Recorder, str]:
        ready, model, approval = await _startup()
        original = Recorder()
        process = nowait.without_wait(original)
        task = asyncio.create_task(
            process(resource=MODELS, raw_event={}, resource_indexed=model, operator_indexed=ready)
        )
        for _ in range(10):  # let it run up to Kopf's wait
            await asyncio.sleep(0)
        waited = not task.done() and len(original.calls) == 1
        await ready.drop_toggles([model, approval])
        return waited, original, await asyncio.wait_for(task, 5)

    waited, original, result = asyncio.run(scenario())

    assert waited and result == "done"
    assert original.calls[0]["operator_indexed"] is not None
    assert original.calls[0]["resource_indexed"] is not None


def test_the_toggle_is_dropped_even_when_processing_fails() -> None:
    async def scenario() -> bool:
        ready = CountingToggleSet(all)
        toggle = await ready.make_toggle(name="deployment")
        process = nowait.without_wait(Recorder(fail=True))
        with pytest.raises(RuntimeError, match="handler failed"):
            await process(resource=DEPLOYMENTS, raw_event={}, resource_indexed=toggle, operator_indexed=ready)
        return ready.is_on()

    assert asyncio.run(scenario())


def test_after_start_up_every_kind_goes_to_kopf_unchanged() -> None:
    original = Recorder()
    process = nowait.without_wait(original)

    assert asyncio.run(process(resource=APPROVALS, raw_event={})) == "done"
    assert original.calls == [
        {"resource": APPROVALS, "raw_event": {}, "resource_indexed": None, "operator_indexed": None}
    ]


def test_install_wraps_kopfs_processor_once(monkeypatch: pytest.MonkeyPatch) -> None:
    kopfs = processing.process_resource_event
    monkeypatch.setattr(processing, "process_resource_event", kopfs)

    nowait.install()
    installed = processing.process_resource_event
    nowait.install()

    assert installed is not kopfs
    assert processing.process_resource_event is installed
    assert installed.__wrapped__ is kopfs  # type: ignore[attr-defined]


def _event(kind: str) -> dict[str, Any]:
    meta = {"name": "m", "namespace": "ns", "labels": {"team": "a"}}
    return {
        "type": None,
        "object": {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": {"x": 1}, "status": {}},
    }


def test_a_waiting_model_deployment_keeps_only_its_metadata_once_indexed() -> None:
    async def scenario() -> tuple[Recorder, bool, dict[str, Any]]:
        ready, model, approval = await _startup()
        original = Recorder()
        event = _event("ModelDeployment")
        task = asyncio.create_task(
            nowait.without_wait(original)(
                resource=MODELS, raw_event=event, resource_indexed=model, operator_indexed=ready
            )
        )
        for _ in range(10):
            await asyncio.sleep(0)
        waiting = dict(event["object"])
        blocked = not task.done()
        await ready.drop_toggle(approval)
        await asyncio.wait_for(task, 5)
        return original, blocked, waiting

    original, blocked, waiting = asyncio.run(scenario())

    assert blocked
    assert sorted(waiting) == ["apiVersion", "kind", "metadata"]
    assert original.seen["metadata"]["labels"] == {"team": "a"}


def test_after_start_up_a_model_deployment_keeps_its_whole_body() -> None:
    original = Recorder()
    event = _event("ModelDeployment")

    asyncio.run(nowait.without_wait(original)(resource=MODELS, raw_event=event))

    assert original.seen["spec"] == {"x": 1}
    assert "status" in event["object"]


def test_an_approval_keeps_its_whole_body_at_start_up() -> None:
    async def scenario() -> Recorder:
        ready, _, approval = await _startup()
        original = Recorder()
        process = nowait.without_wait(original)
        await process(
            resource=APPROVALS,
            raw_event=_event("ModelApproval"),
            resource_indexed=approval,
            operator_indexed=ready,
        )
        return original

    assert asyncio.run(scenario()).seen["spec"] == {"x": 1}
