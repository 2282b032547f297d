"""ModelRecord: the interventions on one model digest, kept where the deployer cannot reach them.

A rollback or quarantine used to live only in the ModelDeployment's status, so deleting the
ModelDeployment and applying it again lifted it. The operator now also writes one ModelRecord per
(namespace, model name, digest), named `<model>-<first 12 hex digits of the digest>`: every
rollback, quarantine and release of that digest (time, reason, message, the ModelDeployment's name
and uid, the revision id when known) and, for a quarantined model that was retired, the pods kept
for forensics and until when. Only the operator writes records
(charts/modelgate/templates/rbac-users.yaml: the deployer, approver and evaluator roles cannot, the
auditor role reads them); no aggregation label gives them to Kubernetes' `admin` or `edit` roles.
Records are history: a release adds an entry, nothing removes one.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints

from modelgate.api.v1alpha1.common import (
    AGE_COLUMN,
    ApiModel,
    DecisionId,
    Digest,
    Duration,
    KubeObject,
    LabelValue,
    ObjectName,
    PrinterColumn,
    Reason,
    ResourceInfo,
    RevisionId,
    Text,
    Timestamp,
)

MAX_ENTRIES = 100
RecordAction = Literal["RolledBack", "Quarantined", "Released", "Retired", "RetentionExpired"]
RecordState = Literal["Withdrawn", "Released"]


class RecordedModel(ApiModel):
    """The model digest the record is about."""

    name: LabelValue
    """spec.model.name of the ModelDeployments that served it."""
    digest: Digest
    """The digest the interventions concern."""


class RecordedDeployment(ApiModel):
    """The ModelDeployment an entry was decided for (it may have been deleted since)."""

    name: ObjectName
    """Its name."""
    uid: Annotated[str, StringConstraints(max_length=128)] | None = None
    """Its uid: tells a re-created ModelDeployment of the same name from the original."""


class RecordEntry(ApiModel):
    """One intervention (or release, retirement, end of retention) on the digest."""

    time: Timestamp
    """When the operator decided it. Entries are unique by time and action."""
    action: RecordAction
    """RolledBack, Quarantined, Released, Retired or RetentionExpired."""
    reason: Reason
    """Why, for example DriftDetected or MetricsInconclusive."""
    message: Text | None = None
    """The decision in words: the metrics, values and thresholds behind it."""
    version: LabelValue | None = None
    """spec.model.version of the withdrawn revision."""
    revision_id: RevisionId | None = None
    """The revision id of the withdrawn revision, when it was the one the spec requested."""
    model_deployment: RecordedDeployment
    """The ModelDeployment the decision was taken for."""
    decision: DecisionId | None = None
    """The decision's id, as in the ModelDeployment's history and the Event's name: entries are
    unique by it, so a decision written again after a crash is recorded once."""


class KeptPods(ApiModel):
    """Pods of a quarantined model kept for forensics after its ModelDeployment was retired."""

    retention: Duration
    """The policies' quarantineRetention (the longest) in force at the quarantine."""
    retain_until: Timestamp | None = None
    """When the kept ReplicaSets and their pods are deleted; set at the retirement."""
    replica_sets: list[ObjectName] = Field(default_factory=list, max_length=16)
    """ReplicaSets kept (owned by this record, so no new Deployment adopts them)."""
    pods: list[ObjectName] = Field(default_factory=list, max_length=256)
    """Pods kept at the retirement."""
    deleted_at: Timestamp | None = None
    """When the retention ended and the kept ReplicaSets were deleted."""


class ModelRecordSpec(ApiModel):
    """The history of interventions on one model digest. Written only by the operator."""

    model: RecordedModel
    """The model name and digest."""
    state: RecordState
    """Withdrawn while the last rollback or quarantine is in force (only a ModelApproval created after
    it re-admits the digest), Released once re-admitted."""
    withdrawn_at: Timestamp | None = None
    """When the intervention in force was decided (Withdrawn only)."""
    withdrawn_reason: Reason | None = None
    """Quarantined, DriftDetected or MetricsInconclusive (Withdrawn only)."""
    entries: list[RecordEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    """Every intervention, oldest first."""
    kept: KeptPods | None = None
    """Pods kept after a quarantined model was retired, and until when."""


class ModelRecord(KubeObject):
    """Interventions (rollbacks, quarantines, releases) on one model digest and the forensic pods kept
    after a quarantine; one per namespace, model name and digest, written only by the operator. It
    outlives the ModelDeployment: deleting and re-creating it lifts nothing."""

    RESOURCE: ClassVar[ResourceInfo] = ResourceInfo(
        kind="ModelRecord",
        plural="modelrecords",
        short_names=("mrec",),
        scope="Namespaced",
        printer_columns=(
            PrinterColumn("Model", "string", ".spec.model.name", "Model name."),
            PrinterColumn("State", "string", ".spec.state", "Withdrawn or Released."),
            PrinterColumn("Reason", "string", ".spec.withdrawnReason", "Why the digest is withdrawn."),
            PrinterColumn("Since", "date", ".spec.withdrawnAt", "When it was withdrawn."),
            PrinterColumn("Retain Until", "string", ".spec.kept.retainUntil", "Kept pods are deleted then."),
            PrinterColumn("Digest", "string", ".spec.model.digest", "Model digest.", priority=1),
            AGE_COLUMN,
        ),
    )

    kind: Literal["ModelRecord"] = "ModelRecord"
    """Kind of the object: ModelRecord."""
    spec: ModelRecordSpec
    """The digest and its interventions."""
