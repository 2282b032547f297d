"""The operator's own role (charts/modelgate/templates/rbac-operator.yaml) is enough, and no more: an operator
running as a ServiceAccount bound only to it admits and serves a model, and is refused what it
should never do. (Webhook registration is exercised by the session's operator.)"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess, run_operator

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SA = "modelgate-operator-under-test"


@pytest.fixture
def sa_kubeconfig(cluster: Cluster, tmp_path: Path) -> Iterator[Path]:
    k = cluster.kubectl
    k("create", "serviceaccount", SA, "-n", "modelgate-system")
    k(
        "create",
        "clusterrolebinding",
        SA,
        "--clusterrole=modelgate-operator",
        f"--serviceaccount=modelgate-system:{SA}",
    )
    k(
        "create",
        "rolebinding",
        SA,
        "-n",
        "modelgate-system",
        "--role=modelgate-operator",
        f"--serviceaccount=modelgate-system:{SA}",
    )
    token = k("create", "token", SA, "-n", "modelgate-system", "--duration=1h").stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sa",
        "clusters": admin["clusters"],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": admin["clusters"][0]["name"], "user": "sa"}}],
    }
    path = tmp_path / "sa.kubeconfig"
    path.write_text(json.dumps(cfg))
    yield path
    k("delete", "clusterrolebinding", SA, "--ignore-not-found")
    k("delete", "rolebinding", SA, "-n", "modelgate-system", "--ignore-not-found")
    k("delete", "serviceaccount", SA, "-n", "modelgate-system", "--ignore-not-found")


@pytest.fixture
def r_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"r-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, f"modelgate.io/test={name}")
    wait_until("the default service account", lambda: kubectl.get("serviceaccount", "default", name))
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def test_an_operator_bound_only_to_its_role_admits_and_serves(
    cluster: Cluster,
    kubectl: Kubectl,
    sa_kubeconfig: Path,
    r_namespace: str,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    ns = r_namespace
    policy = f"p-{uuid.uuid4().hex[:8]}"
    kubectl.apply(m.policy(policy, ns, min_accuracy=None))
    try:
        log = tmp_path / "sa-operator.log"
        # The session's operator serves the (cluster-wide) webhooks; this one runs without them.
        with run_operator(sa_kubeconfig, log, "--namespace", "r-*", "--webhook-port", "0"):
            m.approve(kubectl, m.approval("eb", ns, "fraud"))
            m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("eb",)))
            wait_until(
                "the model to serve under the least-privilege operator",
                lambda: (kubectl.get("mdep", "fraud", ns) or {}).get("status", {}).get("phase") == "Serving",
                timeout=120,
            )
            kubectl("delete", "mdep", "fraud", "-n", ns, "--timeout=60s")
            wait_until(
                "the retirement to remove the serving Deployment",
                lambda: kubectl.get("deployment", "fraud", ns) is None,
            )
        text = log.read_text()
        assert "Forbidden" not in text and "forbidden" not in text, text[-2000:]
    finally:
        kubectl("delete", "governancepolicy", policy, "--ignore-not-found")


@pytest.mark.parametrize(
    ("verb", "resource", "namespace"),
    [
        ("delete", "secrets", "modelgate-system"),
        ("get", "secrets", "default"),
        ("create", "clusterrolebindings", None),
        ("update", "modelapprovals", "default"),
        ("create", "modelapprovals", "default"),
        ("delete", "modeldeployments", "default"),
        ("create", "pods", "default"),
        ("update", "deployments", "default"),  # owned objects are written by server-side apply (patch)
        ("update", "services", "default"),
        ("delete", "namespaces", None),
    ],
)
def test_the_operator_role_does_not_grant(
    kubectl: Kubectl, sa_kubeconfig: Path, verb: str, resource: str, namespace: str | None
) -> None:
    ns = ["-n", namespace] if namespace else []
    res = kubectl(
        "auth", "can-i", verb, resource, *ns, f"--as=system:serviceaccount:modelgate-system:{SA}", check=False
    )
    assert res.stdout.strip() == "no", (verb, resource, res.stdout)


def test_the_token_really_is_the_service_account(kubectl: Kubectl, sa_kubeconfig: Path) -> None:
    token = json.loads(sa_kubeconfig.read_text())["users"][0]["user"]["token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))
    assert claims["sub"] == f"system:serviceaccount:modelgate-system:{SA}"
