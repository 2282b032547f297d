"""The HTML report's renderer (cli/page.py, cli/svg.py) and the range-query plumbing that needs no
Prometheus (observe/ranges.py): escaping, no script or fetched resource, SVG scaling, "no data"."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from modelgate.cli import page, svg
from modelgate.cli.htmlreport import NO_URL, _panel, check_url
from modelgate.observe.ranges import CheckQuery, History, RangeResult, _matrix, _mine, check_query, window
from tests.support.browser import Dom

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
T0 = (NOW - dt.timedelta(days=1)).timestamp()
T1 = NOW.timestamp()
HOSTILE = "<script>alert('x')</script>\"'&<img src=https://evil.example/x.png>"


def model(**over: Any) -> dict[str, Any]:
    """A report entry as `gather` makes it, with a hostile value in every free-text field."""
    m: dict[str, Any] = {
        "name": "fraud",
        "namespace": "fraud-prod",
        "uid": "u-1",
        "created": "2026-12-01T00:00:00Z",
        "model": {
            "name": "fraud",
            "version": "v1",
            "uri": "https://models.example/fraud",
            "digest": "sha256:ab",
        },
        "card": {"owner": "team@example.com", "intendedUse": HOSTILE, "riskLevel": "high"},
        "digestSetBy": {"username": "alice", "groups": ["deployers"]},
        "phase": "Serving",
        "conditions": {"Ready": {"status": "True", "reason": "Serving", "message": HOSTILE}},
        "policies": ["p-1"],
        "approvals": [
            {
                "name": "eb",
                "found": True,
                "uid": "a-1",
                "created": "2026-12-01T10:00:00Z",
                "role": "ethics-board",
                "decision": "approved",
                "digest": "sha256:ab",
                "approvedBy": {"username": "bob", "groups": ["ethics-board"]},
                "comment": HOSTILE,
                "sealed": True,
                "seal": {"keyId": "0123456789abcdef", "signedAt": "2026-12-01T10:00:01Z"},
            },
            {"name": "gone", "found": False},
        ],
        "evaluations": [
            {
                "name": "ev",
                "found": True,
                "uid": "e-1",
                "dataset": {"name": "holdout", "uri": "s3://d"},
                "metrics": {"accuracy": 0.93, "auc": 0.7},
                "evaluatedAt": "2026-12-01T09:00:00Z",
                "digest": "sha256:ab",
                "submittedBy": {"username": "erin", "groups": ["evaluators"]},
                "reportUri": "https://reports.example/ev",
                "sealed": True,
                "seal": None,
            }
        ],
        "evaluationRequirements": [
            {"policy": "p-1", "metric": "accuracy", "min": 0.9, "maxAge": "30d"},
            {"policy": "p-1", "metric": "auc", "min": 0.8},
            {"policy": "p-1", "metric": "f1", "min": 0.5},
        ],
        "monitoring": [{"name": "psi", "templateRef": {"name": "psi"}, "max": 0.25}],
        "templates": {"psi": {"query": "max by (namespace, model, version) (psi)"}},
        "gates": [
            {
                "requirement": "approval ethics-board",
                "satisfied": True,
                "reason": "Satisfied",
                "message": "by bob",
            },
            {"requirement": "evaluation auc", "satisfied": False, "reason": "BelowMin", "message": HOSTILE},
        ],
        "servingRevision": {"version": "v1", "digest": "sha256:ab", "image": "img", "admittedAt": "t"},
        "lastKnownGood": None,
        "rejectedDigests": [],
        "quarantinedAt": None,
        "metrics": [
            {"name": "psi", "value": 0.1, "status": "Pass", "consecutiveFailures": 0, "checkedAt": "t"}
        ],
        "history": [
            {
                "time": "2026-12-01T10:00:02Z",
                "action": "Admitted",
                "reason": "GatesPassed",
                "message": HOSTILE,
                "revision": {"version": "v1"},
                "evidenceDigest": "sha256:ee",
                "seal": {
                    "algorithm": "Ed25519",
                    "keyId": "fedcba9876543210",
                    "signedAt": "2026-12-01T10:00:02Z",
                },
            },
            {"time": "2026-12-01T11:00:00Z", "action": "CheckFailed", "reason": "AboveMax", "message": "psi"},
        ],
        "events": [{"time": "t", "type": "Normal", "reason": "Admitted", "message": HOSTILE}],
    }
    m.update(over)
    return m


def chart(
    points: tuple[tuple[float, float], ...], lo: float | None = None, hi: float | None = 0.25
) -> svg.Chart:
    return svg.Chart("psi", (svg.Line("version v1", points),), T0, T1, 120.0, lo, hi)


def panel(points: tuple[tuple[float, float], ...] = ((T0 + 60, 0.1), (T0 + 180, 0.2))) -> page.Panel:
    return page.Panel("psi", "MetricTemplate psi", "max(psi)", chart(points))


def render(m: dict[str, Any] | None = None, panels: list[page.Panel] | None = None) -> str:
    return page.render(m or model(), [panel()] if panels is None else panels, NOW, "http://prom:9090")


def test_hostile_values_are_shown_as_text_and_never_become_elements() -> None:
    html = render()
    parsed = Dom(html)
    names = {t for t, _ in parsed.tags}
    assert "script" not in names and "img" not in names, names
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    # Each hostile field arrives intact as text: comment, card, gate, condition, history, event.
    assert "".join(parsed.text).count("<script>alert('x')</script>") == 6


def test_the_page_fetches_nothing_no_src_href_or_url_in_css() -> None:
    html = render()
    for tag, attrs in Dom(html).tags:
        assert not {"src", "href", "srcset", "action", "data", "background"} & set(attrs), (tag, attrs)
        assert (
            tag not in {"link", "iframe", "object", "embed", "base", "form", "meta"}
            or attrs.get("charset")
            or (attrs.get("name") == "viewport")
        ), tag
    assert "url(" not in html and "@import" not in html
    # URLs from the cluster are plain text only.
    assert "https://models.example/fraud" in html and "https://reports.example/ev" in html


def test_gates_are_a_checklist_with_their_messages() -> None:
    html = render()
    assert "1 of 2 requirements satisfied" in html
    assert re.search(r'class="mark ok">✓</span><strong>approval ethics-board</strong>', html)
    assert re.search(r'class="mark bad">✗</span><strong>evaluation auc</strong>', html)


def test_approvals_show_person_role_time_and_seal_and_a_missing_one_says_so() -> None:
    html = render()
    assert "<strong>bob</strong>" in html and "ethics-board" in html and "2026-12-01T10:00:00Z" in html
    assert "0123456789abcdef" in html
    assert "gone</strong>" in html or "gone</td>" in html
    assert "not found" in html


def test_evaluations_are_judged_against_the_policy_thresholds() -> None:
    rows = page._metric_rows(model()["evaluations"][0], model()["evaluationRequirements"])
    verdicts = {r[0]: r[3] for r in rows}
    assert "meets" in verdicts["accuracy"] and "misses" in verdicts["auc"]
    assert "not reported" in verdicts["f1"]
    assert "≥ 0.9" in rows[0][2] and "max age 30d" in rows[0][2]


def test_a_threshold_for_another_dataset_does_not_apply() -> None:
    reqs = [{"policy": "p", "metric": "accuracy", "min": 0.99, "dataset": "other"}]
    rows = page._metric_rows(model()["evaluations"][0], reqs)
    assert [r[3] for r in rows if r[0] == "accuracy"] == ['<span class="muted">no threshold</span>']


def test_timeline_marks_each_sealed_record_with_its_key_and_an_unsealed_one_as_such() -> None:
    html = page.timeline(model())
    assert html.count("<li") == 2
    assert "fedcba9876543210" in html and "Ed25519" in html and "sha256:ee" in html
    assert html.count("not sealed") == 1


def test_no_data_is_shown_with_its_reason_instead_of_a_chart() -> None:
    empty = page.Panel("psi", "MetricTemplate psi", "q", chart(()), "Prometheus unreachable: cannot connect")
    html = render(panels=[empty])
    assert "<svg" not in html
    assert "no data" in html and "Prometheus unreachable: cannot connect" in html


def test_a_model_without_monitoring_says_so() -> None:
    assert "The model watches no metrics." in render(panels=[])


def coords(svg_text: str) -> list[tuple[float, float]]:
    pts = re.findall(r'points="([^"]+)"', svg_text)
    out = [tuple(map(float, p.split(","))) for seg in pts for p in seg.split()]
    out += [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg_text)]
    return out  # type: ignore[return-value]


def inside_plot(xy: tuple[float, float]) -> bool:
    return svg.LEFT <= xy[0] <= svg.WIDTH - svg.RIGHT and svg.TOP <= xy[1] <= svg.HEIGHT - svg.BOTTOM


def test_svg_with_no_points_has_axes_and_threshold_and_no_series() -> None:
    text = svg.render(chart(()))
    assert "<polyline" not in text and "<circle" not in text
    assert "max 0.25" in text and 'class="threshold"' in text


def test_svg_with_one_point_draws_a_dot_inside_the_plot() -> None:
    text = svg.render(chart(((T0 + 3600, 0.1),)))
    assert "<polyline" not in text and text.count("<circle") == 1
    assert all(inside_plot(p) for p in coords(text))


def test_svg_with_one_value_and_no_threshold_still_has_a_range() -> None:
    c = svg.Chart("x", (svg.Line("v", ((T0, 5.0), (T0 + 60, 5.0))),), T0, T0 + 60, 60.0)
    s = svg.scale(c)
    assert s.v0 < 5.0 < s.v1
    assert all(inside_plot(p) for p in coords(svg.render(c)))


def test_svg_with_many_points_keeps_every_point_in_the_plot_in_time_order() -> None:
    step = 120.0
    pts = tuple((T0 + i * step, (i % 50) / 100) for i in range(720))
    text = svg.render(chart(pts))
    drawn = coords(text)
    assert len(drawn) == 720 and "<circle" not in text  # too many for dots
    assert all(inside_plot(p) for p in drawn)
    xs = [x for x, _ in drawn]
    assert xs == sorted(xs)
    assert drawn[0][0] == pytest.approx(svg.LEFT) and drawn[-1][0] < svg.WIDTH - svg.RIGHT


def test_svg_threshold_stays_in_view_when_values_are_far_below_it() -> None:
    s = svg.scale(chart(((T0, 0.001), (T0 + 120, 0.002)), lo=None, hi=10.0))
    assert s.v0 <= 0.001 and s.v1 >= 10.0
    assert svg.TOP <= s.y(10.0) <= svg.HEIGHT - svg.BOTTOM


def test_svg_higher_values_are_drawn_higher() -> None:
    s = svg.scale(chart(((T0, 0.1), (T0 + 60, 0.3))))
    assert s.y(0.3) < s.y(0.1)


def test_missing_samples_break_the_line() -> None:
    pts = ((T0, 0.1), (T0 + 120, 0.1), (T0 + 3600, 0.2), (T0 + 3720, 0.2))
    assert [len(s) for s in svg.segments(pts, 120.0)] == [2, 2]
    assert svg.render(chart(pts)).count("<polyline") == 2


def test_svg_labels_are_escaped() -> None:
    c = svg.Chart(HOSTILE, (), T0, T1, 60.0, 0.0, 1.0)
    text = svg.render(c)
    assert "<script" not in text and "&lt;script&gt;" in text


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.0, 1.0), (0.2, 0.21), (-5.0, 5.0), (1000.0, 250000.0), (0.0, 1e-9)]
)
def test_nice_ticks_are_within_the_range_and_few(lo: float, hi: float) -> None:
    ticks = svg.nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 11 and all(lo <= t <= hi + 1e-12 for t in ticks)


def test_window_is_the_last_day_or_since_a_younger_model() -> None:
    start, end, step = window(NOW, NOW - dt.timedelta(days=3))
    assert (start, end) == (NOW - dt.timedelta(days=1), NOW) and step == 120.0
    start, _, step = window(NOW, NOW - dt.timedelta(minutes=10))
    assert start == NOW - dt.timedelta(minutes=10) and step == 1.0
    start, _, _ = window(NOW, NOW)  # just created: still a minute to show
    assert start == NOW - dt.timedelta(minutes=1)


def test_a_template_check_asks_the_template_query_and_picks_the_models_series() -> None:
    templates = {"psi": {"query": "max(psi)", "labels": {"namespace": "ns", "model": "m", "version": "v"}}}
    ask = check_query({"name": "psi", "templateRef": {"name": "psi"}}, templates, "prod", "fraud", "v1")
    assert ask == CheckQuery("max(psi)", {"ns": "prod", "m": "fraud"})
    data = [
        {"metric": {"ns": "prod", "m": "fraud", "v": "v1"}, "values": [[1, "0.1"], [2, "NaN"]]},
        {"metric": {"ns": "prod", "m": "fraud", "v": "v2"}, "values": [[1, "0.3"]]},
        {"metric": {"ns": "prod", "m": "other", "v": "v1"}, "values": [[1, "0.9"]]},
    ]
    mine = _mine(_matrix(data), ask.identity)
    assert [(s.labels["v"], s.points) for s in mine] == [("v1", ((1.0, 0.1),)), ("v2", ((1.0, 0.3),))]


def test_an_inline_check_is_rendered_escaped_and_a_missing_template_is_a_reason() -> None:
    ask = check_query({"name": "x", "query": 'up{model="{{model}}"}'}, {}, "ns", 'a"b', "v1")
    assert ask == CheckQuery('up{model="a\\"b"}', None)
    assert check_query({"name": "x", "templateRef": {"name": "nope"}}, {}, "ns", "m", "v") == (
        "MetricTemplate nope not found"
    )


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:9090", True),
        ("https://prom.example", True),
        ("prom:9090", False),
        ("file:///x", False),
    ],
)
def test_prometheus_url_must_be_http(url: str, ok: bool) -> None:
    assert (check_url(url) is None) is ok


class FakeHistory:
    """A HistorySource answering every range query with one fixed result."""

    def __init__(self, result: RangeResult) -> None:
        self.result = result
        self.asked: list[tuple[CheckQuery, float]] = []

    def history(self, ask: CheckQuery, start: dt.datetime, end: dt.datetime, step: float) -> RangeResult:
        self.asked.append((ask, step))
        return self.result


PSI = {"name": "psi", "templateRef": {"name": "psi"}, "max": 0.25}


def test_a_panel_draws_each_version_of_the_model_against_the_check_threshold() -> None:
    series = (History({"version": "v1"}, ((T0, 0.1), (T0 + 120, 0.2))), History({"version": "v2"}, ()))
    fake = FakeHistory(RangeResult("series", series))
    p = _panel(model(), PSI, fake, NOW)
    assert p.no_data is None and p.chart.max == 0.25
    assert [line.label for line in p.chart.lines] == ["version v1"]  # a series without samples is left out
    assert fake.asked[0][0] == CheckQuery(
        "max by (namespace, model, version) (psi)", {"namespace": "fraud-prod", "model": "fraud"}
    )
    assert fake.asked[0][1] == 120.0  # the model is older than a day: the whole day, 720 steps


@pytest.mark.parametrize(
    ("result", "why"),
    [
        (
            RangeResult("series", ()),
            "Prometheus has no samples for namespace=fraud-prod, model=fraud in this window",
        ),
        (
            RangeResult("unreachable", error="cannot connect to http://p: refused"),
            "Prometheus unreachable: cannot connect to http://p: refused",
        ),
        (RangeResult("query-error", error="parse error"), "Prometheus query-error: parse error"),
    ],
)
def test_a_panel_without_samples_says_why(result: RangeResult, why: str) -> None:
    assert _panel(model(), PSI, FakeHistory(result), NOW).no_data == why


def test_a_panel_without_prometheus_or_template_says_so_without_asking() -> None:
    assert _panel(model(), PSI, None, NOW).no_data == NO_URL
    fake = FakeHistory(RangeResult("series", ()))
    missing = {"name": "lat", "templateRef": {"name": "gone"}, "max": 1.0}
    assert _panel(model(), missing, fake, NOW).no_data == "MetricTemplate gone not found" and fake.asked == []
