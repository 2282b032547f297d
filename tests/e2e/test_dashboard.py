"""deploy/grafana/modelgate.json and the alert rules' expressions, run against the real Prometheus
scraping the session's operator while it holds ModelDeployments in several phases: no expression
errors, the core panels (models by phase, decisions, reconcile latency) return data, and the alert
on expiring evidence names the model whose approval expires in three days."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Prometheus
from tests.support import manifests as m
from tests.support.kube import Kubectl, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "modelgate.json"
RULES = ROOT / "deploy" / "prometheus" / "modelgate-rules.yaml"
VARIABLES = {"$__rate_interval": "1m", "${namespace}": ".*", "$namespace": ".*"}
"""Grafana's variables as it would fill them in: $datasource only picks the data source."""
CORE = ("Models by phase", "Decisions", "Reconcile latency")
THREE_DAYS = dt.timedelta(days=3)


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


@dataclass(frozen=True)
class Target:
    panel: str
    expr: str
    """With the variables filled in."""
    instant: bool
    """A table's instant query; otherwise a range query over the dashboard's time range."""


def targets(dash: dict[str, Any]) -> list[Target]:
    """Every panel target, its variables filled in."""
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets") or []:
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"panel {panel['title']!r} uses a variable the test does not fill: {expr}"
            out.append(Target(panel["title"], expr, bool(target.get("instant"))))
    return out


def api(prometheus: Prometheus, path: str, **params: str) -> list[dict[str, Any]]:
    """The result of a Prometheus query API call; fails naming the expression when it is refused."""
    url = f"{prometheus.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            answer = json.load(r)
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{params['query']}: {e.code} {e.read().decode(errors='replace')}") from e
    assert answer["status"] == "success", f"{params['query']}: {answer}"
    return list(answer["data"]["result"])


def query(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    """An instant query."""
    return api(prometheus, "query", query=expr)


def run(prometheus: Prometheus, target: Target) -> list[float]:
    """The target as Grafana runs it (the last 15 minutes, a point every 5 s): every value."""
    if target.instant:
        return [float(s["value"][1]) for s in query(prometheus, target.expr)]
    end = time.time()
    series = api(prometheus, "query_range", query=target.expr, start=str(end - 900), end=str(end), step="5")
    return [float(v) for s in series for _, v in s["values"]]


def has_data(values: list[float]) -> bool:
    return any(math.isfinite(v) for v in values)


def shows_data(prometheus: Prometheus, panels: list[Target], title: str) -> bool:
    """Every target of the panel has a number somewhere in its time range."""
    return all(has_data(run(prometheus, t)) for t in panels if t.panel == title)


@pytest.fixture
def scraped(operator: OperatorProcess, prometheus: Prometheus) -> Iterator[None]:
    """Prometheus scrapes the session operator's /metrics for the test, from before the test acts
    (a counter's first increase is seen only when a sample before it was taken)."""
    name = f"operator-{uuid.uuid4().hex[:6]}"
    address = urllib.parse.urlsplit(operator.metrics_url).netloc
    prometheus.add_target(name, address)
    wait_until(
        "Prometheus to scrape the operator",
        lambda: query(prometheus, f'up{{instance="{address}"}} == 1'),
        timeout=60,
    )
    yield
    prometheus.remove_target(name)


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_datasource_variable() -> None:
    dash = dashboard()
    variables = {v["name"]: v for v in dash["templating"]["list"]}

    assert dash["schemaVersion"] == 39 and dash["uid"] == "modelgate"
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    titles = {p["title"] for p in dash["panels"]}
    assert {
        *CORE,
        "Gate failures by reason",
        "Drift metrics against thresholds",
        "Prometheus query latency",
    } <= titles
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_every_panel_and_rule_runs_against_prometheus_scraping_the_operator(
    kubectl: Kubectl,
    namespace: str,
    policy_name: str,
    operator: OperatorProcess,
    prometheus: Prometheus,
    scraped: None,
) -> None:
    kubectl.apply(m.policy(policy_name, namespace))
    m.approve(
        kubectl, m.approval("serving-ethics", namespace, "serving", expires_at=m.now_rfc3339(THREE_DAYS))
    )
    m.submit(kubectl, m.evaluation("serving-eval", namespace, "serving"))
    m.deploy(
        kubectl,
        m.model_deployment(
            "serving", namespace, approvals=("serving-ethics",), evaluations=("serving-eval",)
        ),
    )
    m.deploy(kubectl, m.model_deployment("blocked", namespace))
    phase = f'modelgate_model_phase{{namespace="{namespace}"}}'
    wait_until(
        "Prometheus to see one model Serving and one Blocked",
        lambda: {s["metric"]["phase"] for s in query(prometheus, phase)} == {"Serving", "Blocked"},
        timeout=180,
    )

    panels = targets(dashboard())
    for target in panels:
        run(prometheus, target)  # raises on a PromQL error
    for title in CORE:
        wait_until(
            f"panel {title!r} to show data", partial(shows_data, prometheus, panels, title), timeout=180
        )
    gates = query(prometheus, f'modelgate_model_gate_failures{{namespace="{namespace}"}}')
    assert {(s["metric"]["name"], s["metric"]["reason"]) for s in gates} >= {("blocked", "ApprovalMissing")}

    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    for rule in rules:
        query(prometheus, rule["expr"])
    (expiring,) = [r["expr"] for r in rules if r.get("alert") == "ModelgateEvidenceExpiringSoon"]
    firing = {(s["metric"]["namespace"], s["metric"]["name"]) for s in query(prometheus, expiring)}
    assert (namespace, "serving") in firing and (namespace, "blocked") not in firing
