"""modelgate.io/v1alpha1: the pydantic models of every kind, and `parse` to read any of them.

Import from here, not from the submodules:

    from modelgate.api.v1alpha1 import ModelDeployment, parse

    mdep = parse(body)                   # dispatches on apiVersion and kind
    body = mdep.model_dump(by_alias=True, exclude_none=True, mode="json")

Python attributes are snake_case (`mdep.spec.card.risk_level`); the wire names are camelCase.
`<Kind>.RESOURCE` gives the plural, short names and scope each kind is served under.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from modelgate.api.v1alpha1.common import (
    API_VERSION,
    CATEGORIES,
    DIGEST_PATTERN,
    DURATION_PATTERN,
    FINALIZER,
    GROUP,
    REASON_PATTERN,
    VERSION,
    Condition,
    Identity,
    KubeObject,
    LabelSelector,
    LabelSelectorRequirement,
    LocalObjectReference,
    ModelRef,
    PrinterColumn,
    ResourceInfo,
    RiskLevel,
    parse_duration,
)
from modelgate.api.v1alpha1.evidence import (
    Dataset,
    EvaluationSlice,
    ModelApproval,
    ModelApprovalSpec,
    ModelEvaluation,
    ModelEvaluationSpec,
)
from modelgate.api.v1alpha1.modeldeployment import (
    EnvVar,
    GateResult,
    HistoryEntry,
    MetricReading,
    ModelArtifact,
    ModelCard,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RejectedDigest,
    ResourceRequirements,
    Revision,
    RevisionRef,
    Serving,
)
from modelgate.api.v1alpha1.monitoring import (
    MetricCheck,
    MetricLabels,
    MetricTemplate,
    MetricTemplateSpec,
    Monitoring,
    TemplateRef,
)
from modelgate.api.v1alpha1.policy import (
    ApprovalRequirement,
    Approvers,
    EvaluationRequirement,
    GovernancePolicy,
    GovernancePolicySpec,
    GovernancePolicyStatus,
    OperationalField,
    Recertification,
    RiskLevelConfirmation,
    SliceRequirement,
)
from modelgate.api.v1alpha1.record import (
    KeptPods,
    ModelRecord,
    ModelRecordSpec,
    RecordedDeployment,
    RecordedModel,
    RecordEntry,
)

Resource = ModelDeployment | ModelApproval | ModelEvaluation | GovernancePolicy | MetricTemplate | ModelRecord
"""Any modelgate.io/v1alpha1 object."""

KINDS: Final[dict[str, type[Resource]]] = {
    cls.RESOURCE.kind: cls
    for cls in (
        ModelDeployment,
        ModelApproval,
        ModelEvaluation,
        GovernancePolicy,
        MetricTemplate,
        ModelRecord,
    )
}
"""Every kind of this version, by kind name, in the order the CRDs are generated."""


def parse(obj: Mapping[str, Any]) -> Resource:
    """Validate a modelgate.io/v1alpha1 object (a dict or Mapping such as a kopf Body, as read from
    the API or a manifest).

    Raises ValueError for another apiVersion or an unknown kind, and pydantic.ValidationError
    (a ValueError) when the object does not match the schema.
    """
    api_version = obj.get("apiVersion")
    if api_version != API_VERSION:
        raise ValueError(f"unsupported apiVersion {api_version!r}: want {API_VERSION}")
    kind = obj.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown kind {kind!r} in {API_VERSION}: want one of {', '.join(KINDS)}")
    return cls.model_validate(obj)


__all__ = [
    "API_VERSION",
    "CATEGORIES",
    "DIGEST_PATTERN",
    "DURATION_PATTERN",
    "FINALIZER",
    "GROUP",
    "KINDS",
    "REASON_PATTERN",
    "VERSION",
    "ApprovalRequirement",
    "Approvers",
    "Condition",
    "Dataset",
    "EnvVar",
    "EvaluationRequirement",
    "EvaluationSlice",
    "GateResult",
    "GovernancePolicy",
    "GovernancePolicySpec",
    "GovernancePolicyStatus",
    "HistoryEntry",
    "Identity",
    "KeptPods",
    "KubeObject",
    "LabelSelector",
    "LabelSelectorRequirement",
    "LocalObjectReference",
    "MetricCheck",
    "MetricLabels",
    "MetricReading",
    "MetricTemplate",
    "MetricTemplateSpec",
    "ModelApproval",
    "ModelApprovalSpec",
    "ModelArtifact",
    "ModelCard",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelEvaluation",
    "ModelEvaluationSpec",
    "ModelRecord",
    "ModelRecordSpec",
    "ModelRef",
    "Monitoring",
    "OperationalField",
    "PrinterColumn",
    "Recertification",
    "RecordEntry",
    "RecordedDeployment",
    "RecordedModel",
    "RejectedDigest",
    "Resource",
    "ResourceInfo",
    "ResourceRequirements",
    "Revision",
    "RevisionId",
    "RevisionRef",
    "RiskLevel",
    "RiskLevelConfirmation",
    "Serving",
    "SliceRequirement",
    "TemplateRef",
    "parse",
    "parse_duration",
]
