#!/usr/bin/env python3
"""bench/monitoring: Prometheus queries per interval with MetricTemplates, and drift-to-rollback time.

    .venv/bin/python bench/monitoring.py [--n 1000] [--interval 10] [--drifting 3]

1. Side by side, in one run, against a real Prometheus scraping a real exporter (N models x 3
   metrics): the batched path (3 MetricTemplates, each queried once and fanned out) and the naive
   path (one inline query per model and metric). Counts queries both from the client and from
   Prometheus' own query counter, checks both paths read the same values, and times them.
2. N ModelDeployments monitored by the operator on the 3 templates (benchmarks' own control
   plane): Prometheus queries the operator makes per interval, from its /metrics.
3. `--drifting` models are taken from v1 to v2, then v2's PSI is raised above its threshold in the
   exporter. Measured per model: from the drifted value first visible in Prometheus to the status
   write that records the rollback. Target (issue 6): under failureLimit x interval (the checks
   needed to reach the limit) + one interval + 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

import kubernetes
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from bench.common import (
    API,
    IMAGE,
    PROM,
    PROM_TARGETS,
    cluster_down,
    cluster_up,
    digest,
    evidence,
    kubectl,
    log,
    namespace_with_policy,
    operator,
    percentile,
    prometheus_down,
    prometheus_up,
)
from modelgate.api.v1alpha1 import MetricCheck, MetricTemplate
from modelgate.decide.revision import revision_id
from modelgate.observe.batch import CheckRequest, run_checks
from modelgate.observe.prometheus import PrometheusConfig, PrometheusSource

METRICS = {
    "psi": ("bench_psi", 0.25, 0.02),
    "error-rate": ("bench_error_rate", 0.02, 0.005),
    "latency-p99": ("bench_latency_p99", 0.25, 0.1),
}
"""metric -> (exported gauge, max threshold, healthy value)."""


def prom_query(q: str) -> list[dict[str, Any]]:
    url = f"{PROM}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=10) as r:
        return list(json.loads(r.read())["data"]["result"])


def prom_queries_served() -> float:
    """Prometheus' own count of evaluated queries."""
    with urllib.request.urlopen(f"{PROM}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('prometheus_engine_query_duration_seconds_count{slice="inner_eval"}'):
                return float(line.split()[-1])
    return float("nan")


def templates() -> dict[str, MetricTemplate]:
    return {
        f"bench-{m}": MetricTemplate.model_validate(
            {
                "apiVersion": API,
                "kind": "MetricTemplate",
                "metadata": {"name": f"bench-{m}"},
                "spec": {"query": f"max by (namespace, model, version) ({gauge})"},
            }
        )
        for m, (gauge, _, _) in METRICS.items()
    }


def checks(inline: bool) -> list[MetricCheck]:
    out = []
    for m, (gauge, mx, _) in METRICS.items():
        where = 'namespace="{{namespace}}", model="{{model}}", version="{{version}}"'
        ref = {"query": f"max({gauge}{{{where}}})"} if inline else {"templateRef": {"name": f"bench-{m}"}}
        out.append(MetricCheck.model_validate({"name": m, "max": mx, **ref}))
    return out


def side_by_side(ns: str, n: int) -> dict[str, Any]:
    source = PrometheusSource(PrometheusConfig(PROM, timeout=30, concurrency=8))
    result: dict[str, Any] = {}
    samples = {}
    for label, inline in (("templates", False), ("one query per model and metric", True)):
        reqs = [CheckRequest(ns, f"m{i}", f"m{i}", "v1", c) for i in range(n) for c in checks(inline)]
        before = prom_queries_served()
        t0 = time.monotonic()
        res = asyncio.run(run_checks(source, templates(), reqs))
        took = time.monotonic() - t0
        served = prom_queries_served() - before
        samples[label] = {k: s.value for k, s in res.samples.items()}
        result[label] = {
            "checks": len(reqs),
            "queries": res.queries,
            "served": served,
            "seconds": took,
            "with_value": sum(1 for s in res.samples.values() if s.value is not None),
        }
    a, b = samples.values()
    result["same_values"] = a == b
    source.close()
    return result


def operator_queries(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("modelgate_prometheus_query_duration_seconds_count"):
                return float(line.split()[-1])
    return 0.0


def md(ns: str, name: str, version: str, interval: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": {
                "name": name,
                "version": version,
                "uri": f"s3://m/{name}/{version}",
                "digest": digest(f"{name}-{version}"),
            },
            "card": {"owner": "bench@example.com", "riskLevel": "high"},
            "serving": {"image": IMAGE, "replicas": 1},
            "approvals": [{"name": f"a-{name}-{version}"}],
            "evaluations": [{"name": f"e-{name}-{version}"}],
            "monitoring": {
                "interval": f"{interval}s",
                "onDrift": "rollback",
                "metrics": [
                    {"name": m, "templateRef": {"name": f"bench-{m}"}, "max": mx, "failureLimit": 2}
                    for m, (_, mx, _) in METRICS.items()
                ],
            },
        },
    }


def deploy(ns: str, names: list[str], version: str, interval: int) -> None:
    docs = [md(ns, n, version, interval) for n in names]
    refs = [
        {k: d["spec"]["model"][k] for k in ("name", "version", "digest")}
        | {"revision": revision_id(d["spec"])}
        for d in docs
    ]
    evidence(ns, refs, [f"{n}-{version}" for n in names])
    for i in range(0, len(docs), 250):
        kubectl(
            "apply",
            "--as=alice",
            "--as-group=deployers",
            "-f",
            "-",
            input="\n---\n".join(json.dumps(d) for d in docs[i : i + 250]),
        )


