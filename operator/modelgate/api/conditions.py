"""The status vocabulary shared by the operator: condition types, phases, reasons and history actions.

Conditions follow metav1.Condition and Flux's kstatus conventions: `Ready` is always present and
summarizes the domain conditions; reasons are CamelCase and name the cause, messages name exactly
what is missing. Decisions, status writers, events, the audit log and the CLI all use these
constants, so a reason means the same thing wherever it appears.
"""

from __future__ import annotations

from typing import Final, Literal

# Condition types of a ModelDeployment.
APPROVED: Final = "Approved"
EVALUATED: Final = "Evaluated"
ADMITTED: Final = "Admitted"
READY: Final = "Ready"
DRIFTED: Final = "Drifted"
QUARANTINED: Final = "Quarantined"
RECERTIFICATION_DUE: Final = "RecertificationDue"
"""Present while a policy in force sets approvals[].maxAge: True from the start of the warning window
(recertification.warnBefore) until a new approval counts, naming each date and who must approve."""
# kstatus' abnormal-true conditions (sigs.k8s.io/cli-utils pkg/kstatus), present only while True:
# what Flux's healthChecks and `kubectl wait` read besides Ready. decide/phase.py `progress` sets them.
RECONCILING: Final = "Reconciling"
"""The operator is still working toward the requested revision: rolling it out, or waiting for its
evidence (phase Progressing or Blocked). kstatus: InProgress."""
STALLED: Final = "Stalled"
"""The requested revision will not serve without someone acting: rolled back, quarantined,
suspended after its evidence was withdrawn, or refused by the API server. kstatus: Failed."""
CONDITION_TYPES: Final = (
    APPROVED,
    EVALUATED,
    ADMITTED,
    READY,
    DRIFTED,
    QUARANTINED,
    RECERTIFICATION_DUE,
    RECONCILING,
    STALLED,
)

# Condition statuses.
TRUE: Final = "True"
FALSE: Final = "False"
UNKNOWN: Final = "Unknown"
ConditionStatus = Literal["True", "False", "Unknown"]

# ModelDeployment phases (status.phase): a one-word summary for `kubectl get`; the conditions are
# the contract, nothing should branch on the phase.
Phase = Literal[
    "Pending", "Blocked", "Progressing", "Serving", "Degraded", "RolledBack", "Quarantined", "Retiring"
]
PHASE_PENDING: Final = "Pending"
"""Observed but not yet decided."""
PHASE_BLOCKED: Final = "Blocked"
"""A gate is not satisfied; nothing is served for this spec."""
PHASE_PROGRESSING: Final = "Progressing"
"""Admitted; the serving Deployment is rolling out."""
PHASE_SERVING: Final = "Serving"
"""Admitted and every serving replica is ready."""
PHASE_DEGRADED: Final = "Degraded"
"""Admitted but serving is unhealthy, or monitoring reports failures below the limit."""
PHASE_ROLLED_BACK: Final = "RolledBack"
"""Drift was detected and the last known good revision is served instead."""
PHASE_QUARANTINED: Final = "Quarantined"
"""Drift was detected; traffic is cut and the pods are kept for forensics."""
PHASE_RETIRING: Final = "Retiring"
"""The ModelDeployment is being deleted; serving objects are being removed."""
PHASES: Final = (
    PHASE_PENDING,
    PHASE_BLOCKED,
    PHASE_PROGRESSING,
    PHASE_SERVING,
    PHASE_DEGRADED,
    PHASE_ROLLED_BACK,
    PHASE_QUARANTINED,
    PHASE_RETIRING,
)

# Results of one metric check (status.metrics[].status).
MetricStatus = Literal["Pass", "Fail", "Inconclusive"]
METRIC_PASS: Final = "Pass"
METRIC_FAIL: Final = "Fail"
METRIC_INCONCLUSIVE: Final = "Inconclusive"

