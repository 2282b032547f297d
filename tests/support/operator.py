"""Run `modelgate run` as a subprocess against a test cluster, the way a user runs it locally (the
launcher is hack/launch.py's, shared with the benchmarks and the demo)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.launch import free_port, healthy, start_operator, stop_operator

from tests.support.kube import wait_until


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str
    healthz_url: str = ""
    webhook_port: int = 0

    def audit_lines(self) -> list[dict[str, Any]]:
        """The structured audit log lines written so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith('{"action"') or '"audit": true' in line:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if obj.get("audit"):
                    out.append(obj)
        return out

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            return str(r.read().decode())


@contextmanager
def run_operator(
    kubeconfig: Path, log: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[OperatorProcess]:
    """`modelgate run` with free liveness and metrics ports, and a free webhook port unless `args`
    or MODELGATE_WEBHOOK_PORT name one (the default, 9443, may be another checkout's operator; an
    external cluster's webhook configurations name a fixed port); `env` is added to the
    environment (e.g. POD_NAME, the replica's leader election identity)."""
    live, metrics = free_port(), free_port()
    if "--webhook-port" not in args:
        args = (*args, "--webhook-port", os.environ.get("MODELGATE_WEBHOOK_PORT") or str(free_port()))
    port = int(args[args.index("--webhook-port") + 1])
    proc = start_operator(kubeconfig, log, *args, liveness_port=live, metrics_port=metrics, env=env)
    op = OperatorProcess(
        proc, log, f"http://127.0.0.1:{metrics}/metrics", f"http://127.0.0.1:{live}/healthz", port
    )

    def alive() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {proc.returncode}; log: {log.read_text()[-3000:]}")
        return healthy(live)

    try:
        wait_until("the operator's liveness endpoint", alive, timeout=60)
        yield op
    finally:
        stop_operator(proc)
