"""The four invariants of the fault suite (issue 13), checked against the real API server.

After a fault (a killed operator, a restarted API server, a bad Prometheus) and once the world has
settled, every fault test calls `check(kubectl, namespace, expectations, before=...)`:

1. Nothing serves that the gates do not allow: an owned Deployment with replicas and traffic runs
   the digest its ModelDeployment's status names, that digest is not withdrawn (rolled back or
   quarantined) unless a ModelApproval newer than the withdrawal exists, and the evidence the
   selecting GovernancePolicies name is present for it (approvals per role, not rejected, not
   expired; the newest evaluation meets each threshold). This oracle is deliberately simpler than
   the gate engine and independent of it: it reads only the stored objects.
2. Nothing that should serve is left down: each expected model serves its expected version with all
   its replicas ready and its Service, or is expectedly down, quarantined or retired.
3. No decision is recorded twice: decision ids are unique in each status history and ModelRecord,
   no ModelRecord withdraws a digest twice without a release in between, and no decision has more
   Events than history entries.
4. No evidence is lost: every approval, evaluation and ModelRecord entry in `before` (a `snapshot`
   taken before the fault) is still there, and every history entry too (short of the history cap);
   every rollback and quarantine a live ModelDeployment wrote to a ModelRecord is in its history.

It also checks the bookkeeping: owner references (every object modelgate labels has exactly one
controller, one that exists), finalizers (every live ModelDeployment carries modelgate's, nothing
is left stuck in deletion) and status (observedGeneration current, Ready present, one condition per
type). All violations are collected and raised as one AssertionError, one line each.

`violations_of` and the helpers below it are pure (a `World` in, strings out); `check` only reads.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.kube import Kubectl

FINALIZER = "modelgate.io/finalizer"
MANAGED = "app.kubernetes.io/managed-by=modelgate"
HISTORY_LIMIT = 50
EVENT_MESSAGE = 1000
"""Events carry the first 1000 characters of a decision's message (act/audit.py)."""
WITHDRAWING = ("RolledBack", "Quarantined")

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Expect:
    """What should hold for one ModelDeployment once the fault is gone."""

    name: str
    serving: str | None = None
    """The version that serves traffic (None: nothing does)."""
    phase: str | None = None
    """The expected status.phase (None: any)."""
    retired: bool = False
    """Deleted: the object is gone and so are its Deployment and Service (kept pods aside)."""


@dataclass(frozen=True)
class World:
    """What the API server holds in one namespace (plus the cluster's policies and the labels of the
    namespace), as `read` gets it."""

    namespace_labels: Mapping[str, str]
    policies: Sequence[Obj]
    models: Sequence[Obj]
    approvals: Sequence[Obj]
    evaluations: Sequence[Obj]
    records: Sequence[Obj]
    deployments: Sequence[Obj]
    services: Sequence[Obj]
    replica_sets: Sequence[Obj]
    network_policies: Sequence[Obj]
    events: Sequence[Obj]
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class Snapshot:
    """The evidence and records at one moment: what must not be lost afterwards."""

    approvals: frozenset[tuple[str, str]]
    """(name, uid)."""
    evaluations: frozenset[tuple[str, str]]
    record_entries: frozenset[tuple[str, str]]
    """(record name, entry key)."""
    history: Mapping[str, tuple[str, ...]]
    """ModelDeployment uid -> its history entry keys, oldest first."""