# Reasons: policy and card gates.
NO_POLICY: Final = "NoPolicy"
POLICIES_SATISFIED: Final = "PoliciesSatisfied"
CARD_FIELD_MISSING: Final = "CardFieldMissing"
CARD_FIELD_PRESENT: Final = "CardFieldPresent"
RISK_LEVEL_NOT_COVERED: Final = "RiskLevelNotCovered"
POLICY_INVALID: Final = "PolicyInvalid"
"""A selecting GovernancePolicy failed to parse: it blocks every model it could select."""
POLICY_VALID: Final = "PolicyValid"
"""The operator could read the GovernancePolicy (its Valid condition)."""
IMAGE_NOT_PINNED: Final = "ImageNotPinned"

# GovernancePolicy condition type (status.conditions of a policy).
VALID: Final = "Valid"

# Reasons: approvals.
APPROVALS_GRANTED: Final = "ApprovalsGranted"
APPROVAL_NOT_FOUND: Final = "ApprovalNotFound"
APPROVAL_MISSING: Final = "ApprovalMissing"
APPROVAL_REJECTED: Final = "ApprovalRejected"
APPROVAL_EXPIRED: Final = "ApprovalExpired"
APPROVAL_REVOKED: Final = "ApprovalRevoked"
APPROVAL_PREDATES_QUARANTINE: Final = "ApprovalPredatesQuarantine"
APPROVAL_LAPSED: Final = "ApprovalLapsed"
"""An approval is older than its requirement's maxAge (from its creationTimestamp): recertification."""
APPROVER_NOT_AUTHORIZED: Final = "ApproverNotAuthorized"
APPROVER_UNKNOWN: Final = "ApproverUnknown"
SEPARATION_OF_DUTIES_VIOLATED: Final = "SeparationOfDutiesViolated"
SEPARATION_OF_DUTIES_MET: Final = "SeparationOfDutiesMet"
RISK_LEVEL_NOT_CONFIRMED: Final = "RiskLevelNotConfirmed"
RISK_LEVEL_CONFIRMED: Final = "RiskLevelConfirmed"

# Reasons: recertification (the RecertificationDue condition).
RECERTIFICATION_SCHEDULED: Final = "RecertificationScheduled"
"""Approvals with a maxAge count; none is in its warning window yet (the message gives the dates)."""
RECERTIFICATION_DUE_REASON: Final = "RecertificationDue"
"""An approval requirement lapses within recertification.warnBefore."""
NOTHING_TO_RECERTIFY: Final = "NothingToRecertify"
"""A policy sets maxAge, but no approval it bounds counts (yet)."""

# Reasons: evaluations.
EVALUATIONS_PASSED: Final = "EvaluationsPassed"
EVALUATION_NOT_FOUND: Final = "EvaluationNotFound"
EVALUATION_MISSING: Final = "EvaluationMissing"
EVALUATION_STALE: Final = "EvaluationStale"
METRIC_NOT_REPORTED: Final = "MetricNotReported"
METRIC_BELOW_MINIMUM: Final = "MetricBelowMinimum"
METRIC_ABOVE_MAXIMUM: Final = "MetricAboveMaximum"
SLICE_MISSING: Final = "SliceMissing"
SLICE_BELOW_MINIMUM: Final = "SliceBelowMinimum"
SLICE_ABOVE_MAXIMUM: Final = "SliceAboveMaximum"
SLICE_GAP_EXCEEDED: Final = "SliceGapExceeded"
EVALUATOR_NOT_AUTHORIZED: Final = "EvaluatorNotAuthorized"

# Reasons: evidence integrity (shared by approvals and evaluations).
DIGEST_MISMATCH: Final = "DigestMismatch"
MODEL_MISMATCH: Final = "ModelMismatch"
SEAL_INVALID: Final = "SealInvalid"
"""Evidence carries a seal that does not verify: altered after the webhook sealed it, or sealed
with another key."""
UNSEALED: Final = "Unsealed"
"""Evidence carries no seal at all: it was written past the admission webhook (its configuration
removed, or straight to etcd), so its identity fields are the writer's word."""
REVISION_MISMATCH: Final = "RevisionMismatch"
"""Evidence names another revision (same digest, but another uri, image or covered serving field)."""
REVISION_MISSING: Final = "RevisionMissing"
"""Evidence names no revision (spec.model.revision is absent)."""

