"""A bad Prometheus: the operator reads its metrics through a proxy that fails in every way a
Prometheus (or the gateway in front of it, or a wrong query) can fail (tests/support/badprom.py).

One monitored model on the control plane `edges`, quarantined at the first failed check
(failureLimit 1, onDrift quarantine): a fault mistaken for a measurement would act at once. Every
mode must come out Inconclusive, with a reading that names the fault, and nothing is done about it;
switching the proxy back to pass-through brings the checks back to Pass with the same operator
process, never restarted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hack.launch import client_ca_args

from tests.conftest import Prometheus, webhooks_answer
from tests.support import manifests as m
from tests.support.badprom import MODES, BadPrometheus, bad_prometheus
from tests.support.clusters import ROOT, own_cluster
from tests.support.kube import Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess, run_operator
from tests.support.simulator import simulator

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

QUERY_TIMEOUT = 5
"""The operator's Prometheus query timeout (its default); the proxy's delay mode waits longer."""
EXPECTED = {
    # mode: (the reading's reason, what its message must say)
    "delay": ("QueryTimeout", f"timed out after {QUERY_TIMEOUT}s"),
    "drop": ("PrometheusUnreachable", "closed the connection without an answer"),
    "http-500": ("PrometheusBadAnswer", "HTTP 500"),
    "http-503": ("PrometheusBadAnswer", "HTTP 503"),
    "nan": ("NotANumber", "NaN"),
    "inf": ("InfiniteValue", "+inf"),
    "empty": ("NoData", "no series with"),
    "series": ("MultipleSeries", "2 series with"),
    "matrix": ("QueryError", "matrix (range vector), expected a vector"),
    "invalid-json": ("PrometheusBadAnswer", "invalid JSON"),
}
ACTIONS = {"DriftDetected", "RolledBack", "Quarantined", "Suspended"}


@dataclass
class Monitored:
    kubectl: Kubectl
    namespace: str
    proxy: BadPrometheus
    operator: OperatorProcess


@pytest.fixture(scope="module")
def monitored(prometheus: Prometheus) -> Iterator[Monitored]:
    """fraud v1 serving on the `edges` control plane, watched through the proxy, checks passing."""
    ns = f"t-badprom-{uuid.uuid4().hex[:5]}"
    with own_cluster("edges") as cluster, bad_prometheus(prometheus.url, delay=QUERY_TIMEOUT + 3) as proxy:
        kubectl = cluster.kubectl
        kubectl("create", "namespace", ns)
        kubectl("label", "namespace", ns, f"modelgate.io/test={ns}")
        with simulator([f"{ns}/fraud/v1"]) as sim:
            prometheus.add_target(ns, sim.address)
            try:
                with run_operator(
                    cluster.kubeconfig,
                    ROOT / ".cache" / "test-logs" / "bad-prometheus-operator.log",
                    "--namespace",
                    "t-*",
                    "--prometheus-url",
                    proxy.url,
                    *client_ca_args(cluster.kubeconfig),
                ) as op:
                    wait_until("the admission webhooks to answer", lambda: webhooks_answer(kubectl))
                    yield Monitored(kubectl, ns, proxy, op)
            finally:
                prometheus.remove_target(ns)


def fraud(env: Monitored) -> dict[str, Any]:
    obj = env.kubectl.get("mdep", "fraud", env.namespace)
    assert obj is not None
    return dict(obj)


def reading(obj: dict[str, Any]) -> dict[str, Any]:
    metrics = (obj.get("status") or {}).get("metrics") or [{}]
    return dict(metrics[0])


def wait_for(env: Monitored, what: str, pred: Any, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = fraud(env)
        decided = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
        return obj if decided and pred(obj) else None

    return wait_until(what, probe, timeout=timeout)


def assert_not_acted_on(env: Monitored, obj: dict[str, Any], serving: dict[str, Any]) -> None:
    st = obj["status"]
    actions = {h["action"] for h in st.get("history") or []}
    assert not actions & ACTIONS, actions
    assert st["phase"] in ("Serving", "Degraded") and not st.get("rejectedDigests"), st
    assert condition(obj, "Quarantined")["status"] == "False"  # type: ignore[index]
    dep = env.kubectl.get("deployment", "fraud", env.namespace)
    assert dep and dep["metadata"]["generation"] == serving["metadata"]["generation"]
    assert not env.kubectl.json("get", "modelrecords", "-n", env.namespace)["items"]
    assert env.kubectl.get("networkpolicy", "fraud-quarantine", env.namespace) is None


def test_every_bad_answer_is_inconclusive_names_its_fault_and_is_never_acted_on(monitored: Monitored) -> None:
    env, kubectl, ns = monitored, monitored.kubectl, monitored.namespace
    assert set(EXPECTED) == set(MODES) - {"pass"}  # every fault the proxy knows is tried
    suffix = uuid.uuid4().hex[:6]
    kubectl.apply(m.policy(f"p-{suffix}", ns, min_accuracy=None))
    kubectl.apply(m.psi_template(f"psi-{suffix}"))
    m.approve(kubectl, m.approval("v1-ethics", ns, "fraud", "v1"))
    monitoring = m.psi_monitoring(f"psi-{suffix}", "quarantine", failure_limit=1, inconclusive_limit=2)
    m.deploy(kubectl, m.model_deployment("fraud", ns, "v1", approvals=("v1-ethics",), monitoring=monitoring))
    wait_for(env, "v1 to serve and pass its checks", lambda o: reading(o).get("status") == "Pass", 120)
    serving = kubectl.get("deployment", "fraud", ns)
    assert serving

    for mode, (reason, text) in EXPECTED.items():
        env.proxy.mode = mode
        obj = wait_for(
            env,
            f"the {mode} fault to be read as {reason} ({text!r})",
            lambda o, reason=reason, text=text: (
                reading(o).get("reason") == reason and text in reading(o).get("message", "")
            ),
        )
        got = reading(obj)
        assert got["status"] == "Inconclusive" and got.get("value") is None, (mode, got)
        assert env.proxy.served[mode] > 0, mode
        assert_not_acted_on(env, obj, serving)

    # Past inconclusiveLimit the model says it cannot tell, naming the last fault, and still serves.
    obj = wait_for(env, "Drifted to be Unknown", lambda o: condition(o, "Drifted")["status"] == "Unknown")  # type: ignore[index]
    drifted, ready = condition(obj, "Drifted"), condition(obj, "Ready")
    assert drifted and drifted["reason"] == "MetricsInconclusive" and "invalid JSON" in drifted["message"]
    assert ready and ready["reason"] == "MetricsInconclusive" and ready["status"] == "Unknown", ready
    assert_not_acted_on(env, obj, serving)
    assert kubectl.json("get", "events", "-n", ns, "--field-selector", "reason=MetricsInconclusive")["items"]

    env.proxy.mode = "pass"
    obj = wait_for(
        env,
        "the checks to pass again",
        lambda o: (
            reading(o).get("status") == "Pass"
            and condition(o, "Ready")["status"] == "True"  # type: ignore[index]
            and condition(o, "Drifted")["status"] == "False"  # type: ignore[index]
        ),
    )
    assert obj["status"]["phase"] == "Serving"
    assert_not_acted_on(env, obj, serving)
    assert env.operator.proc.poll() is None  # the same operator process throughout: no restart
