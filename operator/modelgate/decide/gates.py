"""The admission gate engine: does the evidence a ModelDeployment references satisfy every policy in
force?

`evaluate` turns a frozen snapshot (the deployment, the selected policies, the referenced approvals
and evaluations as found, `now`) into a `GateReport`: one Gate per requirement, each naming exactly
what is missing. It is pure and deterministic: equal inputs give equal reports, in the same order,
so status written from a report does not churn.

Gates come in a fixed order, the order a reviewer would check by hand:

1. policy     - at least one GovernancePolicy is in force (NoPolicy), unless the operator flag
                allow_no_policy relaxes it;
2. card       - one gate per model card field any policy requires (CardFieldMissing);
3. reference  - one failed gate per referenced ModelApproval / ModelEvaluation that does not exist;
4. approval   - one gate per approval requirement per policy (modelgate.decide.approvals);
5. separation - one gate when any policy demands separation of duties;
6. evaluation - one gate per evaluation requirement per policy (modelgate.decide.evaluations).

Policies are taken in name order and requirements in the order the policy lists them; a requirement
shared by two policies is checked once for each, and each gate names its policy. Everything fails
closed: a missing object, a missing field, an unknown identity or an unreadable timestamp never
counts as evidence. Admission requires every gate to be satisfied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide.approvals import check_approval_requirement, check_separation
from modelgate.decide.evaluations import check_evaluation_requirement
from modelgate.decide.evidence import Context, Outcome, clip, plural, require_aware

GateKind = Literal["policy", "card", "reference", "approval", "evaluation", "separation", "renewal"]
"""`renewal` gates are added by the plan after a rollback or quarantine (decide/plan.py)."""

CARD_FIELDS: Final = {
    "owner": "owner",
    "intendedUse": "intended_use",
    "limitations": "limitations",
    "trainingData": "training_data",
    "riskLevel": "risk_level",
}
"""Card fields a policy may require (wire name -> attribute), in the order their gates appear."""


@dataclass(frozen=True)
class Gate:
    """The outcome of one admission requirement (status.gates[] plus its kind)."""

    requirement: str
    """What is required: "card.limitations", "approval role=ethics-board (policy prod)", ..."""
    satisfied: bool
    reason: str
    """CamelCase reason from modelgate.api.conditions."""
    message: str
    """Exactly what is missing or wrong, or what satisfied the requirement."""
    kind: GateKind


@dataclass(frozen=True)
class GateInput:
    """Everything a gate decision depends on, gathered beforehand."""

    deployment: ModelDeployment
    policies: Sequence[GovernancePolicy]
    """The policies in force, as select_policies returns them."""
    approvals: Mapping[str, ModelApproval | None]
    """Every name in spec.approvals -> the object, or None when it does not exist."""
    evaluations: Mapping[str, ModelEvaluation | None]
    """Every name in spec.evaluations -> the object, or None when it does not exist."""
    now: datetime
    allow_no_policy: bool = False
    not_before: datetime | None = None
    """Approvals created before this instant do not count (set after a quarantine or rollback)."""
    seal_ok: Callable[[ModelApproval | ModelEvaluation], bool] | None = None
    """Verifies the webhook's seal; None when sealing is not enforced."""


@dataclass(frozen=True)
class GateReport:
    """The verdict on a deployment: every gate, and the summaries the reconciler acts on."""

    gates: tuple[Gate, ...]
    admitted: bool
    """Every gate is satisfied (which includes at least one policy, unless allow_no_policy)."""
    approved: bool
    """Every approval, separation and approval-reference gate is satisfied (vacuously with none)."""
    evaluated: bool
    """Every evaluation and evaluation-reference gate is satisfied (vacuously with none)."""
    on_revocation: Literal["suspend", "keep"]
    """suspend if any policy in force says so, or if none is in force; else keep."""
    next_change: datetime | None
    """The earliest instant after `now` at which the verdict can change by itself (an approval
    expiring, an evaluation going stale or its date coming within reach): re-evaluate then."""
    counted_approvals: tuple[str, ...]
    """Names of the approvals counted towards a requirement, sorted (evidence for the audit log)."""
    counted_evaluations: tuple[str, ...]
    """Names of the evaluations that decided a requirement, sorted."""

    @property
    def failures(self) -> tuple[Gate, ...]:
        """The unsatisfied gates, in gate order."""
        return tuple(g for g in self.gates if not g.satisfied)


