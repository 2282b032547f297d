"""The governance report of one model as one static HTML page, for auditors. Pure: data in, HTML out.

The data is what `modelgate report -o json` prints for the model (cli/report.py `gather`), plus a
`Panel` per monitored metric (its chart, or why there is none). The page is meant to be attached to
an audit ticket and printed, and to be safe to open:

- one self-contained document: CSS inline, charts inline SVG (cli/svg.py), no script, no image,
  font or stylesheet fetched, no link anywhere (URIs such as the model's are shown as text);
- every value from the cluster is escaped (`html.escape`), so a comment like `<script>` is shown
  as typed, never run;
- print styles: A4-friendly width, sections kept together, colours printed.

Seals are shown (which key, when), not checked: checking needs the trust file and belongs to the
verifying tool, not to a page anyone can edit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from modelgate.api import conditions as cond
from modelgate.cli import svg

PHASE_CLASS: Final = {
    "Serving": "ok",
    "Progressing": "info",
    "Pending": "info",
    "Blocked": "bad",
    "Degraded": "warn",
    "RolledBack": "warn",
    "Quarantined": "bad",
    "Retiring": "info",
}
CARD_FIELDS: Final = ("owner", "intendedUse", "limitations", "trainingData", "riskLevel")
CSS: Final = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 14px/1.45 "DejaVu Sans", "Liberation Sans", "Segoe UI", Helvetica, Arial, sans-serif;
  color: #1d232a; background: #fff; margin: 0; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
main { max-width: 980px; margin: 0 auto; padding: 28px 32px 40px; }
header { border-bottom: 3px solid #1d232a; padding-bottom: 12px; margin-bottom: 8px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h1 small { font-weight: normal; color: #56606b; font-size: 15px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #c9d0d6; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; font-size: 12px;
  overflow-wrap: anywhere; }
.muted { color: #56606b; }
.pill { display: inline-block; padding: 1px 10px; border-radius: 10px; font-size: 13px; font-weight: bold;
  vertical-align: middle; border: 1px solid; white-space: nowrap; }
.ok { color: #1e6b3a; background: #e5f4ea; border-color: #9fd1b0; }
.bad { color: #9b1c1c; background: #fbe9e9; border-color: #e6a5a5; }
.warn { color: #8a4b00; background: #fdf1e1; border-color: #e9c18a; }
.info { color: #1f4f8f; background: #e8f0fb; border-color: #a9c3e8; }
dl.facts { display: grid; grid-template-columns: 170px 1fr; gap: 3px 14px; margin: 12px 0 0; }
dl.facts dt { color: #56606b; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid #e1e5e9;
  overflow-wrap: break-word; }
th { background: #f3f5f7; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: #3b444d; }
ul.checklist { list-style: none; padding: 0; margin: 0; }
ul.checklist li { padding: 6px 8px 6px 34px; position: relative; border-bottom: 1px solid #e1e5e9; }
ul.checklist .mark { position: absolute; left: 6px; top: 5px; width: 20px; height: 20px; border-radius: 4px;
  text-align: center; font-weight: bold; line-height: 20px; }
.chartbox { border: 1px solid #c9d0d6; border-radius: 6px; padding: 10px 12px; margin: 8px 0 16px;
  break-inside: avoid; page-break-inside: avoid; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .plot { fill: #fbfcfd; stroke: #c9d0d6; }
svg.chart .grid { stroke: #e6e9ec; }
svg.chart .tick { font: 11px "DejaVu Sans", Arial, sans-serif; fill: #56606b; }
svg.chart .threshold { stroke: #b03a2e; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg.chart .threshold-label { font: bold 11px "DejaVu Sans", Arial, sans-serif; fill: #b03a2e; }
svg.chart .breach { fill: #b03a2e; fill-opacity: .07; }
svg.chart .series { stroke-width: 2; stroke-linejoin: round; }
.nodata { padding: 26px 12px; text-align: center; background: #f6f7f8; border: 1px dashed #b7bfc7;
  border-radius: 6px; color: #3b444d; }
.legend span { margin-right: 16px; white-space: nowrap; }
.legend i { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 5px; }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 3px solid #c9d0d6; }
ol.timeline li { position: relative; padding: 4px 0 10px 16px;
  break-inside: avoid; page-break-inside: avoid; }
ol.timeline li::before { content: ""; position: absolute; left: -8px; top: 9px; width: 11px; height: 11px;
  border-radius: 50%; background: #fff; border: 2px solid #56606b; }
ol.timeline li.alarm::before { border-color: #9b1c1c; background: #fbe9e9; }
ol.timeline li.good::before { border-color: #1e6b3a; background: #e5f4ea; }
ol.timeline .when { font-weight: bold; }
.seal { font-size: 12px; }
footer { margin-top: 30px; padding-top: 8px; border-top: 1px solid #c9d0d6; font-size: 12px; color: #56606b; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table, ul.checklist li, tr { break-inside: avoid; page-break-inside: avoid; }
}
"""
BAD_ACTIONS: Final = frozenset(
    {
        cond.ACTION_BLOCKED,
        cond.ACTION_SUSPENDED,
        cond.ACTION_DRIFT_DETECTED,
        cond.ACTION_ROLLED_BACK,
        cond.ACTION_QUARANTINED,
        cond.ACTION_CHECK_FAILED,
        cond.ACTION_TAMPER_REVERTED,
    }
)
"""Decisions marked red on the timeline; the admissions and passes green; the rest neutral."""
GOOD_ACTIONS: Final = frozenset({cond.ACTION_ADMITTED, cond.ACTION_RELEASED, cond.ACTION_CHECK_PASSED})


