"""ModelDeployment: a request to serve one model artifact, and the operator's account of it."""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from modelgate.api.conditions import APPROVED, DRIFTED, HISTORY_LIMIT, READY, MetricStatus, Phase
from modelgate.api.v1alpha1.common import (
    AGE_COLUMN,
    ApiModel,
    Condition,
    DecisionId,
    Digest,
    Duration,
    Identity,
    KubeObject,
    LabelValue,
    LocalObjectReference,
    PrinterColumn,
    Quantity,
    Reason,
    ResourceInfo,
    RevisionId,
    RiskLevel,
    Seal,
    Text,
    Token,
    Uri,
    cel,
    check_unique,
    list_map,
)
from modelgate.api.v1alpha1.monitoring import MAX_METRICS, Monitoring

MAX_REFERENCES = 16
RESERVED_ENV = ("MODEL_URI", "MODEL_DIGEST")

Image = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
EnvName = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
]


class ModelArtifact(ApiModel):
    """The model artifact to serve."""

    name: LabelValue
    """Name of the model, for example fraud-detector. It labels the serving objects
    (modelgate.io/model), so it must be a valid label value: at most 63 characters, alphanumerics,
    '-', '_' and '.'."""
    version: LabelValue
    """Version of the model, for example 1.4.0 or v2. Labels the serving objects
    (modelgate.io/version), so it must be a valid label value."""
    uri: Uri
    """Where the serving container loads the model from (for example s3://models/fraud/1.4.0/model.pkl).
    Passed to the container as the environment variable MODEL_URI."""
    digest: Digest
    """Content digest of the artifact: "sha256:" followed by 64 lowercase hex digits. Approvals and
    evaluations count only when they name this exact digest; passed to the container as MODEL_DIGEST."""


class ModelCard(ApiModel):
    """The model card: documentation that governance policies can require."""

    owner: Token
    """Team or person accountable for the model, for example team-fraud@example.com."""
    intended_use: Text | None = None
    """What the model is for, and what it must not be used for."""
    limitations: Text | None = None
    """Known limitations, failure modes and populations where the model performs poorly."""
    training_data: Text | None = None
    """Which data the model was trained on, with its provenance and time range."""
    risk_level: RiskLevel
    """Risk classification of the use case: minimal, limited or high. Policies may apply only to some
    risk levels (spec.riskLevels of a GovernancePolicy)."""


class EnvVar(ApiModel):
    """An environment variable for the serving container."""

    name: EnvName
    """Name of the variable. MODEL_URI and MODEL_DIGEST are reserved: the operator sets them."""
    value: Annotated[str, StringConstraints(max_length=32768)] | None = None
    """Value of the variable; empty when unset."""


