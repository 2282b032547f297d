"""Fixtures shared by every test layer.

Integration fixtures start real components lazily, so `pytest tests/unit` needs none of them:
- `cluster`: the local control plane (hack/cluster.py, built from upstream Go modules) or the
  cluster that MODELGATE_TEST_KUBECONFIG names (kind, a real cluster); CRDs from crds/ installed.
- `kubectl`: a Kubectl for that cluster; `namespace`: a fresh namespace per test, deleted after.
- `prometheus`: a real Prometheus server (hack/prometheus.py) whose scrape targets a test adds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hack.launch import PROBE_ARGS, client_ca_args, install_args, probe_answered, probe_input
from hypothesis import settings

from tests.support import workers
from tests.support.clusters import built_bin
from tests.support.kube import Cluster, Kubectl, create_test_namespace, wait_until
from tests.support.operator import OperatorProcess, run_operator
from tests.support.simulator import Simulator, simulator

# Properties are checked, not speed: on 2 cores shared by four workers and their control planes a
# single example can take longer than Hypothesis' 200 ms default deadline (timing goals live in bench/).
settings.register_profile("modelgate", deadline=None)
settings.load_profile("modelgate")

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    workers.configure()


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent without the plugin
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: tests/support/workers.py's number of workers, one process against an external
    cluster."""
    return 0 if os.environ.get("MODELGATE_TEST_KUBECONFIG") else workers.WORKERS


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    external = os.environ.get("MODELGATE_TEST_KUBECONFIG")
    started_here = False
    if external and workers.number():
        pytest.fail("MODELGATE_TEST_KUBECONFIG names one cluster for every test worker: run with -n 0")
    if external:
        kubectl_bin = os.environ.get("MODELGATE_KUBECTL") or shutil.which("kubectl")
        if not kubectl_bin:
            pytest.fail("MODELGATE_TEST_KUBECONFIG is set but no kubectl is on PATH (or MODELGATE_KUBECTL)")
        kube = Kubectl(kubectl_bin, Path(external))
    else:
        try:
            bin_dir = built_bin()
        except AssertionError as e:
            pytest.fail(str(e))
        running = (
            subprocess.run(
                [sys.executable, str(ROOT / "hack" / "cluster.py"), "status"], capture_output=True, text=True
            ).returncode
            == 0
        )
        if not running:
            res = subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "up"])
            if res.returncode != 0:
                pytest.fail("the local control plane did not start (see the cluster: error line above)")
            started_here = not os.environ.get("MODELGATE_KEEP_CLUSTER")
        kube = Kubectl(str(bin_dir / "kubectl"), workers.cluster_dir() / "kubeconfig")
    try:  # a control plane started here is stopped even when the install fails (it would hold the ports)
        kube("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        kube("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
        kube("apply", *install_args())
        kube("apply", "-f", str(ROOT / "tests" / "support" / "test-users.yaml"))
        yield Cluster(kubeconfig=kube.kubeconfig, kubectl=kube, local=not external)
    finally:
        if started_here:
            subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "down"])


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Kubectl:
    return cluster.kubectl


@pytest.fixture(scope="session")
def operator(cluster: Cluster, prometheus: Prometheus) -> Iterator[OperatorProcess]:
    """The operator, running for the whole session; it watches the test namespaces (t-*) and reads
    metrics from the session's Prometheus. Its webhook configurations are removed afterwards, so
    that a later session without the operator is not refused by webhooks nobody serves."""
    log = ROOT / ".cache" / "test-logs" / f"operator{workers.suffix()}.log"
    try:
        with run_operator(
            cluster.kubeconfig,
            log,
            "--namespace",
            "t-*",
            "--prometheus-url",
            prometheus.url,
            *webhook_client_ca_args(cluster),
            # Tests remove or bend the webhook configurations on purpose (and put them back); the
            # operator's own restoring of them (act/setup.py, at each check) must not race them.
            "--webhook-cert-check-interval",
            "86400",
        ) as op:
            wait_until("the admission webhooks to answer", lambda: webhooks_answer(cluster.kubectl))
            yield op
    finally:
        cluster.kubectl(
            "delete",
            "mutatingwebhookconfiguration,validatingwebhookconfiguration",
            "modelgate.io",
            "--ignore-not-found",
        )


