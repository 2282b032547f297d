"""Gather: build the frozen `Observed` snapshot for one ModelDeployment from Kopf's indexes.

No API calls: the indexes hold the latest approvals, evaluations, policies, namespace labels and
owned objects, kept current by watches. Evidence and policies are parsed (and evidence seals
verified) once, when the watch delivers them (`index_evidence`, `index_policy`), not on every
reconcile of every model that references them.

Every approval and evaluation of the model (by namespace and spec.model.name) is gathered, whether
the spec references it or not: the deployer does not choose the evidence (the gate engine keeps
what binds to the revision it judges). References only have to exist. Evidence that fails to parse
counts as absent; a policy that fails to parse is kept as a stand-in that blocks (fail closed,
decide/policy.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic

from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide import seal
from modelgate.decide.monitoring import Readings
from modelgate.decide.policy import parse_policies, read_policy, select_policies
from modelgate.decide.records import in_force
from modelgate.decide.types import Observed, Refusal
from modelgate.observe.packed import Packed, unpacked

T = TypeVar("T", ModelApproval, ModelEvaluation)

__all__ = ["IndexedEvidence", "first", "index_evidence", "index_policy", "parse_policies", "snapshot"]


@dataclass(frozen=True)
class IndexedEvidence:
    """A ModelApproval or ModelEvaluation as the indexes keep it: packed (observe/packed.py), parsed
    again by the pass that reads it."""

    packed: Packed | None
    """The trimmed object, which parsed when it was indexed; None when it does not parse."""
    sealed: bool | None
    """Whether its seals let it count (decide/seal.py `evidence`); None when no key is known
    (sealing not enforced)."""
    kind: str = ""
    name: str = ""
    rebind: seal.EvidenceSeal | None = None
    """What its seals prove when the leader should (re)write its status seal (decide/seal.py
    `EvidenceSeal.rebind`); None when there is nothing to write. The event handler that seals reads
    it here instead of verifying the seals a second time."""

    def parse(self) -> ModelApproval | ModelEvaluation | None:
        if self.packed is None:
            return None
        raw = self.packed.unpack()
        return _parse(ModelApproval, raw) if self.kind == "ModelApproval" else _parse(ModelEvaluation, raw)


def first(index: Mapping[Any, Any], key: Any) -> Any:
    """The value a Kopf index holds under `key` (one object per key), or None; a Packed one decoded
    (a fresh copy)."""
    store = index.get(key)
    return unpacked(next(iter(store), None)) if store is not None else None


def _parse(cls: type[T], raw: Mapping[str, Any] | None) -> T | None:
    if raw is None:
        return None
    try:
        return cls.model_validate(dict(raw))
    except pydantic.ValidationError:
        return None


def index_evidence(raw: Mapping[str, Any], keys: seal.KeyRing | None) -> IndexedEvidence:
    """Check that an approval or evaluation parses and what its seals let count, once per watch
    event; keep it packed."""
    state = None if keys is None else seal.evidence(raw, keys)
    kind = str(raw.get("kind"))
    parsed = _parse(ModelApproval, raw) if kind == "ModelApproval" else _parse(ModelEvaluation, raw)
    name = str((raw.get("metadata") or {}).get("name") or "")
    return IndexedEvidence(
        None if parsed is None else Packed.of(raw),
        None if state is None else state.counts,
        kind,
        name,
        state if state is not None and state.rebind is not None else None,
    )


def evidence_key(raw: Mapping[str, Any]) -> tuple[str, str]:
    """(spec.model.name, spec.model.digest) as written (readable even when the object does not
    parse): evidence is indexed by model and digest."""
    model = (raw.get("spec") or {}).get("model")
    if not isinstance(model, Mapping):
        return "", ""
    return str(model.get("name") or ""), str(model.get("digest") or "")


def digest_summary(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the separation-of-duties check needs of a ModelDeployment, under its (namespace, digest):
    who set the digest and the risk level that selects its policies."""
    return {
        "name": name,
        "digestSetBy": (spec.get("digestSetBy") or {}).get("username"),
        "riskLevel": (spec.get("card") or {}).get("riskLevel"),
    }


