"""Fairness (decide/fairness.py): required slices, per-slice bounds and the best-worst gap, each
named in the message; properties: a passing slice never blocks, a wider maxGap never blocks."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import EvaluationSlice, ModelEvaluationSpec, SliceRequirement
from modelgate.decide.fairness import check_slices


def sl(name: str, accuracy: float | None, size: int = 1000, **metrics: float) -> EvaluationSlice:
    values = dict(metrics)
    if accuracy is not None:
        values["accuracy"] = accuracy
    return EvaluationSlice(name=name, size=size, metrics=values or {"recall": 0.5})


REGIONS = [sl("region=EU", 0.95), sl("region=US", 0.93), sl("region=LATAM", 0.87)]


@pytest.mark.parametrize(
    ("slices", "req", "reason", "says"),
    [
        (
            REGIONS,
            {"maxGap": 0.05},
            r.SLICE_GAP_EXCEEDED,
            "accuracy gap 0.08 between region=EU (0.95) and region=LATAM (0.87) exceeds maxGap 0.05",
        ),
        (REGIONS, {"maxGap": 0.08}, r.EVALUATIONS_PASSED, "within maxGap 0.08"),
        (
            REGIONS,
            {"min": 0.9},
            r.SLICE_BELOW_MINIMUM,
            "accuracy 0.87 on slice region=LATAM is below the minimum 0.9",
        ),
        (
            REGIONS,
            {"max": 0.94},
            r.SLICE_ABOVE_MAXIMUM,
            "accuracy 0.95 on slice region=EU is above the maximum 0.94",
        ),
        (
            REGIONS,
            {"min": 0.85},
            r.EVALUATIONS_PASSED,
            "accuracy >= 0.85 on all 3 (lowest region=LATAM 0.87)",
        ),
        (REGIONS, {"required": ["region=APAC"]}, r.SLICE_MISSING, "required slice region=APAC is missing"),
        (
            [*REGIONS, sl("region=APAC", None)],
            {"required": ["region=APAC"]},
            r.SLICE_MISSING,
            "required slice region=APAC does not report accuracy",
        ),
        (
            [sl("region=EU", 0.95), sl("region=LATAM", 0.5, size=40)],
            {"maxGap": 0.05, "minSize": 100},
            r.EVALUATIONS_PASSED,
            "ignored 1 slice(s) smaller than minSize 100: region=LATAM (40)",
        ),
        (
            [sl("region=EU", 0.95), sl("region=LATAM", 0.5, size=40)],
            {"required": ["region=LATAM"], "minSize": 100},
            r.SLICE_MISSING,
            "required slice region=LATAM has 40 examples, fewer than minSize 100",
        ),
        ([], {"min": 0.8}, r.SLICE_MISSING, "no slice reports accuracy"),
        (
            [sl("a", None, recall=0.9)],
            {"maxGap": 0.1},
            r.SLICE_MISSING,
            "ignored 1 slice(s) not reporting accuracy: a",
        ),
        (REGIONS, {}, r.EVALUATIONS_PASSED, "slices of ModelEvaluation e1: "),
    ],
)
def test_slice_checks(slices: list[EvaluationSlice], req: dict[str, Any], reason: str, says: str) -> None:
    got_reason, message = check_slices("e1", slices, "accuracy", SliceRequirement.model_validate(req))
    assert got_reason == reason, message
    assert says in message, message
    assert message.startswith("slices of ModelEvaluation e1: ")


def test_every_check_that_ran_is_listed() -> None:
    req = SliceRequirement.model_validate({"required": ["region=EU"], "min": 0.8, "max": 1, "maxGap": 0.1})
    _, message = check_slices("e1", REGIONS, "accuracy", req)
    assert message == (
        "slices of ModelEvaluation e1: required region=EU reported; accuracy >= 0.8 on all 3 (lowest "
        "region=LATAM 0.87); accuracy <= 1 on all 3 (highest region=EU 0.95); accuracy gap 0.08 between "
        "region=EU (0.95) and region=LATAM (0.87) within maxGap 0.1"
    )


def test_the_schema_refuses_duplicate_slice_names_and_negative_sizes() -> None:
    base = {
        "model": {"name": "m", "version": "v1", "digest": "sha256:" + "a" * 64},
        "dataset": {"name": "d", "uri": "s3://d"},
        "metrics": {"accuracy": 0.9},
        "evaluatedAt": "2026-12-01T00:00:00Z",
    }
    with pytest.raises(ValueError, match="duplicate slice name 'a'"):
        ModelEvaluationSpec.model_validate(
            {**base, "slices": [sl("a", 0.9).model_dump(), sl("a", 0.8).model_dump()]}
        )
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        ModelEvaluationSpec.model_validate(
            {**base, "slices": [{"name": "a", "size": -1, "metrics": {"accuracy": 0.9}}]}
        )
    with pytest.raises(ValueError, match="at most 256"):
        ModelEvaluationSpec.model_validate(
            {
                **base,
                "slices": [{"name": f"s{i}", "size": 1, "metrics": {"accuracy": 0.9}} for i in range(257)],
            }
        )


values = st.floats(min_value=0, max_value=1, allow_nan=False)
slice_lists = st.lists(
    st.tuples(values, st.integers(min_value=0, max_value=500)), min_size=1, max_size=12
).map(lambda vs: [sl(f"s{i}", v, size=n) for i, (v, n) in enumerate(vs)])
requirements = st.builds(
    lambda lo, gap, size: SliceRequirement(min=lo, max_gap=gap, min_size=size),
    st.one_of(st.none(), values),
    st.one_of(st.none(), values),
    st.one_of(st.none(), st.integers(min_value=0, max_value=300)),
)


@given(slice_lists, requirements, values, st.integers(min_value=0, max_value=500))
def test_adding_a_passing_slice_never_blocks(
    slices: list[EvaluationSlice], req: SliceRequirement, value: float, size: int
) -> None:
    """A slice within min and within the current best..worst range (or too small to count)."""
    before, _ = check_slices("e", slices, "accuracy", req)
    counted = [s.metrics["accuracy"] for s in slices if req.min_size is None or s.size >= req.min_size]
    fits = (req.min_size is not None and size < req.min_size) or (
        counted and min(counted) <= value <= max(counted) and (req.min is None or value >= req.min)
    )
    if before != r.EVALUATIONS_PASSED or not fits:
        return
    after, message = check_slices("e", [*slices, sl("new", value, size=size)], "accuracy", req)
    assert after == r.EVALUATIONS_PASSED, message


@given(slice_lists, requirements, st.floats(min_value=0, max_value=1))
def test_widening_max_gap_never_blocks(
    slices: list[EvaluationSlice], req: SliceRequirement, more: float
) -> None:
    before, _ = check_slices("e", slices, "accuracy", req)
    if before != r.EVALUATIONS_PASSED or req.max_gap is None:
        return
    wider = req.model_copy(update={"max_gap": req.max_gap + more})
    after, message = check_slices("e", slices, "accuracy", wider)
    assert after == r.EVALUATIONS_PASSED, message


def test_the_evaluation_gate_holds_the_deciding_evaluation_to_its_slices() -> None:
    """Through the gate engine: the aggregate passes, the slice gap blocks, the message names both."""
    from modelgate.decide.gates import evaluate
    from tests.unit.factories import (
        evaluation_requirement,
        gate_input,
        make_deployment,
        make_evaluation,
        make_policy,
    )

    requirement = {
        **evaluation_requirement("accuracy", min=0.9),
        "slices": {"maxGap": 0.05, "required": ["region=EU"]},
    }
    evaluation = make_evaluation("holdout", metrics={"accuracy": 0.94})
    evaluation = evaluation.model_copy(
        update={"spec": evaluation.spec.model_copy(update={"slices": REGIONS})}
    )
    deployment = make_deployment(evaluations=["holdout"])
    report = evaluate(gate_input(deployment, [make_policy(evaluations=[requirement])], [], [evaluation]))
    gate = next(g for g in report.gates if g.kind == "evaluation")
    assert not gate.satisfied and gate.reason == r.SLICE_GAP_EXCEEDED, gate
    assert "reports accuracy 0.94, meeting accuracy >= 0.9, per slice: gap <= 0.05" in gate.message
    assert "gap 0.08 between region=EU (0.95) and region=LATAM (0.87) exceeds maxGap 0.05" in gate.message
