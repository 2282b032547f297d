#!/usr/bin/env python3
"""bench/soak: N monitored models for M minutes of churn and idle phases; what the operator's
process does over time, how fast it decides, whether it writes while nothing changes, and whether
every model ends where it should.

    .venv/bin/python bench/soak.py [--models 1000] [--minutes 30] [--window 5] [--seed 13]
    make soak SOAK_ARGS="--models 50 --minutes 3 --window 1.5"

Runs on the benchmarks' own control plane and Prometheus (bench/common.py: API audit log on). Each
model serves one replica and is monitored on one MetricTemplate (PSI, failureLimit 2, onDrift
rollback) that reads a gauge this process exports per model and version: the simulated traffic,
whose PSI the drift action raises above the threshold and puts back.

Time is cut into windows (`--window` minutes). In each window the churn phase (`--churn-share` of
the window) starts actions on models that are not in the middle of one, seeded and evenly spaced:
- new version: an approval for v+1, then the spec asks for v+1 (expected: v+1 admitted; the
  approvals of older versions than v are then deleted, so the evidence does not pile up);
- revocation: the approvals of the serving version are deleted (expected: suspended), then renewed
  by a new approval (expected: admitted again);
- expiry: an approval that expires in `--expire-after` seconds replaces the others (expected: the
  model is suspended at that instant), then renewed;
- drift: the serving version's PSI goes above the threshold (expected: rolled back or quarantined),
  then drift is switched off and a new version is applied (expected: admitted);
- tampering: the owned Deployment is scaled to 3 replicas (expected: put back and recorded).
Then the settle phase waits until every action's expectations are met and every model serves its
expected version, Ready and known good; the idle phase (the rest of the window, at least
`--min-idle` seconds) changes nothing, and every write the operator makes in it is counted from the
API server's audit log (target: zero).

Decision latency is from the request that causes a decision (for an expiry: the instant it
expires) to the watch seeing the status that records it; per window, by the window of the cause.
Drift is reported apart: its latency is mostly the monitoring interval times failureLimit. A
sampler records the operator's RSS (VmRSS) and open file descriptors (/proc) and its asyncio task
count (modelgate_asyncio_tasks) every `--sample` seconds; the RSS slope is a least-squares fit over
the soak. At the end every model must serve its expected version (phase Serving, Ready, known good,
its Deployment at one replica of the approved image). Prints a Markdown block for BENCHMARKS.md;
the samples and every decision are written to .cache/soak/ as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import random
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from bench.common import (
    API,
    CLUSTER_DIR,
    IMAGE,
    PROM,
    PROM_TARGETS,
    ROOT,
    cluster_down,
    cluster_up,
    digest,
    log,
    namespace_with_policy,
    operator,
    percentile,
    prometheus_down,
    prometheus_up,
    rss_mb,
    watch_model_deployments,
)
from modelgate.decide.revision import revision_id

GROUP, VERSION = API.split("/")
OUT = ROOT / ".cache" / "soak"
OPERATOR_AGENTS = ("kopf", "modelgate-operator")
READS = ("get", "list", "watch")
HEALTHY, DRIFTED = 0.02, 0.9
TEMPLATE = "soak-psi"
ACTIONS = {"new-version": 3, "revoke": 2, "expire": 2, "drift": 1, "tamper": 2}
"""Each action's weight in the churn mix."""
DECISIONS = ("new-version", "revoke", "renew", "expire", "tamper")
"""The kinds of expectation whose latency counts as decision latency (drift is reported apart)."""


def stamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- what the watch sees ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """A ModelDeployment's status, as far as the soak's expectations look at it."""

    phase: str
    version: str | None
    """status.servingRevision.version."""
    conditions: dict[str, str]
    known_good: tuple[str, ...]
    tamper_reverted: tuple[float, ...]
    """Times of the TamperReverted history entries."""
    generation_seen: bool
    """status.observedGeneration == metadata.generation."""

    @staticmethod
    def of(obj: dict[str, Any]) -> Seen:
        st = obj.get("status") or {}
        return Seen(
            phase=str(st.get("phase") or ""),
            version=(st.get("servingRevision") or {}).get("version"),
            conditions={c["type"]: c["status"] for c in st.get("conditions") or []},
            known_good=tuple(g["version"] for g in st.get("knownGood") or []),
            tamper_reverted=tuple(
                epoch(h["time"]) for h in st.get("history") or [] if h.get("action") == "TamperReverted"
            ),
            generation_seen=st.get("observedGeneration") == obj["metadata"].get("generation"),
        )

    def serves(self, version: str) -> bool:
        """Settled: serves `version`, Ready, and it passed its checks."""
        return (
            self.generation_seen
            and self.phase == "Serving"
            and self.version == version
            and self.conditions.get("Ready") == "True"
            and version in self.known_good
        )


@dataclass
class Expectation:
    model: str
    kind: str
    t0: float
    pred: Callable[[Seen], bool]
    then: Callable[[], None] | None = None
    met_at: float | None = None

    @property
    def latency(self) -> float:
        return float("nan") if self.met_at is None else self.met_at - self.t0


