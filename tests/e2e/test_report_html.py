"""`modelgate report --html` in a real browser: a model served by the session operator, with a real
approval and evaluation, monitored through the real Prometheus scraping the reference exporter, is
rolled back after drift; its page is rendered by headless chromium once for the module.

MODELGATE_UPDATE_REPORT_EXAMPLE=1 copies the page and its screenshot to docs/report-example.*.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Prometheus
from tests.support import browser
from tests.support import manifests as m
from tests.support.browser import Dom
from tests.support.kube import Cluster, Kubectl, create_test_namespace, wait_until
from tests.support.operator import OperatorProcess
from tests.support.simulator import Simulator, simulator

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]
ROOT = Path(__file__).resolve().parents[2]
COMMENT = "Reviewed the fairness report. <script>console.error('pwned')</script> & signed off"


@dataclass(frozen=True)
class Served:
    namespace: str
    status: dict[str, Any]


def cli(cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelgate", "report", *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def serve(kubectl: Kubectl, ns: str, template: str, version: str, comment: str = "") -> None:
    approval = m.approval(f"{version}-ethics", ns, "fraud", version)
    approval["spec"]["comment"] = comment or f"Approved {version} after review."
    m.approve(kubectl, approval, user="bob")
    m.submit(kubectl, m.evaluation(f"{version}-eval", ns, "fraud", version, accuracy=0.93))
    m.deploy(
        kubectl,
        m.model_deployment(
            "fraud",
            ns,
            version,
            approvals=(f"{version}-ethics",),
            evaluations=(f"{version}-eval",),
            monitoring=m.psi_monitoring(template, "rollback"),
        ),
    )


def status_when(kubectl: Kubectl, ns: str, what: str, pred: Any) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kubectl.get("mdep", "fraud", ns) or {}
        st = obj.get("status") or {}
        fresh = st.get("observedGeneration") == (obj.get("metadata") or {}).get("generation")
        return st if fresh and pred(st) else None

    return wait_until(what, probe, timeout=150)


def known_good(st: dict[str, Any]) -> list[str]:
    return [g["version"] for g in st.get("knownGood") or []]


@pytest.fixture(scope="module")
def served(kubectl: Kubectl, prometheus: Prometheus, operator: OperatorProcess) -> Iterator[Served]:
    """fraud v1 then v2 served, v2 drifting and rolled back to v1: approvals, evaluations, checks
    and decisions for the page, and psi samples of both versions in Prometheus."""
    ns = f"t-report-html-{uuid.uuid4().hex[:5]}"
    suffix = uuid.uuid4().hex[:8]
    policy, template = f"p-{suffix}", f"psi-{suffix}"
    create_test_namespace(kubectl, ns)
    sim: Simulator
    with simulator([f"{ns}/fraud/v1", f"{ns}/fraud/v2"]) as sim:
        prometheus.add_target(ns, sim.address)
        try:
            kubectl.apply(m.policy(policy, ns, min_accuracy=0.9))
            kubectl.apply(m.psi_template(template))
            serve(kubectl, ns, template, "v1")
            status_when(kubectl, ns, "v1 to pass its checks", lambda st: "v1" in known_good(st))
            serve(kubectl, ns, template, "v2", COMMENT)
            status_when(kubectl, ns, "v2 to pass its checks", lambda st: "v2" in known_good(st))
            sim.drift("fraud", True, version="v2")
            st = status_when(kubectl, ns, "the rollback", lambda st: st.get("phase") == "RolledBack")
            yield Served(ns, st)
        finally:
            prometheus.remove_target(ns)
            kubectl("delete", "governancepolicy", policy, "--ignore-not-found", "--wait=false", check=False)
            kubectl("delete", "metrictemplate", template, "--ignore-not-found", "--wait=false", check=False)
            kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="module")
def page(
    cluster: Cluster, prometheus: Prometheus, served: Served, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("report") / "fraud.html"
    res = cli(cluster, "-n", served.namespace, "fraud", "--html", str(path), "--prometheus", prometheus.url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"wrote {path}" in res.stdout
    return path


@pytest.fixture(scope="module")
def rendered(page: Path) -> browser.Rendered:
    out = browser.render(page)
    if os.environ.get("MODELGATE_UPDATE_REPORT_EXAMPLE") == "1":
        shutil.copy(page, ROOT / "docs" / "report-example.html")
        (ROOT / "docs" / "report-example.png").write_bytes(out.png)
    return out


def test_the_page_loads_in_chromium_without_console_messages_or_requests(rendered: browser.Rendered) -> None:
    assert rendered.console == []
    assert rendered.requests == []
    assert browser.png_size(rendered.png) == browser.WINDOW
    assert len(rendered.png) > 50_000, "the screenshot looks blank"


def test_the_rendered_page_names_the_model_its_people_and_its_gates(
    rendered: browser.Rendered, served: Served
) -> None:
    dom = Dom(rendered.dom)
    text = dom.words
    assert f"ModelDeployment {served.namespace}/fraud" in text
    assert "RolledBack" in text
    for person in ("bob", "erin", "alice"):
        assert person in text, person
    assert "ethics-board" in text
    gates = served.status["gates"]
    assert gates
    for gate in gates:
        assert " ".join(gate["requirement"].split()) in text, gate["requirement"]
    assert "accuracy" in text and "0.93" in text and "≥ 0.9" in text


def test_a_hostile_comment_is_text_on_the_page_and_never_a_script(rendered: browser.Rendered) -> None:
    dom = Dom(rendered.dom)
    assert [t for t, _ in dom.tags if t == "script"] == []
    assert "<script>console.error('pwned')</script>" in dom.words


def test_the_psi_chart_has_both_versions_against_the_threshold(rendered: browser.Rendered) -> None:
    dom = Dom(rendered.dom)
    lines = [a for t, a in dom.tags if t == "polyline"]
    dots = [a for t, a in dom.tags if t == "circle"]
    assert len(lines) + len(dots) >= 2, "no series drawn"
    assert sum(len((a.get("points") or "").split()) for a in lines) + len(dots) >= 10
    assert "version v1" in dom.words and "version v2" in dom.words
    assert "max 0.25" in dom.words
    assert [a for _, a in dom.tags if a.get("class") == "nodata"] == []


def test_the_timeline_marks_each_decision_sealed_with_its_key(
    rendered: browser.Rendered, served: Served
) -> None:
    history = served.status["history"]
    sealed = [h for h in history if h.get("seal")]
    assert sealed, history
    words = Dom(rendered.dom).words
    assert words.count("sealed key") >= len(sealed)
    for h in sealed:
        assert h["seal"]["keyId"] in words
    assert "RolledBack" in words and "Admitted" in words


def test_the_browser_checks_catch_a_script_and_a_fetched_image(tmp_path: Path) -> None:
    """The two checks above can fail: a page with a console error and a remote image fails both."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><img src='http://example.invalid/x.png'>"
        "<script>console.error('boom')</script></body></html>"
    )
    out = browser.render(bad)
    assert any("boom" in line for line in out.console), out.console
    assert out.requests == ["http://example.invalid/x.png"]


