#!/usr/bin/env python3
"""bench/admission: N ModelDeployments applied at once, with their evidence already in place.

    .venv/bin/python bench/admission.py [--n 200] [--replicas 1]

Runs on the benchmarks' own control plane (bench/common.py) with API audit logging on, so that every
request the operator makes is counted from the API server's own record. Measures, per
ModelDeployment, the time from its create call returning to Admitted=True and to Ready=True as seen
by a watch; throughput; API requests made by the operator per admission (audit log, user agents of
Kopf and of the operator's client); and the operator's peak RSS (VmHWM).

The PolicyReport CRD (tests/fixtures/policyreports) is installed, so the operator keeps the
namespace's PolicyReports: the bench counts their writes during the admission, then edits the
policy so that every model fails one more gate (requiredCardFields gains `limitations`) and counts
the writes until the reports say so (runtime/policyreports.py batches them: the goal is a few writes
per namespace, not one per model). `--no-policy-reports` leaves the CRD out.
Prints a Markdown block for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import statistics
import sys
import threading
import time
import urllib.request
from typing import Any

import kubernetes
import urllib3

from bench import apiserver
from bench.common import (
    API,
    CLUSTER_DIR,
    IMAGE,
    KUBECONFIG,
    OPERATOR_AGENTS,
    ROOT,
    cluster_down,
    cluster_up,
    count_operator_requests,
    create_many,
    digest,
    evidence,
    kubectl,
    log,
    namespace_with_policy,
    operator,
    peak_rss_mb,
    percentile,
    rss_mb,
    watch_model_deployments,
)
from modelgate.decide.revision import revision_id

READS = ("get", "list", "watch")
API_GROUP, API_VERSION_ONLY = API.split("/")


class Watcher:
    """Records when each ModelDeployment is first seen Admitted=True and Ready=True.

    The watch runs in a process of its own: in this one it would share the GIL with the 16 threads
    that create the ModelDeployments, and decoding thousands of watch events behind them added
    seconds to what it measured. CLOCK_MONOTONIC is system-wide, so its times compare with ours."""

    def __init__(self, namespace: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._ready = ctx.Event()
        self._parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_watch, args=(str(KUBECONFIG), namespace, self._stop, self._ready, child), daemon=True
        )
        self.admitted: dict[str, float] = {}
        self.ready: dict[str, float] = {}

    def start(self) -> None:
        self._proc.start()
        if not self._ready.wait(60):
            sys.exit("bench: the watcher process did not start")

    def ready_count(self) -> int:
        self._parent.send("count")
        return int(self._parent.recv())

    def finish(self) -> None:
        self._stop.set()
        self._parent.send("result")
        self.admitted, self.ready = self._parent.recv()
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()


def _watch(kubeconfig: str, namespace: str, stop: Any, ready: Any, conn: Any) -> None:
    kubernetes.config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    admitted: dict[str, float] = {}
    ready_at: dict[str, float] = {}

    def answer() -> None:
        while True:
            what = conn.recv()
            if what == "count":
                conn.send(len(ready_at))
            else:
                conn.send((dict(admitted), dict(ready_at)))
                return

    threading.Thread(target=answer, daemon=True).start()
    api = kubernetes.client.CustomObjectsApi()

    def listed_version() -> str:
        listed = api.list_namespaced_custom_object(API_GROUP, API_VERSION_ONLY, namespace, "modeldeployments")
        return str(listed["metadata"]["resourceVersion"])

    rv = listed_version()
    ready.set()
    while not stop.is_set():
        try:
            w, events = watch_model_deployments(api, namespace, rv)
            for ev in events:
                now = time.monotonic()
                obj = ev["object"]
                rv = obj["metadata"]["resourceVersion"]
                name = obj["metadata"]["name"]
                for c in (obj.get("status") or {}).get("conditions") or []:
                    if c["status"] == "True" and c["type"] == "Admitted":
                        admitted.setdefault(name, now)
                    if c["status"] == "True" and c["type"] == "Ready":
                        ready_at.setdefault(name, now)
                if stop.is_set():
                    w.stop()
        except kubernetes.client.exceptions.ApiException as e:
            log(f"watch restarted after {e.status} {e.reason}")  # e.g. 410 Gone: list again
            rv = listed_version()
        except (urllib3.exceptions.HTTPError, ConnectionError) as e:
            log(f"watch restarted after {e!r}")  # the API server closed it under load: watch again


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--keep", action="store_true", help="leave the bench control plane running (for analysis)")
    p.add_argument(
        "--cold-start",
        action="store_true",
        help="then restart the operator over the converged models: time to caught up, writes, peak RSS",
    )
    p.add_argument(
        "--ceiling",
        action="store_true",
        help="then measure the API server's write ceiling with a trivial client (bench/apiserver.py)",
    )
    p.add_argument(
        "--no-policy-reports", action="store_true", help="without the PolicyReport CRD (no reports, no flip)"
    )
    p.add_argument(
        "--cold-start-over",
        metavar="NAMESPACE",
        help="only the cold start, over the --n converged models a --keep run left in NAMESPACE",
    )
    args = p.parse_args()
    if args.cold_start_over:
        if kubectl("get", "namespace", args.cold_start_over, check=False).returncode != 0:
            sys.exit(
                f"bench: no namespace {args.cold_start_over} on the bench control plane (run with --keep first)"
            )
        report_cold_start(args.n, *cold_start(args.cold_start_over, args.n, args.timeout))
        return 0
    if args.cold_start and not args.no_policy_reports:
        # The flip fails every model: its Deployments scale to zero, and a cold start during that
        # would measure a rollout, not a restart over converged models.
        p.error("--cold-start restarts the operator over converged models: add --no-policy-reports")
    n = args.n
    cluster_up(n * args.replicas)
    if not args.no_policy_reports:
        kubectl("apply", "--server-side", "-f", str(POLICY_REPORT_CRDS))
        kubectl("wait", "--for=condition=Established", "-f", str(POLICY_REPORT_CRDS))
    ns = namespace_with_policy(POLICY)
    with operator() as (proc, _metrics_port):
        mds = [
            {
                "apiVersion": API,
                "kind": "ModelDeployment",
                "metadata": {"name": f"m{i}", "namespace": ns},
                "spec": {
                    "model": {
                        "name": "m",
                        "version": f"v{i}",
                        "digest": digest(i),
                        "uri": f"s3://models/m/v{i}",
                    },
                    "card": {"owner": "bench@example.com", "riskLevel": "high"},
                    "serving": {"image": IMAGE, "replicas": args.replicas},
                    "approvals": [{"name": f"a-{i}"}],
                    "evaluations": [{"name": f"e-{i}"}],
                },
            }
            for i in range(n)
        ]
        # Evidence names the revision it covers; created before its ModelDeployment, it says so itself.
        refs = [
            {k: md["spec"]["model"][k] for k in ("name", "version", "digest")}
            | {"revision": revision_id(md["spec"])}
            for md in mds
        ]
        log(f"creating {n} approvals and {n} evaluations")
        evidence(ns, refs, [str(i) for i in range(n)])
        watcher = Watcher(ns)
        watcher.start()
        audit_start = dt.datetime.now(dt.UTC)
        created: dict[str, float] = {}
        log(f"applying {n} ModelDeployments at once")
        t0 = time.monotonic()
        create_many(mds, created=lambda md: created.__setitem__(md["metadata"]["name"], time.monotonic()))
        applied = time.monotonic() - t0
        deadline = time.monotonic() + args.timeout
        while watcher.ready_count() < n and time.monotonic() < deadline:
            time.sleep(0.5)
        watcher.finish()
        t_admitted_all = max(watcher.admitted.values(), default=float("nan")) - t0
        t_ready_all = max(watcher.ready.values(), default=float("nan")) - t0
        rss = peak_rss_mb(proc.pid)
        rss_now = rss_mb(proc.pid)
        time.sleep(2)  # the audit log is written in batches
        requests = count_operator_requests(audit_start, ns)
        admit = [watcher.admitted[k] - created[k] for k in created if k in watcher.admitted]
        ready = [watcher.ready[k] - created[k] for k in created if k in watcher.ready]
        gaps = [
            watcher.ready[k] - watcher.admitted[k]
            for k in created
            if k in watcher.ready and k in watcher.admitted
        ]
        # Each phase prints its table as soon as it ends: a later phase that fails loses only its own.
        report(
            n, args.replicas, applied, admit, ready, gaps, t_admitted_all, t_ready_all, requests, rss, rss_now
        )
        if not args.no_policy_reports:
            flip = policy_report_flip(ns, n, args.timeout)
            after = report_writes(count_operator_requests(flip[0], ns))
            report_policy_reports(n, report_writes(requests), after, *flip[1:])
    if args.cold_start:
        report_cold_start(n, *cold_start(ns, n, args.timeout))
    if args.ceiling:
        report_ceiling(peak_write_rate(audit_start, ns), apiserver.measure(3000, 4, 8))
    if not args.keep:
        cluster_down()
    return 0 if len(ready) == n else 1


def reconciles(metrics_port: int) -> int:
    """Reconcile passes the operator has finished (its modelgate_reconcile_duration_seconds count)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("modelgate_reconcile_duration_seconds_count"):
                return int(float(line.split()[-1]))
    return 0


