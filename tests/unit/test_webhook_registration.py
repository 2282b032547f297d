"""Replacing a webhook configuration keeps the labels and annotations already on it: the chart's
configurations stay Helm's (managed-by, release annotations) after the operator writes its own."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from modelgate.act.setup import _kept_metadata

OURS = {"name": "modelgate.io", "labels": {"app.kubernetes.io/managed-by": "modelgate"}}
HELM = {
    "labels": {"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "modelgate-0.1.0"},
    "annotations": {"meta.helm.sh/release-name": "modelgate", "meta.helm.sh/release-namespace": "ns"},
}


@pytest.mark.parametrize(
    ("existing", "labels", "annotations"),
    [
        (
            HELM,
            {"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "modelgate-0.1.0"},
            HELM["annotations"],
        ),
        ({"labels": None, "annotations": None}, OURS["labels"], {}),
        (
            {"labels": {"team": "platform"}, "annotations": {"note": "x"}},
            {"app.kubernetes.io/managed-by": "modelgate", "team": "platform"},
            {"note": "x"},
        ),
    ],
    ids=["rendered-by-helm", "created-by-the-operator", "labelled-by-someone"],
)
def test_a_replace_keeps_the_labels_and_annotations_already_there(
    existing: dict[str, Any], labels: dict[str, str], annotations: dict[str, str]
) -> None:
    meta = _kept_metadata(OURS, SimpleNamespace(resource_version="42", **existing))
    kept = {k: v for k, v in (("labels", labels), ("annotations", annotations)) if v}
    assert meta == {"name": "modelgate.io", **kept, "resourceVersion": "42"}  # no empty maps: as stored
