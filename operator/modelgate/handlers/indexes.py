"""Kopf indexes: the operator's in-memory view of everything a gate decision reads.

Each index holds the latest raw object; a watch handler on the same resource then wakes the
reconcile loops that depend on it. Kopf updates indexes before it calls watch handlers for the
same event, so a woken loop reads the new state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import kopf
import pydantic
from kubernetes.client.exceptions import ApiException

from modelgate.act import keys
from modelgate.act import kube as act_kube
from modelgate.act.keys import KeyStore
from modelgate.act.policy_status import write_policy_status
from modelgate.api import selector
from modelgate.api.v1alpha1 import GROUP, VERSION, MetricTemplate
from modelgate.config import OperatorConfig
from modelgate.decide import seal
from modelgate.decide.policy import policy_status
from modelgate.decide.serving import (
    LABEL_DEPLOYMENT,
    controller_ref,
    controller_uid,
    essentials,
    without_version,
)
from modelgate.observe.packed import Packed, fingerprint
from modelgate.observe.relist import LAST_APPLIED
from modelgate.observe.snapshot import (
    IndexedEvidence,
    digest_summary,
    evidence_key,
    first,
    index_evidence,
    index_policy,
)
from modelgate.runtime.leading import Leadership
from modelgate.runtime.policyreports import Reporter
from modelgate.runtime.wakeups import Wakeups

OWNED = {LABEL_DEPLOYMENT: kopf.PRESENT}
log = logging.getLogger("modelgate.seals")


def _raw(body: kopf.Body) -> dict[str, Any]:
    """The object as decisions read it, a copy (Kopf's body is not ours to change). managedFields
    and kubectl's last-applied copy are dropped: the watch stream already drops them (observe/relist.py
    `slim`), this keeps a body that came another way as small. Owned Deployments and Services are kept
    smaller still: only their `essentials`."""
    meta = {k: v for k, v in body.get("metadata", {}).items() if k != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    raw = {k: body[k] for k in ("apiVersion", "kind", "spec", "status") if k in body}
    raw["metadata"] = meta
    return raw


@kopf.index(GROUP, VERSION, "modelapprovals", id="approvals")
@kopf.index(GROUP, VERSION, "modelevaluations", id="evaluations")
async def evidence_names(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """Which approvals and evaluations exist, by name, and under which key of the by-digest index:
    what spec references are checked against."""
    return {(namespace, name): (namespace, *evidence_key(body))}


@kopf.index(GROUP, VERSION, "modelapprovals", id="approvals_by_digest")
@kopf.index(GROUP, VERSION, "modelevaluations", id="evaluations_by_digest")
async def evidence(
    namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> dict[Any, Any]:
    """Every approval and evaluation by (namespace, spec.model.name, spec.model.digest), referenced
    or not; parsed and seal-checked once per event, every ModelDeployment deciding on that digest
    reads the result."""
    raw = _raw(body)
    store: KeyStore | None = memo.get("keys")
    if store is not None:
        for kid in seal.key_ids(raw) - set(store.keys.trust.keys):  # a key rotated in meanwhile
            await asyncio.to_thread(store.knows, kid)
    return {(namespace, *evidence_key(raw)): index_evidence(raw, store.keys if store else None)}


@kopf.index(GROUP, VERSION, "governancepolicies", id="policies")
async def policies(name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {name: index_policy(_raw(body))}


def indexed_here(labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> bool:
    """Which ModelDeployments this instance indexes: every one where the webhooks are served (the
    revision fill-in and the separation-of-duties check read them whatever their shard), else only
    those its --selector claims (docs/sharding.md). Kopf drops an object from an index once it stops
    matching, so a model relabelled into another shard leaves a webhook-less shard's indexes."""
    cfg: OperatorConfig = memo["config"]
    return bool(cfg.webhook_port) or selector.claims(cfg.selector, labels)


@kopf.index(GROUP, VERSION, "modeldeployments", id="modeldeployments", when=indexed_here)
async def modeldeployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """What each reconcile loop reads its model from (trimmed and packed: Kopf's own copy is let go)."""
    return {(namespace or "", name): Packed.of(_raw(body))}


