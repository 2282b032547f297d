"""Property: the engine admits exactly when an independent, deliberately naive oracle says every
requirement is met, and `admitted` is always the conjunction of its gates.

Cases are drawn from small pools (roles, users, groups, digests, decisions, expiries, creation
times, seals, metric values) so that collisions are frequent: the same person approving twice,
a rejection next to approvals, evidence for the other digest, a stale or future evaluation. The
oracle works from the drawn case, not from the parsed objects, and recomputes each rule from the
product contract in the most direct way it can.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.api import conditions
from modelgate.api.v1alpha1 import ModelApproval, ModelEvaluation
from modelgate.decide.gates import GateInput, GateReport, evaluate
from tests.unit.factories import (
    DIGEST,
    NOW,
    OTHER_DIGEST,
    VERSION,
    approval_requirement,
    evaluation_requirement,
    gate_input,
    make_approval,
    make_deployment,
    make_evaluation,
    make_policy,
    rfc3339,
)

ROLES = ("ethics-board", "model-risk")
GROUPS = ("ethics-board", "model-risk", "ml-engineers")
USERS = ("alice", "bob", "carol", "dave")
METRICS = ("accuracy", "auc")
DATASETS = ("holdout", "train")
USUAL_GROUPS = {
    "alice": ("ethics-board",),
    "bob": ("ethics-board", "model-risk"),
    "carol": ("model-risk",),
    "dave": ("ml-engineers",),
}
QUARANTINE = NOW - timedelta(hours=1)
FUTURE_EDGE = timedelta(minutes=5)  # the clock skew the engine tolerates, exactly
REASONS = {v for k, v in vars(conditions).items() if k.isupper() and isinstance(v, str)}


@dataclass(frozen=True)
class ApprovalCase:
    name: str
    role: str
    decision: str
    user: str | None
    groups: tuple[str, ...]
    version: str
    digest: str
    expires: datetime | None
    created: datetime | None  # None: absent or unreadable
    created_raw: str | None
    sealed: bool


@dataclass(frozen=True)
class EvaluationCase:
    name: str
    version: str
    digest: str
    dataset: str
    metrics: dict[str, float]
    at: datetime
    sealed: bool


@dataclass(frozen=True)
class ApprovalReq:
    role: str
    users: tuple[str, ...]
    groups: tuple[str, ...]
    count: int


@dataclass(frozen=True)
class EvaluationReq:
    metric: str
    min: float | None
    max: float | None
    max_age: timedelta | None
    dataset: str | None


@dataclass(frozen=True)
class PolicyCase:
    name: str
    approvals: tuple[ApprovalReq, ...]
    evaluations: tuple[EvaluationReq, ...]
    separation: bool
    needs_limitations: bool


@dataclass(frozen=True)
class Case:
    policies: tuple[PolicyCase, ...]
    approvals: tuple[ApprovalCase, ...]
    evaluations: tuple[EvaluationCase, ...]
    ghost_reference: bool
    digest_set_by: str | None
    limitations: str
    not_before: datetime | None
    enforce_seals: bool
    allow_no_policy: bool


def subset(pool: Sequence[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(pool), unique=True, max_size=len(pool)).map(lambda xs: tuple(sorted(xs)))


# Weighted towards evidence that could count, so that the interesting rules (counting people,
# rejections, separation, the newest evaluation) are exercised often rather than masked.
LIKELY_VERSION = st.sampled_from([VERSION] * 5 + ["2.0"])
LIKELY_DIGEST = st.sampled_from([DIGEST] * 5 + [OTHER_DIGEST])
LIKELY_SEALED = st.sampled_from([True] * 5 + [False])
CREATED = st.sampled_from(
    [
        (QUARANTINE - timedelta(minutes=30), None),
        (QUARANTINE, None),
        (QUARANTINE + timedelta(minutes=30), None),
        (None, "garbage"),
        (None, None),
    ]
)


@st.composite
def approval_cases(draw: st.DrawFn, name: str) -> ApprovalCase:
    created, garbage = draw(CREATED)
    user = draw(st.sampled_from([*USERS, *USERS, None]))
    usual = USUAL_GROUPS.get(user or "", ())
    return ApprovalCase(
        name=name,
        role=draw(st.sampled_from(ROLES)),
        decision=draw(st.sampled_from(["approved"] * 4 + ["rejected"])),
        user=user,
        groups=draw(st.one_of(st.just(usual), subset(GROUPS))),
        version=draw(LIKELY_VERSION),
        digest=draw(LIKELY_DIGEST),
        expires=draw(st.sampled_from([None, None, NOW - timedelta(days=1), NOW, NOW + timedelta(days=1)])),
        created=created,
        created_raw=garbage if created is None else rfc3339(created),
        sealed=draw(LIKELY_SEALED),
    )


@st.composite
def evaluation_cases(draw: st.DrawFn, name: str) -> EvaluationCase:
    return EvaluationCase(
        name=name,
        version=draw(LIKELY_VERSION),
        digest=draw(LIKELY_DIGEST),
        dataset=draw(st.sampled_from(DATASETS)),
        metrics=draw(
            st.dictionaries(st.sampled_from(METRICS), st.sampled_from([0.4, 0.9, 0.97]), min_size=1)
        ),
        at=NOW
        + draw(
            st.sampled_from(
                [
                    -timedelta(days=20),
                    -timedelta(days=10),
                    -timedelta(days=2),
                    FUTURE_EDGE,
                    timedelta(hours=1),
                ]
            )
        ),
        sealed=draw(LIKELY_SEALED),
    )


APPROVAL_REQS = st.builds(
    ApprovalReq,
    role=st.sampled_from(ROLES),
    users=subset(USERS),
    groups=subset(GROUPS),
    count=st.integers(1, 2),
).filter(lambda r: bool(r.users or r.groups))

EVALUATION_REQS = st.builds(
    EvaluationReq,
    metric=st.sampled_from(METRICS),
    min=st.sampled_from([None, 0.5, 0.9]),
    max=st.sampled_from([None, 0.95]),
    max_age=st.sampled_from([None, timedelta(days=10)]),
    dataset=st.sampled_from([None, "holdout"]),
)


@st.composite
def policy_cases(draw: st.DrawFn, name: str) -> PolicyCase:
    approvals = draw(st.lists(APPROVAL_REQS, min_size=1, max_size=2, unique_by=lambda r: r.role))
    return PolicyCase(
        name=name,
        approvals=tuple(approvals),
        evaluations=tuple(draw(st.lists(EVALUATION_REQS, max_size=2))),
        separation=draw(st.booleans()),
        needs_limitations=draw(st.booleans()),
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n_policies = draw(st.sampled_from([0, 1, 1, 1, 2, 2]))
    return Case(
        policies=tuple(draw(policy_cases(f"p{i}")) for i in range(n_policies)),
        approvals=tuple(draw(approval_cases(f"a{i}")) for i in range(draw(st.integers(0, 6)))),
        evaluations=tuple(draw(evaluation_cases(f"e{i}")) for i in range(draw(st.integers(0, 3)))),
        ghost_reference=draw(st.sampled_from([False] * 5 + [True])),
        digest_set_by=draw(st.sampled_from([*USERS, None])),
        limitations=draw(st.sampled_from(["EU only."] * 5 + [""])),
        not_before=draw(st.sampled_from([None, QUARANTINE])),
        enforce_seals=draw(st.booleans()),
        allow_no_policy=draw(st.booleans()),
    )


# --- building the engine's input from a case ------------------------------------------------------


def build_and_evaluate(case: Case) -> GateReport:
    return evaluate(build_input(case))


def build_input(
    case: Case,
    extra_approvals: Sequence[ModelApproval] = (),
    extra_evaluations: Sequence[ModelEvaluation] = (),
) -> GateInput:
    """The engine's input for a case, plus evidence the deployment does not reference."""
    approvals = [
        make_approval(
            a.name,
            role=a.role,
            decision=a.decision,
            username=a.user,
            groups=a.groups,
            version=a.version,
            digest=a.digest,
            expires_at=a.expires,
            created_at=a.created_raw,
            seal="good" if a.sealed else "bad",
        )
        for a in case.approvals
    ]
    evaluations = [
        make_evaluation(
            e.name,
            metrics=e.metrics,
            dataset=e.dataset,
            evaluated_at=e.at,
            version=e.version,
            digest=e.digest,
            seal="good" if e.sealed else "bad",
        )
        for e in case.evaluations
    ]
    ghost = ["ghost"] if case.ghost_reference else []
    deployment = make_deployment(
        approvals=[a.name for a in case.approvals] + ghost,
        evaluations=[e.name for e in case.evaluations],
        digest_set_by=case.digest_set_by,
        card={"limitations": case.limitations},
    )
    policies = [
        make_policy(
            p.name,
            required_card_fields=["limitations"] if p.needs_limitations else [],
            approvals=[
                approval_requirement(r.role, users=r.users, groups=r.groups, count=r.count)
                for r in p.approvals
            ],
            evaluations=[
                evaluation_requirement(
                    r.metric,
                    min=r.min,
                    max=r.max,
                    max_age=None if r.max_age is None else f"{r.max_age.days}d",
                    dataset=r.dataset,
                )
                for r in p.evaluations
            ],
            separation_of_duties=p.separation,
        )
        for p in case.policies
    ]

    def seal_ok(obj: ModelApproval | ModelEvaluation) -> bool:
        return obj.spec.seal == "good"

    return gate_input(
        deployment,
        policies,
        [*approvals, *extra_approvals],
        [*evaluations, *extra_evaluations],
        allow_no_policy=case.allow_no_policy,
        not_before=case.not_before,
        seal_ok=seal_ok if case.enforce_seals else None,
    )


