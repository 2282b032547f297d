"""What the benchmarks share: their own control plane, kubectl, the operator under test, helpers.

Benchmarks run on a control plane of their own (.cache/bench-cluster, every port 1000 above the
caller's MODELGATE_CLUSTER_PORT_OFFSET, API audit log on) so that they never disturb a developer's
cluster or a test session, nor another checkout's benchmarks run with another offset, and so that
the API server itself can count the operator's requests. A benchmark's Prometheus likewise listens
1000 above the caller's MODELGATE_PROMETHEUS_PORT (default 29090).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes
from hack.launch import (
    PROBE_ARGS,
    client_ca_args,
    free_port,
    install_args,
    probe_answered,
    probe_input,
    start_operator,
    stop_operator,
)

ROOT = Path(__file__).resolve().parent.parent

CLUSTER_DIR = ROOT / ".cache" / "bench-cluster"
BENCH_OFFSET = 1000
NODE_PODS = 2000
"""Pods one fake (kwok) node of the bench cluster holds; cluster_up adds nodes as a run needs them."""
"""Added to the caller's port offsets: the bench control plane and Prometheus never meet theirs."""
ENV = {
    **os.environ,
    "MODELGATE_CLUSTER_DIR": str(CLUSTER_DIR),
    "MODELGATE_CLUSTER_PORT_OFFSET": str(
        int(os.environ.get("MODELGATE_CLUSTER_PORT_OFFSET", "0")) + BENCH_OFFSET
    ),
    "MODELGATE_CLUSTER_AUDIT": "1",
    "MODELGATE_CLUSTER_NODE_PODS": str(NODE_PODS),
}
KUBECONFIG = CLUSTER_DIR / "kubeconfig"
API = "modelgate.io/v1alpha1"
OPERATOR_AGENTS = ("kopf", "modelgate-operator")
"""User agents of the operator's API requests."""
IMAGE = "registry.example/serve@sha256:" + hashlib.sha256(b"serve:1").hexdigest()
"""The serving image, pinned by digest as policies require by default."""


PROM_PORT = int(os.environ.get("MODELGATE_PROMETHEUS_PORT", "29090")) + BENCH_OFFSET
PROM_ENV = {
    **os.environ,
    "MODELGATE_PROMETHEUS_DIR": str(ROOT / ".cache" / "bench-prometheus"),
    "MODELGATE_PROMETHEUS_PORT": str(PROM_PORT),
}
PROM = f"http://127.0.0.1:{PROM_PORT}"
PROM_TARGETS = ROOT / ".cache" / "bench-prometheus" / "targets"
"""File service discovery: a benchmark's exporter writes its target here."""


def prometheus_up() -> None:
    """A fresh Prometheus for the benchmark (hack/prometheus.py on the bench port)."""
    prometheus_down()
    subprocess.run([sys.executable, str(ROOT / "hack" / "prometheus.py"), "up"], env=PROM_ENV, check=True)


def prometheus_down() -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "hack" / "prometheus.py"), "down"], env=PROM_ENV, capture_output=True
    )


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def digest(seed: object) -> str:
    return "sha256:" + hashlib.sha256(f"bench-{seed}".encode()).hexdigest()


@functools.cache
def _kubectl_bin() -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "build.sh")], capture_output=True, text=True, check=True
    )
    return out.stdout.strip() + "/kubectl"


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [_kubectl_bin(), "--kubeconfig", str(KUBECONFIG), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and res.returncode != 0:
        sys.exit(f"bench: kubectl {' '.join(args[:3])} failed: {res.stderr.strip()[:2000]}")
    return res


def apply_many(docs: list[dict[str, Any]], *who: str) -> None:
    for i in range(0, len(docs), 250):
        kubectl("apply", *who, "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs[i : i + 250]))


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def _proc_status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    return _proc_status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    return _proc_status_mb(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds the process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_operator_requests(
    since: dt.datetime, ns: str, until: dt.datetime | None = None, agents: tuple[str, ...] = OPERATOR_AGENTS
) -> dict[str, int]:
    """The requests in `ns` from `since` (until `until`) of clients whose user agent starts with one of
    `agents` (the operator's by default), by verb and resource; lists and watches left out (audit log)."""
    counts: dict[str, int] = {}
    with open(CLUSTER_DIR / "logs" / "audit.log") as f:
        for line in f:
            ev = json.loads(line)
            agent = ev.get("userAgent", "")
            if not agent.startswith(agents):
                continue
            when = dt.datetime.fromisoformat(ev["requestReceivedTimestamp"].replace("Z", "+00:00"))
            ref = ev.get("objectRef") or {}
            if when < since or (until and when >= until):
                continue
            if ref.get("namespace") != ns or ev.get("verb") in ("watch", "list"):
                continue
            res = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            key = f"{ev['verb']} {res}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def nodes_for(pods: int) -> int:
    """Fake nodes enough for `pods` pods with one node to spare (at least 2, hack/cluster.py's default)."""
    return max(2, -(-pods // NODE_PODS) + 1)


def cluster_up(pods: int = 0) -> None:
    """The bench control plane, with fake nodes enough for `pods` pods to become Ready."""
    env = {**ENV, "MODELGATE_CLUSTER_NODES": str(nodes_for(pods))}
    log(f"starting the bench control plane in {CLUSTER_DIR} ({env['MODELGATE_CLUSTER_NODES']} nodes)")
    subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "down"], env=ENV, capture_output=True)
    subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "up"], env=env, check=True)
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "-f", str(ROOT / "crds"))
    kubectl("apply", *install_args(), "-f", str(ROOT / "tests" / "support" / "test-users.yaml"))
    kubernetes.config.load_kube_config(config_file=str(KUBECONFIG))  # type: ignore[no-untyped-call]
    cfg = kubernetes.client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = 32
    kubernetes.client.Configuration.set_default(cfg)


