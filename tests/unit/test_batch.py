"""Monitoring batches: one query per template for all models, fan-out by labels, dedup of inline
queries, and failures that become inconclusive samples. A fake MetricSource stands in for Prometheus."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from modelgate.api.v1alpha1 import MetricCheck, MetricTemplate
from modelgate.observe.batch import BatchResult, CheckKey, CheckRequest, MonitoringBatch, run_checks
from modelgate.observe.prometheus import QueryResult, Series

PSI = 'sum by (namespace, model, version) (modelgate_prediction_psi{job="models"})'


class FakeSource:
    """Answers from a dict of query -> result; records every query asked."""

    def __init__(self, answers: Mapping[str, QueryResult]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def query(self, promql: str) -> QueryResult:
        self.asked.append(promql)
        return self.answers.get(promql, QueryResult("series"))


def template(name: str, query: str, labels: dict[str, str] | None = None) -> MetricTemplate:
    spec: dict[str, Any] = {"query": query}
    if labels:
        spec["labels"] = labels
    return MetricTemplate.model_validate(
        {
            "apiVersion": "modelgate.io/v1alpha1",
            "kind": "MetricTemplate",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def request(deployment: str, check: dict[str, Any], ns: str = "prod", version: str = "1.0.0") -> CheckRequest:
    return CheckRequest(ns, deployment, f"{deployment}-model", version, MetricCheck.model_validate(check))


def uses(tpl: str, name: str = "psi") -> dict[str, Any]:
    return {"name": name, "templateRef": {"name": tpl}, "max": 0.25}


def inline(query: str, name: str = "errors") -> dict[str, Any]:
    return {"name": name, "query": query, "max": 0.02}


def series(value: float, **labels: str) -> Series:
    return Series(labels, value)


def run(
    source: FakeSource, templates: Sequence[MetricTemplate], requests: Sequence[CheckRequest]
) -> BatchResult:
    return asyncio.run(run_checks(source, {t.name: t for t in templates}, requests))


def ident(deployment: str, version: str = "1.0.0", ns: str = "prod") -> dict[str, str]:
    return {"namespace": ns, "model": f"{deployment}-model", "version": version}


def test_one_template_runs_once_and_fans_out_to_every_model() -> None:
    answer = QueryResult(
        "series", (series(0.05, **ident("a")), series(0.3, **ident("b")), series(0.1, **ident("c")))
    )
    source = FakeSource({PSI: answer})
    result = run(source, [template("psi", PSI)], [request(d, uses("psi")) for d in "abc"])
    assert source.asked == [PSI] and result.queries == 1
    assert {k.deployment: s.value for k, s in result.samples.items()} == {"a": 0.05, "b": 0.3, "c": 0.1}
    assert result.samples[CheckKey("prod", "a", "psi")].query == PSI


def test_model_without_its_series_gets_empty_and_other_versions_do_not_count() -> None:
    answer = QueryResult("series", (series(0.05, **ident("a", version="0.9.0")),))
    result = run(FakeSource({PSI: answer}), [template("psi", PSI)], [request("a", uses("psi"))])
    sample = result.samples[CheckKey("prod", "a", "psi")]
    assert sample.error == "empty"
    assert 'version="1.0.0"' in sample.detail


def test_same_identity_twice_in_a_template_result_is_multiple_series() -> None:
    answer = QueryResult(
        "series",
        (series(0.1, pod="x", **ident("a")), series(0.2, pod="y", **ident("a")), series(0.1, **ident("b"))),
    )
    result = run(FakeSource({PSI: answer}), [template("psi", PSI)], [request(d, uses("psi")) for d in "ab"])
    assert result.samples[CheckKey("prod", "a", "psi")].error == "multiple-series"
    assert result.samples[CheckKey("prod", "b", "psi")].value == 0.1


def test_template_label_names_are_configurable() -> None:
    tpl = template("psi", PSI, {"namespace": "exported_namespace", "model": "app", "version": "rev"})
    answer = QueryResult("series", (series(0.2, exported_namespace="prod", app="a-model", rev="1.0.0"),))
    result = run(FakeSource({PSI: answer}), [tpl], [request("a", uses("psi"))])
    assert result.samples[CheckKey("prod", "a", "psi")].value == 0.2


def test_missing_template_is_a_query_error_without_asking_prometheus() -> None:
    source = FakeSource({})
    result = run(source, [], [request("a", uses("nope"))])
    sample = result.samples[CheckKey("prod", "a", "psi")]
    assert (sample.error, sample.detail) == ("query-error", "MetricTemplate nope not found")
    assert source.asked == [] and result.queries == 0


def test_identical_rendered_inline_queries_run_once() -> None:
    q = 'errors{namespace="{{namespace}}"}'
    answer = QueryResult("series", (series(0.01),))
    source = FakeSource({'errors{namespace="prod"}': answer})
    reqs = [request("a", inline(q)), request("b", inline(q)), request("c", inline(q), ns="dev")]
    result = run(source, [], reqs)
    assert sorted(source.asked) == ['errors{namespace="dev"}', 'errors{namespace="prod"}']
    assert result.queries == 2
    assert result.samples[CheckKey("prod", "b", "errors")].value == 0.01
    assert result.samples[CheckKey("dev", "c", "errors")].error == "empty"


def test_inline_query_with_several_series_is_multiple_series() -> None:
    q = 'errors{model="{{model}}"}'
    answer = QueryResult("series", (series(0.01, pod="x"), series(0.02, pod="y")))
    result = run(FakeSource({'errors{model="a-model"}': answer}), [], [request("a", inline(q))])
    sample = result.samples[CheckKey("prod", "a", "errors")]
    assert sample.error == "multiple-series"
    assert 'pod="x"' in sample.detail and 'pod="y"' in sample.detail


def test_inline_placeholder_outside_a_string_is_a_query_error() -> None:
    result = run(FakeSource({}), [], [request("a", inline("errors * {{version}}"))])
    assert result.samples[CheckKey("prod", "a", "errors")].error == "query-error"
    assert result.queries == 0


def test_a_failed_query_fails_every_check_that_reads_it_with_its_kind() -> None:
    for kind in ("query-error", "timeout", "unreachable"):
        source = FakeSource({PSI: QueryResult(kind, error=f"{kind} detail")})  # type: ignore[arg-type]
        result = run(source, [template("psi", PSI)], [request(d, uses("psi")) for d in "ab"])
        assert {s.error for s in result.samples.values()} == {kind}
        assert {s.detail for s in result.samples.values()} == {f"{kind} detail"}


def test_a_source_that_raises_is_treated_as_unreachable() -> None:
    class Broken:
        async def query(self, promql: str) -> QueryResult:
            raise RuntimeError("boom")

    result = asyncio.run(run_checks(Broken(), {}, [request("a", inline("x"))]))
    sample = result.samples[CheckKey("prod", "a", "errors")]
    assert sample.error == "unreachable" and "boom" in sample.detail


def test_templates_and_inline_queries_mix_in_one_batch() -> None:
    tpl = template("psi", PSI)
    answer = QueryResult("series", tuple(series(0.1 * i, **ident(d)) for i, d in enumerate("abc")))
    inline_answer = QueryResult("series", (series(0.5),))
    source = FakeSource({PSI: answer, 'e{model="a-model"}': inline_answer})
    reqs = [request(d, uses("psi")) for d in "abc"] + [request("a", inline('e{model="{{model}}"}'))]
    result = run(source, [tpl], reqs)
    assert result.queries == 2 and len(result.samples) == 4


def test_plan_lists_each_distinct_query_once_with_its_readers() -> None:
    tpl = template("psi", PSI)
    same_query = template("psi-copy", PSI)
    reqs = [request("a", uses("psi")), request("b", uses("psi-copy"))]
    batch = MonitoringBatch.plan({"psi": tpl, "psi-copy": same_query}, reqs)
    assert batch.queries == (PSI,)
    assert [r.key.deployment for r in batch.readers[PSI]] == ["a", "b"]


BY_REGION = 'sum by (namespace, model, version, region) (modelgate_prediction_psi{job="models"})'


def test_a_template_grouped_by_slice_reads_the_worst_slice_and_names_it() -> None:
    from modelgate.decide.drift import verdict

    answer = QueryResult(
        "series",
        (
            series(0.05, region="EU", **ident("a")),
            series(0.31, region="LATAM", **ident("a")),
            series(0.12, region="US", **ident("a")),
            series(0.02, region="EU", **ident("b")),
            series(0.04, region="US", **ident("b")),
        ),
    )
    tpl = template("psi-by-region", BY_REGION, {"slice": "region"})
    result = run(FakeSource({BY_REGION: answer}), [tpl], [request(d, uses("psi-by-region")) for d in "ab"])
    a, b = result.samples[CheckKey("prod", "a", "psi")], result.samples[CheckKey("prod", "b", "psi")]
    assert (a.value, a.slice) == (0.31, "region=LATAM")
    assert verdict(a, None, 0.25).message == "value 0.31 on slice region=LATAM is above the maximum 0.25"
    assert (b.value, b.slice) == (0.04, "region=US")  # the closest to its threshold, all passing
    assert verdict(b, None, 0.25).message == "value 0.04 (worst slice region=US) is within value <= 0.25"


def test_slices_against_a_minimum_pick_the_lowest_and_a_doubled_slice_is_ambiguous() -> None:
    low = {"name": "acc", "templateRef": {"name": "acc"}, "min": 0.9}
    answer = QueryResult(
        "series", (series(0.95, region="EU", **ident("a")), series(0.88, region="US", **ident("a")))
    )
    tpl = template("acc", BY_REGION, {"slice": "region"})
    sample = run(FakeSource({BY_REGION: answer}), [tpl], [request("a", low)]).samples[
        CheckKey("prod", "a", "acc")
    ]
    assert (sample.value, sample.slice) == (0.88, "region=US")
    doubled = QueryResult(
        "series", (series(0.9, region="EU", **ident("a")), series(0.8, region="EU", **ident("a")))
    )
    sample = run(FakeSource({BY_REGION: doubled}), [tpl], [request("a", low)]).samples[
        CheckKey("prod", "a", "acc")
    ]
    assert sample.error == "multiple-series" and "region='EU'" in sample.detail
    none = run(FakeSource({BY_REGION: QueryResult("series")}), [tpl], [request("a", low)])
    assert none.samples[CheckKey("prod", "a", "acc")].error == "empty"
