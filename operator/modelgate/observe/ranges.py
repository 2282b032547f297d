"""Metric history for reports: a Prometheus range query of each check a model runs, over a window.

The operator itself only ever asks instant queries (observe/prometheus.py); a report shows what a
check saw over the last day. Each check is asked the way the operator asks it: a MetricTemplate's
query as written (its result holds every model's series; the model's own are picked by the
template's namespace and model label names, every version, so a rollback shows both), an inline
query with its placeholders filled and escaped (observe/promql.py). Prometheus is asked once per
check, synchronously (a CLI, not an event loop), with the same timeout, authentication and error
texts as the operator's queries. A failure is a result, never an exception, so the report can say
why a chart is empty: nothing configured, unreachable, refused query, or no samples.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from modelgate.observe.prometheus import PrometheusSource
from modelgate.observe.promql import PromQLTemplateError, render_inline

RangeKind = Literal["series", "no-prometheus", "query-error", "timeout", "unreachable", "bad-answer"]
WINDOW: Final = dt.timedelta(days=1)
MAX_POINTS: Final = 720
"""Points per series at most: one every two minutes over a day, finer over a shorter window."""
MIN_STEP: Final = 1.0


@dataclass(frozen=True)
class History:
    """The values of one series over the window: (unix time, value) pairs; NaN and Inf dropped."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class RangeResult:
    kind: RangeKind
    series: tuple[History, ...] = ()
    error: str = ""
    query: str = ""


@dataclass(frozen=True)
class CheckQuery:
    """How to ask for one check's history: the PromQL, and which series of its result are the
    model's (None: all of them, an inline query)."""

    promql: str
    identity: Mapping[str, str] | None


def check_query(
    check: Mapping[str, Any],
    templates: Mapping[str, Mapping[str, Any]],
    namespace: str,
    model: str,
    version: str,
) -> CheckQuery | str:
    """The query of one check (a report's `monitoring` entry), or why there is none."""
    ref = (check.get("templateRef") or {}).get("name")
    if ref:
        template = templates.get(ref)
        if template is None:
            return f"MetricTemplate {ref} not found"
        labels = template.get("labels") or {}
        names = (labels.get("namespace", "namespace"), labels.get("model", "model"))
        return CheckQuery(str(template["query"]), dict(zip(names, (namespace, model), strict=True)))
    try:
        return CheckQuery(render_inline(str(check.get("query") or ""), namespace, model, version), None)
    except PromQLTemplateError as e:
        return str(e)


def window(now: dt.datetime, since: dt.datetime | None) -> tuple[dt.datetime, dt.datetime, float]:
    """(start, end, step seconds): the last day, or less when the model is younger than that."""
    start = now - WINDOW
    if since is not None and since > start:
        start = min(since, now - dt.timedelta(minutes=1))
    step = max((now - start).total_seconds() / MAX_POINTS, MIN_STEP)
    return start, now, step


def _matrix(data: Any) -> tuple[History, ...]:
    """The `result` of /api/v1/query_range: a list of {metric, values: [[t, "v"], ...]}."""
    out = []
    for item in data:
        points = tuple((float(t), float(v)) for t, v in item["values"])
        out.append(History(dict(item.get("metric", {})), tuple(p for p in points if math.isfinite(p[1]))))
    return tuple(out)


def _mine(series: Sequence[History], identity: Mapping[str, str] | None) -> tuple[History, ...]:
    if identity is None:
        return tuple(series)
    return tuple(s for s in series if all(s.labels.get(k) == v for k, v in identity.items()))


class HistorySource(Protocol):
    """Anything that answers a check's range query (a fake in unit tests). Never raises."""

    def history(self, ask: CheckQuery, start: dt.datetime, end: dt.datetime, step: float) -> RangeResult: ...


class RangeSource(PrometheusSource):
    """A PrometheusSource that also answers range queries, for the report (blocking calls)."""

    def history(self, ask: CheckQuery, start: dt.datetime, end: dt.datetime, step: float) -> RangeResult:
        """The model's series of `ask` between start and end. Never raises."""
        self._last.response = None
        try:
            data = self._client.custom_query_range(
                ask.promql,
                start_time=start,
                end_time=end,
                step=f"{step:g}s",
                params={"timeout": f"{self.config.timeout:g}s"},
                timeout=self.config.timeout,
            )
            return RangeResult("series", _mine(_matrix(data), ask.identity), query=ask.promql)
        except Exception as e:  # never raise: the report shows the failure instead of a chart
            failed = self._failed(e)
            return RangeResult(failed.kind, error=failed.error, query=ask.promql)
