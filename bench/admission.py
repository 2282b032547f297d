#!/usr/bin/env python3
"""bench/admission: N ModelDeployments applied at once, with their evidence already in place.

    .venv/bin/python bench/admission.py [--n 200] [--replicas 1]

Runs on the benchmarks' own control plane (bench/common.py) with API audit logging on, so that every
request the operator makes is counted from the API server's own record. Measures, per
ModelDeployment, the time from its create call returning to Admitted=True and to Ready=True as seen
by a watch; throughput; API requests made by the operator per admission (audit log, user agents of
Kopf and of the operator's client); and the operator's peak RSS (VmHWM).
Prints a Markdown block for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    API,
    CLUSTER_DIR,
    cluster_down,
    cluster_up,
    digest,
    evidence,
    log,
    namespace_with_policy,
    operator,
    peak_rss_mb,
    percentile,
)

OPERATOR_AGENTS = ("kopf", "modelgate-operator")


class Watcher(threading.Thread):
    """Records when each ModelDeployment is first seen Admitted=True and Ready=True."""

    def __init__(self, namespace: str) -> None:
        super().__init__(daemon=True)
        self.namespace = namespace
        self.admitted: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._watch()
            except kubernetes.client.exceptions.ApiException as e:
                log(f"watch restarted after {e.status} {e.reason}")  # e.g. 504 "Too large resource version"

    def _watch(self) -> None:
        api = kubernetes.client.CustomObjectsApi()
        while not self.stop.is_set():
            w = kubernetes.watch.Watch()
            for ev in w.stream(
                api.list_namespaced_custom_object,
                "modelgate.io",
                "v1alpha1",
                self.namespace,
                "modeldeployments",
                timeout_seconds=30,
            ):
                now = time.monotonic()
                obj = ev["object"]
                name = obj["metadata"]["name"]
                for c in (obj.get("status") or {}).get("conditions") or []:
                    if c["status"] == "True" and c["type"] == "Admitted":
                        self.admitted.setdefault(name, now)
                    if c["status"] == "True" and c["type"] == "Ready":
                        self.ready.setdefault(name, now)
                if self.stop.is_set():
                    w.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--keep", action="store_true", help="leave the bench control plane running (for analysis)")
    args = p.parse_args()
    n = args.n
    cluster_up()
    ns = namespace_with_policy(
        {
            "requiredCardFields": ["owner"],
            "separationOfDuties": True,
            "approvals": [{"role": "ethics-board", "approvers": {"groups": ["ethics-board"]}}],
            "evaluations": [{"metric": "accuracy", "min": 0.9, "maxAge": "30d"}],
        }
    )
    with operator() as (proc, _metrics_port):
        log(f"creating {n} approvals and {n} evaluations")
        refs = [{"name": "m", "version": f"v{i}", "digest": digest(i)} for i in range(n)]
        evidence(ns, refs, [str(i) for i in range(n)])
        mds = [
            {
                "apiVersion": API,
                "kind": "ModelDeployment",
                "metadata": {"name": f"m{i}", "namespace": ns},
                "spec": {
                    "model": {**refs[i], "uri": f"s3://models/m/v{i}"},
                    "card": {"owner": "bench@example.com", "riskLevel": "high"},
                    "serving": {"image": "registry.example/serve:1", "replicas": args.replicas},
                    "approvals": [{"name": f"a-{i}"}],
                    "evaluations": [{"name": f"e-{i}"}],
                },
            }
            for i in range(n)
        ]
        watcher = Watcher(ns)
        watcher.start()
        time.sleep(1)  # let the watch establish before the first create (a measurement, not a test)
        audit_start = dt.datetime.now(dt.UTC)
        api = kubernetes.client.ApiClient()
        api.user_agent = "modelgate-bench"
        custom = kubernetes.client.CustomObjectsApi(api)
        created: dict[str, float] = {}

        def create(md: dict[str, Any]) -> None:
            custom.create_namespaced_custom_object("modelgate.io", "v1alpha1", ns, "modeldeployments", md)
            created[md["metadata"]["name"]] = time.monotonic()

        log(f"applying {n} ModelDeployments at once")
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(create, mds))
        applied = time.monotonic() - t0
        deadline = time.monotonic() + args.timeout
        while len(watcher.ready) < n and time.monotonic() < deadline:
            time.sleep(0.5)
        t_admitted_all = max(watcher.admitted.values(), default=float("nan")) - t0
        t_ready_all = max(watcher.ready.values(), default=float("nan")) - t0
        rss = peak_rss_mb(proc.pid)
        watcher.stop.set()
    time.sleep(2)  # the audit log is written in batches
    requests = count_operator_requests(audit_start, ns)
    admit = [watcher.admitted[k] - created[k] for k in created if k in watcher.admitted]
    ready = [watcher.ready[k] - created[k] for k in created if k in watcher.ready]
    report(n, args.replicas, applied, admit, ready, t_admitted_all, t_ready_all, requests, rss)
    if not args.keep:
        cluster_down()
    return 0 if len(ready) == n else 1


def count_operator_requests(since: dt.datetime, ns: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    with open(CLUSTER_DIR / "logs" / "audit.log") as f:
        for line in f:
            ev = json.loads(line)
            agent = ev.get("userAgent", "")
            if not agent.startswith(OPERATOR_AGENTS):
                continue
            when = dt.datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00"))
            ref = ev.get("objectRef") or {}
            if when < since or ref.get("namespace") != ns or ev.get("verb") in ("watch", "list"):
                continue
            res = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            key = f"{ev['verb']} {res}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def report(
    n: int,
    replicas: int,
    applied: float,
    admit: list[float],
    ready: list[float],
    all_admitted: float,
    all_ready: float,
    requests: dict[str, int],
    rss: float,
) -> None:
    total = sum(requests.values())
    lines = [
        f"### bench/admission, N={n}, replicas={replicas} ({dt.date.today()})",
        "",
        f"Command: `.venv/bin/python bench/admission.py --n {n} --replicas {replicas}`",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| ModelDeployments created (16 client threads) | {n} in {applied:.1f} s |",
        f"| admitted / ready | {len(admit)} / {len(ready)} |",
        f"| apply-to-Admitted p50 / p99 / max | {percentile(admit, 50):.2f} s / "
        f"{percentile(admit, 99):.2f} s / {max(admit):.2f} s |",
        f"| apply-to-Ready p50 / p99 / max | {percentile(ready, 50):.2f} s / {percentile(ready, 99):.2f} s "
        f"/ {max(ready):.2f} s |",
        f"| first create to all Admitted / all Ready | {all_admitted:.1f} s / {all_ready:.1f} s |",
        f"| throughput (admissions per second, first create to all Admitted) | {n / all_admitted:.0f} |",
        f"| operator API requests per admission (audit log, writes and reads, no watches) | "
        f"{total / n:.2f} |",
        f"| operator peak RSS (VmHWM) | {rss:.0f} MB |",
        "",
        "Operator requests by verb and resource: "
        + ", ".join(f"{k} {v}" for k, v in sorted(requests.items(), key=lambda kv: -kv[1])),
    ]
    print("\n".join(lines))
    print(json.dumps({"n": n, "admit_p50": statistics.median(admit) if admit else None}), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
