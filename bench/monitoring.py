#!/usr/bin/env python3
"""bench/monitoring: Prometheus queries per interval with MetricTemplates, and drift-to-rollback time.

    .venv/bin/python bench/monitoring.py [--n 1000] [--interval 10] [--drifting 3]

1. Side by side, in one run, against a real Prometheus scraping a real exporter (N models x 3
   metrics): the batched path (3 MetricTemplates, each queried once and fanned out) and the naive
   path (one inline query per model and metric). Counts queries both from the client and from
   Prometheus' own query counter, checks both paths read the same values, and times them.
2. N ModelDeployments monitored by the operator on the 3 templates (benchmarks' own control
   plane): Prometheus queries the operator makes per interval, from its /metrics.
3. `--drifting` models are taken from v1 to v2 before the N others are created (their pods then
   wait behind no others'), and once the N are monitored v2's PSI is raised above its threshold in
   the exporter. Measured per model: from the drifted value first visible in Prometheus to the status
   write that records the rollback. Target (issue 6): under failureLimit x interval (the checks
   needed to reach the limit) + one interval + 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import json
import multiprocessing
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

import kubernetes
import urllib3
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    API,
    IMAGE,
    PROM,
    PROM_TARGETS,
    apply_many,
    cluster_down,
    cluster_up,
    create_many,
    digest,
    evidence,
    kubectl,
    log,
    namespace_with_policy,
    operator,
    peak_rss_mb,
    percentile,
    prometheus_down,
    prometheus_up,
)
from modelgate.api.conditions import PHASE_SERVING
from modelgate.api.v1alpha1 import MetricCheck, MetricTemplate
from modelgate.decide.revision import revision_id
from modelgate.observe.batch import CheckRequest, run_checks
from modelgate.observe.metrics import VERDICT_DELAY_BUCKETS
from modelgate.observe.prometheus import PrometheusConfig, PrometheusSource

METRICS = {
    "psi": ("bench_psi", 0.25, 0.02),
    "error-rate": ("bench_error_rate", 0.02, 0.005),
    "latency-p99": ("bench_latency_p99", 0.25, 0.1),
}
"""metric -> (exported gauge, max threshold, healthy value)."""
FAILURE_LIMIT = 2
"""Consecutive failing checks before the model's onDrift acts."""


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


class _Exposition:
    """The exporter's page, served by a process of its own and rendered again only after a value
    changed. At 10,000 models a render of 30,000 series takes the bench's Python over a second, and
    while the bench parses a list of every model its GIL is not the exporter's: scrapes served by a
    thread of the bench timed out (the bench Prometheus' timeout is 1 s), and a failed scrape marks
    every series stale, so the operator read "no data" for every model in that round. The serving
    process keeps the last page it was sent; a thread of the bench renders a new one when stale."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.stale = True
        self._conn: Any = None

    def serve(self) -> int:
        """Start the serving process and the publishing thread; returns the port."""
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        ctx.Process(target=_serve_pages, args=(child,), daemon=True, name="bench-exporter").start()
        port = int(self._conn.recv())
        self._publish()
        threading.Thread(target=self._publishing, daemon=True).start()
        return port

    def _publish(self) -> None:
        self.stale = False  # a set during the render makes it stale again
        self._conn.send_bytes(generate_latest(self.registry))

    def _publishing(self) -> None:
        while True:
            if self.stale:
                self._publish()
            time.sleep(0.1)


def _serve_pages(conn: Any) -> None:
    """The exporter's process: serve the last page received over `conn` on a free port (sent back)."""
    latest = [b""]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = latest[0]
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a scrape gave up
                self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(server.server_address[1])
    while True:
        try:
            latest[0] = conn.recv_bytes()
        except EOFError:  # the bench has ended
            return


class _Child:
    def __init__(self, child: Any, exposition: _Exposition) -> None:
        self._child, self._exposition = child, exposition

    def set(self, value: float) -> None:
        self._child.set(value)
        self._exposition.stale = True


class _Gauge:
    """A Gauge whose every set marks the exposition stale."""

    def __init__(self, gauge: Gauge, exposition: _Exposition) -> None:
        self._gauge, self._exposition = gauge, exposition

    def labels(self, *values: str) -> _Child:
        return _Child(self._gauge.labels(*values), self._exposition)


def exporter(metrics: dict[str, tuple[str, float, float]] = METRICS) -> dict[str, _Gauge]:
    """A gauge per metric (labels namespace, model, version), served over HTTP on a free port that the
    bench Prometheus scrapes (a target file in PROM_TARGETS, replacing any earlier exporter's)."""
    registry = CollectorRegistry()
    exposition = _Exposition(registry)
    gauges = {
        m: _Gauge(Gauge(g, m, ["namespace", "model", "version"], registry=registry), exposition)
        for m, (g, _, _) in metrics.items()
    }
    port = exposition.serve()
    (PROM_TARGETS / "bench.json").write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"]}]))
    return gauges


