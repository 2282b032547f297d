"""The webhook certificate Secret against the real API server: made once and reused, reissued near
expiry and served without a restart, repaired or refused when damaged, injected as caBundle (whole
configurations locally, only caBundle into the chart's in a cluster, nothing with cert-manager's
files), and a port shared only by replicas of the same CA.

Tests that start operators of their own use a second control plane (tests/support/clusters.py,
offset 50): their webhook configurations would replace the session operator's."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
import re
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from hack.launch import client_ca_args

from modelgate.webhooks import certs
from modelgate.webhooks.configuration import NAME, Endpoint, configurations
from tests.support.clusters import own_cluster
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess, free_port, run_operator

pytestmark = pytest.mark.integration
NS = "modelgate-system"
KINDS = ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
SERVICE = f"{NS}/modelgate-webhook"
HELM = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "modelgate"}
STARTED = re.compile(r"(Registered|Started) admission webhooks.*server=")  # once configurations are written


@pytest.fixture(scope="module")
def own() -> Iterator[Cluster]:
    with own_cluster("certs", 50) as c:
        yield c


def session_port() -> int:
    """The session operator's webhook port (tests/conftest.py starts it with the default)."""
    return int(os.environ.get("MODELGATE_WEBHOOK_PORT", "9443"))


def presented(port: int) -> x509.Certificate:
    """The certificate the server on 127.0.0.1:port presents in a TLS handshake (TLS 1.3: it
    arrives before the server asks for ours)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return x509.load_der_x509_certificate(der)


def secret(kubectl: Kubectl, name: str) -> tuple[dict[str, bytes], str] | None:
    obj = kubectl.get("secret", name, NS)
    if obj is None:
        return None
    return {k: base64.b64decode(v) for k, v in obj["data"].items()}, obj["metadata"]["resourceVersion"]


def store(kubectl: Kubectl, name: str, data: dict[str, bytes]) -> None:
    kubectl(
        "create",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": NS},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
            }
        ),
    )


def ca_bundles(kubectl: Kubectl) -> list[bytes]:
    return [
        base64.b64decode(w["clientConfig"].get("caBundle", ""))
        for kind in KINDS
        for w in kubectl.json("get", kind, NAME)["webhooks"]
    ]


def cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def signed_by(c: x509.Certificate, ca_pem: bytes) -> bool:
    try:
        c.verify_directly_issued_by(cert(ca_pem))
    except Exception:
        return False
    return True


def started(op: OperatorProcess) -> bool:
    if op.proc.poll() is not None:
        raise AssertionError(f"the operator exited with {op.proc.returncode}: {op.log.read_text()[-3000:]}")
    return bool(STARTED.search(op.log.read_text()))


def operator_args(port: int, secret_name: str, *extra: str) -> list[str]:
    return [
        "--namespace",
        "c-*",
        "--webhook-port",
        str(port),
        "--webhook-cert-secret",
        secret_name,
        "--webhook-cert-check-interval",
        "1",
        *extra,
    ]


def exit_code(cluster: Cluster, log: Path, *args: str) -> int | None:
    """Start an operator that is expected to stop by itself; its exit code (None: it kept running)."""
    try:
        with run_operator(cluster.kubeconfig, log, *args) as op:
            try:
                return op.proc.wait(30)
            except subprocess.TimeoutExpired:
                return None
    except RuntimeError as e:  # it exited before its liveness endpoint answered
        found = re.search(r"the operator exited with (-?\d+)", str(e))
        if not found:
            raise
        return int(found.group(1))


def test_the_session_operator_serves_the_certificate_of_its_secret(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    stored = secret(kubectl, "modelgate-webhook-cert")
    assert stored, "the session operator made no modelgate-webhook-cert Secret"
    data, _rv = stored
    assert set(data) == set(certs.KEYS)
    assert set(ca_bundles(kubectl)) == {data["ca.crt"]}
    served = presented(session_port())
    assert served == cert(data["tls.crt"]) and signed_by(served, data["ca.crt"])


def test_the_secret_is_made_once_and_a_second_start_reuses_it(own: Cluster, tmp_path: Path) -> None:
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    with run_operator(own.kubeconfig, tmp_path / "first.log", *operator_args(port, name)) as first:
        wait_until("the first operator's webhooks", lambda: started(first))
        made = secret(kube, name)
        assert made, f"no Secret {NS}/{name}"
        data, rv = made
        assert set(ca_bundles(kube)) == {data["ca.crt"]}
        assert presented(port) == cert(data["tls.crt"])
        assert certs.sans_of(cert(data["tls.crt"])) == ["127.0.0.1"]
        lifetime = cert(data["ca.crt"]).not_valid_after_utc - dt.datetime.now(dt.UTC)
        assert lifetime > dt.timedelta(days=3600)
    with run_operator(own.kubeconfig, tmp_path / "second.log", *operator_args(port, name)) as second:
        wait_until("the second operator's webhooks", lambda: started(second))
        assert secret(kube, name) == (data, rv), "the second start wrote the Secret"
        assert presented(port) == cert(data["tls.crt"])
        assert set(ca_bundles(kube)) == {data["ca.crt"]}
        assert "Created the webhook certificate" not in second.log.read_text()


def test_a_certificate_near_expiry_is_reissued_and_served_without_a_restart(
    own: Cluster, tmp_path: Path
) -> None:
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    now = dt.datetime.now(dt.UTC)
    ca_crt, ca_key = certs.make_ca(now)
    # 45 s of life: its renewal window (a third) starts 30 s from now.
    short = certs.issue(ca_crt, ca_key, ["127.0.0.1"], now, lifetime=dt.timedelta(seconds=45), not_before=now)
    store(kube, name, short.data())
    with run_operator(own.kubeconfig, tmp_path / "op.log", *operator_args(port, name)) as op:
        wait_until("the operator's webhooks", lambda: started(op))
        assert presented(port).serial_number == cert(short.tls_crt).serial_number
        renewed = wait_until(
            "a renewed certificate on the running server",
            lambda: (c := presented(port)).serial_number != cert(short.tls_crt).serial_number and c,
            timeout=90,
        )
        assert op.proc.poll() is None, "the operator restarted"
        data, _rv = secret(kube, name) or ({}, "")
        assert renewed == cert(data["tls.crt"]), "the server does not present the Secret's certificate"
        assert data["ca.crt"] == ca_crt and data["ca.key"] == ca_key, "the CA changed"
        assert signed_by(renewed, ca_crt)
        assert renewed.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=360)
        assert set(ca_bundles(kube)) == {ca_crt}
        log = op.log.read_text()
        assert "Reissued the webhook certificate" in log and "tls.crt expires at" in log
        assert "Loaded a new webhook serving certificate" in log


def test_a_garbage_serving_certificate_is_reissued_from_the_ca(own: Cluster, tmp_path: Path) -> None:
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    ca_crt, ca_key = certs.make_ca(dt.datetime.now(dt.UTC))
    store(kube, name, {"ca.crt": ca_crt, "ca.key": ca_key, "tls.crt": b"garbage", "tls.key": b"garbage"})
    with run_operator(own.kubeconfig, tmp_path / "op.log", *operator_args(port, name)) as op:
        wait_until("the operator's webhooks", lambda: started(op))
        data, _rv = secret(kube, name) or ({}, "")
        assert data["ca.crt"] == ca_crt
        assert presented(port) == cert(data["tls.crt"]) and signed_by(cert(data["tls.crt"]), ca_crt)
        assert "reason='tls.crt is not a PEM certificate'" in op.log.read_text()


def test_a_garbage_ca_stops_the_operator_with_one_line_naming_the_secret(
    own: Cluster, tmp_path: Path
) -> None:
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    good = certs.carry_out(certs.Plan("create", "", ("127.0.0.1",)), None, dt.datetime.now(dt.UTC))
    store(kube, name, {**good.data(), "ca.crt": b"garbage"})
    log = tmp_path / "op.log"
    code = exit_code(own, log, *operator_args(port, name))
    text = log.read_text()
    assert code == 1, text[-3000:]
    lines = [ln for ln in text.splitlines() if ln.startswith("modelgate run:")]
    assert len(lines) == 1, text[-3000:]
    assert f"webhook certificate Secret {NS}/{name}: ca.crt is not a PEM certificate" in lines[0]
    assert f"delete secret {name}" in lines[0]
    assert "Traceback" not in text
    assert (secret(kube, name) or ({}, ""))[0]["ca.crt"] == b"garbage", "the operator replaced the CA"


@pytest.fixture
def chart_configurations(own: Cluster) -> Iterator[list[dict[str, Any]]]:
    """Both configurations as the chart renders them: a Service clientConfig, Helm's labels, a
    placeholder caBundle. Deleted afterwards (nobody serves that Service)."""
    rendered = configurations(
        Endpoint(b"placeholder", service_namespace=NS, service_name="modelgate-webhook")
    )
    for cfg in rendered:
        cfg["metadata"]["labels"] = dict(HELM)
    own.kubectl("delete", *KINDS[:1], NAME, "--ignore-not-found")
    own.kubectl("delete", *KINDS[1:], NAME, "--ignore-not-found")
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
    own: Cluster, chart_configurations: list[dict[str, Any]], tmp_path: Path
) -> None:
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    before = _stored(kube)
    args = operator_args(port, name, "--webhook-service", SERVICE)
    with run_operator(own.kubeconfig, tmp_path / "first.log", *args) as first:
        wait_until("the operator's webhooks", lambda: started(first))
        data, _rv = secret(kube, name) or ({}, "")
        assert set(ca_bundles(kube)) == {data["ca.crt"]}
        after = _stored(kube)
        assert [_without_ca(c) for c in after] == [_without_ca(c) for c in before]
        assert all(c["metadata"]["labels"] == HELM for c in after)
        assert set(certs.service_sans(SERVICE)) <= set(certs.sans_of(cert(data["tls.crt"])))
    versions = [c["metadata"]["resourceVersion"] for c in after]
    with run_operator(own.kubeconfig, tmp_path / "second.log", *args) as second:
        wait_until("the second operator's webhooks", lambda: started(second))
        wait_until("a certificate check", lambda: presented(port) == cert(data["tls.crt"]))
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
        wait_until("the operator's webhooks", lambda: started(op))
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


def test_two_replicas_with_one_secret_share_a_port(own: Cluster, tmp_path: Path) -> None:
    """Both require the API server's client certificate, as in the session: the second replica's
    look at the first one's certificate needs none (TLS 1.3 shows it before asking)."""
    name, port = f"cert-{uuid.uuid4().hex[:6]}", free_port()
    args = [*operator_args(port, name), *client_ca_args(own.kubeconfig)]
    assert "--webhook-client-ca" in args, "the second control plane has no webhook client CA"
    with run_operator(own.kubeconfig, tmp_path / "a.log", *args) as a:
        wait_until("the first replica's webhooks", lambda: started(a))
        with run_operator(own.kubeconfig, tmp_path / "b.log", *args) as b:
            wait_until("the second replica's webhooks", lambda: started(b))
            data, _rv = secret(own.kubectl, name) or ({}, "")
            assert presented(port) == cert(data["tls.crt"])
            assert a.proc.poll() is None and b.proc.poll() is None


def test_an_operator_of_another_cluster_is_refused_the_session_operators_port(
    own: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    """Another cluster's Secret, another CA: sharing the port would answer half the session
    cluster's admission calls with a certificate its caBundle does not trust."""
    port = session_port()
    presented(port)  # the session operator holds it
    log = tmp_path / "op.log"
    code = exit_code(own, log, *operator_args(port, f"cert-{uuid.uuid4().hex[:6]}"))
    text = log.read_text()
    assert code == 1, text[-3000:]
    lines = [ln for ln in text.splitlines() if ln.startswith("modelgate run:")]
    assert len(lines) == 1, text[-3000:]
    assert f"webhook port 127.0.0.1:{port} cannot be shared" in lines[0]
    assert "our CA did not sign" in lines[0]
