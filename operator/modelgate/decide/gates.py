"""The admission gate engine: does all the evidence for one revision of a ModelDeployment satisfy
every policy in force?

`evaluate` turns a frozen snapshot (the deployment, the selected policies, every approval and
evaluation of the model, whether the objects the spec references exist, `now`) into a `GateReport`:
one Gate per requirement, each naming exactly what is missing. It is pure and deterministic: equal
inputs give equal reports, in the same order, so status written from a report does not churn.

The revision judged is the `Subject`: by default the one the spec requests; the plan may ask about
another (the revision that serves, a rollback target) to re-check it now. Evidence counts only for
the revision it names (spec.model.revision), whether the spec references it or not: the deployer
does not choose the evidence. References in the spec are requirements that the named objects exist,
checked for the requested revision only.

Gates come in a fixed order, the order a reviewer would check by hand:

1. policy     - at least one GovernancePolicy is in force (NoPolicy), unless the operator flag
                allow_no_policy relaxes it; every selecting policy could be read (PolicyInvalid: a
                broken policy blocks what it could select); the serving image is pinned by digest
                when a policy requires it (ImageNotPinned). These appear only when failing (or
                relaxed by the flag);
2. card       - one gate per model card field any policy requires (CardFieldMissing);
3. reference  - one failed gate per referenced ModelApproval / ModelEvaluation that does not exist;
4. approval   - one gate per approval requirement per policy (modelgate.decide.approvals), and one
                per riskLevelConfirmation;
5. separation - one gate when any policy demands separation of duties;
6. evaluation - one gate per evaluation requirement per policy (modelgate.decide.evaluations).

Policies are taken in name order and requirements in the order the policy lists them; a requirement
shared by two policies is checked once for each, and each gate names its policy. Everything fails
closed: a missing object, a missing field, an unknown identity, an unreadable policy or timestamp
never counts as evidence. Admission requires every gate to be satisfied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Literal

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide.approvals import check_approval_requirement, check_separation
from modelgate.decide.evaluations import check_evaluation_requirement
from modelgate.decide.evidence import Context, E, Outcome, clip, plural, require_aware
from modelgate.decide.recertification import Due, schedule
from modelgate.decide.revision import requested_revision_id

GateKind = Literal[
    "policy",
    "card",
    "approval-reference",
    "evaluation-reference",
    "approval",
    "evaluation",
    "separation",
    "renewal",
]
"""What a gate is about: the Approved and Evaluated conditions each speak of their own kinds only
(decide/phase.py). `renewal` gates are added after a rollback or quarantine (decide/verdict.py,
with_renewal)."""

CARD_FIELDS: Final = {
    "owner": "owner",
    "intendedUse": "intended_use",
    "limitations": "limitations",
    "trainingData": "training_data",
    "riskLevel": "risk_level",
}
"""Card fields a policy may require (wire name -> attribute), in the order their gates appear."""
PINNED_IMAGE: Final = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
"""An image reference pinned by digest: name@sha256:<64 hex>."""


@dataclass(frozen=True)
class Subject:
    """The revision being judged (decide/revision.py): what evidence must name."""

    model: str
    version: str
    uri: str
    digest: str
    image: str
    revision: str
    """The revision id."""


def subject_of(md: ModelDeployment, policies: Iterable[GovernancePolicy]) -> Subject:
    """The revision `md`'s spec requests, under the policies that select it."""
    m = md.spec.model
    return Subject(
        model=m.name,
        version=m.version,
        uri=m.uri,
        digest=m.digest,
        image=md.spec.serving.image,
        revision=requested_revision_id(md, policies),
    )


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
    """The policies in force, as select_policies returns them (stand-ins of unreadable ones too)."""
    approvals: Sequence[ModelApproval]
    """Every ModelApproval of the model in the namespace, referenced or not, of any digest: the
    engine keeps those of the subject."""
    evaluations: Sequence[ModelEvaluation]
    """Every ModelEvaluation of the model in the namespace, as for approvals."""
    now: datetime
    allow_no_policy: bool = False
    not_before: datetime | None = None
    """Approvals created before this instant do not count (set after a quarantine or rollback)."""
    seal_ok: Callable[[ModelApproval | ModelEvaluation], bool] | None = None
    """Verifies the webhook's seal; None when sealing is not enforced."""
    references: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    """(kind, name) -> whether it exists, for every name in spec.approvals and spec.evaluations
    (absent: does not exist)."""
    subject: Subject | None = None
    """The revision to judge; None: the one deployment.spec requests. For any other revision the
    reference gates are skipped (references belong to the requested spec)."""


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
    recertification: tuple[Due, ...] = ()
    """When the approval requirements with a maxAge lapse (decide/recertification.py)."""

    @property
    def failures(self) -> tuple[Gate, ...]:
        """The unsatisfied gates, in gate order."""
        return tuple(g for g in self.gates if not g.satisfied)


