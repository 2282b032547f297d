"""The local control plane is a complete Kubernetes: server version, scheduling onto kwok nodes,
Deployments that become Available, Services with endpoints, namespaces that finish deleting."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.kube import Kubectl, wait_until

pytestmark = pytest.mark.integration


def test_server_reports_kubernetes_v1_37_2(kubectl: Kubectl, cluster: object) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    if getattr(cluster, "local", False):
        assert version["serverVersion"]["gitVersion"] == "v1.37.2"
    assert version["serverVersion"]["major"] == "1"


def test_fake_nodes_are_ready(kubectl: Kubectl) -> None:
    nodes = kubectl.json("get", "nodes")["items"]
    ready = [
        n
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
    ]
    assert len(ready) >= 2, f"expected at least 2 Ready nodes, got {[n['metadata']['name'] for n in nodes]}"


def test_deployment_becomes_available_and_service_gets_endpoints(kubectl: Kubectl, namespace: str) -> None:
    kubectl(
        "create",
        "deployment",
        "web",
        "--image=registry.example/web:1",
        "--replicas=2",
        "--port=80",
        "-n",
        namespace,
    )
    kubectl("expose", "deployment", "web", "--port=80", "-n", namespace)

    def available() -> dict[str, object] | None:
        dep = kubectl.get("deployment", "web", namespace)
        status = (dep or {}).get("status", {})
        return dep if status.get("availableReplicas") == 2 and status.get("readyReplicas") == 2 else None

    wait_until("deployment web to be Available with 2 ready replicas", available, timeout=120)
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", "app=web")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"].startswith("kwok-node-")
        assert pod["status"]["phase"] == "Running"
        assert pod["status"].get("podIP")

    def ready_endpoints() -> list[str]:
        slices = kubectl.json(
            "get", "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=web"
        )["items"]
        return [
            a
            for s in slices
            for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready")
            for a in e["addresses"]
        ]

    addresses = wait_until(
        "service web to get 2 ready endpoints", lambda: len(ready_endpoints()) == 2 and ready_endpoints()
    )
    assert sorted(addresses) == sorted(p["status"]["podIP"] for p in pods)


def test_namespace_deletion_finishes(kubectl: Kubectl) -> None:
    name = f"t-delete-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("create", "configmap", "c", "--from-literal=a=b", "-n", name)
    kubectl("delete", "namespace", name, "--wait=false")
    wait_until(f"namespace {name} to be gone", lambda: kubectl.get("namespace", name) is None, timeout=120)
