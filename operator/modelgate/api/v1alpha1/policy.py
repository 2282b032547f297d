"""GovernancePolicy: what a model in scope must show before it serves, and what it must watch after.

Policies are cluster-scoped and select namespaces by label. Every policy matching a
ModelDeployment's namespace (and its card's risk level) applies; requirements add up.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, PrivateAttr, StringConstraints, model_validator

from modelgate.api.v1alpha1.common import (
    AGE_COLUMN,
    DISTINCT,
    LIST_SET,
    MAX_LIST,
    THRESHOLD_RULE,
    ApiModel,
    CardField,
    Condition,
    Duration,
    KubeObject,
    LabelSelector,
    PrinterColumn,
    ResourceInfo,
    RiskLevel,
    Token,
    cel,
    check_thresholds,
    check_unique,
    list_map,
)
from modelgate.api.v1alpha1.evidence import Role
from modelgate.api.v1alpha1.monitoring import MAX_METRICS, MetricCheck, OnDrift

OperationalField = Literal["replicas", "resources", "env", "port"]
DEFAULT_OPERATIONAL: tuple[OperationalField, ...] = ("replicas", "resources")

OnRevocation = Literal["suspend", "keep"]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class Approvers(ApiModel):
    """Who may decide for a role: any listed user, or any member of a listed group."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.users) && size(self.users) > 0)"
                    " || (has(self.groups) && size(self.groups) > 0)",
                    "approvers must name at least one user or group",
                )
            ]
        }
    )

    users: Annotated[list[Subject], DISTINCT] = Field(
        default_factory=list, max_length=MAX_LIST, json_schema_extra=LIST_SET
    )
    """Usernames, as the API server authenticates them, allowed to decide for the role."""
    groups: Annotated[list[Subject], DISTINCT] = Field(
        default_factory=list, max_length=MAX_LIST, json_schema_extra=LIST_SET
    )
    """Groups whose members are allowed to decide for the role."""

    @model_validator(mode="after")
    def _someone(self) -> Approvers:
        if not self.users and not self.groups:
            raise ValueError("approvers must name at least one user or group")
        return self


class ApprovalRequirement(ApiModel):
    """Approvals a model in scope needs from one role."""

    role: Role
    """The role, matched against spec.role of ModelApproval objects, for example ethics-board."""
    approvers: Approvers
    """Who may decide for this role. Approvals by anyone else do not count."""
    count: int = Field(1, ge=1, le=16)
    """How many approvals from distinct approvers the role must give."""
    max_age: Duration | None = None
    """How long an approval of this role counts after it was created (its metadata.creationTimestamp,
    set by the API server), for example 180d. After that it has lapsed: the model needs a new
    approval (recertification), and the policy's onRevocation applies to a model that serves on it,
    as for a deleted approval. Without it approvals count until they expire (spec.expiresAt)."""


class SliceRequirement(ApiModel):
    """Fairness: how the metric must hold on every slice of the dataset (ModelEvaluation
    spec.slices), not only on the whole."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [THRESHOLD_RULE]})

    required: Annotated[list[Token], DISTINCT] = Field(
        default_factory=list, max_length=256, json_schema_extra=LIST_SET
    )
    """Slices that must be reported; the model is blocked while one of them is missing."""
    min: float | None = None
    """Lowest acceptable value of the metric on every slice (inclusive)."""
    max: float | None = None
    """Highest acceptable value of the metric on every slice (inclusive)."""
    max_gap: float | None = Field(None, ge=0)
    """Largest acceptable difference between the best and the worst slice (a disparity bound)."""
    min_size: int | None = Field(None, ge=0)
    """Slices with fewer examples are ignored (the gate message says which); a required slice
    smaller than this counts as missing."""

    @model_validator(mode="after")
    def _sane_thresholds(self) -> SliceRequirement:
        check_thresholds(self.min, self.max)
        return self


class EvaluationRequirement(ApiModel):
    """A threshold an evaluated metric must meet."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [THRESHOLD_RULE]})

    metric: Token
    """Name of the metric in spec.metrics of a ModelEvaluation, for example accuracy."""
    min: float | None = None
    """Lowest acceptable value (inclusive)."""
    max: float | None = None
    """Highest acceptable value (inclusive)."""
    max_age: Duration | None = None
    """How old the evaluation may be, measured from its evaluatedAt, for example 30d. Without it any
    age is accepted."""
    dataset: Token | None = None
    """The dataset the metric must have been measured on (spec.dataset.name). Without it any dataset
    counts."""
    slices: SliceRequirement | None = None
    """Fairness: the metric per slice of the dataset (ModelEvaluation spec.slices): required slices,
    bounds on every slice and on the gap between the best and the worst."""

    @model_validator(mode="after")
    def _sane_thresholds(self) -> EvaluationRequirement:
        check_thresholds(self.min, self.max)
        return self


