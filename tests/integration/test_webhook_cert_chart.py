"""The operator and the chart's webhook configurations, on a second control plane, as a
ServiceAccount whose role allows the configurations only get/update/patch by resourceNames
`modelgate.io` (as the chart's role does): in a cluster (`--webhook-service`) it patches only their
caBundle, and nothing when it is right; with cert-manager's files it writes nothing and loads a
rotation; locally (URL mode) it takes them over by replace, keeping Helm's labels and annotations,
and the API server's calls get through."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hack.launch import PROBE_ARGS, probe_answered, probe_input

from modelgate.webhooks import certs
from modelgate.webhooks.configuration import NAME, Endpoint, configurations
from tests.support.clusters import own_cluster
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import free_port, run_operator
from tests.support.webhook_cert import (
    KINDS,
    NS,
    ca_bundles,
    cert,
    operator_args,
    presented,
    secret,
    started,
)

pytestmark = pytest.mark.integration
SERVICE = f"{NS}/modelgate-webhook"
HELM_LABELS = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "modelgate"}
HELM_ANNOTATIONS = {"meta.helm.sh/release-name": "modelgate", "meta.helm.sh/release-namespace": NS}
SA = "modelgate-cert-under-test"
WEBHOOK_RESOURCES = {"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}


@pytest.fixture(scope="module")
def own() -> Iterator[Cluster]:
    with own_cluster("certs") as c:
        yield c


@pytest.fixture(scope="module")
def limited(own: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A kubeconfig for a ServiceAccount bound to the operator's roles, with the webhook
    configurations narrowed to get/update/patch by resourceNames [modelgate.io]."""
    k = own.kubectl
    role = k.json("get", "clusterrole", "modelgate-operator")
    rules = [r for r in role["rules"] if not WEBHOOK_RESOURCES & set(r.get("resources", []))]
    rules.append(
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": sorted(WEBHOOK_RESOURCES),
            "resourceNames": [NAME],
            "verbs": ["get", "update", "patch"],
        }
    )
    k.apply(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": SA}}
        | {"rules": rules}
    )
    k("create", "serviceaccount", SA, "-n", NS)
    k("create", "clusterrolebinding", SA, f"--clusterrole={SA}", f"--serviceaccount={NS}:{SA}")
    k("create", "rolebinding", SA, "-n", NS, "--role=modelgate-operator", f"--serviceaccount={NS}:{SA}")
    token = k("create", "token", SA, "-n", NS, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(own.kubeconfig.read_text())
    path = tmp_path_factory.mktemp("sa") / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": admin["clusters"],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [
                    {"name": "sa", "context": {"cluster": admin["clusters"][0]["name"], "user": "sa"}}
                ],
            }
        )
    )
    who = f"--as=system:serviceaccount:{NS}:{SA}"
    can_create = k("auth", "can-i", "create", "mutatingwebhookconfigurations", who, check=False)
    assert can_create.stdout.strip() == "no", "the limited role may create webhook configurations"
    yield path
    for kind, name, ns in (
        ("clusterrolebinding", SA, []),
        ("rolebinding", SA, ["-n", NS]),
        ("serviceaccount", SA, ["-n", NS]),
        ("clusterrole", SA, []),
    ):
        k("delete", kind, name, *ns, "--ignore-not-found")


@pytest.fixture
def chart_configurations(own: Cluster) -> Iterator[list[dict[str, Any]]]:
    """Both configurations as the chart renders them: a Service clientConfig, Helm's labels and
    annotations, a placeholder caBundle. Deleted afterwards (nobody serves that Service)."""
    endpoint = Endpoint(b"placeholder", service_namespace=NS, service_name="modelgate-webhook")
    rendered = configurations(endpoint)
    for cfg in rendered:
        cfg["metadata"]["labels"] = dict(HELM_LABELS)
        cfg["metadata"]["annotations"] = dict(HELM_ANNOTATIONS)
    for kind in KINDS:
        own.kubectl("delete", kind, NAME, "--ignore-not-found")
    for cfg in rendered:
        own.kubectl("create", "-f", "-", input=json.dumps(cfg))
    yield rendered
    for kind in KINDS:
        own.kubectl("delete", kind, NAME, "--ignore-not-found")


