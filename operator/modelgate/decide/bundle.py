"""Evidence bundles: one self-contained JSON document that tells an auditor everything modelgate
knows about one model, signed as a whole, checkable offline (`modelgate verify`, decide/verify.py).

A bundle holds, as the API server stores them (only `metadata.managedFields` dropped):
- `modelDeployment`: the ModelDeployment, its spec (the card included) and its status;
- `evidence`: every ModelApproval and ModelEvaluation of the model (its `spec.model.name`) or
  referenced by it, with their seals (`spec.seal`, the webhook's; `status.seal`, the operator's),
  and for each whether the gates took it into account (`counted`) and why not (`notCounted`, the
  gates' own words);
- `policies`: the GovernancePolicies in force (name, uid, generation, resourceVersion, spec);
- `gates`: the gate results (status.gates);
- `history`: the signed decision records (status.history) and how many left it (`dropped`);
- `interventions`: the model's ModelRecords (rollbacks, quarantines, releases, the retirement of a
  quarantined model), whose messages name the metric values and thresholds behind each decision.

The bundle's `seal` covers everything else in the document. Its `covers` names the ModelDeployment
(namespace, name, uid) under the kind `EvidenceBundle`: a decision record of the same model is
sealed under the kind `ModelDeployment`, so neither seal can pass for the other. The seal is made
with the operator's current key, at the time the bundle was made.

Pure: objects, signer and time are passed in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from modelgate.api.v1alpha1 import API_VERSION
from modelgate.decide import seal
from modelgate.decide.conditions import rfc3339

KIND: Final = "EvidenceBundle"
SECTIONS: Final = (
    "modelDeployment",
    "evidence",
    "policies",
    "gates",
    "history",
    "interventions",
)
EVIDENCE_KINDS: Final = ("ModelApproval", "ModelEvaluation")
NOT_NAMED: Final = (
    "no gate in force names it (evidence of another revision, or for a requirement no policy in force has)"
)


def stored(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An object as stored, without the server-side apply bookkeeping (large, and about field
    managers rather than what the object says)."""
    out = dict(raw)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def covers(model: Mapping[str, Any]) -> dict[str, str]:
    """What a bundle of the ModelDeployment `model` covers."""
    meta = model.get("metadata") or {}
    return seal.record_covers(
        KIND, str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(meta.get("uid") or "")
    )


def _split(message: str) -> tuple[str, list[str]]:
    """A gate message as (what counted, the near misses it lists after "; not counted: ")."""
    head, _, tail = message.partition("; not counted: ")
    return head, [part for part in tail.split("; ") if part] if tail else []


def _names(text: str, kind: str, name: str) -> bool:
    return re.search(rf"\b{kind} {re.escape(name)}(?![\w.-])", text) is not None


def judged(raw: Mapping[str, Any], gates: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether the gates took `raw` into account (as support, a rejection or a failing measurement)
    and, when they did not, why: read from the gates' messages, which name evidence by kind and name."""
    kind, name = str(raw.get("kind")), str((raw.get("metadata") or {}).get("name"))
    counted_in, reasons = [], []
    for gate in gates:
        head, misses = _split(str(gate.get("message") or ""))
        if _names(head, kind, name):
            counted_in.append(str(gate.get("requirement")))
        reasons += [miss for miss in misses if _names(miss, kind, name) and miss not in reasons]
    out: dict[str, Any] = {"counted": bool(counted_in)}
    if counted_in:
        out["countedFor"] = counted_in
    else:
        out["notCounted"] = reasons or [NOT_NAMED]
    return out


def of_model(raw: Mapping[str, Any], model: str, references: Iterable[tuple[str, str]]) -> bool:
    """Whether evidence `raw` is about the model `model`, or referenced by its spec."""
    about = ((raw.get("spec") or {}).get("model") or {}).get("name")
    named = (str(raw.get("kind")), str((raw.get("metadata") or {}).get("name")))
    return about == model or named in set(references)


def references(model: Mapping[str, Any]) -> list[tuple[str, str]]:
    spec = model.get("spec") or {}
    return [("ModelApproval", str(r.get("name"))) for r in spec.get("approvals") or []] + [
        ("ModelEvaluation", str(r.get("name"))) for r in spec.get("evaluations") or []
    ]


def policy_entry(raw: Mapping[str, Any]) -> dict[str, Any]:
    meta = raw.get("metadata") or {}
    return {
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "generation": meta.get("generation"),
        "resourceVersion": meta.get("resourceVersion"),
        "spec": raw.get("spec") or {},
    }


def build(
    model: Mapping[str, Any],
    evidence: Iterable[Mapping[str, Any]],
    policies: Iterable[Mapping[str, Any]],
    records: Iterable[Mapping[str, Any]],
    now: dt.datetime,
    made_by: str,
) -> dict[str, Any]:
    """The unsealed bundle of the ModelDeployment `model`. `evidence` may hold other models'
    approvals and evaluations of the namespace (they are left out); `policies` are those in force."""
    body = stored(model)
    status = body.get("status") or {}
    gates = list(status.get("gates") or [])
    name = str(((body.get("spec") or {}).get("model") or {}).get("name") or "")
    refs = references(body)
    chosen = sorted(
        (stored(e) for e in evidence if e.get("kind") in EVIDENCE_KINDS and of_model(e, name, refs)),
        key=lambda e: (str(e.get("kind")), str(e["metadata"].get("name"))),
    )
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "madeAt": rfc3339(now),
        "madeBy": made_by,
        "modelDeployment": body,
        "evidence": [{"object": e, **judged(e, gates)} for e in chosen],
        "policies": sorted((policy_entry(p) for p in policies), key=lambda p: str(p["name"])),
        "gates": gates,
        "history": {
            "records": list(status.get("history") or []),
            "dropped": int(status.get("historyDropped") or 0),
        },
        "interventions": sorted(
            (stored(r) for r in records if ((r.get("spec") or {}).get("model") or {}).get("name") == name),
            key=lambda r: str(r["metadata"].get("name")),
        ),
    }


def sign(signer: seal.Signer, bundle: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The bundle with its seal: over everything else in it, covering the ModelDeployment."""
    return seal.seal_record(signer, bundle, covers(bundle.get("modelDeployment") or {}), now)
