#!/usr/bin/env python3
"""bench/peers: Flagger and modelgate side by side, on one control plane and one Prometheus (issue 17).

    make peers    # builds Flagger v1.36.1 (github.com/fluxcd/flagger) into the cache, once
    .venv/bin/python bench/peers.py [--n 100 1000] [--interval 10] [--window 5] [--drifting 3]
                                    [--flagger-arg=-kubeconfig-qps=1000 ...]
    .venv/bin/python bench/peers.py --smoke     # N=5, a window of 2 intervals, one drifting

Flagger is the closest peer: a Kubernetes operator that runs Prometheus metric checks and rolls back.
For each N, on a fresh bench control plane and Prometheus (bench/common.py) scraping one exporter
(gauge `bench_psi` by namespace, model, version; bench/monitoring.py's), the same metric, threshold
(max 0.25), interval and failure limit (Flagger's `analysis.threshold`, modelgate's `failureLimit`)
on both sides, one operator running at a time, so that Prometheus' own query counter counts that
operator's queries only:

1. Flagger, a local process (`-mesh-provider kubernetes`, its CRDs from the build, leader election
   off, watching its namespace only, otherwise its defaults, which its Helm chart keeps: API client
   QPS 100, burst 250): N Deployments, each with a Canary (provider `kubernetes`, hence Blue/Green by
   `analysis.iterations`) checking one MetricTemplate whose query selects the canary's target.
   Flagger analyses, and so queries, only while a canary progresses, so it is measured twice: every
   Canary Initialized (idle), then every target's pod template bumped and every Canary Progressing
   with its analysis running (`status.iterations` >= 2: the first iteration runs no metric check).
   Then `--drifting` canaries' value is raised over the threshold: from the value visible in
   Prometheus to the Canary's `status.phase` Failed (the rollback).
2. modelgate (`modelgate run`): N ModelDeployments on one MetricTemplate, every model Serving and
   checked (modelgate monitors serving models continuously and queries each template once per
   interval for all models). Then `--drifting` of them go v1 -> v2 and v2's value is raised: from the
   value visible in Prometheus to the status write recording RolledBack (bench/monitoring's way).

Each measurement window (`--window` intervals, from one interval after the state is reached; nobody
else queries Prometheus meanwhile): Prometheus' queries (its own counter), the operator's API requests
in its namespace (audit log: gets and writes, no lists or watches), its CPU seconds (/proc/PID/stat),
all per interval, and its RSS at the end.
Flagger's objects stay in place, stopped, while modelgate runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
from hack.launch import free_port

from bench.common import (
    IMAGE,
    KUBECONFIG,
    OPERATOR_AGENTS,
    PROM,
    ROOT,
    apply_many,
    cluster_down,
    cluster_up,
    count_operator_requests,
    cpu_seconds,
    kubectl,
    log,
    namespace_with_policy,
    operator,
    percentile,
    prometheus_down,
    prometheus_up,
    rss_mb,
)
from bench.monitoring import (
    FAILURE_LIMIT,
    METRICS,
    MODELDEPLOYMENTS,
    deploy,
    exporter,
    known_good,
    prom_queries_served,
    prom_query,
    templates,
    wait,
)

METRIC = {"psi": METRICS["psi"]}
"""The one metric both operators check: bench_psi, max 0.25."""
GAUGE, MAX, HEALTHY = METRIC["psi"]
DRIFTED = 0.9
CANARIES = ("flagger.app", "v1beta1", "canaries")
FLAGGER_NS = "peers-flagger"
"""Not bench-*: modelgate's operator watches those."""
FLAGGER_AGENTS = ("flagger",)
"""User agent of Flagger's API requests (client-go's default: the binary's name first)."""
ITERATIONS = 1_000_000
"""Blue/Green iterations: enough that no canary is promoted while measured."""


def flagger_dir() -> Path:
    """The folder hack/build-peers.sh builds Flagger into (keyed by a hash of the script), if built."""
    script = ROOT / "hack" / "build-peers.sh"
    key = hashlib.sha256(script.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("MODELGATE_CACHE") or Path.home() / ".cache" / "modelgate")
    folder = cache / "peers" / key
    if not (folder / ".complete").is_file():
        sys.exit(f"bench: Flagger is not built (no {folder}/.complete): run `make peers`")
    return folder


@dataclass(frozen=True)
class Usage:
    """What an operator cost over a measurement window, per interval (RSS at its end)."""

    queries: float
    gets: float
    writes: float
    cpu: float
    rss: float


