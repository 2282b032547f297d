"""The gate engine: one behaviour per test, reasons and the key parts of messages asserted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide.gates import Gate, GateReport, evaluate
from tests.unit.factories import (
    DIGEST,
    NOW,
    OTHER_DIGEST,
    approval_requirement,
    default_revision,
    evaluation_requirement,
    gate_input,
    make_approval,
    make_deployment,
    make_evaluation,
    make_policy,
)

SHORT = "sha256:abcdef12abcd…"
SHORT_OTHER = "sha256:111111111111…"
SUBJECT = f"fraud-detector 1.0.0 {SHORT} revision {default_revision()}"
"""How gate messages name the default deployment's revision."""
ETHICS = approval_requirement("ethics-board", groups=["ethics-board"])
ACCURACY = evaluation_requirement("accuracy", min=0.9)


def run(
    *,
    policies: Sequence[GovernancePolicy] | None = None,
    approvals: Sequence[ModelApproval] = (),
    evaluations: Sequence[ModelEvaluation] = (),
    deployment: ModelDeployment | None = None,
    **kwargs: Any,
) -> GateReport:
    """Evaluate a deployment referencing exactly the given evidence (unless `deployment` is given)."""
    if deployment is None:
        deployment = make_deployment(
            approvals=[a.name for a in approvals], evaluations=[e.name for e in evaluations]
        )
    if policies is None:
        policies = [make_policy(approvals=[ETHICS])]
    return evaluate(gate_input(deployment, policies, approvals, evaluations, **kwargs))


def only(report: GateReport, kind: str) -> Gate:
    gates = [g for g in report.gates if g.kind == kind]
    assert len(gates) == 1, gates
    return gates[0]


# --- policy ---------------------------------------------------------------------------------------


def test_no_policy_blocks_with_reason_no_policy() -> None:
    report = run(policies=[], approvals=[make_approval()])

    assert not report.admitted
    assert report.gates == (
        Gate(
            "policy",
            False,
            r.NO_POLICY,
            "no GovernancePolicy selects namespace fraud-prod and risk level high",
            "policy",
        ),
    )


def test_allow_no_policy_flag_admits() -> None:
    report = run(policies=[], allow_no_policy=True)

    assert report.admitted
    gate = only(report, "policy")
    assert gate.satisfied and gate.reason == r.NO_POLICY
    assert "admitted without policy by operator flag" in gate.message


def test_allow_no_policy_still_blocks_on_a_missing_reference() -> None:
    report = run(policies=[], allow_no_policy=True, deployment=make_deployment(approvals=["ghost"]))

    assert not report.admitted
    assert [g.reason for g in report.failures] == [r.APPROVAL_NOT_FOUND]


def test_policy_without_requirements_admits_with_no_gates() -> None:
    report = run(policies=[make_policy()])

    assert report.admitted and report.gates == ()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [([], "suspend"), (["keep"], "keep"), (["keep", "suspend"], "suspend"), (["keep", "keep"], "keep")],
)
def test_on_revocation_is_suspend_unless_every_policy_keeps(settings: list[str], expected: str) -> None:
    policies = [make_policy(f"p{i}", on_revocation=s) for i, s in enumerate(settings)]
    assert run(policies=policies).on_revocation == expected


# --- card -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["intendedUse", "limitations", "trainingData"])
@pytest.mark.parametrize("value", [None, "", "   \n"], ids=["absent", "empty", "blank"])
def test_missing_card_field_blocks_naming_field_and_policy(field: str, value: str | None) -> None:
    policy = make_policy(required_card_fields=[field])
    report = run(policies=[policy], deployment=make_deployment(card={field: value}))

    assert not report.admitted
    gate = only(report, "card")
    assert (gate.requirement, gate.reason) == (f"card.{field}", r.CARD_FIELD_MISSING)
    assert f"model card field {field} is missing or empty" in gate.message
    assert "policy prod-governance" in gate.message


def test_present_card_fields_are_satisfied_gates_in_field_order() -> None:
    policy = make_policy(required_card_fields=["riskLevel", "limitations", "owner"])
    report = run(policies=[policy])

    assert report.admitted
    assert [(g.requirement, g.reason) for g in report.gates] == [
        ("card.owner", r.CARD_FIELD_PRESENT),
        ("card.limitations", r.CARD_FIELD_PRESENT),
        ("card.riskLevel", r.CARD_FIELD_PRESENT),
    ]