@dataclass(frozen=True)
class Panel:
    """One monitored metric of the model: its threshold chart, or why there is no data."""

    name: str
    source: str
    """Where its query comes from: "MetricTemplate psi" or "inline query"."""
    query: str
    chart: svg.Chart
    no_data: str | None = None
    """Why there is nothing to draw (no samples, Prometheus unreachable, ...); None: the chart has points."""


def e(value: Any) -> str:
    """A value as escaped text; missing values as a dash."""
    return "—" if value is None or value == "" else escape(str(value), quote=True)


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """Rows of already escaped cells."""
    rows = list(rows)
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(items: Iterable[tuple[str, str]]) -> str:
    """Pairs of (label, already escaped value)."""
    return '<dl class="facts">' + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _who(identity: Mapping[str, Any] | None) -> str:
    if not identity:
        return '<span class="bad pill">unknown</span>'
    groups = ", ".join(str(g) for g in identity.get("groups") or [])
    return f"<strong>{e(identity.get('username'))}</strong>" + (
        f'<br><span class="muted">groups: {e(groups)}</span>' if groups else ""
    )


def _revision(r: Mapping[str, Any] | None) -> str:
    if not r:
        return "none"
    return (
        f"<strong>{e(r.get('version'))}</strong> <code>{e(r.get('digest'))}</code><br>"
        f'<span class="muted">image</span> <code>{e(r.get("image"))}</code> '
        f'<span class="muted">since {e(r.get("admittedAt"))}</span>'
    )


def _evidence_seal(item: Mapping[str, Any]) -> str:
    seal = item.get("seal")
    if seal:
        key, signed = e(seal.get("keyId")), e(seal.get("signedAt"))
        return (
            f'<span class="ok pill">sealed</span><br>'
            f'<span class="seal">key <code>{key}</code><br>{signed}</span>'
        )
    if item.get("sealed"):
        return '<span class="warn pill">admission seal only</span>'
    return '<span class="bad pill">not sealed</span>'