def measure(pid: int, ns: str, agents: tuple[str, ...], interval: int, window: int) -> Usage:
    time.sleep(interval)  # the last objects to reach the state settle (their Events, status writes)
    since, q0, c0, t0 = dt.datetime.now(dt.UTC), prom_queries_served(), cpu_seconds(pid), time.monotonic()
    time.sleep(window * interval)  # the measurement window, not a test wait
    until, q1, c1, t1 = dt.datetime.now(dt.UTC), prom_queries_served(), cpu_seconds(pid), time.monotonic()
    rss = rss_mb(pid)
    time.sleep(2)  # the audit log is written in batches
    requests = count_operator_requests(since, ns, until, agents)
    gets = sum(v for k, v in requests.items() if k.startswith("get "))
    per = (t1 - t0) / interval
    return Usage((q1 - q0) / per, gets / per, (sum(requests.values()) - gets) / per, (c1 - c0) / per, rss)


def time_to_rollback(
    ns: str, names: list[str], rolled_back: Callable[[str], bool], timeout: float
) -> list[float]:
    """Per model (exporter label `model`): from its drifted value first visible in Prometheus to
    `rolled_back(name)` first seen true, polled every 0.2 s."""
    visible: dict[str, float] = {}
    rolled: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(rolled) < len(names) and time.monotonic() < deadline:
        now = time.monotonic()
        for r in prom_query(f'{GAUGE}{{namespace="{ns}"}} > {MAX}'):
            visible.setdefault(r["metric"]["model"], now)
        for name in names:
            if name not in rolled and rolled_back(name):
                rolled[name] = time.monotonic()
        time.sleep(0.2)
    return [rolled[x] - visible[x] for x in names if x in rolled and x in visible]


def custom_object(ns: str, resource: tuple[str, str, str], name: str) -> dict[str, Any]:
    api: Any = kubernetes.client.CustomObjectsApi()
    group, version, plural = resource
    return dict(api.get_namespaced_custom_object(group, version, ns, plural, name))


# --- Flagger ---------------------------------------------------------------------------------------


def flagger_objects(ns: str, names: list[str], interval: int) -> list[dict[str, Any]]:
    """A MetricTemplate with the metric's query for one canary, then per name a Deployment and its
    Canary: provider kubernetes (Blue/Green), the same threshold, limit and interval as modelgate."""
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "bench-psi", "namespace": ns},
        "spec": {
            "provider": {"type": "prometheus", "address": PROM},
            "query": f'max({GAUGE}{{namespace="{{{{ namespace }}}}", model="{{{{ target }}}}"}})',
        },
    }
    out: list[dict[str, Any]] = [template]
    for name in names:
        labels = {"app": name}
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {"name": "serve", "image": IMAGE, "ports": [{"containerPort": 8080}]}
                            ]
                        },
                    },
                },
            }
        )
        out.append(
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "provider": "kubernetes",
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "progressDeadlineSeconds": 3600,  # not the measure: pods may take long at large N
                    "service": {"port": 8080},
                    "analysis": {
                        "interval": f"{interval}s",
                        "threshold": FAILURE_LIMIT,
                        "iterations": ITERATIONS,
                        "metrics": [
                            {
                                "name": "psi",
                                "templateRef": {"name": "bench-psi", "namespace": ns},
                                "thresholdRange": {"max": MAX},
                            }
                        ],
                    },
                },
            }
        )
    return out


