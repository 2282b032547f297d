#!/usr/bin/env python3
"""bench/failover: the time from `kill -9` of the leader to the new leader's first write.

    .venv/bin/python bench/failover.py [--runs 5] [--lease-duration 15 --renew-deadline 10 --retry-period 2]

Two `modelgate run --leader-elect` replicas on a control plane of their own (tests/support/clusters.py,
"bench-failover", API audit log on). Each run kills the leader with SIGKILL
and at once creates a model with its evidence (so that the new leader has something to admit: a
steady state writes nothing), then reads from the API server's audit log, by the user agent that
names each replica:

- lease: kill -> the follower's first write, its update of the Lease (the acquisition);
- status: kill -> its first status write (the waiting model admitted).

The killed replica is started again as the next follower. Defaults are controller-runtime's
(lease 15 s, renew deadline 10 s, retry 2 s). Prints a Markdown block for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hack.launch import free_port
from tests.support import manifests as m
from tests.support.clusters import own_cluster
from tests.support.kube import Cluster, wait_until
from tests.support.operator import OperatorProcess, run_operator

LEASE = ("lease", "modelgate-leader", "modelgate-system")


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def audit(cluster: Cluster) -> list[dict[str, Any]]:
    out = []
    for line in (Path(cluster.kubeconfig).parent / "logs" / "audit.log").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def first_write(
    entries: list[dict[str, Any]], identity: str, resource: str, after: dt.datetime
) -> dt.datetime | None:
    """When the first write of `identity` to `resource` (e.g. leases, modeldeployments/status) was received."""
    for e in entries:
        ref = e.get("objectRef") or {}
        res = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        if (
            f"({identity})" in e.get("userAgent", "")
            and e.get("verb") in ("create", "update", "patch")
            and res == resource
            and e.get("stage") == "ResponseComplete"
        ):
            when = dt.datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00"))
            if when > after:
                return when
    return None


class Pair:
    def __init__(self, cluster: Cluster, stack: ExitStack, timings: list[str]) -> None:
        self.cluster, self.stack, self.timings = cluster, stack, timings
        self.procs: dict[str, OperatorProcess] = {}
        self.n = 0
        self.webhook_port = free_port()  # both replicas share it; 9443 may be another operator's

    def start(self) -> str:
        self.n += 1
        identity = f"bench-{uuid.uuid4().hex[:4]}-{self.n}"
        args = [
            "--leader-elect",
            *self.timings,
            "--namespace",
            "h-*",
            "--webhook-port",
            str(self.webhook_port),
        ]
        ca = Path(self.cluster.kubeconfig).parent / "webhook-client-ca.crt"
        if ca.is_file():
            args += ["--webhook-client-ca", str(ca)]
        log_path = ROOT / ".cache" / "bench-failover" / f"{identity}.log"
        op = self.stack.enter_context(
            run_operator(self.cluster.kubeconfig, log_path, *args, env={"POD_NAME": identity})
        )
        self.procs[identity] = op
        return identity

    def holder(self) -> str | None:
        lease = self.cluster.kubectl.get(*LEASE)
        return None if lease is None else lease["spec"].get("holderIdentity")


def model(kubectl: Any, ns: str, name: str) -> None:
    kubectl.apply(m.approval(f"{name}-ok", ns, name), as_user="bob", as_groups=("ethics-board",))
    kubectl.apply(m.evaluation(f"{name}-eval", ns, name), as_user="erin", as_groups=m.EVALUATORS)
    md = m.model_deployment(name, ns, replicas=1, approvals=(f"{name}-ok",), evaluations=(f"{name}-eval",))
    kubectl.apply(md, as_user="alice", as_groups=m.DEPLOYERS)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--lease-duration", default="15")
    p.add_argument("--renew-deadline", default="10")
    p.add_argument("--retry-period", default="2")
    args = p.parse_args()
    timings = [
        "--leader-election-lease-duration",
        args.lease_duration,
        "--leader-election-renew-deadline",
        args.renew_deadline,
        "--leader-election-retry-period",
        args.retry_period,
    ]
    os.environ["MODELGATE_CLUSTER_AUDIT"] = "1"
    lease_s: list[float] = []
    status_s: list[float] = []
    with own_cluster("bench-failover") as cluster, ExitStack() as stack:
        kubectl = cluster.kubectl
        kubectl("delete", "lease", LEASE[1], "-n", LEASE[2], "--ignore-not-found")
        pair = Pair(cluster, stack, timings)
        ns = f"h-{uuid.uuid4().hex[:6]}"
        kubectl("create", "namespace", ns)
        kubectl("label", "namespace", ns, f"modelgate.io/test={ns}")
        kubectl.apply(m.policy(f"p-{ns}", ns))
        leader = pair.start()
        wait_until("the first replica to lead", lambda: pair.holder() == leader, timeout=60)
        follower = pair.start()
        model(kubectl, ns, "warmup")
        wait_until(
            "the warm-up model to be admitted", lambda: _phase(kubectl, ns, "warmup") == "Serving", 120
        )
        for run in range(args.runs):
            time.sleep(3)  # let the follower observe a few renewals, as in a running cluster
            lease, status = failover(pair, ns, leader, follower, f"after-kill-{run}")
            lease_s.append(lease)
            status_s.append(status)
            log(f"run {run + 1}: lease {lease:.2f}s, first status write {status:.2f}s")
            leader, follower = follower, pair.start()
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
    report(args, lease_s, status_s)
    return 0


def failover(pair: Pair, ns: str, leader: str, follower: str, name: str) -> tuple[float, float]:
    """Kill the leader, create a model at once; seconds to the follower's Lease write, status write."""
    kubectl = pair.cluster.kubectl
    killed_at = dt.datetime.now(dt.UTC)
    os.kill(pair.procs[leader].proc.pid, signal.SIGKILL)
    pair.procs[leader].proc.wait(10)
    model(kubectl, ns, name)
    wait_until("the follower to lead", lambda: pair.holder() == follower, timeout=120)
    wait_until("the model to be admitted", lambda: _phase(kubectl, ns, name) == "Serving", 120)

    def measured() -> tuple[dt.datetime, dt.datetime] | None:
        entries = audit(pair.cluster)
        lease = first_write(entries, follower, "leases", killed_at)
        status = first_write(entries, follower, "modeldeployments/status", killed_at)
        return (lease, status) if lease and status else None

    lease_at, status_at = wait_until("the writes in the audit log", measured, timeout=120)
    return (lease_at - killed_at).total_seconds(), (status_at - killed_at).total_seconds()


def _phase(kubectl: Any, ns: str, name: str) -> str | None:
    obj = kubectl.get("mdep", name, ns) or {}
    return (obj.get("status") or {}).get("phase")


def report(args: argparse.Namespace, lease_s: list[float], status_s: list[float]) -> None:
    print(
        f"### Failover: `kill -9` of the leader -> the new leader's first write "
        f"({len(lease_s)} runs; lease {args.lease_duration} s, renew deadline {args.renew_deadline} s, "
        f"retry {args.retry_period} s)\n"
    )
    print("| measured from `kill -9` | median | max | runs |")
    print("|---|---|---|---|")
    for label, values in (("Lease acquired (first write)", lease_s), ("first status write", status_s)):
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {label} | {statistics.median(values):.1f} s | {max(values):.1f} s | {runs} |")


if __name__ == "__main__":
    sys.exit(main())
