"""`explain` and `wait`'s decisions (decide/explain.py), fed the gates the real engine writes, so a
change of wording in decide/gates.py that explain no longer recognises fails here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide.explain import (
    ADMIN,
    DEPLOYER,
    EVALUATOR,
    Step,
    blocking_reason,
    explain,
    progress,
    reached,
)
from modelgate.decide.gates import evaluate
from tests.unit.factories import (
    NOW,
    approval_requirement,
    evaluation_requirement,
    gate_input,
    make_approval,
    make_deployment,
    make_evaluation,
    make_policy,
    rfc3339,
)

ETHICS = approval_requirement("ethics-board", groups=["ethics-board"])
APPROVE = "kubectl modelgate approve fraud-detector -n fraud-prod --role"


def judged(
    md: ModelDeployment,
    policies: Sequence[GovernancePolicy],
    approvals: Sequence[ModelApproval] = (),
    evaluations: Sequence[ModelEvaluation] = (),
    *,
    generation: int = 1,
    observed: int = 1,
    ready: str = c.FALSE,
) -> ModelDeployment:
    """`md` with the status the operator would write: the engine's gates, phase and conditions."""
    report = evaluate(gate_input(md, policies, approvals, evaluations))
    admitted = report.admitted
    phase = c.PHASE_BLOCKED if not admitted else (c.PHASE_SERVING if ready == c.TRUE else c.PHASE_PROGRESSING)
    status = {
        "observedGeneration": observed,
        "phase": phase,
        "conditions": [
            _condition(c.ADMITTED, c.TRUE if admitted else c.FALSE, observed, "GatesFailed: see gates"),
            _condition(c.READY, ready if admitted else c.FALSE, observed, "0/2 replicas ready"),
        ],
        "gates": [
            {"requirement": g.requirement, "satisfied": g.satisfied, "reason": g.reason, "message": g.message}
            for g in report.gates
        ],
    }
    raw = md.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["metadata"]["generation"] = generation
    raw["status"] = status
    return ModelDeployment.model_validate(raw)


def _condition(ctype: str, status: str, generation: int, message: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": rfc3339(NOW),
        "reason": "Test",
        "message": message,
    }


def only_step(md: ModelDeployment, policies: Sequence[GovernancePolicy]) -> Step:
    steps = explain(md, policies).steps
    assert len(steps) == 1, steps
    return steps[0]


def test_a_missing_approval_gives_the_approve_command_and_the_policys_approvers() -> None:
    policy = make_policy(approvals=[approval_requirement("model-risk", users=["carol"], groups=["mr"])])
    md = judged(make_deployment(), [policy])

    step = only_step(md, [policy])

    assert step.command == f"{APPROVE} model-risk"
    assert step.who == "role model-risk of policy prod-governance: user carol or group mr"
    assert step.missing.startswith("approval role=model-risk (policy prod-governance): needs")


def test_the_summary_counts_what_is_missing_and_names_the_phase() -> None:
    policy = make_policy(approvals=[ETHICS], evaluations=[evaluation_requirement(min=0.9)])

    result = explain(judged(make_deployment(), [policy]), [policy])

    assert not result.serving
    assert result.summary.endswith("is not serving (phase Blocked): 2 things missing.")


def test_a_rejection_is_withdrawn_only_by_its_author_deleting_it() -> None:
    policy = make_policy(approvals=[ETHICS])
    no = make_approval("bob-no", decision="rejected", comment="bias on segment B")
    md = judged(make_deployment(), [policy], [no])

    step = only_step(md, [policy])

    assert step.command == "kubectl delete modelapproval bob-no -n fraud-prod"
    assert step.who.startswith("bob, who rejected it")


def test_a_missing_evaluation_gives_a_create_command_for_the_exact_digest_and_the_evaluators() -> None:
    policy = make_policy(
        evaluations=[evaluation_requirement("auc", min=0.8, dataset="holdout")],
        evaluators={"groups": ["ml-eval"]},
    )
    md = judged(make_deployment(), [policy])

    step = only_step(md, [policy])

    assert step.command.startswith("kubectl create -n fraud-prod -f - <<< '")
    assert md.spec.model.digest in step.command and '"auc":"VALUE"' in step.command
    assert '"name":"holdout"' in step.command
    assert step.who == "evaluators of policy prod-governance: group ml-eval"


def test_without_evaluators_anyone_with_the_evaluator_role_may_submit() -> None:
    policy = make_policy(evaluations=[evaluation_requirement("accuracy", min=0.9)])

    assert only_step(judged(make_deployment(), [policy]), [policy]).who == EVALUATOR


def test_a_missing_card_field_is_the_deployers_patch() -> None:
    policy = make_policy(required_card_fields=["limitations"])
    md = judged(make_deployment(card={"limitations": None}), [policy])

    step = only_step(md, [policy])

    assert step.command == (
        "kubectl patch modeldeployment fraud-detector -n fraud-prod --type merge "
        """-p '{"spec":{"card":{"limitations":"..."}}}'"""
    )
    assert step.who == DEPLOYER


def test_no_policy_is_for_a_cluster_admin() -> None:
    step = only_step(judged(make_deployment(), []), [])

    assert step.who == ADMIN and step.command.startswith("kubectl apply -f <governancepolicy.yaml>")


def test_separation_of_duties_excludes_the_identity_that_set_the_digest() -> None:
    policy = make_policy(approvals=[ETHICS], separation_of_duties=True)
    own = make_approval("dave-ok", username="dave")
    md = judged(make_deployment(digest_set_by="dave"), [policy], [own])

    steps = explain(md, [policy]).steps

    assert [s.command for s in steps] == [f"{APPROVE} ethics-board"]
    assert steps[0].who.endswith("except dave (set the digest)")


