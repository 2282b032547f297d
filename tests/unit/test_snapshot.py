"""Gathering: every approval and evaluation of the model is in the snapshot, referenced or not;
references only have to exist; a broken policy is kept as a stand-in that blocks."""

from __future__ import annotations

from typing import Any

from modelgate.observe.snapshot import IndexedEvidence, evidence_model, index_evidence, index_policy, snapshot
from tests.unit.factories import NAMESPACE, make_approval, make_deployment, make_evaluation

SEAL_KEY = b"k" * 32


def wire(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    return out


def by_model(*objs: Any) -> dict[Any, list[IndexedEvidence]]:
    index: dict[Any, list[IndexedEvidence]] = {}
    for obj in objs:
        raw = wire(obj)
        index.setdefault((NAMESPACE, evidence_model(raw)), []).append(index_evidence(raw, None))
    return index


def take(
    md: Any, approvals: list[Any], evaluations: list[Any], policies: dict[str, Any] | None = None
) -> Any:
    return snapshot(
        wire(md),
        approvals={(NAMESPACE, a.name): [True] for a in approvals},
        evaluations={(NAMESPACE, e.name): [True] for e in evaluations},
        approvals_by_model=by_model(*approvals),
        evaluations_by_model=by_model(*evaluations),
        policies=policies or {},
        namespaces={NAMESPACE: [{}]},
        owned_deployments={},
        owned_services={},
        allow_no_policy=False,
    )


def test_snapshot_holds_every_evidence_of_the_model_and_which_references_exist() -> None:
    md = make_deployment(approvals=["bob-ok", "gone"], evaluations=["holdout"])
    approvals = [make_approval(), make_approval("carol-no", username="carol", decision="rejected")]
    other_model = make_approval("other", model="churn")
    obs = take(md, [*approvals, other_model], [make_evaluation()])

    assert [a.name for a in obs.approvals] == ["bob-ok", "carol-no"]
    assert [e.name for e in obs.evaluations] == ["holdout"]
    assert obs.references == {
        ("ModelApproval", "bob-ok"): True,
        ("ModelApproval", "gone"): False,
        ("ModelEvaluation", "holdout"): True,
    }
    assert obs.seal_valid is None  # no seal key: sealing not enforced


def test_seals_are_checked_for_every_evidence_of_the_model() -> None:
    raw = wire(make_approval())
    indexed = index_evidence(raw, SEAL_KEY)

    assert (indexed.kind, indexed.name, indexed.sealed) == ("ModelApproval", "bob-ok", False)


def test_broken_policy_is_kept_in_the_snapshot_as_a_blocking_stand_in() -> None:
    broken = index_policy(
        {
            "apiVersion": "modelgate.io/v1alpha1",
            "kind": "GovernancePolicy",
            "metadata": {"name": "b"},
            "spec": {"approvals": "x"},
        }
    )
    obs = take(make_deployment(), [], [], policies={"b": [broken]})

    assert [(p.name, p.invalid is not None) for p in obs.policies] == [("b", True)]
