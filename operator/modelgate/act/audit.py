"""The audit trail: every decision is a Kubernetes Event and one structured JSON log line.

The log line carries the evidence (object names, uids, digests, approvers, metric values) so that
an auditor can reconstruct a decision from logs alone; the Event carries the human summary that
`kubectl describe` shows. Both are emitted from the same `Decision` so they never disagree.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

import kopf

from modelgate.decide.plan import Decision

_audit = logging.getLogger("modelgate.audit")


def _configure() -> None:
    if _audit.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    _audit.addHandler(handler)
    _audit.setLevel(logging.INFO)
    _audit.propagate = False


def record(body: Mapping[str, Any], decision: Decision) -> None:
    """Post the Event and write the audit line for one decision."""
    _configure()
    meta = body.get("metadata") or {}
    line = {
        "audit": True,
        "time": decision.time,
        "action": decision.action,
        "reason": decision.reason,
        "message": decision.message,
        "object": {
            "kind": body.get("kind", "ModelDeployment"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
        },
        "evidence": decision.evidence,
    }
    _audit.info(json.dumps(line, sort_keys=True, default=str))
    kopf.event(
        dict(body),  # type: ignore[arg-type]
        type="Warning" if decision.warning else "Normal",
        reason=decision.action,
        message=decision.message[:1000],
    )
