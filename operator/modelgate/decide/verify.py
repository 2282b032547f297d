"""Checking an evidence bundle (decide/bundle.py) against a trust file, with no cluster: what
`modelgate verify` does.

Every seal in the bundle is checked, each against what it must cover:
- each approval's and evaluation's `status.seal` against that object's own kind, namespace, name and
  uid as the bundle holds it (a seal copied from another object names that object and fails), and
  its admission seal (`spec.seal`) against its spec and creation time;
- each signed decision record of `history` against the ModelDeployment;
- the bundle's own seal against everything else in the document.
A seal made with a key the trust file does not list fails; so does one made after its key's
retirement (a seal made before stays valid: retired keys stay listed, with `retiredAt`).

Any seal that does not hold is a broken item, named, and so is evidence the bundle says counted
when none of its seals holds. What holds is then told as a short statement (`statement`) of who
approved and evaluated which artifact, and what the operator decided.

Pure: the bundle and the trust are passed in as parsed JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelgate.decide import bundle, seal, trail


class BundleError(ValueError):
    """The document is not an evidence bundle this version can read; the message says why."""


@dataclass(frozen=True)
class Broken:
    """A seal that does not hold, or a claim that no seal backs."""

    item: str
    problem: str

    def __str__(self) -> str:
        return f"{self.item}: {self.problem}"


@dataclass(frozen=True)
class Verification:
    broken: list[Broken] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What holds only through the bundle seal, or was never claimed (unsealed evidence that did
    not count, records made before the signatures)."""
    proven: list[Mapping[str, Any]] = field(default_factory=list)
    """The evidence entries whose seals hold."""

    @property
    def ok(self) -> bool:
        return not self.broken


