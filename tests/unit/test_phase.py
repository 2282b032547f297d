"""Conditions and phase from what a plan decided (decide/phase.py): one row per situation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelgate.api import conditions as c
from modelgate.decide.conditions import Cond
from modelgate.decide.drift import DriftSummary
from modelgate.decide.gates import Gate
from modelgate.decide.phase import Situation, conditions, describe, short
from modelgate.decide.serving import Revision
from tests.unit.factories import DIGEST, MODEL, OTHER_DIGEST

V1 = Revision(MODEL, "1.0.0", "s3://m/1", DIGEST, "img:1")
V2 = Revision(MODEL, "2.0.0", "s3://m/2", OTHER_DIGEST, "img:1")

CLEAN = DriftSummary(
    Cond(c.DRIFTED, c.FALSE, c.METRICS_WITHIN_THRESHOLDS, "1 metric within thresholds"), False
)
FAILING = DriftSummary(
    Cond(c.DRIFTED, c.FALSE, "FailingBelowLimit", "psi failed 1 check in a row"), False, failing=("psi",)
)
DRIFTED = DriftSummary(Cond(c.DRIFTED, c.TRUE, c.DRIFT_DETECTED, "psi failed 3 checks in a row"), True)
UNKNOWN = DriftSummary(
    Cond(c.DRIFTED, c.UNKNOWN, c.METRICS_INCONCLUSIVE, "psi inconclusive 2 checks in a row"), False
)

APPROVAL_MISSING = Gate("approval role=ethics-board", False, c.APPROVAL_MISSING, "needs bob", "approval")
EVALUATION_STALE = Gate("evaluation accuracy", False, c.EVALUATION_STALE, "too old", "evaluation")
CARD_MISSING = Gate("card.limitations", False, c.CARD_FIELD_MISSING, "no limitations", "card")
NO_POLICY = Gate("policy", False, c.NO_POLICY, "no GovernancePolicy selects it", "policy")

SERVING = Situation(
    requested=V1,
    target=V1,
    admitted=True,
    approved=True,
    evaluated=True,
    gates=(),
    replicas=1,
    ready=True,
    rollout="1/1 replicas ready",
    blocked_message="",
    drift=CLEAN,
)
BLOCKED = replace(
    SERVING,
    admitted=False,
    approved=False,
    gates=(APPROVAL_MISSING,),
    blocked_message="v1 is not admitted: needs bob",
)


def by_type(conds: list[Cond]) -> dict[str, Cond]:
    return {x.type: x for x in conds}


@pytest.mark.parametrize(
    ("situation", "ready", "reason", "phase", "kstatus"),
    [
        pytest.param(SERVING, c.TRUE, c.SERVING_READY, c.PHASE_SERVING, None, id="serving"),
        pytest.param(
            replace(SERVING, ready=False),
            c.FALSE,
            c.ROLLOUT_IN_PROGRESS,
            c.PHASE_PROGRESSING,
            c.RECONCILING,
            id="rolling out",
        ),
        pytest.param(
            replace(SERVING, drift=FAILING),
            c.TRUE,
            c.SERVING_READY,
            c.PHASE_DEGRADED,
            None,
            id="failing below limit",
        ),
        pytest.param(
            replace(SERVING, drift=DRIFTED),
            c.TRUE,
            c.SERVING_READY,
            c.PHASE_DEGRADED,
            None,
            id="drifted, alert only",
        ),
        pytest.param(
            replace(SERVING, drift=UNKNOWN),
            c.UNKNOWN,
            c.METRICS_INCONCLUSIVE,
            c.PHASE_DEGRADED,
            None,
            id="inconclusive",
        ),
        pytest.param(
            replace(SERVING, ready=False, drift=UNKNOWN),
            c.FALSE,
            c.ROLLOUT_IN_PROGRESS,
            c.PHASE_PROGRESSING,
            c.RECONCILING,
            id="inconclusive while rolling out",
        ),
        pytest.param(
            replace(SERVING, quarantined_since="2026-12-01T12:00:00Z"),
            c.FALSE,
            c.QUARANTINED_REASON,
            c.PHASE_QUARANTINED,
            c.STALLED,
            id="quarantined",
        ),
        pytest.param(
            replace(BLOCKED, requested=V2, target=V1, rolled_back="v2 was rolled back"),
            c.FALSE,
            c.ROLLED_BACK,
            c.PHASE_ROLLED_BACK,
            c.STALLED,
            id="rolled back",
        ),
        pytest.param(
            replace(
                BLOCKED, requested=V2, target=V1, rolled_back="v2 was rolled back", quarantined_since="t"
            ),
            c.FALSE,
            c.QUARANTINED_REASON,
            c.PHASE_QUARANTINED,
            c.STALLED,
            id="quarantine outranks rollback",
        ),
        pytest.param(BLOCKED, c.TRUE, c.APPROVAL_REVOKED, c.PHASE_DEGRADED, None, id="revoked, kept serving"),
        pytest.param(
            replace(BLOCKED, ready=False),
            c.FALSE,
            c.APPROVAL_REVOKED,
            c.PHASE_DEGRADED,
            None,
            id="revoked, kept, not ready",
        ),
        pytest.param(
            replace(BLOCKED, replicas=0),
            c.FALSE,
            c.APPROVAL_REVOKED,
            c.PHASE_BLOCKED,
            c.STALLED,
            id="revoked, suspended",
        ),
        pytest.param(
            replace(BLOCKED, requested=V2),
            c.FALSE,
            c.NOT_ADMITTED,
            c.PHASE_BLOCKED,
            c.RECONCILING,
            id="new revision blocked",
        ),
        pytest.param(
            replace(BLOCKED, target=None, ready=False),
            c.FALSE,
            c.NOT_ADMITTED,
            c.PHASE_BLOCKED,
            c.RECONCILING,
            id="nothing serves",
        ),
        pytest.param(
            replace(SERVING, refused="Deployment fraud was refused by the API server: spec.replicas"),
            c.FALSE,
            c.SERVING_OBJECT_INVALID,
            c.PHASE_DEGRADED,
            c.STALLED,
            id="serving objects refused",
        ),
    ],
)
def test_ready_phase_and_kstatus_conditions_summarize_the_situation(
    situation: Situation, ready: str, reason: str, phase: str, kstatus: str | None
) -> None:
    """`kstatus`: the one of Reconciling (kstatus InProgress) and Stalled (kstatus Failed) present,
    True, with Ready's reason and message; None: neither (kstatus reads Ready)."""
    conds, got_phase = conditions(situation)

    got = by_type(conds)
    assert (got[c.READY].status, got[c.READY].reason, got_phase) == (ready, reason, phase)
    extra = [x for x in conds if x.type in (c.RECONCILING, c.STALLED)]
    assert [x.type for x in extra] == ([kstatus] if kstatus else [])
    for x in extra:
        assert (x.status, x.reason, x.message) == (c.TRUE, got[c.READY].reason, got[c.READY].message)