def relevant_digests(body: Mapping[str, Any]) -> set[str]:
    """The digests whose evidence a ModelDeployment's decisions read: the requested one, the one
    that serves and the known-good ones (rollback targets are re-gated)."""
    status = body.get("status") or {}
    out = {str(((body.get("spec") or {}).get("model") or {}).get("digest") or "")}
    serving = status.get("servingRevision") or {}
    if serving.get("digest"):
        out.add(str(serving["digest"]))
    out |= {str(g["digest"]) for g in status.get("knownGood") or [] if g.get("digest")}
    return out


def index_policy(raw: Mapping[str, Any]) -> GovernancePolicy:
    """The policy, or a stand-in that blocks what it selects when it does not parse."""
    return read_policy(raw)


def _gather(
    by_digest: Mapping[Any, Any],
    by_name: Mapping[Any, Any],
    ns: str,
    model: str,
    digests: set[str],
    refs: list[str],
) -> list[IndexedEvidence]:
    """The evidence of the model for `digests`, plus the referenced objects (whatever they are for:
    a reference to evidence of another digest is reported as such), once each, in name order."""
    keys = {(ns, model, d) for d in digests}
    keys |= {key for n in refs if isinstance(key := first(by_name, (ns, n)), tuple)}
    found = {
        (e.kind, e.name): e
        for key in keys
        for e in by_digest.get(key) or ()
        if isinstance(e, IndexedEvidence) and e.packed is not None
    }
    return sorted(found.values(), key=lambda e: e.name)


def snapshot(
    body: Mapping[str, Any],
    *,
    approvals: Mapping[Any, Any],
    evaluations: Mapping[Any, Any],
    approvals_by_digest: Mapping[Any, Any],
    evaluations_by_digest: Mapping[Any, Any],
    policies: Mapping[Any, Any],
    namespaces: Mapping[Any, Any],
    owned_deployments: Mapping[Any, Any],
    owned_services: Mapping[Any, Any],
    allow_no_policy: bool,
    readings: Readings | None = None,
    records: Mapping[Any, Any] | None = None,
    refusals: Mapping[str, Refusal] | None = None,
    signer: seal.Signer | None = None,
) -> Observed:
    """Raises pydantic.ValidationError when the ModelDeployment itself does not parse. `approvals` and
    `evaluations` are the by-name indexes (does a referenced object exist, and under which key), the
    `*_by_digest` ones hold the parsed evidence by (namespace, model name, digest): a reconcile reads
    the evidence of the digests it decides on, not every version the model ever had. `refusals` are
    the reconcile loop's own facts: the serving-object writes the API server refused."""
    md = ModelDeployment.model_validate(
        {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
    )
    ns, model = md.namespace or "", md.spec.model.name
    references = {
        ("ModelApproval", r.name): first(approvals, (ns, r.name)) is not None for r in md.spec.approvals
    }
    references |= {
        ("ModelEvaluation", r.name): first(evaluations, (ns, r.name)) is not None for r in md.spec.evaluations
    }
    digests = relevant_digests(body)
    found_approvals = _gather(
        approvals_by_digest, approvals, ns, model, digests, [r.name for r in md.spec.approvals]
    )
    found_evaluations = _gather(
        evaluations_by_digest, evaluations, ns, model, digests, [r.name for r in md.spec.evaluations]
    )
    seals = {(e.kind, e.name): e.sealed for e in (*found_approvals, *found_evaluations)}
    enforced = any(v is not None for v in seals.values())
    labels = first(namespaces, ns) or {}
    uid = str((body.get("metadata") or {}).get("uid") or "")  # owned objects are found by owner uid
    return Observed(
        body=body,
        deployment=md,
        policies=select_policies(parse_policies(policies), labels, md.spec.card.risk_level),
        approvals=[a for e in found_approvals if isinstance(a := e.parse(), ModelApproval)],
        evaluations=[v for e in found_evaluations if isinstance(v := e.parse(), ModelEvaluation)],
        references=references,
        owned_deployment=first(owned_deployments, (ns, uid, "Deployment")) if uid else None,
        owned_service=first(owned_services, (ns, uid, "Service")) if uid else None,
        allow_no_policy=allow_no_policy,
        seal_valid={k: bool(v) for k, v in seals.items()} if enforced else None,
        readings=readings,
        records=in_force((records or {}).get((ns, md.spec.model.name)) or ()),
        refusals=refusals or {},
        signer=signer,
    )
