"""The webhook certificate Secret against the real API server: made once and reused, reissued near
expiry and served without a restart, repaired or refused when damaged, and a port shared only by
replicas of the same CA. (The chart's configurations: test_webhook_cert_chart.py.)

Tests that start operators of their own use a second control plane (tests/support/clusters.py,
"certs"): their webhook configurations would replace the session operator's."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hack.launch import client_ca_args

from modelgate.webhooks import certs
from tests.support.clusters import own_cluster
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess, free_port, run_operator
from tests.support.webhook_cert import (
    NS,
    ca_bundles,
    cert,
    exit_code,
    operator_args,
    presented,
    secret,
    signed_by,
    started,
    store,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own() -> Iterator[Cluster]:
    with own_cluster("certs") as c:
        yield c


def test_the_session_operator_serves_the_certificate_of_its_secret(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    stored = secret(kubectl, "modelgate-webhook-cert")
    assert stored, "the session operator made no modelgate-webhook-cert Secret"
    data, _rv = stored
    assert set(data) == set(certs.KEYS)
    assert set(ca_bundles(kubectl)) == {data["ca.crt"]}
    served = presented(operator.webhook_port)
    assert served == cert(data["tls.crt"]) and signed_by(served, data["ca.crt"])


def test_the_secret_is_made_once_and_a_second_start_reuses_it(own: Cluster, tmp_path: Path) -> None:
    kube, name, port = own.kubectl, f"cert-{uuid.uuid4().hex[:6]}", free_port()
    with run_operator(own.kubeconfig, tmp_path / "first.log", *operator_args(port, name)) as first:
        wait_until("the first operator's webhooks", lambda: started(first, port))
        made = secret(kube, name)
        assert made, f"no Secret {NS}/{name}"
        data, rv = made
        assert set(ca_bundles(kube)) == {data["ca.crt"]}
        assert presented(port) == cert(data["tls.crt"])
        assert certs.sans_of(cert(data["tls.crt"])) == ["127.0.0.1"]
        lifetime = cert(data["ca.crt"]).not_valid_after_utc - dt.datetime.now(dt.UTC)
        assert lifetime > dt.timedelta(days=3600)
    with run_operator(own.kubeconfig, tmp_path / "second.log", *operator_args(port, name)) as second:
        wait_until("the second operator's webhooks", lambda: started(second, port))
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
    # 60 s of life: its renewal window (a third) starts 40 s from now, time enough to start.
    short = certs.issue(ca_crt, ca_key, ["127.0.0.1"], now, lifetime=dt.timedelta(seconds=60), not_before=now)
    store(kube, name, short.data())
    with run_operator(own.kubeconfig, tmp_path / "op.log", *operator_args(port, name)) as op:
        wait_until("the operator's webhooks", lambda: started(op, port))
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
        wait_until("the operator's webhooks", lambda: started(op, port))
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


def test_two_replicas_with_one_secret_share_a_port(own: Cluster, tmp_path: Path) -> None:
    """Both require the API server's client certificate, as in the session: the second replica's
    look at the first one's certificate needs none (TLS 1.3 shows it before asking)."""
    name, port = f"cert-{uuid.uuid4().hex[:6]}", free_port()
    args = [*operator_args(port, name), *client_ca_args(own.kubeconfig)]
    assert "--webhook-client-ca" in args, "the second control plane has no webhook client CA"
    with run_operator(own.kubeconfig, tmp_path / "a.log", *args) as a:
        wait_until("the first replica's webhooks", lambda: started(a, port))
        with run_operator(own.kubeconfig, tmp_path / "b.log", *args) as b:
            wait_until("the second replica's webhooks", lambda: started(b, port))
            data, _rv = secret(own.kubectl, name) or ({}, "")
            assert presented(port) == cert(data["tls.crt"])
            assert a.proc.poll() is None and b.proc.poll() is None


def test_an_operator_of_another_cluster_is_refused_the_session_operators_port(
    own: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    """Another cluster's Secret, another CA: sharing the port would answer half the session
    cluster's admission calls with a certificate its caBundle does not trust."""
    port = operator.webhook_port
    presented(port)  # the session operator holds it
    log = tmp_path / "op.log"
    code = exit_code(own, log, *operator_args(port, f"cert-{uuid.uuid4().hex[:6]}"))
    text = log.read_text()
    assert code == 1, text[-3000:]
    lines = [ln for ln in text.splitlines() if ln.startswith("modelgate run:")]
    assert len(lines) == 1, text[-3000:]
    assert f"webhook port 127.0.0.1:{port} cannot be shared" in lines[0]
    assert "our CA did not sign" in lines[0]
