#!/usr/bin/env python3
"""bench/reconnect: how long the operator takes to see the world again after a control plane restart.

    .venv/bin/python bench/reconnect.py [--runs 3] [--components kube-apiserver,etcd,kube-controller-manager]

One `modelgate run` on a control plane of its own ("control" in tests/support/clusters.py, every port
+1000 more, so that it does not meet the test module's; do not run both at once: they share the
state folder). Each run prepares two models in a fresh namespace: `revoke`, Serving, and `late`,
Blocked for want of its evaluation. It restarts one component with `hack/cluster.py restart` and,
the moment the command returns (the component answers its health endpoint), deletes `revoke`'s
approval and submits `late`'s evaluation, each retried until the API server takes it. Measured
from that moment ("back"):

- deletion seen: `revoke`'s status says Blocked (suspended);
- evidence seen: `late` is admitted (its status leaves Blocked);

polled with kubectl every 0.1 s (about 0.2 s resolution). Prints a Markdown block for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hack.launch import client_ca_args
from tests.support import manifests as m
from tests.support.clusters import OFFSETS, own_cluster
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import run_operator

NAME = "control"
COMPONENTS = ("kube-apiserver", "etcd", "kube-controller-manager")


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def phase(kubectl: Kubectl, ns: str, name: str) -> str | None:
    obj = kubectl.get("mdep", name, ns) or {}
    return (obj.get("status") or {}).get("phase")


def prepare(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, f"modelgate.io/test={ns}")
    kubectl.apply(m.policy(f"p-{ns}", ns))
    m.approve(kubectl, m.approval("revoke-ok", ns, "revoke"))
    m.submit(kubectl, m.evaluation("revoke-eval", ns, "revoke"))
    m.deploy(
        kubectl,
        m.model_deployment("revoke", ns, replicas=1, approvals=("revoke-ok",), evaluations=("revoke-eval",)),
    )
    m.approve(kubectl, m.approval("late-ok", ns, "late"))
    m.deploy(
        kubectl,
        m.model_deployment("late", ns, replicas=1, approvals=("late-ok",), evaluations=("late-eval",)),
    )
    wait_until("revoke to serve", lambda: phase(kubectl, ns, "revoke") == "Serving", 180)
    wait_until("late to be blocked", lambda: phase(kubectl, ns, "late") == "Blocked", 60)


def retried(kubectl: Kubectl, *args: str, input: str | None = None) -> None:
    def accepted() -> bool:
        return kubectl(*args, "--request-timeout=3s", input=input, check=False).returncode == 0

    wait_until(f"kubectl {' '.join(args[:3])} to be accepted", accepted, timeout=120, interval=0.1)


def one_run(cluster: Cluster, env: dict[str, str], component: str) -> tuple[float, float]:
    kubectl = cluster.kubectl
    ns = f"cp-{uuid.uuid4().hex[:6]}"
    prepare(kubectl, ns)
    script = [sys.executable, str(ROOT / "hack" / "cluster.py"), "restart", component]
    subprocess.run(script, env=env, check=True, capture_output=True)
    back = time.monotonic()
    retried(kubectl, "delete", "modelapproval", "revoke-ok", "-n", ns)
    evaluation = m.evaluation("late-eval", ns, "late")
    who = ("--as=erin", *(f"--as-group={g}" for g in m.EVALUATORS))
    retried(kubectl, "apply", "-f", "-", *who, input=json.dumps(evaluation))
    seen: dict[str, float] = {}

    def both() -> bool:
        if "deletion" not in seen and phase(kubectl, ns, "revoke") == "Blocked":
            seen["deletion"] = time.monotonic() - back
        if "evidence" not in seen and phase(kubectl, ns, "late") not in ("Blocked", None):
            seen["evidence"] = time.monotonic() - back
        return len(seen) == 2

    wait_until("the operator to see both changes", both, timeout=180, interval=0.1)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
    kubectl("delete", "governancepolicy", f"p-{ns}", "--ignore-not-found", check=False)
    return seen["deletion"], seen["evidence"]


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--components", default=",".join(COMPONENTS))
    args = p.parse_args()
    components = [c for c in args.components.split(",") if c]
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        p.error(f"unknown component {', '.join(unknown)}: one of {', '.join(COMPONENTS)}")
    base = int(os.environ.get("MODELGATE_CLUSTER_PORT_OFFSET", "0")) + 1000
    os.environ["MODELGATE_CLUSTER_PORT_OFFSET"] = str(base)
    results: dict[str, list[tuple[float, float]]] = {c: [] for c in components}
    with own_cluster(NAME) as cluster:
        env = {
            **os.environ,
            "MODELGATE_CLUSTER_DIR": str(Path(cluster.kubeconfig).parent),
            "MODELGATE_CLUSTER_PORT_OFFSET": str(base + OFFSETS[NAME]),
        }
        oplog = ROOT / ".cache" / "bench-reconnect" / "operator.log"
        args_op = ("--namespace", "cp-*", *client_ca_args(cluster.kubeconfig))
        with run_operator(cluster.kubeconfig, oplog, *args_op) as op:
            pid = op.proc.pid
            for component in components:
                for run in range(args.runs):
                    deletion, evidence = one_run(cluster, env, component)
                    results[component].append((deletion, evidence))
                    log(f"{component} run {run + 1}: deletion seen {deletion:.2f}s, evidence {evidence:.2f}s")
            if op.proc.pid != pid or op.proc.poll() is not None:
                sys.exit("bench: the operator did not survive the restarts")
    report(args.runs, results)
    return 0


def report(runs: int, results: dict[str, list[tuple[float, float]]]) -> None:
    print(f"### Control plane restarts: component back -> the operator's reaction ({runs} runs each)\n")
    print(
        "| restarted | deletion seen: median | max | evidence seen: median | max | runs (deletion/evidence, s) |"
    )
    print("|---|---|---|---|---|---|")
    for component, values in results.items():
        d = [v[0] for v in values]
        e = [v[1] for v in values]
        runs_text = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in values)
        print(
            f"| {component} | {statistics.median(d):.1f} s | {max(d):.1f} s | "
            f"{statistics.median(e):.1f} s | {max(e):.1f} s | {runs_text} |"
        )


if __name__ == "__main__":
    sys.exit(main())
