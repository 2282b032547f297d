"""One gather -> decide -> act pass over a ModelDeployment (`reconcile_once`), and the loop that
runs it whenever the model's loop is woken (`run_loop`).

One loop per ModelDeployment (runtime/loops.py), started by its first watch event (handlers/
deployments.py), runs `reconcile_once` on the model as last indexed whenever it is woken: by its
own object, a referenced approval or evaluation, any policy, its namespace's labels, its owned
Deployment or Service, or the instant a counted piece of evidence expires.
The loop is level-based: it always computes the whole desired state from the current state, so a
restart at any moment converges to the same result without duplicate actions, and a steady state
writes nothing.

Read-your-writes: after a write, the loop waits until the watch has delivered that write (or a
newer version) before it decides again (`Watermarks`), so it never acts twice on a stale view.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from modelgate.act import audit, kube
from modelgate.act import records as act_records
from modelgate.act.keys import KeyStore
from modelgate.api import conditions as c
from modelgate.config import OperatorConfig
from modelgate.decide import retell
from modelgate.decide.conditions import rfc3339
from modelgate.decide.ids import decision_id
from modelgate.decide.objects import APPLIED_HASH
from modelgate.decide.plan import plan
from modelgate.decide.records import updates_for
from modelgate.decide.serving import Owner, quarantine_network_policy
from modelgate.decide.types import Decision, Observed, Plan, Refusal
from modelgate.observe import metrics
from modelgate.observe.monitor import Monitor
from modelgate.observe.snapshot import first, relevant_digests, snapshot
from modelgate.runtime import retire as runtime_retire
from modelgate.runtime.loops import Loops, Turn
from modelgate.runtime.wakeups import Key, Wakeups, evidence_ref

log = logging.getLogger("modelgate.reconcile")
RESYNC = 300.0
"""Upper bound on the time between two reconciles of an idle ModelDeployment (seconds)."""
CATCH_UP = 10.0
"""How long to wait for the watch to deliver our own write before deciding anyway (seconds)."""


def _rv(obj: Mapping[str, Any] | None) -> int:
    # resourceVersions are opaque to clients in general; with etcd they are its revision numbers,
    # which only grow. We compare them only to know whether the watch has caught up with a write.
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Watermarks:
    """State one reconcile loop keeps between runs: the versions its own writes produced, the
    newest monitoring round it took into account, and the serving-object writes the API server
    refused (facts no watch shows, which the next plan must know: it reports them)."""

    def __init__(self) -> None:
        self.min_rv: dict[str, int] = {}
        self.written_at = 0.0
        self.readings_seq = 0
        """The newest monitoring round already taken into account."""
        self.retold = False
        """Whether this loop told the model's recent decisions again (decide/retell.py)."""
        self.refusals: dict[str, Refusal] = {}
        """Kind -> the API server's refusal of the last write of that serving object."""

    def outcome(self, obj: Mapping[str, Any], result: object) -> None:
        """Remember whether the API server refused the write of serving object `obj`."""
        if isinstance(result, kube.Refused):
            annotations = obj["metadata"].get("annotations") or {}
            self.refusals[obj["kind"]] = Refusal(str(annotations.get(APPLIED_HASH)), result.message)
        elif isinstance(result, str):
            self.refusals.pop(obj["kind"], None)

    def wrote(self, what: str, rv: str) -> None:
        self.min_rv[what] = int(rv)
        self.written_at = time.monotonic()

    def caught_up(self, what: str, obj: Mapping[str, Any] | None) -> bool:
        want = self.min_rv.get(what, 0)
        if want and time.monotonic() - self.written_at > CATCH_UP:
            return True  # the write was overtaken (e.g. the object was deleted): decide from what is seen
        return want == 0 or (obj is not None and _rv(obj) >= want)


@dataclass(frozen=True)
class Collaborators:
    """The operator-wide collaborators every reconcile loop shares (kept in Kopf's memo)."""

    config: OperatorConfig
    wakeups: Wakeups
    loops: Loops
    monitor: Monitor
    keys: KeyStore | None = None
    """The signing keys: decision records are sealed with the current one."""

    @classmethod
    def of(cls, memo: Mapping[str, Any]) -> Collaborators:
        return cls(memo["config"], memo["wakeups"], memo["loops"], memo["monitor"], memo.get("keys"))


