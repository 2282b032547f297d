"""Policy selection: namespace selectors, risk levels, and a stable order."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate.decide.policy import select_policies
from tests.unit.factories import make_policy

PROD = {"kubernetes.io/metadata.name": "fraud-prod", "modelgate.io/environment": "production"}
DEV = {"kubernetes.io/metadata.name": "fraud-dev", "modelgate.io/environment": "development"}


def names(labels: dict[str, str], risk: str, **policies: dict[str, Any]) -> list[str]:
    selected = select_policies([make_policy(n, **kw) for n, kw in policies.items()], labels, risk)
    return [p.name for p in selected]


def test_policy_without_selector_or_risk_levels_applies_everywhere() -> None:
    assert names(PROD, "minimal", everywhere={}) == ["everywhere"]
    assert names({}, "high", everywhere={}) == ["everywhere"]


def test_empty_selector_selects_every_namespace() -> None:
    assert names(DEV, "high", empty={"namespace_selector": {}}) == ["empty"]


@pytest.mark.parametrize(
    ("labels", "selected"),
    [(PROD, ["prod"]), (DEV, []), ({}, [])],
    ids=["matching-label", "other-value", "no-labels"],
)
def test_namespace_selector_match_labels(labels: dict[str, str], selected: list[str]) -> None:
    selector = {"matchLabels": {"modelgate.io/environment": "production"}}
    assert names(labels, "high", prod={"namespace_selector": selector}) == selected


@pytest.mark.parametrize(
    ("expression", "labels", "applies"),
    [
        ({"key": "modelgate.io/environment", "operator": "In", "values": ["production"]}, PROD, True),
        ({"key": "modelgate.io/environment", "operator": "In", "values": ["production"]}, DEV, False),
        ({"key": "modelgate.io/environment", "operator": "NotIn", "values": ["development"]}, PROD, True),
        ({"key": "modelgate.io/environment", "operator": "NotIn", "values": ["development"]}, DEV, False),
        ({"key": "modelgate.io/environment", "operator": "NotIn", "values": ["development"]}, {}, True),
        ({"key": "modelgate.io/environment", "operator": "Exists"}, PROD, True),
        ({"key": "modelgate.io/environment", "operator": "Exists"}, {}, False),
        ({"key": "modelgate.io/sandbox", "operator": "DoesNotExist"}, PROD, True),
        ({"key": "modelgate.io/sandbox", "operator": "DoesNotExist"}, {"modelgate.io/sandbox": ""}, False),
    ],
)
def test_namespace_selector_match_expressions(
    expression: dict[str, Any], labels: dict[str, str], applies: bool
) -> None:
    selector = {"matchExpressions": [expression]}
    assert names(labels, "high", p={"namespace_selector": selector}) == (["p"] if applies else [])


def test_match_labels_and_expressions_must_all_hold() -> None:
    selector = {
        "matchLabels": {"modelgate.io/environment": "production"},
        "matchExpressions": [{"key": "team", "operator": "In", "values": ["fraud"]}],
    }
    assert names(PROD, "high", p={"namespace_selector": selector}) == []
    assert names({**PROD, "team": "fraud"}, "high", p={"namespace_selector": selector}) == ["p"]


@pytest.mark.parametrize(
    ("risk_levels", "risk", "applies"),
    [
        ([], "minimal", True),
        (["high"], "high", True),
        (["high"], "limited", False),
        (["limited", "high"], "limited", True),
        (["limited", "high"], "minimal", False),
    ],
)
def test_risk_level_filter(risk_levels: list[str], risk: str, applies: bool) -> None:
    assert names(PROD, risk, p={"risk_levels": risk_levels}) == (["p"] if applies else [])


def test_selector_and_risk_level_must_both_match() -> None:
    selector = {"matchLabels": {"modelgate.io/environment": "production"}}
    policy = {"namespace_selector": selector, "risk_levels": ["high"]}
    assert names(PROD, "high", p=policy) == ["p"]
    assert names(PROD, "minimal", p=policy) == []
    assert names(DEV, "high", p=policy) == []


def test_every_matching_policy_is_selected_sorted_by_name() -> None:
    selected = names(PROD, "high", zeta={}, alpha={"risk_levels": ["high"]}, mid={"risk_levels": ["minimal"]})
    assert selected == ["alpha", "zeta"]


def test_selection_does_not_depend_on_input_order() -> None:
    policies = [make_policy(n) for n in ("c", "a", "b")]
    assert [p.name for p in select_policies(policies, PROD, "high")] == ["a", "b", "c"]
    assert [p.name for p in select_policies(reversed(policies), PROD, "high")] == ["a", "b", "c"]


def test_no_policies_selects_nothing() -> None:
    assert select_policies([], PROD, "high") == []


@pytest.mark.parametrize("claimed", ["minimal", "limited", "high"])
def test_a_policy_asking_to_confirm_the_risk_level_applies_whatever_level_the_card_claims(
    claimed: str,
) -> None:
    confirming = {"risk_levels": ["high"], "risk_level_confirmation": {"role": "model-risk"}}

    assert names(PROD, claimed, high_only={"risk_levels": ["high"]}, confirming=confirming) == (
        ["confirming", "high_only"] if claimed == "high" else ["confirming"]
    )