def test_card_field_required_by_two_policies_is_one_gate_naming_both() -> None:
    policies = [make_policy(n, required_card_fields=["limitations"]) for n in ("b-policy", "a-policy")]
    report = run(policies=policies, deployment=make_deployment(card={"limitations": None}))

    gate = only(report, "card")
    assert "required by policies a-policy, b-policy" in gate.message


# --- references -----------------------------------------------------------------------------------


def test_missing_approval_reference_blocks_with_approval_not_found() -> None:
    report = run(deployment=make_deployment(approvals=["bob-ok", "ethics-ok"]), approvals=[make_approval()])

    assert not report.admitted and not report.approved
    gate = only(report, "approval-reference")
    assert (gate.requirement, gate.reason) == ("reference ModelApproval/ethics-ok", r.APPROVAL_NOT_FOUND)
    assert gate.message == "ModelApproval ethics-ok not found in namespace fraud-prod"


def test_missing_evaluation_reference_blocks_with_evaluation_not_found() -> None:
    report = run(deployment=make_deployment(evaluations=["holdout-v2"]))

    assert not report.admitted and not report.evaluated and report.approved is False
    gate = only(report, "evaluation-reference")
    assert gate.reason == r.EVALUATION_NOT_FOUND
    assert gate.message == "ModelEvaluation holdout-v2 not found in namespace fraud-prod"


def test_missing_evaluation_reference_does_not_affect_approved() -> None:
    report = run(
        deployment=make_deployment(approvals=["bob-ok"], evaluations=["gone"]), approvals=[make_approval()]
    )

    assert report.approved and not report.evaluated and not report.admitted


def test_reference_absent_from_the_mapping_counts_as_not_found() -> None:
    inp = gate_input(make_deployment(approvals=["bob-ok"]), [make_policy(approvals=[ETHICS])])
    report = evaluate(type(inp)(**{**inp.__dict__, "references": {}}))

    assert [g.reason for g in report.failures][:1] == [r.APPROVAL_NOT_FOUND]


def test_unreferenced_approval_counts() -> None:
    report = run(deployment=make_deployment(), approvals=[make_approval()])

    assert report.admitted
    assert report.counted_approvals == ("bob-ok",)


# --- approvals ------------------------------------------------------------------------------------


def test_approval_by_member_of_allowed_group_admits() -> None:
    report = run(approvals=[make_approval()])

    assert report.admitted and report.approved
    gate = only(report, "approval")
    assert (gate.requirement, gate.reason) == (
        "approval role=ethics-board (policy prod-governance)",
        r.APPROVALS_GRANTED,
    )
    assert "bob (ModelApproval bob-ok)" in gate.message


def test_approval_by_listed_user_admits() -> None:
    policy = make_policy(approvals=[approval_requirement(users=["alice"], groups=[])])
    report = run(policies=[policy], approvals=[make_approval(username="alice", groups=[])])

    assert report.admitted


def test_approval_missing_message_names_role_approvers_model_and_digest() -> None:
    report = run()

    gate = only(report, "approval")
    assert gate.reason == r.APPROVAL_MISSING
    assert gate.message == (
        f"needs 1 approval by role ethics-board from group ethics-board for {SUBJECT}; found none"
    )


def test_approver_not_in_users_or_groups_does_not_count() -> None:
    policy = make_policy(approvals=[approval_requirement(users=["alice"], groups=["ethics-board"])])
    report = run(policies=[policy], approvals=[make_approval("m-ok", username="mallory", groups=["sales"])])

    gate = only(report, "approval")
    assert not gate.satisfied and gate.reason == r.APPROVER_NOT_AUTHORIZED
    assert (
        "ModelApproval m-ok is by mallory, who is not allowed to decide for role ethics-board" in gate.message
    )
    assert "user alice or group ethics-board" in gate.message


def test_approval_for_another_digest_does_not_count_and_message_says_so() -> None:
    report = run(approvals=[make_approval(digest=OTHER_DIGEST)])

    gate = only(report, "approval")
    assert not report.admitted and gate.reason == r.DIGEST_MISMATCH
    assert f"ModelApproval bob-ok is for {SHORT_OTHER} not {SHORT}" in gate.message
    assert "found none" in gate.message


