"""One reconcile pass (runtime/reconcile.py `reconcile_once`) against fake indexes and a fake act layer.

The indexes are plain dicts shaped like Kopf's (key -> list of values, what the index handlers in
handlers/indexes.py store); the act functions the pass calls are replaced by fakes that record each
write and answer with a new resourceVersion, as the API server would. `Cluster` plays the watch:
`deliver()` puts the written status and serving objects back into the indexes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from modelgate.act import audit, kube
from modelgate.act import records as act_records
from modelgate.api import conditions as c
from modelgate.config import OperatorConfig
from modelgate.decide.serving import essentials
from modelgate.decide.types import Decision
from modelgate.observe.monitor import Monitor
from modelgate.observe.snapshot import evidence_key, index_evidence
from modelgate.runtime.loops import Loops
from modelgate.runtime.reconcile import CATCH_UP, Collaborators, Watermarks, reconcile_once
from modelgate.runtime.wakeups import Wakeups
from tests.unit.factories import NAMESPACE, NOW, approval, body_of, model, policy, rolled_out, stored

KEY = (NAMESPACE, "fraud-detector")


def wire(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    return out


@dataclass
class Cluster:
    """The API server as far as one pass sees it: the indexes it reads, and the writes it made."""

    body: dict[str, Any]
    indexes: dict[str, dict[Any, list[Any]]]
    writes: list[tuple[str, Any]] = field(default_factory=list)
    written: dict[str, tuple[Any, str]] = field(default_factory=dict)
    """What each kind's last write wrote, and the resourceVersion it produced."""
    versions: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    retold: list[str] = field(default_factory=list)
    """The actions of the decisions a loop's first pass told again (act/audit.py `retell`)."""

    def next_rv(self) -> str:
        return str(next(self.versions))

    def deliver(self, *kinds: str) -> None:
        """The watch delivers the last write of each of `kinds` (default: every kind written)."""
        uid = self.body["metadata"]["uid"]
        for kind in kinds or tuple(self.written):
            obj, rv = self.written[kind]
            if kind == "status":
                self.body = {**self.body, "status": obj, "metadata": {**self.body["metadata"]}}
                self.body["metadata"]["resourceVersion"] = rv
                self.indexes["modeldeployments"][KEY] = [self.body]
                continue
            back = rolled_out(obj) if kind == "Deployment" else stored(obj)
            back["metadata"]["resourceVersion"] = rv
            index = "owned_deployments" if kind == "Deployment" else "owned_services"
            self.indexes[index][(NAMESPACE, uid, kind)] = [essentials(back)]


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    md = model()
    body = body_of(md)
    body["metadata"]["resourceVersion"] = "1"
    approvals = [approval()]
    indexes: dict[str, dict[Any, list[Any]]] = {
        "modeldeployments": {KEY: [body]},
        "approvals": {(NAMESPACE, a.name): [(NAMESPACE, *evidence_key(wire(a)))] for a in approvals},
        "evaluations": {},
        "approvals_by_digest": {
            (NAMESPACE, *evidence_key(wire(a))): [index_evidence(wire(a), None)] for a in approvals
        },
        "evaluations_by_digest": {},
        "policies": {"prod-governance": [policy()]},
        "namespaces": {NAMESPACE: [{}]},
        "owned_deployments": {},
        "owned_services": {},
        "records": {},
    }
    fake = Cluster(body, indexes)

    async def write_status(ns: str, name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
        if not kube.status_patch(old, new):
            return None  # as the real one: an unchanged status is not written
        rv = fake.next_rv()
        fake.writes.append(("status", dict(new)))
        fake.written["status"] = (dict(new), rv)
        return rv

    async def write_owned(obj: dict[str, Any], existing: Mapping[str, Any] | None) -> str:
        rv = fake.next_rv()
        fake.writes.append((obj["kind"], existing))
        fake.written[obj["kind"]] = (obj, rv)
        return rv

    async def label_pods(ns: str, deployment: str, quarantined: bool) -> int:
        fake.writes.append(("pod labels", quarantined))
        return 0

    async def quarantine_policy(
        policy: Mapping[str, Any], present: bool, *, ensure_only: bool = False
    ) -> bool:
        fake.writes.append(("NetworkPolicy", present))
        return True

    async def write_records(ns: str, updates: Any) -> str | None:
        fake.writes.append(("ModelRecord", updates))
        return fake.next_rv()

    def record(body: Mapping[str, Any], decision: Decision) -> None:
        fake.writes.append(("Event", decision.action))

    async def retell(body: Mapping[str, Any], decisions: Iterable[Decision]) -> None:
        fake.retold.extend(d.action for d in decisions)

    monkeypatch.setattr(kube, "write_status", write_status)
    monkeypatch.setattr(kube, "write_owned", write_owned)
    monkeypatch.setattr(kube, "label_pods", label_pods)
    monkeypatch.setattr(kube, "quarantine_policy", quarantine_policy)
    monkeypatch.setattr(act_records, "write", write_records)
    monkeypatch.setattr(audit, "record", record)
    monkeypatch.setattr(audit, "retell", retell)
    return fake


def collaborators() -> Collaborators:
    wakeups = Wakeups()
    return Collaborators(OperatorConfig(), wakeups, Loops(wakeups), Monitor(None, wakeups, dict))


def run(cluster: Cluster, loop: Watermarks, now: dt.datetime = NOW) -> dt.datetime | None:
    return asyncio.run(reconcile_once(cluster.body, cluster.indexes, collaborators(), loop, now))


def kinds(cluster: Cluster) -> list[str]:
    return [kind for kind, _ in cluster.writes]


def test_first_pass_writes_status_deployment_and_service_and_records_the_admission(cluster: Cluster) -> None:
    run(cluster, Watermarks())

    assert sorted(kinds(cluster)) == sorted(["Event", "status", "Deployment", "Service"])
    assert ("Event", c.ACTION_ADMITTED) in cluster.writes
    assert dict(cluster.writes)["Deployment"] is None  # created, not replaced
    status = cluster.written["status"][0]
    assert status["servingRevision"]["digest"] == cluster.body["spec"]["model"]["digest"]


def test_a_pass_over_its_own_delivered_results_writes_nothing(cluster: Cluster) -> None:
    loop = Watermarks()
    run(cluster, loop)
    # The stored Deployment and Service are what the pass wanted: not written again. Only the status
    # moves once more, to report the rollout (the Deployment now exists, every replica ready) ...
    cluster.deliver()
    cluster.writes.clear()
    run(cluster, loop)
    assert kinds(cluster) == ["status"]
    assert cluster.written["status"][0]["phase"] == "Serving"
    # ... and from then on, at rest, a pass writes nothing at all.
    cluster.deliver()
    for _ in range(2):
        cluster.writes.clear()
        run(cluster, loop)
        assert cluster.writes == []


def test_the_first_pass_of_a_process_tells_the_recent_stored_decisions_again_and_later_ones_do_not(
    cluster: Cluster,
) -> None:
    run(cluster, Watermarks())  # the first process: nothing stored to tell again
    assert cluster.retold == []
    cluster.deliver()
    restarted = Watermarks()  # a new process (a restart, a new leader), a minute later
    run(cluster, restarted, NOW + dt.timedelta(minutes=1))
    assert cluster.retold == [c.ACTION_ADMITTED]
    cluster.deliver()
    run(cluster, restarted, NOW + dt.timedelta(minutes=1))
    assert cluster.retold == [c.ACTION_ADMITTED]
    run(cluster, Watermarks(), NOW + dt.timedelta(hours=1))  # an hour later: told by a process that ran on
    assert cluster.retold == [c.ACTION_ADMITTED]


@pytest.mark.parametrize("undelivered", ["status", "Deployment", "Service"])
def test_a_pass_whose_own_write_the_watch_has_not_delivered_waits_instead_of_deciding(
    cluster: Cluster, undelivered: str
) -> None:
    loop = Watermarks()
    run(cluster, loop)
    cluster.deliver(*(kind for kind in ("status", "Deployment", "Service") if kind != undelivered))
    cluster.writes.clear()

    again = run(cluster, loop)

    assert cluster.writes == []  # it decided nothing on the stale view
    assert again == NOW + dt.timedelta(seconds=CATCH_UP)  # the delivering watch event wakes it sooner
    # Once the watch delivers the write, the next pass decides again (the rollout is reported).
    cluster.deliver(undelivered)
    run(cluster, loop)
    assert kinds(cluster) == ["status"]
    assert cluster.written["status"][0]["phase"] == "Serving"


def test_a_failed_status_write_tells_nothing_and_the_retry_tells_the_same_decision_once(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_status = kube.write_status

    async def failing(ns: str, name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
        raise ConnectionResetError("the API server went away")

    monkeypatch.setattr(kube, "write_status", failing)
    with pytest.raises(ConnectionResetError):
        run(cluster, Watermarks())
    assert "Event" not in kinds(cluster)  # nothing told of a decision the status does not hold

    monkeypatch.setattr(kube, "write_status", write_status)
    run(cluster, Watermarks(), NOW + dt.timedelta(seconds=5))
    history = cluster.written["status"][0]["history"]
    assert [k for k in kinds(cluster) if k == "Event"] == ["Event"]
    assert [h["action"] for h in history] == [c.ACTION_ADMITTED]


def hold_services(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Service writes wait until the returned event is set (a slow API server); others go through."""
    fast = kube.write_owned
    may_finish = asyncio.Event()

    async def slow_service(obj: dict[str, Any], existing: Mapping[str, Any] | None) -> str:
        if obj["kind"] == "Service":
            await may_finish.wait()
        return await fast(obj, existing)

    monkeypatch.setattr(kube, "write_owned", slow_service)
    return may_finish


def test_a_pass_gives_its_turn_back_once_it_has_decided_and_writes_without_it(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one turn for everyone, a pass whose Service write hangs (a slow API server) no longer
    keeps the next model from deciding: the turn is given back before the writes (loops.PASSES)."""
    wakeups = Wakeups()
    svc = Collaborators(OperatorConfig(), wakeups, Loops(wakeups, passes=1), Monitor(None, wakeups, dict))

    async def scenario() -> None:
        service_may_finish = hold_services(monkeypatch)
        turn = svc.loops.turn()
        await turn.__aenter__()
        one = reconcile_once(cluster.body, cluster.indexes, svc, Watermarks(), NOW, turn)
        writing = asyncio.create_task(one)
        await asyncio.wait_for(svc.loops.passes.acquire(), 10)  # the next pass's turn, while this one writes
        assert not writing.done()
        assert "status" in kinds(cluster) and "Service" not in kinds(cluster)
        service_may_finish.set()
        await asyncio.wait_for(writing, 10)
        await turn.__aexit__(None, None, None)  # given back already: not given back twice
        assert svc.loops.passes.locked()  # the one turn, held by the second taker only

    asyncio.run(scenario())
    assert sorted(kinds(cluster)) == sorted(["Event", "status", "Deployment", "Service"])


def test_the_decisions_are_told_once_the_status_holds_them_not_after_the_serving_objects(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        service_may_finish = hold_services(monkeypatch)
        writing = asyncio.create_task(
            reconcile_once(cluster.body, cluster.indexes, collaborators(), Watermarks(), NOW)
        )
        async with asyncio.timeout(10):
            while ("Event", c.ACTION_ADMITTED) not in cluster.writes:
                await asyncio.sleep(0)
        assert "Service" not in kinds(cluster) and not writing.done()
        service_may_finish.set()
        await asyncio.wait_for(writing, 10)

    asyncio.run(scenario())
    assert kinds(cluster).count("Event") == 1


def test_a_pass_cancelled_while_it_writes_cancels_every_write_it_issued(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost leadership cancels every pass (runtime/loops.py `cancel_all`): the writes it had
    issued are cancelled with it, none goes on unawaited."""
    started: list[str] = []
    cancelled: list[str] = []

    async def hanging(obj: dict[str, Any], existing: Mapping[str, Any] | None) -> str:
        started.append(obj["kind"])
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(obj["kind"])
            raise
        return "never"

    async def hanging_status(ns: str, name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
        return await hanging({"kind": "status"}, None)

    async def scenario() -> None:
        monkeypatch.setattr(kube, "write_owned", hanging)
        monkeypatch.setattr(kube, "write_status", hanging_status)
        writing = asyncio.create_task(
            reconcile_once(cluster.body, cluster.indexes, collaborators(), Watermarks(), NOW)
        )
        async with asyncio.timeout(10):
            while len(started) < 3:
                await asyncio.sleep(0)
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        for _ in range(3):
            await asyncio.sleep(0)
        # Checked here: asyncio.run would cancel whatever is left when the scenario returns.
        assert sorted(cancelled) == ["Deployment", "Service", "status"]

    asyncio.run(scenario())
    assert "Event" not in kinds(cluster)