class World:
    """The watch's latest view of every model and the expectations still open, under one lock: the
    watch thread meets expectations, the main thread registers them and runs their follow-ups."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, Seen] = {}
        self.open: dict[str, Expectation] = {}
        self.done: list[Expectation] = []

    def update(self, name: str, seen: Seen, at: float) -> None:
        with self.lock:
            self.seen[name] = seen
            exp = self.open.get(name)
            if exp is not None and exp.met_at is None and exp.pred(seen):
                exp.met_at = at

    def expect(self, exp: Expectation) -> None:
        with self.lock:
            self.open[exp.model] = exp
            seen = self.seen.get(exp.model)
            if seen is not None and exp.pred(seen):
                exp.met_at = time.time()

    def met(self) -> list[Expectation]:
        """Expectations met since the last call, moved to `done`."""
        with self.lock:
            out = [e for e in self.open.values() if e.met_at is not None]
            for e in out:
                del self.open[e.model]
                self.done.append(e)
        return out

    def busy(self, name: str) -> bool:
        with self.lock:
            return name in self.open


def watch(world: World, ns: str, stop: threading.Event) -> None:
    """Keeps `world` up to date: a list, then a watch for a minute, then a list again (a snapshot
    that heals itself after any lost event), until `stop`."""
    api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient())
    while not stop.is_set():
        try:
            listed = api.list_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments")
            now = time.time()
            for obj in listed["items"]:
                world.update(obj["metadata"]["name"], Seen.of(obj), now)
            w, events = watch_model_deployments(api, ns, listed["metadata"]["resourceVersion"])
            for ev in events:
                obj = ev["object"]
                if ev["type"] != "DELETED":
                    world.update(obj["metadata"]["name"], Seen.of(obj), time.time())
                if stop.is_set():
                    w.stop()
        except Exception as e:  # a 410 Gone, a dropped connection: list again
            log(f"watch restarted: {type(e).__name__} {str(e)[:200]}")
            time.sleep(1)


# --- the operator's process over time --------------------------------------------------------------


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def asyncio_tasks(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("modelgate_asyncio_tasks "):
                return float(line.split()[-1])
    return float("nan")


def sample(
    pid: int, metrics_port: int, every: float, out: list[dict[str, float]], stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            out.append(
                {
                    "t": time.time(),
                    "rss": rss_mb(pid),
                    "fds": open_fds(pid),
                    "tasks": asyncio_tasks(metrics_port),
                }
            )
        except (OSError, ValueError) as e:
            log(f"sample failed: {e}")
        stop.wait(every)


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 3600 * sum((x - mx) * (y - my) for x, y in points) / var if var else float("nan")


# --- the models and the actions on them ------------------------------------------------------------


@dataclass
class Model:
    name: str
    version: int = 1
    approvals: dict[int, list[str]] = field(default_factory=dict)
    """Approvals that exist, by version."""
    serial: int = 0
    """For unique approval names."""

    def v(self, version: int | None = None) -> str:
        return f"v{self.version if version is None else version}"


class Soak:
    def __init__(self, ns: str, args: argparse.Namespace, world: World) -> None:
        self.ns, self.args, self.world = ns, args, world
        self.rng = random.Random(args.seed)
        self.models = {f"m{i}": Model(f"m{i}") for i in range(args.models)}
        self.admin = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient())
        self.apps = kubernetes.client.AppsV1Api(kubernetes.client.ApiClient())
        bob = kubernetes.client.ApiClient()
        bob.set_default_header("Impersonate-User", "bob")
        bob.set_default_header("Impersonate-Group", "ethics-board")
        self.bob = kubernetes.client.CustomObjectsApi(bob)
        self.registry = CollectorRegistry()
        self.psi = Gauge(
            "soak_psi", "simulated PSI", ["namespace", "model", "version"], registry=self.registry
        )
        self.started: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        self.errors: list[str] = []

    # objects

    def spec(self, m: Model, version: int) -> dict[str, Any]:
        return {
            "model": {
                "name": m.name,
                "version": m.v(version),
                "uri": f"s3://soak/{m.name}/{m.v(version)}",
                "digest": digest(f"soak-{m.name}-{version}"),
            },
            "card": {"owner": "soak@example.com", "riskLevel": "high"},
            "serving": {"image": IMAGE, "replicas": 1},
            "monitoring": {
                "interval": f"{self.args.interval}s",
                "onDrift": "rollback",
                "metrics": [
                    {"name": "psi", "templateRef": {"name": TEMPLATE}, "max": 0.25, "failureLimit": 2}
                ],
            },
        }

    def approve(self, m: Model, version: int, expires_at: float | None = None) -> str:
        m.serial += 1
        name = f"a-{m.name}-{m.v(version)}-{m.serial}"
        spec = self.spec(m, version)
        body: dict[str, Any] = {
            "apiVersion": API,
            "kind": "ModelApproval",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {
                "model": {k: spec["model"][k] for k in ("name", "version", "digest")}
                | {"revision": revision_id(spec)},
                "role": "ethics-board",
                "decision": "approved",
            },
        }
        if expires_at is not None:
            body["spec"]["expiresAt"] = stamp(expires_at)
        self.bob.create_namespaced_custom_object(GROUP, VERSION, self.ns, "modelapprovals", body)
        m.approvals.setdefault(version, []).append(name)
        return name

    def delete_approvals(self, m: Model, version: int, keep: str | None = None) -> None:
        for name in [n for n in m.approvals.get(version, []) if n != keep]:
            try:
                self.admin.delete_namespaced_custom_object(GROUP, VERSION, self.ns, "modelapprovals", name)
            except kubernetes.client.ApiException as e:
                if e.status != 404:
                    raise
            m.approvals[version].remove(name)
        if not m.approvals.get(version):
            m.approvals.pop(version, None)

    def create(self, m: Model) -> None:
        """v1 of a model and its approval."""
        self.approve(m, 1)
        self.apply_spec(m)

    def apply_spec(self, m: Model) -> None:
        body = {
            "apiVersion": API,
            "kind": "ModelDeployment",
            "metadata": {"name": m.name, "namespace": self.ns},
        }
        body["spec"] = self.spec(m, m.version)
        self.psi.labels(self.ns, m.name, m.v()).set(HEALTHY)
        if m.version == 1:
            self.admin.create_namespaced_custom_object(GROUP, VERSION, self.ns, "modeldeployments", body)
        else:
            self.admin.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.ns,
                "modeldeployments",
                m.name,
                {"spec": body["spec"]},
                _content_type="application/merge-patch+json",
            )

    # actions: each registers what it expects and what follows once it is met

    def expect(self, m: Model, kind: str, t0: float, pred: Callable[[Seen], bool], then: Any = None) -> None:
        self.world.expect(Expectation(m.name, kind, t0, pred, then))

    def new_version(self, m: Model, kind: str = "new-version") -> None:
        old = m.version
        m.version += 1
        self.approve(m, m.version)
        version = m.v()
        t0 = time.time()
        self.apply_spec(m)

        def cleanup() -> None:  # the rollback target (old) keeps its approval; older ones go
            for v in [v for v in m.approvals if v < old]:
                self.delete_approvals(m, v)
            for v in range(1, old):
                with contextlib.suppress(KeyError):  # a series never exported
                    self.psi.remove(self.ns, m.name, m.v(v))

        self.expect(
            m, kind, t0, lambda s: s.version == version and s.conditions.get("Admitted") == "True", cleanup
        )

    def revoke(self, m: Model) -> None:
        t0 = time.time()
        self.delete_approvals(m, m.version)
        self.expect(m, "revoke", t0, lambda s: s.phase == "Blocked", lambda: self.renew(m))

    def renew(self, m: Model) -> None:
        version = m.v()
        t0 = time.time()
        self.approve(m, m.version)
        self.expect(m, "renew", t0, lambda s: s.version == version and s.conditions.get("Admitted") == "True")

    def expire(self, m: Model) -> None:
        expires = math.ceil(time.time()) + self.args.expire_after
        keep = self.approve(m, m.version, expires_at=expires)
        self.delete_approvals(m, m.version, keep=keep)
        self.expect(m, "expire", float(expires), lambda s: s.phase == "Blocked", lambda: self.renew(m))

    def drift(self, m: Model) -> None:
        drifting = m.v()
        t0 = time.time()
        self.psi.labels(self.ns, m.name, drifting).set(DRIFTED)

        def recover() -> None:
            self.psi.labels(self.ns, m.name, drifting).set(HEALTHY)
            self.new_version(m)

        self.expect(m, "drift", t0, lambda s: s.phase in ("RolledBack", "Quarantined"), recover)

    def tamper(self, m: Model) -> None:
        t0 = time.time()
        self.apps.patch_namespaced_deployment(m.name, self.ns, {"spec": {"replicas": 3}})
        since = math.floor(t0)
        self.expect(m, "tamper", t0, lambda s: any(t >= since for t in s.tamper_reverted))

    def act(self, kind: str, m: Model) -> None:
        self.started[kind] += 1
        try:
            {
                "new-version": self.new_version,
                "revoke": self.revoke,
                "expire": self.expire,
                "drift": self.drift,
                "tamper": self.tamper,
            }[kind](m)
        except kubernetes.client.ApiException as e:
            self.errors.append(f"{kind} {m.name}: {e.status} {e.reason} {str(e.body)[:300]}")
            log(self.errors[-1])

    def follow_up(self) -> None:
        for e in self.world.met():
            if e.then is not None:
                try:
                    e.then()
                except kubernetes.client.ApiException as err:
                    self.errors.append(f"after {e.kind} {e.model}: {err.status} {err.reason}")
                    log(self.errors[-1])

    def idle_models(self) -> list[Model]:
        return [m for m in self.models.values() if not self.world.busy(m.name)]

    # phases

    def churn(self, seconds: float, count: int) -> None:
        end = time.time() + seconds
        gap = seconds / max(count, 1)
        kinds, weights = list(ACTIONS), list(ACTIONS.values())
        next_at = time.time()
        while time.time() < end:
            self.follow_up()
            if time.time() >= next_at:
                idle = self.idle_models()
                if idle:
                    self.act(self.rng.choices(kinds, weights)[0], self.rng.choice(idle))
                next_at += gap
            time.sleep(0.05)

    def unsettled(self) -> list[str]:
        with self.world.lock:
            return [m.name for m in self.models.values() if not self._settled(m)]

    def _settled(self, m: Model) -> bool:
        seen = self.world.seen.get(m.name)
        return m.name not in self.world.open and seen is not None and seen.serves(m.v())

    def settle(self, timeout: float) -> list[str]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.follow_up()
            left = self.unsettled()
            if not left:
                return []
            time.sleep(0.5)
        return self.unsettled()


# --- the run ---------------------------------------------------------------------------------------


def setup(args: argparse.Namespace) -> str:
    prometheus_up()
    cluster_up()
    ns = namespace_with_policy(
        {
            "approvals": [{"role": "ethics-board", "approvers": {"groups": ["ethics-board"]}}],
            "onRevocation": "suspend",
        }
    )
    template = {
        "apiVersion": API,
        "kind": "MetricTemplate",
        "metadata": {"name": TEMPLATE},
        "spec": {"query": "max by (namespace, model, version) (soak_psi)"},
    }
    kubernetes.client.CustomObjectsApi().create_cluster_custom_object(
        GROUP, VERSION, "metrictemplates", template
    )
    return ns


def operator_writes(intervals: list[tuple[float, float]], ns: str) -> list[tuple[int, str]]:
    """(interval index, 'verb resource') of every write by the operator in the given intervals."""
    found: list[tuple[int, str]] = []
    with open(CLUSTER_DIR / "logs" / "audit.log") as f:
        for line in f:
            if '"userAgent":"kopf' not in line and '"userAgent":"modelgate-operator' not in line:
                continue
            ev = json.loads(line)
            if ev.get("verb") in READS or not ev.get("userAgent", "").startswith(OPERATOR_AGENTS):
                continue
            when = epoch(ev["requestReceivedTimestamp"])
            ref = ev.get("objectRef") or {}
            what = f"{ev['verb']} {ref.get('resource', '')}" + (
                f"/{ref['subresource']}" if ref.get("subresource") else ""
            )
            for i, (a, b) in enumerate(intervals):
                if a <= when < b:
                    found.append((i, what))
    return found


def end_check(soak: Soak) -> list[str]:
    """Every model serves its expected version: phase Serving, Ready, known good, its Deployment at
    one replica of the approved image."""
    wrong = []
    for m in soak.models.values():
        seen = soak.world.seen.get(m.name)
        if seen is None or not seen.serves(m.v()):
            wrong.append(f"{m.name}: expected {m.v()} Serving, Ready, known good; saw {seen}")
            continue
        dep = soak.apps.read_namespaced_deployment(m.name, soak.ns)
        image = dep.spec.template.spec.containers[0].image  # type: ignore[union-attr]
        if dep.spec.replicas != 1 or image != IMAGE:
            wrong.append(f"{m.name}: Deployment replicas={dep.spec.replicas} image={image}")
    return wrong


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--window", type=float, default=5, help="minutes per churn + settle + idle window")
    p.add_argument("--churn-share", type=float, default=0.6, help="share of a window spent on churn")
    p.add_argument("--actions", type=float, default=0.1, help="actions per window, as a share of the models")
    p.add_argument("--min-idle", type=float, default=60, help="seconds of idle phase at least")
    p.add_argument("--interval", type=int, default=20, help="monitoring interval, seconds")
    p.add_argument("--expire-after", type=int, default=30, help="seconds before an expiring approval expires")
    p.add_argument("--sample", type=float, default=10, help="seconds between process samples")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--keep", action="store_true", help="leave the bench control plane and Prometheus running")
    args = p.parse_args()
    log(f"soak: {args.models} models, {args.minutes} min, windows of {args.window} min, seed {args.seed}")
    OUT.mkdir(parents=True, exist_ok=True)
    ns = setup(args)
    world = World()
    soak = Soak(ns, args, world)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=soak.registry)
    (PROM_TARGETS / "soak.json").write_text(
        json.dumps([{"targets": [f"127.0.0.1:{server.server_address[1]}"]}])
    )
    stop = threading.Event()
    threading.Thread(target=watch, args=(world, ns, stop), daemon=True).start()
    samples: list[dict[str, float]] = []
    code = 1
    with operator("--prometheus-url", PROM) as (proc, metrics_port):
        threading.Thread(
            target=sample, args=(proc.pid, metrics_port, args.sample, samples, stop), daemon=True
        ).start()
        log(f"creating {args.models} models with their approvals")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(soak.create, soak.models.values()))
        t_load = time.time()
        left = soak.settle(timeout=900)
        if left:
            log(f"{len(left)} models did not serve v1 and pass its checks: {left[:10]}")
            stop.set()
            return 1
        log(f"all {args.models} models serve v1 and passed its checks after {time.time() - t_load:.0f} s")
        t_start = time.time()
        windows = max(1, round(args.minutes / args.window))
        per_window = max(1, round(args.actions * args.models))
        idle: list[tuple[float, float]] = []
        unsettled: list[list[str]] = []
        for w in range(windows):
            w_start = t_start + w * args.window * 60
            w_end = w_start + args.window * 60
            log(f"window {w + 1}/{windows}: churn, {per_window} actions")
            soak.churn(args.window * 60 * args.churn_share, per_window)
            unsettled.append(soak.settle(timeout=max(120.0, w_end - time.time() - args.min_idle)))
            if unsettled[-1]:
                log(f"window {w + 1}: {len(unsettled[-1])} models not settled: {unsettled[-1][:10]}")
            a = time.time()
            time.sleep(max(args.min_idle, w_end - a))  # the idle phase: nothing changes, on purpose
            idle.append((a, time.time()))
            log(f"window {w + 1}: idle {idle[-1][1] - a:.0f} s")
        t_end = time.time()
        left = soak.settle(timeout=300)
        wrong = end_check(soak)
        stop.set()
    time.sleep(3)  # the audit log is written in batches
    writes = operator_writes(idle, ns)
    result = summarize(
        args,
        soak,
        samples,
        idle,
        writes,
        unsettled,
        wrong + [f"unsettled: {n}" for n in left],
        t_start,
        t_end,
    )
    (OUT / "result.json").write_text(json.dumps(result, indent=1))
    print(report(args, result))
    code = 0 if not result["wrong"] and not result["open"] else 1
    if not args.keep:
        cluster_down()
        prometheus_down()
    return code


def summarize(
    args: argparse.Namespace,
    soak: Soak,
    samples: list[dict[str, float]],
    idle: list[tuple[float, float]],
    writes: list[tuple[int, str]],
    unsettled: list[list[str]],
    wrong: list[str],
    t_start: float,
    t_end: float,
) -> dict[str, Any]:
    window = args.window * 60
    done = [e for e in soak.world.done if e.met_at is not None]
    per_window = []
    for w in range(len(idle)):
        lat = [e.latency for e in done if e.kind in DECISIONS and int((e.t0 - t_start) // window) == w]
        drift = [e.latency for e in done if e.kind == "drift" and int((e.t0 - t_start) // window) == w]
        minutes = (idle[w][1] - idle[w][0]) / 60
        n_writes = sum(1 for i, _ in writes if i == w)
        in_window = [s for s in samples if t_start + w * window <= s["t"] < t_start + (w + 1) * window]
        last = (
            in_window[-1] if in_window else {"rss": float("nan"), "fds": float("nan"), "tasks": float("nan")}
        )
        per_window.append(
            {
                "window": w + 1,
                "decisions": len(lat),
                "p50": percentile(lat, 50) if lat else None,
                "p99": percentile(lat, 99) if lat else None,
                "max": max(lat) if lat else None,
                "drifts": len(drift),
                "drift_max": max(drift) if drift else None,
                "idle_minutes": minutes,
                "idle_writes": n_writes,
                "idle_writes_per_minute": n_writes / minutes if minutes else None,
                "unsettled": len(unsettled[w]),
                "rss": last["rss"],
                "fds": last["fds"],
                "tasks": last["tasks"],
            }
        )
    soak_samples = [s for s in samples if t_start <= s["t"] <= t_end]
    negative = [f"{e.kind} {e.model} {e.latency:.1f}s" for e in done if e.latency < 0]
    kinds: dict[str, list[float]] = {}
    for e in done:
        kinds.setdefault(e.kind, []).append(e.latency)
    with soak.world.lock:
        still_open = [
            f"{e.kind} {e.model} since {stamp(e.t0)}: saw {soak.world.seen.get(e.model)}"
            for e in soak.world.open.values()
        ]
    return {
        "args": vars(args),
        "windows": per_window,
        "rss_slope_mb_per_hour": slope_per_hour([(s["t"], s["rss"]) for s in soak_samples]),
        "fds_slope_per_hour": slope_per_hour([(s["t"], s["fds"]) for s in soak_samples]),
        "tasks_slope_per_hour": slope_per_hour([(s["t"], s["tasks"]) for s in soak_samples]),
        "rss_first_last": [soak_samples[0]["rss"], soak_samples[-1]["rss"]] if soak_samples else None,
        "fds_min_max": [min(s["fds"] for s in soak_samples), max(s["fds"] for s in soak_samples)]
        if soak_samples
        else None,
        "tasks_min_max": [min(s["tasks"] for s in soak_samples), max(s["tasks"] for s in soak_samples)]
        if soak_samples
        else None,
        "actions": soak.started,
        "latency_by_kind": {
            k: {"n": len(v), "p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v)}
            for k, v in sorted(kinds.items())
        },
        "idle_writes": sorted({w for _, w in writes}),
        "negative_latencies": negative,
        "errors": soak.errors,
        "open": still_open,
        "wrong": wrong,
        "samples": samples,
        "soak_seconds": t_end - t_start,
    }


def fmt(v: float | None, unit: str = " s") -> str:
    return "-" if v is None else f"{v:.1f}{unit}"


def report(args: argparse.Namespace, r: dict[str, Any]) -> str:
    cmd = (
        f".venv/bin/python bench/soak.py --models {args.models} --minutes {args.minutes:g} --window {args.window:g} "
        f"--seed {args.seed}"
    )
    lines = [
        f"### bench/soak, {args.models} models, {args.minutes:g} minutes, windows of {args.window:g} min "
        f"({dt.date.today()})",
        "",
        f"Command: `{cmd}`",
        "",
        "| window | decisions | p50 / p99 / max decision latency | drifts (max to intervention) | "
        "idle writes per minute | unsettled | RSS | fds | asyncio tasks |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in r["windows"]:
        lines.append(
            f"| {w['window']} | {w['decisions']} | {fmt(w['p50'])} / {fmt(w['p99'])} / {fmt(w['max'])} | "
            f"{w['drifts']} ({fmt(w['drift_max'])}) | {fmt(w['idle_writes_per_minute'], '')} "
            f"({w['idle_writes']} in {w['idle_minutes']:.1f} min) | {w['unsettled']} | {w['rss']:.0f} MB | "
            f"{w['fds']:.0f} | {w['tasks']:.0f} |"
        )
    lines += [
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| RSS slope over the soak (least squares) | {r['rss_slope_mb_per_hour']:.1f} MB/h "
        f"(first {r['rss_first_last'][0]:.0f} MB, last {r['rss_first_last'][1]:.0f} MB) |",
        f"| open file descriptors, min / max (slope) | {r['fds_min_max'][0]} / {r['fds_min_max'][1]} "
        f"({r['fds_slope_per_hour']:.1f} per hour) |",
        f"| asyncio tasks, min / max (slope) | {r['tasks_min_max'][0]:.0f} / {r['tasks_min_max'][1]:.0f} "
        f"({r['tasks_slope_per_hour']:.1f} per hour) |",
        "| actions started | " + ", ".join(f"{k} {v}" for k, v in r["actions"].items()) + " |",
        "| latency by kind, n: p50 / p99 / max | "
        + "; ".join(
            f"{k} {v['n']}: {v['p50']:.1f} / {v['p99']:.1f} / {v['max']:.1f} s"
            for k, v in r["latency_by_kind"].items()
        )
        + " |",
        f"| writes in idle phases | {', '.join(r['idle_writes']) or 'none'} |",
        f"| models not in the expected state at the end | {len(r['wrong'])} |",
        f"| expectations never met | {len(r['open'])} |",
        f"| API errors of the bench's own actions | {len(r['errors'])} |",
    ]
    for what in ("wrong", "open", "errors", "negative_latencies"):
        lines += [f"- {what}: {x}" for x in r[what][:20]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
