"""Helpers for the webhook certificate tests: what the server presents, the Secret, the
configurations' caBundle, operators started with a Secret of their own."""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import subprocess
from pathlib import Path

from cryptography import x509

from modelgate.webhooks.configuration import NAME
from tests.support.kube import Cluster, Kubectl
from tests.support.operator import OperatorProcess, run_operator

NS = "modelgate-system"
KINDS = ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
STARTED = re.compile(r"(Registered|Started) admission webhooks.*server=")  # once configurations are written


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


def started(op: OperatorProcess, port: int) -> bool:
    """The operator wrote its configurations (logged by its startup handler) and a server answers
    TLS on its port (Kopf binds it only after the startup handlers finish)."""
    if op.proc.poll() is not None:
        raise AssertionError(f"the operator exited with {op.proc.returncode}: {op.log.read_text()[-3000:]}")
    if not STARTED.search(op.log.read_text()):
        return False
    try:
        presented(port)
    except OSError:
        return False
    return True


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
