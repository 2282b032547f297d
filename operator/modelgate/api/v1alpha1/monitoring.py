"""Monitoring: the metric checks a ModelDeployment (or a GovernancePolicy) asks for, and MetricTemplate.

A metric check is either a reference to a cluster-wide MetricTemplate (one PromQL query run once per
interval for every model that uses it, its result fanned out by the namespace/model/version labels)
or an inline PromQL query with {{namespace}}, {{model}} and {{version}} placeholders.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from modelgate.api.v1alpha1.common import (
    AGE_COLUMN,
    MAX_TEXT,
    THRESHOLD_RULE,
    ApiModel,
    Duration,
    KubeObject,
    LabelValue,
    ObjectName,
    PrinterColumn,
    ResourceInfo,
    cel,
    check_thresholds,
    check_unique,
    list_map,
)

MAX_METRICS = 32

Query = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
PromLabel = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
]
OnDrift = Literal["rollback", "quarantine", "alert"]


class TemplateRef(ApiModel):
    """A reference to a cluster-scoped MetricTemplate."""

    name: ObjectName
    """Name of the MetricTemplate."""


class MetricCheck(ApiModel):
    """One metric watched in Prometheus, with the thresholds it must stay within."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.templateRef) != has(self.query)",
                    "exactly one of templateRef or query must be set on a monitoring metric",
                ),
                cel(
                    "has(self.min) || has(self.max)",
                    "a monitoring metric needs a threshold: set min, max or both",
                ),
                THRESHOLD_RULE,
            ]
        }
    )

    name: LabelValue
    """Name of the check, unique within the list; it names the reading in status.metrics, events and
    logs (for example psi, error-rate, latency-p99)."""
    template_ref: TemplateRef | None = None
    """The MetricTemplate whose query produces this metric. Exactly one of templateRef and query is
    set."""
    query: Query | None = None
    """An inline PromQL query returning one sample for this model. The placeholders {{namespace}},
    {{model}} and {{version}} are replaced with the ModelDeployment's namespace, spec.model.name and
    spec.model.version before the query runs. Exactly one of templateRef and query is set."""
    min: float | None = None
    """Lowest acceptable value (inclusive). A reading below it counts as a failure."""
    max: float | None = None
    """Highest acceptable value (inclusive). A reading above it counts as a failure."""
    failure_limit: int = Field(3, ge=1, le=1000)
    """How many consecutive failing readings trigger spec.monitoring.onDrift. A passing reading resets
    the count; an inconclusive one leaves it unchanged."""
    inconclusive_limit: int = Field(3, ge=1, le=1000)
    """How many consecutive inconclusive readings (no data, Prometheus unreachable, more than one
    series) make the Drifted condition Unknown. Inconclusive readings never trigger onDrift and never
    count as a pass."""

    @model_validator(mode="after")
    def _one_source_and_sane_thresholds(self) -> MetricCheck:
        if (self.template_ref is None) == (self.query is None):
            raise ValueError("exactly one of templateRef or query must be set on a monitoring metric")
        if self.min is None and self.max is None:
            raise ValueError("a monitoring metric needs a threshold: set min, max or both")
        check_thresholds(self.min, self.max)
        return self


class Monitoring(ApiModel):
    """How the served model is watched once admitted, and what happens when it drifts."""

    interval: Duration = "1m"
    """How often every metric is checked, as a duration such as 30s, 5m or 1h."""
    metrics: list[MetricCheck] = Field(
        default_factory=list, max_length=MAX_METRICS, json_schema_extra=list_map("name")
    )
    """The metrics to check. Names must be unique."""
    on_drift: OnDrift = "rollback"
    """What to do when a metric fails failureLimit times in a row: rollback (serve the last known good
    revision again, or stop serving if there is none), quarantine (cut traffic and keep the pods for
    forensics; re-admission needs a new approval given after the quarantine) or alert (record the
    drift in conditions, events and the audit log only)."""

    @model_validator(mode="after")
    def _unique_names(self) -> Monitoring:
        check_unique((m.name for m in self.metrics), "monitoring metric name")
        return self


class MetricLabels(ApiModel):
    """Names of the labels that identify the model in the template query's result."""

    namespace: PromLabel = "namespace"
    """Label carrying the ModelDeployment's namespace."""
    model: PromLabel = "model"
    """Label carrying the model name (spec.model.name)."""
    version: PromLabel = "version"
    """Label carrying the model version (spec.model.version)."""
    slice: PromLabel | None = None
    """Label the query groups by slice of the traffic, for example region: the model then has one
    series per slice, a check fails when any slice crosses its threshold, and the reading names the
    worst slice. Without it the model must have exactly one series."""


class MetricTemplateSpec(ApiModel):
    """A PromQL query evaluated once per interval for every model that references it."""

    query: Query
    """PromQL returning one series per model, labelled with the namespace, model and version labels
    named in spec.labels. Its value for a model is compared with that model's min and max."""
    labels: MetricLabels = MetricLabels()
    """Which result labels identify the model; defaults to namespace, model and version."""
    description: Annotated[str, StringConstraints(max_length=1024)] | None = None
    """What the metric measures and how to read it, for people choosing thresholds."""


class MetricTemplate(KubeObject):
    """A reusable PromQL query for a model metric, shared by every ModelDeployment that references it
    in spec.monitoring.metrics[].templateRef. Cluster-scoped."""

    RESOURCE: ClassVar[ResourceInfo] = ResourceInfo(
        kind="MetricTemplate",
        plural="metrictemplates",
        short_names=("mtpl",),
        scope="Cluster",
        printer_columns=(
            PrinterColumn("Description", "string", ".spec.description", "What the metric measures."),
            PrinterColumn("Query", "string", ".spec.query", "The PromQL query.", priority=1),
            AGE_COLUMN,
        ),
    )

    kind: Literal["MetricTemplate"] = "MetricTemplate"
    """Kind of the object: MetricTemplate."""
    spec: MetricTemplateSpec
    """The query and the labels that identify each model in its result."""