def test_every_domain_condition_type_is_present_with_ready_first_and_kstatus_ones_last() -> None:
    domain = [c.READY, c.APPROVED, c.EVALUATED, c.ADMITTED, c.DRIFTED, c.QUARANTINED]
    for situation, kstatus in (
        (SERVING, []),
        (replace(BLOCKED, requested=V2), [c.RECONCILING]),
        (replace(SERVING, quarantined_since="t"), [c.STALLED]),
    ):
        conds, _ = conditions(situation)
        assert [x.type for x in conds] == domain + kstatus


def test_blocked_new_revision_says_which_revision_keeps_serving() -> None:
    conds, _ = conditions(replace(BLOCKED, requested=V2))

    message = by_type(conds)[c.READY].message
    assert message.startswith("v1 is not admitted: needs bob")
    assert f"{describe(V1)} keeps serving (1/1 replicas ready)" in message


def test_suspended_revision_names_what_is_missing() -> None:
    conds, _ = conditions(replace(BLOCKED, replicas=0))

    assert "suspended (scaled to zero): v1 is not admitted: needs bob" in by_type(conds)[c.READY].message


@pytest.mark.parametrize(
    ("gates", "approved", "evaluated", "approved_reason", "evaluated_reason"),
    [
        pytest.param(
            (APPROVAL_MISSING, EVALUATION_STALE),
            False,
            False,
            c.APPROVAL_MISSING,
            c.EVALUATION_STALE,
            id="each condition names its own gate",
        ),
        pytest.param(
            (CARD_MISSING, EVALUATION_STALE),
            True,
            False,
            c.APPROVALS_GRANTED,
            c.EVALUATION_STALE,
            id="card gate does not touch Approved",
        ),
        pytest.param(
            (Gate("new approval after rollback", False, c.APPROVAL_PREDATES_QUARANTINE, "renew", "renewal"),),
            False,
            True,
            c.APPROVAL_PREDATES_QUARANTINE,
            c.EVALUATIONS_PASSED,
            id="renewal gate is an approval matter",
        ),
    ],
)
def test_approved_and_evaluated_name_the_failing_gate_of_their_kind(
    gates: tuple[Gate, ...], approved: bool, evaluated: bool, approved_reason: str, evaluated_reason: str
) -> None:
    situation = replace(BLOCKED, gates=gates, approved=approved, evaluated=evaluated)

    conds = by_type(conditions(situation)[0])

    assert conds[c.APPROVED].reason == approved_reason
    assert conds[c.EVALUATED].reason == evaluated_reason
    assert conds[c.ADMITTED] == Cond(c.ADMITTED, c.FALSE, gates[0].reason, situation.blocked_message)