@pytest.mark.parametrize(("model", "version"), [("other", "1.0.0"), ("fraud-detector", "2.0")])
def test_approval_for_another_model_or_version_is_not_about_this_revision(model: str, version: str) -> None:
    report = run(approvals=[make_approval(model=model, version=version)])

    gate = only(report, "approval")
    assert not report.admitted and gate.reason == r.APPROVAL_MISSING
    assert gate.message.endswith("; found none")  # not even a near miss: it is about something else


def test_approval_for_another_role_does_not_count() -> None:
    report = run(approvals=[make_approval(role="product-owner")])

    assert not report.admitted
    assert only(report, "approval").reason == r.APPROVAL_MISSING


@pytest.mark.parametrize("expires_at", [NOW - timedelta(days=1), NOW], ids=["past", "exactly-now"])
def test_expired_approval_does_not_count(expires_at: datetime) -> None:
    report = run(approvals=[make_approval(expires_at=expires_at)])

    gate = only(report, "approval")
    assert not report.admitted and gate.reason == r.APPROVAL_EXPIRED
    assert f"ModelApproval bob-ok expired at {expires_at.strftime('%Y-%m-%dT%H:%M:%SZ')}" in gate.message


def test_approval_expiring_later_counts() -> None:
    assert run(approvals=[make_approval(expires_at=NOW + timedelta(seconds=1))]).admitted


def test_approval_without_approved_by_does_not_count() -> None:
    report = run(approvals=[make_approval(username=None)])

    gate = only(report, "approval")
    assert gate.reason == r.APPROVER_UNKNOWN
    assert "ModelApproval bob-ok has no approvedBy" in gate.message


def test_two_approvals_by_same_person_count_once() -> None:
    policy = make_policy(approvals=[approval_requirement(count=2)])
    report = run(policies=[policy], approvals=[make_approval("bob-1"), make_approval("bob-2")])

    gate = only(report, "approval")
    assert not report.admitted and gate.reason == r.APPROVAL_MISSING
    assert (
        "needs 2 approvals by role ethics-board from group ethics-board (distinct approvers)" in gate.message
    )
    assert "found 1: bob" in gate.message
    assert "is by bob, who is already counted once" in gate.message


def test_count_two_is_met_by_two_distinct_approvers() -> None:
    policy = make_policy(approvals=[approval_requirement(count=2)])
    report = run(
        policies=[policy], approvals=[make_approval("bob-ok"), make_approval("carol-ok", username="carol")]
    )

    assert report.admitted
    assert report.counted_approvals == ("bob-ok", "carol-ok")


def test_of_two_approvals_by_one_person_the_longest_lasting_is_counted() -> None:
    short = make_approval("a-short", expires_at=NOW + timedelta(days=1))
    lasting = make_approval("b-lasting")
    report = run(approvals=[short, lasting])

    assert report.counted_approvals == ("b-lasting",)
    assert report.next_change is None


def test_rejection_by_required_role_blocks_even_with_other_approvals() -> None:
    approvals = [
        make_approval("bob-ok"),
        make_approval(
            "carol-no", username="carol", decision="rejected", comment="Disparate impact on age band 18-25."
        ),
    ]
    report = run(approvals=approvals)

    gate = only(report, "approval")
    assert not report.admitted and gate.reason == r.APPROVAL_REJECTED
    assert f"carol rejected {SUBJECT} in ModelApproval carol-no" in gate.message
    assert "until its author deletes it" in gate.message
    assert '"Disparate impact on age band 18-25."' in gate.message


def test_rejection_by_someone_not_allowed_for_the_role_does_not_block() -> None:
    approvals = [
        make_approval("bob-ok"),
        make_approval("m-no", username="mallory", groups=[], decision="rejected"),
    ]
    report = run(approvals=approvals)

    assert report.admitted


def test_rejection_of_another_digest_does_not_block() -> None:
    approvals = [
        make_approval("bob-ok"),
        make_approval("old-no", username="carol", decision="rejected", digest=OTHER_DIGEST),
    ]

    assert run(approvals=approvals).admitted


def test_expired_rejection_still_blocks() -> None:
    approvals = [
        make_approval("bob-ok"),
        make_approval("carol-no", username="carol", decision="rejected", expires_at=NOW - timedelta(days=1)),
    ]

    assert only(run(approvals=approvals), "approval").reason == r.APPROVAL_REJECTED