def read(kubectl: Kubectl, namespace: str) -> World:
    """Everything `violations_of` looks at, read from the API server."""

    def items(*args: str) -> list[Obj]:
        return list(kubectl.json("get", *args, "-n", namespace)["items"])

    # Events first: the operator posts one only after the status holding its decision is stored,
    # so every Event read here has its history entry in the ModelDeployments read after it.
    events = items("events", "--field-selector", "involvedObject.kind=ModelDeployment")
    # Records before the models: a pass writes an intervention to its record just before its
    # status, so an entry read here is in the history read after it (read the other way round, an
    # intervention decided in between would look lost).
    records = items("modelrecords")
    ns = kubectl.json("get", "namespace", namespace)
    return World(
        namespace_labels=ns["metadata"].get("labels") or {},
        policies=kubectl.json("get", "governancepolicies")["items"],
        models=items("modeldeployments"),
        approvals=items("modelapprovals"),
        evaluations=items("modelevaluations"),
        records=records,
        deployments=items("deployments", "-l", MANAGED),
        services=items("services", "-l", MANAGED),
        replica_sets=items("replicasets", "-l", "modelgate.io/deployment"),
        network_policies=items("networkpolicies", "-l", MANAGED),
        events=events,
    )


def snapshot(kubectl: Kubectl, namespace: str) -> Snapshot:
    """The evidence, records and histories now, for `check(before=...)`."""
    return snapshot_of(read(kubectl, namespace))


def check(
    kubectl: Kubectl, namespace: str, expectations: Iterable[Expect], *, before: Snapshot | None = None
) -> None:
    """Raise one AssertionError listing every violated invariant in `namespace` (module docstring)."""
    found = violations_of(read(kubectl, namespace), list(expectations), before)
    if found:
        raise AssertionError(
            f"{len(found)} invariant violation(s) in namespace {namespace}:\n- " + "\n- ".join(found)
        )


# --- pure --------------------------------------------------------------------------------------------


def snapshot_of(world: World) -> Snapshot:
    return Snapshot(
        approvals=frozenset((_name(a), _uid(a)) for a in world.approvals),
        evaluations=frozenset((_name(e), _uid(e)) for e in world.evaluations),
        record_entries=frozenset(
            (_name(r), _entry_key(e))
            for r in world.records
            for e in (r.get("spec") or {}).get("entries") or []
        ),
        history={_uid(m): tuple(_entry_key(h) for h in _history(m)) for m in world.models},
    )


def violations_of(world: World, expectations: Sequence[Expect], before: Snapshot | None) -> list[str]:
    """Every violation, one line each; empty when all invariants hold."""
    out: list[str] = []
    out += gated(world)
    out += expected(world, expectations)
    out += recorded_once(world)
    out += told(world)
    if before is not None:
        out += kept(world, before)
    out += bookkeeping(world)
    return out


def gated(world: World) -> list[str]:
    """Invariant 1: every Deployment that serves traffic runs a digest its evidence allows."""
    out = []
    models = {_name(m): m for m in world.models}
    for dep in world.deployments:
        if int((dep.get("spec") or {}).get("replicas") or 0) == 0:
            continue
        name, digest = _name(dep), served_digest(dep)
        model = models.get(name)
        if model is None:
            out.append(f"Deployment {name} serves {digest} with no ModelDeployment {name}")
            continue
        status = model.get("status") or {}
        if status.get("quarantinedAt"):
            continue  # no traffic: checked in bookkeeping (the NetworkPolicy cuts ingress)
        stored = (status.get("servingRevision") or {}).get("digest")
        if digest != stored:
            out.append(f"Deployment {name} serves {digest} but status.servingRevision names {stored}")
        out += [f"Deployment {name} serves {digest}: {why}" for why in not_allowed(world, model, digest)]
    return out


