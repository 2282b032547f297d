"""Evidence: ModelApproval and ModelEvaluation, each bound to one exact model artifact by digest.

Both are immutable after creation (a CEL transition rule on spec): a changed decision or a new
measurement is a new object, so the trail an auditor reads is the trail the operator acted on. The
identity fields (approvedBy, submittedBy) and the seal are stamped by the operator's admission
webhook from the request's authenticated user; whatever a client writes there is overwritten.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, field_validator

from modelgate.api.v1alpha1.common import (
    AGE_COLUMN,
    ApiModel,
    Digest,
    Identity,
    KubeObject,
    ModelRef,
    PrinterColumn,
    ResourceInfo,
    RiskLevel,
    Seal,
    Text,
    Token,
    Uri,
    cel,
    check_unique,
)

Role = Annotated[str, StringConstraints(min_length=1, max_length=63)]
AdmissionSeal = Annotated[str, StringConstraints(max_length=256)]
Decision = Literal["approved", "rejected"]


class EvidenceStatus(ApiModel):
    """Written only by the operator."""

    seal: Seal | None = None
    """The operator's seal, binding the spec the admission webhook sealed to this object's name and
    uid. The evidence counts only while a seal holds."""


def _immutable(kind: str) -> ConfigDict:
    return ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self == oldSelf", f"spec is immutable: create a new {kind} instead"),
            ]
        }
    )


_MODEL_COLUMNS = (
    PrinterColumn("Model", "string", ".spec.model.name", "Model name."),
    PrinterColumn("Version", "string", ".spec.model.version", "Model version."),
)


class ModelApprovalSpec(ApiModel):
    """A decision by a person acting in a role, about one exact model artifact. Immutable."""

    model_config = _immutable("ModelApproval")

    model: ModelRef
    """The model artifact decided on. Counts only for a ModelDeployment with the same name, version
    and digest."""
    role: Role
    """The role the approver acts in, for example ethics-board, model-risk or product-owner. A
    GovernancePolicy names the users and groups allowed to decide for each role."""
    decision: Decision
    """approved or rejected. A rejection by a role a policy requires blocks the model even when other
    approvals for that role exist."""
    comment: Text | None = None
    """The reviewer's reasoning, conditions or references to review documents."""
    risk_level: RiskLevel | None = None
    """The risk level the approver confirms for the model (minimal, limited or high). A policy with
    riskLevelConfirmation counts an approval of that role only when it confirms the model card's
    riskLevel, so the deployer alone cannot choose which policies apply."""
    expires_at: AwareDatetime | None = None
    """When the approval stops counting (RFC 3339, for example 2026-06-30T00:00:00Z). Without it the
    approval does not expire."""
    approved_by: Identity | None = None
    """Written by the admission webhook from the authenticated user that created this object, like a
    CertificateSigningRequest's username; any value sent by the client is replaced."""
    seal: AdmissionSeal | None = None
    """Written by the admission webhook: a signature over the spec, approvedBy included, and the
    time, so the operator can tell evidence that did not pass through the webhook."""


class ModelApproval(KubeObject):
    """An approval or rejection of one model artifact by a reviewer in a role (ethics board, model risk,
    product owner, ...). The reviewer's identity is taken from the Kubernetes request. Immutable:
    to change a decision, create a new ModelApproval."""

    RESOURCE: ClassVar[ResourceInfo] = ResourceInfo(
        kind="ModelApproval",
        plural="modelapprovals",
        short_names=("mapr",),
        scope="Namespaced",
        printer_columns=(
            *_MODEL_COLUMNS,
            PrinterColumn("Role", "string", ".spec.role", "Role the approver acted in."),
            PrinterColumn("Decision", "string", ".spec.decision", "approved or rejected."),
            PrinterColumn("Approver", "string", ".spec.approvedBy.username", "Who decided."),
            PrinterColumn("Expires", "date", ".spec.expiresAt", "When the approval expires.", priority=1),
            AGE_COLUMN,
        ),
    )

    kind: Literal["ModelApproval"] = "ModelApproval"
    """Kind of the object: ModelApproval."""
    spec: ModelApprovalSpec
    """The decision, the artifact it is about and who made it."""
    status: EvidenceStatus | None = None
    """The operator's seal."""