@kopf.index(GROUP, VERSION, "modeldeployments", id="deployments_by_digest", when=indexed_here)
async def deployments_by_digest(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[Any, Any]:
    """Who set each digest, for the separation-of-duties check at approval time."""
    return {(namespace, (spec.get("model") or {}).get("digest")): digest_summary(name, spec)}


@kopf.index(GROUP, VERSION, "modelrecords", id="records")
async def records(namespace: str | None, body: kopf.Body, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
    """ModelRecords by (namespace, model name): the interventions that outlive a ModelDeployment."""
    meta = body.get("metadata") or {}
    kept = {"name": meta.get("name"), "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    if meta.get(
        "deletionTimestamp"
    ):  # the retention sweep lets go of a deleted record (runtime/retention.py)
        kept.update(
            deletionTimestamp=meta["deletionTimestamp"], finalizers=list(meta.get("finalizers") or [])
        )
    return {(namespace or "", (spec.get("model") or {}).get("name")): {"metadata": kept, "spec": dict(spec)}}


@kopf.index("", "v1", "namespaces", id="namespaces")
async def namespaces(name: str, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
    return {name: dict(labels)}


def owned_key(namespace: str | None, uid: str, kind: str) -> tuple[str, str, str]:
    """How the owned indexes are keyed: by the owning ModelDeployment's uid, never by name or label.
    An object that carries our labels but is not controlled by that uid is not the model's."""
    return (namespace or "", uid, kind)


def _owned(namespace: str | None, body: kopf.Body) -> dict[Any, Any]:
    uid = controller_uid(body)
    if uid is None:
        return {}  # labelled like ours, but no ModelDeployment controls it: not ours
    return {owned_key(namespace, uid, str(body.get("kind"))): Packed.of(essentials(body))}


@kopf.index("apps", "v1", "deployments", labels=OWNED, id="owned_deployments")
async def owned_deployments(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return _owned(namespace, body)


@kopf.index("", "v1", "services", labels=OWNED, id="owned_services")
async def owned_services(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return _owned(namespace, body)


# --- wake the reconcile loops that depend on a change ----------------------------------------------


@kopf.on.event(GROUP, VERSION, "modelapprovals", id="wake-approval")
async def wake_approval(
    namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Wake every ModelDeployment deciding on the approval's model and digest (all evidence counts)
    and every one that references it by name (its reference gate)."""
    wakeups: Wakeups = memo["wakeups"]
    wakeups.poke_ref("ModelApproval", namespace or "", name)
    wakeups.poke_evidence(namespace or "", *evidence_key(body))
    await bind_seal(_raw(body), memo, _indexed(kwargs["approvals_by_digest"], namespace, body))


@kopf.on.event(GROUP, VERSION, "modelevaluations", id="wake-evaluation")
async def wake_evaluation(
    namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any
) -> None:
    wakeups: Wakeups = memo["wakeups"]
    wakeups.poke_ref("ModelEvaluation", namespace or "", name)
    wakeups.poke_evidence(namespace or "", *evidence_key(body))
    await bind_seal(_raw(body), memo, _indexed(kwargs["evaluations_by_digest"], namespace, body))


def _indexed(index: Any, namespace: str | None, body: kopf.Body) -> IndexedEvidence | None:
    """The entry this very event left in the by-digest index (None if indexing it failed)."""
    kind, name = body.get("kind"), body.get("metadata", {}).get("name")
    entries = index.get((namespace, *evidence_key(body)), ())
    return next((e for e in entries if e.kind == kind and e.name == name), None)


PLURALS = {"ModelApproval": "modelapprovals", "ModelEvaluation": "modelevaluations"}
REBOUND = {
    "admission": "sealed %s %s/%s with key %s",
    "legacy": "re-sealed %s %s/%s with key %s: its HMAC seal from before the signatures verifies",
    "rotation": "re-sealed %s %s/%s with key %s, the current one (it was sealed with key %s)",
}


async def bind_seal(raw: dict[str, Any], memo: kopf.Memo, indexed: IndexedEvidence | None = None) -> None:
    """The leader writes the status seal of evidence whose admission seal holds (binding it to the
    object's name and uid), re-seals what an HMAC or an older key sealed; followers write nothing.
    `indexed`: the index entry of this same object and event, whose seals were checked there."""
    store: KeyStore | None = memo.get("keys")
    leadership: Leadership = memo["leadership"]
    if (
        store is None
        or not leadership.leading
        or not selector.cluster_duties(memo["config"].selector)  # another shard's (docs/sharding.md)
        or (raw.get("metadata") or {}).get("deletionTimestamp")
    ):
        return
    keys = store.keys
    state = seal.evidence(raw, keys) if indexed is None else indexed.rebind
    if state is None or state.rebind is None or keys.signer is None:
        return
    meta = raw["metadata"]
    sealed = seal.bind(keys.signer, raw, dt.datetime.now(dt.UTC))
    try:
        if not await act_kube.write_seal(
            PLURALS[str(raw.get("kind"))],
            meta["namespace"],
            meta["name"],
            meta["uid"],
            str(meta["resourceVersion"]),
            sealed,
        ):
            return
    except (ApiException, act_kube.Fenced) as e:  # the next event (or the start-up sweep) retries
        log.warning("could not seal %s %s/%s: %s", raw.get("kind"), meta["namespace"], meta["name"], e)
        return
    args = [raw.get("kind"), meta["namespace"], meta["name"], keys.signer.key_id]
    if state.rebind == "rotation":
        args.append(state.key_id)
    log.info(REBOUND[state.rebind], *args)


async def seal_all(memo: kopf.Memo) -> None:
    """At the start of leading: seal what arrived while nobody led, and re-seal what an HMAC sealed
    before the signatures (only where it verifies; each one logged). One list per kind, a page at a
    time, read as stored: a seal signs the spec exactly as the API server holds it. Only the
    namespaces this operator watches (--namespace): another operator seals the others."""
    for plural in PLURALS.values():
        pages = keys.pages(act_kube.client(), plural)
        while (page := await asyncio.to_thread(next, pages, None)) is not None:
            for raw in page:
                if memo["config"].watches(str((raw.get("metadata") or {}).get("namespace") or "")):
                    await bind_seal(dict(raw), memo)


@kopf.on.event(GROUP, VERSION, "governancepolicies", id="wake-policy")
async def wake_policy(
    type: str | None, name: str, body: kopf.Body, memo: kopf.Memo, logger: Any, **kwargs: Any
) -> None:
    """Wake every model when a policy's spec changes (its generation; not on the writes of its own
    status, which would wake every model twice per edit), and, on the leader, report on the policy
    whether the operator could read it (Valid). A follower keeps the policy's last body so that it
    writes the status if it becomes the leader (`write_policy_statuses`)."""
    wakeups: Wakeups = memo["wakeups"]
    generations: dict[str, object] = memo.setdefault("policy_generations", {})
    bodies: dict[str, dict[str, Any]] = memo.setdefault("policy_bodies", {})
    reporter: Reporter | None = memo.get("policy_reports")
    if type == "DELETED":
        generations.pop(name, None)
        bodies.pop(name, None)
        wakeups.poke_all()
        if reporter is not None:
            reporter.touch_all()
        return
    generation = body.get("metadata", {}).get("generation")
    if generations.get(name) != generation:
        generations[name] = generation
        wakeups.poke_all()
        if reporter is not None:
            reporter.touch_all()  # which policy asks for a card field: every namespace's reports
    bodies[name] = _raw(body)
    if memo["leadership"].leading and selector.cluster_duties(memo["config"].selector):
        await _write_policy_status(name, bodies[name], kwargs["policies"], logger)


async def _write_policy_status(name: str, body: dict[str, Any], policies: Any, logger: Any) -> None:
    policy = first(policies, name)
    if policy is None:
        return
    status = policy_status(policy, body, dt.datetime.now(dt.UTC))
    if status is None:
        return
    try:
        await write_policy_status(name, status)
    except ApiException as err:  # the next event (or the restart's listing) writes it again
        logger.warning(f"Failed to write status of GovernancePolicy {name}: status={err.status}")
        return
    if policy.invalid is not None:
        logger.warning(f"Found GovernancePolicy {name} invalid; it blocks what it selects: {policy.invalid}")


async def write_policy_statuses(memo: kopf.Memo, policies: Any) -> None:
    """The statuses a follower did not write: called when this replica becomes the leader."""
    log = logging.getLogger("modelgate.policies")
    if not selector.cluster_duties(memo["config"].selector):
        return  # another shard writes them (docs/sharding.md)
    for name, body in list(memo.get("policy_bodies", {}).items()):
        await _write_policy_status(name, body, policies, log)


@kopf.on.event("", "v1", "namespaces", id="wake-namespace")
async def wake_namespace(name: str, memo: kopf.Memo, **_: Any) -> None:
    wakeups: Wakeups = memo["wakeups"]
    wakeups.poke_namespace(name)
    reporter: Reporter | None = memo.get("policy_reports")
    if reporter is not None:
        reporter.touch(name)  # its labels select policies


@kopf.on.event("apps", "v1", "deployments", labels=OWNED, id="wake-owner-deployment")
@kopf.on.event("", "v1", "services", labels=OWNED, id="wake-owner-service")
async def wake_owner(namespace: str | None, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    """Wake the owner only when something a decision reads changed: the controller-manager rewrites
    a Deployment's status several times per rollout, mostly in fields no decision looks at. Reads
    the essentials the index has just stored (None once the object is gone)."""
    wakeups: Wakeups = memo["wakeups"]
    kind = str(body.get("kind"))
    ref = controller_ref(body)
    if ref is None:
        return  # not a model's: a conflicting name is retried by the model's loop with backoff
    index = kwargs["owned_deployments" if kind == "Deployment" else "owned_services"]
    current = first(index, owned_key(namespace, str(ref["uid"]), kind))
    owner = (namespace or "", str(ref.get("name")))
    wakeups.poke_if_changed(owner, kind, None if current is None else fingerprint(without_version(current)))


@kopf.on.event(GROUP, VERSION, "metrictemplates", id="templates")
async def templates(type: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Keep the parsed MetricTemplates for the monitor (it runs outside any handler)."""
    known: dict[str, MetricTemplate] = memo["templates"]
    if type == "DELETED":
        known.pop(name, None)
        return
    try:
        known[name] = MetricTemplate.model_validate(_raw(body))
    except pydantic.ValidationError:
        known.pop(name, None)
