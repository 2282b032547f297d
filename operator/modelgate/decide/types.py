"""What a plan decides from and what it returns: `Observed` (the frozen snapshot a reconcile gathers),
`Decision` (one auditable act) and `Plan` (everything the thin handlers then apply)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval, ModelDeployment, ModelEvaluation
from modelgate.decide.monitoring import Readings, Target
from modelgate.decide.seal import Signer


@dataclass(frozen=True)
class Refusal:
    """The API server refused the last write of a serving object (422 Invalid). A fact the reconcile
    loop keeps (runtime/reconcile.py `Watermarks`), not one the indexes show: nothing is stored."""

    applied_hash: str
    """The modelgate.io/applied-hash of the refused object: the refusal is about that object only,
    so a plan that wants another one (the spec was fixed) no longer reports it."""
    message: str
    """What the API server objected to: each field and why, as it said it."""


@dataclass(frozen=True)
class Observed:
    """Everything one reconcile decides from, gathered before any decision."""

    body: Mapping[str, Any]
    """The ModelDeployment as the API server returned it (metadata, spec, status)."""
    deployment: ModelDeployment
    policies: Sequence[GovernancePolicy]
    """The policies that select this model (namespace labels and risk level already matched)."""
    approvals: Sequence[ModelApproval]
    """Every ModelApproval of the model (spec.model.name) in the namespace, referenced or not."""
    evaluations: Sequence[ModelEvaluation]
    """Every ModelEvaluation of the model in the namespace, referenced or not."""
    owned_deployment: Mapping[str, Any] | None
    owned_service: Mapping[str, Any] | None
    allow_no_policy: bool = False
    seal_valid: Mapping[tuple[str, str], bool] | None = None
    """Whether each approval and evaluation (kind, name) carries a valid seal; None when sealing is
    not enforced."""
    references: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    """(kind, name) -> whether it exists, for every name in spec.approvals and spec.evaluations."""
    readings: Readings | None = None
    """A round of monitoring samples not yet taken into account, if any."""
    records: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Interventions in force on this model's digests from its ModelRecords (digest -> {reason,
    time}): they outlive the ModelDeployment, so a delete and re-create lifts nothing."""
    refusals: Mapping[str, Refusal] = field(default_factory=dict)
    """Kind (Deployment, Service) -> the API server's refusal of the last write of it, if refused."""
    signer: Signer | None = None
    """The operator's current key: decision records are sealed with it (None: unsealed)."""

    def seal_ok(self, evidence: ModelApproval | ModelEvaluation) -> bool:
        return self.seal_valid is None or self.seal_valid.get((evidence.kind, evidence.name), False)


@dataclass(frozen=True)
class Decision:
    """One auditable decision: an Event, a history entry and a JSON log line."""

    action: str
    reason: str
    message: str
    time: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    revision: Mapping[str, str] | None = None
    warning: bool = False
    id: str = ""
    """Stable across a retry of the same decision (decide/ids.py); empty until identified."""
    record: Mapping[str, Any] | None = None
    """The decision as history and the audit log keep it, sealed (decide/trail.py); None until
    the plan made it."""


@dataclass(frozen=True)
class Plan:
    """What one reconcile wants done: the status to store, the serving objects to write, the
    decisions to record, when to decide again and what to monitor."""

    status: dict[str, Any]
    deployment: dict[str, Any] | None
    """The Deployment to create or replace, or None to leave serving objects as they are."""
    service: dict[str, Any] | None
    decisions: tuple[Decision, ...]
    requeue_at: dt.datetime | None
    watch: Target | None = None
    """What the monitor should query next for this model (None: nothing to monitor)."""
    label_pods: bool | None = None
    """Label the serving pods quarantined (True) or release them (False); None: leave them."""
    verdicts: tuple[str, ...] = ()
    """The verdict of every check taken into account by this plan (for the operator's metrics)."""
    evidence_expires_at: dt.datetime | None = None
    """When the admitted revision's verdict next changes by itself (an approval expiring, an
    evaluation going stale); None when it is not admitted or nothing it rests on expires. For the
    operator's metrics: an alert warns before a serving model loses its evidence."""
