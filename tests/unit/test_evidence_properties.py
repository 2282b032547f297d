"""Properties of the evidence rules: the deployer cannot help a blocked model by adding evidence
that fails, and evidence about something else never changes a report.

Built on the cases of test_gates_properties (small pools, frequent collisions). Extra evidence is
never referenced by the deployment: every approval and evaluation of the model counts whether the
spec names it or not, so this is exactly what a deployer (or anyone) can add.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.api.v1alpha1 import ModelApproval, ModelEvaluation
from modelgate.decide.gates import evaluate
from tests.unit.factories import NOW, OTHER_DIGEST, make_approval, make_evaluation
from tests.unit.test_gates_properties import (
    DATASETS,
    METRICS,
    ROLES,
    USERS,
    USUAL_GROUPS,
    Case,
    build_input,
    cases,
)

WRONG_REVISION = "0" * 32


@st.composite
def failing_approvals(draw: st.DrawFn, case: Case, name: str) -> ModelApproval:
    """An approval that cannot help: a rejection, or an approval of another digest or revision, with
    no revision, expired, or (when seals are enforced) unsealed."""
    user = draw(st.sampled_from(USERS))
    common = {"role": draw(st.sampled_from(ROLES)), "username": user, "groups": USUAL_GROUPS[user]}
    kinds = ["rejected", "digest", "revision", "no-revision", "expired"]
    if case.enforce_seals:
        kinds.append("unsealed")
    kind = draw(st.sampled_from(kinds))
    seal = "bad" if kind == "unsealed" else "good"
    if kind == "rejected":
        return make_approval(name, decision="rejected", seal=seal, **common)
    if kind == "digest":
        return make_approval(name, digest=OTHER_DIGEST, seal=seal, **common)
    if kind == "revision":
        return make_approval(name, revision=WRONG_REVISION, seal=seal, **common)
    if kind == "no-revision":
        return make_approval(name, revision=None, seal=seal, **common)
    if kind == "expired":
        return make_approval(name, expires_at=NOW - timedelta(hours=1), seal=seal, **common)
    return make_approval(name, seal=seal, **common)


def failing_value(case: Case, metric: str) -> float | None:
    """A value that fails every requirement on `metric`, or None when there is no such value."""
    reqs = [r for p in case.policies for r in p.evaluations if r.metric == metric]
    if reqs and all(r.min is not None for r in reqs):
        return -1e9
    if reqs and all(r.max is not None for r in reqs):
        return 1e9
    return None


@st.composite
def failing_evaluations(draw: st.DrawFn, case: Case, name: str) -> ModelEvaluation | None:
    """The newest evaluation of the revision, failing every requirement it could count for."""
    metric = draw(st.sampled_from(METRICS))
    value = failing_value(case, metric)
    if value is None:
        return None
    return make_evaluation(
        name,
        metrics={metric: value},
        dataset=draw(st.sampled_from(DATASETS)),
        evaluated_at=NOW,
        seal="good",
    )


@st.composite
def with_failing_evidence(draw: st.DrawFn) -> tuple[Case, list[ModelApproval], list[ModelEvaluation]]:
    case = draw(cases())
    approvals = [draw(failing_approvals(case, f"x-a{i}")) for i in range(draw(st.integers(1, 3)))]
    evaluations = [draw(failing_evaluations(case, f"x-e{i}")) for i in range(draw(st.integers(0, 2)))]
    return case, approvals, [e for e in evaluations if e is not None]


@settings(max_examples=300, deadline=None)
@given(with_failing_evidence())
def test_adding_evidence_that_fails_never_admits_a_blocked_model(
    drawn: tuple[Case, list[ModelApproval], list[ModelEvaluation]],
) -> None:
    case, approvals, evaluations = drawn
    before = evaluate(build_input(case))
    after = evaluate(build_input(case, approvals, evaluations))

    if not before.admitted:
        assert not after.admitted
    assert after.admitted <= before.admitted  # failing evidence can only take admission away
    assert after.approved <= before.approved and after.evaluated <= before.evaluated


@st.composite
def unrelated(draw: st.DrawFn) -> tuple[Case, list[ModelApproval], list[ModelEvaluation]]:
    """A case, plus any evidence about another model or another version of this one."""
    case = draw(cases())
    other = draw(st.sampled_from([{"model": "other-model"}, {"version": "9.9.9"}]))
    approvals = [
        make_approval(
            f"u-a{i}",
            role=draw(st.sampled_from(ROLES)),
            decision=draw(st.sampled_from(["approved", "rejected"])),
            seal="good",
            **other,
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    evaluations = [
        make_evaluation(f"u-e{i}", metrics={m: draw(st.floats(0, 1)) for m in METRICS}, seal="good", **other)
        for i in range(draw(st.integers(0, 2)))
    ]
    return case, approvals, evaluations


@settings(max_examples=200, deadline=None)
@given(unrelated())
def test_adding_unrelated_evidence_never_changes_the_report(
    drawn: tuple[Case, list[ModelApproval], list[ModelEvaluation]],
) -> None:
    case, approvals, evaluations = drawn

    assert evaluate(build_input(case, approvals, evaluations)) == evaluate(build_input(case))