def cold_start(ns: str, n: int, timeout: float) -> tuple[float, float, dict[str, int]]:
    """A fresh operator over the n converged models: the seconds from its start until it has
    reconciled each once and then nothing more for 5 s (caught up), its peak RSS, and its requests
    in `ns` until then (a converged start should write nothing)."""
    since = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    with operator() as (proc, metrics_port):
        deadline = t0 + timeout
        done, last, quiet_since = 0.0, -1, time.monotonic()
        while time.monotonic() < deadline:
            count = reconciles(metrics_port)
            if count != last:
                last, quiet_since = count, time.monotonic()
                if count >= n and not done:
                    done = quiet_since - t0
            elif count >= n and time.monotonic() - quiet_since >= 5:
                break
            time.sleep(1)  # each scrape renders every model's series: the operator's CPU
        else:
            sys.exit(f"bench: the restarted operator reconciled {last} of {n} models in {timeout:.0f} s")
        caught_up = quiet_since - t0
        rss = peak_rss_mb(proc.pid)
    time.sleep(2)  # the audit log is written in batches
    log(f"cold start: {n} reconciles at {done:.1f} s, the last at {caught_up:.1f} s")
    return caught_up, rss, count_operator_requests(since, ns)


def report_cold_start(n: int, caught_up: float, rss: float, requests: dict[str, int]) -> None:
    writes = {k: v for k, v in requests.items() if not k.startswith("get ")}
    print(
        "\n".join(
            [
                "",
                f"| cold start over {n} converged models (`--cold-start`) | value |",
                "| --- | --- |",
                f"| operator start to caught up (each reconciled, then 5 s without one) | {caught_up:.1f} s |",
                f"| writes during the cold start | {sum(writes.values())} {writes or ''} |",
                f"| reads during the cold start | {sum(requests.values()) - sum(writes.values())} |",
                f"| peak RSS of the restarted operator (VmHWM) | {rss:.0f} MB |",
            ]
        )
    )