def header(m: Mapping[str, Any], generated: dt.datetime) -> str:
    model, phase = m.get("model") or {}, m.get("phase")
    pill = f'<span class="pill {PHASE_CLASS.get(str(phase), "info")}">{e(phase or "no status")}</span>'
    facts = [
        (
            "Model",
            f"<strong>{e(model.get('name'))}</strong> version <strong>{e(model.get('version'))}</strong>",
        ),
        ("Digest", f"<code>{e(model.get('digest'))}</code>"),
        ("URI", f"<code>{e(model.get('uri'))}</code>"),
        ("Digest set by", e((m.get("digestSetBy") or {}).get("username"))),
        ("Policies in force", e(", ".join(m.get("policies") or []) or "none")),
        ("Serving", _revision(m.get("servingRevision"))),
        ("Last known good", _revision(m.get("lastKnownGood"))),
        ("Object uid", f"<code>{e(m.get('uid'))}</code>"),
        ("Report generated", e(generated.strftime("%Y-%m-%d %H:%M:%S UTC"))),
    ]
    for r in m.get("rejectedDigests") or []:
        facts.append(
            ("Rejected", f"<code>{e(r.get('digest'))}</code> {e(r.get('reason'))} at {e(r.get('time'))}")
        )
    if m.get("quarantinedAt"):
        facts.append(("Quarantined since", e(m["quarantinedAt"])))
    title = f"ModelDeployment {e(m.get('namespace'))}/{e(m.get('name'))}"
    return (
        f"<header><h1>{title} {pill}</h1><div class='muted'>Governance report</div>{_facts(facts)}</header>"
    )


def card(m: Mapping[str, Any]) -> str:
    c = m.get("card") or {}
    keys = [k for k in CARD_FIELDS if k in c] + sorted(k for k in c if k not in CARD_FIELDS)
    return _section("Model card", _facts((k, e(c.get(k))) for k in keys), "card")


def gates(m: Mapping[str, Any]) -> str:
    items = m.get("gates") or []
    done = sum(1 for g in items if g.get("satisfied"))
    lines = []
    for g in items:
        ok = bool(g.get("satisfied"))
        mark = f'<span class="mark {"ok" if ok else "bad"}">{"✓" if ok else "✗"}</span>'
        reason = "" if ok else f' <span class="muted">({e(g.get("reason"))})</span>'
        lines.append(
            f"<li>{mark}<strong>{e(g.get('requirement'))}</strong>{reason}<br>{e(g.get('message'))}</li>"
        )
    conditions = _table(
        ("Condition", "Status", "Reason", "Message"),
        (
            (e(t), e(c.get("status")), e(c.get("reason")), e(c.get("message")))
            for t, c in (m.get("conditions") or {}).items()
        ),
        "No conditions recorded.",
    )
    summary = (
        f"<p>{done} of {len(items)} requirements satisfied.</p>"
        if items
        else '<p class="muted">No gates recorded.</p>'
    )
    body = summary + f'<ul class="checklist">{"".join(lines)}</ul><h3>Conditions</h3>{conditions}'
    return _section("Gates", body, "gates")


def approvals(m: Mapping[str, Any]) -> str:
    rows = []
    for a in m.get("approvals") or []:
        if not a.get("found"):
            rows.append((e(a.get("name")), '<span class="bad pill">not found</span>', "", "", "", "", ""))
            continue
        decision = "ok" if a.get("decision") == "approved" else "bad"
        rows.append(
            (
                f"<strong>{e(a.get('name'))}</strong><br><code>{e(a.get('digest'))}</code>",
                f'<span class="pill {decision}">{e(a.get("decision"))}</span>',
                e(a.get("role")),
                _who(a.get("approvedBy")),
                f"{e(a.get('created'))}"
                + (f"<br>expires {e(a.get('expiresAt'))}" if a.get("expiresAt") else ""),
                e(a.get("comment")),
                _evidence_seal(a),
            )
        )
    table = _table(
        ("Approval", "Decision", "Role", "Person", "Given at", "Comment", "Seal"),
        rows,
        "No approvals referenced.",
    )
    return _section("Approvals", table, "approvals")