def statuses(ns: str) -> dict[str, dict[str, Any]]:
    api: Any = kubernetes.client.CustomObjectsApi()
    items = api.list_namespaced_custom_object("modelgate.io", "v1alpha1", ns, "modeldeployments")["items"]
    return {o["metadata"]["name"]: o.get("status") or {} for o in items}


def wait(ns: str, what: str, pred: Any, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred(statuses(ns)):
            return
        time.sleep(1)
    sys.exit(f"bench: timed out waiting for {what}")


def known_good(st: dict[str, Any], version: str) -> bool:
    return version in [g["version"] for g in st.get("knownGood") or []]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--interval", type=int, default=10, help="monitoring interval, seconds")
    p.add_argument("--drifting", type=int, default=3)
    args = p.parse_args()
    n, interval = args.n, args.interval

    prometheus_up()
    cluster_up()
    ns = namespace_with_policy(
        {"approvals": [{"role": "ethics-board", "approvers": {"groups": ["ethics-board"]}}]}
    )
    drifting = [f"d{j}" for j in range(args.drifting)]
    registry = CollectorRegistry()
    gauges = {
        m: Gauge(g, m, ["namespace", "model", "version"], registry=registry)
        for m, (g, _, _) in METRICS.items()
    }
    for i in range(n):
        for m, (_, _, healthy) in METRICS.items():
            gauges[m].labels(ns, f"m{i}", "v1").set(healthy)
    for name in drifting:
        for version in ("v1", "v2"):
            for m, (_, _, healthy) in METRICS.items():
                gauges[m].labels(ns, name, version).set(healthy)
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    (PROM_TARGETS / "bench.json").write_text(
        json.dumps([{"targets": [f"127.0.0.1:{server.server_address[1]}"]}])
    )
    while len(prom_query("bench_psi")) < n:
        time.sleep(0.5)

    log(f"side by side: {n} models x 3 metrics, templates vs one query per model and metric")
    sbs = side_by_side(ns, n)

    for t in templates().values():
        kubectl(
            "apply", "-f", "-", input=json.dumps(t.model_dump(by_alias=True, exclude_none=True, mode="json"))
        )
    with operator("--prometheus-url", PROM) as (_proc, metrics_port):
        log(f"deploying {n} monitored models and {len(drifting)} that will drift")
        deploy(ns, [f"m{i}" for i in range(n)] + drifting, "v1", interval)
        wait(
            ns,
            "every model to serve and pass its checks",
            lambda s: len(s) == n + len(drifting) and all(known_good(st, "v1") for st in s.values()),
        )
        q0, t0 = operator_queries(metrics_port), time.monotonic()
        time.sleep(5 * interval)  # a measurement window of five intervals, not a test wait
        per_interval = (operator_queries(metrics_port) - q0) / ((time.monotonic() - t0) / interval)
        deploy(ns, drifting, "v2", interval)
        wait(
            ns,
            "v2 of the drifting models to pass its checks",
            lambda s: all(known_good(s[d], "v2") for d in drifting),
        )
        for d in drifting:
            gauges["psi"].labels(ns, d, "v2").set(0.9)
        visible: dict[str, float] = {}
        rolled: dict[str, float] = {}
        deadline = time.monotonic() + 10 * interval + 60
        while len(rolled) < len(drifting) and time.monotonic() < deadline:
            now = time.monotonic()
            for r in prom_query(f'bench_psi{{namespace="{ns}", version="v2"}} > 0.25'):
                visible.setdefault(r["metric"]["model"], now)
            for d, st in statuses(ns).items():
                if d in drifting and st.get("phase") == "RolledBack":
                    rolled.setdefault(d, time.monotonic())
            time.sleep(0.2)
    delays = [rolled[d] - visible[d] for d in drifting if d in rolled and d in visible]
    report(n, interval, sbs, per_interval, delays, len(drifting))
    cluster_down()
    prometheus_down()
    return 0 if len(delays) == len(drifting) else 1


def report(
    n: int, interval: int, sbs: dict[str, Any], per_interval: float, delays: list[float], d: int
) -> None:
    bound = 2 * interval + interval + 5
    t, naive = sbs["templates"], sbs["one query per model and metric"]
    print(
        "\n".join(
            [
                f"### bench/monitoring, N={n} models x 3 metrics, interval {interval}s, failureLimit 2 "
                f"({time.strftime('%Y-%m-%d')})",
                "",
                f"Command: `.venv/bin/python bench/monitoring.py --n {n} --interval {interval} --drifting {d}`",
                "",
                "| path | checks | queries (client) | queries (Prometheus' own count) | wall time | checks with a value |",
                "| --- | --- | --- | --- | --- | --- |",
                *(
                    f"| {label} | {r['checks']} | {r['queries']} | {r['served']:.0f} | {r['seconds']:.2f} s | "
                    f"{r['with_value']} |"
                    for label, r in (
                        ("MetricTemplates (batched)", t),
                        ("one query per model and metric", naive),
                    )
                ),
                "",
                f"Both paths read the same value for every check: {sbs['same_values']}.",
                "",
                "| measure | value |",
                "| --- | --- |",
                f"| operator's Prometheus queries per interval, {n} models on 3 templates | {per_interval:.1f} |",
                f"| drift visible in Prometheus -> rollback written, {len(delays)} of {d} models: p50 / max | "
                f"{percentile(delays, 50):.1f} s / {max(delays):.1f} s |"
                if delays
                else "| rollback | none observed |",
                f"| target: failureLimit x interval + one interval + 5 s | {bound} s |",
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
