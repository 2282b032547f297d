"""Monitoring batches: every metric check of every model in one interval, in as few queries as possible.

The operator gathers the checks due in an interval (one `CheckRequest` per model and metric) and
hands them to `run_checks`, which

1. plans (`MonitoringBatch.plan`, pure): each MetricTemplate that is referenced becomes ONE query for
   all the models that use it; each inline query is rendered with its model's escaped namespace,
   model and version, and identical rendered queries are run once. A reference to a missing template,
   or an inline query whose placeholders cannot be filled safely, becomes a `query-error` sample
   without touching Prometheus;
2. runs the distinct queries concurrently through a `MetricSource` (which bounds its own
   concurrency and never raises);
3. fans the results out (`MonitoringBatch.fan_out`, pure): a template's result is indexed by the
   template's label names (namespace, model and version by default, configurable per template) and
   each model gets the value of its own series: no series is `empty`, two or more series with the
   same identity are `multiple-series`. An inline query must return exactly one series. A failed
   query (PromQL error, timeout, unreachable) gives every check that reads it the same failure.

With N models on T templates that is T queries per interval instead of N*T (see bench/monitoring).
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from modelgate.api.v1alpha1 import MetricCheck, MetricTemplate
from modelgate.api.v1alpha1.monitoring import MetricLabels
from modelgate.decide.drift import Sample, SampleError
from modelgate.observe.prometheus import MetricSource, QueryKind, QueryResult, Series
from modelgate.observe.promql import PromQLTemplateError, render_inline


class CheckKey(NamedTuple):
    """Which reading a sample is for: a metric of a ModelDeployment."""

    namespace: str
    deployment: str
    metric: str


@dataclass(frozen=True)
class CheckRequest:
    """One metric check due for one ModelDeployment."""

    namespace: str
    deployment: str
    """metadata.name of the ModelDeployment."""
    model: str
    """spec.model.name: the `model` label in Prometheus."""
    version: str
    """spec.model.version (of the revision being watched): the `version` label."""
    check: MetricCheck

    @property
    def key(self) -> CheckKey:
        return CheckKey(self.namespace, self.deployment, self.check.name)


class _Identity(NamedTuple):
    """Label names of a template's result and the values one model is found under."""

    names: tuple[str, str, str]
    values: tuple[str, str, str]
    slice: str | None = None
    """The label that splits a model's result by slice (MetricTemplate spec.labels.slice)."""


@dataclass(frozen=True)
class _Reader:
    key: CheckKey
    identity: _Identity | None
    """None for an inline query: the whole result belongs to this check."""
    bounds: tuple[float | None, float | None] = (None, None)
    """The check's min and max: which slice is the worst."""


@dataclass(frozen=True)
class MonitoringBatch:
    """The plan of one interval: distinct queries, who reads each, and checks that failed up front."""

    readers: Mapping[str, tuple[_Reader, ...]]
    """Distinct PromQL text -> the checks that read its result."""
    failed: Mapping[CheckKey, Sample] = field(default_factory=dict)

    @property
    def queries(self) -> tuple[str, ...]:
        return tuple(self.readers)

    @classmethod
    def plan(
        cls, templates: Mapping[str, MetricTemplate], requests: Sequence[CheckRequest]
    ) -> MonitoringBatch:
        readers: dict[str, list[_Reader]] = defaultdict(list)
        failed: dict[CheckKey, Sample] = {}
        for req in requests:
            check = req.check
            if check.template_ref is not None:
                name = check.template_ref.name
                template = templates.get(name)
                if template is None:
                    failed[req.key] = Sample.failed("query-error", f"MetricTemplate {name} not found")
                    continue
                labels: MetricLabels = template.spec.labels
                identity = _Identity(
                    (labels.namespace, labels.model, labels.version),
                    (req.namespace, req.model, req.version),
                    labels.slice,
                )
                bounds = (check.min, check.max)
                readers[template.spec.query].append(_Reader(req.key, identity, bounds))
            elif check.query is not None:
                try:
                    query = render_inline(check.query, req.namespace, req.model, req.version)
                except PromQLTemplateError as e:
                    failed[req.key] = Sample.failed("query-error", str(e), check.query)
                    continue
                readers[query].append(_Reader(req.key, None))
        return cls({q: tuple(rs) for q, rs in readers.items()}, failed)

    def fan_out(self, results: Mapping[str, QueryResult]) -> dict[CheckKey, Sample]:
        """One sample per requested check, from the result of each distinct query."""
        samples = dict(self.failed)
        for query, readers in self.readers.items():
            result = results.get(query)
            if result is None:
                result = QueryResult("unreachable", error="the query was not run")
            indexes: dict[tuple[str, str, str], dict[tuple[str, str, str], list[Series]]] = {}
            for reader in readers:
                if not result.ok:
                    samples[reader.key] = Sample.failed(_error_kind(result), result.error, query)
                elif reader.identity is None:
                    samples[reader.key] = _single(result.series, query)
                else:
                    names = reader.identity.names
                    if names not in indexes:
                        indexes[names] = _index(result.series, names)
                    matched = indexes[names].get(reader.identity.values, [])
                    if reader.identity.slice is None:
                        samples[reader.key] = _matched(matched, reader.identity, query)
                    else:
                        samples[reader.key] = _worst_slice(matched, reader.identity, reader.bounds, query)
        return samples