def not_allowed(world: World, model: Obj, digest: str | None) -> list[str]:
    """Why the evidence in the namespace does not allow `model` to serve `digest` (empty: it does)."""
    name = (model["spec"].get("model") or {}).get("name")
    approvals = [a for a in world.approvals if _about(a, name, digest)]
    evaluations = [e for e in world.evaluations if _about(e, name, digest)]
    out = []
    withdrawn = withdrawn_at(world, model, digest)
    if withdrawn and not any(_created(a) > withdrawn for a in approvals):
        out.append(f"it was withdrawn at {withdrawn:%Y-%m-%dT%H:%M:%SZ} and no approval is newer")
    for policy in selecting(world):
        spec = policy.get("spec") or {}
        for req in spec.get("approvals") or []:
            role = req.get("role")
            of_role = [a for a in approvals if a["spec"].get("role") == role and not _expired(a, world.now)]
            if any(a["spec"].get("decision") == "rejected" for a in of_role):
                out.append(f"a {role} approval rejects it")
            if sum(a["spec"].get("decision") == "approved" for a in of_role) < int(req.get("count") or 1):
                out.append(f"policy {_name(policy)} requires {req.get('count') or 1} {role} approval(s)")
        for req in spec.get("evaluations") or []:
            out += _evaluation_fails(req, evaluations)
    return out


def _evaluation_fails(req: Obj, evaluations: Sequence[Obj]) -> list[str]:
    metric = req.get("metric")
    with_metric = [e for e in evaluations if metric in (e["spec"].get("metrics") or {})]
    if not with_metric:
        return [f"no evaluation of {metric}"]
    newest = max(with_metric, key=lambda e: str(e["spec"].get("evaluatedAt")))
    value = float(newest["spec"]["metrics"][metric])
    if req.get("min") is not None and value < float(req["min"]):
        return [f"{metric} {value} < {req['min']} in evaluation {_name(newest)}"]
    if req.get("max") is not None and value > float(req["max"]):
        return [f"{metric} {value} > {req['max']} in evaluation {_name(newest)}"]
    return []


def expected(world: World, expectations: Sequence[Expect]) -> list[str]:
    """Invariant 2: what should serve serves, fully; what should be gone is gone."""
    out = []
    models = {_name(m): m for m in world.models}
    deployments = {_name(d): d for d in world.deployments}
    services = {_name(s) for s in world.services}
    for want in expectations:
        model, dep = models.get(want.name), deployments.get(want.name)
        if want.retired:
            if model is not None:
                out.append(f"ModelDeployment {want.name} should be retired but still exists")
            if dep is not None or want.name in services:
                out.append(f"retired ModelDeployment {want.name} left its Deployment or Service")
            continue
        if model is None:
            out.append(f"ModelDeployment {want.name} is missing")
            continue
        status = model.get("status") or {}
        if want.phase and status.get("phase") != want.phase:
            out.append(f"{want.name}: phase {status.get('phase')}, expected {want.phase}")
        if want.serving is None:
            continue
        serving = status.get("servingRevision") or {}
        replicas = int(((dep or {}).get("spec") or {}).get("replicas") or 0)
        ready = int(((dep or {}).get("status") or {}).get("readyReplicas") or 0)
        if (
            serving.get("version") != want.serving
            or dep is None
            or served_digest(dep) != serving.get("digest")
        ):
            out.append(f"{want.name}: should serve {want.serving}; status serves {serving.get('version')}")
        elif replicas == 0 or ready < replicas or want.name not in services:
            out.append(
                f"{want.name}: {want.serving} is down "
                f"({ready}/{replicas} ready, Service: {want.name in services})"
            )
    return out


def recorded_once(world: World) -> list[str]:
    """Invariant 3: each decision once in history, records and Events."""
    out = []
    for m in world.models:
        ids = Counter(h["decision"] for h in _history(m) if h.get("decision"))
        out += [f"{_name(m)}: decision {i} is in status.history {n} times" for i, n in ids.items() if n > 1]
        in_history = Counter(_decision_of(h, ids) for h in _history(m))
        events = Counter(
            _decision_of(e, ids)
            for e in world.events
            if (e.get("involvedObject") or {}).get("uid") == _uid(m)
        )
        capped = len(_history(m)) >= HISTORY_LIMIT
        for key, n in events.items():
            if n > in_history[key] and not capped:
                out.append(f"{_name(m)}: {n} Event(s) for {in_history[key]} history entr(y/ies) of {key}")
    for r in world.records:
        entries = (r.get("spec") or {}).get("entries") or []
        ids = Counter(e["decision"] for e in entries if e.get("decision"))
        out += [f"ModelRecord {_name(r)}: decision {i} entered {n} times" for i, n in ids.items() if n > 1]
        out += [f"ModelRecord {_name(r)}: {why}" for why in withdrawn_twice(entries)]
    return out