# Reasons: admission and serving.
ADMITTED_REASON: Final = "Admitted"
NOT_ADMITTED: Final = "NotAdmitted"
GATES_FAILED: Final = "GatesFailed"
ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
SERVING_READY: Final = "ServingReady"
SERVING_UNAVAILABLE: Final = "ServingUnavailable"
RECONCILE_ERROR: Final = "ReconcileError"
SERVING_OBJECT_INVALID: Final = "ServingObjectInvalid"
"""The API server refused the Deployment or Service modelgate rendered for the spec (422 Invalid, a
combination the ModelDeployment schema admits but the object's own validation does not)."""

# Reasons: monitoring and intervention.
METRICS_WITHIN_THRESHOLDS: Final = "MetricsWithinThresholds"
METRICS_INCONCLUSIVE: Final = "MetricsInconclusive"
METRIC_TEMPLATE_NOT_FOUND: Final = "MetricTemplateNotFound"
MONITORING_NOT_CONFIGURED: Final = "MonitoringNotConfigured"
DRIFT_DETECTED: Final = "DriftDetected"
ROLLED_BACK: Final = "RolledBack"
NO_LAST_KNOWN_GOOD: Final = "NoLastKnownGood"
QUARANTINED_REASON: Final = "Quarantined"
NOT_QUARANTINED: Final = "NotQuarantined"
RETIRING: Final = "Retiring"
TAMPER_REVERTED: Final = "TamperReverted"
"""An owned Deployment or Service was edited by someone else and put back."""
AWAITING_FIRST_CHECK: Final = "AwaitingFirstCheck"
RETENTION_EXPIRED: Final = "RetentionExpired"
"""The retention of a retired quarantined model's kept pods ended; they were deleted."""

# History actions (status.history[].action): what the operator did.
ACTION_BLOCKED: Final = "Blocked"
ACTION_ADMITTED: Final = "Admitted"
ACTION_SUSPENDED: Final = "Suspended"
ACTION_DRIFT_DETECTED: Final = "DriftDetected"
ACTION_ROLLED_BACK: Final = "RolledBack"
ACTION_QUARANTINED: Final = "Quarantined"
ACTION_RELEASED: Final = "Released"
ACTION_RETIRED: Final = "Retired"
ACTION_TAMPER_REVERTED: Final = "TamperReverted"
"""An owned Deployment or Service differed from what modelgate wants; the replace removed the edit."""
ACTION_CHECK_PASSED: Final = "CheckPassed"
ACTION_CHECK_FAILED: Final = "CheckFailed"
ACTION_CHECK_INCONCLUSIVE: Final = "CheckInconclusive"
ACTION_METRICS_INCONCLUSIVE: Final = "MetricsInconclusive"
ACTION_NOT_OWNED: Final = "ServingObjectNotOwned"
"""A Deployment or Service with the model's name exists and no ModelDeployment of that uid controls
it: modelgate neither adopts nor overwrites it."""
ACTION_SERVING_OBJECT_INVALID: Final = SERVING_OBJECT_INVALID
"""The API server refused a serving object rendered for the spec; told once per refusal, retried
with backoff until the spec (or whatever the API server objected to) changes."""
ACTION_RETENTION_EXPIRED: Final = "RetentionExpired"
ACTION_RECERTIFICATION_DUE: Final = "RecertificationDue"
"""The RecertificationDue condition turned True: told once (a Warning Event) at the start of the
warning window, or at the lapse when there was no window."""

# ModelDeployment status.compliance.
COMPLIANT: Final = "Compliant"
NOT_COMPLIANT: Final = "NotCompliant"
"""The revision that serves no longer satisfies its gates and keeps serving (onRevocation: keep)."""

HISTORY_LIMIT: Final = 50
"""status.history keeps the newest entries up to this many (the CRD's maxItems)."""
