"""Interventions a lost pass left in a ModelRecord only, recovered into the status. Pure.

A reconcile writes a rollback or quarantine to its ModelRecord before the status (runtime/
reconcile.py: an intervention must outlive the ModelDeployment even if the status write fails), and
tells of its decisions (Event, audit line) only once the status holds them. When the operator is
killed between the two writes, or the status write fails, the record holds the decision and the
status does not. The next pass sees the digest withdrawn through the record (decide/plan.py
`withdrawn_digests`) and never decides it again: without this step the decision would have no
history entry, Event or audit line, and the withdrawn digest would go on serving traffic (the status
still names it, without the quarantine).

`recover` reads the record as the log of the lost pass. For each withdrawal this ModelDeployment
(same uid) recorded and its status does not hold, it rebuilds what that pass would have stored: the
rollback's target serving (the newest known-good revision not withdrawn, as decide/intervene.py
chooses), or the quarantine in force, with fresh metric counters. The plan then runs on that status,
as the next pass after a completed one would, and puts the recovered decision first, under its own
id, time, reason and message: the history entry is added by the status write, the Event and audit
line follow it like any decision's, and its record entry is not written again.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, replace
from typing import Any

from modelgate.api import conditions as c
from modelgate.decide.intervene import rollback_candidates
from modelgate.decide.records import RECOVERED, record_name
from modelgate.decide.types import Decision, Observed


@dataclass(frozen=True)
class Recovery:
    """The status the lost passes would have stored, and their decisions to record."""

    status: Mapping[str, Any]
    decisions: tuple[Decision, ...] = ()
    quarantined: bool = False
    """A recovered quarantine is in force in that status: the lost pass never labelled its pods."""


def unrecorded(
    body: Mapping[str, Any], records: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, Any]]]:
    """(digest, record entry) of each withdrawal in force (`Observed.records`) that the ModelDeployment
    `body` recorded and its status never stored, oldest first: the entry's decision id is not in
    history, and its digest is not in rejectedDigests (history alone would not do: it keeps only the
    newest entries)."""
    uid = str((body.get("metadata") or {}).get("uid") or "")
    status = body.get("status") or {}
    told = {h.get("decision") for h in status.get("history") or []}
    rejected = {r.get("digest") for r in status.get("rejectedDigests") or []}
    lost = [
        (digest, entry)
        for digest, r in records.items()
        if (entry := r.get("entry") or {}).get("decision")
        and uid
        and (entry.get("modelDeployment") or {}).get("uid") == uid
        and entry["decision"] not in told
        and digest not in rejected
    ]
    return sorted(lost, key=lambda x: str(x[1]["time"]))


def replay(
    body: Mapping[str, Any],
    records: Mapping[str, Mapping[str, Any]],
    model: str,
    admissible: Callable[[Mapping[str, Any]], bool] = lambda _: True,
) -> Recovery:
    """The status and decisions of every withdrawal `unrecorded` finds (see the module docstring);
    `admissible` says whether a known-good revision passes its gates now."""
    status = dict(body.get("status") or {})
    withdrawn = {*records, *(str(r["digest"]) for r in status.get("rejectedDigests") or [])}
    decisions, quarantined = [], False
    for digest, entry in unrecorded(body, records):
        # The lost pass withdrew what served, which the status still names, unless an older lost
        # pass recovered just before this one moved it.
        serves = (status.get("servingRevision") or {}).get("digest") == digest
        to = _apply(status, digest, entry, withdrawn, admissible) if serves else None
        quarantined = quarantined or (serves and entry["action"] == c.ACTION_QUARANTINED)
        decisions.append(_decision(model, digest, entry, to))
    return Recovery(status, tuple(decisions), quarantined)


def recover(obs: Observed, admissible: Callable[[Mapping[str, Any]], bool]) -> tuple[Observed, Recovery]:
    """`replay` on a snapshot: the snapshot holding the status the lost passes would have stored."""
    got = replay(obs.body, obs.records, obs.deployment.spec.model.name, admissible)
    if not got.decisions:
        return obs, got
    return replace(obs, body={**obs.body, "status": dict(got.status)}), got


def _apply(
    status: dict[str, Any],
    digest: str,
    entry: Mapping[str, Any],
    withdrawn: Container[str],
    admissible: Callable[[Mapping[str, Any]], bool],
) -> Mapping[str, Any] | None:
    """Store in `status` what the lost intervention did to the revision that served; returns the
    known-good revision a rollback went to."""
    status.pop("metrics", None)  # the intervention reset the counters for what serves next
    if entry["action"] == c.ACTION_QUARANTINED:
        status["quarantinedAt"] = entry["time"]
        return None
    candidates = rollback_candidates(status.get("knownGood") or [], digest, withdrawn)
    # The lost pass went to the newest admissible one; when none is admissible any more, the newest
    # serves as it would have, and the plan's gates suspend it (or keep it, onRevocation: keep).
    # None at all cannot be: the lost pass found one in this same, unwritten knownGood.
    back = next((g for g in candidates if admissible(g)), candidates[0] if candidates else None)
    if back is not None:
        status["servingRevision"] = {**back, "admittedAt": entry["time"]}
    return back


def _decision(model: str, digest: str, entry: Mapping[str, Any], to: Mapping[str, Any] | None) -> Decision:
    """The recorded decision as the lost pass took it: its id, time, action, reason and message."""
    withdrawn = {
        "model": model,
        "digest": digest,
        **({"version": entry["version"]} if "version" in entry else {}),
    }
    revision = {"version": str(to["version"]), "digest": str(to["digest"])} if to else None
    evidence: dict[str, Any] = {
        "withdrawn": withdrawn,
        RECOVERED: {"kind": "ModelRecord", "name": record_name(model, digest)},
        **({"to": revision} if revision else {}),
    }
    return Decision(
        action=str(entry["action"]),
        reason=str(entry["reason"]),
        message=str(entry["message"]),
        time=str(entry["time"]),
        evidence=evidence,
        revision=revision or {k: str(v) for k, v in withdrawn.items() if k != "model"},
        warning=True,
        id=str(entry["decision"]),
    )
