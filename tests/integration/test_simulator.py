"""The traffic simulator (hack/simulator.py) scraped by the real Prometheus: PSI stays low until drift
is switched on over HTTP, then passes 0.25; the example MetricTemplates read what the exporter exports."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelgate.api.v1alpha1 import MetricTemplate
from modelgate.observe.prometheus import PrometheusConfig, PrometheusSource, QueryResult
from tests.conftest import Prometheus
from tests.support.kube import wait_until

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
NS = "sim"


@dataclass
class Simulator:
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def call(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())


@pytest.fixture
def simulator(prometheus: Prometheus, tmp_path: Path) -> Iterator[tuple[Simulator, str, str]]:
    """A simulator serving two models, m-<run> and other-<run>, scraped by Prometheus (both ways of
    naming models on the command line)."""
    run = uuid.uuid4().hex[:6]
    model, other = f"m-{run}", f"other-{run}"
    log = tmp_path / "simulator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "hack" / "simulator.py"),
                *("--port", "0", "--namespace", NS, "--model", model, "--version", "1.0.0"),
                *("--models", f"{NS}/{other}/1.0.0"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = wait_until(
            "the simulator to print its ready line",
            lambda: (
                process.poll() is None
                and next((x for x in log.read_text().split() if x.startswith("port=")), None)
            ),
            timeout=60,
        )
        sim = Simulator(process, log, int(ready.split("=")[1]))
        prometheus.add_target(f"simulator-{run}", f"127.0.0.1:{sim.port}")
        yield sim, model, other
        prometheus.remove_target(f"simulator-{run}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def query(prometheus: Prometheus, promql: str) -> QueryResult:
    async def go() -> QueryResult:
        source = PrometheusSource(PrometheusConfig(prometheus.url))
        try:
            return await source.query(promql)
        finally:
            source.close()

    return asyncio.run(go())


def psi(prometheus: Prometheus, model: str) -> float | None:
    result = query(prometheus, f'modelgate_prediction_psi{{model="{model}"}}')
    assert result.ok, result.error
    return result.series[0].value if len(result.series) == 1 else None


def test_drift_switched_on_over_http_drives_psi_past_the_major_shift_threshold(
    prometheus: Prometheus, simulator: tuple[Simulator, str, str]
) -> None:
    sim, model, other = simulator
    before = wait_until(
        f"Prometheus to scrape the PSI of {model}", lambda: psi(prometheus, model), timeout=60
    )
    assert before < 0.1

    answer = sim.call("POST", f"/drift?model={model}&on=1")
    switched = time.monotonic()
    assert [(m["model"], m["drift"]) for m in answer] == [(model, True)]
    assert {m["model"]: m["drift"] for m in sim.call("GET", "/drift")} == {model: True, other: False}

    after = wait_until(
        f"the PSI of {model} in Prometheus to pass 0.25",
        lambda: (v := psi(prometheus, model)) is not None and v > 0.25 and v,
        timeout=30,
    )
    assert after > 0.25
    assert time.monotonic() - switched < 15, "drift should show within a few seconds"
    assert (psi(prometheus, other) or 1.0) < 0.1

    sim.call("POST", f"/drift?model={model}&on=0")
    wait_until(
        f"the PSI of {model} to settle below 0.1 again",
        lambda: (v := psi(prometheus, model)) is not None and v < 0.1,
        timeout=30,
    )


def test_simulator_stops_cleanly_on_sigterm(simulator: tuple[Simulator, str, str]) -> None:
    sim, _, _ = simulator
    sim.process.send_signal(signal.SIGTERM)
    assert sim.process.wait(15) == 0
    assert "simulator: stopped" in sim.log.read_text()


def test_unknown_model_or_bad_switch_is_refused(simulator: tuple[Simulator, str, str]) -> None:
    sim, model, _ = simulator
    for path, code in (("/drift?model=nope&on=1", 404), (f"/drift?model={model}&on=maybe", 400)):
        with pytest.raises(urllib.error.HTTPError) as e:
            sim.call("POST", path)
        assert e.value.code == code


def example(name: str) -> MetricTemplate:
    return MetricTemplate.model_validate(
        yaml.safe_load((ROOT / "examples" / "02-metric-templates" / name).read_text())
    )


def test_example_psi_template_computes_the_exporters_psi_in_promql(
    prometheus: Prometheus, simulator: tuple[Simulator, str, str]
) -> None:
    _, model, _ = simulator
    template = example("prediction-drift-psi.yaml")
    # One query, so both sides come from the same scrape.
    promql = (
        f"({template.spec.query}) - on(namespace, model, version) "
        "max by (namespace, model, version) (modelgate_prediction_psi)"
    )

    def difference() -> float | None:
        result = query(prometheus, promql)
        assert result.ok, result.error
        mine = [s.value for s in result.series if s.labels.get("model") == model]
        return mine[0] if mine else None

    diff = wait_until(
        f"the example PSI template to return {model}", lambda: (d := difference()) is not None and [d]
    )
    assert abs(diff[0]) < 1e-9


def test_example_latency_template_reads_the_exporters_latency_histogram(
    prometheus: Prometheus, simulator: tuple[Simulator, str, str]
) -> None:
    _, model, _ = simulator
    template = example("latency-p99.yaml")

    def p99() -> float | None:
        result = query(prometheus, template.spec.query)
        assert result.ok, result.error
        return next((s.value for s in result.series if s.labels.get("model") == model), None)

    value = wait_until(
        f"the example latency template to return {model}", lambda: (v := p99()) is not None and [v]
    )
    assert 0 < value[0] < 10