def evaluate(inp: GateInput) -> GateReport:
    """Check all the evidence for the subject revision against every policy in force."""
    policies = sorted(inp.policies, key=lambda p: p.name)
    requested = subject_of(inp.deployment, policies)
    subject = inp.subject or requested
    ctx = _context(inp, policies, subject)
    approvals = _of_subject(inp.approvals, subject)
    evaluations = _of_subject(inp.evaluations, subject)

    spec = inp.deployment.spec
    checks_references = subject.revision == requested.revision
    approval_refs = (
        _missing_references("ModelApproval", [ref.name for ref in spec.approvals], inp.references, ctx)
        if checks_references
        else []
    )
    evaluation_refs = (
        _missing_references("ModelEvaluation", [ref.name for ref in spec.evaluations], inp.references, ctx)
        if checks_references
        else []
    )
    approval_outcomes = [
        (
            f"approval role={req.role} (policy {p.name})",
            req.role,
            check_approval_requirement(req, approvals, ctx),
        )
        for p in policies
        for req in p.spec.approvals
    ]
    separation = check_separation(policies, approvals, ctx)
    separation_outcomes = [] if separation is None else [("separation of duties", separation)]
    evaluation_outcomes = [
        (
            f"evaluation {req.metric} (policy {p.name})",
            check_evaluation_requirement(req, evaluations, replace(ctx, evaluators=p.spec.evaluators)),
        )
        for p in policies
        for req in p.spec.evaluations
    ]

    approval_gates = [_gate(name, o, "approval") for name, _, o in approval_outcomes]
    confirmation_gates = _confirmation_gates(policies, [(role, o) for _, role, o in approval_outcomes], ctx)
    separation_gates = [_gate(name, o, "separation") for name, o in separation_outcomes]
    evaluation_gates = [_gate(name, o, "evaluation") for name, o in evaluation_outcomes]
    gates = (
        *_policy_gates(inp, policies, ctx),
        *_invalid_policy_gates(policies),
        *_image_gates(policies, subject),
        *_card_gates(inp.deployment, policies),
        *approval_refs,
        *evaluation_refs,
        *approval_gates,
        *confirmation_gates,
        *separation_gates,
        *evaluation_gates,
    )
    outcomes = [o for *_, o in approval_outcomes] + [o for _, o in evaluation_outcomes]
    return GateReport(
        gates=gates,
        admitted=all(g.satisfied for g in gates),
        approved=all(
            g.satisfied for g in (*approval_refs, *approval_gates, *confirmation_gates, *separation_gates)
        ),
        evaluated=all(g.satisfied for g in (*evaluation_refs, *evaluation_gates)),
        on_revocation=_on_revocation(policies),
        next_change=min((t for o in outcomes for t in o.changes_at if t > ctx.now), default=None),
        counted_approvals=_names(o for *_, o in approval_outcomes),
        counted_evaluations=_names(o for _, o in evaluation_outcomes),
        recertification=schedule(policies, approvals, ctx),
    )


def _of_subject(evidence: Sequence[E], subject: Subject) -> list[E]:
    """The evidence about the subject's model name and version, in name order. Evidence of another
    version is not about this revision, so it does not even appear among the near misses (another
    digest of the same version does: it is most likely a mistake worth naming)."""
    return sorted(
        (
            e
            for e in evidence
            if (e.spec.model.name, e.spec.model.version) == (subject.model, subject.version)
        ),
        key=lambda e: e.name,
    )


