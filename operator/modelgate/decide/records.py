"""ModelRecords, decided: which plan decisions become record entries, how entries merge, which
interventions are in force, and when kept forensic pods expire. Pure: `now` is passed in.

A record is one per (namespace, model name, digest) and only ever grows: entries are keyed by
their decision id (decide/ids.py; by time and action for entries without one), so writing the
same decision twice (a restart between the write and the status patch, which decides it again at
a later time under the same id) changes nothing. The record's `state` follows its newest
RolledBack / Quarantined / Released entry: Withdrawn while an intervention is in force, Released
after a re-admission.
`in_force` turns the Withdrawn records of a model into the `Observed.records` the plan unites
with status.rejectedDigests, so a deleted and re-created ModelDeployment meets the same renewal
gate as the original.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import parse_duration
from modelgate.decide.conditions import rfc3339

RECORDED: Final = (c.ACTION_ROLLED_BACK, c.ACTION_QUARANTINED, c.ACTION_RELEASED)
"""Plan decisions that go into a ModelRecord."""
WITHDRAWING: Final = (c.ACTION_ROLLED_BACK, c.ACTION_QUARANTINED)
MAX_ENTRIES: Final = 100
RECOVERED: Final = "recoveredFrom"
"""The evidence key of a decision recovered from its record entry (decide/recovery.py)."""


def record_name(model: str, digest: str) -> str:
    """`<model>-<first 12 hex digits of the digest>`, made a valid object name."""
    base = re.sub(r"[^a-z0-9.-]+", "-", model.lower()).strip("-.")[:230] or "model"
    return f"{base}-{digest.removeprefix('sha256:')[:12]}"


@dataclass(frozen=True)
class RecordUpdate:
    """New entries for the record of one digest."""

    model: str
    digest: str
    entries: tuple[dict[str, Any], ...]
    retention: str | None = None
    """quarantineRetention in force, when one of the entries is a quarantine."""

    @property
    def name(self) -> str:
        return record_name(self.model, self.digest)


def _time(text: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def updates_from(
    decisions: Iterable[Any], model: str, deployment: str, uid: str | None
) -> list[RecordUpdate]:
    """The record entries a plan's decisions call for (duck-typed `Decision`s)."""
    out: dict[str, RecordUpdate] = {}
    for d in decisions:
        if d.action not in RECORDED or RECOVERED in (d.evidence or {}):
            continue  # not an intervention, or one recovered from its record entry
        withdrawn = (d.evidence or {}).get("withdrawn") or {}
        digest = withdrawn.get("digest") or (d.revision or {}).get("digest")
        if not digest:
            continue
        entry: dict[str, Any] = {
            "time": d.time,
            "action": d.action,
            "reason": d.reason,
            "message": d.message[:4000],
            "modelDeployment": {"name": deployment, **({"uid": uid} if uid else {})},
        }
        if getattr(d, "id", ""):
            entry["decision"] = d.id
        version = withdrawn.get("version") or (d.revision or {}).get("version")
        if version:
            entry["version"] = version
        if withdrawn.get("revisionId"):
            entry["revisionId"] = withdrawn["revisionId"]
        retention = (d.evidence or {}).get("retention") if d.action == c.ACTION_QUARANTINED else None
        have = out.get(digest)
        out[digest] = RecordUpdate(
            model,
            digest,
            (*(have.entries if have else ()), entry),
            retention or (have.retention if have else None),
        )
    return list(out.values())


def updates_for(
    decisions: Iterable[Any],
    rejected: Iterable[Mapping[str, Any]],
    model: str,
    deployment: str,
    uid: str | None,
    known: Iterable[Mapping[str, Any]],
) -> list[RecordUpdate]:
    """The record entries of a plan's interventions and releases, plus an entry for every digest the
    status lists as rejected that has no record at all (withdrawn before records existed, or a lost
    write): records end up holding at least what the status holds."""
    updates = updates_from(decisions, model, deployment, uid)
    recorded = {str((r.get("spec") or {}).get("model", {}).get("digest")) for r in known}
    recorded |= {u.digest for u in updates}
    for r in rejected:
        digest = str(r["digest"])
        if digest in recorded:
            continue
        action = c.ACTION_QUARANTINED if r.get("reason") == c.QUARANTINED_REASON else c.ACTION_ROLLED_BACK
        entry = {
            "time": r["time"],
            "action": action,
            "reason": r["reason"],
            "message": f"{action} as recorded in ModelDeployment {deployment}'s status.rejectedDigests",
            "modelDeployment": {"name": deployment, **({"uid": uid} if uid else {})},
        }
        updates.append(RecordUpdate(model, digest, (entry,)))
    return updates


def entry_key(entry: Mapping[str, Any]) -> str:
    """What makes a record entry unique: its decision id, else its time and action."""
    return str(entry.get("decision") or f"{entry['time']}/{entry['action']}")


