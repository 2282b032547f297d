"""What every local launcher of `modelgate run` shares (the tests' fixture, the benchmarks, the demo):
the manifests installed next to the CRDs, the flag that makes the webhook server require the local
API server's client certificate, and the probe that tells that the admission webhooks answer.

Importable as `hack.launch` from the repository root (tests, bench) and as `launch` from hack/'s
own scripts.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ("deploy/namespace.yaml", "deploy/rbac", "deploy/admission")
"""Installed after the CRDs: the operator's namespace, the shipped roles, the admission policies."""


def install_args() -> list[str]:
    """`kubectl apply` arguments for INSTALL."""
    return [arg for path in INSTALL for arg in ("-f", str(ROOT / path))]


PROBE = {
    "apiVersion": "modelgate.io/v1alpha1",
    "kind": "ModelApproval",
    "metadata": {"name": "webhook-probe", "namespace": "default"},
    "spec": {
        # It names a revision: an approval that names none needs a ModelDeployment to fill it in from.
        "model": {"name": "probe", "version": "v1", "digest": "sha256:" + "0" * 64, "revision": "0" * 32},
        "role": "probe",
        "decision": "approved",
    },
}
"""A ModelApproval to create with `kubectl create --dry-run=server`: it passes through every
admission webhook and stores nothing."""
PROBE_ARGS = ("create", "--dry-run=server", "-o", "json", "-f", "-")
"""kubectl arguments for the probe; its manifest goes to standard input (`probe_input()`)."""


def probe_input() -> str:
    return json.dumps(PROBE)


def probe_answered(returncode: int, stdout: str) -> bool:
    """Whether the dry run came back stamped: the webhooks answered."""
    return returncode == 0 and "approvedBy" in stdout


def client_ca_args(kubeconfig: Path) -> list[str]:
    """`--webhook-client-ca` when the local API server next to `kubeconfig` presents a webhook client
    certificate (hack/cluster.py writes its CA beside the kubeconfig)."""
    ca = kubeconfig.parent / "webhook-client-ca.crt"
    return ["--webhook-client-ca", str(ca)] if ca.is_file() else []
