"""GitOps health on live objects: ModelDeployments driven through every phase on the real API server
by the session operator, then judged by Argo CD's engine (gopher-lua running deploy/argocd/health.lua)
and by kstatus (sigs.k8s.io/cli-utils, what Flux's healthChecks compute), and waited on with the real
`kubectl wait --for=condition=...`.

One test drives eleven objects at once so that their waits overlap: a model per phase in a governed
namespace (drift from the traffic simulator through the real Prometheus), one kept serving under
`onRevocation: keep` in a second namespace, and one in a namespace the operator does not watch for
the states an operator never writes (no status yet, a status older than the spec, being deleted).
With MODELGATE_WRITE_PHASE_FIXTURES=1 the captured objects are also written to tests/fixtures/phases/
(regression data for tests/integration/test_gitops_fixtures.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Prometheus
from tests.support import manifests as m
from tests.support.gitops import EXPECTED, FIXTURES, argocd_health, kstatus
from tests.support.kube import Kubectl, condition, create_test_namespace, wait_until
from tests.support.operator import OperatorProcess
from tests.support.simulator import Simulator, simulator

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

UNSCHEDULABLE = {"requests": {"cpu": "100000"}}
"""More CPU than any kwok node has: the pods stay Pending, the rollout never finishes."""
REFUSED = {"requests": {"cpu": "100m", "gpu": "1"}}
"""An unqualified resource name: the CRD admits it, the Deployment's validation refuses it."""


