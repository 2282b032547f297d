"""Operator configuration: command-line flags with environment fallbacks, one frozen object.

The handlers read it from Kopf's `memo`; nothing else reads flags or the environment.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ConfigError(ValueError):
    """One or more flags are wrong; the message names each and says what is expected."""


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
    """Where the operator keeps its state (the signing keys' Secret, the trust ConfigMap)."""
    webhook_port: int = 9443
    """Port of the admission webhook server; 0 disables the webhooks (and identity stamping)."""
    webhook_host: str = "127.0.0.1"
    """Host the API server uses to reach the webhooks (a URL), when no Service is given."""
    webhook_service: str | None = None
    """namespace/name of the Service in front of the webhook server (in-cluster)."""
    webhook_cert_dir: str | None = None
    """tls.crt, tls.key, ca.crt for the webhook server (a mounted cert-manager Secret); wins over
    webhook_cert_secret, and nothing is written for it."""
    webhook_cert_secret: str = "modelgate-webhook-cert"
    """Secret in operator_namespace with the webhook CA and serving certificate, made when absent,
    shared by the replicas, renewed before expiry."""
    webhook_cert_check_interval: float = 60.0
    """Seconds between re-reads of the webhook certificate (renewal, rotation, caBundle check)."""
    webhook_client_ca: str | None = None
    """CA that signs the API server's webhook client certificate; when set, the webhook server
    refuses every caller without a certificate signed by it (no stamp, no seal for anyone else)."""
    leader_elect: bool = False
    """Elect a leader on a Lease before writing anything; without it this operator always leads."""
    leader_election_id: str = "modelgate-leader"
    """Name of the coordination.k8s.io/v1 Lease in --operator-namespace."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    """controller-runtime's defaults (seconds)."""
    identity: str = "modelgate"
    """This replica's identity in the Lease and the user agent: POD_NAME, else hostname_pid."""
    selector: str | None = None
    """Label selector of the ModelDeployments this shard claims (reconciles, monitors, writes for);
    None claims every one (api/selector.py, docs/sharding.md; `modelgate run` checks it)."""

    def watches(self, namespace: str) -> bool:
        """Whether `namespace` is one this operator watches (--namespace globs, as Kopf matches them)."""
        from kopf._cogs.structs.references import NamespaceName, match_namespace  # Kopf's own globs

        return not self.namespaces or any(
            match_namespace(NamespaceName(namespace), g) for g in self.namespaces
        )


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
        default=_int_env("MODELGATE_LIVENESS_PORT", 8081),
        help="port of the /healthz liveness endpoint on 127.0.0.1 (0 disables it)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=_int_env("MODELGATE_METRICS_PORT", 8082),
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
        help="namespace of the operator's own state (the signing keys' Secret, the trust ConfigMap)",
    )
    p.add_argument(
        "--selector",
        default=env("MODELGATE_SELECTOR"),
        help="label selector of the ModelDeployments this instance claims, e.g. modelgate.io/shard=a "
        "or '!modelgate.io/shard' (kubectl -l syntax); default: every one. See docs/sharding.md",
    )
    _add_webhook_arguments(p)
    _add_leader_election_arguments(p)