def test_without_prometheus_each_chart_says_no_data_and_why(
    cluster: Cluster, served: Served, tmp_path: Path
) -> None:
    down = tmp_path / "down.html"
    res = cli(
        cluster, "-n", served.namespace, "fraud", "--html", str(down), "--prometheus", "http://127.0.0.1:1"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    text = Dom(down.read_text()).words
    assert "no data Prometheus unreachable: cannot connect to http://127.0.0.1:1" in text
    assert "Connection refused" in text

    none = tmp_path / "none.html"
    res = cli(cluster, "-n", served.namespace, "fraud", "--html", str(none), env={"PROMETHEUS_URL": ""})
    assert res.returncode == 0, res.stdout + res.stderr
    assert (
        "no data no Prometheus URL given: pass --prometheus URL or set PROMETHEUS_URL"
        in Dom(none.read_text()).words
    )


def test_prometheus_url_comes_from_the_environment(
    cluster: Cluster, prometheus: Prometheus, served: Served, tmp_path: Path
) -> None:
    path = tmp_path / "env.html"
    res = cli(
        cluster, "-n", served.namespace, "fraud", "--html", str(path), env={"PROMETHEUS_URL": prometheus.url}
    )
    assert res.returncode == 0, res.stdout + res.stderr
    html = path.read_text()
    assert f"Prometheus at {prometheus.url}" in html and "<polyline" in html


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--html", "x.html"], 2, "--html writes one model's page: name the ModelDeployment"),
        (["fraud", "--html", "x.html", "--prometheus", "prom:9090"], 2, "is not an http(s) URL"),
        (["fraud", "--html", "/nonexistent-dir/x.html"], 1, "cannot write /nonexistent-dir/x.html"),
        (["nope", "--html", "x.html"], 1, "not found"),
        (["fraud", "--html", "x.html", "--bundle", "b.json"], 2, "--bundle and --html each write one file"),
    ],
)
def test_bad_html_arguments_get_a_clear_message_and_write_nothing(
    cluster: Cluster, served: Served, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelgate",
            "report",
            "-n",
            served.namespace,
            *args,
            "--kubeconfig",
            str(cluster.kubeconfig),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PROMETHEUS_URL": ""},
    )
    assert res.returncode == code, res.stdout + res.stderr
    assert message in res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "x.html").exists()