POLICY = {
    "requiredCardFields": ["owner"],
    "separationOfDuties": True,
    "approvals": [{"role": "ethics-board", "approvers": {"groups": ["ethics-board"]}}],
    "evaluations": [{"metric": "accuracy", "min": 0.9, "maxAge": "30d"}],
}
POLICY_REPORT_CRDS = ROOT / "tests" / "fixtures" / "policyreports"


def _reports(ns: str) -> list[dict[str, Any]]:
    items = kubectl("get", "policyreports.wgpolicyk8s.io", "-n", ns, "-o", "json").stdout
    return list(json.loads(items)["items"])


def _reported(ns: str, n: int, fails: int, timeout: float) -> list[dict[str, Any]]:
    """The namespace's reports once they hold a result for each of the n models and `fails` failures."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports = _reports(ns)
        models = {r["resources"][0]["name"] for rep in reports for r in rep.get("results") or []}
        if len(models) == n and sum(rep["summary"]["fail"] for rep in reports) == fails:
            return reports
        time.sleep(1)
    sys.exit(f"bench: the PolicyReports of {ns} did not show {n} models with {fails} failures")


def policy_report_flip(ns: str, n: int, timeout: float) -> tuple[dt.datetime, int, int, float]:
    """Edit the policy so that every model fails a new card.limitations gate, once the reports show
    the admission; returns the edit's time, the number of reports and results once they show it, and
    the seconds that took."""
    _reported(ns, n, 0, timeout)
    time.sleep(3)  # writes still in flight land in the admission's count
    flip = dt.datetime.now(dt.UTC)
    edited = {**POLICY, "requiredCardFields": ["owner", "limitations"]}
    patch = json.dumps({"spec": edited})
    t0 = time.monotonic()
    kubectl("patch", "governancepolicy", f"bench-{ns}", "--type", "merge", "-p", patch)
    reports = _reported(ns, n, n, timeout)
    shown = time.monotonic() - t0
    time.sleep(5)  # any write after the reports showed it is counted too
    return flip, len(reports), sum(len(r["results"]) for r in reports), shown


def report_writes(requests: dict[str, int]) -> int:
    return sum(v for k, v in requests.items() if k.endswith(" policyreports") and not k.startswith("get "))


def report_policy_reports(n: int, before: int, after: int, shards: int, results: int, shown: float) -> None:
    print(
        "\n".join(
            [
                "",
                "| PolicyReports (one namespace) | value |",
                "| --- | --- |",
                f"| writes during the admission of {n} models | {before} |",
                f"| writes after one policy edit failing all {n} (requiredCardFields + limitations) | {after} |",
                f"| edit to reports showing {n} failures | {shown:.1f} s |",
                f"| reports (shards of ~1 MB) / results | {shards} / {results} |",
            ]
        )
    )


def peak_write_rate(since: dt.datetime, ns: str, window: int = 10) -> float:
    """The operator's highest write rate in `ns` from `since`, writes per second over `window` seconds
    (audit log timestamps)."""
    buckets: dict[int, int] = {}
    with open(CLUSTER_DIR / "logs" / "audit.log") as f:
        for line in f:
            ev = json.loads(line)
            if not ev.get("userAgent", "").startswith(OPERATOR_AGENTS) or ev.get("verb") in READS:
                continue
            when = dt.datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00"))
            if when >= since and (ev.get("objectRef") or {}).get("namespace") == ns:
                key = int(when.timestamp()) // window
                buckets[key] = buckets.get(key, 0) + 1
    return max(buckets.values(), default=0) / window


def report_ceiling(operator_rate: float, ceiling: dict[str, float]) -> None:
    print(apiserver.report(ceiling, 3000, 4, 8))
    print(
        f"| the operator's peak write rate during the run (10 s window, audit log) | {operator_rate:.0f} "
        f"writes/s, {operator_rate / ceiling['patch']:.0%} of the patch ceiling |"
    )


def report(
    n: int,
    replicas: int,
    applied: float,
    admit: list[float],
    ready: list[float],
    gaps: list[float],
    all_admitted: float,
    all_ready: float,
    requests: dict[str, int],
    rss: float,
    rss_now: float,
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
        f"| Admitted to Ready p50 / p99 (what one shared status write would delay Admitted by) | "
        f"{percentile(gaps, 50):.2f} s / {percentile(gaps, 99):.2f} s |",
        f"| first create to all Admitted / all Ready | {all_admitted:.1f} s / {all_ready:.1f} s |",
        f"| throughput (admissions per second, first create to all Admitted) | {n / all_admitted:.0f} |",
        f"| operator API requests per admission (audit log, writes and reads, no watches) | "
        f"{total / n:.2f} |",
        f"| operator peak RSS (VmHWM) | {rss:.0f} MB |",
        f"| operator RSS once all were Ready (VmRSS) | {rss_now:.0f} MB |",
        "",
        "Operator requests by verb and resource: "
        + ", ".join(f"{k} {v}" for k, v in sorted(requests.items(), key=lambda kv: -kv[1])),
    ]
    print("\n".join(lines))
    print(json.dumps({"n": n, "admit_p50": statistics.median(admit) if admit else None}), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