def test_approval_before_not_before_does_not_count() -> None:
    quarantine = NOW - timedelta(hours=1)
    report = run(
        approvals=[make_approval(created_at=quarantine - timedelta(seconds=1))], not_before=quarantine
    )

    gate = only(report, "approval")
    assert not report.admitted and gate.reason == r.APPROVAL_PREDATES_QUARANTINE
    assert "ModelApproval bob-ok was created at 2026-12-01T10:59:59Z" in gate.message
    assert (
        "only approvals given at or after 2026-12-01T11:00:00Z (the last quarantine or rollback) count"
        in gate.message
    )


def test_approval_given_at_or_after_not_before_counts() -> None:
    quarantine = NOW - timedelta(hours=1)

    assert run(approvals=[make_approval(created_at=quarantine)], not_before=quarantine).admitted


@pytest.mark.parametrize(
    "created", [None, "yesterday", "2026-12-01T11:30:00"], ids=["absent", "garbage", "naive"]
)
def test_unreadable_creation_timestamp_does_not_count_after_quarantine(created: str | None) -> None:
    report = run(approvals=[make_approval(created_at=created)], not_before=NOW - timedelta(hours=1))

    gate = only(report, "approval")
    assert gate.reason == r.APPROVAL_PREDATES_QUARANTINE
    assert "has no readable creationTimestamp" in gate.message


def test_creation_timestamp_is_ignored_without_not_before() -> None:
    assert run(approvals=[make_approval(created_at="garbage")]).admitted


def test_invalid_seal_does_not_count() -> None:
    approvals = [
        make_approval("bob-ok", seal="forged"),
        make_approval("carol-ok", username="carol", seal="good"),
    ]
    evaluations = [make_evaluation("forged-eval", seal="forged")]
    policy = make_policy(approvals=[approval_requirement(count=2)], evaluations=[ACCURACY])
    report = run(
        policies=[policy],
        approvals=approvals,
        evaluations=evaluations,
        seal_ok=lambda o: o.spec.seal == "good",
    )

    approval, evaluation = report.failures
    assert (
        approval.reason == r.SEAL_INVALID and "ModelApproval bob-ok has an invalid seal" in approval.message
    )
    assert "found 1: carol" in approval.message
    assert evaluation.reason == r.SEAL_INVALID and "ModelEvaluation forged-eval" in evaluation.message


def test_evidence_without_a_seal_is_named_unsealed_not_invalid() -> None:
    report = run(
        approvals=[make_approval("bob-ok", seal=None)],
        evaluations=[make_evaluation("erin-eval", seal=None)],
        policies=[make_policy(approvals=[approval_requirement()], evaluations=[ACCURACY])],
        seal_ok=lambda o: o.spec.seal == "good",
    )

    approval, evaluation = report.failures
    assert approval.reason == evaluation.reason == r.UNSEALED
    assert "ModelApproval bob-ok is unsealed: it was written past the modelgate admission webhook" in (
        approval.message
    )
    assert "ModelEvaluation erin-eval is unsealed" in evaluation.message


def test_a_seal_check_that_raises_fails_closed() -> None:
    def broken(_: object) -> bool:
        raise RuntimeError("no key")

    gate = only(run(approvals=[make_approval()], seal_ok=broken), "approval")
    assert gate.reason == r.SEAL_INVALID and "could not be verified (RuntimeError)" in gate.message


def test_seals_are_not_checked_without_a_seal_check() -> None:
    assert run(approvals=[make_approval(seal=None)]).admitted


def test_reason_comes_from_the_near_miss_that_came_closest() -> None:
    approvals = [
        make_approval("wrong-digest", digest=OTHER_DIGEST),
        make_approval("old", expires_at=NOW - timedelta(days=1)),
    ]
    gate = only(run(approvals=approvals), "approval")

    assert gate.reason == r.APPROVAL_EXPIRED
    assert "not counted: ModelApproval old expired at" in gate.message
    assert "; ModelApproval wrong-digest is for" in gate.message  # evidence is taken in name order


# --- separation of duties -------------------------------------------------------------------------


def separated(*requirements: dict[str, Any]) -> GovernancePolicy:
    return make_policy(approvals=list(requirements) or [ETHICS], separation_of_duties=True)


