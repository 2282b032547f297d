"""Run hack/simulator.py (the reference exporter under simulated traffic) for a test."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Simulator:
    proc: subprocess.Popen[str]
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def drift(self, model: str, on: bool, version: str | None = None) -> None:
        query = f"model={model}&on={1 if on else 0}" + (f"&version={version}" if version else "")
        req = urllib.request.Request(f"http://{self.address}/drift?{query}", method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200, r.read()

    def state(self) -> object:
        with urllib.request.urlopen(f"http://{self.address}/drift", timeout=5) as r:
            return json.loads(r.read())


@contextmanager
def simulator(models: list[str]) -> Iterator[Simulator]:
    """Models as namespace/name/version; the simulator listens on a free port on 127.0.0.1."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "hack" / "simulator.py"), "--port", "0", "--models", ",".join(models)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "simulator: ready port=P ..." or an error, then EOF
        if "ready" not in line:
            raise AssertionError(f"the simulator did not start: {line}{proc.stdout.read()}")
        port = int(line.split("port=")[1].split()[0])
        yield Simulator(proc, port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