class ResourceRequirements(ApiModel):
    """Compute resources of the serving container, as in a Pod's resources."""

    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Minimum resources the scheduler reserves, for example cpu: 500m, memory: 1Gi."""
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    """Maximum resources the container may use."""


MAX_REPLICAS: Final = 10_000
"""Far above one model server's fleet in a cluster of Kubernetes' documented scale (150,000 pods),
far below what a Deployment holds (int32): a typo such as 1e9 is refused at the API server instead
of failing every write of the owned Deployment."""


class Serving(ApiModel):
    """How the admitted revision is served: the operator owns one Deployment and one Service for it."""

    image: Image
    """Container image of the model server, for example registry.example/modelgate/sklearn-server:1.4.
    It must load the model from MODEL_URI and verify MODEL_DIGEST."""
    replicas: int = Field(1, ge=0, le=MAX_REPLICAS)
    """Number of serving pods, at most 10000. 0 keeps the revision admitted but serves nothing."""
    port: int = Field(8080, ge=1, le=65535)
    """TCP port the model server listens on; the Service exposes it."""
    resources: ResourceRequirements | None = None
    """Compute resources of the serving container."""
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={
            **list_map("name"),
            "x-kubernetes-validations": [
                cel(
                    "self.all(e, e.name != 'MODEL_URI' && e.name != 'MODEL_DIGEST')",
                    "serving.env must not set MODEL_URI or MODEL_DIGEST: the operator sets them "
                    "from spec.model",
                )
            ],
        },
    )
    """Extra environment variables for the serving container. Names must be unique."""

    @model_validator(mode="after")
    def _env_is_ours_to_set(self) -> Serving:
        check_unique((e.name for e in self.env), "env name")
        if any(e.name in RESERVED_ENV for e in self.env):
            raise ValueError(
                "serving.env must not set MODEL_URI or MODEL_DIGEST: the operator sets them from spec.model"
            )
        return self


class ModelDeploymentSpec(ApiModel):
    """The model to serve, its documentation, how to serve it, the evidence it relies on and how to
    watch it."""

    model: ModelArtifact
    """The model artifact: name, version, where to load it from and its digest."""
    card: ModelCard
    """The model card. Governance policies name the fields they require."""
    serving: Serving
    """How to serve the model once admitted."""
    approvals: list[LocalObjectReference] = Field(
        default_factory=list, max_length=MAX_REFERENCES, json_schema_extra=list_map("name")
    )
    """ModelApproval objects in this namespace that this deployment relies on. Each must name this
    model's name, version and digest."""
    evaluations: list[LocalObjectReference] = Field(
        default_factory=list, max_length=MAX_REFERENCES, json_schema_extra=list_map("name")
    )
    """ModelEvaluation objects in this namespace that this deployment relies on. Each must name this
    model's name, version and digest."""
    monitoring: Monitoring | None = None
    """Metrics watched in Prometheus once the model serves, and the action taken on drift. Policies in
    force may add metrics of their own."""
    digest_set_by: Identity | None = None
    """Written by the admission webhook, never by clients: the identity of the request that last set
    spec.model.digest. With separationOfDuties, that identity may not approve this digest."""

    @model_validator(mode="after")
    def _unique_references(self) -> ModelDeploymentSpec:
        check_unique((a.name for a in self.approvals), "approval reference")
        check_unique((e.name for e in self.evaluations), "evaluation reference")
        return self


class GateResult(ApiModel):
    """The outcome of one admission requirement."""

    requirement: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    """What is required, for example "approval by role ethics-board from group ethics-board for
    sha256:...". """
    satisfied: bool
    """Whether the requirement is met."""
    reason: Reason
    """CamelCase reason, for example ApprovalMissing or EvaluationStale."""
    message: Text = ""
    """Exactly what is missing or wrong."""


class Revision(ApiModel):
    """A model revision admitted to serving."""

    version: LabelValue
    """spec.model.version of the revision."""
    uri: Uri
    """spec.model.uri of the revision."""
    digest: Digest
    """spec.model.digest of the revision."""
    image: Image
    """spec.serving.image the revision was served with."""
    revision: RevisionId | None = None
    """The revision id (modelgate.decide.revision): what the evidence it was admitted on covers."""
    port: int | None = Field(None, ge=1, le=65535)
    """spec.serving.port the revision was admitted with."""
    env: list[EnvVar] = Field(default_factory=list, max_length=64, json_schema_extra=list_map("name"))
    """spec.serving.env the revision was admitted with: a revision that keeps serving while a newer
    one waits, or one rolled back to, is served with its own environment, not the newer spec's."""
    admitted_at: AwareDatetime
    """When the operator admitted the revision."""


class MetricReading(ApiModel):
    """The last reading of one monitoring metric."""

    name: LabelValue
    """Name of the metric, as in spec.monitoring.metrics or a policy's monitoring."""
    value: float | None = Field(None, json_schema_extra={"nullable": True})
    """The value read; absent when the reading was inconclusive."""
    status: MetricStatus
    """Pass (within thresholds), Fail (outside them) or Inconclusive (no data, Prometheus unreachable,
    or an ambiguous result)."""
    consecutive_failures: int = Field(0, ge=0)
    """Failing readings in a row; at failureLimit the onDrift action runs."""
    consecutive_inconclusive: int = Field(0, ge=0)
    """Inconclusive readings in a row."""
    checked_at: AwareDatetime
    """When the metric was read."""
    reason: Reason | None = None
    """Why the reading has its status, for example MetricAboveMaximum or NoData."""
    message: Annotated[str, StringConstraints(max_length=1024)] | None = None
    """The reading in words: the value and the threshold, or why there is no value."""


