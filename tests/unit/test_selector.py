"""The shard selector (`modelgate run --selector`): kubectl's label selector syntax, matched as the
API server matches it, and which shard has the writes that belong to no one model."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelgate.api.selector import SelectorError, claims, cluster_duties, parse, problem

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
def test_a_selector_matches_labels_as_the_api_server_does(
    text: str, labels: dict[str, str], expected: bool
) -> None:
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


def test_a_bad_selector_flag_is_named_in_one_line() -> None:
    assert problem("shard in (a") == "--selector: 'shard in (a': unbalanced parentheses"
    assert problem(None) is None and problem("modelgate.io/shard=a") is None


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
    got = (claims(selector, A), claims(selector, None), cluster_duties(selector))
    assert got == (claims_a, claims_unlabelled, duties)


def test_modelgate_run_refuses_a_bad_selector_in_one_line_and_starts_nothing() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "modelgate", "run", "--selector", "modelgate.io/shard in (a"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert (
        res.stderr.strip() == "modelgate run: --selector: 'modelgate.io/shard in (a': unbalanced parentheses"
    )
