"""The operator's writes whose answer it does not need (Events, seals, the quarantine NetworkPolicy)
reuse the client's connection: an answer left unread closes its connection, and every later
request then pays a new TLS handshake on both sides (at 10,000 models 15% of the operator's CPU).
Against the real kube-apiserver, with the operator's own write functions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from modelgate.act import kube
from tests.support.kube import Cluster, Kubectl
from tests.support.manifests import approval

pytestmark = pytest.mark.integration


def _connections(api: Any) -> int:
    """Connections the client's pool has opened so far, over all its hosts."""
    pools = api.rest_client.pool_manager.pools
    return sum(pools[key].num_connections for key in list(pools.keys()))


def _event(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"t-{uuid.uuid4().hex[:10]}", "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": "m", "namespace": namespace},
        "reason": "ConnectionReuse",
        "message": "one of many",
        "type": "Normal",
    }


def test_writes_that_ignore_their_answer_reuse_one_connection(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig), client_configuration=cfg
    )
    api = kubernetes.client.ApiClient(cfg)
    monkeypatch.setattr(kube, "client", lambda: api)

    assert all(kube._create_event(_event(namespace)) for _ in range(10))
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "m-quarantine", "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": {"app": "m"}}, "policyTypes": ["Ingress"]},
    }
    assert kube._quarantine_policy(policy, True, False) is True  # created
    assert kube._quarantine_policy(policy, True, True) is False  # read: already there
    assert kube._quarantine_policy(policy, True, False) is False  # 409: already there

    # 13 requests, sent one after another: one connection carried them all.
    assert _connections(api) == 1
    events = kubernetes.client.CoreV1Api(api).list_namespaced_event(namespace)
    assert sum(1 for e in events.items if e.reason == "ConnectionReuse") == 10


@pytest.fixture
def unwatched_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace outside the session operator's t-*: where it runs, it seals a new approval
    between this test's create and its first seal write (seen in .ci/run)."""
    name = f"seals-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_seal_writes_reuse_one_connection_whether_they_land_or_not(
    cluster: Cluster, unwatched_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seal's JSON patch (raw answer, read to its end) and its refusals (a stale version: the
    client reads the error's body) leave the connection in the pool alike."""
    namespace = unwatched_namespace
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig), client_configuration=cfg
    )
    api = kubernetes.client.ApiClient(cfg)
    monkeypatch.setattr(kube, "client", lambda: api)
    custom = kubernetes.client.CustomObjectsApi(api)
    created = custom.create_namespaced_custom_object(
        kube.GROUP, kube.VERSION, namespace, "modelapprovals", approval("a", namespace, "m")
    )
    uid, stale = created["metadata"]["uid"], created["metadata"]["resourceVersion"]
    before = _connections(api)

    seal = {
        "algorithm": "Ed25519",
        "keyId": "k",
        "signedAt": "2026-12-07T00:00:00Z",
        "covers": {"kind": "ModelApproval", "namespace": namespace, "name": "a", "uid": uid},
        "signature": "s",
    }
    assert kube._write_seal("modelapprovals", namespace, "a", uid, stale, seal) is True
    # The object moved on: every further try with the version read before is refused (a failed
    # test op), and one against another uid likewise.
    assert not any(kube._write_seal("modelapprovals", namespace, "a", uid, stale, seal) for _ in range(5))
    assert kube._write_seal("modelapprovals", namespace, "a", "other-uid", stale, seal) is False
    assert kube._write_seal("modelapprovals", namespace, "gone", uid, stale, seal) is False  # 404

    assert _connections(api) == before == 1
    stored = custom.get_namespaced_custom_object(kube.GROUP, kube.VERSION, namespace, "modelapprovals", "a")
    assert stored["status"]["seal"] == seal