def test_separation_of_duties_rejects_self_approval() -> None:
    approvals = [make_approval("dave-ok", username="dave")]
    report = run(policies=[separated()], approvals=approvals)

    gate = only(report, "approval")
    assert not report.admitted and gate.reason == r.SEPARATION_OF_DUTIES_VIOLATED
    assert "ModelApproval dave-ok is by dave, who set the digest" in gate.message
    separation = only(report, "separation")
    assert separation.satisfied and separation.reason == r.SEPARATION_OF_DUTIES_MET
    assert "approvals by dave, who set the digest" in separation.message
    assert "not counted: ModelApproval dave-ok" in separation.message


def test_self_approval_is_ignored_when_independent_approvals_suffice() -> None:
    approvals = [make_approval("dave-ok", username="dave"), make_approval("bob-ok")]
    report = run(policies=[separated()], approvals=approvals)

    assert report.admitted and report.counted_approvals == ("bob-ok",)


def test_missing_digest_set_by_fails_closed_under_separation() -> None:
    approvals = [make_approval()]
    deployment = make_deployment(approvals=["bob-ok"], digest_set_by=None)
    report = run(policies=[separated()], approvals=approvals, deployment=deployment)

    assert not report.admitted and not report.approved
    gate = only(report, "separation")
    assert (gate.requirement, gate.reason) == ("separation of duties", r.SEPARATION_OF_DUTIES_VIOLATED)
    assert "the identity that set the digest" in gate.message and "is unknown" in gate.message
    assert "required by policy prod-governance" in gate.message


def test_no_separation_gate_unless_a_policy_demands_it() -> None:
    report = run(approvals=[make_approval("dave-ok", username="dave")])

    assert report.admitted
    assert [g.kind for g in report.gates] == ["approval"]


def test_separation_demanded_by_one_policy_applies_to_every_requirement() -> None:
    lenient = make_policy(
        "a-lenient", approvals=[approval_requirement("product-owner", users=["dave"], groups=[])]
    )
    strict = make_policy("b-strict", separation_of_duties=True)
    approvals = [make_approval("dave-po", role="product-owner", username="dave")]
    report = run(policies=[lenient, strict], approvals=approvals)

    gate = only(report, "approval")
    assert not gate.satisfied and gate.reason == r.SEPARATION_OF_DUTIES_VIOLATED


# --- evaluations ----------------------------------------------------------------------------------


def evaluated(*requirements: dict[str, Any], evaluations: Sequence[ModelEvaluation]) -> Gate:
    report = run(policies=[make_policy(evaluations=list(requirements))], evaluations=evaluations)
    return only(report, "evaluation")


def test_evaluation_meeting_threshold_passes() -> None:
    gate = evaluated(ACCURACY, evaluations=[make_evaluation()])

    assert gate.satisfied and gate.reason == r.EVALUATIONS_PASSED
    assert gate.requirement == "evaluation accuracy (policy prod-governance)"
    assert (
        "ModelEvaluation holdout (dataset fraud-holdout, evaluated at 2026-11-30T12:00:00Z)" in gate.message
    )
    assert "reports accuracy 0.94, meeting accuracy >= 0.9" in gate.message


def test_metric_below_min_blocks_with_value_in_message() -> None:
    gate = evaluated(ACCURACY, evaluations=[make_evaluation(metrics={"accuracy": 0.85})])

    assert not gate.satisfied and gate.reason == r.METRIC_BELOW_MINIMUM
    assert "ModelEvaluation holdout (dataset fraud-holdout" in gate.message
    assert "reports accuracy 0.85, below the minimum 0.9" in gate.message


def test_metric_above_max_blocks() -> None:
    req = evaluation_requirement("false-positive-rate", max=0.05)
    gate = evaluated(req, evaluations=[make_evaluation(metrics={"false-positive-rate": 0.07})])

    assert gate.reason == r.METRIC_ABOVE_MAXIMUM
    assert "reports false-positive-rate 0.07, above the maximum 0.05" in gate.message


@pytest.mark.parametrize(("value", "ok"), [(0.1, True), (0.5, True), (0.09, False), (0.51, False)])
def test_thresholds_are_inclusive(value: float, ok: bool) -> None:
    gate = evaluated(
        evaluation_requirement("psi", min=0.1, max=0.5), evaluations=[make_evaluation(metrics={"psi": value})]
    )

    assert gate.satisfied is ok


def test_metric_not_reported_blocks() -> None:
    gate = evaluated(evaluation_requirement("auc", min=0.9), evaluations=[make_evaluation()])

    assert gate.reason == r.METRIC_NOT_REPORTED
    assert "ModelEvaluation holdout does not report auc" in gate.message