def _decision_of(obj: Obj, ids: Mapping[str, int]) -> tuple[str, str]:
    """Which decision a history entry or an Event records: its decision id when the history holds
    it (an Event is named `<object>.<id>`), else its action and message (an Event's first 1000
    characters), which also tells apart Events posted twice under different names."""
    if "involvedObject" in obj:
        decision = _name(obj).rsplit(".", 1)[-1]
        action, message = obj.get("reason"), obj.get("message")
    else:
        decision = str(obj.get("decision") or "")
        action, message = obj.get("action"), str(obj.get("message") or "")[:EVENT_MESSAGE]
    if decision in ids:
        return ("decision", decision)
    return (str(action), str(message or ""))


def withdrawn_twice(entries: Sequence[Obj]) -> list[str]:
    """A digest rolled back or quarantined again for the same ModelDeployment with no release in
    between: the same intervention recorded twice."""
    out: list[str] = []
    open_: dict[str, str] = {}
    for e in entries:
        who = e.get("modelDeployment") or {}
        md = str(who.get("uid") or who.get("name"))
        if e.get("action") in WITHDRAWING:
            if md in open_:
                out.append(f"{e['action']} at {e.get('time')} repeats {open_[md]} for ModelDeployment {md}")
            open_[md] = f"{e['action']} at {e.get('time')}"
        elif e.get("action") == "Released":
            open_.pop(md, None)
    return out


def told(world: World) -> list[str]:
    """Invariant 4: a rollback or quarantine a live ModelDeployment recorded in a ModelRecord is in
    its status.history too (a pass lost between the two writes is recovered from the record)."""
    out = []
    for m in world.models:
        if (m.get("metadata") or {}).get("deletionTimestamp") or len(_history(m)) >= HISTORY_LIMIT:
            continue  # being retired, or its history capped
        in_history = {h.get("decision") for h in _history(m)}
        out += [
            f"ModelRecord {_name(r)}: {e['action']} {e['decision']} of ModelDeployment {_name(m)} "
            "is not in its status.history"
            for r in world.records
            for e in (r.get("spec") or {}).get("entries") or []
            if e.get("action") in WITHDRAWING
            and e.get("decision")
            and (e.get("modelDeployment") or {}).get("uid") == _uid(m)
            and e["decision"] not in in_history
        ]
    return out


def kept(world: World, before: Snapshot) -> list[str]:
    """Invariant 4: nothing in `before` was lost."""
    now = snapshot_of(world)
    out = [f"ModelApproval {n} (uid {u}) is lost" for n, u in sorted(before.approvals - now.approvals)]
    out += [f"ModelEvaluation {n} (uid {u}) is lost" for n, u in sorted(before.evaluations - now.evaluations)]
    out += [
        f"ModelRecord {n}: entry {k} is lost" for n, k in sorted(before.record_entries - now.record_entries)
    ]
    for uid, old in before.history.items():
        new = now.history.get(uid)
        if new is None or len(new) >= HISTORY_LIMIT:
            continue  # retired (its records hold the interventions), or capped
        out += [f"history entry {k} of ModelDeployment uid {uid} is lost" for k in old if k not in new]
    return out