def start_flagger(folder: Path, ns: str, extra: list[str]) -> subprocess.Popen[bytes]:
    logfile = ROOT / ".cache" / "bench-flagger.log"
    with logfile.open("wb") as out:
        return subprocess.Popen(
            [
                str(folder / "flagger"),
                f"-kubeconfig={KUBECONFIG}",
                "-mesh-provider=kubernetes",
                f"-metrics-server={PROM}",
                f"-namespace={ns}",
                f"-port={free_port()}",  # its /metrics and /healthz
                "-enable-leader-election=false",
                "-log-level=info",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def bump_pod_templates(ns: str, names: list[str]) -> None:
    """A new revision of every target (an annotation in its pod template): each Canary progresses."""
    apps = kubernetes.client.AppsV1Api()
    body = {"spec": {"template": {"metadata": {"annotations": {"bench.modelgate.io/revision": "2"}}}}}
    for name in names:
        apps.patch_namespaced_deployment(name, ns, body)


def flagger(
    folder: Path, extra: list[str], n: int, interval: int, window: int, drifting: int, gauges: Any
) -> dict[str, Any]:
    kubectl("apply", "--server-side", "-f", str(folder / "flagger-crd.yaml"))
    kubectl("wait", "--for=condition=Established", "-f", str(folder / "flagger-crd.yaml"))
    kubectl("create", "namespace", FLAGGER_NS)
    names = [f"c{i}" for i in range(n)]
    for name in names:
        gauges["psi"].labels(FLAGGER_NS, name, "canary").set(HEALTHY)
    apply_many(flagger_objects(FLAGGER_NS, names, interval))
    proc = start_flagger(folder, FLAGGER_NS, extra)
    try:
        log(f"Flagger: {n} Canaries initializing")
        wait(
            FLAGGER_NS,
            "every Canary to be Initialized",
            lambda s: len(s) == n and all(st.get("phase") == "Initialized" for st in s.values()),
            timeout=600 + 2 * n,
            resource=CANARIES,
        )
        log("Flagger: every Canary Initialized (idle); measuring")
        idle = measure(proc.pid, FLAGGER_NS, FLAGGER_AGENTS, interval, window)
        bump_pod_templates(FLAGGER_NS, names)
        wait(
            FLAGGER_NS,
            "every Canary to be Progressing with its analysis running",
            lambda s: all(
                st.get("phase") == "Progressing" and st.get("iterations", 0) >= 2 for st in s.values()
            ),
            timeout=600 + 2 * n,
            resource=CANARIES,
        )
        log("Flagger: every Canary Progressing, analysis running; measuring")
        progressing = measure(proc.pid, FLAGGER_NS, FLAGGER_AGENTS, interval, window)
        drift = names[:drifting]
        for name in drift:
            gauges["psi"].labels(FLAGGER_NS, name, "canary").set(DRIFTED)
        log(f"Flagger: {drift} over the threshold; timing their rollback")
        delays = time_to_rollback(
            FLAGGER_NS,
            drift,
            lambda name: custom_object(FLAGGER_NS, CANARIES, name).get("status", {}).get("phase") == "Failed",
            timeout=20 * interval + n,
        )
    finally:
        proc.terminate()
        proc.wait(30)
    return {"idle": idle, "progressing": progressing, "delays": delays}


# --- modelgate -------------------------------------------------------------------------------------


def modelgate(n: int, interval: int, window: int, drifting: int, gauges: Any) -> dict[str, Any]:
    for t in templates(METRIC).values():
        kubectl(
            "apply", "-f", "-", input=json.dumps(t.model_dump(by_alias=True, exclude_none=True, mode="json"))
        )
    ns = namespace_with_policy(
        {"approvals": [{"role": "ethics-board", "approvers": {"groups": ["ethics-board"]}}]}
    )
    names = [f"m{i}" for i in range(n)]
    drift = names[:drifting]
    for name in names:
        gauges["psi"].labels(ns, name, "v1").set(HEALTHY)
    for name in drift:
        gauges["psi"].labels(ns, name, "v2").set(HEALTHY)
    with operator("--prometheus-url", PROM) as (proc, _metrics_port):
        log(f"modelgate: deploying {n} monitored models")
        deploy(ns, names, "v1", interval, METRIC, create=True)
        wait(
            ns,
            "every model to be Serving and checked on its metric",
            lambda s: (
                len(s) == n
                and all(st.get("phase") == "Serving" and st.get("metrics") for st in s.values())
                and all(known_good(s[d], "v1") for d in drift)
            ),
            timeout=600 + 2 * n,
        )
        log("modelgate: every model Serving and monitored; measuring")
        serving = measure(proc.pid, ns, OPERATOR_AGENTS, interval, window)
        deploy(ns, drift, "v2", interval, METRIC)
        wait(
            ns,
            "v2 of the drifting models to pass its check",
            lambda s: all(known_good(s[d], "v2") for d in drift),
        )
        for name in drift:
            gauges["psi"].labels(ns, name, "v2").set(DRIFTED)
        log(f"modelgate: {drift} v2 over the threshold; timing their rollback")
        delays = time_to_rollback(
            ns,
            drift,
            lambda name: (
                custom_object(ns, MODELDEPLOYMENTS, name).get("status", {}).get("phase") == "RolledBack"
            ),
            timeout=20 * interval + n,
        )
    return {"serving": serving, "delays": delays}


# --- the run ---------------------------------------------------------------------------------------


def run(folder: Path, extra: list[str], n: int, interval: int, window: int, drifting: int) -> dict[str, Any]:
    prometheus_up()
    # modelgate's pods, Flagger's primaries and canaries, v2 of the drifting models
    cluster_up(3 * n + drifting)
    try:
        gauges = exporter(METRIC)
        return {
            "flagger": flagger(folder, extra, n, interval, window, drifting, gauges),
            "modelgate": modelgate(n, interval, window, drifting, gauges),
        }
    finally:
        cluster_down()
        prometheus_down()


def delays_cell(delays: list[float], drifting: int) -> str:
    if not delays:
        return f"none of {drifting} observed"
    return f"{percentile(delays, 50):.1f} s / {max(delays):.1f} s ({len(delays)} of {drifting})"


def report(
    results: dict[int, dict[str, Any]], interval: int, window: int, drifting: int, command: str
) -> None:
    def row(n: int, who: str, u: Usage) -> str:
        return (
            f"| {n} | {who} | {u.queries:.1f} | {u.gets:.0f} / {u.writes:.0f} | {u.cpu:.2f} | {u.rss:.0f} |"
        )

    lines = [
        f"### bench/peers: Flagger v1.36.1 and modelgate, interval {interval} s, threshold / failureLimit "
        f"{FAILURE_LIMIT}, one metric ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `{command}`",
        "",
        f"Per interval, over a window of {window} intervals (from one interval after the state is reached); "
        "one operator running at a time.",
        "",
        "| N | operator, state | Prometheus queries (Prometheus' own counter) | API requests in its namespace: "
        "gets / writes (audit log) | CPU s | RSS MB (end) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for n, r in results.items():
        f, m = r["flagger"], r["modelgate"]
        lines += [
            row(n, f"Flagger, {n} Canaries Initialized (idle: no analysis)", f["idle"]),
            row(n, f"Flagger, {n} Canaries Progressing (Blue/Green analysis running)", f["progressing"]),
            row(n, f"modelgate, {n} models Serving, monitored", m["serving"]),
        ]
    lines += [
        "",
        "Flagger's Kubernetes client is limited to `-kubeconfig-qps` (100 per second unless `--flagger-arg` "
        "says otherwise): near 1,000 requests per 10 s its canaries' ticks stretch and its Events (counted "
        "as writes, also in the idle state) go out late.",
        "",
        "A metric over its threshold, from the value visible in Prometheus to the rollback written (seen "
        "by polling every 0.2 s): p50 / max.",
        "",
        "| N | Flagger: Canary phase Failed | modelgate: phase RolledBack |",
        "| --- | --- | --- |",
        *(
            f"| {n} | {delays_cell(r['flagger']['delays'], drifting)} | "
            f"{delays_cell(r['modelgate']['delays'], drifting)} |"
            for n, r in results.items()
        ),
        "",
        f"Expected from the designs: Flagger rolls back at the canary's tick after {FAILURE_LIMIT} failed "
        f"checks, within ({FAILURE_LIMIT} + 1) x interval = {(FAILURE_LIMIT + 1) * interval} s of the value "
        f"being visible; modelgate at the check making {FAILURE_LIMIT} consecutive failures, within "
        f"{FAILURE_LIMIT} x interval = {FAILURE_LIMIT * interval} s plus one round; both plus their writes.",
    ]
    print("\n".join(lines))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[100, 1000], help="Canaries / models per run")
    p.add_argument("--interval", type=int, default=10, help="analysis / monitoring interval, seconds")
    p.add_argument("--window", type=int, default=5, help="measurement window, in intervals")
    p.add_argument("--drifting", type=int, default=3, help="models pushed over the threshold per side")
    p.add_argument(
        "--flagger-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more flag for flagger, e.g. --flagger-arg=-kubeconfig-qps=1000 (default: its own, client QPS 100)",
    )
    p.add_argument("--smoke", action="store_true", help="a quick run: N=5, a window of 2, one drifting")
    args = p.parse_args()
    if args.smoke:
        args.n, args.window, args.drifting = [5], 2, 1
    folder = flagger_dir()
    command = ("python bench/peers.py " + " ".join(sys.argv[1:])).strip()
    results: dict[int, dict[str, Any]] = {}
    for n in args.n:
        results[n] = run(folder, args.flagger_arg, n, args.interval, args.window, args.drifting)
        if n != args.n[-1]:  # the tables so far, in case a larger N does not finish
            with contextlib.redirect_stdout(sys.stderr):
                report(results, args.interval, args.window, args.drifting, command)
    report(results, args.interval, args.window, args.drifting, command)
    complete = all(
        len(r[side]["delays"]) == args.drifting for r in results.values() for side in ("flagger", "modelgate")
    )
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
