"""The shard selector (`modelgate run --selector`): kubectl's label selector syntax, matched as the
API server matches it, and which shard has the writes that belong to no one model."""

from __future__ import annotations

import pytest

from modelgate.api.selector import SelectorError, parse
from modelgate.config import OperatorConfig, problems

A = {"modelgate.io/shard": "a"}
B = {"modelgate.io/shard": "b"}
NONE: dict[str, str] = {}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("modelgate.io/shard=a", A, True),
        ("modelgate.io/shard==a", A, True),
        ("modelgate.io/shard=a", B, False),
        ("modelgate.io/shard=a", NONE, False),
        ("modelgate.io/shard!=a", B, True),
        ("modelgate.io/shard!=a", NONE, True),  # as in Kubernetes: != matches a missing key
        ("modelgate.io/shard!=a", A, False),
        ("!modelgate.io/shard", NONE, True),
        ("!modelgate.io/shard", A, False),
        ("modelgate.io/shard", A, True),
        ("modelgate.io/shard", NONE, False),
        ("modelgate.io/shard in (a, b)", B, True),
        ("modelgate.io/shard in (a,b)", {"modelgate.io/shard": "c"}, False),
        ("modelgate.io/shard notin (a,b)", NONE, True),
        ("modelgate.io/shard notin (a,b)", A, False),
        ("modelgate.io/shard in (a,b),team=x", {**A, "team": "x"}, True),
        ("modelgate.io/shard in (a,b),team=x", A, False),
        ("modelgate.io/shard=", {"modelgate.io/shard": ""}, True),
    ],
)
def test_a_selector_matches_labels_as_the_api_server_does(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "an empty selector"),
        ("a=b,,c=d", "an empty requirement"),
        ("shard in (a", "unbalanced parentheses"),
        ("shard in ()", "a value set needs at least one value"),
        ("shard=a/b", "is not a label value"),
        ("Bad_Prefix/x=a", "is not a label key"),
        ("shard >= 3", "expected key=value"),
        ("-x=a", "is not a label key"),
    ],
)
def test_an_unreadable_selector_is_refused_naming_the_requirement(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse(text)


def test_a_bad_selector_flag_is_a_configuration_problem() -> None:
    assert problems(OperatorConfig(selector="shard in (a")) == ["--selector: 'shard in (a': unbalanced parentheses"]


@pytest.mark.parametrize(
    ("selector", "claims_a", "claims_unlabelled", "duties"),
    [
        (None, True, True, True),  # one operator: everything is its own
        ("!modelgate.io/shard", False, True, True),  # the default shard of the convention
        ("modelgate.io/shard=a", True, False, False),
        ("modelgate.io/shard!=b", True, True, True),
    ],
)
def test_the_shard_that_claims_unlabelled_models_has_the_cluster_duties(
    selector: str | None, claims_a: bool, claims_unlabelled: bool, duties: bool
) -> None:
    cfg = OperatorConfig(selector=selector)
    assert (cfg.claims(A), cfg.claims(None), cfg.cluster_duties) == (claims_a, claims_unlabelled, duties)