def merge(spec: Mapping[str, Any] | None, update: RecordUpdate) -> dict[str, Any]:
    """The record spec after `update`: entries united by `entry_key`, oldest first, and the state
    of the newest intervention or release. Merging the same update twice is a no-op, and so is
    merging the same decision taken again later (same id, later time)."""
    base = dict(spec or {})
    entries = {entry_key(e): dict(e) for e in base.get("entries") or []}
    for e in update.entries:
        entries.setdefault(entry_key(e), dict(e))
    ordered = sorted(entries.values(), key=lambda e: (_time(e["time"]), str(e["action"])))
    out: dict[str, Any] = {
        "model": {"name": update.model, "digest": update.digest},
        "entries": ordered[-MAX_ENTRIES:],
    }
    last = next((e for e in reversed(ordered) if e["action"] in RECORDED), None)
    if last is not None and last["action"] in WITHDRAWING:
        out |= {
            "state": "Withdrawn",
            "withdrawnAt": last["time"],
            "withdrawnReason": c.QUARANTINED_REASON
            if last["action"] == c.ACTION_QUARANTINED
            else last["reason"],
        }
    else:
        out["state"] = "Released"
    kept = dict(base.get("kept") or {})
    if update.retention and not kept.get("retainUntil"):
        kept["retention"] = update.retention
    if kept:
        out["kept"] = kept
    return out


def in_force(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """digest -> {reason, time, entry} of every Withdrawn record: what `Observed.records` holds.
    `entry` is the newest withdrawing entry, the decision in force (decide/recovery.py tells of it
    when the status of the ModelDeployment that took it never stored it)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        spec = r.get("spec") or {}
        if spec.get("state") == "Withdrawn" and spec.get("withdrawnAt"):
            digest = str((spec.get("model") or {}).get("digest"))
            entries = [e for e in spec.get("entries") or [] if e.get("action") in WITHDRAWING]
            out[digest] = {
                "reason": str(spec.get("withdrawnReason")),
                "time": str(spec["withdrawnAt"]),
                "entry": dict(entries[-1]) if entries else {},  # `merge` keeps them oldest first
            }
    return out


def keep(
    spec: Mapping[str, Any],
    replica_sets: Sequence[str],
    pods: Sequence[str],
    now: dt.datetime,
    retention: str,
    deployment: str,
    uid: str | None,
    decision: str = "",
) -> dict[str, Any]:
    """The record spec once a quarantined model was retired with its pods kept for `retention`;
    unchanged when it already holds the retirement `decision` (a retirement retried after a crash)."""
    if decision and any(e.get("decision") == decision for e in spec.get("entries") or []):
        return dict(spec)
    out = dict(spec)
    kept = dict(out.get("kept") or {})
    kept["retention"] = str(kept.get("retention") or retention)
    until = now + parse_duration(kept["retention"])
    kept |= {"retainUntil": rfc3339(until), "replicaSets": list(replica_sets), "pods": list(pods)[:256]}
    kept.pop("deletedAt", None)
    out["kept"] = kept
    entry = {
        "time": rfc3339(now),
        "action": c.ACTION_RETIRED,
        "reason": c.QUARANTINED_REASON,
        "message": (
            f"Retired ModelDeployment {deployment}; kept {len(pods)} quarantined pod(s) "
            f"({', '.join(pods) or 'none'}) until {rfc3339(until)}"
        ),
        "modelDeployment": {"name": deployment, **({"uid": uid} if uid else {})},
        **({"decision": decision} if decision else {}),
    }
    out["entries"] = [*(out.get("entries") or []), entry][-MAX_ENTRIES:]
    return out


def retained_until(spec: Mapping[str, Any], decision: str) -> str | None:
    """retainUntil set by the retirement `decision`, when the record already holds it."""
    if not any(e.get("decision") == decision for e in spec.get("entries") or []):
        return None
    until = (spec.get("kept") or {}).get("retainUntil")
    return str(until) if until else None


def retention_due(spec: Mapping[str, Any], now: dt.datetime) -> bool:
    """Kept pods whose retention has passed and that are not deleted yet."""
    kept = spec.get("kept") or {}
    until = kept.get("retainUntil")
    return bool(until) and not kept.get("deletedAt") and _time(until) <= now


def expire(spec: Mapping[str, Any], deleted: Sequence[str], now: dt.datetime) -> dict[str, Any]:
    """The record spec once the kept ReplicaSets were deleted at the end of the retention."""
    out = dict(spec)
    kept = dict(out.get("kept") or {})
    kept["deletedAt"] = rfc3339(now)
    out["kept"] = kept
    entry = {
        "time": rfc3339(now),
        "action": c.ACTION_RETENTION_EXPIRED,
        "reason": c.RETENTION_EXPIRED,
        "message": f"Deleted the kept ReplicaSets {', '.join(deleted) or '(none left)'}: retention "
        f"{kept.get('retention')} ended at {kept.get('retainUntil')}",
        "modelDeployment": (out.get("entries") or [{}])[-1].get("modelDeployment") or {"name": "unknown"},
    }
    out["entries"] = [*(out.get("entries") or []), entry][-MAX_ENTRIES:]
    return out