def templates(metrics: dict[str, tuple[str, float, float]] = METRICS) -> dict[str, MetricTemplate]:
    return {
        f"bench-{m}": MetricTemplate.model_validate(
            {
                "apiVersion": API,
                "kind": "MetricTemplate",
                "metadata": {"name": f"bench-{m}"},
                "spec": {"query": f"max by (namespace, model, version) ({gauge})"},
            }
        )
        for m, (gauge, _, _) in metrics.items()
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


def scrape(metrics_port: int) -> dict[str, float]:
    """The operator's /metrics, summed over labels other than a histogram's `le` (kept as `name[le]`)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + (f"[{float(sample.labels['le'])}]" if "le" in sample.labels else "")
            out[key] = out.get(key, 0.0) + sample.value
    return out


def rounds(before: dict[str, float], after: dict[str, float], interval: int) -> dict[str, float]:
    """Monitoring rounds between two scrapes: how many, their mean duration, and how many of the
    verdicts they led to were decided within one interval of the round's start (a model passing
    again is decided by the round itself and wakes no pass: `unchanged`)."""
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    bound = min(b for b in VERDICT_DELAY_BUCKETS if b >= interval)
    count = delta.get("modelgate_monitoring_round_duration_seconds_count", 0.0)
    return {
        "rounds": count,
        "round_mean": delta.get("modelgate_monitoring_round_duration_seconds_sum", 0.0) / count
        if count
        else 0.0,
        "verdicts": delta.get("modelgate_monitoring_verdict_delay_seconds_count", 0.0),
        "within": delta.get(f"modelgate_monitoring_verdict_delay_seconds_bucket[{float(bound)}]", 0.0),
        "unchanged": delta.get("modelgate_monitoring_unchanged_total", 0.0),
        "bound": bound,
    }


def md(
    ns: str, name: str, version: str, interval: int, metrics: dict[str, tuple[str, float, float]] = METRICS
) -> dict[str, Any]:
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
                    {
                        "name": m,
                        "templateRef": {"name": f"bench-{m}"},
                        "max": mx,
                        "failureLimit": FAILURE_LIMIT,
                    }
                    for m, (_, mx, _) in metrics.items()
                ],
            },
        },
    }


def deploy(
    ns: str,
    names: list[str],
    version: str,
    interval: int,
    metrics: dict[str, tuple[str, float, float]] = METRICS,
    *,
    create: bool = False,
) -> None:
    """Evidence for `version` of each of `names`, then their ModelDeployments: created (new ones,
    many client threads) or applied (an update)."""
    docs = [md(ns, n, version, interval, metrics) for n in names]
    refs = [
        {k: d["spec"]["model"][k] for k in ("name", "version", "digest")}
        | {"revision": revision_id(d["spec"])}
        for d in docs
    ]
    evidence(ns, refs, [f"{n}-{version}" for n in names])
    if create:
        create_many(docs, "alice", "deployers")
    else:
        apply_many(docs, "--as=alice", "--as-group=deployers")


MODELDEPLOYMENTS = ("modelgate.io", "v1alpha1", "modeldeployments")
"""A custom resource: group, version, plural."""


def statuses(ns: str, resource: tuple[str, str, str] = MODELDEPLOYMENTS) -> dict[str, dict[str, Any]]:
    """The status of each object of `resource` in `ns`, by name: listed in pages of 500 (a single
    list of 10,000 models is 78 MB, which a busy API server cut off mid-answer), a page the
    connection dropped under read again."""
    api: Any = kubernetes.client.CustomObjectsApi()
    group, version, plural = resource
    out: dict[str, dict[str, Any]] = {}
    token: str | None = None
    while True:
        for attempt in range(5):
            try:
                page = api.list_namespaced_custom_object(
                    group, version, ns, plural, limit=500, _continue=token, _request_timeout=120
                )
                break
            except (urllib3.exceptions.HTTPError, OSError):
                if attempt == 4:
                    raise
                time.sleep(2)
        out |= {o["metadata"]["name"]: o.get("status") or {} for o in page["items"]}
        token = page["metadata"].get("continue")
        if not token:
            return out


def wait(
    ns: str, what: str, pred: Any, timeout: float = 900, resource: tuple[str, str, str] = MODELDEPLOYMENTS
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = statuses(ns, resource)
        if pred(seen):
            return
        time.sleep(max(1.0, len(seen) / 500))  # listing 10,000 models costs the API server seconds
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
    cluster_up(n + args.drifting)
    ns = namespace_with_policy(
        {"approvals": [{"role": "ethics-board", "approvers": {"groups": ["ethics-board"]}}]}
    )
    drifting = [f"d{j}" for j in range(args.drifting)]
    gauges = exporter()
    for i in range(n):
        for m, (_, _, healthy) in METRICS.items():
            gauges[m].labels(ns, f"m{i}", "v1").set(healthy)
    for name in drifting:
        for version in ("v1", "v2"):
            for m, (_, _, healthy) in METRICS.items():
                gauges[m].labels(ns, name, version).set(healthy)
    while len(prom_query("bench_psi")) < n:
        time.sleep(0.5)

    log(f"side by side: {n} models x 3 metrics, templates vs one query per model and metric")
    sbs = side_by_side(ns, n)

    for t in templates().values():
        kubectl(
            "apply", "-f", "-", input=json.dumps(t.model_dump(by_alias=True, exclude_none=True, mode="json"))
        )
    with operator("--prometheus-url", PROM) as (proc, metrics_port):
        # The drifting models first, on both versions: at 10,000 the control plane takes most of an
        # hour to start every pod, and pods queued behind 10,000 others would hold v2 back as long.
        log(f"deploying {len(drifting)} models that will drift, v1 then v2")
        deploy(ns, drifting, "v1", interval, create=True)
        wait(
            ns,
            "the drifting models to serve v1 and pass its checks",
            lambda s: all(d in s and known_good(s[d], "v1") for d in drifting),
        )
        deploy(ns, drifting, "v2", interval)
        wait(
            ns,
            "v2 of the drifting models to pass its checks",
            lambda s: all(known_good(s[d], "v2") for d in drifting),
        )
        log(f"deploying {n} monitored models")
        deploy(ns, [f"m{i}" for i in range(n)], "v1", interval, create=True)
        # Monitored from admission on; at 10,000 the pods take the control plane tens of minutes,
        # which the monitor does not wait for, so neither does the measurement window.
        wait(
            ns,
            "every model to be checked on its 3 metrics",
            lambda s: (
                len(s) == n + len(drifting)
                and all(len(st.get("metrics") or []) == len(METRICS) for st in s.values())
            ),
            timeout=3600,
        )
        m0, t0 = scrape(metrics_port), time.monotonic()
        time.sleep(5 * interval)  # a measurement window of five intervals, not a test wait
        m1 = scrape(metrics_port)
        queries = "modelgate_prometheus_query_duration_seconds_count"
        per_interval = (m1[queries] - m0[queries]) / ((time.monotonic() - t0) / interval)
        window = rounds(m0, m1, interval)
        window["serving"] = sum(1 for st in statuses(ns).values() if st.get("phase") == PHASE_SERVING)
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
        peak = peak_rss_mb(proc.pid)
    delays = [rolled[d] - visible[d] for d in drifting if d in rolled and d in visible]
    report(n, interval, sbs, per_interval, window, delays, len(drifting), peak)
    cluster_down()
    prometheus_down()
    return 0 if len(delays) == len(drifting) else 1


def report(
    n: int,
    interval: int,
    sbs: dict[str, Any],
    per_interval: float,
    window: dict[str, float],
    delays: list[float],
    d: int,
    peak: float,
) -> None:
    bound = FAILURE_LIMIT * interval + interval + 5
    t, naive = sbs["templates"], sbs["one query per model and metric"]
    print(
        "\n".join(
            [
                f"### bench/monitoring, N={n} models x 3 metrics, interval {interval}s, failureLimit {FAILURE_LIMIT} "
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
                f"| one monitoring round (all queries, readings handed out), mean of {window['rounds']:.0f} | "
                f"{window['round_mean']:.2f} s |",
                f"| verdicts decided within {window['bound']:g} s of their round's start (interval {interval} s) | "
                f"{window['within']:.0f} of {window['verdicts']:.0f} |",
                f"| of those, passing again and decided by the round itself (no reconcile pass) | "
                f"{window['unchanged']:.0f} |",
                f"| drift visible in Prometheus -> rollback written, {len(delays)} of {d} models: p50 / max | "
                f"{percentile(delays, 50):.1f} s / {max(delays):.1f} s |"
                if delays
                else "| rollback | none observed |",
                f"| target: failureLimit x interval + one interval + 5 s | {bound} s |",
                f"| models Serving (pods Ready) during the window | {window['serving']:.0f} of {n + d} |",
                f"| operator peak RSS (VmHWM) | {peak:.0f} MB |",
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
