"""Operator configuration: command-line flags with environment fallbacks, one frozen object.

The handlers read it from Kopf's `memo`; nothing else reads flags or the environment.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""
    allow_no_policy: bool = False
    """Admit models that no GovernancePolicy selects. Off by default: fail closed."""
    liveness_port: int = 8081
    metrics_port: int = 8082
    prometheus_url: str | None = None
    kubeconfig: str | None = None
    operator_namespace: str = "modelgate-system"
    """Where the operator keeps its state (the seal key Secret)."""
    seal_secret: str = "modelgate-seal-key"
    webhook_port: int = 9443
    """Port of the admission webhook server; 0 disables the webhooks (and identity stamping)."""
    webhook_host: str = "127.0.0.1"
    """Host the API server uses to reach the webhooks (a URL), when no Service is given."""
    webhook_service: str | None = None
    """namespace/name of the Service in front of the webhook server (in-cluster)."""
    webhook_cert_dir: str | None = None
    """tls.crt, tls.key, ca.crt for the webhook server; default: made at start-up."""


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        dest="namespaces",
        help="watch only this namespace (repeatable); default: the whole cluster",
    )
    p.add_argument(
        "--allow-no-policy",
        action="store_true",
        default=env("MODELGATE_ALLOW_NO_POLICY", "") == "true",
        help="admit models that no GovernancePolicy selects (off by default: fail closed)",
    )
    p.add_argument(
        "--liveness-port",
        type=int,
        default=int(env("MODELGATE_LIVENESS_PORT", "8081")),
        help="port of the /healthz liveness endpoint on 127.0.0.1 (0 disables it)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(env("MODELGATE_METRICS_PORT", "8082")),
        help="port of the Prometheus /metrics endpoint (0 disables it)",
    )
    p.add_argument(
        "--prometheus-url",
        default=env("MODELGATE_PROMETHEUS_URL"),
        help="Prometheus base URL for monitoring checks",
    )
    p.add_argument(
        "--kubeconfig",
        default=env("KUBECONFIG"),
        help="kubeconfig to use; default: in-cluster config, then ~/.kube/config",
    )
    p.add_argument(
        "--operator-namespace",
        default=env("POD_NAMESPACE", "modelgate-system"),
        help="namespace of the operator's own state (the seal key Secret)",
    )
    p.add_argument(
        "--seal-secret",
        default="modelgate-seal-key",
        help="name of the Secret holding the HMAC key that seals approvals and evaluations",
    )
    p.add_argument(
        "--webhook-port",
        type=int,
        default=int(env("MODELGATE_WEBHOOK_PORT", "9443")),
        help="port of the admission webhook server (0 disables the webhooks)",
    )
    p.add_argument(
        "--webhook-host",
        default=env("MODELGATE_WEBHOOK_HOST", "127.0.0.1"),
        help="host the API server calls the webhooks on, when no --webhook-service is given",
    )
    p.add_argument(
        "--webhook-service",
        default=env("MODELGATE_WEBHOOK_SERVICE"),
        help="namespace/name of the Service in front of the webhook server (in-cluster)",
    )
    p.add_argument(
        "--webhook-cert-dir",
        default=env("MODELGATE_WEBHOOK_CERT_DIR"),
        help="directory with tls.crt, tls.key and ca.crt; default: a self-signed CA made at start",
    )


def from_args(ns: argparse.Namespace) -> OperatorConfig:
    return OperatorConfig(
        namespaces=tuple(ns.namespaces),
        allow_no_policy=bool(ns.allow_no_policy),
        liveness_port=int(ns.liveness_port),
        metrics_port=int(ns.metrics_port),
        prometheus_url=ns.prometheus_url,
        kubeconfig=ns.kubeconfig,
        operator_namespace=ns.operator_namespace,
        seal_secret=ns.seal_secret,
        webhook_port=int(ns.webhook_port),
        webhook_host=ns.webhook_host,
        webhook_service=ns.webhook_service,
        webhook_cert_dir=ns.webhook_cert_dir,
    )