class Recertification(ApiModel):
    """When to warn that approvals are about to lapse (approvals[].maxAge)."""

    warn_before: Duration
    """How long before an approval requirement lapses the model is due for recertification, for
    example 14d: from then on its RecertificationDue condition is True (with the date and who must
    approve again) and a Warning Event is posted. Without recertification the condition turns True
    only when an approval lapses."""


NO_MAX_AGE = (
    "recertification.warnBefore warns before approvals lapse: set maxAge on at least one approvals[] entry"
)
RECERTIFICATION_RULE = cel(
    "!has(self.recertification) || (has(self.approvals) && self.approvals.exists(a, has(a.maxAge)))",
    NO_MAX_AGE,
)


class RiskLevelConfirmation(ApiModel):
    """Which role must confirm a model card's riskLevel."""

    role: Role
    """Approvals of this role count only when their spec.riskLevel equals the card's riskLevel."""


EMPTY_POLICY = (
    "an empty policy (no requiredCardFields, approvals, evaluations or monitoring) would admit every "
    "model it selects: add a requirement, or set allowAll: true to admit them on purpose"
)
NOT_EMPTY_RULE = cel(
    "(has(self.allowAll) && self.allowAll)"
    " || (has(self.requiredCardFields) && size(self.requiredCardFields) > 0)"
    " || (has(self.approvals) && size(self.approvals) > 0)"
    " || (has(self.evaluations) && size(self.evaluations) > 0)"
    " || (has(self.monitoring) && size(self.monitoring) > 0)",
    EMPTY_POLICY,
)