def _need(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise BundleError(f"{what} is missing or not a JSON {'object' if kind is dict else 'list'}")
    return value


def check_shape(doc: Any) -> None:
    """Raise BundleError unless `doc` has the parts of a bundle (their content is for the seals)."""
    _need(doc, dict, "the document")
    if doc.get("kind") != bundle.KIND:
        raise BundleError(f"the document's kind is {doc.get('kind')!r}, not {bundle.KIND}")
    model = _need(doc.get("modelDeployment"), dict, "modelDeployment")
    _need(model.get("metadata"), dict, "modelDeployment.metadata")
    _need(model.get("spec"), dict, "modelDeployment.spec")
    for i, entry in enumerate(_need(doc.get("evidence"), list, "evidence")):
        _need(entry, dict, f"evidence[{i}]")
        raw = _need(entry.get("object"), dict, f"evidence[{i}].object")
        _need(raw.get("metadata"), dict, f"evidence[{i}].object.metadata")
        _need(raw.get("spec"), dict, f"evidence[{i}].object.spec")
    history = _need(doc.get("history"), dict, "history")
    for i, record in enumerate(_need(history.get("records"), list, "history.records")):
        _need(record, dict, f"history.records[{i}]")
    for part in ("policies", "gates", "interventions"):
        _need(doc.get(part), list, part)


def label(raw: Mapping[str, Any]) -> str:
    meta = raw.get("metadata") or {}
    return f"{raw.get('kind')} {meta.get('namespace')}/{meta.get('name')}"


def _evidence(entry: Mapping[str, Any], trust: seal.Trust, out: Verification) -> None:
    raw = entry["object"]
    spec, what = raw["spec"], label(raw)
    held = []
    status_seal = (raw.get("status") or {}).get("seal")
    if status_seal is not None:
        try:
            seal.check(trust, status_seal, seal.evidence_covers(raw), seal.unsealed_spec(spec))
            held.append("status")
        except seal.SealError as e:
            out.broken.append(Broken(f"{what}: status seal", str(e)))
    admission = spec.get("seal")
    if isinstance(admission, str) and admission.startswith(seal.LEGACY_PREFIX):
        out.notes.append(f"{what}: its admission seal is an HMAC from before the signatures (not checkable)")
    elif admission is not None:
        try:
            seal.check_admission(trust, raw, live=False)
            held.append("admission")
        except seal.SealError as e:
            out.broken.append(Broken(f"{what}: admission seal", str(e)))
    if held:
        out.proven.append(entry)
    elif entry.get("counted"):
        out.broken.append(Broken(what, "the bundle says it counted, but no seal of it holds"))
    else:
        out.notes.append(f"{what}: not sealed; it did not count")


def _history(doc: Mapping[str, Any], trust: seal.Trust, out: Verification) -> None:
    model = doc["modelDeployment"]
    where = trail.covers(model)
    unsigned = 0
    for i, record in enumerate(doc["history"]["records"], 1):
        if "seal" not in record:
            unsigned += 1
            continue
        try:
            seal.check_record(trust, record, where)
        except seal.SealError as e:
            item = f"history record {i} ({record.get('time')} {record.get('action')})"
            out.broken.append(Broken(item, str(e)))
    if unsigned:
        out.notes.append(
            f"{unsigned} history record(s) carry no seal of their own (made before the signatures): "
            "only the bundle seal vouches for them"
        )


def verify(doc: Any, trust: seal.Trust) -> Verification:
    """Check every seal in the bundle `doc`; raises BundleError when it is not a bundle."""
    check_shape(doc)
    out = Verification()
    for entry in doc["evidence"]:
        _evidence(entry, trust, out)
    _history(doc, trust, out)
    try:
        seal.check_record(trust, doc, bundle.covers(doc["modelDeployment"]))
    except seal.SealError as e:
        out.broken.append(Broken("bundle seal", str(e)))
    return out


# The statement --------------------------------------------------------------------------------


def _short(digest: Any) -> str:
    text = str(digest or "")
    return text[:19] + "…" if len(text) > 19 else text


def _admitted_at(raw: Mapping[str, Any]) -> str:
    """When the webhook sealed the evidence (what its seal proves), else its creation time."""
    value = raw["spec"].get("seal")
    if isinstance(value, str) and value.startswith(seal.ADMISSION_PREFIX):
        try:
            return str(seal.read_admission_seal(value, "", "")["signedAt"])
        except seal.SealError:
            pass
    return str((raw.get("metadata") or {}).get("creationTimestamp"))


def _artifact(spec: Mapping[str, Any]) -> str:
    m = spec.get("model") or {}
    return f"{m.get('name')} {m.get('version')} {_short(m.get('digest'))}"


def _evidence_line(raw: Mapping[str, Any]) -> str:
    spec = raw["spec"]
    if raw.get("kind") == "ModelApproval":
        who = spec.get("approvedBy") or {}
        verb = "approved" if spec.get("decision") == "approved" else "rejected"
        return (
            f"{_artifact(spec)} was {verb} by {who.get('username', 'an unknown user')} "
            f"({spec.get('role')}) at {_admitted_at(raw)} [{label(raw)}]"
        )
    who = spec.get("submittedBy") or {}
    values = ", ".join(f"{k}={v}" for k, v in sorted((spec.get("metrics") or {}).items()))
    return (
        f"{_artifact(spec)} was evaluated on {(spec.get('dataset') or {}).get('name')} ({values}) at "
        f"{spec.get('evaluatedAt')}, submitted by {who.get('username', 'an unknown user')} [{label(raw)}]"
    )


def statement(doc: Mapping[str, Any], result: Verification) -> list[str]:
    """What the bundle proves, in a few lines for people (call after `verify` found nothing broken)."""
    model = doc["modelDeployment"]
    meta, spec = model["metadata"], model["spec"]
    m = spec.get("model") or {}
    sealed = doc.get("seal") or {}
    lines = [
        f"{m.get('name')} {m.get('version')} {m.get('digest')}: ModelDeployment {meta.get('namespace')}/"
        f"{meta.get('name')} (uid {meta.get('uid')}); bundle made {doc.get('madeAt')} by "
        f"{doc.get('madeBy')}, sealed with key {sealed.get('keyId')}",
    ]
    counted = [e for e in result.proven if e.get("counted")]
    lines += [f"  {_evidence_line(e['object'])}" for e in counted]
    for e in doc["evidence"]:
        if not e.get("counted"):
            lines.append(f"  not counted: {label(e['object'])}: {'; '.join(e.get('notCounted') or [])}")
    policies = ", ".join(f"{p.get('name')} (generation {p.get('generation')})" for p in doc["policies"])
    gates = doc["gates"]
    satisfied = sum(1 for g in gates if g.get("satisfied"))
    lines.append(f"  policies in force: {policies or 'none'}; gates: {satisfied}/{len(gates)} satisfied")
    lines += _decisions(doc)
    return lines


def _decisions(doc: Mapping[str, Any]) -> list[str]:
    history = doc["history"]
    records: Sequence[Mapping[str, Any]] = history["records"]
    dropped = int(history.get("dropped") or 0)
    out = [
        f"  decisions ({len(records)} in history"
        + (f", {dropped} older ones only in the audit log" if dropped else "")
        + "):"
    ]
    out += [f"    {r.get('time')} {r.get('action')}: {r.get('message')}" for r in records]
    for record in doc["interventions"]:
        for entry in (record.get("spec") or {}).get("entries") or []:
            out.append(
                f"    recorded in ModelRecord {record['metadata'].get('name')}: {entry.get('time')} "
                f"{entry.get('action')} ({entry.get('reason')}): {entry.get('message')}"
            )
    return out