def webhook_client_ca(cluster: Cluster) -> Path | None:
    """The CA of the local API server's webhook client certificate (hack/cluster.py), if any."""
    ca = workers.cluster_dir() / "webhook-client-ca.crt"
    return ca if cluster.local and ca.is_file() else None


def webhook_client_ca_args(cluster: Cluster) -> list[str]:
    """`--webhook-client-ca` when the local cluster's API server authenticates to webhooks."""
    return client_ca_args(cluster.kubeconfig) if cluster.local else []


def webhooks_answer(kubectl: Kubectl) -> bool:
    """A server-side dry run passes through every admission webhook without storing anything."""
    res = kubectl(*PROBE_ARGS, input=probe_input(), check=False)
    return probe_answered(res.returncode, res.stdout)


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    base = request.node.name.lower().replace("_", "-")
    name = f"t-{''.join(c for c in base if c.isalnum() or c == '-')[:40].strip('-')}-{uuid.uuid4().hex[:5]}"
    create_test_namespace(kubectl, name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@dataclass
class Prometheus:
    url: str
    targets_dir: Path
    _saved: dict[str, str] = field(default_factory=dict)

    def add_target(self, name: str, address: str, labels: dict[str, str] | None = None) -> None:
        """Scrape `address` (host:port) from now on; file service discovery picks it up in ~1 s."""
        path = self.targets_dir / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [address], "labels": labels or {}}]))
        tmp.rename(path)

    def remove_target(self, name: str) -> None:
        (self.targets_dir / f"{name}.json").unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the server (an outage); its targets are kept for `start`."""
        self._saved = {p.name: p.read_text() for p in self.targets_dir.glob("*.json")}
        subprocess.run([sys.executable, str(ROOT / "hack" / "prometheus.py"), "down"], check=True)

    def start(self) -> None:
        subprocess.run([sys.executable, str(ROOT / "hack" / "prometheus.py"), "up"], check=True)
        for name, text in self._saved.items():
            (self.targets_dir / name).write_text(text)


@pytest.fixture(scope="session")
def prometheus() -> Iterator[Prometheus]:
    script = [sys.executable, str(ROOT / "hack" / "prometheus.py")]
    status = subprocess.run([*script, "status"], capture_output=True, text=True)
    started_here = status.returncode != 0
    if started_here:
        if subprocess.run([*script, "up"]).returncode != 0:
            pytest.fail("Prometheus did not start (see the prometheus: error line above)")
        status = subprocess.run([*script, "status"], capture_output=True, text=True, check=True)
    info = dict(line.split("=", 1) for line in status.stdout.split())
    yield Prometheus(url=info["url"], targets_dir=Path(info["targets_dir"]))
    if started_here:
        subprocess.run([*script, "down"])


@pytest.fixture
def policy_name(kubectl: Kubectl) -> Iterator[str]:
    """A unique GovernancePolicy name, the policy deleted after the test."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    yield name
    kubectl("delete", "governancepolicy", name, "--ignore-not-found", "--wait=false")


@pytest.fixture
def names(kubectl: Kubectl) -> Iterator[dict[str, str]]:
    """Unique names for a monitoring test's GovernancePolicy and MetricTemplate, deleted after it."""
    suffix = uuid.uuid4().hex[:8]
    out = {"policy": f"p-{suffix}", "template": f"psi-{suffix}"}
    yield out
    kubectl("delete", "governancepolicy", out["policy"], "--ignore-not-found", "--wait=false")
    kubectl("delete", "metrictemplate", out["template"], "--ignore-not-found", "--wait=false")


@pytest.fixture
def sim(namespace: str, prometheus: Prometheus) -> Iterator[Simulator]:
    """The traffic simulator serving fraud v1 and v2 of the test's namespace, scraped by Prometheus."""
    with simulator([f"{namespace}/fraud/v1", f"{namespace}/fraud/v2"]) as s:
        prometheus.add_target(namespace, s.address)
        yield s
        prometheus.remove_target(namespace)
