#!/usr/bin/env python3
"""bench/apiserver: the API server's own write ceiling on this machine, measured with a trivial client.

    .venv/bin/python bench/apiserver.py [--n 3000] [--processes 4] [--threads 8]

Against the running bench control plane (bench/common.py; `bench/admission.py --keep` leaves it up), creates `--n` small
ConfigMaps and then merge-patches each once, from `--processes` processes of `--threads` threads
each, and prints the writes per second of each phase. The client does nothing but write (no
decisions, no response parsing), so the rate is what the API server and etcd can take from a Python
client on the same 2 cores: the physical limit that the operator's own write rate is read against
(bench/admission.py --ceiling runs it in the same run, after the operator has stopped).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kubernetes
import urllib3

from bench.common import KUBECONFIG, kubectl, log

NAMESPACE = "bench-ceiling"


def _writes(verb: str, names: list[str], threads: int) -> int:
    """One process' share: `verb` ("create" or "patch") each ConfigMap in `names`; returns how many."""
    kubernetes.config.load_kube_config(str(KUBECONFIG))
    config = kubernetes.client.Configuration.get_default_copy()
    config.connection_pool_maxsize = threads
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))

    def once(name: str) -> None:
        if verb == "create":
            body = {"metadata": {"name": name}, "data": {"k": "v"}}
            core.create_namespaced_config_map(NAMESPACE, body, _preload_content=False).release_conn()
        else:
            body = {"data": {"k": "w"}}
            core.patch_namespaced_config_map(name, NAMESPACE, body, _preload_content=False).release_conn()

    def one(name: str) -> None:
        """One write; a connection the loaded API server reset is tried again (a create that had
        landed then answers 409, which counts as done)."""
        for attempt in range(3):
            try:
                once(name)
                return
            except kubernetes.client.exceptions.ApiException as e:
                if e.status == 409 and attempt:
                    return
                raise
            except (urllib3.exceptions.HTTPError, ConnectionError):
                if attempt == 2:
                    raise

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, names))
    return len(names)


def rate(verb: str, n: int, processes: int, threads: int) -> float:
    """Writes per second of `n` `verb`s spread over the processes, wall clock."""
    names = [f"c{i}" for i in range(n)]
    shares = [names[i::processes] for i in range(processes)]
    t0 = time.monotonic()
    with concurrent.futures.ProcessPoolExecutor(
        processes, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        done = sum(pool.map(_writes, [verb] * processes, shares, [threads] * processes))
    return done / (time.monotonic() - t0)


def measure(n: int, processes: int, threads: int) -> dict[str, float]:
    """Creates and patches per second; the namespace is deleted afterwards."""
    kubectl("create", "namespace", NAMESPACE)
    try:
        out = {verb: rate(verb, n, processes, threads) for verb in ("create", "patch")}
    finally:
        kubectl("delete", "namespace", NAMESPACE, "--wait=false")
    log(f"API server ceiling: {out['create']:.0f} creates/s, {out['patch']:.0f} patches/s")
    return out


def report(rates: dict[str, float], n: int, processes: int, threads: int) -> str:
    who = f"{n} ConfigMaps, {processes} processes x {threads} threads"
    return "\n".join(
        [
            "",
            "| API server write ceiling (trivial client, bench/apiserver.py) | value |",
            "| --- | --- |",
            f"| creates per second ({who}) | {rates['create']:.0f} |",
            f"| merge patches per second (the same ConfigMaps) | {rates['patch']:.0f} |",
        ]
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--processes", type=int, default=4)
    p.add_argument("--threads", type=int, default=8)
    args = p.parse_args()
    if args.n < 1 or args.processes < 1 or args.threads < 1:
        p.error("--n, --processes and --threads must be at least 1")
    if kubectl("get", "--raw", "/readyz", check=False).returncode != 0:
        sys.exit("bench: no bench control plane is running: run bench/admission.py --keep first")
    print(report(measure(args.n, args.processes, args.threads), args.n, args.processes, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