def _context(inp: GateInput, policies: Sequence[GovernancePolicy], subject: Subject) -> Context:
    spec = inp.deployment.spec
    return Context(
        model=subject.model,
        version=subject.version,
        digest=subject.digest,
        revision=subject.revision,
        namespace=inp.deployment.namespace or "(unknown)",
        now=require_aware(inp.now, "now"),
        not_before=None if inp.not_before is None else require_aware(inp.not_before, "not_before"),
        seal_ok=inp.seal_ok,
        separation=any(p.spec.separation_of_duties for p in policies),
        digest_set_by=None if spec.digest_set_by is None else spec.digest_set_by.username,
        risk_level=spec.card.risk_level,
        confirming_roles=frozenset(
            p.spec.risk_level_confirmation.role for p in policies if p.spec.risk_level_confirmation
        ),
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
    kind: str, names: Sequence[str], exists: Mapping[tuple[str, str], bool], ctx: Context
) -> list[Gate]:
    """One failed gate per referenced object that does not exist (absent from `exists` included)."""
    approval = kind == "ModelApproval"
    reason = r.APPROVAL_NOT_FOUND if approval else r.EVALUATION_NOT_FOUND
    gate_kind: GateKind = "approval-reference" if approval else "evaluation-reference"
    return [
        Gate(
            f"reference {kind}/{name}",
            False,
            reason,
            f"{kind} {name} not found in namespace {ctx.namespace}",
            gate_kind,
        )
        for name in names
        if not exists.get((kind, name), False)
    ]


def _invalid_policy_gates(policies: Sequence[GovernancePolicy]) -> list[Gate]:
    """One failed gate per selecting policy that could not be read: it blocks what it could select."""
    return [
        Gate(
            f"policy {p.name}",
            False,
            r.POLICY_INVALID,
            f"GovernancePolicy {p.name} is invalid and blocks every model it could select until it is "
            f"fixed: {p.invalid}",
            "policy",
        )
        for p in policies
        if p.invalid is not None
    ]


def _image_gates(policies: Sequence[GovernancePolicy], subject: Subject) -> list[Gate]:
    """A failed gate when a policy requires the serving image to be pinned by digest and it is not.
    Like the other policy-level gates it appears only when something is wrong."""
    requiring = [p.name for p in policies if p.spec.require_image_digest]
    if not requiring or PINNED_IMAGE.match(subject.image):
        return []
    message = (
        f"serving image {subject.image} is not pinned by digest (want name@sha256:<64 hex digits>): a tag "
        f"can be moved to other bytes after the review; required by {plural('policy', requiring)} "
        "(requireImageDigest)"
    )
    return [Gate("image pinned", False, r.IMAGE_NOT_PINNED, message, "policy")]


def _confirmation_gates(
    policies: Sequence[GovernancePolicy], outcomes: Sequence[tuple[str, Outcome]], ctx: Context
) -> list[Gate]:
    """One gate per policy with riskLevelConfirmation: an approval of the role that counted (so it
    confirms the card's riskLevel, see decide/approvals.py) must exist."""
    gates = []
    for p in policies:
        if p.spec.risk_level_confirmation is None:
            continue
        role = p.spec.risk_level_confirmation.role
        requirement = f"risk level confirmation role={role} (policy {p.name})"
        of_role = [o for r_, o in outcomes if r_ == role]
        confirmed = sorted({n for o in of_role for n in o.counted})
        if confirmed:
            message = (
                f"risk level {ctx.risk_level} of {ctx.subject} is confirmed by role {role} in "
                f"{plural('ModelApproval', confirmed)}"
            )
            gates.append(Gate(requirement, True, r.RISK_LEVEL_CONFIRMED, message, "approval"))
            continue
        if of_role:
            missing = f"none counted (see the approval gate of role {role})"
        else:
            missing = f"no policy in force says who may approve for role {role}"
        message = (
            f"needs an approval by role {role} confirming the model card's risk level {ctx.risk_level} "
            f"(spec.riskLevel) for {ctx.subject}; {missing}"
        )
        gates.append(Gate(requirement, False, r.RISK_LEVEL_NOT_CONFIRMED, clip(message), "approval"))
    return gates


def _on_revocation(policies: Sequence[GovernancePolicy]) -> Literal["suspend", "keep"]:
    if not policies or any(p.spec.on_revocation == "suspend" for p in policies):
        return "suspend"
    return "keep"


def _names(outcomes: Iterable[Outcome]) -> tuple[str, ...]:
    return tuple(sorted({name for o in outcomes for name in o.counted}))
