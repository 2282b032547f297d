"""deploy/prometheus/modelgate-rules.yaml checked and unit-tested by promtool (Debian's prometheus
package, found the way hack/prometheus.py finds prometheus), and the chart's copy of it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hack.manifests import CHART_FILES
from hack.prometheus import promtool

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "modelgate-rules.yaml"
TESTS = ROOT / "deploy" / "prometheus" / "tests"


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *map(str, args)], capture_output=True, text=True, timeout=120)


def alerts(rules: dict[str, Any]) -> set[str]:
    return {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}


def test_promtool_checks_the_rules() -> None:
    res = run_promtool("check", "rules", RULES)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 16 rules found" in res.stdout


def test_promtool_unit_tests_pass() -> None:
    res = run_promtool("test", "rules", *sorted(TESTS.glob("*.yaml")))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tested: dict[str, set[bool]] = {}
    for path in TESTS.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test") or []:
                tested.setdefault(check["alertname"], set()).add(bool(check.get("exp_alerts")))
    defined = alerts(yaml.safe_load(RULES.read_text()))
    assert {name for name, kinds in tested.items() if kinds == {True, False}} == defined
    assert len(defined) == 8


def test_every_alert_has_a_severity_summary_description_and_runbook_in_the_docs() -> None:
    docs = (ROOT / "docs" / "alerts.md").read_text()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
            anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
            assert anchor == rule["alert"].lower() and f'<a id="{anchor}"></a>' in docs, rule["alert"]


def test_the_unit_tests_fail_when_an_alert_changes(tmp_path: Path) -> None:
    """The promtool tests can fail: a rules file whose blocked limit moved to 25 hours fails them."""
    shutil.copytree(RULES.parent, tmp_path / "prometheus")
    rules = tmp_path / "prometheus" / RULES.name
    rules.write_text(rules.read_text().replace("> 86400", "> 90000"))

    res = run_promtool("test", "rules", *sorted((tmp_path / "prometheus" / "tests").glob("*.yaml")))

    out = res.stdout + res.stderr
    assert res.returncode != 0 and "alertname: ModelgateModelBlocked" in out, out


def test_the_chart_ships_identical_copies_of_the_rules_and_the_dashboard() -> None:
    for source, copy in CHART_FILES.items():
        assert copy.read_bytes() == source.read_bytes(), (
            f"{copy.relative_to(ROOT)} differs from {source.relative_to(ROOT)}: run make manifests"
        )
