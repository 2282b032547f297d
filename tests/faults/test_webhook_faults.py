"""Webhook faults on a control plane of their own (`edges`): the admission webhooks fail closed.

- With the operator stopped, creates and updates of approvals, evaluations and ModelDeployments are
  refused (`failurePolicy: Fail`), and the user reads which webhook failed and why (connection
  refused); nothing is stored or changed.
- With the operator frozen (SIGSTOP), a webhook slower than its timeout gets the same refusal
  (context deadline exceeded); thawed (SIGCONT), the same process admits again.
- Evidence a cluster admin writes while the webhook configurations are deleted carries no seal: it
  never counts, and the ModelDeployment's gates name it `Unsealed`. The operator writes its
  configurations back at start and, while it runs, within a certificate check of their removal or
  an edit that would weaken them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from hack.launch import client_ca_args

from tests.conftest import webhooks_answer
from tests.support import manifests as m
from tests.support.clusters import ROOT, own_cluster
from tests.support.kube import Cluster, Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess, run_operator

pytestmark = pytest.mark.integration

CONFIGS = ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
NAME = "modelgate.io"
CHECK_INTERVAL = "1"
"""--webhook-cert-check-interval: how soon the running operator restores its configurations."""


@dataclass
class Hooks:
    """The `edges` control plane, a test namespace with a policy, and an operator to stop and start."""

    cluster: Cluster
    namespace: str
    stack: ExitStack = field(default_factory=ExitStack)
    operator: OperatorProcess | None = None

    @property
    def kubectl(self) -> Kubectl:
        return self.cluster.kubectl

    def start(self) -> OperatorProcess:
        if self.operator is None:
            self.operator = self.stack.enter_context(
                run_operator(
                    self.cluster.kubeconfig,
                    ROOT / ".cache" / "test-logs" / "webhook-faults-operator.log",
                    "--namespace",
                    "t-*",
                    "--webhook-cert-check-interval",
                    CHECK_INTERVAL,
                    *client_ca_args(self.cluster.kubeconfig),
                )
            )
        wait_until("the admission webhooks to answer", lambda: webhooks_answer(self.kubectl))
        return self.operator

    def stop(self) -> None:
        """kill -9: for the webhooks a crashed operator and a stopped one are the same outage, and
        a graceful stop (several seconds of Kopf's shutdown) is not what these tests are about."""
        if self.operator is not None:
            self.operator.proc.kill()
            self.operator.proc.wait(10)
        self.stack.close()
        self.operator = None


@pytest.fixture(scope="module")
def hooks() -> Iterator[Hooks]:
    ns = f"t-hooks-{uuid.uuid4().hex[:5]}"
    with own_cluster("edges") as cluster:
        kubectl = cluster.kubectl
        kubectl("create", "namespace", ns)
        kubectl("label", "namespace", ns, f"modelgate.io/test={ns}")
        kubectl.apply(m.policy(f"p-{ns}", ns))
        env = Hooks(cluster, ns)
        try:
            yield env
        finally:
            env.stop()


def refused(what: str, res: subprocess.CompletedProcess[str], webhook: str, why: str) -> None:
    """The request failed, and the user is told which webhook failed and why."""
    assert res.returncode != 0, (what, res.stdout)
    assert f'failed calling webhook "{webhook}.{NAME}"' in res.stderr, (what, res.stderr)
    assert why in res.stderr, (what, res.stderr)


def stored(kubectl: Kubectl, kind: str, name: str, ns: str) -> dict[str, Any]:
    obj = kubectl.get(kind, name, ns)
    assert obj is not None, f"{kind} {name}"
    return dict(obj)


def writes(hooks: Hooks, tag: str) -> dict[str, tuple[str, Any]]:
    """One create of each kind and one spec update of each existing object, as the people who do
    them; the webhook each one meets first."""
    ns, kubectl = hooks.namespace, hooks.kubectl
    approval = stored(kubectl, "mapr", "eb", ns)
    approval["spec"]["comment"] = "edited"
    evaluation = stored(kubectl, "meval", "ev", ns)
    evaluation["spec"]["reportUri"] = "s3://reports/edited"
    model = stored(kubectl, "mdep", "fraud", ns)
    model["spec"]["serving"]["replicas"] = 3
    for obj in (approval, evaluation, model):
        obj["metadata"] = {"name": obj["metadata"]["name"], "namespace": ns}
    return {
        "create approval": ("stamp-approval", lambda: m.approval(f"eb-{tag}", ns, "fraud")),
        "create evaluation": ("stamp-evaluation", lambda: m.evaluation(f"ev-{tag}", ns, "fraud")),
        "create model": ("stamp-deployment", lambda: m.model_deployment(f"fraud-{tag}", ns)),
        "update approval": ("stamp-approval", lambda: approval),
        "update evaluation": ("stamp-evaluation", lambda: evaluation),
        "update model": ("stamp-deployment", lambda: model),
    }


def attempt(kubectl: Kubectl, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """kubectl apply as the person who would write `obj` (the cluster admin updates evidence:
    nobody else may)."""
    kind = obj["kind"]
    if kind == "ModelDeployment":
        return kubectl.apply(obj, as_user="alice", as_groups=m.DEPLOYERS, check=False)
    if "seal" in obj["spec"]:
        return kubectl.apply(obj, check=False)  # an update of stored evidence
    if kind == "ModelApproval":
        return kubectl.apply(obj, as_user="bob", as_groups=("ethics-board",), check=False)
    return kubectl.apply(obj, as_user="erin", as_groups=m.EVALUATORS, check=False)


def specs(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    """Every approval, evaluation and ModelDeployment of `ns` by kind/name: its spec (the status is
    the operator's to write)."""
    items = kubectl.json("get", "mapr,meval,mdep", "-n", ns)["items"]
    return {f"{o['kind']}/{o['metadata']['name']}": o["spec"] for o in items}


def evidence_and_model(hooks: Hooks) -> None:
    """fraud v1 with its approval and evaluation, written through the webhooks (once per module)."""
    ns, kubectl = hooks.namespace, hooks.kubectl
    if kubectl.get("mdep", "fraud", ns):
        return
    m.approve(kubectl, m.approval("eb", ns, "fraud"))
    m.submit(kubectl, m.evaluation("ev", ns, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("eb",), evaluations=("ev",)))


def test_with_the_operator_stopped_every_write_is_refused_naming_the_webhook(hooks: Hooks) -> None:
    hooks.start()
    evidence_and_model(hooks)
    hooks.stop()
    before = specs(hooks.kubectl, hooks.namespace)
    for what, (webhook, obj) in writes(hooks, "down").items():
        res = attempt(hooks.kubectl, obj())
        refused(what, res, webhook, "connection refused")
    assert specs(hooks.kubectl, hooks.namespace) == before  # nothing created, nothing changed


def test_a_webhook_slower_than_its_timeout_is_refused_the_same_way(hooks: Hooks) -> None:
    op = hooks.start()
    evidence_and_model(hooks)
    before = specs(hooks.kubectl, hooks.namespace)
    creates = {k: v for k, v in writes(hooks, "slow").items() if k.startswith("create")}
    os.kill(op.proc.pid, signal.SIGSTOP)  # the server's socket accepts, nobody answers
    try:
        with ThreadPoolExecutor(len(creates)) as pool:  # each waits out the 5 s timeout: in parallel
            results = dict(
                zip(
                    creates, pool.map(lambda w: attempt(hooks.kubectl, w[1]()), creates.values()), strict=True
                )
            )
    finally:
        os.kill(op.proc.pid, signal.SIGCONT)
    for what, (webhook, _) in creates.items():
        refused(what, results[what], webhook, "context deadline exceeded")
    assert specs(hooks.kubectl, hooks.namespace) == before
    # Thawed, the same process answers again: the approval is admitted and stamped with its approver.
    assert hooks.start() is op and op.proc.poll() is None
    m.approve(hooks.kubectl, m.approval("eb-after", hooks.namespace, "fraud"))
    after = stored(hooks.kubectl, "mapr", "eb-after", hooks.namespace)
    assert after["spec"]["approvedBy"]["username"] == "bob" and after["spec"]["seal"]


def gates_of(obj: dict[str, Any]) -> dict[str, str]:
    return {g["reason"]: g["message"] for g in obj["status"].get("gates") or [] if not g["satisfied"]}


def test_evidence_written_past_the_removed_webhooks_never_counts_and_is_named_unsealed(hooks: Hooks) -> None:
    ns, kubectl = hooks.namespace, hooks.kubectl
    hooks.start()
    m.deploy(kubectl, m.model_deployment("scorer", ns, approvals=("scorer-eb",), evaluations=("scorer-ev",)))
    hooks.stop()
    for kind in CONFIGS:  # a cluster admin takes the webhooks out of the way...
        kubectl("delete", kind, NAME)
    # ...and writes the evidence the gate wants, claiming bob's and erin's identities.
    kubectl.apply(m.approval("scorer-eb", ns, "scorer", user="bob", stamp=True))
    kubectl.apply(m.evaluation("scorer-ev", ns, "scorer", user="erin", stamp=True))
    for kind, name in (("mapr", "scorer-eb"), ("meval", "scorer-ev")):
        assert "seal" not in stored(kubectl, kind, name, ns)["spec"], name

    op = hooks.start()  # registers its configurations again at start
    for kind in CONFIGS:
        assert kubectl.get(kind, NAME) is not None, kind

    def blocked_unsealed() -> dict[str, Any] | None:
        obj = stored(kubectl, "mdep", "scorer", ns)
        approved, evaluated = condition(obj, "Approved"), condition(obj, "Evaluated")
        if approved and evaluated and approved["reason"] == evaluated["reason"] == "Unsealed":
            return obj
        return None

    obj = wait_until("scorer to be blocked on unsealed evidence", blocked_unsealed)
    gates = [g for g in obj["status"]["gates"] if g["reason"] == "Unsealed"]
    assert len(gates) == 2 and not any(g["satisfied"] for g in gates), gates
    text = json.dumps(gates)
    assert "ModelApproval scorer-eb is unsealed" in text and "ModelEvaluation scorer-ev is unsealed" in text
    assert "written past the modelgate admission webhook" in text
    assert obj["status"]["phase"] == "Blocked"
    assert kubectl.get("deployment", "scorer", ns) is None

    # While it runs, the operator puts back a deleted configuration and undoes a weakening edit.
    kubectl("delete", "validatingwebhookconfiguration", NAME)
    mutating = kubectl.json("get", "mutatingwebhookconfiguration", NAME)
    for hook in mutating["webhooks"]:
        hook["failurePolicy"] = "Ignore"
    kubectl("replace", "-f", "-", input=json.dumps(mutating))
    wait_until(
        "the operator to restore its webhook configurations",
        lambda: (
            kubectl.get("validatingwebhookconfiguration", NAME)
            and {
                h["failurePolicy"]
                for h in kubectl.json("get", "mutatingwebhookconfiguration", NAME)["webhooks"]
            }
            == {"Fail"}
        ),
        timeout=30,
    )
    log = op.log.read_text(errors="replace")
    assert "Restored the admission webhook configuration ValidatingWebhookConfiguration" in log
    assert "Restored the admission webhook configuration MutatingWebhookConfiguration" in log
