"""The policy's monitoring is a floor (issue 10, point 5): a model may add metrics and tighten the
policy's, never loosen or replace one; the policy sets the least onDrift; a policy metric stuck
Inconclusive past its limit runs the policy's onInconclusive."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GovernancePolicy, MetricCheck
from modelgate.decide.drift import Sample
from modelgate.decide.monitoring import checks_for, on_drift, on_inconclusive, retention_of, strictest
from tests.unit.factories import (
    FAILING,
    PASSING,
    Story,
    actions,
    decision,
    metric,
    model,
    monitoring,
    policy,
)

MULTIPLE = Sample.failed("multiple-series", "2 series for one model")


def gpol(
    name: str = "prod-governance",
    *,
    monitoring: list[dict[str, Any]] | None = None,
    on_drift: str | None = None,
    on_inconclusive: str = "alert",
    retention: str = "168h",
) -> GovernancePolicy:
    base = policy(monitoring=monitoring or [])
    spec = base.spec.model_copy(
        update={"on_drift": on_drift, "on_inconclusive": on_inconclusive, "quarantine_retention": retention}
    )
    return base.model_copy(update={"spec": spec, "metadata": {**base.metadata, "name": name}})


def effective(check: MetricCheck) -> tuple[Any, ...]:
    source = check.template_ref.name if check.template_ref else check.query
    return (check.name, source, check.min, check.max, check.failure_limit, check.inconclusive_limit)


POLICY_PSI = metric("psi", min=0.0, max=0.25, failure_limit=3, inconclusive_limit=3, template="psi")


# --- checks_for --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("own", "policies", "want"),
    [
        pytest.param(
            [metric("psi", max=1e9, failure_limit=1000, inconclusive_limit=1000)],
            [[POLICY_PSI]],
            [("psi", "psi", 0.0, 0.25, 3, 3)],
            id="a looser model metric of the same name changes nothing",
        ),
        pytest.param(
            [{**metric("psi", max=1e9, failure_limit=1000, inconclusive_limit=1000), "query": "vector(0)"}],
            [[POLICY_PSI]],
            [("psi", "psi", 0.0, 0.25, 3, 3)],
            id="a model query never replaces the policy's template",
        ),
        pytest.param(
            [metric("psi", min=0.01, max=0.1, failure_limit=1, inconclusive_limit=2)],
            [[POLICY_PSI]],
            [("psi", "psi", 0.01, 0.1, 1, 2)],
            id="a stricter model metric tightens every field but the source",
        ),
        pytest.param(
            [metric("psi", min=None, max=0.2)],
            [[metric("psi", min=None, max=None, template="psi") | {"min": 0.05}]],
            [("psi", "psi", 0.05, 0.2, 3, 2)],
            id="a bound only the model sets is added",
        ),
        pytest.param(
            [metric("latency", max=0.5)],
            [[POLICY_PSI]],
            [
                ("latency", 'latency{namespace="{{namespace}}",model="{{model}}"}', None, 0.5, 3, 2),
                ("psi", "psi", 0.0, 0.25, 3, 3),
            ],
            id="model-only metrics are added as they are",
        ),
        pytest.param(
            None,
            [
                [metric("psi", max=0.5, failure_limit=2, inconclusive_limit=5, template="a")],
                [metric("psi", max=0.3, min=0.1, failure_limit=4, inconclusive_limit=1, template="b")],
            ],
            [("psi", "a", 0.1, 0.3, 2, 1)],
            id="several policies combine to the strictest, first policy's source",
        ),
    ],
)
def test_policy_metrics_are_a_floor_the_model_can_only_tighten(
    own: list[dict[str, Any]] | None, policies: list[list[dict[str, Any]]], want: list[tuple[Any, ...]]
) -> None:
    md = model(monitoring=monitoring(*own) if own else None)
    pols = [gpol(f"p{i}", monitoring=m) for i, m in enumerate(policies)]

    assert [effective(ch) for ch in checks_for(md, pols)] == want


def test_policy_source_is_chosen_by_policy_name_not_by_the_order_they_arrive() -> None:
    a = gpol("a", monitoring=[metric("psi", template="from-a")])
    b = gpol("b", monitoring=[metric("psi", template="from-b")])

    assert [effective(ch)[1] for ch in checks_for(model(), [b, a])] == ["from-a"]


# --- onDrift, onInconclusive, retention -------------------------------------------------------------


@pytest.mark.parametrize(
    ("own", "policies", "want"),
    [
        pytest.param("alert", [None], "alert", id="no policy floor: the model's choice"),
        pytest.param("alert", ["rollback"], "rollback", id="policy rollback beats model alert"),
        pytest.param("quarantine", ["rollback"], "quarantine", id="the model may be stricter"),
        pytest.param("rollback", ["alert", "quarantine"], "quarantine", id="strictest policy"),
        pytest.param(None, ["alert"], "rollback", id="model without monitoring: rollback"),
    ],
)
def test_on_drift_is_the_strictest_of_the_model_and_its_policies(
    own: str | None, policies: list[str | None], want: str
) -> None:
    md = model(monitoring=monitoring(on_drift=own) if own else None)

    assert on_drift(md, [gpol(f"p{i}", on_drift=p) for i, p in enumerate(policies)]) == want


@pytest.mark.parametrize(
    ("policies", "want"),
    [
        ([], "alert"),
        (["alert"], "alert"),
        (["alert", "rollback"], "rollback"),
        (["quarantine", "rollback"], "quarantine"),
    ],
)
def test_on_inconclusive_is_the_strictest_policy_setting(policies: list[str], want: str) -> None:
    assert on_inconclusive([gpol(f"p{i}", on_inconclusive=p) for i, p in enumerate(policies)]) == want


def test_quarantine_retention_is_the_longest_of_the_policies() -> None:
    pols = [gpol("a", retention="48h"), gpol("b", retention="30d"), gpol("c", retention="1h")]
    assert (retention_of(pols), retention_of([])) == ("30d", "168h")


def test_strictest_orders_alert_rollback_quarantine() -> None:
    assert strictest(["rollback", "alert"], "alert") == "rollback"
    assert strictest([], "alert") == "alert"


# --- in the plan ---------------------------------------------------------------------------------------


def served(md_monitoring: dict[str, Any] | None, pol: GovernancePolicy) -> Story:
    story = Story.of(model(monitoring=md_monitoring), policies=[pol])
    story.serve_v1()
    return story


def test_model_on_drift_alert_under_a_rollback_policy_still_withdraws_the_model() -> None:
    story = served(monitoring(on_drift="alert"), gpol(monitoring=[POLICY_PSI], on_drift="rollback"))
    for _ in range(3):
        p = story.read(FAILING)

    # Nothing else was known good: the rollback quarantines instead, as a rollback always does.
    assert decision(p, c.ACTION_QUARANTINED).reason == c.DRIFT_DETECTED


def test_model_failure_limit_1000_does_not_loosen_the_policys() -> None:
    loose = metric("psi", max=0.25, failure_limit=1000, template="psi")
    story = served(monitoring(loose), gpol(monitoring=[POLICY_PSI], on_drift="quarantine"))
    for _ in range(3):
        p = story.read(FAILING)

    assert c.ACTION_QUARANTINED in actions(p)


def test_duplicated_series_past_the_limit_quarantines_under_on_inconclusive_quarantine() -> None:
    story = served(None, gpol(monitoring=[POLICY_PSI], on_inconclusive="quarantine"))
    story.read(MULTIPLE)
    story.read(MULTIPLE)
    p = story.read(MULTIPLE)

    d = decision(p, c.ACTION_QUARANTINED)
    assert d.reason == c.METRICS_INCONCLUSIVE
    assert "psi inconclusive 3 checks in a row (limit 3)" in d.message
    assert "more than one series" in d.message
    assert "onInconclusive: quarantine" in d.message
    assert p.status["rejectedDigests"][0]["reason"] == c.QUARANTINED_REASON
    assert p.label_pods is True
    assert c.ACTION_QUARANTINED not in actions(story.run()) + actions(story.run())  # once


def test_inconclusive_policy_metric_rolls_back_under_on_inconclusive_rollback() -> None:
    story = Story.of(
        model(monitoring=None), policies=[gpol(monitoring=[POLICY_PSI], on_inconclusive="rollback")]
    )
    story.serve_v1()
    story.serve_v2()
    for _ in range(3):
        p = story.read(Sample.failed("empty", "no series matched"))

    d = decision(p, c.ACTION_ROLLED_BACK)
    assert d.reason == c.METRICS_INCONCLUSIVE and "no data" in d.message
    assert p.status["rejectedDigests"][0]["reason"] == c.METRICS_INCONCLUSIVE
    assert p.status["phase"] == c.PHASE_ROLLED_BACK


def test_default_on_inconclusive_alert_only_reports() -> None:
    story = served(None, gpol(monitoring=[POLICY_PSI]))
    seen = [a for _ in range(5) for a in actions(story.read(MULTIPLE))]

    assert "MetricsInconclusive" in seen
    assert not {c.ACTION_QUARANTINED, c.ACTION_ROLLED_BACK} & set(seen)


def test_a_models_own_inconclusive_metric_never_triggers_the_policys_on_inconclusive() -> None:
    story = served(
        monitoring(metric("own", max=1.0)), gpol(monitoring=[POLICY_PSI], on_inconclusive="quarantine")
    )
    seen = [a for _ in range(4) for a in actions(story.read(psi=PASSING, own=MULTIPLE))]

    assert c.ACTION_QUARANTINED not in seen


# --- the property: loosening a model's own metric never changes a verdict ----------------------------

bound = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0))
reading = st.one_of(
    st.floats(min_value=-0.5, max_value=1.5),
    st.sampled_from([MULTIPLE, Sample.failed("empty"), Sample.failed("unreachable")]),
)


@st.composite
def policy_and_looser_model_metric(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], str]:
    low, high = sorted([draw(st.floats(0.0, 0.5)), draw(st.floats(0.5, 1.0))])
    fl, il = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    base = metric("psi", min=low, max=high, failure_limit=fl, inconclusive_limit=il, template="psi")
    looser = metric(
        "psi",
        min=draw(st.one_of(st.none(), st.floats(-10.0, low))),
        max=draw(st.floats(high, 1e12)),
        failure_limit=draw(st.integers(fl, 1000)),
        inconclusive_limit=draw(st.integers(il, 1000)),
        template=None,
    )
    return base, looser, draw(st.sampled_from(["rollback", "quarantine"]))


@settings(max_examples=60, deadline=None)
@given(
    setup=policy_and_looser_model_metric(),
    on_incon=st.sampled_from(["alert", "rollback", "quarantine"]),
    rounds=st.lists(reading, min_size=1, max_size=8),
)
def test_loosening_a_models_own_metric_never_changes_a_verdict(
    setup: tuple[dict[str, Any], dict[str, Any], str], on_incon: str, rounds: list[float | Sample]
) -> None:
    base, looser, floor = setup
    pol = gpol(monitoring=[base], on_drift=floor, on_inconclusive=on_incon)
    with_own = served(monitoring(looser, on_drift="alert"), pol)
    without = served(None, pol)

    for value in rounds:
        a, b = with_own.read(value), without.read(value)
        assert actions(a) == actions(b)
        assert [(d.reason, d.message) for d in a.decisions] == [(d.reason, d.message) for d in b.decisions]
        assert a.status.get("metrics") == b.status.get("metrics")
        assert a.status.get("rejectedDigests") == b.status.get("rejectedDigests")
        assert a.status["phase"] == b.status["phase"]
        if with_own.serving_digest is None or a.watch is None:
            break
