"""Helm for the chart's tests: the binary hack/build-helm.sh builds, renders of charts/modelgate."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from hack.manifests import helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelgate"
NS = "modelgate-system"
EVERYTHING = (
    "--api-versions",
    "monitoring.coreos.com/v1",
    "--api-versions",
    "cert-manager.io/v1",
    "--set",
    "certManager.enabled=true,serviceMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true",
    "--set",
    "networkPolicy.enabled=true,networkPolicy.controlPlaneCIDRs[0]=10.0.0.0/28,networkPolicy.nodeCIDRs[0]=10.1.0.0/16",
)
"""Every optional block on, with the APIs they need faked for `helm template`."""


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([helm(), *args], capture_output=True, text=True, timeout=300)
    if check and res.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def template(*args: str, namespace: str = NS) -> list[dict[str, Any]]:
    """`helm template` of the chart as a list of documents."""
    out = run_helm("template", "modelgate", str(CHART), "-n", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]