def _stored(kubectl: Kubectl) -> list[dict[str, Any]]:
    return [kubectl.json("get", kind, NAME) for kind in KINDS]


def _without_ca(cfg: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy({"labels": cfg["metadata"].get("labels"), "webhooks": cfg["webhooks"]})
    for w in out["webhooks"]:
        w["clientConfig"].pop("caBundle", None)
    return out


def test_in_cluster_mode_patches_only_the_ca_bundle_of_the_charts_configurations(
    own: Cluster, limited: Path, chart_configurations: list[dict[str, Any]], tmp_path: Path
) -> None:
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    before = _stored(kube)
    args = operator_args(port, name, "--webhook-service", SERVICE)
    with run_operator(limited, tmp_path / "first.log", *args) as first:
        wait_until("the operator's webhooks", lambda: started(first, port))
        data, _rv = secret(kube, name) or ({}, "")
        assert set(ca_bundles(kube)) == {data["ca.crt"]}
        after = _stored(kube)
        assert [_without_ca(c) for c in after] == [_without_ca(c) for c in before]
        assert all(c["metadata"]["labels"] == HELM_LABELS for c in after)
        assert set(certs.service_sans(SERVICE)) <= set(certs.sans_of(cert(data["tls.crt"])))
    versions = [c["metadata"]["resourceVersion"] for c in after]
    with run_operator(limited, tmp_path / "second.log", *args) as second:
        wait_until("the second operator's webhooks", lambda: started(second, port))
        assert presented(port) == cert(data["tls.crt"])
        assert [c["metadata"]["resourceVersion"] for c in _stored(kube)] == versions, (
            "a right caBundle was written"
        )
        assert "Injected the CA bundle" not in second.log.read_text()


def test_with_cert_manager_files_nothing_is_written_and_a_rotation_is_loaded(
    own: Cluster, chart_configurations: list[dict[str, Any]], tmp_path: Path
) -> None:
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    now = dt.datetime.now(dt.UTC)
    issued = certs.carry_out(certs.Plan("create", "", tuple(certs.service_sans(SERVICE))), None, now)
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for key in ("ca.crt", "tls.crt", "tls.key"):
        (mounted / key).write_bytes(issued.data()[key])
    before = [c["metadata"]["resourceVersion"] for c in _stored(kube)]
    args = operator_args(port, name, "--webhook-service", SERVICE, "--webhook-cert-dir", str(mounted))
    with run_operator(own.kubeconfig, tmp_path / "op.log", *args) as op:
        wait_until("the operator's webhooks", lambda: started(op, port))
        assert presented(port) == cert(issued.tls_crt)
        rotated = certs.issue(issued.ca_crt, issued.ca_key, certs.service_sans(SERVICE), now)
        (mounted / "tls.key").write_bytes(rotated.tls_key)
        (mounted / "tls.crt").write_bytes(rotated.tls_crt)
        wait_until(
            "the rotated certificate on the running server", lambda: presented(port) == cert(rotated.tls_crt)
        )
        assert op.proc.poll() is None
    assert secret(kube, name) is None, "a Secret was made although cert-manager's files were given"
    assert [c["metadata"]["resourceVersion"] for c in _stored(kube)] == before, (
        "the configurations were written"
    )


def test_in_url_mode_the_operator_takes_over_the_charts_configurations_keeping_helms_metadata(
    own: Cluster, limited: Path, chart_configurations: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Out of cluster under the chart's role (no create): the configurations exist, so replace works."""
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    with run_operator(limited, tmp_path / "op.log", *operator_args(port, name)) as op:
        wait_until("the operator's webhooks", lambda: started(op, port))
        data, _rv = secret(kube, name) or ({}, "")
        assert set(ca_bundles(kube)) == {data["ca.crt"]}
        for stored in _stored(kube):
            assert stored["metadata"]["annotations"] == HELM_ANNOTATIONS
            assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
            urls = {w["clientConfig"].get("url") for w in stored["webhooks"]}
            assert all(u and u.startswith(f"https://127.0.0.1:{port}/") for u in urls), urls

        def answered() -> bool:
            res = kube(*PROBE_ARGS, input=probe_input(), check=False)
            return probe_answered(res.returncode, res.stdout)

        wait_until("the API server's call through the webhooks", answered)
