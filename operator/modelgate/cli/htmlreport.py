"""`modelgate report -n NS NAME --html FILE`: the report of one model as a static HTML page.

The data is `gather`'s (cli/report.py); each monitored metric gets its values over the last day
(or since the model was created, when that is later) from a Prometheus range query of the query the
operator runs (observe/ranges.py). Prometheus is found from `--prometheus URL`, else
$PROMETHEUS_URL; authentication and TLS from the same MODELGATE_PROMETHEUS_* variables as
`modelgate run`. Without a URL, or with Prometheus down, the page still renders and each chart
says "no data" and why. The page itself is rendered by cli/page.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from modelgate.cli import page, svg
from modelgate.cli.kube import CliError
from modelgate.observe.prometheus import PrometheusConfig
from modelgate.observe.ranges import CheckQuery, HistorySource, RangeSource, check_query, window

NO_URL = "no Prometheus URL given: pass --prometheus URL or set PROMETHEUS_URL"


def check_url(url: str | None) -> str | None:
    """Why `url` cannot be a Prometheus URL, or None."""
    if url is None:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"--prometheus {url!r} is not an http(s) URL, e.g. http://prometheus.monitoring:9090"
    return None


def _created(m: Mapping[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(m.get("created")).replace("Z", "+00:00"))
    except ValueError:
        return None


def _label(labels: Mapping[str, str], version_label: str, i: int) -> str:
    version = labels.get(version_label)
    return f"version {version}" if version else f"series {i + 1}"


def _panel(
    m: Mapping[str, Any], check: Mapping[str, Any], source: HistorySource | None, now: dt.datetime
) -> page.Panel:
    model = m["model"]
    version = (m.get("servingRevision") or {}).get("version") or model["version"]
    start, end, step = window(now, _created(m))
    ref = (check.get("templateRef") or {}).get("name")
    source_text = f"MetricTemplate {ref}" if ref else "inline query"
    chart = svg.Chart(
        str(check["name"]), (), start.timestamp(), end.timestamp(), step, check.get("min"), check.get("max")
    )
    ask = check_query(check, m.get("templates") or {}, m["namespace"], model["name"], version)
    if not isinstance(ask, CheckQuery):
        return page.Panel(chart.title, source_text, str(check.get("query") or ""), chart, ask)
    if source is None:
        return page.Panel(chart.title, source_text, ask.promql, chart, NO_URL)
    result = source.history(ask, start, end, step)
    if result.kind != "series":
        return page.Panel(
            chart.title, source_text, ask.promql, chart, f"Prometheus {result.kind}: {result.error}"
        )
    version_label = ((m.get("templates") or {}).get(ref) or {}).get("labels", {}).get("version", "version")
    lines = tuple(
        svg.Line(_label(s.labels, version_label, i), s.points)
        for i, s in enumerate(result.series)
        if s.points
    )
    if not lines:
        whose = ", ".join(f"{k}={v}" for k, v in (ask.identity or {}).items()) or "this query"
        why = f"Prometheus has no samples for {whose} in this window"
        return page.Panel(chart.title, source_text, ask.promql, chart, why)
    return page.Panel(chart.title, source_text, ask.promql, replace(chart, lines=lines))


def panels(m: Mapping[str, Any], prometheus: str | None, now: dt.datetime) -> list[page.Panel]:
    """One panel per check the model runs."""
    checks: Sequence[Mapping[str, Any]] = m.get("monitoring") or []
    source = RangeSource(PrometheusConfig.from_env(prometheus)) if prometheus and checks else None
    try:
        return [_panel(m, c, source, now) for c in checks]
    finally:
        if source is not None:
            source.close()


def write(m: Mapping[str, Any], path: str, prometheus: str | None, out: TextIO) -> int:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        text = page.render(m, panels(m, prometheus, now), now, prometheus)
    except ValueError as e:  # MODELGATE_PROMETHEUS_* settings that do not go together
        raise CliError(str(e), 2) from e
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from e
    out.write(f"wrote {path} ({len(text.encode())} bytes)\n")
    return 0
