"""Evaluation requirements: a metric of exactly this revision, measured recently enough on the right
dataset by an allowed evaluator, within the policy's thresholds.

Every ModelEvaluation of the model counts, referenced or not: the deployer does not choose the
evidence. One counts for a requirement {metric, min, max, maxAge, dataset} only if it passes an
ordered chain of checks: bound to the model name and version, bound to the digest, bound to the
revision (spec.model.revision), sealed (when sealing is enforced), submitted by an allowed evaluator
(when the policy lists `evaluators`; spec.submittedBy is stamped by the webhook), reports the metric
(a NaN is not a report), measured on the required dataset (when the requirement names one), not
dated in the future beyond CLOCK_SKEW (an evaluation from the future would stay fresh forever), and
not older than maxAge (when set), counted from the earlier of evaluatedAt and the API server's
creationTimestamp (a client cannot make an old measurement young by dating it later).

Of the evaluations that count, the newest per dataset (by evaluatedAt, then by name) decides, and
every dataset's newest must meet min <= value <= max: a newer measurement supersedes an older one
even when the older one looked better, so the result cannot be improved by submitting or
referencing an old favourable evaluation, nor by measuring on another dataset. A requirement with
`slices` also holds that evaluation to its slices (decide/fairness.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import EvaluationRequirement, ModelEvaluation, parse_duration
from modelgate.decide.approvals import approver_allowed, describe_approvers
from modelgate.decide.evidence import (
    CLOCK_SKEW,
    Check,
    Context,
    Miss,
    Outcome,
    bound_to_digest,
    bound_to_model,
    bound_to_revision,
    closest_reason,
    created_at,
    first_miss,
    not_counted,
    sealed,
    timestamp,
)
from modelgate.decide.fairness import check_slices, describe_slices


def describe_requirement(req: EvaluationRequirement) -> str:
    """ "accuracy >= 0.9 on dataset holdout, at most 30d old"."""
    if req.min is not None and req.max is not None:
        text = f"{_num(req.min)} <= {req.metric} <= {_num(req.max)}"
    elif req.min is not None:
        text = f"{req.metric} >= {_num(req.min)}"
    elif req.max is not None:
        text = f"{req.metric} <= {_num(req.max)}"
    else:
        text = f"{req.metric} (any value)"
    if req.dataset is not None:
        text += f" on dataset {req.dataset}"
    if req.max_age is not None:
        text += f", at most {req.max_age} old"
    if req.slices is not None:
        text += f", {describe_slices(req.slices)}"
    return text


# --- the checks -----------------------------------------------------------------------------------


def _submitter_allowed(evaluation: ModelEvaluation, _: EvaluationRequirement, ctx: Context) -> Miss | None:
    if ctx.evaluators is None:
        return None
    identity = evaluation.spec.submitted_by
    allowed = describe_approvers(ctx.evaluators).removeprefix("from ")
    if identity is None:
        return Miss(
            r.EVALUATOR_NOT_AUTHORIZED,
            f"ModelEvaluation {evaluation.name} has no submittedBy, so its submitter is unknown "
            f"(evaluators: {allowed})",
        )
    if approver_allowed(identity, ctx.evaluators):
        return None
    return Miss(
        r.EVALUATOR_NOT_AUTHORIZED,
        f"ModelEvaluation {evaluation.name} was submitted by {identity.username}, who is not an "
        f"evaluator (evaluators: {allowed})",
    )


def _reports_metric(evaluation: ModelEvaluation, req: EvaluationRequirement, _: Context) -> Miss | None:
    value = evaluation.spec.metrics.get(req.metric)
    if value is not None and not math.isnan(value):
        return None
    what = "reports NaN for" if value is not None else "does not report"
    return Miss(r.METRIC_NOT_REPORTED, f"ModelEvaluation {evaluation.name} {what} {req.metric}")


def _on_dataset(evaluation: ModelEvaluation, req: EvaluationRequirement, _: Context) -> Miss | None:
    if req.dataset is None or evaluation.spec.dataset.name == req.dataset:
        return None
    return Miss(
        r.EVALUATION_MISSING,
        f"ModelEvaluation {evaluation.name} was measured on dataset {evaluation.spec.dataset.name} "
        f"not {req.dataset}",
    )


def _not_from_future(evaluation: ModelEvaluation, _: EvaluationRequirement, ctx: Context) -> Miss | None:
    evaluated = evaluation.spec.evaluated_at
    if evaluated <= ctx.now + CLOCK_SKEW:
        return None
    return Miss(
        r.EVALUATION_MISSING,
        # No "now" in the message: it would change on every reconcile and churn status.
        f"ModelEvaluation {evaluation.name} is dated {timestamp(evaluated)}, more than "
        f"{int(CLOCK_SKEW.total_seconds() // 60)} minutes in the future",
    )


def _fresh(evaluation: ModelEvaluation, req: EvaluationRequirement, ctx: Context) -> Miss | None:
    stale_at = _stale_at(evaluation, req)
    if stale_at is None or stale_at > ctx.now:
        return None
    return Miss(
        r.EVALUATION_STALE,
        f"ModelEvaluation {evaluation.name} {_dated(evaluation)}, "
        f"more than maxAge {req.max_age} ago (stale since {timestamp(stale_at)})",
    )


CHAIN: tuple[Check[ModelEvaluation, EvaluationRequirement], ...] = (
    bound_to_model,
    bound_to_digest,
    bound_to_revision,
    sealed,
    _submitter_allowed,
    _reports_metric,
    _on_dataset,
    _not_from_future,
    _fresh,
)
_FUTURE_DEPTH = CHAIN.index(_not_from_future)


# --- one requirement ------------------------------------------------------------------------------


def check_evaluation_requirement(
    req: EvaluationRequirement, evaluations: Sequence[ModelEvaluation], ctx: Context
) -> Outcome:
    """The verdict on one evaluation requirement, from every evaluation of the model (in name order)."""
    valid: list[ModelEvaluation] = []
    misses: list[tuple[int, Miss]] = []
    changes_at: list[datetime] = []
    for evaluation in evaluations:
        miss = first_miss(CHAIN, evaluation, req, ctx)
        if miss is None:
            valid.append(evaluation)
            changes_at += [t for t in [_stale_at(evaluation, req)] if t is not None]
        else:
            misses.append(miss)
            if miss[0] == _FUTURE_DEPTH:  # it starts counting once the clock catches up
                changes_at.append(evaluation.spec.evaluated_at - CLOCK_SKEW)
    wanted = f"an evaluation of {ctx.subject} reporting {describe_requirement(req)}"
    if not valid:
        reason = closest_reason(misses, r.EVALUATION_MISSING)
        return Outcome(
            False, reason, f"needs {wanted}; found none{not_counted(misses)}", (), tuple(changes_at)
        )
    deciding = _newest_per_dataset(valid)
    verdicts = [_threshold(e, req) for e in deciding]
    failing = [(reason, text) for reason, text in verdicts if reason != r.EVALUATIONS_PASSED]
    shown = failing or verdicts
    return Outcome(
        not failing,
        shown[0][0],
        "; ".join(text for _, text in shown),
        tuple(e.name for e in deciding),
        tuple(changes_at),
    )


def _newest_per_dataset(valid: Sequence[ModelEvaluation]) -> list[ModelEvaluation]:
    """The newest evaluation (by evaluatedAt, then name) of each dataset, sorted by dataset name."""
    newest: dict[str, ModelEvaluation] = {}
    for e in valid:
        best = newest.get(e.spec.dataset.name)
        if best is None or (e.spec.evaluated_at, e.name) > (best.spec.evaluated_at, best.name):
            newest[e.spec.dataset.name] = e
    return [newest[d] for d in sorted(newest)]


def _threshold(evaluation: ModelEvaluation, req: EvaluationRequirement) -> tuple[str, str]:
    value = evaluation.spec.metrics[req.metric]
    reports = (
        f"ModelEvaluation {evaluation.name} (dataset {evaluation.spec.dataset.name}, evaluated at "
        f"{timestamp(evaluation.spec.evaluated_at)}) reports {req.metric} {_num(value)}"
    )
    if req.min is not None and value < req.min:
        return r.METRIC_BELOW_MINIMUM, f"{reports}, below the minimum {_num(req.min)}"
    if req.max is not None and value > req.max:
        return r.METRIC_ABOVE_MAXIMUM, f"{reports}, above the maximum {_num(req.max)}"
    met = f"{reports}, meeting {describe_requirement(req)}"
    if req.slices is None:
        return r.EVALUATIONS_PASSED, met
    reason, slices = check_slices(evaluation.name, evaluation.spec.slices or [], req.metric, req.slices)
    return reason, f"{met}; {slices}"


def _measured_at(evaluation: ModelEvaluation) -> datetime:
    """The earlier of evaluatedAt (written by the client) and creationTimestamp (by the server)."""
    created = created_at(evaluation)
    evaluated = evaluation.spec.evaluated_at
    return evaluated if created is None or evaluated <= created else created


def _dated(evaluation: ModelEvaluation) -> str:
    measured, evaluated = _measured_at(evaluation), evaluation.spec.evaluated_at
    if measured == evaluated:
        return f"was evaluated at {timestamp(evaluated)}"
    return f"was created at {timestamp(measured)}, before its evaluatedAt {timestamp(evaluated)}"


def _stale_at(evaluation: ModelEvaluation, req: EvaluationRequirement) -> datetime | None:
    if req.max_age is None:
        return None
    return _measured_at(evaluation) + parse_duration(req.max_age)


def _num(value: float) -> str:
    """Shortest exact form (0.9, 0.94), integers without a trailing .0."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