async def reconcile_once(
    body: Mapping[str, Any],
    indexes: Mapping[str, Any],
    svc: Collaborators,
    loop: Watermarks,
    now: dt.datetime,
    turn: Turn | None = None,
) -> dt.datetime | None:
    """One gather -> decide -> act pass; returns when to run again at the latest. The pass's `turn`
    is given back once it has decided (loops.PASSES)."""
    meta = body.get("metadata") or {}
    ns, name = str(meta.get("namespace")), str(meta.get("name"))
    readings = svc.monitor.take((ns, name), loop.readings_seq)
    obs = _observe(body, indexes, svc, loop, readings)
    model_records = list(indexes["records"].get((ns, obs.deployment.spec.model.name)) or ())
    if not _caught_up(loop, body, obs, model_records):
        return now + dt.timedelta(seconds=CATCH_UP)  # a watch event with our write will wake us
    loop.min_rv.clear()
    p = plan(obs, now)
    model, existing = obs.deployment.spec.model.name, (obs.owned_deployment, obs.owned_service)
    # Neither the snapshot nor the turn is held while the writes wait: at 10,000 models thousands
    # of passes waited seconds each for the API server's Service applies.
    del obs
    if turn is not None:
        turn.release()
    refused = await _write(body, model, existing, p, loop, model_records)
    await _quarantine(body, p)
    if readings is not None:
        loop.readings_seq = readings.seq
        metrics.VERDICT_DELAY_SECONDS.observe((dt.datetime.now(dt.UTC) - readings.at).total_seconds())
        svc.monitor.counted((ns, name), readings, used=bool(p.verdicts))
    for verdict in p.verdicts:
        metrics.CHECKS.labels(verdict=verdict).inc()
    svc.monitor.watch((ns, name), p.watch)
    checks = p.watch.checks if p.watch is not None else ()
    metrics.MODELS.observe(ns, name, metrics.model_facts(p.status, checks, p.evidence_expires_at))
    if not loop.retold:  # this process's first pass: tell what a stopped one may not have told
        loop.retold = True
        await audit.retell(body, retell.recent((body.get("status") or {}).get("history") or [], now))
    if refused:
        # Raised last (run_loop backs off): a refusal lasts until the spec changes, and must hold
        # up neither a quarantine's pod labels and NetworkPolicy nor the monitoring of what serves.
        raise refused[0]
    return p.requeue_at


def _observe(
    body: Mapping[str, Any], indexes: Mapping[str, Any], svc: Collaborators, loop: Watermarks, readings: Any
) -> Observed:
    """Gather: what wakes the model from now on, and the snapshot it is decided from."""
    meta = body.get("metadata") or {}
    ns, name = str(meta.get("namespace")), str(meta.get("name"))
    model = str((body["spec"].get("model") or {}).get("name") or "")
    svc.wakeups.set_refs(
        (ns, name),
        {("ModelApproval", ns, r["name"]) for r in body["spec"].get("approvals") or []}
        | {("ModelEvaluation", ns, r["name"]) for r in body["spec"].get("evaluations") or []}
        | {evidence_ref(ns, model, d) for d in relevant_digests(body)},
    )
    return snapshot(
        body,
        approvals=indexes["approvals"],
        evaluations=indexes["evaluations"],
        approvals_by_digest=indexes["approvals_by_digest"],
        evaluations_by_digest=indexes["evaluations_by_digest"],
        policies=indexes["policies"],
        namespaces=indexes["namespaces"],
        owned_deployments=indexes["owned_deployments"],
        owned_services=indexes["owned_services"],
        allow_no_policy=svc.config.allow_no_policy,
        readings=readings,
        records=indexes["records"],
        refusals=dict(loop.refusals),
        signer=svc.keys.keys.signer if svc.keys is not None else None,
    )


def _caught_up(
    loop: Watermarks, body: Mapping[str, Any], obs: Observed, records: list[Mapping[str, Any]]
) -> bool:
    """Whether the watch has delivered every write of the previous pass (read-your-writes)."""
    newest_record = {"metadata": {"resourceVersion": max(map(_rv, records), default=0)}}
    return (
        loop.caught_up("ModelRecord", newest_record)
        and loop.caught_up("status", body)
        and loop.caught_up("Deployment", obs.owned_deployment)
        and loop.caught_up("Service", obs.owned_service)
    )