def test_a_risk_level_confirmation_asks_for_the_cards_level() -> None:
    policy = make_policy(approvals=[ETHICS], riskLevelConfirmation={"role": "ethics-board"})
    unconfirmed = make_approval("bob-ok")
    md = judged(make_deployment(), [policy], [unconfirmed])

    commands = [s.command for s in explain(md, [policy]).steps]

    assert f"{APPROVE} ethics-board --risk-level high" in commands


def test_a_missing_reference_is_removed_from_the_spec_by_its_index() -> None:
    policy = make_policy(approvals=[ETHICS])
    ok = make_approval("bob-ok")
    md = judged(make_deployment(approvals=["bob-ok", "ghost"]), [policy], [ok])

    step = only_step(md, [policy])

    assert step.command.endswith("""--type json -p '[{"op":"remove","path":"/spec/approvals/1"}]'""")
    assert "ModelApproval ghost" in step.who


def test_every_gate_the_engine_fails_is_recognised() -> None:
    """A deployment failing every kind of gate at once: no step falls back to `describe`."""
    policy = make_policy(
        required_card_fields=["limitations"],
        approvals=[ETHICS, approval_requirement("model-risk", groups=["mr"])],
        evaluations=[evaluation_requirement("accuracy", min=0.9)],
        separation_of_duties=True,
        riskLevelConfirmation={"role": "ethics-board"},
    )
    md = make_deployment(
        card={"limitations": None}, approvals=["ghost"], evaluations=["gone"], digest_set_by=None
    )
    bad = make_evaluation("low", metrics={"accuracy": 0.5})
    steps = explain(judged(md, [policy], [], [bad]), [policy]).steps

    assert len(steps) >= 7, steps
    assert not [s for s in steps if s.command.startswith("kubectl describe")], steps


def test_an_admitted_model_not_yet_ready_waits_for_its_rollout() -> None:
    policy = make_policy(approvals=[ETHICS])
    md = judged(make_deployment(), [policy], [make_approval("bob-ok")])

    step = only_step(md, [policy])

    assert step.command == "kubectl rollout status deployment/fraud-detector -n fraud-prod"
    assert step.missing == "serving is not ready: 0/2 replicas ready"


def test_a_serving_model_misses_nothing() -> None:
    policy = make_policy(approvals=[ETHICS])
    md = judged(make_deployment(), [policy], [make_approval("bob-ok")], ready=c.TRUE)

    result = explain(md, [policy])

    assert result.serving and result.steps == ()
    assert result.summary.endswith("is Serving: nothing is missing.")


def test_a_status_older_than_the_spec_says_the_operator_has_not_judged_it() -> None:
    policy = make_policy(approvals=[ETHICS])
    md = judged(make_deployment(), [policy], generation=3, observed=2)

    (step,) = explain(md, [policy]).steps

    assert step.missing == "the operator has not judged generation 3 yet (last judged: 2)"
    assert "modelgate-operator" in step.command


def test_an_unreadable_policy_still_gives_the_command_and_names_the_policy() -> None:
    policy = make_policy(approvals=[ETHICS])
    md = judged(make_deployment(), [policy])

    step = only_step(md, [])

    assert step.command == f"{APPROVE} ethics-board"
    assert step.who == "role ethics-board: see GovernancePolicy prod-governance (could not be read)"


def test_a_renewal_after_quarantine_asks_for_a_new_approval() -> None:
    policy = make_policy(approvals=[ETHICS])
    md = judged(make_deployment(), [policy], [make_approval("bob-ok")])
    raw = md.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["status"]["gates"].append(
        {
            "requirement": "new approval after quarantine",
            "satisfied": False,
            "reason": c.APPROVAL_PREDATES_QUARANTINE,
            "message": "withdrawn by a quarantine",
        }
    )
    step = only_step(ModelDeployment.model_validate(raw), [policy])

    assert step.command == f"{APPROVE} ethics-board"
    assert step.who == "role ethics-board of policy prod-governance: group ethics-board"


# --- wait -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approved", "ready", "generation", "expected"),
    [
        (False, c.FALSE, 1, {"blocked"}),
        (True, c.FALSE, 1, {"admitted"}),
        (True, c.TRUE, 1, {"admitted", "ready", "serving"}),
        (True, c.TRUE, 2, set()),  # the status speaks of generation 1: nothing is reached for 2
    ],
)
def test_reached_judges_the_current_generation_only(
    approved: bool, ready: str, generation: int, expected: set[str]
) -> None:
    policy = make_policy(approvals=[ETHICS])
    approvals = [make_approval("bob-ok")] if approved else []
    md = judged(make_deployment(), [policy], approvals, ready=ready, generation=generation)

    assert {t for t in ("admitted", "serving", "ready", "blocked") if reached(md, t)} == expected


def test_progress_names_the_phase_the_gates_and_the_first_blocking_gate() -> None:
    policy = make_policy(approvals=[ETHICS], evaluations=[evaluation_requirement(min=0.9)])
    md = judged(make_deployment(), [policy])

    line = progress(md)

    assert line.startswith("fraud-detector: Blocked, gates 0/2, approval role=ethics-board (policy")
    assert line.endswith("(+1 more)")
    assert blocking_reason(judged(make_deployment(), [policy], generation=2)).startswith(
        "the operator has not judged generation 2"
    )
