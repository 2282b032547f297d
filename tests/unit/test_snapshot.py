"""Gathering: every approval and evaluation of the digests a model decides on is in the snapshot,
referenced or not; references only have to exist; a broken policy is kept as a stand-in that blocks."""

from __future__ import annotations

from typing import Any

from modelgate.decide.seal import KeyRing, Signer
from modelgate.observe.snapshot import IndexedEvidence, evidence_key, index_evidence, index_policy, snapshot
from tests.unit.factories import NAMESPACE, make_approval, make_deployment, make_evaluation

SEAL_KEY = KeyRing((Signer.generate(),))


def wire(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    out: dict[str, Any] = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    return out


def by_digest(*objs: Any) -> dict[Any, list[IndexedEvidence]]:
    index: dict[Any, list[IndexedEvidence]] = {}
    for obj in objs:
        raw = wire(obj)
        index.setdefault((NAMESPACE, *evidence_key(raw)), []).append(index_evidence(raw, None))
    return index


def by_name(*objs: Any) -> dict[Any, list[Any]]:
    return {(NAMESPACE, o.name): [(NAMESPACE, *evidence_key(wire(o)))] for o in objs}


def take(
    md: Any, approvals: list[Any], evaluations: list[Any], policies: dict[str, Any] | None = None
) -> Any:
    return snapshot(
        wire(md),
        approvals=by_name(*approvals),
        evaluations=by_name(*evaluations),
        approvals_by_digest=by_digest(*approvals),
        evaluations_by_digest=by_digest(*evaluations),
        policies=policies or {},
        namespaces={NAMESPACE: [{}]},
        owned_deployments={},
        owned_services={},
        allow_no_policy=False,
    )


def test_snapshot_holds_every_evidence_of_the_digest_and_which_references_exist() -> None:
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


def test_evidence_of_other_digests_is_not_gathered_unless_referenced_or_served() -> None:
    other = "sha256:" + "9" * 64
    md = make_deployment(approvals=["for-other-referenced"])
    unrelated = make_approval("for-other", digest=other, version="0.9")
    referenced = make_approval("for-other-referenced", digest=other, version="0.9")
    obs = take(md, [make_approval(), unrelated, referenced], [])

    assert [a.name for a in obs.approvals] == ["bob-ok", "for-other", "for-other-referenced"]
    # the referenced object's key brings in its digest's evidence; without the reference it is absent
    md2 = make_deployment()
    obs2 = take(md2, [make_approval(), unrelated], [])
    assert [a.name for a in obs2.approvals] == ["bob-ok"]

    serving = {"servingRevision": {"version": "0.9", "uri": "s3://x", "digest": other, "image": "i"}}
    obs3 = take({**wire(md2), "status": serving}, [make_approval(), unrelated], [])
    assert [a.name for a in obs3.approvals] == ["bob-ok", "for-other"]
