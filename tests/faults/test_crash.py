"""Crash mid-decision (issue 13): `kill -9` the operator at random moments while models are being
admitted, rolled back for drift, quarantined, suspended on revocation and retired, then restart it
and check the invariants (tests/support/invariants.py) once the world has settled.

A round runs one story in a namespace of its own, five steps, one kill each: the kill comes at a
random moment after the step's action (seeded: MODELGATE_FAULTS_SEED replays a run), while the
operator is deciding, writing its records, status, Events and serving objects. After each restart
the invariants, owned objects, finalizers and status are checked, with the evidence and history
from before the kill; at the end of a round each decision is counted in history, Events and
ModelRecords. `make test` runs one round (5 kills), `make faults` (MODELGATE_FAULTS_LONG=1) seven
(35 kills).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hack.launch import client_ca_args, free_port, healthy, start_operator, stop_operator

from tests.conftest import Prometheus, webhooks_answer
from tests.faults.conftest import LONG
from tests.support import invariants as inv
from tests.support import manifests as m
from tests.support.invariants import Expect
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.simulator import Simulator, simulator

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

ROUNDS = 7 if LONG else 1
ROOT = Path(__file__).resolve().parents[2]
SETTLE = 150.0
"""How long the world may take to settle after a restart (seconds): generous, a wait not a goal."""


@dataclass
class Operator:
    """`modelgate run` against the faults cluster, killed with SIGKILL and started again on the
    same ports (its webhook configurations keep pointing at it), all incarnations in one log."""

    cluster: Cluster
    prometheus_url: str
    log: Path
    webhook_port: int = field(default_factory=free_port)
    liveness_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0

    def start(self) -> None:
        args = ["--prometheus-url", self.prometheus_url, "--webhook-port", str(self.webhook_port)]
        self.proc = start_operator(
            self.cluster.kubeconfig,
            self.log,
            *args,
            *client_ca_args(self.cluster.kubeconfig),
            liveness_port=self.liveness_port,
            metrics_port=self.metrics_port,
            append=True,
        )
        wait_until("the operator's liveness endpoint", self._alive, timeout=90)
        wait_until("the admission webhooks to answer", lambda: webhooks_answer(self.cluster.kubectl))

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"the operator exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}"
            )
        return healthy(self.liveness_port)

    def kill(self) -> None:
        """kill -9: no shutdown handler runs, writes in flight are cut wherever they are."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_operator(self.proc)


@pytest.fixture(scope="module")
def operator(faults_cluster: Cluster, prometheus: Prometheus) -> Iterator[Operator]:
    log = ROOT / ".cache" / "test-logs" / "faults-crash-operator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")
    op = Operator(faults_cluster, prometheus.url, log)
    op.start()
    try:
        yield op
    finally:
        op.stop()


@dataclass
class Round:
    """One story in namespace `ns`, with a kill at a random moment in each step."""

    kubectl: Kubectl
    ns: str
    op: Operator
    sim: Simulator
    rng: random.Random
    policy: str = field(default_factory=lambda: f"p-{uuid.uuid4().hex[:8]}")
    template: str = field(default_factory=lambda: f"psi-{uuid.uuid4().hex[:8]}")
    journal: list[str] = field(default_factory=list)

    def step(
        self,
        what: str,
        act: Callable[[], object],
        window: tuple[float, float],
        expect: list[Expect],
        settled: Callable[[], bool] = lambda: True,
    ) -> None:
        """Do `act`, kill the operator `window` seconds later (drawn at random), restart it, wait
        until `expect` holds and check every invariant against what was stored before the kill."""
        act()
        before = inv.snapshot(self.kubectl, self.ns)
        delay = self.rng.uniform(*window)
        time.sleep(delay)  # the fault's moment, drawn from the seeded RNG (not a wait for a state)
        self.op.kill()
        self.journal.append(f"kill {self.op.kills}: {what}, {delay:.2f}s after the action")
        self.op.start()

        def probe() -> list[str] | None:
            world = inv.read(self.kubectl, self.ns)
            pending = inv.expected(world, expect) + [
                f"{inv._name(md)} not observed"
                for md in world.models
                if (md.get("status") or {}).get("observedGeneration") != md["metadata"]["generation"]
            ]
            return None if pending or not settled() else ["settled"]

        wait_until(f"{what} to settle after kill {self.op.kills}", probe, timeout=SETTLE)
        inv.check(self.kubectl, self.ns, expect, before=before)

    def deploy(self, name: str, version: str, on_drift: str | None) -> None:
        m.approve(self.kubectl, m.approval(f"{name}-{version}", self.ns, name, version))
        monitoring = m.psi_monitoring(self.template, on_drift) if on_drift else None
        md = m.model_deployment(
            name, self.ns, version, approvals=(f"{name}-{version}",), monitoring=monitoring
        )
        m.deploy(self.kubectl, md)

    def known_good(self, name: str, version: str) -> bool:
        md = self.kubectl.get("mdep", name, self.ns) or {}
        return version in [g["version"] for g in (md.get("status") or {}).get("knownGood") or []]


