"""The rules of issue 10 on the evidence side, one behaviour per test: all evidence of the model
counts, bound to the revision it names; a broken policy blocks; images are pinned; identity that
cannot be claimed (riskLevelConfirmation, evaluators, maxAge from the server's clock)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import GovernancePolicy
from modelgate.decide.gates import Gate, GateReport, Subject, evaluate, subject_of
from modelgate.decide.policy import policy_status, read_policy, select_policies
from tests.unit.factories import (
    DIGEST,
    NOW,
    approval_requirement,
    default_revision,
    evaluation_requirement,
    gate_input,
    make_approval,
    make_deployment,
    make_evaluation,
    make_policy,
    revision_of,
)

ETHICS = approval_requirement("ethics-board", groups=["ethics-board"])
ACCURACY = evaluation_requirement("accuracy", min=0.9)
REVISION = default_revision()


def run(
    *,
    policies: list[GovernancePolicy] | None = None,
    approvals: Sequence[Any] = (),
    evaluations: Sequence[Any] = (),
    deployment: Any = None,
    **kwargs: Any,
) -> GateReport:
    """Evaluate the default deployment (referencing nothing) with the given evidence in the namespace."""
    return evaluate(
        gate_input(
            deployment or make_deployment(),
            [make_policy(approvals=[ETHICS])] if policies is None else policies,
            list(approvals),
            list(evaluations),
            **kwargs,
        )
    )


def gate(report: GateReport, requirement: str) -> Gate:
    [found] = [g for g in report.gates if g.requirement.startswith(requirement)]
    return found


# --- all evidence counts, referenced or not -------------------------------------------------------


def test_unreferenced_rejection_by_an_eligible_approver_blocks() -> None:
    rejection = make_approval("carol-no", username="carol", decision="rejected")
    report = run(approvals=[make_approval(), rejection])

    g = gate(report, "approval role=ethics-board")
    assert not report.admitted and g.reason == r.APPROVAL_REJECTED
    assert "carol rejected" in g.message and "until its author deletes it" in g.message


def test_rejection_of_another_revision_of_the_same_digest_still_blocks() -> None:
    rejection = make_approval("carol-no", username="carol", decision="rejected", revision="0" * 32)

    assert gate(run(approvals=[make_approval(), rejection]), "approval").reason == r.APPROVAL_REJECTED


@pytest.mark.parametrize(
    ("rejection", "why"),
    [
        (make_approval("x", username="mallory", groups=["ml-engineers"], decision="rejected"), "not allowed"),
        (make_approval("x", username=None, decision="rejected"), "approver unknown"),
        (make_approval("x", decision="rejected", seal="bad"), "unsealed"),
    ],
)
def test_rejection_that_is_not_attributable_to_an_eligible_approver_does_not_block(
    rejection: Any, why: str
) -> None:
    report = run(approvals=[make_approval(), rejection], seal_ok=lambda o: o.spec.seal != "bad")

    assert report.admitted, why


def test_references_are_only_required_to_exist() -> None:
    md = make_deployment(approvals=["bob-ok"], evaluations=["gone"])
    report = run(deployment=md, approvals=[make_approval()])

    assert [g.reason for g in report.failures] == [r.EVALUATION_NOT_FOUND]


def test_newer_unreferenced_failing_evaluation_beats_an_older_referenced_passing_one() -> None:
    md = make_deployment(evaluations=["old-pass"])
    old = make_evaluation("old-pass", metrics={"accuracy": 0.95}, evaluated_at=NOW - timedelta(days=3))
    new = make_evaluation("new-fail", metrics={"accuracy": 0.5}, evaluated_at=NOW - timedelta(days=1))
    report = run(policies=[make_policy(evaluations=[ACCURACY])], deployment=md, evaluations=[old, new])

    g = gate(report, "evaluation accuracy")
    assert (g.satisfied, g.reason) == (False, r.METRIC_BELOW_MINIMUM)
    assert "ModelEvaluation new-fail" in g.message


def test_newest_evaluation_of_every_dataset_must_pass_when_the_requirement_names_none() -> None:
    good = make_evaluation("holdout", metrics={"accuracy": 0.95}, dataset="holdout")
    bad = make_evaluation(
        "shadow", metrics={"accuracy": 0.5}, dataset="shadow", evaluated_at=NOW - timedelta(days=2)
    )
    report = run(policies=[make_policy(evaluations=[ACCURACY])], evaluations=[good, bad])

    g = gate(report, "evaluation accuracy")
    assert not g.satisfied and "ModelEvaluation shadow" in g.message


def test_requirement_naming_a_dataset_is_decided_by_that_dataset_only() -> None:
    good = make_evaluation("holdout", metrics={"accuracy": 0.95}, dataset="holdout")
    bad = make_evaluation("shadow", metrics={"accuracy": 0.5}, dataset="shadow")
    policy = make_policy(evaluations=[evaluation_requirement("accuracy", min=0.9, dataset="holdout")])

    assert run(policies=[policy], evaluations=[good, bad]).admitted


# --- evidence binds to the revision ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("revision", "reason", "says"),
    [
        (
            None,
            r.REVISION_MISSING,
            f"names no revision (spec.model.revision); create it again with revision {REVISION}",
        ),
        ("0" * 32, r.REVISION_MISMATCH, f"is for revision {'0' * 32} not {REVISION}"),
    ],
)
def test_evidence_for_no_or_another_revision_does_not_count(
    revision: str | None, reason: str, says: str
) -> None:
    report = run(approvals=[make_approval(revision=revision)])

    g = gate(report, "approval")
    assert not report.admitted and g.reason == reason
    assert says in g.message


def test_evaluation_for_another_revision_does_not_count() -> None:
    report = run(
        policies=[make_policy(evaluations=[ACCURACY])], evaluations=[make_evaluation(revision="0" * 32)]
    )

    assert gate(report, "evaluation").reason == r.REVISION_MISMATCH


def test_gate_messages_name_the_revision_id() -> None:
    g = gate(run(), "approval")

    assert f"for fraud-detector 1.0.0 sha256:abcdef12abcd… revision {REVISION}" in g.message


@pytest.mark.parametrize(
    "serving",
    [
        {"image": "registry.example/other@sha256:" + "9" * 64},
        {"env": [{"name": "MODEL_THRESHOLD", "value": "0.1"}]},
        {"port": 9000},
    ],
)
def test_a_change_to_a_covered_serving_field_is_a_new_revision_needing_its_own_evidence(
    serving: dict[str, Any],
) -> None:
    md = make_deployment(serving=serving)
    report = run(deployment=md, approvals=[make_approval()])

    assert revision_of(md) != REVISION
    assert gate(report, "approval").reason == r.REVISION_MISMATCH
    assert run(deployment=md, approvals=[make_approval(revision=revision_of(md))]).admitted


def test_a_change_to_an_operational_field_keeps_the_revision() -> None:
    md = make_deployment(serving={"replicas": 5, "resources": {"requests": {"cpu": "2"}}})

    assert revision_of(md) == REVISION
    assert run(deployment=md, approvals=[make_approval()]).admitted


def test_another_uri_under_the_same_digest_is_a_new_revision() -> None:
    raw = make_deployment().model_dump(by_alias=True, exclude_none=True)
    raw["spec"]["model"]["uri"] = "s3://attacker/model.pkl"
    md = type(make_deployment()).model_validate(raw)

    assert gate(run(deployment=md, approvals=[make_approval()]), "approval").reason == r.REVISION_MISMATCH


def test_judging_another_subject_uses_its_revision_and_skips_the_reference_gates() -> None:
    md = make_deployment(approvals=["missing"], serving={"image": "registry.example/new@sha256:" + "8" * 64})
    serving = Subject(
        "fraud-detector",
        "1.0.0",
        "s3://models/fraud-detector/1.0.0",
        DIGEST,
        make_deployment().spec.serving.image,
        REVISION,
    )
    report = run(deployment=md, approvals=[make_approval()], subject=serving)

    assert report.admitted
    assert not [g for g in report.gates if g.kind.endswith("-reference")]


def test_subject_of_names_the_requested_revision() -> None:
    md = make_deployment()

    assert subject_of(md, []) == Subject(
        "fraud-detector", "1.0.0", md.spec.model.uri, DIGEST, md.spec.serving.image, REVISION
    )


# --- the image is pinned ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("registry.example/srv:1.4", False),
        ("registry.example/srv:latest@sha256:abc", False),
        ("registry.example/srv@sha256:" + "a" * 64, True),
        ("registry.example/srv:1.4@sha256:" + "a" * 64, True),
        ("registry.example/srv@sha256:" + "A" * 64, False),
    ],
)
def test_image_must_be_pinned_by_digest_by_default(image: str, pinned: bool) -> None:
    md = make_deployment(serving={"image": image})
    report = run(deployment=md, approvals=[make_approval(revision=revision_of(md))])

    assert report.admitted is pinned
    if not pinned:
        g = gate(report, "image pinned")
        assert g.reason == r.IMAGE_NOT_PINNED and "policy prod-governance" in g.message and image in g.message


def test_policy_may_allow_an_unpinned_image() -> None:
    md = make_deployment(serving={"image": "registry.example/srv:1.4"})
    policy = make_policy(approvals=[ETHICS], requireImageDigest=False)

    assert run(policies=[policy], deployment=md, approvals=[make_approval(revision=revision_of(md))]).admitted


# --- broken and empty policies ----------------------------------------------------------------------


def raw_policy(spec: dict[str, Any], name: str = "broken") -> dict[str, Any]:
    return {
        "apiVersion": "modelgate.io/v1alpha1",
        "kind": "GovernancePolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_policy_that_fails_to_parse_blocks_with_policy_invalid() -> None:
    broken = read_policy(raw_policy({"approvals": [{"role": "ethics-board", "approvers": {}}]}))
    report = run(policies=[make_policy(approvals=[ETHICS]), broken], approvals=[make_approval()])

    g = gate(report, "policy broken")
    assert not report.admitted and g.reason == r.POLICY_INVALID
    assert "GovernancePolicy broken is invalid" in g.message and "approvers must name" in g.message


@pytest.mark.parametrize(
    ("spec", "labels", "risk", "selected"),
    [
        (
            {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "approvals": 3},
            {"env": "prod"},
            "high",
            True,
        ),
        (
            {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "approvals": 3},
            {"env": "dev"},
            "high",
            False,
        ),
        ({"namespaceSelector": {"matchLabels": "nonsense"}, "approvals": 3}, {"env": "dev"}, "high", True),
        ({"riskLevels": ["high"], "approvals": 3}, {}, "minimal", False),
        ({"riskLevels": "high", "approvals": 3}, {}, "minimal", True),
    ],
)
def test_broken_policy_selects_what_it_could_select(
    spec: dict[str, Any], labels: dict[str, str], risk: str, selected: bool
) -> None:
    broken = read_policy(raw_policy(spec))

    assert broken.invalid is not None
    assert bool(select_policies([broken], labels, risk)) is selected


def test_empty_policy_is_refused_and_allow_all_admits() -> None:
    assert read_policy(raw_policy({})).invalid is not None
    assert "allowAll" in str(read_policy(raw_policy({})).invalid)
    allow_all = read_policy(raw_policy({"allowAll": True}, "open"))

    assert allow_all.invalid is None
    assert run(policies=[allow_all]).admitted


@pytest.mark.parametrize(
    ("policy", "status", "reason"),
    [
        (raw_policy({"allowAll": True}), "True", r.POLICY_VALID),
        (raw_policy({}), "False", r.POLICY_INVALID),
    ],
)
def test_policy_status_reports_valid(policy: dict[str, Any], status: str, reason: str) -> None:
    body = {**policy, "metadata": {"name": "p", "generation": 3}}
    out = policy_status(read_policy(body), body, NOW)

    assert out is not None and out["observedGeneration"] == 3
    [cond] = out["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["observedGeneration"]) == (
        "Valid",
        status,
        reason,
        3,
    )
    assert policy_status(read_policy(body), {**body, "status": out}, NOW + timedelta(hours=1)) is None


# --- identity that cannot be claimed ------------------------------------------------------------------


CONFIRMING = {"riskLevelConfirmation": {"role": "ethics-board"}}


@pytest.mark.parametrize(
    ("confirmed", "admitted", "reason"),
    [
        ("high", True, r.APPROVALS_GRANTED),
        ("minimal", False, r.RISK_LEVEL_NOT_CONFIRMED),
        (None, False, r.RISK_LEVEL_NOT_CONFIRMED),
    ],
)
def test_risk_level_confirmation(confirmed: str | None, admitted: bool, reason: str) -> None:
    policy = make_policy(approvals=[ETHICS], **CONFIRMING)
    report = run(policies=[policy], approvals=[make_approval(risk_level=confirmed)])

    assert report.admitted is admitted
    assert gate(report, "approval role=ethics-board").reason == reason
    confirmation = gate(report, "risk level confirmation role=ethics-board")
    assert confirmation.satisfied is admitted
    if not admitted:
        assert "confirming the model card's risk level high" in confirmation.message


def test_risk_level_confirmation_by_a_role_no_policy_requires_fails_closed() -> None:
    policy = make_policy(approvals=[ETHICS], riskLevelConfirmation={"role": "model-risk"})
    report = run(policies=[policy], approvals=[make_approval(risk_level="high")])

    g = gate(report, "risk level confirmation role=model-risk")
    assert not report.admitted and g.reason == r.RISK_LEVEL_NOT_CONFIRMED
    assert "no policy in force says who may approve for role model-risk" in g.message


EVALUATORS = {"evaluators": {"groups": ["evaluators"]}}


@pytest.mark.parametrize(
    ("submitter", "groups", "counts"),
    [("ci", ("evaluators",), True), ("alice", ("deployers",), False), (None, (), False)],
)
def test_only_evaluations_by_allowed_evaluators_count(
    submitter: str | None, groups: tuple[str, ...], counts: bool
) -> None:
    policy = make_policy(evaluations=[ACCURACY], **EVALUATORS)
    evaluation = make_evaluation(submitted_by=submitter, submitter_groups=groups)
    report = run(policies=[policy], evaluations=[evaluation])

    g = gate(report, "evaluation accuracy")
    assert g.satisfied is counts
    if not counts:
        assert g.reason == r.EVALUATOR_NOT_AUTHORIZED
        assert (
            f"submitted by {submitter}, who is not an evaluator" if submitter else "no submittedBy"
        ) in g.message


def test_max_age_counts_from_the_server_creation_time_when_it_is_earlier() -> None:
    policy = make_policy(evaluations=[evaluation_requirement("accuracy", min=0.9, max_age="7d")])
    backdated = make_evaluation(evaluated_at=NOW - timedelta(days=1), created_at=NOW - timedelta(days=30))
    report = run(policies=[policy], evaluations=[backdated])

    g = gate(report, "evaluation accuracy")
    assert g.reason == r.EVALUATION_STALE
    assert "was created at 2026-11-01T12:00:00Z, before its evaluatedAt" in g.message