async def _write(
    body: Mapping[str, Any],
    model: str,
    existing: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None],
    p: Plan,
    loop: Watermarks,
    records: list[Mapping[str, Any]],
) -> list[kube.Refused]:
    """Act: the records, then the status and serving objects together (`existing`: the owned
    Deployment and Service as observed), then tell of the decisions. Raises what failed, except
    the serving objects the API server refused (returned)."""
    meta = body.get("metadata") or {}
    ns, name = str(meta.get("namespace")), str(meta.get("name"))
    # Records first: an intervention must outlive this ModelDeployment even if the status write fails.
    rejected = p.status.get("rejectedDigests") or []
    updates = updates_for(p.decisions, rejected, model, name, meta.get("uid"), records)
    if updates and (rv := await act_records.write(ns, updates)) is not None:
        loop.wrote("ModelRecord", rv)
    # The three writes are independent: issue them together (one round trip instead of three).
    writes: dict[str, asyncio.Future[str | None]] = {
        "status": asyncio.ensure_future(kube.write_status(ns, name, body.get("status") or {}, p.status))
    }
    owned = {obj["kind"]: obj for obj in (p.deployment, p.service) if obj is not None}
    for obj, stored in zip((p.deployment, p.service), existing, strict=True):
        if obj is not None:
            writes[obj["kind"]] = asyncio.ensure_future(kube.write_owned(obj, stored))
    try:
        status = (await asyncio.gather(writes["status"], return_exceptions=True))[0]
        if not isinstance(status, BaseException):
            # Events and audit lines once the status holds the decisions (not after the serving
            # objects too: a Service can take the API server seconds at 10,000 of them): a pass
            # killed or failing before that decides again, and may decide otherwise, so nothing is
            # told of it. A write that reached the server but raised is retried under the same ids
            # (act/audit.py).
            for d in p.decisions:
                audit.record(body, d)
                metrics.DECISIONS.labels(action=d.action).inc()
        results = await asyncio.gather(*writes.values(), return_exceptions=True)
    except BaseException:  # cancelled (a lost leadership): none of the writes goes on unawaited
        for write in writes.values():
            write.cancel()
        raise
    for what, res in zip(writes, results, strict=True):
        if isinstance(res, str):
            loop.wrote(what, res)
        if what in owned:
            loop.outcome(owned[what], res)
    for res in results:
        if isinstance(res, BaseException) and not isinstance(res, kube.Refused):
            raise res
    return [res for res in results if isinstance(res, kube.Refused)]


async def _quarantine(body: Mapping[str, Any], p: Plan) -> None:
    """Cut ingress to the quarantined pods at the quarantine, restore it at the release, and while
    the quarantine lasts mark the pods made since (a pod that died is replaced unmarked by its
    ReplicaSet, and the NetworkPolicy selects the mark) and put the NetworkPolicy back if someone
    removed it. Only pods without the mark are written."""
    if p.label_pods is None and not p.status.get("quarantinedAt"):
        return
    meta = body.get("metadata") or {}
    ns, name = str(meta.get("namespace")), str(meta.get("name"))
    present = p.label_pods is not False
    await kube.label_pods(ns, name, present)
    owner = Owner(str(body.get("apiVersion")), str(body.get("kind")), name, ns, str(meta.get("uid")))
    await kube.quarantine_policy(quarantine_network_policy(owner), present, ensure_only=p.label_pods is None)


INDEXES = (
    "modeldeployments",
    "approvals",
    "evaluations",
    "approvals_by_digest",
    "evaluations_by_digest",
    "policies",
    "namespaces",
    "owned_deployments",
    "owned_services",
    "records",
)
"""The Kopf indexes a reconcile reads (live views: they stay current for the loop's whole life)."""