# --- the oracle -----------------------------------------------------------------------------------


def exact(version: str, digest: str) -> bool:
    return version == VERSION and digest == DIGEST


def seal_fine(case: Case, sealed: bool) -> bool:
    return sealed or not case.enforce_seals


def may_decide(req: ApprovalReq, a: ApprovalCase) -> bool:
    return a.user is not None and (a.user in req.users or any(g in req.groups for g in a.groups))


def approval_met(case: Case, req: ApprovalReq) -> bool:
    separation = any(p.separation for p in case.policies)
    decisive = [
        a
        for a in case.approvals
        if a.role == req.role
        and exact(a.version, a.digest)
        and seal_fine(case, a.sealed)
        and may_decide(req, a)
    ]
    if any(a.decision == "rejected" for a in decisive):
        return False
    people = {
        a.user
        for a in decisive
        if a.decision == "approved"
        and (a.expires is None or a.expires > NOW)
        and (case.not_before is None or (a.created is not None and a.created >= case.not_before))
        and not (separation and a.user == case.digest_set_by)
    }
    return len(people) >= req.count


def evaluation_met(case: Case, req: EvaluationReq) -> bool:
    usable = [
        e
        for e in case.evaluations
        if exact(e.version, e.digest)
        and seal_fine(case, e.sealed)
        and req.metric in e.metrics
        and (req.dataset is None or e.dataset == req.dataset)
        and e.at <= NOW + timedelta(minutes=5)
        and (req.max_age is None or e.at + req.max_age > NOW)
    ]
    if not usable:
        return False
    # The newest evaluation of each dataset decides; every one of them must pass.
    datasets = {e.dataset for e in usable}
    newest = [max((e for e in usable if e.dataset == d), key=lambda e: (e.at, e.name)) for d in datasets]
    values = [e.metrics[req.metric] for e in newest]
    return all((req.min is None or v >= req.min) and (req.max is None or v <= req.max) for v in values)