def cluster_down() -> None:
    subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "down"], env=ENV, capture_output=True)


def namespace_with_policy(policy_spec: dict[str, Any]) -> str:
    """A fresh namespace and a GovernancePolicy that selects only it."""
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, f"modelgate.io/bench={ns}")
    policy = {
        "apiVersion": API,
        "kind": "GovernancePolicy",
        "metadata": {"name": f"bench-{ns}"},
        "spec": {"namespaceSelector": {"matchLabels": {"modelgate.io/bench": ns}}, **policy_spec},
    }
    kubectl("apply", "-f", "-", input=json.dumps(policy))
    return ns


@contextmanager
def operator(*extra: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`modelgate run` watching bench-* namespaces; yields the process and its metrics port."""
    metrics_port = free_port()
    proc = start_operator(
        KUBECONFIG,
        ROOT / ".cache" / "bench-operator.log",
        "--namespace",
        "bench-*",
        "--webhook-port",
        str(free_port()),
        *extra,
        *client_ca_args(KUBECONFIG),
        liveness_port=free_port(),
        metrics_port=metrics_port,
    )
    try:
        wait_webhooks()
        yield proc, metrics_port
    finally:
        stop_operator(proc, timeout=30)


def wait_webhooks() -> None:
    for _ in range(240):
        res = kubectl(*PROBE_ARGS, input=probe_input(), check=False)
        if probe_answered(res.returncode, res.stdout):
            return
        time.sleep(0.25)
    sys.exit("bench: the operator's webhooks did not answer")


def create_many(
    docs: list[dict[str, Any]],
    user: str | None = None,
    group: str | None = None,
    threads: int = 16,
    created: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Create modelgate objects from `threads` client threads, as `user` (in `group`) or as the
    bench's admin; `created(doc)` is called as each create returns. kubectl apply reads each object
    before it writes it: 130-240 per minute with 10,000 models monitored (bench/monitoring,
    2026-12-06), against thousands per minute this way."""
    api = kubernetes.client.ApiClient()
    api.user_agent = "modelgate-bench"
    if user is not None:
        api.set_default_header("Impersonate-User", user)
    if group is not None:
        api.set_default_header("Impersonate-Group", group)
    custom = kubernetes.client.CustomObjectsApi(api)

    def create(doc: dict[str, Any]) -> None:
        group_name, version = doc["apiVersion"].split("/")
        plural = doc["kind"].lower() + "s"
        try:
            custom.create_namespaced_custom_object(
                group_name, version, doc["metadata"]["namespace"], plural, doc
            )
        except kubernetes.client.ApiException as e:
            who = user or "the bench's admin"
            sys.exit(
                f"bench: creating {doc['kind']} {doc['metadata']['name']} as {who} failed: {e.body or e}"
            )
        if created is not None:
            created(doc)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, docs))


def evidence(ns: str, refs: list[dict[str, str]], names: list[str]) -> None:
    """An approval (as bob, ethics-board) and an evaluation (as erin) for each model ref."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    create_many(
        [
            {
                "apiVersion": API,
                "kind": "ModelApproval",
                "metadata": {"name": f"a-{n}", "namespace": ns},
                "spec": {"model": r, "role": "ethics-board", "decision": "approved"},
            }
            for r, n in zip(refs, names, strict=True)
        ],
        "bob",
        "ethics-board",
    )
    create_many(
        [
            {
                "apiVersion": API,
                "kind": "ModelEvaluation",
                "metadata": {"name": f"e-{n}", "namespace": ns},
                "spec": {
                    "model": r,
                    "dataset": {"name": "d", "uri": "s3://d"},
                    "metrics": {"accuracy": 0.95},
                    "evaluatedAt": now,
                },
            }
            for r, n in zip(refs, names, strict=True)
        ],
        "erin",
        "evaluators",
    )


def watch_model_deployments(api: Any, ns: str, resource_version: str) -> tuple[Any, Iterator[dict[str, Any]]]:
    """A watch of the ModelDeployments in `ns` from `resource_version` (ends after a minute, to be
    started again), and its events."""
    w = kubernetes.watch.Watch()
    group, version = API.split("/")
    events = w.stream(
        api.list_namespaced_custom_object,
        group,
        version,
        ns,
        "modeldeployments",
        resource_version=resource_version,
        timeout_seconds=60,
    )
    return w, events