def threshold_text(req: Mapping[str, Any]) -> str:
    lo, hi = req.get("min"), req.get("max")
    bound = (
        f"{svg.number(lo)} to {svg.number(hi)}"
        if lo is not None and hi is not None
        else (f"≥ {svg.number(lo)}" if lo is not None else f"≤ {svg.number(hi)}" if hi is not None else "any")
    )
    extra = [f"policy {req.get('policy')}"]
    if req.get("maxAge"):
        extra.append(f"max age {req['maxAge']}")
    if req.get("dataset"):
        extra.append(f"dataset {req['dataset']}")
    return f"{e(bound)} <span class='muted'>({e(', '.join(extra))})</span>"


def meets(value: Any, req: Mapping[str, Any]) -> bool:
    if not isinstance(value, int | float):
        return False
    return (req.get("min") is None or value >= req["min"]) and (req.get("max") is None or value <= req["max"])


def _metric_rows(ev: Mapping[str, Any], reqs: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    values = ev.get("metrics") or {}
    dataset = (ev.get("dataset") or {}).get("name")
    applying = [r for r in reqs if not r.get("dataset") or r.get("dataset") == dataset]
    names = list(values) + [r["metric"] for r in applying if r["metric"] not in values]
    rows: list[tuple[str, ...]] = []
    for name in dict.fromkeys(names):
        mine = [r for r in applying if r.get("metric") == name]
        value = values.get(name)
        if not mine:
            verdict = '<span class="muted">no threshold</span>'
        elif all(meets(value, r) for r in mine):
            verdict = '<span class="ok pill">meets</span>'
        else:
            verdict = '<span class="bad pill">' + ("not reported" if value is None else "misses") + "</span>"
        rows.append((e(name), e(value), "<br>".join(threshold_text(r) for r in mine) or "—", verdict))
    return rows


def evaluations(m: Mapping[str, Any]) -> str:
    reqs = m.get("evaluationRequirements") or []
    parts = []
    for ev in m.get("evaluations") or []:
        if not ev.get("found"):
            parts.append(f'<h3>{e(ev.get("name"))} <span class="bad pill">not found</span></h3>')
            continue
        ds = ev.get("dataset") or {}
        parts.append(
            f"<h3>{e(ev.get('name'))}</h3>"
            + _facts(
                [
                    ("Dataset", f"{e(ds.get('name'))} <code>{e(ds.get('uri'))}</code>"),
                    ("Evaluated at", e(ev.get("evaluatedAt"))),
                    ("Submitted by", _who(ev.get("submittedBy"))),
                    ("Artifact", f"<code>{e(ev.get('digest'))}</code>"),
                    ("Report", f"<code>{e(ev.get('reportUri'))}</code>"),
                    ("Seal", _evidence_seal(ev)),
                ]
            )
            + _table(("Metric", "Value", "Policy threshold", "Result"), _metric_rows(ev, reqs), "No metrics.")
        )
    if not parts:
        parts.append('<p class="muted">No evaluations referenced.</p>')
    if reqs:
        parts.append(
            "<h3>Thresholds of the policies in force</h3>"
            + _table(("Metric", "Threshold"), ((e(r.get("metric")), threshold_text(r)) for r in reqs), "")
        )
    return _section("Evaluations", "".join(parts), "evaluations")


def _legend(chart: svg.Chart) -> str:
    spans = [
        f'<span><i style="background:{svg.colour(i)}"></i>{e(line.label)}</span>'
        for i, line in enumerate(chart.lines)
    ]
    if chart.min is not None or chart.max is not None:
        spans.append(f'<span><i style="background:{svg.THRESHOLD}"></i>threshold</span>')
    return f'<div class="legend">{"".join(spans)}</div>'


def _reading(m: Mapping[str, Any], name: str) -> str:
    r = next((r for r in m.get("metrics") or [] if r.get("name") == name), None)
    if r is None:
        return "no reading recorded"
    status = str(r.get("status"))
    cls = {"Pass": "ok", "Fail": "bad"}.get(status, "warn")
    return (
        f'<span class="pill {cls}">{e(status)}</span> value {e(_exact(r.get("value")))}, '
        f"{e(r.get('consecutiveFailures', 0))} consecutive failures, at {e(r.get('checkedAt'))}"
    )


def _exact(value: Any) -> Any:
    """A reading as precise as anyone compares it by hand (the JSON report has every digit)."""
    return f"{value:.6g}" if isinstance(value, float) else value


def monitoring(m: Mapping[str, Any], panels: Sequence[Panel]) -> str:
    parts = []
    for p in panels:
        c = p.chart
        bounds = " ".join(
            f"{k} {svg.number(v)}" for k, v in (("min", c.min), ("max", c.max)) if v is not None
        )
        window = f"{svg.clock(c.start, True)} to {svg.clock(c.end, True)} UTC"
        figure = (
            f'<div class="nodata"><strong>no data</strong><br>{e(p.no_data)}</div>'
            if p.no_data
            else svg.render(c) + _legend(c)
        )
        parts.append(
            f'<div class="chartbox"><h3>{e(p.name)} <span class="muted">{e(bounds)}</span></h3>'
            f"<div>Last reading: {_reading(m, p.name)}</div>"
            f'<div class="muted">{e(p.source)}, {e(window)}</div>'
            f"{figure}<div class='muted'>query <code>{e(p.query)}</code></div></div>"
        )
    body = "".join(parts) or '<p class="muted">The model watches no metrics.</p>'
    return _section("Monitoring", body, "monitoring")


def _record_seal(h: Mapping[str, Any]) -> str:
    seal = h.get("seal")
    if not isinstance(seal, Mapping):
        return '<span class="bad pill">not sealed</span>'
    return (
        f'<span class="ok pill">sealed</span> <span class="seal">key <code>{e(seal.get("keyId"))}</code>, '
        f"{e(seal.get('algorithm'))}, signed {e(seal.get('signedAt'))}; evidence "
        f"<code>{e(h.get('evidenceDigest'))}</code></span>"
    )


def timeline(m: Mapping[str, Any]) -> str:
    items = []
    for h in m.get("history") or []:
        action = str(h.get("action"))
        cls = "alarm" if action in BAD_ACTIONS else "good" if action in GOOD_ACTIONS else ""
        version = (h.get("revision") or {}).get("version")
        items.append(
            f'<li class="{cls}"><span class="when">{e(h.get("time"))}</span> <strong>{e(action)}</strong>'
            f' <span class="muted">{e(h.get("reason"))}{", version " + e(version) if version else ""}</span>'
            f"<br>{e(h.get('message'))}<br>{_record_seal(h)}</li>"
        )
    dropped = m.get("historyDropped")
    note = (
        f'<p class="muted">{e(dropped)} older decisions no longer fit in status.history.</p>'
        if dropped
        else ""
    )
    body = note + (
        f'<ol class="timeline">{"".join(items)}</ol>'
        if items
        else '<p class="muted">No decisions recorded.</p>'
    )
    return _section("Decisions", body, "decisions")


def events(m: Mapping[str, Any]) -> str:
    rows = (
        (e(ev.get("time")), e(ev.get("type")), e(ev.get("reason")), e(ev.get("message")))
        for ev in m.get("events") or []
    )
    return _section(
        "Events",
        _table(
            ("Time", "Type", "Reason", "Message"), rows, "No Events (they expire after an hour by default)."
        ),
        "events",
    )


def render(
    m: Mapping[str, Any], panels: Sequence[Panel], generated: dt.datetime, prometheus: str | None
) -> str:
    """The whole page for one model of `gather`'s output."""
    source = f"Prometheus at {prometheus}" if prometheus else "no Prometheus (none configured)"
    footer = (
        f"<footer>Generated by <code>modelgate report --html</code> from the Kubernetes API and {e(source)}. "
        "Seals are shown as recorded, not checked by this page. No script, no external resources.</footer>"
    )
    body = "".join(
        (
            header(m, generated),
            card(m),
            gates(m),
            approvals(m),
            evaluations(m),
            monitoring(m, panels),
            timeline(m),
            events(m),
        )
    )
    title = f"Governance report: {m.get('namespace')}/{m.get('name')}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}{footer}</main></body></html>\n"
    )