class RevisionRef(ApiModel):
    """The model version and digest a history entry concerns."""

    version: LabelValue
    """Model version."""
    digest: Digest
    """Model digest."""


class HistoryEntry(ApiModel):
    """One decision the operator took, kept for audit."""

    time: AwareDatetime
    """When the decision was taken."""
    action: Reason
    """What was done: Blocked, Admitted, Suspended, DriftDetected, RolledBack, Quarantined, Released or
    Retired."""
    reason: Reason
    """Why, as a CamelCase reason."""
    revision: RevisionRef | None = None
    """The revision the decision concerns."""
    message: Text | None = None
    """Details: the evidence the decision was based on."""
    decision: DecisionId | None = None
    """The decision's id: its Event is named `<name>.<id>`, and its audit line and ModelRecord entry
    carry it. A decision retried after a failed write keeps its id, so it is recorded once."""
    evidence_digest: Annotated[str, StringConstraints(max_length=80)] | None = None
    """sha256 of the decision's evidence in canonical JSON: the audit line with the same decision id
    carries the evidence itself (names, uids, digests, approvers, readings)."""
    seal: Seal | None = None
    """The operator's seal over this entry (everything but the seal), covering this ModelDeployment:
    the same signed record as the decision's audit line. `modelgate verify` checks it."""


class RejectedDigest(ApiModel):
    """A digest withdrawn from serving (rolled back or quarantined); it is not re-admitted automatically."""

    digest: Digest
    """The withdrawn digest."""
    reason: Reason
    """Why it was withdrawn, for example DriftDetected."""
    time: AwareDatetime
    """When it was withdrawn."""


class LapsingApproval(ApiModel):
    """An approval a requirement with a maxAge rests on, and when it lapses."""

    name: Token
    """The ModelApproval."""
    approved_by: Annotated[str, StringConstraints(max_length=512)]
    """Its approver (spec.approvedBy.username)."""
    created_at: AwareDatetime
    """Its metadata.creationTimestamp, from which maxAge counts."""
    lapses_at: AwareDatetime
    """creationTimestamp plus maxAge: from then on it no longer counts."""


class RecertificationRequirement(ApiModel):
    """One policy's approval requirement with a maxAge, and when it lapses."""

    policy: Token
    """The GovernancePolicy."""
    role: Token
    """The role (approvals[].role)."""
    approvers: Text
    """Who may approve again, for example "group ethics-board"."""
    count: int = Field(ge=1, le=16)
    """How many distinct approvers the role needs."""
    max_age: Duration
    """The requirement's maxAge."""
    due_at: AwareDatetime
    """When fewer than count approvals remain: the requirement lapses unless someone approves again."""
    warn_at: AwareDatetime
    """dueAt less the policy's recertification.warnBefore: RecertificationDue is True from then on."""
    approvals: list[LapsingApproval] = Field(default_factory=list, max_length=16)
    """The approvals it rests on (one per approver), earliest lapse first."""


class RecertificationSchedule(ApiModel):
    """When the approvals of what serves lapse under the policies' maxAge."""

    due_at: AwareDatetime
    """The earliest dueAt of the requirements: the model needs a new approval by then."""
    warn_at: AwareDatetime
    """The earliest warnAt: when the RecertificationDue condition turns True."""
    requirements: list[RecertificationRequirement] = Field(default_factory=list, max_length=64)
    """Each approval requirement with a maxAge, earliest due first."""


