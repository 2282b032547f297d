"""The recertification fields against a real kube-apiserver: `kubectl explain` documents them, the
CEL rule and the duration patterns refuse bad manifests and nothing is stored."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.test_api_server_validation import (
    CLUSTER_SCOPED,
    Doc,
    Kubectl,
    apply,
    assert_not_stored,
    cluster_scoped,
    example,
    localize,
)

pytestmark = pytest.mark.integration
__all__ = ["cluster_scoped"]  # the fixture: cluster-scoped objects a test made, deleted after it


def policy(approval: dict[str, Any] | None = None, recertification: Any = None) -> Doc:
    doc = example("GovernancePolicy")
    if approval is not None:
        doc["spec"]["approvals"][0].update(approval)
    if recertification is not None:
        doc["spec"]["recertification"] = recertification
    return doc


@pytest.mark.parametrize(
    ("doc", "fragments"),
    [
        pytest.param(
            policy(recertification={"warnBefore": "14d"}),
            ("spec", "set maxAge on at least one approvals[] entry"),
            id="recertification-without-max-age",
        ),
        pytest.param(
            policy({"maxAge": "half a year"}),
            ("spec.approvals[0].maxAge", "should match"),
            id="max-age-not-a-duration",
        ),
        pytest.param(
            policy({"maxAge": "180d"}, {"warnBefore": "two weeks"}),
            ("spec.recertification.warnBefore", "should match"),
            id="warn-before-not-a-duration",
        ),
        pytest.param(
            policy({"maxAge": "180d"}, {}),
            ("spec.recertification.warnBefore", "Required value"),
            id="recertification-without-warn-before",
        ),
    ],
)
def test_bad_recertification_manifest_is_refused_and_not_stored(
    kubectl: Kubectl, namespace: str, cluster_scoped: list[Doc], doc: Doc, fragments: tuple[str, ...]
) -> None:
    (doc,) = localize([doc], namespace, "r" + str(time.monotonic_ns())[-6:])
    assert doc["kind"] in CLUSTER_SCOPED
    cluster_scoped.append(doc)

    result = apply(kubectl, [doc])

    assert result.returncode != 0, f"accepted:\n{result.stdout}"
    assert all(f in result.stderr for f in fragments), result.stderr
    assert_not_stored(kubectl, doc)


def test_a_recertifying_policy_is_accepted(
    kubectl: Kubectl, namespace: str, cluster_scoped: list[Doc]
) -> None:
    (doc,) = localize(
        [policy({"maxAge": "180d"}, {"warnBefore": "14d"})], namespace, "ok" + str(time.monotonic_ns())[-6:]
    )
    cluster_scoped.append(doc)

    result = apply(kubectl, [doc])

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("field", "wanted"),
    [
        (
            "governancepolicy.spec.approvals.maxAge",
            "How long an approval of this role counts after it was created",
        ),
        ("governancepolicy.spec.recertification.warnBefore", "RecertificationDue condition is True"),
        ("modeldeployment.status.recertification.dueAt", "the model needs a new approval by then"),
        ("modeldeployment.status.compliance", "onRevocation: keep"),
    ],
)
def test_explain_documents_the_recertification_fields(kubectl: Kubectl, field: str, wanted: str) -> None:
    deadline = time.monotonic() + 60  # the apiserver publishes a new CRD's OpenAPI asynchronously
    while True:
        result = kubectl("explain", field, check=False)
        text = " ".join(result.stdout.split())
        if (result.returncode == 0 and wanted in text) or time.monotonic() > deadline:
            break
        time.sleep(2)

    assert result.returncode == 0, result.stderr
    assert wanted in text, text