def test_nan_metric_does_not_count() -> None:
    gate = evaluated(
        evaluation_requirement("auc"), evaluations=[make_evaluation(metrics={"auc": float("nan")})]
    )

    assert gate.reason == r.METRIC_NOT_REPORTED and "reports NaN for auc" in gate.message


def test_stale_evaluation_does_not_count() -> None:
    req = evaluation_requirement("accuracy", min=0.9, max_age="30d")
    gate = evaluated(req, evaluations=[make_evaluation(evaluated_at=NOW - timedelta(days=31))])

    assert not gate.satisfied and gate.reason == r.EVALUATION_STALE
    assert "more than maxAge 30d ago (stale since 2026-11-30T12:00:00Z)" in gate.message
    assert "at most 30d old" in gate.message


def test_dataset_must_match() -> None:
    req = evaluation_requirement("accuracy", min=0.9, dataset="fraud-holdout-2026q3")
    gate = evaluated(req, evaluations=[make_evaluation(dataset="fraud-train")])

    assert not gate.satisfied and gate.reason == r.EVALUATION_MISSING
    assert "on dataset fraud-holdout-2026q3" in gate.message
    assert (
        "ModelEvaluation holdout was measured on dataset fraud-train not fraud-holdout-2026q3" in gate.message
    )


def test_newest_counted_evaluation_decides() -> None:
    older = make_evaluation("older", metrics={"accuracy": 0.95}, evaluated_at=NOW - timedelta(days=5))
    newer = make_evaluation("newer", metrics={"accuracy": 0.85}, evaluated_at=NOW - timedelta(days=1))
    gate = evaluated(ACCURACY, evaluations=[newer, older])

    assert gate.reason == r.METRIC_BELOW_MINIMUM and "ModelEvaluation newer" in gate.message


def test_evaluation_for_another_digest_does_not_count() -> None:
    gate = evaluated(ACCURACY, evaluations=[make_evaluation(digest=OTHER_DIGEST)])

    assert gate.reason == r.DIGEST_MISMATCH
    assert f"ModelEvaluation holdout is for {SHORT_OTHER} not {SHORT}" in gate.message


def test_evaluation_dated_in_the_future_does_not_count() -> None:
    gate = evaluated(ACCURACY, evaluations=[make_evaluation(evaluated_at=NOW + timedelta(minutes=6))])

    assert gate.reason == r.EVALUATION_MISSING and "in the future" in gate.message


def test_evaluation_within_clock_skew_counts() -> None:
    assert evaluated(
        ACCURACY, evaluations=[make_evaluation(evaluated_at=NOW + timedelta(minutes=5))]
    ).satisfied


def test_no_evaluation_referenced_is_evaluation_missing() -> None:
    gate = evaluated(ACCURACY, evaluations=[])

    assert gate.reason == r.EVALUATION_MISSING
    assert gate.message == f"needs an evaluation of {SUBJECT} reporting accuracy >= 0.9; found none"


# --- several policies, order, report --------------------------------------------------------------


def test_several_policies_all_apply() -> None:
    ethics = make_policy("ethics", approvals=[ETHICS])
    risk = make_policy(
        "risk", approvals=[approval_requirement("model-risk", groups=["model-risk"])], evaluations=[ACCURACY]
    )
    report = run(policies=[risk, ethics], approvals=[make_approval()], evaluations=[make_evaluation()])

    assert not report.admitted
    assert [(g.requirement, g.satisfied) for g in report.gates] == [
        ("approval role=ethics-board (policy ethics)", True),
        ("approval role=model-risk (policy risk)", False),
        ("evaluation accuracy (policy risk)", True),
    ]
    assert [g.reason for g in report.failures] == [r.APPROVAL_MISSING]


def test_same_requirement_in_two_policies_gives_a_gate_per_policy() -> None:
    policies = [
        make_policy("a", approvals=[ETHICS]),
        make_policy("b", approvals=[approval_requirement(users=["carol"], groups=[])]),
    ]
    report = run(policies=policies, approvals=[make_approval()])

    assert [(g.requirement, g.satisfied) for g in report.gates] == [
        ("approval role=ethics-board (policy a)", True),
        ("approval role=ethics-board (policy b)", False),
    ]


