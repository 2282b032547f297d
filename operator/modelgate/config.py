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


def from_args(ns: argparse.Namespace) -> OperatorConfig:
    return OperatorConfig(
        namespaces=tuple(ns.namespaces),
        allow_no_policy=bool(ns.allow_no_policy),
        liveness_port=int(ns.liveness_port),
        metrics_port=int(ns.metrics_port),
        prometheus_url=ns.prometheus_url,
        kubeconfig=ns.kubeconfig,
    )
