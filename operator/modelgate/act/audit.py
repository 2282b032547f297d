"""The audit trail: every decision is a Kubernetes Event and one structured JSON log line.

The log line is the decision's signed record (decide/trail.py: the same as its status.history
entry) with the evidence beside it (object names, uids, digests, approvers, metric values), so that
an auditor can reconstruct and check a decision from logs alone; the Event carries the human summary that
`kubectl describe` shows. Both are emitted from the same `Decision` so they never disagree.

Events are posted by modelgate's own client (act/kube.py), in the background: a decision never
waits for its Event.

Both are recorded once the status write that stores the decision in history has succeeded
(runtime/reconcile.py): a pass killed or failing before it decides again, and may decide otherwise,
so nothing is told of it. A status write that reached the API server but raised (a lost response)
is retried with the same decisions under the same ids (decide/ids.py): the Event is named after
the id (a second create is refused as AlreadyExists), and a process writes one audit line per id.
A line written again by the next process (a retirement retried after a crash) carries the same id,
so a reader counts it once. A process stopped between the status write and the telling leaves the
decision untold: the next process's first pass over the model tells its recent decisions again
(`retell`, decide/retell.py), and posts only the Events the API server does not hold.

(Kopf's `kopf.event` needs the context variables of a Kopf handler, which would tie every
reconcile loop to the watch event that started it, and that event's whole body.)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from modelgate.act import kube
from modelgate.decide import trail
from modelgate.decide.types import Decision

COMPONENT = "modelgate"
MAX_MESSAGE = 1000
REMEMBERED = 10_000
"""How many recent decision ids a process remembers (`first_time`): far more than the decisions
that can be awaiting a retried status write at once."""
_recorded: dict[str, None] = {}

_audit = logging.getLogger("modelgate.audit")


def _configure() -> None:
    if _audit.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    _audit.addHandler(handler)
    _audit.setLevel(logging.INFO)
    _audit.propagate = False


def first_time(decision_id: str) -> bool:
    """Whether this process has not recorded the decision `decision_id` yet (one without an id
    always counts as new); remembers it."""
    if not decision_id:
        return True
    if decision_id in _recorded:
        return False
    _recorded[decision_id] = None
    while len(_recorded) > REMEMBERED:
        _recorded.pop(next(iter(_recorded)))
    return True


def record(body: Mapping[str, Any], decision: Decision) -> None:
    """Post the Event and write the audit line for one decision, once per decision id."""
    if not first_time(decision.id):
        return
    _write_line(body, decision)
    kube.post_event(event(body, decision, dt.datetime.now(dt.UTC)))


async def retell(body: Mapping[str, Any], decisions: Iterable[Decision]) -> None:
    """Tell recent decisions again (decide/retell.py): post each one's Event unless the API server
    already holds it, and write its audit line (marked `retold`) only when the Event was missing,
    i.e. when the process that decided it was stopped before telling it."""
    for decision in decisions:
        told = decision.id and first_time(decision.id)
        if told and await kube.create_event(event(body, decision, dt.datetime.now(dt.UTC))):
            _write_line(body, decision, retold=True)


def _write_line(body: Mapping[str, Any], decision: Decision, *, retold: bool = False) -> None:
    _configure()
    meta = body.get("metadata") or {}
    record = decision.record or trail.record(decision, body, None)
    line = {
        **record,
        "audit": True,
        "decision": decision.id or None,
        "object": {
            "kind": body.get("kind", "ModelDeployment"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
        },
        "evidence": decision.evidence,
        **({"retold": True} if retold else {}),
    }
    _audit.info(json.dumps(line, sort_keys=True, default=str))


def final_bundle(body: Mapping[str, Any], decision_id: str, bundle: Mapping[str, Any]) -> None:
    """The audit line of a retired model's final evidence bundle (runtime/retire.py): `action`
    FinalBundle, the retirement's decision id, the object, and the signed bundle under `bundle`."""
    _configure()
    meta = body.get("metadata") or {}
    line = {
        "audit": True,
        "action": "FinalBundle",
        "decision": decision_id,
        "time": bundle.get("madeAt"),
        "object": {
            "kind": body.get("kind", "ModelDeployment"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        },
        "bundle": bundle,
    }
    _audit.info(json.dumps(line, sort_keys=True, default=str))


def event(body: Mapping[str, Any], decision: Decision, now: dt.datetime) -> dict[str, Any]:
    """The core/v1 Event for a decision about `body`, as `kubectl describe` and `get events` show it;
    named `<object name>.<decision id>` (the name cut to fit), so that it is posted once."""
    meta = body.get("metadata") or {}
    stamp = now.isoformat().replace("+00:00", "Z")
    prefix = f"{str(meta.get('name'))[: 253 - 17]}."
    name = {"name": prefix + decision.id} if decision.id else {"generateName": prefix}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": meta.get("namespace"), **name},
        "involvedObject": {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind", "ModelDeployment"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": "Warning" if decision.warning else "Normal",
        "reason": decision.action,
        "action": decision.action,
        "message": decision.message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": stamp,
        "count": 1,
    }
