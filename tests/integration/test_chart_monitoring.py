"""The chart ships the alert rules and the Grafana dashboard, off by default: a PrometheusRule whose
spec is deploy/prometheus/modelgate-rules.yaml and a ConfigMap for Grafana's dashboard sidecar
holding deploy/grafana/modelgate.json (rendered with the Helm binary hack/build-helm.sh builds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.helm import CHART, EVERYTHING, NS, of_kind, run_helm, template

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "modelgate-rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "modelgate.json"


def test_neither_renders_by_default() -> None:
    docs = template("--api-versions", "monitoring.coreos.com/v1")
    assert not of_kind(docs, "PrometheusRule") and not of_kind(docs, "ConfigMap")


def test_the_prometheus_rule_is_the_shipped_rules_file() -> None:
    (rule,) = of_kind(template(*EVERYTHING, "--set", "prometheusRule.labels.release=prom"), "PrometheusRule")

    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NS and rule["metadata"]["labels"]["release"] == "prom"
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_the_dashboard_config_map_holds_the_dashboard_for_the_sidecar() -> None:
    values = "grafanaDashboard.namespace=monitoring,grafanaDashboard.annotations.grafana_folder=ML"
    (cm,) = of_kind(template(*EVERYTHING, "--set", values), "ConfigMap")

    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "ML"}
    assert json.loads(cm["data"]["modelgate.json"]) == json.loads(DASHBOARD.read_text())


def test_the_dashboard_needs_no_monitoring_api_and_defaults_to_the_release_namespace() -> None:
    (cm,) = of_kind(template("--set", "grafanaDashboard.enabled=true"), "ConfigMap")
    assert cm["metadata"]["namespace"] == NS


@pytest.mark.parametrize(
    ("flag", "values", "named"),
    [
        ("--set-string", "grafanaDashboard.enabled=yes", "/grafanaDashboard/enabled"),
        ("--set", "grafanaDashboard.folder=ML", "folder"),
        ("--set", "prometheusRule.blockedForMinutes=30", "blockedForMinutes"),  # the rules file says 24h
    ],
)
def test_the_schema_refuses_bad_values(flag: str, values: str, named: str) -> None:
    res = run_helm("template", "modelgate", str(CHART), flag, values, check=False)
    assert res.returncode != 0 and named in res.stderr, res.stderr