class Dataset(ApiModel):
    """The dataset an evaluation was measured on."""

    name: Token
    """Name of the dataset, for example fraud-holdout-2025q3. Policies may require a named dataset."""
    uri: Uri
    """Where the dataset is stored."""
    digest: Digest | None = None
    """Content digest of the dataset ("sha256:" followed by 64 lowercase hex digits), when known."""


MAX_SLICES = 256


class EvaluationSlice(ApiModel):
    """The metrics measured on one slice of the dataset: one group the model affects."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    """Free text naming the group, for example age=18-25 or region=EU. Unique in the list."""
    size: int = Field(ge=0)
    """How many examples the slice had. Policies may ignore slices smaller than minSize."""
    metrics: dict[str, float] = Field(min_length=1, max_length=64)
    """Metrics measured on the slice, by name, for example accuracy: 0.91, recall: 0.84."""


SLICES_UNIQUE = cel(
    "self.all(s, self.exists_one(t, t.name == s.name))",
    "slice names must be unique",
)


class ModelEvaluationSpec(ApiModel):
    """Metrics measured for one exact model artifact on a named dataset. Immutable."""

    model_config = _immutable("ModelEvaluation")

    model: ModelRef
    """The model artifact evaluated. Counts only for a ModelDeployment with the same name, version and
    digest."""
    dataset: Dataset
    """The dataset the metrics were measured on."""
    metrics: dict[str, float] = Field(min_length=1, max_length=64)
    """Measured metrics by name, for example accuracy: 0.94, auc: 0.97. Policies set thresholds on
    them by name."""
    evaluated_at: AwareDatetime
    """When the evaluation ran (RFC 3339). Policies with maxAge reject older evaluations."""
    slices: list[EvaluationSlice] | None = Field(
        None, max_length=MAX_SLICES, json_schema_extra={"x-kubernetes-validations": [SLICES_UNIQUE]}
    )
    """The same metrics measured per slice of the dataset (at most 256 slices, unique names), for
    fairness requirements: a policy may require named slices, bound every slice and bound the gap
    between the best and the worst slice (GovernancePolicy spec.evaluations[].slices)."""

    @field_validator("slices")
    @classmethod
    def _unique_slices(cls, slices: list[EvaluationSlice] | None) -> list[EvaluationSlice] | None:
        check_unique((s.name for s in slices or []), "slice name")
        return slices

    report_uri: Uri | None = None
    """Where the full evaluation report can be read."""
    submitted_by: Identity | None = None
    """Written by the admission webhook from the authenticated user that created this object; any
    value sent by the client is replaced."""
    seal: AdmissionSeal | None = None
    """Written by the admission webhook: a signature over the spec, submittedBy included, and the
    time, so the operator can tell evidence that did not pass through the webhook."""


class ModelEvaluation(KubeObject):
    """Measured metrics of one model artifact on one dataset, recorded as evidence for admission.
    Immutable: a new measurement is a new ModelEvaluation."""

    RESOURCE: ClassVar[ResourceInfo] = ResourceInfo(
        kind="ModelEvaluation",
        plural="modelevaluations",
        short_names=("meval",),
        scope="Namespaced",
        printer_columns=(
            *_MODEL_COLUMNS,
            PrinterColumn("Dataset", "string", ".spec.dataset.name", "Dataset the metrics were measured on."),
            PrinterColumn("Evaluated", "date", ".spec.evaluatedAt", "When the evaluation ran."),
            PrinterColumn(
                "Submitter", "string", ".spec.submittedBy.username", "Who recorded it.", priority=1
            ),
            AGE_COLUMN,
        ),
    )

    kind: Literal["ModelEvaluation"] = "ModelEvaluation"
    """Kind of the object: ModelEvaluation."""
    spec: ModelEvaluationSpec
    """The artifact, the dataset and the measured metrics."""
    status: EvidenceStatus | None = None
    """The operator's seal."""