def test_gate_order_is_policy_card_reference_approval_separation_evaluation() -> None:
    policy = make_policy(
        required_card_fields=["limitations"],
        approvals=[ETHICS],
        evaluations=[ACCURACY],
        separation_of_duties=True,
    )
    deployment = make_deployment(approvals=["bob-ok", "gone"], evaluations=["holdout", "gone-too"])
    report = run(
        policies=[policy], deployment=deployment, approvals=[make_approval()], evaluations=[make_evaluation()]
    )

    assert [g.kind for g in report.gates] == [
        "card",
        "approval-reference",
        "evaluation-reference",
        "approval",
        "separation",
        "evaluation",
    ]
    assert [g.requirement for g in report.gates if g.kind.endswith("-reference")] == [
        "reference ModelApproval/gone",
        "reference ModelEvaluation/gone-too",
    ]


def test_next_change_is_the_earliest_expiry() -> None:
    approvals = [
        make_approval("bob-ok", expires_at=NOW + timedelta(days=3)),
        make_approval("carol-ok", username="carol", expires_at=NOW + timedelta(days=2)),
        make_approval("old", username="erin", expires_at=NOW - timedelta(days=1)),
    ]
    req = evaluation_requirement("accuracy", max_age="30d")
    evaluations = [make_evaluation(evaluated_at=NOW - timedelta(days=27))]
    report = run(
        policies=[make_policy(approvals=[ETHICS], evaluations=[req])],
        approvals=approvals,
        evaluations=evaluations,
    )

    assert report.admitted
    assert report.next_change == NOW + timedelta(days=2)


def test_next_change_includes_an_evaluation_going_stale() -> None:
    req = evaluation_requirement("accuracy", max_age="30d")
    evaluations = [make_evaluation(evaluated_at=NOW - timedelta(days=29))]
    report = run(policies=[make_policy(evaluations=[req])], evaluations=evaluations)

    assert report.next_change == NOW + timedelta(days=1)


def test_next_change_includes_a_future_evaluation_coming_within_reach() -> None:
    evaluations = [make_evaluation(evaluated_at=NOW + timedelta(hours=1))]
    report = run(policies=[make_policy(evaluations=[ACCURACY])], evaluations=evaluations)

    assert not report.admitted
    assert report.next_change == NOW + timedelta(minutes=55)


def test_next_change_is_none_without_expiring_evidence() -> None:
    assert run(approvals=[make_approval()], evaluations=[make_evaluation()]).next_change is None


def test_counted_evidence_names_what_the_verdict_rests_on() -> None:
    policy = make_policy(approvals=[ETHICS], evaluations=[ACCURACY])
    approvals = [make_approval("bob-ok"), make_approval("m-ok", username="mallory", groups=[])]
    evaluations = [make_evaluation("old", evaluated_at=NOW - timedelta(days=9)), make_evaluation("new")]
    report = run(policies=[policy], approvals=approvals, evaluations=evaluations)

    assert report.counted_approvals == ("bob-ok",)
    assert report.counted_evaluations == ("new",)


def test_approved_and_evaluated_are_reported_separately() -> None:
    policy = make_policy(approvals=[ETHICS], evaluations=[ACCURACY])
    report = run(
        policies=[policy],
        approvals=[make_approval()],
        evaluations=[make_evaluation(metrics={"accuracy": 0.5})],
    )

    assert (report.admitted, report.approved, report.evaluated) == (False, True, False)
    assert [g.kind for g in report.failures] == ["evaluation"]


def test_report_does_not_depend_on_policy_order() -> None:
    policies = [make_policy(n, approvals=[ETHICS], evaluations=[ACCURACY]) for n in ("c", "a", "b")]
    first = run(policies=policies, approvals=[make_approval()])
    again = run(policies=list(reversed(policies)), approvals=[make_approval()])

    assert first == again
    assert [g.requirement for g in first.gates][:3] == [
        f"approval role=ethics-board (policy {n})" for n in "abc"
    ]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(now=NOW.replace(tzinfo=None))


def test_long_messages_are_clipped_to_the_status_bound() -> None:
    approvals = [make_approval(f"wrong-{i:02d}-{'x' * 200}", digest=OTHER_DIGEST) for i in range(16)]
    gate = only(run(approvals=approvals), "approval")

    assert len(gate.message) == 4096 and gate.message.endswith("…")
    assert DIGEST not in gate.message  # digests are always shortened