async def run_loop(
    key: Key,
    indexes: Mapping[str, Any],
    svc: Collaborators,
    wake: asyncio.Event,
    stopping: asyncio.Event,
) -> None:
    """Reconcile whenever woken, until stopped: one pass at a time, errors retried with backoff."""
    namespace, name = key
    loop = Watermarks()
    failures = 0
    retired: object = None
    """The uid of the object this loop retired: a model is retired once, even when a wake-up comes
    before the watch has delivered the finalizer's removal."""
    try:
        while not stopping.is_set():
            wake.clear()
            body = first(indexes["modeldeployments"], key)
            if body is None:
                return  # deleted: the watch handler stops this loop
            try:
                async with svc.loops.turn() as turn:  # a bounded number decide at once: loops.PASSES
                    started = time.perf_counter()  # the pass, not its wait for a turn
                    body = first(indexes["modeldeployments"], key) or body  # the newest after the wait
                    now = dt.datetime.now(dt.UTC)
                    meta = body.get("metadata") or {}
                    if meta.get("deletionTimestamp"):
                        # Being deleted: retire it (once), then let it go; never reconcile it again.
                        if runtime_retire.retiring(body):
                            if retired != meta.get("uid"):
                                signer = svc.keys.keys.signer if svc.keys is not None else None
                                await runtime_retire.retire(body, namespace, name, indexes["records"], signer)
                                retired = meta.get("uid")
                            await runtime_retire.release(body)
                        until = None
                    else:
                        until = await reconcile_once(body, indexes, svc, loop, now, turn)
                failures = 0
                delay = (
                    RESYNC if until is None else min(RESYNC, max(0.0, (until - now).total_seconds()) + 0.5)
                )
            except kube.Conflict as e:
                metrics.RECONCILE_ERRORS.labels(error="conflict").inc()
                # Usually someone wrote in between and the watch wakes us; if it keeps happening (an
                # object of that name that modelgate does not own), back off instead of spinning.
                failures += 1
                if isinstance(e, kube.NotOwned) and failures == 1:
                    _report_not_owned(body, str(e))
                (log.info if failures < 3 else log.warning)(
                    f"Deferred ModelDeployment {namespace}/{name} after a write conflict: {e}; "
                    f"attempt={failures}"
                )
                loop.min_rv.clear()
                delay = min(60.0, 0.5 * 2.0**failures)
            except kube.Refused as e:
                metrics.RECONCILE_ERRORS.labels(error="refused").inc()
                # Told in status and once per refusal as an Event by the next plan; a retry meets the
                # same answer until the spec changes (whose watch event wakes the loop at once). The
                # status write went through: the next pass waits for it as after any pass.
                failures += 1
                (log.warning if failures == 1 else log.info)(
                    f"Refused serving object of ModelDeployment {namespace}/{name}: {e}; attempt={failures}"
                )
                delay = min(60.0, 0.5 * 2.0**failures)
            except pydantic.ValidationError as e:
                metrics.RECONCILE_ERRORS.labels(error="invalid").inc()
                log.error(f"Could not parse ModelDeployment {namespace}/{name}: {e}")
                delay = RESYNC
            except Exception as e:
                failures += 1
                what = f"ModelDeployment {namespace}/{name}"
                if kube.namespace_terminating(e):
                    log.info(f"Deferred {what}: its namespace is being deleted")
                else:
                    metrics.RECONCILE_ERRORS.labels(error="failed").inc()
                    log.exception(f"Reconcile of {what} failed; attempt={failures}")
                loop.min_rv.clear()
                delay = min(60.0, 2.0**failures)
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
            # Not held while waiting: the decoded body is ~19 KB of Python objects (observe/packed.py),
            # 190 MB across 10,000 idle loops; the next pass decodes it afresh from the index.
            body = meta = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
    finally:
        svc.monitor.watch(key, None)
        metrics.MODELS.forget(namespace, name)  # deleted, or no longer this replica's to report


def _report_not_owned(body: Mapping[str, Any], message: str) -> None:
    """Say once per streak of conflicts that a serving object of the model's name is someone else's."""
    decision = Decision(
        action=c.ACTION_NOT_OWNED,
        reason=c.ACTION_NOT_OWNED,
        message=message,
        time=rfc3339(dt.datetime.now(dt.UTC)),
        warning=True,
        id=decision_id((body.get("metadata") or {}).get("uid"), c.ACTION_NOT_OWNED, message),
    )
    audit.record(body, decision)
    metrics.DECISIONS.labels(action=decision.action).inc()