class GovernancePolicySpec(ApiModel):
    """Requirements for every ModelDeployment in scope."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [NOT_EMPTY_RULE, RECERTIFICATION_RULE]}
    )

    namespace_selector: LabelSelector | None = None
    """Namespaces the policy applies to, by label. Absent or empty selects every namespace."""
    risk_levels: Annotated[list[RiskLevel], DISTINCT] = Field(
        default_factory=list, max_length=3, json_schema_extra=LIST_SET
    )
    """Card risk levels the policy applies to: minimal, limited, high. Empty means all."""
    required_card_fields: Annotated[list[CardField], DISTINCT] = Field(
        default_factory=list, max_length=5, json_schema_extra=LIST_SET
    )
    """Model card fields that must be present and non-empty: owner, intendedUse, limitations,
    trainingData, riskLevel."""
    approvals: list[ApprovalRequirement] = Field(
        default_factory=list, max_length=16, json_schema_extra=list_map("role")
    )
    """Approvals required, one entry per role. A rejection by a required role blocks admission."""
    separation_of_duties: bool = False
    """When true, an approval does not count if its approver is the identity that last set the model
    digest on the ModelDeployment (spec.digestSetBy)."""
    evaluations: list[EvaluationRequirement] = Field(default_factory=list, max_length=MAX_LIST)
    """Evaluated metrics that must meet thresholds, from the ModelEvaluations the deployment
    references."""
    monitoring: list[MetricCheck] = Field(
        default_factory=list, max_length=MAX_METRICS, json_schema_extra=list_map("name")
    )
    """Metrics every model in scope is watched on, in addition to its own spec.monitoring.metrics.
    Names must be unique."""
    allow_all: bool = False
    """Admit every model the policy selects without any requirement. A policy with no requirement at
    all (no card fields, approvals, evaluations or monitoring) is refused unless this is true, so an
    empty policy never admits by accident."""
    require_image_digest: bool = True
    """The serving image must be pinned by digest (image@sha256:...): a tag can be moved to other
    bytes after the review."""
    operational_fields: Annotated[list[OperationalField], DISTINCT] = Field(
        default_factory=lambda: list(DEFAULT_OPERATIONAL), max_length=4, json_schema_extra=LIST_SET
    )
    """Serving fields that may change without new evidence (replicas, resources, env, port). Every
    other field of the served pod template, the model and the image are covered by the evidence: a
    change to one is a new revision. With several policies, a field is operational only if every
    one lists it."""
    risk_level_confirmation: RiskLevelConfirmation | None = None
    """When set, an approval of the named role counts only if it confirms the model card's riskLevel
    (ModelApproval spec.riskLevel): the deployer alone does not decide which policies apply. Such a
    policy applies at every risk level, whatever riskLevels says: a lower level claimed on the card
    must not take the model out of the policy that asks for the confirmation."""
    evaluators: Approvers | None = None
    """Who may submit ModelEvaluations that count (users and groups, matched against
    spec.submittedBy). Without it any submitter counts."""
    on_drift: OnDrift | None = None
    """The least a drifting model in scope gets: alert < rollback < quarantine. A model's own
    spec.monitoring.onDrift may be stricter, never weaker."""
    on_inconclusive: OnDrift = "alert"
    """What happens when a policy metric stays Inconclusive (no data, several series, Prometheus
    unreachable) past its inconclusiveLimit: alert (report only), rollback or quarantine. A missing
    or duplicated series must not keep a drifting model serving."""
    quarantine_retention: Duration = "168h"
    """How long the pods of a quarantined model are kept for forensics after its ModelDeployment is
    deleted."""
    on_revocation: OnRevocation = "suspend"
    """What happens to a serving model when evidence it was admitted on stops counting (an approval
    deleted, rejected or expired, an evaluation deleted): suspend (withdraw it from serving) or keep
    (keep serving and report the missing evidence in its conditions)."""

    recertification: Recertification | None = None
    """Warn ahead of approvals lapsing under approvals[].maxAge (RecertificationDue condition, a
    Warning Event, `modelgate status` and `modelgate audit` show the date)."""

    @model_validator(mode="after")
    def _unique_keys(self) -> GovernancePolicySpec:
        check_unique((a.role for a in self.approvals), "approval role")
        check_unique((m.name for m in self.monitoring), "monitoring metric name")
        return self

    @model_validator(mode="after")
    def _recertification_needs_max_age(self) -> GovernancePolicySpec:
        if self.recertification is not None and not any(a.max_age for a in self.approvals):
            raise ValueError(NO_MAX_AGE)
        return self

    @model_validator(mode="after")
    def _not_empty(self) -> GovernancePolicySpec:
        requirements = (self.required_card_fields, self.approvals, self.evaluations, self.monitoring)
        if not self.allow_all and not any(requirements):
            raise ValueError(EMPTY_POLICY)
        return self


class GovernancePolicyStatus(ApiModel):
    """What the operator observed of the policy. Written only by the operator."""

    observed_generation: int | None = Field(None, ge=0)
    """The metadata.generation this status describes."""
    conditions: list[Condition] = Field(
        default_factory=list, max_length=8, json_schema_extra=list_map("type")
    )
    """Valid: True when the operator could read the policy; False with the error otherwise (the policy
    then blocks every model it could select)."""


class GovernancePolicy(KubeObject):
    """Governance requirements for the models served in the namespaces it selects: model card fields,
    approvals by role, evaluation thresholds and monitoring. Every matching policy applies; a model no
    policy matches is not admitted. Cluster-scoped."""

    RESOURCE: ClassVar[ResourceInfo] = ResourceInfo(
        kind="GovernancePolicy",
        plural="governancepolicies",
        short_names=("gpol",),
        scope="Cluster",
        printer_columns=(
            PrinterColumn("Risk Levels", "string", ".spec.riskLevels", "Risk levels in scope (empty: all)."),
            PrinterColumn(
                "Separation", "boolean", ".spec.separationOfDuties", "Whether separation of duties applies."
            ),
            PrinterColumn("On Revocation", "string", ".spec.onRevocation", "suspend or keep."),
            PrinterColumn(
                "Valid",
                "string",
                '.status.conditions[?(@.type=="Valid")].status',
                "Whether the operator could read the policy (False: it blocks what it selects).",
            ),
            AGE_COLUMN,
        ),
    )

    kind: Literal["GovernancePolicy"] = "GovernancePolicy"
    """Kind of the object: GovernancePolicy."""
    spec: GovernancePolicySpec
    """The requirements and the namespaces they apply to."""
    status: GovernancePolicyStatus | None = None
    """Whether the operator could read the policy (condition Valid)."""

    _invalid: str | None = PrivateAttr(default=None)

    @property
    def invalid(self) -> str | None:
        """Why the stored policy could not be read, for a stand-in (see `stand_in`); None otherwise."""
        return self._invalid

    @classmethod
    def stand_in(
        cls,
        name: str,
        error: str,
        namespace_selector: LabelSelector | None,
        risk_levels: list[RiskLevel],
        metadata: dict[str, object] | None = None,
    ) -> GovernancePolicy:
        """What the operator keeps of a policy that fails to parse: its name, the error, and the
        scope it could read (an unreadable selector selects every namespace). It has no requirement
        of its own; the gate engine blocks every model it selects (fail closed)."""
        spec = GovernancePolicySpec.model_construct(
            namespace_selector=namespace_selector, risk_levels=risk_levels
        )
        obj = cls.model_construct(metadata={**(metadata or {}), "name": name}, spec=spec)
        obj._invalid = error
        return obj