def current(kubectl: Kubectl, ns: str, name: str, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The ModelDeployment once its status speaks of its current generation and `pred` holds."""

    def probe() -> dict[str, Any] | None:
        obj = kubectl.get("mdep", name, ns) or {}
        st = obj.get("status") or {}
        fresh = obj and st.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if fresh and pred(obj) else None

    return wait_until(f"ModelDeployment {ns}/{name} to satisfy its predicate", probe, timeout=180)


def phase(value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda o: o["status"].get("phase") == value


def known_good(version: str) -> Callable[[dict[str, Any]], bool]:
    return lambda o: version in [g["version"] for g in o["status"].get("knownGood") or []]


def ready_reason(reason: str) -> Callable[[dict[str, Any]], bool]:
    return lambda o: (condition(o, "Ready") or {}).get("reason") == reason


def model(ns: str, name: str, version: str = "v1", **kw: Any) -> dict[str, Any]:
    resources = kw.pop("resources", None)
    md = m.model_deployment(name, ns, version, approvals=(f"{name}-{version}",), **kw)
    if resources:
        md["spec"]["serving"]["resources"] = resources
    return md


def serve(kubectl: Kubectl, ns: str, name: str, version: str = "v1", **kw: Any) -> None:
    m.approve(kubectl, m.approval(f"{name}-{version}", ns, name, version))
    m.deploy(kubectl, model(ns, name, version, **kw))


def kubectl_wait(kubectl: Kubectl, ns: str, name: str, cond: str, timeout: str) -> subprocess.Popen[str]:
    """`kubectl wait --for=condition=COND modeldeployment/NAME`, the real binary, running."""
    args = ["wait", f"--for=condition={cond}", f"modeldeployment/{name}", "-n", ns, f"--timeout={timeout}"]
    return subprocess.Popen(
        [kubectl.binary, "--kubeconfig", str(kubectl.kubeconfig), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture
def kept_namespace(kubectl: Kubectl, policy_name: str) -> Iterator[str]:
    """A second watched namespace whose policy keeps a revision serving when its evidence goes."""
    name = f"t-gitops-keep-{uuid.uuid4().hex[:5]}"
    create_test_namespace(kubectl, name)
    kubectl.apply(m.policy(f"{policy_name}-keep", name, min_accuracy=None, on_revocation="keep"))
    yield name
    kubectl("delete", "governancepolicy", f"{policy_name}-keep", "--ignore-not-found", "--wait=false")
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def unwatched_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace outside the session operator's `t-*`: its ModelDeployments get no status."""
    name = f"gitops-unwatched-{uuid.uuid4().hex[:5]}"
    create_test_namespace(kubectl, name)
    yield name
    # The admission webhook gave its objects modelgate's finalizer and no operator will remove it.
    for md in kubectl.json("get", "mdep", "-n", name)["items"]:
        kubectl(
            "patch", "mdep", md["metadata"]["name"], "-n", name, "--type=json",
            "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]', check=False,
        )  # fmt: skip
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def traffic(namespace: str, prometheus: Prometheus) -> Iterator[Simulator]:
    """The traffic simulator for fraud v1, v2 and risk v1 of the test's namespace, scraped."""
    with simulator([f"{namespace}/fraud/v1", f"{namespace}/fraud/v2", f"{namespace}/risk/v1"]) as s:
        prometheus.add_target(namespace, s.address)
        yield s
        prometheus.remove_target(namespace)


def drive_governed(
    kubectl: Kubectl, ns: str, names: dict[str, str], sim: Simulator
) -> dict[str, dict[str, Any]]:
    """Seven models through their phases in one governed namespace; the live object of each case."""
    kubectl.apply(m.policy(names["policy"], ns, min_accuracy=None))
    kubectl.apply(m.psi_template(names["template"]))
    m.deploy(kubectl, m.model_deployment("blocked", ns))
    serve(kubectl, ns, "slow", resources=UNSCHEDULABLE)
    serve(kubectl, ns, "suspended")
    serve(kubectl, ns, "refused", resources=REFUSED)
    serve(kubectl, ns, "fraud", monitoring=m.psi_monitoring(names["template"], "rollback"))
    serve(kubectl, ns, "risk", monitoring=m.psi_monitoring(names["template"], "quarantine"))
    # `kubectl wait` started before the model exists has something to wait for.
    m.deploy(kubectl, model(ns, "serving"))
    ready_wait = kubectl_wait(kubectl, ns, "serving", "Ready", "180s")
    m.approve(kubectl, m.approval("serving-v1", ns, "serving", "v1"))

    got = {
        "blocked": current(kubectl, ns, "blocked", phase("Blocked")),
        "progressing": current(kubectl, ns, "slow", phase("Progressing")),
        "refused": current(kubectl, ns, "refused", ready_reason("ServingObjectInvalid")),
        "serving": current(kubectl, ns, "serving", phase("Serving")),
    }
    rc, out, err = finished(ready_wait)
    assert rc == 0 and "condition met" in out, (rc, out, err)
    # Not Ready: `kubectl wait` says so and fails, as a CI gate on it would.
    rc, out, err = finished(kubectl_wait(kubectl, ns, "blocked", "Ready", "2s"))
    assert rc != 0 and "timed out" in err, (rc, out, err)
    rc, out, err = finished(kubectl_wait(kubectl, ns, "slow", "Reconciling", "60s"))
    assert rc == 0 and "condition met" in out, (rc, out, err)

    current(kubectl, ns, "suspended", phase("Serving"))
    kubectl("delete", "mapr", "suspended-v1", "-n", ns)
    got["suspended"] = current(kubectl, ns, "suspended", ready_reason("ApprovalRevoked"))

    current(kubectl, ns, "risk", known_good("v1"))
    sim.drift("risk", True, version="v1")
    current(kubectl, ns, "fraud", known_good("v1"))
    serve(kubectl, ns, "fraud", "v2", monitoring=m.psi_monitoring(names["template"], "rollback"))
    got["quarantined"] = current(kubectl, ns, "risk", phase("Quarantined"))
    rc, out, err = finished(kubectl_wait(kubectl, ns, "risk", "Stalled", "60s"))
    assert rc == 0 and "condition met" in out, (rc, out, err)
    current(kubectl, ns, "fraud", known_good("v2"))
    sim.drift("fraud", True, version="v2")
    got["rolled-back"] = current(kubectl, ns, "fraud", phase("RolledBack"))
    return got


def drive_kept(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    """A model whose approval goes while its policy says `onRevocation: keep`: Degraded, serving."""
    serve(kubectl, ns, "kept")
    current(kubectl, ns, "kept", phase("Serving"))
    kubectl("delete", "mapr", "kept-v1", "-n", ns)
    return current(kubectl, ns, "kept", phase("Degraded"))


def drive_unwatched(kubectl: Kubectl, ns: str, serving: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The states no running operator leaves: no status yet; a status older than the spec (the
    operator down while someone edits it; the status is a live Serving one, written through the
    status subresource); being deleted with the finalizer still on."""

    def ghost() -> dict[str, Any]:
        obj = kubectl.get("mdep", "ghost", ns)
        assert obj is not None, f"ModelDeployment {ns}/ghost is gone"
        return dict(obj)

    m.deploy(kubectl, model(ns, "ghost"))
    got = {"no-status": ghost()}
    assert "status" not in got["no-status"], got["no-status"]
    status = json.loads(json.dumps(serving["status"]))
    status["observedGeneration"] = 1
    for c in status["conditions"]:
        c["observedGeneration"] = 1
    kubectl(
        "patch", "mdep", "ghost", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    kubectl(
        "patch", "mdep", "ghost", "-n", ns, "--type=merge", "-p", '{"spec": {"serving": {"replicas": 3}}}'
    )
    got["stale-generation"] = ghost()
    assert got["stale-generation"]["metadata"]["generation"] == 2, got["stale-generation"]
    kubectl("delete", "mdep", "ghost", "-n", ns, "--wait=false")

    def deleting() -> dict[str, Any] | None:
        obj = ghost()
        return obj if obj["metadata"].get("deletionTimestamp") else None

    got["terminating"] = wait_until("the ghost to be marked for deletion", deleting)
    return got


def test_every_phase_maps_to_argo_cd_health_and_kstatus_on_live_objects(
    kubectl: Kubectl,
    namespace: str,
    kept_namespace: str,
    unwatched_namespace: str,
    names: dict[str, str],
    traffic: Simulator,
    operator: OperatorProcess,
) -> None:
    captured = drive_governed(kubectl, namespace, names, traffic)
    captured["degraded-kept"] = drive_kept(kubectl, kept_namespace)
    captured.update(drive_unwatched(kubectl, unwatched_namespace, captured["serving"]))
    assert set(captured) == set(EXPECTED)

    cases = sorted(captured)
    objects = [captured[k] for k in cases]
    argo = dict(zip(cases, argocd_health(objects), strict=True))
    kst = dict(zip(cases, kstatus(objects), strict=True))
    got = {k: (argo[k].get("status"), kst[k].get("status")) for k in cases}
    assert got == EXPECTED, {k: (argo[k], kst[k]) for k in cases if got[k] != EXPECTED[k]}

    for k in cases:
        st = captured[k].get("status") or {}
        ready = condition(captured[k], "Ready")
        if k == "no-status":
            assert argo[k]["message"] == "Waiting for the operator to observe this ModelDeployment"
        elif k in ("stale-generation", "terminating"):  # a deletion is a new generation, too
            generation = captured[k]["metadata"]["generation"]
            assert argo[k]["message"] == (
                f"Waiting for the operator to observe generation {generation} (status is of generation 1)"
            )
        else:  # the phase, then what Ready (or Stalled) says: what is missing or what happened
            assert ready is not None and argo[k]["message"].startswith(f"{st['phase']}: "), argo[k]
            assert ready["message"] in argo[k]["message"], (argo[k], ready)
        if kst[k]["status"] == "Failed":
            stalled = condition(captured[k], "Stalled")
            assert stalled and stalled["status"] == "True" and kst[k]["message"] == stalled["message"]
    assert condition(captured["progressing"], "Reconciling")["reason"] == "RolloutInProgress"  # type: ignore[index]
    assert condition(captured["blocked"], "Reconciling")["reason"] == "NotAdmitted"  # type: ignore[index]
    for k in ("serving", "degraded-kept"):
        assert not {c["type"] for c in captured[k]["status"]["conditions"]} & {"Reconciling", "Stalled"}

    if os.environ.get("MODELGATE_WRITE_PHASE_FIXTURES"):
        write_fixtures(captured)


def write_fixtures(captured: dict[str, dict[str, Any]]) -> None:
    """The captured objects as regression data, without managedFields (noise)."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for case, obj in captured.items():
        obj = json.loads(json.dumps(obj))
        obj["metadata"].pop("managedFields", None)
        (FIXTURES / f"{case}.json").write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
