"""How `modelgate run` is launched locally, for the tests' fixture, the benchmarks and the demo: the
manifests installed next to the CRDs (`python hack/launch.py` prints them), the flag that makes the
webhook server require the local API server's client certificate, the probe that tells that the
admission webhooks answer, and the operator process itself (`start_operator`, `healthy`,
`stop_operator`).

Imported as `hack.launch` (hack/__init__.py says how the repository root is on the path).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "deploy" / "modelgate.yaml"
"""The chart rendered with its defaults (`make manifests`): one source for every install."""
INSTALL_KINDS = frozenset(
    {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)
"""The documents of MANIFEST installed after the CRDs where the operator runs from the checkout:
its namespace, the shipped roles (and the chart's ServiceAccount with its bindings), the admission
policies. Not the operator Deployment, its Services and PodDisruptionBudget (the operator runs
locally), nor the webhook configurations (the local operator writes its own, URL-based ones)."""


def install_documents(text: str) -> list[dict[str, Any]]:
    """The documents of a rendered manifest whose kind is in INSTALL_KINDS, in order."""
    return [d for d in yaml.safe_load_all(text) if d and d.get("kind") in INSTALL_KINDS]


def install_args() -> list[str]:
    """`kubectl apply` arguments for the install documents of MANIFEST (written to .cache/)."""
    docs = install_documents(MANIFEST.read_text(encoding="utf-8"))
    out = ROOT / ".cache" / "install" / "modelgate-install.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}")
    tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    tmp.replace(out)  # atomic: several launchers of one checkout may install at once
    return ["-f", str(out)]


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


# --- the operator process ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_operator(
    kubeconfig: Path,
    log: Path,
    *args: str,
    liveness_port: int,
    metrics_port: int,
    append: bool = False,
    detach: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `modelgate run` against `kubeconfig` with its output in `log`, the way a user runs it
    locally: this Python's `modelgate`, the given liveness and metrics ports, then `args`. With
    `detach`, in a session of its own (it outlives its caller: the demo); `env` is added to the
    environment (e.g. POD_NAME, a replica's leader election identity)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelgate",
                "run",
                "--kubeconfig",
                str(kubeconfig),
                "--liveness-port",
                str(liveness_port),
                "--metrics-port",
                str(metrics_port),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def healthy(liveness_port: int) -> bool:
    """Whether the operator's liveness endpoint answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{liveness_port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def stop_operator(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate the operator; kill it if it has not exited after `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


if __name__ == "__main__":
    print(
        yaml.safe_dump_all(install_documents(MANIFEST.read_text(encoding="utf-8")), sort_keys=False), end=""
    )
