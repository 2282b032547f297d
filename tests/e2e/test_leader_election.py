"""Two operator replicas with leader election, on a control plane of their own (the session operator
must not run there), proven on the real API server and its audit log:

- exactly one replica writes: the Lease names it, and the audit log shows no create, update, patch
  or delete at all from the other (each replica's requests carry its identity in the user agent);
- `kill -9` of the leader in the middle of admitting 50 models: the other takes over, every model
  ends Serving, and no decision is recorded twice (history entries and Events per model);
- an approval created while nobody leads is admitted once a leader holds the Lease;
- a leader whose Lease is taken from it (`kubectl replace`) stops and exits non-zero, and writes
  nothing after the replace.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from hack.launch import client_ca_args, free_port

from tests.support import manifests as m
from tests.support.clusters import ROOT, audited_cluster
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess, run_operator

pytestmark = pytest.mark.integration

LEASE_NS, LEASE = "modelgate-system", "modelgate-leader"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
TIMINGS = (
    "--leader-election-lease-duration",
    "6",
    "--leader-election-renew-deadline",
    "4",
    "--leader-election-retry-period",
    "1",
)
"""Shorter than the defaults (15/10/2) to keep the tests quick, with the same proportions of margin."""


@pytest.fixture(scope="module")
def ha_cluster() -> Iterator[Cluster]:
    with audited_cluster("ha") as cluster:  # the audit log tells who wrote what
        yield cluster


@pytest.fixture
def ns(ha_cluster: Cluster) -> Iterator[str]:
    with m.governed_namespace(ha_cluster.kubectl, "h") as name:
        yield name


class Replicas:
    """Operator replicas started with --leader-elect and the same webhook port; they share the
    webhook certificate through its Secret, as replicas behind a Service do in a cluster. The port
    is a free one: the default (9443) may be held by another operator whose certificate comes from
    another CA."""

    def __init__(self, cluster: Cluster, logs: Path, stack: ExitStack) -> None:
        self.cluster, self.logs, self.stack = cluster, logs, stack
        self.run = uuid.uuid4().hex[:4]
        self.webhook_port = free_port()
        self.procs: dict[str, OperatorProcess] = {}

    def start(self, letter: str) -> str:
        identity = f"ha-{self.run}-{letter}"
        args = (
            "--leader-elect",
            *TIMINGS,
            "--namespace",
            "h-*",
            "--webhook-port",
            str(self.webhook_port),
            *client_ca_args(self.cluster.kubeconfig),
        )
        log = self.logs / f"{identity}.log"
        op = self.stack.enter_context(
            run_operator(self.cluster.kubeconfig, log, *args, env={"POD_NAME": identity})
        )
        self.procs[identity] = op
        return identity

    def kill(self, identity: str) -> None:
        proc = self.procs[identity].proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def replicas(ha_cluster: Cluster, tmp_path: Path) -> Iterator[Replicas]:
    logs = ROOT / ".cache" / "test-logs" / "leader-election"
    logs.mkdir(parents=True, exist_ok=True)
    release = ("delete", "lease", LEASE, "-n", LEASE_NS, "--ignore-not-found")
    ha_cluster.kubectl(*release)  # each test starts from no leader (a test may leave an intruder)
    with ExitStack() as stack:
        yield Replicas(ha_cluster, logs, stack)
    ha_cluster.kubectl(*release)


def holder(kubectl: Kubectl) -> str | None:
    lease = kubectl.get("lease", LEASE, LEASE_NS)
    return None if lease is None else lease["spec"].get("holderIdentity")


def leads(kubectl: Kubectl, identity: str) -> bool:
    return holder(kubectl) == identity


def gauge(op: OperatorProcess) -> float:
    line = next(ln for ln in op.metrics().splitlines() if ln.startswith("modelgate_leader "))
    return float(line.split()[-1])


def audit_log(cluster: Cluster) -> list[dict[str, Any]]:
    path = Path(cluster.kubeconfig).parent / "logs" / "audit.log"
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def writes_by(entries: list[dict[str, Any]], identity: str, after: str = "") -> list[str]:
    """The writes (verb resource name) whose user agent names `identity`, received after `after`."""
    return [
        f"{e['verb']} {e.get('objectRef', {}).get('resource')} {e.get('objectRef', {}).get('name')}"
        for e in entries
        if f"({identity})" in e.get("userAgent", "")
        and e.get("verb") in WRITES
        and e.get("requestReceivedTimestamp", "") > after
    ]


def requests_by(entries: list[dict[str, Any]], identity: str) -> int:
    return sum(1 for e in entries if f"({identity})" in e.get("userAgent", ""))


def serving(kubectl: Kubectl, ns: str) -> dict[str, dict[str, Any]]:
    items = kubectl.json("get", "mdep", "-n", ns)["items"]
    return {i["metadata"]["name"]: i for i in items if (i.get("status") or {}).get("phase") == "Serving"}


def evidence(ns: str, names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    approvals = [m.approval(f"{n}-ok", ns, n) for n in names]
    evaluations = [m.evaluation(f"{n}-eval", ns, n) for n in names]
    return _list(approvals), _list(evaluations)


def _list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items}


def approve_all(kubectl: Kubectl, ns: str, names: list[str]) -> None:
    approvals, evaluations = evidence(ns, names)
    kubectl.apply(approvals, as_user="bob", as_groups=("ethics-board",))
    kubectl.apply(evaluations, as_user="erin", as_groups=m.EVALUATORS)


def deploy_all(kubectl: Kubectl, ns: str, names: list[str]) -> None:
    models = [
        m.model_deployment(n, ns, replicas=1, approvals=(f"{n}-ok",), evaluations=(f"{n}-eval",))
        for n in names
    ]
    kubectl.apply(_list(models), as_user="alice", as_groups=m.DEPLOYERS)


def admitted(kubectl: Kubectl, ns: str, name: str) -> bool:
    status = (kubectl.get("mdep", name, ns) or {}).get("status") or {}
    return any(h.get("action") == "Admitted" for h in status.get("history") or [])


def decisions(kubectl: Kubectl, ns: str) -> Counter[tuple[str, str]]:
    """(model, reason) -> how many times that decision was posted as an Event."""
    items = kubectl.json("get", "events", "-n", ns)["items"]
    out: Counter[tuple[str, str]] = Counter()
    for e in items:
        if e["involvedObject"]["kind"] == "ModelDeployment":
            out[(e["involvedObject"]["name"], e["reason"])] += int(e.get("count") or 1)
    return out


def start_pair(replicas: Replicas) -> tuple[str, str]:
    """The first replica takes the Lease before the second starts (the seal key is made once)."""
    kubectl = replicas.cluster.kubectl
    first = replicas.start("a")
    wait_until("the first replica to take the Lease", lambda: leads(kubectl, first), timeout=60)
    second = replicas.start("b")
    return first, second


def test_of_two_replicas_only_the_leader_writes(replicas: Replicas, ns: str) -> None:
    kubectl = replicas.cluster.kubectl
    leader, follower = start_pair(replicas)
    names = [f"m{i}" for i in range(5)]
    approve_all(kubectl, ns, names)
    deploy_all(kubectl, ns, names)
    wait_until("every model to serve", lambda: len(serving(kubectl, ns)) == len(names), timeout=120)
    assert holder(kubectl) == leader
    assert gauge(replicas.procs[leader]) == 1 and gauge(replicas.procs[follower]) == 0
    # The audit log is written in batches: wait for the leader's last status write to be in it, so
    # that any write of the follower's from the same time is in it too.
    last = names[-1]
    wait_until(
        "the leader's status writes in the audit log",
        lambda: f"patch modeldeployments {last}" in writes_by(audit_log(replicas.cluster), leader),
        timeout=120,
    )
    entries = audit_log(replicas.cluster)
    assert requests_by(entries, follower) > 0, (
        "the follower's requests must be told apart by their user agent"
    )
    assert writes_by(entries, follower) == []
    # The field manager stays `modelgate` (explicit) and `modelgate-operator` (from the user agent).
    shown = kubectl.json("get", "mdep", last, "-n", ns, "--show-managed-fields")
    managers = {f["manager"] for f in shown["metadata"]["managedFields"]}
    assert "modelgate" in managers and not any("(" in mgr for mgr in managers), managers
    # Both replicas answer the admission webhooks (the kernel balances the shared port).
    for op in replicas.procs.values():
        assert op.proc.poll() is None


def test_the_follower_takes_over_a_killed_leader_in_the_middle_of_admitting_50_models(
    replicas: Replicas, ns: str
) -> None:
    kubectl = replicas.cluster.kubectl
    leader, follower = start_pair(replicas)
    names = [f"m{i:02d}" for i in range(50)]
    approve_all(kubectl, ns, names)
    # The models arrive in batches of 10; the leader is killed as soon as it has admitted one of
    # the second batch, the rest arrive right after: both replicas admit some, and the models in
    # flight at the kill are decided again by the new leader.
    batches = [names[i : i + 10] for i in range(0, 50, 10)]
    deploy_all(kubectl, ns, batches[0])
    deploy_all(kubectl, ns, batches[1])
    # Both the status write and the leader's audit line: under load the first model admitted can
    # be one of the second batch, and a kill between its write and its audit line left the
    # leader with no admission on record.
    wait_until(
        "the leader to admit a model of the second batch",
        lambda: (
            any(admitted(kubectl, ns, n) for n in batches[1])
            and any(a["action"] == "Admitted" for a in replicas.procs[leader].audit_lines())
        ),
        timeout=120,
        interval=0.1,
    )
    replicas.kill(leader)
    for batch in batches[2:]:
        deploy_all(kubectl, ns, batch)
    wait_until("the follower to take the Lease", lambda: leads(kubectl, follower), timeout=60)

    def all_serving() -> dict[str, dict[str, Any]] | None:
        now = serving(kubectl, ns)
        return now if len(now) == len(names) else None

    done = wait_until("all 50 models to serve", all_serving, timeout=240)
    by_leader = {
        a["object"]["name"] for a in replicas.procs[leader].audit_lines() if a["action"] == "Admitted"
    }
    by_follower = {
        a["object"]["name"] for a in replicas.procs[follower].audit_lines() if a["action"] == "Admitted"
    }
    assert by_leader and by_follower, "both replicas must have admitted models: the kill came mid-admission"
    assert by_leader | by_follower == set(names)
    lease = kubectl.get("lease", LEASE, LEASE_NS)
    assert lease["spec"]["leaseTransitions"] >= 1
    for name, obj in done.items():
        status = obj["status"]
        actions = [h.get("action") for h in status.get("history") or []]
        assert actions == ["Admitted"], (name, actions)
        assert status["servingRevision"]["digest"] == m.digest(f"{name}-v1")
        dep = kubectl.get("deployment", name, ns)
        assert dep is not None and dep["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    posted = decisions(kubectl, ns)
    twice = {key: n for key, n in posted.items() if n != 1}
    assert twice == {}, f"decisions recorded more than once: {twice}"
    assert {name for name, reason in posted if reason == "Admitted"} == set(names)


def test_an_approval_created_while_nobody_leads_is_admitted_by_the_next_leader(
    replicas: Replicas, ns: str
) -> None:
    kubectl = replicas.cluster.kubectl
    leader, follower = start_pair(replicas)
    kubectl.apply(m.evaluation("late-eval", ns, "late"), as_user="erin", as_groups=m.EVALUATORS)
    m.deploy(
        kubectl,
        m.model_deployment("late", ns, replicas=1, approvals=("late-ok",), evaluations=("late-eval",)),
    )
    wait_until(
        "the model to be blocked on its approval",
        lambda: ((kubectl.get("mdep", "late", ns) or {}).get("status") or {}).get("phase") == "Blocked",
    )
    replicas.kill(leader)
    m.approve(kubectl, m.approval("late-ok", ns, "late"))
    assert holder(kubectl) == leader, "the approval must arrive while the dead leader still holds the Lease"
    wait_until("the follower to take the Lease", lambda: leads(kubectl, follower), timeout=60)
    wait_until(
        "the model to serve",
        lambda: ((kubectl.get("mdep", "late", ns) or {}).get("status") or {}).get("phase") == "Serving",
        timeout=60,
    )
    posted = decisions(kubectl, ns)
    assert posted[("late", "Admitted")] == 1 and posted[("late", "Blocked")] == 1, posted


def test_a_leader_whose_lease_is_taken_stops_and_exits_without_writing_afterwards(
    replicas: Replicas, ns: str
) -> None:
    kubectl = replicas.cluster.kubectl
    leader, _follower = start_pair(replicas)
    names = [f"m{i:02d}" for i in range(20)]
    approve_all(kubectl, ns, names)
    deploy_all(kubectl, ns, names)
    wait_until("a model to serve", lambda: len(serving(kubectl, ns)) >= 1, timeout=120, interval=0.1)

    def take() -> bool:
        lease = kubectl.get("lease", LEASE, LEASE_NS)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease["spec"].update(
            holderIdentity="intruder", leaseDurationSeconds=3600, renewTime=now, acquireTime=now
        )
        return kubectl("replace", "-f", "-", input=json.dumps(lease), check=False).returncode == 0

    wait_until("the Lease to be replaced", take)
    op = replicas.procs[leader]
    try:
        code = wait_until("the leader to exit", lambda: op.proc.poll(), timeout=30)
    except AssertionError as e:
        tail = "\n".join(op.log.read_text().splitlines()[-40:])
        raise AssertionError(f"{e}\nthe leader's log ends:\n{tail}") from None
    assert code != 0
    log = op.log.read_text()
    assert "Lost the leadership: the Lease is held by intruder" in log
    assert "lost the leadership" in log  # the command's own last line
    stopped_at = next(
        json.loads(ln)["timestamp"]
        for ln in log.splitlines()
        if "Lost the leadership" in ln and ln.startswith("{")
    )

    def with_replace() -> list[dict[str, Any]] | None:
        entries = audit_log(replicas.cluster)
        return entries if any(_replaced(e) for e in entries) else None

    entries = wait_until("the replace in the audit log", with_replace, timeout=120)
    replaced_at = next(e["requestReceivedTimestamp"] for e in entries if _replaced(e))
    assert replaced_at < _utc(stopped_at)
    # Nothing the leader wrote reached the API server after it stopped (writes already on their way
    # when it read the Lease may land between the replace and the stop).
    assert writes_by(entries, leader, after=_utc(stopped_at)) == []
    assert holder(kubectl) == "intruder"


def _replaced(e: dict[str, Any]) -> bool:
    return (
        e.get("verb") == "update"
        and e.get("objectRef", {}).get("resource") == "leases"
        and "kubectl" in e.get("userAgent", "")
        and e.get("stage") == "ResponseComplete"
    )


def _utc(stamp: str) -> str:
    """A log timestamp as the audit log writes its (RFC 3339, UTC, microseconds)."""
    return dt.datetime.fromisoformat(stamp).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_record_left_with_the_former_kopf_timers_finalizer_can_be_deleted(
    replicas: Replicas, ns: str
) -> None:
    """Kopf's retention timer (before the leader's sweep) put modelgate's finalizer on records with
    kept pods; the leader takes it off a record being deleted, or the deletion would hang forever."""
    kubectl = replicas.cluster.kubectl
    leader = replicas.start("a")
    wait_until("the replica to lead", lambda: leads(kubectl, leader), timeout=60)
    record = {
        "apiVersion": m.API,
        "kind": "ModelRecord",
        "metadata": {"name": "fraud-000000000000", "namespace": ns, "finalizers": ["modelgate.io/finalizer"]},
        "spec": {"model": {"name": "fraud", "digest": "sha256:" + "0" * 64}, "state": "Released"},
    }
    kubectl.apply(record)
    kubectl("delete", "modelrecord", "fraud-000000000000", "-n", ns, "--wait=false")
    wait_until("the record to be gone", lambda: kubectl.get("modelrecord", "fraud-000000000000", ns) is None)