def oracle(case: Case) -> tuple[bool, bool, bool]:
    """(admitted, approved, evaluated) as the product contract defines them."""
    approved = (
        not case.ghost_reference
        and all(approval_met(case, r) for p in case.policies for r in p.approvals)
        and not (any(p.separation for p in case.policies) and case.digest_set_by is None)
    )
    evaluated = all(evaluation_met(case, r) for p in case.policies for r in p.evaluations)
    card = not (case.limitations == "" and any(p.needs_limitations for p in case.policies))
    policy = bool(case.policies) or case.allow_no_policy
    return approved and evaluated and card and policy, approved, evaluated


@settings(max_examples=400, deadline=None)
@given(cases())
def test_engine_admits_exactly_when_the_oracle_does(case: Case) -> None:
    report = build_and_evaluate(case)

    assert report.admitted == all(g.satisfied for g in report.gates)
    assert (report.admitted, report.approved, report.evaluated) == oracle(case)


@settings(max_examples=400, deadline=None)
@given(cases())
def test_each_requirement_gate_agrees_with_the_oracle(case: Case) -> None:
    report = build_and_evaluate(case)
    verdicts = {g.requirement: g.satisfied for g in report.gates}

    for p in case.policies:
        for a in p.approvals:
            assert verdicts[f"approval role={a.role} (policy {p.name})"] == approval_met(case, a), a
        # Two requirements on one metric share a gate name; the policy must pass both.
        by_metric: dict[str, bool] = {}
        for e in p.evaluations:
            by_metric[e.metric] = by_metric.get(e.metric, True) and evaluation_met(case, e)
        for metric, met in by_metric.items():
            same = [g for g in report.gates if g.requirement == f"evaluation {metric} (policy {p.name})"]
            assert all(g.satisfied for g in same) == met
    if any(p.separation for p in case.policies):
        assert verdicts["separation of duties"] == (case.digest_set_by is not None)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_every_gate_is_explained_and_the_report_is_consistent(case: Case) -> None:
    report = build_and_evaluate(case)

    assert report.failures == tuple(g for g in report.gates if not g.satisfied)
    for gate in report.gates:
        assert gate.reason in REASONS and gate.message and gate.requirement
        assert len(gate.message) <= 4096
    assert report.next_change is None or report.next_change > NOW
    assert set(report.counted_approvals) <= {a.name for a in case.approvals}
    for name in report.counted_approvals:
        counted = next(a for a in case.approvals if a.name == name)
        assert exact(counted.version, counted.digest) and counted.decision == "approved"
    assert report == build_and_evaluate(case)  # deterministic
