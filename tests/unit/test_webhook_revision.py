"""The admission webhook fills in the revision new evidence covers, from the ModelDeployments of the
namespace (its Kopf indexes, built here as plain dicts of lists, the shape Kopf's indexes have)."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from modelgate.webhooks.handlers import revision_for
from tests.unit.factories import (
    DIGEST,
    NAMESPACE,
    default_revision,
    make_deployment,
    make_policy,
    revision_of,
)

MODEL = {"name": "fraud-detector", "version": "1.0.0", "digest": DIGEST}


def indexes(*deployments: Any, policies: tuple[Any, ...] = ()) -> dict[str, Any]:
    raws = {
        (NAMESPACE, md.name): [md.model_dump(by_alias=True, exclude_none=True, mode="json")]
        for md in deployments
    }
    by_digest: dict[Any, list[dict[str, Any]]] = {}
    for md in deployments:
        by_digest.setdefault((NAMESPACE, md.spec.model.digest), []).append({"name": md.name})
    return {
        "modeldeployments": raws,
        "deployments_by_digest": by_digest,
        "policies": {p.name: [p] for p in policies},
        "namespaces": {NAMESPACE: [{}]},
    }


def test_the_one_requested_revision_is_filled_in() -> None:
    assert revision_for(NAMESPACE, MODEL, indexes(make_deployment())) == default_revision()


def test_the_revision_follows_the_operational_fields_of_the_selecting_policies() -> None:
    md = make_deployment(serving={"replicas": 3})
    strict = make_policy(operationalFields=[])

    assert revision_for(NAMESPACE, MODEL, indexes(md, policies=(strict,))) == revision_of(md, [strict])
    assert revision_of(md, [strict]) != default_revision()


def test_two_deployments_requesting_the_same_revision_agree() -> None:
    both = indexes(make_deployment(), make_deployment(name="fraud-canary"))

    assert revision_for(NAMESPACE, MODEL, both) == default_revision()


def test_no_deployment_requesting_it_is_refused_with_how_to_name_one() -> None:
    with pytest.raises(kopf.AdmissionError) as err:
        revision_for(NAMESPACE, {**MODEL, "version": "9.9.9"}, indexes(make_deployment()))

    assert f"no ModelDeployment in namespace {NAMESPACE} requests fraud-detector 9.9.9 {DIGEST}" in str(
        err.value
    )
    assert "modelgate revision -f" in str(err.value)


def test_several_distinct_revisions_are_refused_naming_them() -> None:
    other = make_deployment(name="fraud-b", serving={"image": "registry.example/b@sha256:" + "b" * 64})
    with pytest.raises(kopf.AdmissionError) as err:
        revision_for(NAMESPACE, MODEL, indexes(make_deployment(), other))

    message = str(err.value)
    assert "several revisions" in message
    assert f"revision {default_revision()} (ModelDeployment fraud-detector)" in message
    assert f"revision {revision_of(other)} (ModelDeployment fraud-b)" in message
