"""The CRD schemas and the pydantic models they are generated from agree, on fuzzed manifests.

What the API server stores, the operator must read: a manifest every rule of the CRD accepts (CEL
included) parses with the models, or the operator would ignore it (evidence that does not parse
counts as absent, so a rejection would not block). And a manifest with one broken rule is refused
by the models too, so the admission webhooks, which judge with the models before the schema is
checked, refuse what the API server would. The one known leniency is listed and explained.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelgate.api.v1alpha1 import parse, parse_duration
from modelgate.api.v1alpha1.common import MAX_DURATION
from tests.support import schemas

KINDS = sorted(schemas.crds())
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_every_manifest_the_schema_accepts_parses_with_the_models(kind: str, data: st.DataObject) -> None:
    manifest = data.draw(schemas.valid_manifest(kind))

    parse(manifest)


def lenient_in_pydantic(kind: str, inv: schemas.Invalid) -> bool:
    """pydantic reads a number as a Unix time where the schema wants an RFC 3339 string
    (`format: date-time`); the API server refuses the number, so it never reaches the operator."""
    if inv.violation.rule != "type" or inv.violation.below:
        return False
    node: Any = schemas.crds()[kind].schema
    for step in inv.violation.steps:
        if step == schemas.ITEM:
            node = node["items"]
        elif step == schemas.KEY:
            node = node["additionalProperties"]
        else:
            node = node["properties"][step]
    value: Any = inv.manifest
    for part in inv.path:
        value = value[part]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and node.get("format") == "date-time"


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_every_manifest_the_schema_refuses_is_refused_by_the_models(kind: str, data: st.DataObject) -> None:
    inv = data.draw(schemas.invalid_manifest(kind))
    if lenient_in_pydantic(kind, inv):
        return
    with pytest.raises((pydantic.ValidationError, ValueError)):
        parse(inv.manifest)


SITES = [(kind, site) for kind in KINDS for site, _ in schemas.violation_sites(kind)]


@pytest.mark.parametrize(("kind", "site"), SITES, ids=[f"{kind}:{site}" for kind, site in SITES])
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_rule_of_every_schema_is_kept_by_the_models(
    kind: str, site: schemas.Violation, data: st.DataObject
) -> None:
    """Each site on its own, so a rule the models miss (a list set without DISTINCT) fails every
    run instead of the run whose random draw happens to reach it."""
    inv = data.draw(schemas.invalid_manifest(kind, site))
    if lenient_in_pydantic(kind, inv):
        return
    with pytest.raises((pydantic.ValidationError, ValueError)):
        parse(inv.manifest)


def test_each_kind_has_violations_of_every_family_its_schema_has() -> None:
    rules = {v.rule for kind in KINDS for v, _ in schemas.violation_sites(kind)}

    assert rules >= {
        "type",
        "required",
        "unknown",
        "pattern",
        "enum",
        "format",
        "maxLength",
        "minLength",
        "minimum",
        "maximum",
        "maxItems",
        "duplicate",
        "maxProperties",
        "minProperties",
        "cel",
    }


def test_replicas_are_bounded() -> None:
    serving = schemas.crds()["ModelDeployment"].schema["properties"]["spec"]["properties"]["serving"]

    assert serving["properties"]["replicas"]["maximum"] == 10_000


@pytest.mark.parametrize(
    "text",
    ["2026-01-02T03:04:05x5Z", "2026-01-02T03:04:05+99:99"],
)
def test_date_times_only_the_apiservers_format_check_admits_are_refused_by_the_pattern(text: str) -> None:
    expires = schemas.crds()["ModelApproval"].schema["properties"]["spec"]["properties"]["expiresAt"]

    assert not schemas.string_ok(expires, text)


@pytest.mark.parametrize("text", ["9999999d", "9" * 60 + "d", "36501d"])
def test_a_duration_past_a_hundred_years_saturates_instead_of_overflowing(text: str) -> None:
    """The pattern admits these; a time that far from now would overflow in every decision."""
    now = datetime.now(UTC)

    assert now + parse_duration(text) == now + MAX_DURATION
