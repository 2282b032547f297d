"""Who to wake when something changes: the link from Kopf's watch events to the reconcilers.

Each ModelDeployment has one reconcile loop (runtime/loops.py) that sleeps on an asyncio.Event.
Watch handlers for approvals, evaluations, policies, namespaces and owned objects call `poke*`
after Kopf has updated its indexes, so a woken loop always reads the new state. A loop registers
the names it references and the (model, digest) pairs it decides on each time it runs (the
requested digest, the one that serves, the known-good ones), so any approval or evaluation of those
(referenced or not: all evidence counts) wakes it, even one created after the model was applied,
and evidence of the model's other versions does not.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

Key = tuple[str, str]
"""(namespace, name) of a ModelDeployment."""


def evidence_ref(namespace: str, model: str, digest: str) -> tuple[str, str, str]:
    """What a ModelDeployment registers to be woken by evidence of `model` at `digest`."""
    return ("Evidence", namespace, f"{model}@{digest}")


class Wakeups:
    def __init__(self) -> None:
        self._events: dict[Key, asyncio.Event] = {}
        self._refs: dict[tuple[str, str, str], set[Key]] = defaultdict(set)
        self._refs_of: dict[Key, set[tuple[str, str, str]]] = {}
        self._seen: dict[tuple[Key, str], object] = {}

    def register(self, key: Key) -> asyncio.Event:
        return self._events.setdefault(key, asyncio.Event())

    def unregister(self, key: Key) -> None:
        self._events.pop(key, None)
        self.set_refs(key, set())

    def set_refs(self, key: Key, refs: set[tuple[str, str, str]]) -> None:
        """Declare the objects (kind, namespace, name) that `key` depends on."""
        for ref in self._refs_of.get(key, set()) - refs:
            self._refs[ref].discard(key)
            if not self._refs[ref]:
                del self._refs[ref]
        for ref in refs:
            self._refs[ref].add(key)
        self._refs_of[key] = refs

    def poke(self, key: Key) -> None:
        event = self._events.get(key)
        if event is not None:
            event.set()

    def poke_if_changed(self, key: Key, what: str, seen: object | None) -> None:
        """Poke `key` when `seen` (what its reconcile reads of one owned object; None: gone) differs
        from what the previous call for the same (key, what) passed."""
        slot = (key, what)
        if slot in self._seen and self._seen[slot] == seen:
            return
        if seen is None:
            self._seen.pop(slot, None)
        else:
            self._seen[slot] = seen
        self.poke(key)

    def poke_ref(self, kind: str, namespace: str, name: str) -> None:
        for key in list(self._refs.get((kind, namespace, name), ())):
            self.poke(key)

    def poke_evidence(self, namespace: str, model: str, digest: str) -> None:
        """Wake every ModelDeployment that decides on evidence of `model` at `digest` (registered
        with `evidence_ref`)."""
        self.poke_ref(*evidence_ref(namespace, model, digest))

    def poke_namespace(self, namespace: str) -> None:
        for key in list(self._events):
            if key[0] == namespace:
                self.poke(key)

    def poke_all(self) -> None:
        for event in self._events.values():
            event.set()
