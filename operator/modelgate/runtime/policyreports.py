"""Keep modelgate's PolicyReports current, with few writes (decide/policyreport.py says what they
hold).

Every replica tracks whether the PolicyReport CRD is served (handlers/policyreports.py, from the
CRD's watch events, the first of them at start-up) and which namespaces changed: a ModelDeployment
event (its status.gates changed, it appeared or went), a policy's spec, a namespace's labels.
Only the leader writes (`run`, started by runtime/leading.py): it waits for a change, collects
changes for `WINDOW` seconds more, then builds each changed namespace's reports from the indexes and
writes only those that differ from what is stored: one apply per report per batch, however many
of its models changed. 1,000 models flipped by one policy edit cost a few writes per namespace
(BENCHMARKS.md, bench/admission), not 1,000.

What is stored is read once (one list of the reports labelled as modelgate's) when the leader
starts or the CRD appears, then kept from the answers to our own writes; a report someone else
edits or deletes is put right at the next change of its namespace. Without the CRD nothing is read
or written, and no error is logged: the reports are an optional integration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from modelgate.act import kube
from modelgate.act import policyreport as act
from modelgate.decide import policyreport as decide
from modelgate.decide.policy import parse_policies, select_policies
from modelgate.observe import metrics
from modelgate.observe.snapshot import first

log = logging.getLogger("modelgate.policyreports")
WINDOW = 1.0
"""Seconds to collect changes after the first before writing (one write per report per batch)."""
RETRY = 5.0
"""Seconds before a batch that failed (the API server away) is tried again."""


def served(crd: Mapping[str, Any]) -> bool:
    """Whether a PolicyReport CRD serves v1alpha2 and is Established (before, writes would 404), and
    is not being deleted."""
    if (crd.get("metadata") or {}).get("deletionTimestamp"):
        return False
    versions = (crd.get("spec") or {}).get("versions") or []
    serves = any(v.get("name") == decide.VERSION and v.get("served") for v in versions)
    conditions = (crd.get("status") or {}).get("conditions") or []
    established = any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
    return serves and established


class Reporter:
    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self.installed = False
        """Whether the PolicyReport CRD is served (handlers/policyreports.py)."""
        self._dirty: set[str] = set()
        self._everything = True
        """Every namespace is to be looked at (start of leading, the CRD appeared, a policy changed)."""
        self._wake = asyncio.Event()
        self._stored: act.Stored | None = None
        """The reports as stored, by namespace and name; None: to be read (once)."""

    def touch(self, namespace: str) -> None:
        self._dirty.add(namespace)
        self._wake.set()

    def touch_all(self) -> None:
        self._everything = True
        self._wake.set()

    def crd(self, installed: bool) -> None:
        """The CRD appeared (every namespace gets its reports) or went (the reports went with it)."""
        if installed == self.installed:
            return
        self.installed = installed
        self._stored = None
        log.info(f"{'Found' if installed else 'Lost'} the PolicyReport CRD; crd={decide.CRD_NAME}")
        if installed:
            self.touch_all()

    async def run(self, indexes: Callable[[], Mapping[str, Any] | None]) -> None:
        """The leader's task: one batch per window of changes, until cancelled."""
        self.touch_all()  # what a follower saw was not written: look at everything once
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.window)
            self._wake.clear()
            views = indexes()
            if not self.installed or views is None:  # no CRD; or Kopf has not listed yet (woken later)
                continue
            everything, dirty = self._everything, self._dirty
            self._everything, self._dirty = False, set()
            try:
                await self._batch(views, None if everything else dirty)
            except kube.Fenced:
                return
            except Exception as e:  # the API server away (or a bug): the whole batch again, later
                if isinstance(e, ApiException | OSError):
                    log.warning(f"Could not write PolicyReports, retrying in {RETRY:.0f} s: {e}")
                else:
                    log.exception(f"Failed to write PolicyReports, retrying in {RETRY:.0f} s")
                self._everything = self._everything or everything
                self._dirty |= dirty
                self._stored = None
                await asyncio.sleep(RETRY)
                self._wake.set()

    async def _batch(self, views: Mapping[str, Any], namespaces: set[str] | None) -> None:
        """Write the changed reports of `namespaces` (None: of every namespace)."""
        try:
            if self._stored is None:
                self._stored = await act.stored()
            stored = self._stored  # the CRD may go meanwhile (`crd` drops it): this batch keeps its own
            models = _models_by_namespace(views["modeldeployments"], namespaces)
            todo = set(models) | set(stored) if namespaces is None else namespaces
            policies = parse_policies(views["policies"])
            now = dt.datetime.now(dt.UTC)
            for ns in sorted(todo):
                if not self.installed:
                    return
                labels = first(views["namespaces"], ns) or {}
                entries = [
                    decide.Model(body, select_policies(policies, labels, _risk_level(body)))
                    for body in models.get(ns, ())
                ]
                await _write(ns, stored, decide.reports(ns, entries, stored.get(ns, {}), now))
        except act.Unserved:
            self._stored = None  # the CRD went: its watch event says so too; nothing to write


async def _write(ns: str, stored: act.Stored, wanted: dict[str, dict[str, Any]]) -> None:
    """Apply and delete what differs in `ns`, and keep what was stored in `stored`."""
    mine = stored.setdefault(ns, {})
    plan = decide.writes(mine, wanted)
    for report in plan.apply:
        name = report["metadata"]["name"]
        written = await act.apply(report)
        metrics.POLICY_REPORT_WRITES.labels(verb="apply").inc()
        if written is None:  # the namespace is going
            mine.pop(name, None)
            continue
        mine[name] = written
        log.debug(f"Wrote PolicyReport {ns}/{name}; summary={report['summary']}")
    for name in plan.delete:
        await act.delete(ns, name)
        metrics.POLICY_REPORT_WRITES.labels(verb="delete").inc()
        mine.pop(name, None)
        log.debug(f"Deleted PolicyReport {ns}/{name}: no ModelDeployment left in it")
    if not mine:
        stored.pop(ns, None)


def _risk_level(body: Mapping[str, Any]) -> str:
    return str(((body.get("spec") or {}).get("card") or {}).get("riskLevel") or "")


def _models_by_namespace(index: Mapping[Any, Any], namespaces: set[str] | None) -> dict[str, list[Any]]:
    """The ModelDeployments of `namespaces` (None: all) from the modeldeployments index."""
    out: dict[str, list[Any]] = {}
    for key in list(index):
        ns = key[0]
        if namespaces is not None and ns not in namespaces:
            continue
        body = first(index, key)
        if body is not None:
            out.setdefault(ns, []).append(body)
    return out
