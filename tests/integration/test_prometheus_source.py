"""The Prometheus access layer and monitoring batches against a real Prometheus scraping a real exporter.

Each test starts its own exporter (prometheus_client on a free loopback port) with model names made
unique per run, registers it as a scrape target, and waits for Prometheus to have the data."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from modelgate.api.v1alpha1 import MetricCheck, MetricTemplate
from modelgate.decide.drift import Sample
from modelgate.observe.batch import BatchResult, CheckKey, CheckRequest, run_checks
from modelgate.observe.prometheus import PrometheusConfig, PrometheusSource, QueryResult
from modelgate.observe.promql import render_inline
from tests.conftest import Prometheus
from tests.support.kube import wait_until

pytestmark = pytest.mark.prometheus

NS = "team-a"
VERSION = "1.0.0"
FANOUT = "max by (namespace, model, version) (modelgate_test_fanout)"
INLINE = 'modelgate_test_fanout{namespace="{{namespace}}", model="{{model}}", version="{{version}}"}'


class Models:
    """Serves modelgate_test_fanout{namespace, model, version} for models the test names."""

    def __init__(self, prometheus: Prometheus) -> None:
        self.prometheus = prometheus
        self.run = uuid.uuid4().hex[:6]
        self.registry = CollectorRegistry()
        self.gauge = Gauge(
            "modelgate_test_fanout",
            "A per-model value set by the test",
            ["namespace", "model", "version"],
            registry=self.registry,
        )
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.target = f"prometheus-source-{self.run}"
        prometheus.add_target(self.target, f"127.0.0.1:{self.server.server_address[1]}")

    def name(self, base: str) -> str:
        return f"{base}-{self.run}"

    def set(self, model: str, value: float, namespace: str = NS, version: str = VERSION) -> None:
        self.gauge.labels(namespace=namespace, model=model, version=version).set(value)

    def close(self) -> None:
        self.prometheus.remove_target(self.target)
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def models(prometheus: Prometheus) -> Iterator[Models]:
    m = Models(prometheus)
    yield m
    m.close()


def template(name: str, query: str) -> MetricTemplate:
    return MetricTemplate.model_validate(
        {
            "apiVersion": "modelgate.io/v1alpha1",
            "kind": "MetricTemplate",
            "metadata": {"name": name},
            "spec": {"query": query},
        }
    )


def request(model: str, check: Mapping[str, Any], namespace: str = NS) -> CheckRequest:
    return CheckRequest(namespace, f"{model}-deploy", model, VERSION, MetricCheck.model_validate(check))


def checks(
    url: str, templates: Sequence[MetricTemplate], requests: Sequence[CheckRequest], timeout: float = 5.0
) -> BatchResult:
    async def go() -> BatchResult:
        source = PrometheusSource(PrometheusConfig(url, timeout=timeout))
        try:
            return await run_checks(source, {t.name: t for t in templates}, requests)
        finally:
            source.close()

    return asyncio.run(go())


def query(url: str, promql: str, timeout: float = 5.0) -> QueryResult:
    async def go() -> QueryResult:
        source = PrometheusSource(PrometheusConfig(url, timeout=timeout))
        try:
            return await source.query(promql)
        finally:
            source.close()

    return asyncio.run(go())


def sample(result: BatchResult, req: CheckRequest) -> Sample:
    return result.samples[req.key]


def wait_for_values(url: str, models: Models, names: Sequence[str]) -> None:
    """Wait until Prometheus has scraped a value for every named model."""
    selector = "|".join(names)
    wait_until(
        f"Prometheus to scrape {', '.join(names)}",
        lambda: len(query(url, f'modelgate_test_fanout{{model=~"{selector}"}}').series) == len(names),
        timeout=60,
    )


def test_one_template_query_fans_out_to_three_models(prometheus: Prometheus, models: Models) -> None:
    values = {models.name("a"): 0.05, models.name("b"): 0.31, models.name("c"): 0.12}
    for model, value in values.items():
        models.set(model, value)
    wait_for_values(prometheus.url, models, list(values))
    psi = template("psi", FANOUT)
    uses = {"name": "psi", "templateRef": {"name": "psi"}, "max": 0.25}
    requests = [request(m, uses) for m in values] + [request(models.name("silent"), uses)]

    result = checks(prometheus.url, [psi], requests)

    assert result.queries == 1
    assert {r.model: sample(result, r).value for r in requests[:3]} == values
    silent = sample(result, requests[3])
    assert silent.error == "empty" and f'model="{models.name("silent")}"' in silent.detail


def test_inline_query_placeholders_select_the_model(prometheus: Prometheus, models: Models) -> None:
    a, b = models.name("a"), models.name("b")
    models.set(a, 0.01)
    models.set(b, 0.07)
    wait_for_values(prometheus.url, models, [a, b])
    check = {"name": "errors", "query": INLINE, "max": 0.02}

    result = checks(prometheus.url, [], [request(a, check), request(b, check)])

    assert result.queries == 2
    assert sample(result, request(a, check)).value == 0.01
    assert sample(result, request(b, check)).value == 0.07


def test_injected_label_value_stays_a_string_and_finds_nothing(
    prometheus: Prometheus, models: Models
) -> None:
    victim = models.name("victim")
    models.set(victim, 0.5)
    wait_for_values(prometheus.url, models, [victim])
    naive_payload = '"} or vector(1) or modelgate_no_such_metric{x="'
    # The payload is a real attack: pasted in without escaping, the query answers 1.
    naive = query(prometheus.url, INLINE.replace("{{model}}", naive_payload).replace("{{namespace}}", NS))
    assert naive.ok and [s.value for s in naive.series] == [1.0]

    for payload in (naive_payload, '"} or vector(1) or {x="'):
        rendered = render_inline(INLINE, NS, payload, VERSION)
        escaped = query(prometheus.url, rendered)
        assert escaped.ok and escaped.series == (), rendered
        check = {"name": "errors", "query": INLINE, "max": 0.02}
        assert (
            sample(checks(prometheus.url, [], [request(payload, check)]), request(payload, check)).error
            == "empty"
        )


def test_promql_syntax_error_is_a_query_error_with_prometheus_message(prometheus: Prometheus) -> None:
    check = {"name": "errors", "query": 'sum(rate(modelgate_test_fanout{model="{{model}}"}[5m])', "max": 1}
    req = request("m", check)

    s = sample(checks(prometheus.url, [], [req]), req)

    assert s.error == "query-error"
    assert "parse error" in s.detail


def test_closed_port_is_unreachable_within_the_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    req = request("m", {"name": "errors", "query": "vector(1)", "max": 1})
    started = time.monotonic()

    s = sample(checks(f"http://127.0.0.1:{port}", [], [req], timeout=2.0), req)

    assert s.error == "unreachable"
    assert "Connection refused" in s.detail
    assert time.monotonic() - started < 2.0


def test_server_that_never_answers_is_a_timeout_tried_once() -> None:
    with socket.socket() as sock:  # accepts connections (backlog) and never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        started = time.monotonic()
        result = query(f"http://127.0.0.1:{sock.getsockname()[1]}", "vector(1)", timeout=1.0)
        elapsed = time.monotonic() - started
    assert (result.kind, result.attempts) == ("timeout", 1)
    assert 1.0 <= elapsed < 3.0


def test_inline_query_with_several_series_is_multiple_series(prometheus: Prometheus, models: Models) -> None:
    a, b = models.name("a"), models.name("b")
    namespace = f"shared-{models.run}"
    models.set(a, 0.1, namespace=namespace)
    models.set(b, 0.2, namespace=namespace)
    wait_for_values(prometheus.url, models, [a, b])
    req = request(
        a,
        {"name": "errors", "query": 'modelgate_test_fanout{namespace="{{namespace}}"}', "max": 1},
        namespace,
    )

    s = sample(checks(prometheus.url, [], [req]), req)

    assert s.error == "multiple-series"
    assert a in s.detail and b in s.detail


def test_nan_from_prometheus_reaches_the_verdict_as_a_value(prometheus: Prometheus) -> None:
    req = request("m", {"name": "ratio", "query": "vector(0) / vector(0)", "max": 1})
    s = sample(checks(prometheus.url, [], [req]), req)
    assert s.value is not None and s.value != s.value  # NaN: the verdict engine makes it Inconclusive
    assert CheckKey(NS, "m-deploy", "ratio") == req.key