def evaluate(inp: GateInput) -> GateReport:
    """Check the deployment's evidence against every policy in force."""
    policies = sorted(inp.policies, key=lambda p: p.name)
    ctx = _context(inp, policies)
    spec = inp.deployment.spec
    approvals = [a for a in (inp.approvals.get(ref.name) for ref in spec.approvals) if a is not None]
    evaluations = [e for e in (inp.evaluations.get(ref.name) for ref in spec.evaluations) if e is not None]

    approval_refs = _missing_references(
        "ModelApproval", [ref.name for ref in spec.approvals], inp.approvals, ctx
    )
    evaluation_refs = _missing_references(
        "ModelEvaluation", [ref.name for ref in spec.evaluations], inp.evaluations, ctx
    )
    approval_outcomes = [
        (f"approval role={req.role} (policy {p.name})", check_approval_requirement(req, approvals, ctx))
        for p in policies
        for req in p.spec.approvals
    ]
    separation = check_separation(policies, approvals, ctx)
    separation_outcomes = [] if separation is None else [("separation of duties", separation)]
    evaluation_outcomes = [
        (f"evaluation {req.metric} (policy {p.name})", check_evaluation_requirement(req, evaluations, ctx))
        for p in policies
        for req in p.spec.evaluations
    ]

    approval_gates = [_gate(name, o, "approval") for name, o in approval_outcomes]
    separation_gates = [_gate(name, o, "separation") for name, o in separation_outcomes]
    evaluation_gates = [_gate(name, o, "evaluation") for name, o in evaluation_outcomes]
    gates = (
        *_policy_gates(inp, policies, ctx),
        *_card_gates(inp.deployment, policies),
        *approval_refs,
        *evaluation_refs,
        *approval_gates,
        *separation_gates,
        *evaluation_gates,
    )
    outcomes = [o for _, o in (*approval_outcomes, *evaluation_outcomes)]
    return GateReport(
        gates=gates,
        admitted=all(g.satisfied for g in gates),
        approved=all(g.satisfied for g in (*approval_refs, *approval_gates, *separation_gates)),
        evaluated=all(g.satisfied for g in (*evaluation_refs, *evaluation_gates)),
        on_revocation=_on_revocation(policies),
        next_change=min((t for o in outcomes for t in o.changes_at if t > ctx.now), default=None),
        counted_approvals=_names(o for _, o in approval_outcomes),
        counted_evaluations=_names(o for _, o in evaluation_outcomes),
    )


def _context(inp: GateInput, policies: Sequence[GovernancePolicy]) -> Context:
    spec = inp.deployment.spec
    return Context(
        model=spec.model.name,
        version=spec.model.version,
        digest=spec.model.digest,
        namespace=inp.deployment.namespace or "(unknown)",
        now=require_aware(inp.now, "now"),
        not_before=None if inp.not_before is None else require_aware(inp.not_before, "not_before"),
        seal_ok=inp.seal_ok,
        separation=any(p.spec.separation_of_duties for p in policies),
        digest_set_by=None if spec.digest_set_by is None else spec.digest_set_by.username,
    )


def _gate(requirement: str, outcome: Outcome, kind: GateKind) -> Gate:
    return Gate(requirement, outcome.satisfied, outcome.reason, clip(outcome.message), kind)


def _policy_gates(inp: GateInput, policies: Sequence[GovernancePolicy], ctx: Context) -> list[Gate]:
    """No gate when policies are in force; otherwise NoPolicy, satisfied only by the operator flag."""
    if policies:
        return []
    scope = f"namespace {ctx.namespace} and risk level {inp.deployment.spec.card.risk_level}"
    if inp.allow_no_policy:
        message = f"no GovernancePolicy selects {scope}; admitted without policy by operator flag"
        return [Gate("policy", True, r.NO_POLICY, message, "policy")]
    return [Gate("policy", False, r.NO_POLICY, f"no GovernancePolicy selects {scope}", "policy")]


def _card_gates(deployment: ModelDeployment, policies: Sequence[GovernancePolicy]) -> list[Gate]:
    """One gate per required card field, naming the policies that require it."""
    gates = []
    for wire, attribute in CARD_FIELDS.items():
        requiring = [p.name for p in policies if wire in p.spec.required_card_fields]
        if not requiring:
            continue
        value = getattr(deployment.spec.card, attribute)
        required_by = f"required by {plural('policy', requiring)}"
        if isinstance(value, str) and value.strip():
            gates.append(
                Gate(
                    f"card.{wire}",
                    True,
                    r.CARD_FIELD_PRESENT,
                    f"model card has {wire}; {required_by}",
                    "card",
                )
            )
        else:
            message = f"model card field {wire} is missing or empty; {required_by}"
            gates.append(Gate(f"card.{wire}", False, r.CARD_FIELD_MISSING, message, "card"))
    return gates


def _missing_references(
    kind: str, names: Sequence[str], found: Mapping[str, object | None], ctx: Context
) -> list[Gate]:
    """One failed gate per referenced object that does not exist (absent from `found` included)."""
    reason = r.APPROVAL_NOT_FOUND if kind == "ModelApproval" else r.EVALUATION_NOT_FOUND
    return [
        Gate(
            f"reference {kind}/{name}",
            False,
            reason,
            f"{kind} {name} not found in namespace {ctx.namespace}",
            "reference",
        )
        for name in names
        if found.get(name) is None
    ]


def _on_revocation(policies: Sequence[GovernancePolicy]) -> Literal["suspend", "keep"]:
    if not policies or any(p.spec.on_revocation == "suspend" for p in policies):
        return "suspend"
    return "keep"


def _names(outcomes: Iterable[Outcome]) -> tuple[str, ...]:
    return tuple(sorted({name for o in outcomes for name in o.counted}))
