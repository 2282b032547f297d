"""Kopf's start-up wait, kept only for the objects whose handlers need the whole index.

At start-up Kopf indexes each listed object in a worker of its own, then makes that worker wait
until every object of every indexed kind is indexed, and only then runs the object's handlers.
Over 10,000 converged models that is 50,000 parked workers, each with its task, its queue and its
object's body, until the last page of the last list is indexed: the start-up peak (2,027 MB) and
much of the cold start (BENCHMARKS.md, "cold start over 10,000 converged models").

Only the ModelDeployment reconcile (and the few handlers that read other objects' entries:
policies, records, namespaces, templates) needs the whole index. The handlers of ModelApprovals,
ModelEvaluations and the owned Deployments and Services, 40,000 of those 50,000 objects, read only
the object itself: they wake the loops that depend on it (at start-up none runs yet, a poke of a
loop that does not exist does nothing, and every model is reconciled once the index is whole) and
the leader seals new evidence. Their workers index the object, run its handlers and leave at once.

A ModelDeployment still waits, but with its metadata only: once it is indexed, its event's spec
and status are let go. Its one handler (handlers/deployments.py) reads the event's type, name,
namespace and labels; its reconcile loop reads the model from the index.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final

from kopf._core.reactor import processing

from modelgate.api.v1alpha1 import GROUP

__all__ = ["METADATA_ONLY", "NO_WAIT", "install", "without_wait"]

NO_WAIT: Final = frozenset(
    {(GROUP, "modelapprovals"), (GROUP, "modelevaluations"), ("apps", "deployments"), ("", "services")}
)
"""(group, plural) of the kinds whose handlers read only their own object."""

METADATA_ONLY: Final = frozenset({(GROUP, "modeldeployments")})
"""(group, plural) of the kinds that wait with only their metadata once indexed."""


class _Lightened:
    """Kopf's readiness set as one waiting event sees it: when Kopf drops the event's toggle (the
    object is indexed), everything but the metadata leaves the event's body before the wait."""

    def __init__(self, ready: Any, raw_event: Any) -> None:
        self._ready, self._raw_event = ready, raw_event

    async def drop_toggle(self, toggle: Any) -> None:
        raw = self._raw_event.get("object")
        if isinstance(raw, dict):
            for field in [k for k in raw if k not in ("apiVersion", "kind", "metadata")]:
                del raw[field]
        await self._ready.drop_toggle(toggle)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ready, name)


Processor = Callable[..., Awaitable[Any]]


def without_wait(
    original: Processor,
    kinds: frozenset[tuple[str, str]] = NO_WAIT,
    light: frozenset[tuple[str, str]] = METADATA_ONLY,
) -> Processor:
    """Kopf's per-event processor, with the start-up wait left out for `kinds`: the object's own
    readiness toggle is dropped once its event is processed (indexed, then handled), so the
    operator still waits for it to be indexed, and its worker no longer waits for the others.
    Events of `light` kinds wait with their metadata only."""

    @functools.wraps(original)
    async def process(
        *, resource: Any, resource_indexed: Any = None, operator_indexed: Any = None, **kwargs: Any
    ) -> Any:
        kind = (resource.group, resource.plural)
        if operator_indexed is not None and resource_indexed is not None and kind in light:
            operator_indexed = _Lightened(operator_indexed, kwargs.get("raw_event") or {})
        if operator_indexed is None or kind not in kinds:
            return await original(
                resource=resource,
                resource_indexed=resource_indexed,
                operator_indexed=operator_indexed,
                **kwargs,
            )
        try:
            return await original(resource=resource, **kwargs)
        finally:
            if resource_indexed is not None:
                await operator_indexed.drop_toggle(resource_indexed)

    process.__dict__["modelgate_nowait"] = True
    return process


def install() -> None:
    """Make Kopf use `without_wait` (it looks the processor up in its module when it starts)."""
    current = getattr(processing, "process_resource_event", None)
    if current is None:
        raise RuntimeError(
            "kopf._core.reactor.processing has changed: modelgate.runtime.nowait needs updating"
        )
    if not getattr(current, "modelgate_nowait", False):
        processing.process_resource_event = without_wait(current)  # type: ignore[assignment]