def run_round(
    kubectl: Kubectl, op: Operator, prometheus: Prometheus, rng: random.Random, journal: list[str]
) -> None:
    ns = f"crash-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, f"modelgate.io/test={ns}")
    wait_until("the default service account", lambda: kubectl.get("serviceaccount", "default", ns))
    models = [f"{ns}/roll/v1", f"{ns}/roll/v2", f"{ns}/quar/v1"]
    with simulator(models) as sim:
        prometheus.add_target(ns, sim.address)
        r = Round(kubectl, ns, op, sim, rng, journal=journal)
        try:
            story(r)
        finally:
            prometheus.remove_target(ns)
            kubectl("delete", "governancepolicy", r.policy, "--ignore-not-found", "--wait=false")
            kubectl("delete", "metrictemplate", r.template, "--ignore-not-found", "--wait=false")
            kubectl("delete", "namespace", ns, "--wait=false")


def story(r: Round) -> None:
    """Admit three models, roll one back and quarantine another for drift, suspend the third on
    revocation, retire two: a kill in each step."""
    k, ns = r.kubectl, r.ns
    k.apply(m.policy(r.policy, ns, min_accuracy=None))
    k.apply(m.psi_template(r.template))

    def admit() -> None:
        r.deploy("roll", "v1", "rollback")
        r.deploy("quar", "v1", "quarantine")
        r.deploy("susp", "v1", None)

    serving = [
        Expect("roll", "v1", "Serving"),
        Expect("quar", "v1", "Serving"),
        Expect("susp", "v1", "Serving"),
    ]
    r.step("admission", admit, (0.0, 2.0), serving, lambda: r.known_good("roll", "v1"))
    serving[0] = Expect("roll", "v2", "Serving")
    r.step("a new version", lambda: r.deploy("roll", "v2", "rollback"), (0.0, 2.0), serving)

    def drift() -> None:
        r.sim.drift("roll", True, version="v2")
        r.sim.drift("quar", True, version="v1")

    serving[:2] = [Expect("roll", "v1", "RolledBack"), Expect("quar", None, "Quarantined")]
    r.step("drift: rollback and quarantine", drift, (1.0, 8.0), serving)

    serving[2] = Expect("susp", None)
    r.step(
        "revocation",
        lambda: k("delete", "modelapproval", "susp-v1", "-n", ns),
        (0.0, 1.5),
        serving,
        lambda: not replicas(k, ns, "susp"),
    )
    before = {name: (k.get("mdep", name, ns) or {})["metadata"]["uid"] for name in ("quar", "susp")}
    retired = [serving[0], Expect("quar", retired=True), Expect("susp", retired=True)]
    r.step(
        "retirement",
        lambda: k("delete", "mdep", "quar", "susp", "-n", ns, "--wait=false"),
        (0.0, 2.0),
        retired,
    )
    count_decisions(k, ns, before)


def replicas(kubectl: Kubectl, ns: str, name: str) -> int:
    dep = kubectl.get("deployment", name, ns)
    return int(((dep or {}).get("spec") or {}).get("replicas") or 0)


def count_decisions(kubectl: Kubectl, ns: str, retired_uids: dict[str, str]) -> None:
    """Each decision of the story once: in history, in Events, in the ModelRecords."""
    roll = kubectl.get("mdep", "roll", ns)
    assert roll is not None
    actions = [h["action"] for h in roll["status"]["history"]]
    assert actions.count("RolledBack") == 1, actions
    assert actions.count("Admitted") == 2, actions
    events = kubectl.json("get", "events", "-n", ns)["items"]

    def count(reason: str, uid: str) -> int:
        return sum(e["reason"] == reason and e["involvedObject"].get("uid") == uid for e in events)

    assert count("RolledBack", roll["metadata"]["uid"]) <= 1
    for name, uid in retired_uids.items():
        assert count("Retired", uid) <= 1, f"{name} retired {count('Retired', uid)} times"
    records = {
        r["spec"]["model"]["name"]: r["spec"] for r in kubectl.json("get", "modelrecords", "-n", ns)["items"]
    }
    for model, action in (("roll", "RolledBack"), ("quar", "Quarantined"), ("quar", "Retired")):
        got = [e["action"] for e in records[model]["entries"]]
        assert got.count(action) == 1, f"ModelRecord of {model}: {got}"


def test_kill_9_at_random_moments_keeps_every_invariant(
    kubectl_faults: Kubectl, operator: Operator, prometheus: Prometheus, rng: random.Random
) -> None:
    journal: list[str] = []
    try:
        for _ in range(ROUNDS):
            run_round(kubectl_faults, operator, prometheus, rng, journal)
    except AssertionError as e:
        raise AssertionError(f"{e}\n(after {'; '.join(journal) or 'no kill'})") from e
    print("\n".join(journal))
    assert operator.kills == 5 * ROUNDS


@pytest.fixture(scope="module")
def kubectl_faults(faults_cluster: Cluster) -> Kubectl:
    return faults_cluster.kubectl