def _worst_slice(
    series: Sequence[Series], identity: _Identity, bounds: tuple[float | None, float | None], query: str
) -> Sample:
    """The reading of a model whose result is split by slice: the slice furthest past (or closest
    to) its threshold, named; two series of one slice are ambiguous."""
    label = str(identity.slice)
    by_slice: dict[str, list[Series]] = defaultdict(list)
    for s in series:
        by_slice[s.labels.get(label, "")].append(s)
    if not series:
        return _matched(series, identity, query)
    doubled = [v for v, ss in by_slice.items() if len(ss) > 1]
    if doubled:
        return Sample.failed(
            "multiple-series", f"{len(by_slice[doubled[0]])} series for {label}={doubled[0]!r}", query
        )
    low, high = bounds
    finite = [(v, ss[0].value) for v, ss in by_slice.items() if math.isfinite(ss[0].value)]
    if not finite:
        name, only = next(iter(by_slice.items()))
        return Sample.of(only[0].value, query, f"{label}={name}")

    def excess(item: tuple[str, float]) -> float:
        value = item[1]
        return max(
            value - high if high is not None else -math.inf, low - value if low is not None else -math.inf
        )

    name, value = max(sorted(finite), key=excess)
    return Sample.of(value, query, f"{label}={name}")


@dataclass(frozen=True)
class BatchResult:
    samples: dict[CheckKey, Sample]
    """One sample per requested check."""
    queries: int
    """Prometheus queries made."""
    results: Mapping[str, QueryResult] = field(default_factory=dict)
    """Each distinct query's raw result (durations, attempts)."""


async def run_checks(
    source: MetricSource, templates: Mapping[str, MetricTemplate], requests: Sequence[CheckRequest]
) -> BatchResult:
    """Plan, query each distinct PromQL once (concurrently, bounded by the source) and fan out."""
    batch = MonitoringBatch.plan(templates, requests)
    queries = batch.queries
    answers = await asyncio.gather(*(_ask(source, q) for q in queries))
    results = dict(zip(queries, answers, strict=True))
    return BatchResult(batch.fan_out(results), len(queries), results)


async def _ask(source: MetricSource, query: str) -> QueryResult:
    try:
        return await source.query(query)
    except Exception as e:  # a MetricSource must not raise; if one does, it is an outage, not a crash
        return QueryResult("unreachable", error=f"query failed: {type(e).__name__}: {e}")


_FAILURES: dict[QueryKind, SampleError] = {
    "query-error": "query-error",
    "timeout": "timeout",
    "unreachable": "unreachable",
    "bad-answer": "bad-answer",
}


def _error_kind(result: QueryResult) -> SampleError:
    return _FAILURES.get(result.kind, "query-error")


def _index(series: Sequence[Series], names: tuple[str, str, str]) -> dict[tuple[str, str, str], list[Series]]:
    """Series by their (namespace, model, version) label values; series missing one are skipped."""
    index: dict[tuple[str, str, str], list[Series]] = defaultdict(list)
    for s in series:
        values = tuple(s.labels.get(n) for n in names)
        if all(v is not None for v in values):
            index[(str(values[0]), str(values[1]), str(values[2]))].append(s)
    return index


def _describe(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _single(series: Sequence[Series], query: str) -> Sample:
    if not series:
        return Sample.failed("empty", "the query returned no series", query)
    if len(series) > 1:
        shown = "; ".join(_describe(s.labels) for s in series[:3])
        more = f" and {len(series) - 3} more" if len(series) > 3 else ""
        return Sample.failed("multiple-series", f"{len(series)} series: {shown}{more}", query)
    return Sample.of(series[0].value, query)


def _matched(series: Sequence[Series], identity: _Identity, query: str) -> Sample:
    if len(series) == 1:
        return Sample.of(series[0].value, query)
    wanted = ", ".join(f'{n}="{v}"' for n, v in zip(identity.names, identity.values, strict=True))
    if not series:
        return Sample.failed("empty", f"no series with {wanted}", query)
    shown = "; ".join(_describe(s.labels) for s in series[:3])
    return Sample.failed("multiple-series", f"{len(series)} series with {wanted}: {shown}", query)