def bookkeeping(world: World) -> list[str]:
    """Owner references, finalizers, status shape, the quarantine NetworkPolicy."""
    out = []
    owners = {_uid(o): o for o in (*world.models, *world.records)}
    for obj in (*world.deployments, *world.services, *world.network_policies, *world.replica_sets):
        kind = obj.get("kind") or "object"
        controllers = [o for o in obj["metadata"].get("ownerReferences") or [] if o.get("controller")]
        if kind == "ReplicaSet":
            if not any(o.get("kind") in ("Deployment", "ModelRecord") for o in controllers):
                out.append(f"ReplicaSet {_name(obj)} has no Deployment or ModelRecord controller")
            continue
        if len(controllers) != 1 or controllers[0].get("uid") not in owners:
            out.append(
                f"{kind} {_name(obj)}: controller {controllers} is not a live ModelDeployment/ModelRecord"
            )
    policies = {_name(p) for p in world.network_policies}
    for m in world.models:
        meta, status = m["metadata"], m.get("status") or {}
        if meta.get("deletionTimestamp"):
            out.append(
                f"ModelDeployment {_name(m)} is stuck in deletion (finalizers {meta.get('finalizers')})"
            )
            continue
        if FINALIZER not in (meta.get("finalizers") or []):
            out.append(f"ModelDeployment {_name(m)} lacks the finalizer {FINALIZER}")
        if status.get("observedGeneration") != meta.get("generation"):
            out.append(
                f"{_name(m)}: observedGeneration {status.get('observedGeneration')} "
                f"!= generation {meta.get('generation')}"
            )
        types = Counter(c.get("type") for c in status.get("conditions") or [])
        if "Ready" not in types:
            out.append(f"{_name(m)}: no Ready condition")
        out += [f"{_name(m)}: {n} {t} conditions" for t, n in types.items() if n > 1]
        if status.get("quarantinedAt") and f"{_name(m)}-quarantine" not in policies:
            out.append(f"{_name(m)} is quarantined without its NetworkPolicy {_name(m)}-quarantine")
    return out


# --- helpers -----------------------------------------------------------------------------------------


def served_digest(dep: Obj) -> str | None:
    """MODEL_DIGEST of the Deployment's first container (what the pods serve)."""
    containers = (((dep.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or []}
    return env.get("MODEL_DIGEST")


def withdrawn_at(world: World, model: Obj, digest: str | None) -> dt.datetime | None:
    """When `digest` was last withdrawn, by the model's status or a Withdrawn ModelRecord."""
    times = [
        r["time"]
        for r in (model.get("status") or {}).get("rejectedDigests") or []
        if r.get("digest") == digest
    ]
    for rec in world.records:
        spec = rec.get("spec") or {}
        if spec.get("state") == "Withdrawn" and (spec.get("model") or {}).get("digest") == digest:
            times.append(spec.get("withdrawnAt"))
    return max((_time(t) for t in times if t), default=None)


def selecting(world: World) -> list[Obj]:
    """The policies whose namespaceSelector.matchLabels the namespace's labels satisfy."""
    out = []
    for p in world.policies:
        labels = ((p.get("spec") or {}).get("namespaceSelector") or {}).get("matchLabels") or {}
        if all(world.namespace_labels.get(k) == v for k, v in labels.items()):
            out.append(p)
    return out


def _about(evidence: Obj, model: str | None, digest: str | None) -> bool:
    ref = (evidence.get("spec") or {}).get("model") or {}
    return bool(ref.get("name") == model and ref.get("digest") == digest)


def _expired(approval: Obj, now: dt.datetime) -> bool:
    until = (approval.get("spec") or {}).get("expiresAt")
    return bool(until) and _time(until) <= now


def _history(model: Obj) -> list[Obj]:
    return list((model.get("status") or {}).get("history") or [])


def _entry_key(entry: Obj) -> str:
    return str(entry.get("decision") or f"{entry.get('time')}/{entry.get('action')}")


def _time(text: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _created(obj: Obj) -> dt.datetime:
    return _time(obj["metadata"]["creationTimestamp"])


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _uid(obj: Obj) -> str:
    return str(obj["metadata"].get("uid"))
