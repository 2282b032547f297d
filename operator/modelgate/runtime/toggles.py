"""Kopf's start-up readiness, made linear in the number of objects.

At start-up Kopf holds back every handler until every index is filled: it gives each listed object
a toggle in one `ToggleSet(all)`, drops the toggle once the object is indexed, and makes each
object's worker wait on the set. Kopf 1.45's ToggleSet wakes every waiter at every change, and each
waiter then recomputes `all(...)` over every toggle: O(objects^2) wake-ups of O(objects) each. Over
10,000 converged models (50,000 watched objects with their evidence, Deployments and Services) a
restarted operator spent 8 minutes at 100% CPU in `Condition.notify` and reconciled nothing
before it was stopped (py-spy; BENCHMARKS.md, "The cold start did not converge").

`CountingToggleSet` keeps the number of toggles that are on, so its state is O(1) to read, and wakes
its waiters only when that state changes: once per change of readiness instead of once per object.
`install()` puts it in place of Kopf's class before the operator starts (both of Kopf's sets, the
indexing one with `all` and the pausing one with `any`, behave as before).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kopf._cogs.aiokits import aiotoggles

__all__ = ["CountingToggleSet", "install"]


class _Member(aiotoggles.Toggle):
    """A toggle made by a CountingToggleSet: it tells the set when it turns. Its own waiters
    (`Toggle.wait_for`) wait on a condition of its own, so that they do not wake the set's."""

    def __init__(self, state: bool, *, name: str | None, owner: CountingToggleSet) -> None:
        super().__init__(state, name=name)
        self._owner = owner

    async def turn_to(self, __state: bool) -> None:
        await self._owner._turned(self, bool(__state))
        async with self._condition:
            self._condition.notify_all()


class CountingToggleSet(aiotoggles.ToggleSet):
    """Kopf's ToggleSet with its state counted, not recomputed, and its waiters woken only when the
    state changes. For `all` and `any`, whose result depends only on which states occur."""

    def __init__(self, fn: Callable[[Iterable[bool]], bool]) -> None:
        if fn not in (all, any):
            raise ValueError(f"CountingToggleSet counts for all() or any(), not {fn!r}")
        super().__init__(fn)
        self._on = 0

    def is_on(self) -> bool:
        off = len(self._toggles) - self._on
        return self._fn([True] * min(self._on, 1) + [False] * min(off, 1))

    async def make_toggle(self, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
        toggle = _Member(bool(__val), name=name, owner=self)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            self._on += toggle.is_on()
            self._notify_if_changed(before)
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self.drop_toggles([toggle])

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            before = self.is_on()
            for toggle in toggles:
                if toggle in self._toggles:
                    self._toggles.discard(toggle)
                    self._on -= toggle.is_on()
            self._notify_if_changed(before)

    async def _turned(self, toggle: _Member, state: bool) -> None:
        """Set a member's state and count it, in one step under the set's lock (a drop in between
        would otherwise uncount the wrong state)."""
        async with self._condition:
            before = self.is_on()
            if toggle in self._toggles and toggle.is_on() != state:
                self._on += 1 if state else -1
            toggle._state = state
            self._notify_if_changed(before)

    def _notify_if_changed(self, before: bool) -> None:
        if self.is_on() != before:
            self._condition.notify_all()


def install() -> None:
    """Make Kopf create CountingToggleSets (it looks the class up in its module when it starts)."""
    if not isinstance(getattr(aiotoggles, "ToggleSet", None), type) or not hasattr(aiotoggles, "Toggle"):
        raise RuntimeError(
            "kopf._cogs.aiokits.aiotoggles has changed: modelgate.runtime.toggles needs updating"
        )
    aiotoggles.ToggleSet = CountingToggleSet  # type: ignore[misc]
