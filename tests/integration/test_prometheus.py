"""Prometheus is real: it scrapes an exporter started here and PromQL returns the exported value."""

from __future__ import annotations

import random
import uuid

import pytest
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.conftest import Prometheus
from tests.support.kube import wait_until

pytestmark = pytest.mark.prometheus


def test_prometheus_scrapes_an_exporter_and_promql_returns_its_value(prometheus: Prometheus) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("modelgate_test_value", "A value set by the test", ["model"], registry=registry)
    value = round(random.uniform(1, 1000), 3)
    model = f"m-{uuid.uuid4().hex[:6]}"
    gauge.labels(model=model).set(value)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]
        prometheus.add_target(model, f"127.0.0.1:{port}", {"suite": "test_prometheus"})
        prom = PrometheusConnect(url=prometheus.url, disable_ssl=True)
        query = f'modelgate_test_value{{model="{model}"}}'
        result = wait_until(f"Prometheus to return {query}", lambda: prom.custom_query(query), timeout=60)
        assert len(result) == 1
        assert float(result[0]["value"][1]) == value
        assert result[0]["metric"]["suite"] == "test_prometheus"
    finally:
        prometheus.remove_target(model)
        server.shutdown()
        thread.join(5)
