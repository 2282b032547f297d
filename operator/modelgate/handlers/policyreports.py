"""Kopf registrations for PolicyReports: whether the wgpolicyk8s.io PolicyReport CRD is served.

The CRD's watch events (the first at start-up, from Kopf's initial listing; then its creation, its
Established condition, its deletion) tell the reporter (runtime/policyreports.py) whether reports
can be written. Nothing here watches PolicyReports themselves: a Kopf watch on a resource whose CRD
is absent logs a warning at every CRD event of the cluster, and the reporter needs none (it lists
its reports once and keeps the answers to its writes).
"""

from __future__ import annotations

from typing import Any

import kopf

from modelgate.decide.policyreport import CRD_NAME
from modelgate.runtime.leading import Leadership
from modelgate.runtime.policyreports import Reporter, served
from modelgate.runtime.reconcile import INDEXES


@kopf.on.event(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    id="policyreport-crd",
    field="metadata.name",
    value=CRD_NAME,
)
async def policyreport_crd(type: str | None, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    reporter: Reporter | None = memo.get("policy_reports")
    if reporter is None:
        return
    leadership: Leadership = memo["leadership"]
    if leadership.indexes is None:  # populated: Kopf calls no handler before (the reporter reads them)
        leadership.indexed({k: kwargs[k] for k in INDEXES})
    reporter.crd(type != "DELETED" and served(body))