def test_approved_message_joins_every_failing_approval_gate() -> None:
    other = Gate("approval role=model-risk", False, c.APPROVAL_MISSING, "needs carol", "approval")
    situation = replace(BLOCKED, gates=(APPROVAL_MISSING, EVALUATION_STALE, other))

    assert by_type(conditions(situation)[0])[c.APPROVED].message == "needs bob; needs carol"


APPROVAL_NOT_FOUND = Gate(
    "reference ModelApproval/bob-ok",
    False,
    c.APPROVAL_NOT_FOUND,
    "ModelApproval bob-ok not found",
    "approval-reference",
)
EVALUATION_NOT_FOUND = Gate(
    "reference ModelEvaluation/holdout",
    False,
    c.EVALUATION_NOT_FOUND,
    "ModelEvaluation holdout not found",
    "evaluation-reference",
)
EVALUATION_MISSING = Gate("evaluation accuracy", False, c.EVALUATION_MISSING, "needs accuracy", "evaluation")


def test_each_condition_speaks_only_of_its_own_references_and_requirements() -> None:
    gates = (APPROVAL_NOT_FOUND, EVALUATION_NOT_FOUND, APPROVAL_MISSING, EVALUATION_MISSING)
    situation = replace(BLOCKED, gates=gates, evaluated=False)

    conds = by_type(conditions(situation)[0])

    assert conds[c.APPROVED] == Cond(
        c.APPROVED, c.FALSE, c.APPROVAL_NOT_FOUND, "ModelApproval bob-ok not found; needs bob"
    )
    assert conds[c.EVALUATED] == Cond(
        c.EVALUATED, c.FALSE, c.EVALUATION_NOT_FOUND, "ModelEvaluation holdout not found; needs accuracy"
    )


@pytest.mark.parametrize(
    "gates",
    [(), (CARD_MISSING, NO_POLICY)],
    ids=["no failing gate", "only gates of another subject fail"],
)
def test_condition_false_without_a_failing_gate_of_its_own_falls_back_to_its_own_subject(
    gates: tuple[Gate, ...],
) -> None:
    situation = replace(BLOCKED, gates=gates, approved=False, evaluated=False)

    conds = by_type(conditions(situation)[0])

    assert (conds[c.APPROVED].reason, conds[c.EVALUATED].reason) == (c.APPROVAL_MISSING, c.EVALUATION_MISSING)
    assert conds[c.APPROVED].message == f"not every required approval counts for {describe(V1)}"
    assert conds[c.EVALUATED].message == f"not every required evaluation passes for {describe(V1)}"


@pytest.mark.parametrize(
    ("situation", "drifted", "quarantined"),
    [
        pytest.param(
            SERVING, (c.FALSE, c.METRICS_WITHIN_THRESHOLDS), (c.FALSE, c.NOT_QUARANTINED), id="healthy"
        ),
        pytest.param(
            replace(SERVING, drift=UNKNOWN),
            (c.UNKNOWN, c.METRICS_INCONCLUSIVE),
            (c.FALSE, c.NOT_QUARANTINED),
            id="inconclusive",
        ),
        pytest.param(
            replace(SERVING, quarantined_since="2026-12-01T12:00:00Z", drift=CLEAN),
            (c.TRUE, c.DRIFT_DETECTED),
            (c.TRUE, c.QUARANTINED_REASON),
            id="quarantined, counters reset",
        ),
        pytest.param(
            replace(BLOCKED, requested=V2, rolled_back="v2 was rolled back", drift=CLEAN),
            (c.TRUE, c.ROLLED_BACK),
            (c.FALSE, c.NOT_QUARANTINED),
            id="rolled back, counters reset",
        ),
    ],
)
def test_drifted_and_quarantined_conditions(
    situation: Situation, drifted: tuple[str, str], quarantined: tuple[str, str]
) -> None:
    conds = by_type(conditions(situation)[0])

    assert (conds[c.DRIFTED].status, conds[c.DRIFTED].reason) == drifted
    assert (conds[c.QUARANTINED].status, conds[c.QUARANTINED].reason) == quarantined


def test_quarantined_condition_says_since_when_and_how_to_get_out() -> None:
    conds = by_type(conditions(replace(SERVING, quarantined_since="2026-12-01T12:00:00Z"))[0])

    message = conds[c.QUARANTINED].message
    assert f"traffic to {describe(V1)} is cut since 2026-12-01T12:00:00Z" in message
    assert "pods are kept" in message
    assert "new ModelApproval created after" in message


def test_digests_are_shortened_for_messages() -> None:
    assert short(DIGEST) == DIGEST[:19] + "…"
    assert short("sha256:abc") == "sha256:abc"
    assert describe(V1) == f"{MODEL} 1.0.0 ({DIGEST[:19]}…)"