def _add_webhook_arguments(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument(
        "--webhook-port",
        type=int,
        default=_int_env("MODELGATE_WEBHOOK_PORT", 9443),
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
        help="directory with tls.crt, tls.key and ca.crt (a mounted cert-manager Secret); "
        "default: the CA and certificate in --webhook-cert-secret",
    )
    p.add_argument(
        "--webhook-cert-secret",
        default=env("MODELGATE_WEBHOOK_CERT_SECRET", "modelgate-webhook-cert"),
        help="Secret in --operator-namespace with the webhook CA and serving certificate (ca.crt, "
        "ca.key, tls.crt, tls.key); made when absent, shared by the replicas, renewed before expiry",
    )
    p.add_argument(
        "--webhook-cert-check-interval",
        type=float,
        default=_float_env("MODELGATE_WEBHOOK_CERT_CHECK_INTERVAL", 60.0),
        help="seconds between re-reads of the webhook certificate: a renewed one is loaded without "
        "a restart, and the configurations' caBundle is checked",
    )
    p.add_argument(
        "--webhook-client-ca",
        default=env("MODELGATE_WEBHOOK_CLIENT_CA"),
        help="PEM CA of the API server's webhook client certificate (AdmissionConfiguration "
        "kubeConfigFile); when set, only callers with a certificate it signed get answers. "
        "Use a CA dedicated to that certificate, not the cluster's user CA",
    )


def _add_leader_election_arguments(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument(
        "--leader-elect",
        action="store_true",
        default=env("MODELGATE_LEADER_ELECT", "") == "true",
        help="elect a leader on a Lease so that several replicas can run; only the leader writes "
        "(off by default: this operator always leads)",
    )
    p.add_argument(
        "--leader-election-id",
        default=env("MODELGATE_LEADER_ELECTION_ID", "modelgate-leader"),
        help="name of the leader election Lease in --operator-namespace",
    )
    for flag, var, default, what in (
        ("lease-duration", "LEASE_DURATION", 15.0, "how long followers wait after the last renew seen"),
        (
            "renew-deadline",
            "RENEW_DEADLINE",
            10.0,
            "how long the leader tries to renew before it stops",
        ),
        ("retry-period", "RETRY_PERIOD", 2.0, "how often to try to acquire or renew"),
    ):
        p.add_argument(
            f"--leader-election-{flag}",
            type=float,
            default=_float_env(f"MODELGATE_LEADER_ELECTION_{var}", default),
            help=f"seconds: {what} (default {default:g})",
        )


def default_identity() -> str:
    """This replica's name in the Lease: the pod's name, else hostname_pid."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def _leader_election_problems(cfg: OperatorConfig) -> list[str]:
    out = []
    for flag, value in (
        ("--leader-election-lease-duration", cfg.lease_duration),
        ("--leader-election-renew-deadline", cfg.renew_deadline),
        ("--leader-election-retry-period", cfg.retry_period),
    ):
        if not value > 0:
            out.append(f"{flag} {value:g}: expected a number of seconds greater than 0")
    if cfg.renew_deadline >= cfg.lease_duration:
        out.append(
            f"--leader-election-renew-deadline {cfg.renew_deadline:g} must be less than "
            f"--leader-election-lease-duration {cfg.lease_duration:g}: a leader must stop before "
            "another replica may take over"
        )
    if cfg.retry_period >= cfg.renew_deadline:
        out.append(
            f"--leader-election-retry-period {cfg.retry_period:g} must be less than "
            f"--leader-election-renew-deadline {cfg.renew_deadline:g}: the leader must get to try a "
            "renew before its deadline"
        )
    if not DNS_SUBDOMAIN.match(cfg.leader_election_id):
        out.append(f"--leader-election-id {cfg.leader_election_id!r}: not a valid Lease name")
    return out


def problems(cfg: OperatorConfig) -> list[str]:
    """Everything wrong with a configuration, each as one line naming the flag; empty when valid."""
    out = []
    for flag, port, may_be_zero in (
        ("--liveness-port", cfg.liveness_port, True),
        ("--metrics-port", cfg.metrics_port, True),
        ("--webhook-port", cfg.webhook_port, True),
    ):
        if not (0 if may_be_zero else 1) <= port <= 65535:
            out.append(f"{flag} {port}: a port is 0 (off) or 1-65535")
    if cfg.prometheus_url is not None:
        url = urllib.parse.urlparse(cfg.prometheus_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            out.append(f"--prometheus-url {cfg.prometheus_url!r}: expected http(s)://host[:port][/path]")
    if cfg.webhook_service is not None:
        ns, _sep, name = cfg.webhook_service.partition("/")
        if not (DNS_LABEL.match(ns) and DNS_LABEL.match(name)):
            out.append(f"--webhook-service {cfg.webhook_service!r}: expected namespace/name of a Service")
    if cfg.webhook_cert_dir is not None:
        missing = [
            f for f in ("tls.crt", "tls.key", "ca.crt") if not (Path(cfg.webhook_cert_dir) / f).is_file()
        ]
        if missing:
            out.append(f"--webhook-cert-dir {cfg.webhook_cert_dir}: missing {', '.join(missing)}")
    if not DNS_SUBDOMAIN.match(cfg.webhook_cert_secret):
        out.append(f"--webhook-cert-secret {cfg.webhook_cert_secret!r}: not a valid Secret name")
    if not cfg.webhook_cert_check_interval > 0:
        out.append(f"--webhook-cert-check-interval {cfg.webhook_cert_check_interval}: expected seconds > 0")
    if cfg.webhook_client_ca is not None and not Path(cfg.webhook_client_ca).is_file():
        out.append(f"--webhook-client-ca {cfg.webhook_client_ca}: no such file")
    if not DNS_LABEL.match(cfg.operator_namespace):
        out.append(f"--operator-namespace {cfg.operator_namespace!r}: not a valid namespace name")
    if cfg.kubeconfig is not None and not Path(cfg.kubeconfig).is_file():
        out.append(f"--kubeconfig {cfg.kubeconfig}: no such file")
    out.extend(_leader_election_problems(cfg))
    return out


def _float_env(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a number of seconds") from None


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a port number") from None


def from_args(ns: argparse.Namespace) -> OperatorConfig:
    """The configuration from parsed flags; raises ConfigError listing every problem."""
    cfg = OperatorConfig(
        namespaces=tuple(ns.namespaces),
        allow_no_policy=bool(ns.allow_no_policy),
        liveness_port=int(ns.liveness_port),
        metrics_port=int(ns.metrics_port),
        prometheus_url=ns.prometheus_url,
        kubeconfig=ns.kubeconfig,
        operator_namespace=ns.operator_namespace,
        webhook_port=int(ns.webhook_port),
        webhook_host=ns.webhook_host,
        webhook_service=ns.webhook_service,
        webhook_cert_dir=ns.webhook_cert_dir,
        webhook_cert_secret=ns.webhook_cert_secret,
        webhook_cert_check_interval=float(ns.webhook_cert_check_interval),
        webhook_client_ca=ns.webhook_client_ca,
        leader_elect=bool(ns.leader_elect),
        leader_election_id=ns.leader_election_id,
        lease_duration=float(ns.leader_election_lease_duration),
        renew_deadline=float(ns.leader_election_renew_deadline),
        retry_period=float(ns.leader_election_retry_period),
        identity=default_identity(),
        selector=ns.selector,
    )
    found = problems(cfg)
    if found:
        raise ConfigError("\n".join(found))
    return cfg
