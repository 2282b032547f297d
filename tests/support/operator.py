"""Run `modelgate run` as a subprocess against a test cluster, the way a user runs it locally."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.kube import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str
    healthz_url: str = ""

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
    """`modelgate run` with free liveness and metrics ports; `env` is added to the environment (e.g.
    POD_NAME, the replica's leader election identity)."""
    live, metrics = free_port(), free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelgate",
                "run",
                "--kubeconfig",
                str(kubeconfig),
                "--liveness-port",
                str(live),
                "--metrics-port",
                str(metrics),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    op = OperatorProcess(proc, log, f"http://127.0.0.1:{metrics}/metrics", f"http://127.0.0.1:{live}/healthz")

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {proc.returncode}; log: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{live}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        wait_until("the operator's liveness endpoint", healthy, timeout=60)
        yield op
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