class ModelDeploymentStatus(ApiModel):
    """What the operator observed and decided. Written only by the operator."""

    observed_generation: int | None = Field(None, ge=0)
    """The metadata.generation this status describes."""
    phase: Phase | None = None
    """One-word summary: Pending, Blocked, Progressing, Serving, Degraded, RolledBack, Quarantined or
    Retiring. Automation should read the conditions instead."""
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16, json_schema_extra=list_map("type")
    )
    """Approved, Evaluated, Admitted, Ready, Drifted and Quarantined. Ready is always present and
    summarizes the others."""
    gates: list[GateResult] = Field(default_factory=list, max_length=64)
    """One entry per admission requirement of the policies in force, naming what is missing."""
    serving_revision: Revision | None = None
    """The revision currently served, if any."""
    last_known_good: Revision | None = None
    """The newest known-good revision: admitted, Ready, passed its monitoring checks and not
    withdrawn since."""
    known_good: list[Revision] = Field(default_factory=list, max_length=10)
    """Revisions that were admitted, became Ready and passed their checks, oldest first (at most 10).
    A digest withdrawn by a rollback or quarantine leaves the list until it is admitted again and
    passes its checks. A rollback returns to the newest of them that passes its gates now."""
    metrics: list[MetricReading] = Field(
        default_factory=list, max_length=2 * MAX_METRICS, json_schema_extra=list_map("name")
    )
    """The last reading of each monitoring metric."""
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    """The newest decisions, oldest first, at most 50; older ones remain in events and the audit log."""
    history_dropped: int | None = Field(None, ge=0)
    """How many older decisions left history to keep it at 50; each remains in the audit log."""
    rejected_digests: list[RejectedDigest] = Field(default_factory=list, max_length=50)
    """Digests withdrawn after drift; they are not admitted again without new evidence."""
    quarantined_at: AwareDatetime | None = None
    """When the model was quarantined; approvals given before this time do not re-admit it."""
    recertification: RecertificationSchedule | None = None
    """When the approvals of the revision that serves (else the requested one) lapse under the
    policies' approvals[].maxAge; present while any does. `modelgate audit` reads it."""
    compliance: Literal["Compliant", "NotCompliant"] | None = None
    """Whether the revision that serves traffic satisfies its gates now. NotCompliant: its evidence
    stopped counting (an approval deleted, rejected, expired or lapsed; an evaluation stale) and it
    keeps serving because every selecting policy says onRevocation: keep. Absent while nothing
    serves traffic."""

    def condition(self, type_: str) -> Condition | None:
        """The condition of this type, if present."""
        return next((c for c in self.conditions if c.type == type_), None)


def _condition_column(type_: str, description: str) -> PrinterColumn:
    return PrinterColumn(type_, "string", f'.status.conditions[?(@.type=="{type_}")].status', description)


class ModelDeployment(KubeObject):
    """A request to serve one model artifact. modelgate admits it to serving only when the approvals
    and evaluations it references satisfy every GovernancePolicy in force, then watches its metrics and
    rolls back or quarantines it when it drifts."""

    RESOURCE: ClassVar[ResourceInfo] = ResourceInfo(
        kind="ModelDeployment",
        plural="modeldeployments",
        short_names=("mdep",),
        scope="Namespaced",
        printer_columns=(
            PrinterColumn("Model", "string", ".spec.model.name", "Model name."),
            PrinterColumn("Version", "string", ".spec.model.version", "Model version."),
            PrinterColumn("Phase", "string", ".status.phase", "One-word summary of the state."),
            _condition_column(APPROVED, "Whether every required approval is present."),
            _condition_column(READY, "Whether the model is admitted and serving."),
            _condition_column(DRIFTED, "Whether monitoring detected drift."),
            AGE_COLUMN,
        ),
    )

    kind: Literal["ModelDeployment"] = "ModelDeployment"
    """Kind of the object: ModelDeployment."""
    spec: ModelDeploymentSpec
    """The desired model and how to serve, govern and watch it."""
    status: ModelDeploymentStatus | None = None
    """The operator's account of the deployment: conditions, gates, revisions, metrics, history."""
