"""The pydantic models: examples round-trip, bad values are refused, CEL rules have pydantic mirrors."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from modelgate.api import conditions
from modelgate.api.v1alpha1 import (
    API_VERSION,
    KINDS,
    Condition,
    GovernancePolicy,
    LabelSelector,
    MetricCheck,
    MetricTemplate,
    ModelApproval,
    ModelCard,
    ModelDeployment,
    ModelDeploymentStatus,
    ModelEvaluation,
    parse,
    parse_duration,
)
from modelgate.api.v1alpha1.common import MAX_DURATION

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIGEST = "sha256:" + "ab" * 32


def example_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(EXAMPLES.glob("*/*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                yield f"{path.relative_to(EXAMPLES)}#{index}", doc


MODELGATE_EXAMPLES = [
    pytest.param(doc, id=name) for name, doc in example_documents() if doc["apiVersion"] == API_VERSION
]


def example(kind: str) -> dict[str, Any]:
    """A deep copy of the first example of a kind, to mutate in a test."""
    for _, doc in example_documents():
        if doc["kind"] == kind and doc["apiVersion"] == API_VERSION:
            return copy.deepcopy(doc)
    raise AssertionError(f"no example of kind {kind}")


# --- examples -----------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", MODELGATE_EXAMPLES)
def test_example_round_trips_through_the_models_unchanged(doc: dict[str, Any]) -> None:
    obj = parse(doc)

    assert type(obj) is KINDS[doc["kind"]]
    assert obj.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc
    # With defaults filled in, the dump is a superset that parses back to the same object.
    full = obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert parse(full) == obj
    assert set(doc["spec"]) <= set(full["spec"])


def test_examples_cover_every_kind_and_nothing_foreign_but_namespaces_and_rbac() -> None:
    docs = [doc for _, doc in example_documents()]
    operator_written = {"ModelRecord"}  # nobody applies one; examples/05-quarantine/README.md shows one
    assert {d["kind"] for d in docs if d["apiVersion"] == API_VERSION} == set(KINDS) - operator_written
    assert {d["kind"] for d in docs if d["apiVersion"] != API_VERSION} == {"Namespace", "Role", "RoleBinding"}


def test_every_example_folder_has_a_readme() -> None:
    folders = [p for p in EXAMPLES.iterdir() if p.is_dir()]
    assert len(folders) >= 4
    assert all((folder / "README.md").is_file() for folder in folders)


def test_example_evidence_binds_to_the_deployment_digest() -> None:
    for folder in ("03-first-model", "04-second-version"):
        docs = [yaml.safe_load(p.read_text()) for p in sorted((EXAMPLES / folder).glob("*.yaml"))]
        mdep = next(ModelDeployment.model_validate(d) for d in docs if d["kind"] == "ModelDeployment")
        evidence = [parse(d) for d in docs if d["kind"] in ("ModelApproval", "ModelEvaluation")]
        referenced = {r.name for r in mdep.spec.approvals} | {r.name for r in mdep.spec.evaluations}
        assert {e.name for e in evidence} == referenced
        for item in evidence:
            assert isinstance(item, ModelApproval | ModelEvaluation)
            assert item.spec.model.digest == mdep.spec.model.digest
            assert item.spec.model.version == mdep.spec.model.version


# --- parse ----------------------------------------------------------------------------------------


def test_parse_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown kind 'ModelRoute'"):
        parse({"apiVersion": API_VERSION, "kind": "ModelRoute", "metadata": {}, "spec": {}})


def test_parse_refuses_another_api_version() -> None:
    doc = example("ModelDeployment") | {"apiVersion": "modelgate.io/v1"}
    with pytest.raises(ValueError, match=re.escape("unsupported apiVersion 'modelgate.io/v1'")):
        parse(doc)


def test_python_attributes_are_snake_case_and_wire_names_camel_case() -> None:
    card = ModelCard(owner="team", risk_level="high", intended_use="scoring")
    assert card.model_dump(by_alias=True, exclude_none=True) == {
        "owner": "team",
        "intendedUse": "scoring",
        "riskLevel": "high",
    }
    assert ModelCard.model_validate({"owner": "team", "riskLevel": "minimal"}).risk_level == "minimal"


def test_defaults_match_the_spec() -> None:
    doc = example("ModelDeployment")
    for key in ("replicas", "port"):
        del doc["spec"]["serving"][key]
    metric = doc["spec"]["monitoring"]["metrics"][0]
    metric.pop("failureLimit", None)
    del doc["spec"]["monitoring"]["interval"], doc["spec"]["monitoring"]["onDrift"]
    mdep = ModelDeployment.model_validate(doc)

    assert (mdep.spec.serving.replicas, mdep.spec.serving.port) == (1, 8080)
    assert mdep.spec.monitoring is not None
    assert (mdep.spec.monitoring.interval, mdep.spec.monitoring.on_drift) == ("1m", "rollback")
    assert (
        mdep.spec.monitoring.metrics[0].failure_limit,
        mdep.spec.monitoring.metrics[0].inconclusive_limit,
    ) == (
        3,
        3,
    )

    policy = GovernancePolicy.model_validate(
        {"kind": "GovernancePolicy", "spec": {"approvals": [{"role": "r", "approvers": {"groups": ["g"]}}]}}
    )
    assert policy.spec.approvals[0].count == 1
    assert (policy.spec.separation_of_duties, policy.spec.on_revocation) == (False, "suspend")

    template = MetricTemplate.model_validate({"kind": "MetricTemplate", "spec": {"query": "up"}})
    labels = template.spec.labels
    assert (labels.namespace, labels.model, labels.version) == ("namespace", "model", "version")


# --- validation: one table, each row names the behaviour ------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets a dotted path (list indexes as numbers) under the object."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


_DELETE = object()
MDEP_METRIC = "spec.monitoring.metrics.0"

INVALID = [
    (
        "digest_must_be_sha256_with_64_lowercase_hex",
        "ModelDeployment",
        _set("spec.model.digest", "sha256:abc"),
        "spec.model.digest",
    ),
    (
        "uppercase_hex_digest_is_refused",
        "ModelDeployment",
        _set("spec.model.digest", "sha256:" + "AB" * 32),
        "spec.model.digest",
    ),
    (
        "digest_needs_sha256_prefix",
        "ModelDeployment",
        _set("spec.model.digest", "ab" * 32),
        "spec.model.digest",
    ),
    (
        "model_name_must_be_a_label_value",
        "ModelDeployment",
        _set("spec.model.name", "Fraud Detector!"),
        "spec.model.name",
    ),
    (
        "unknown_risk_level_is_refused",
        "ModelDeployment",
        _set("spec.card.riskLevel", "extreme"),
        "spec.card.riskLevel",
    ),
    ("card_owner_is_required", "ModelDeployment", _set("spec.card.owner", _DELETE), "spec.card.owner"),
    ("card_owner_must_not_be_empty", "ModelDeployment", _set("spec.card.owner", ""), "spec.card.owner"),
    (
        "replicas_must_not_be_negative",
        "ModelDeployment",
        _set("spec.serving.replicas", -1),
        "spec.serving.replicas",
    ),
    (
        "replicas_must_be_a_number",
        "ModelDeployment",
        _set("spec.serving.replicas", "three"),
        "spec.serving.replicas",
    ),
    ("port_zero_is_refused", "ModelDeployment", _set("spec.serving.port", 0), "spec.serving.port"),
    ("port_above_65535_is_refused", "ModelDeployment", _set("spec.serving.port", 65536), "spec.serving.port"),
    (
        "quantity_must_look_like_a_quantity",
        "ModelDeployment",
        _set("spec.serving.resources.limits.memory", "lots"),
        "spec.serving.resources.limits.memory",
    ),
    (
        "env_must_not_set_model_uri",
        "ModelDeployment",
        _set("spec.serving.env", [{"name": "MODEL_URI", "value": "x"}]),
        "spec.serving",
    ),
    (
        "env_names_are_unique",
        "ModelDeployment",
        _set("spec.serving.env", [{"name": "A"}, {"name": "A"}]),
        "spec.serving",
    ),
    (
        "approval_reference_name_must_not_be_empty",
        "ModelDeployment",
        _set("spec.approvals.0.name", ""),
        "spec.approvals.0.name",
    ),
    (
        "approval_references_are_unique",
        "ModelDeployment",
        _set("spec.approvals.1.name", "fraud-detector-v1-ethics-board"),
        "spec",
    ),
    (
        "interval_must_be_a_duration",
        "ModelDeployment",
        _set("spec.monitoring.interval", "every minute"),
        "spec.monitoring.interval",
    ),
    (
        "unknown_on_drift_is_refused",
        "ModelDeployment",
        _set("spec.monitoring.onDrift", "explode"),
        "spec.monitoring.onDrift",
    ),
    (
        "failure_limit_must_be_at_least_one",
        "ModelDeployment",
        _set(f"{MDEP_METRIC}.failureLimit", 0),
        "spec.monitoring.metrics.0.failureLimit",
    ),
    (
        "inconclusive_limit_must_be_at_least_one",
        "ModelDeployment",
        _set(f"{MDEP_METRIC}.inconclusiveLimit", 0),
        "spec.monitoring.metrics.0.inconclusiveLimit",
    ),
    (
        "metric_min_above_max_is_refused",
        "ModelDeployment",
        _set(f"{MDEP_METRIC}.min", 0.5),
        "spec.monitoring.metrics.0",
    ),
    (
        "metric_needs_template_ref_or_query_not_both",
        "ModelDeployment",
        _set(f"{MDEP_METRIC}.query", "up"),
        "spec.monitoring.metrics.0",
    ),
    (
        "metric_needs_template_ref_or_query",
        "ModelDeployment",
        _set(f"{MDEP_METRIC}.templateRef", _DELETE),
        "spec.monitoring.metrics.0",
    ),
    (
        "metric_needs_a_threshold",
        "ModelDeployment",
        _set(f"{MDEP_METRIC}.max", _DELETE),
        "spec.monitoring.metrics.0",
    ),
    (
        "metric_names_are_unique",
        "ModelDeployment",
        _set("spec.monitoring.metrics.1.name", "psi"),
        "spec.monitoring",
    ),
    ("unknown_spec_field_is_refused", "ModelDeployment", _set("spec.bogus", True), "spec.bogus"),
    ("unknown_decision_is_refused", "ModelApproval", _set("spec.decision", "maybe"), "spec.decision"),
    ("approval_needs_a_role", "ModelApproval", _set("spec.role", _DELETE), "spec.role"),
    ("approval_role_must_not_be_empty", "ModelApproval", _set("spec.role", ""), "spec.role"),
    (
        "expires_at_must_be_a_timestamp",
        "ModelApproval",
        _set("spec.expiresAt", "next year"),
        "spec.expiresAt",
    ),
    (
        "expires_at_needs_a_time_zone",
        "ModelApproval",
        _set("spec.expiresAt", "2027-01-01T00:00:00"),
        "spec.expiresAt",
    ),
    ("evaluation_needs_a_metric", "ModelEvaluation", _set("spec.metrics", {}), "spec.metrics"),
    (
        "evaluation_metric_must_be_a_number",
        "ModelEvaluation",
        _set("spec.metrics.accuracy", "high"),
        "spec.metrics.accuracy",
    ),
    (
        "evaluated_at_must_be_a_timestamp",
        "ModelEvaluation",
        _set("spec.evaluatedAt", "yesterday"),
        "spec.evaluatedAt",
    ),
    (
        "dataset_digest_must_be_sha256",
        "ModelEvaluation",
        _set("spec.dataset.digest", "md5:abc"),
        "spec.dataset.digest",
    ),
    (
        "policy_approval_count_must_be_at_least_one",
        "GovernancePolicy",
        _set("spec.approvals.0.count", 0),
        "spec.approvals.0.count",
    ),
    (
        "policy_approvers_must_name_someone",
        "GovernancePolicy",
        _set("spec.approvals.0.approvers", {}),
        "spec.approvals.0.approvers",
    ),
    ("policy_roles_are_unique", "GovernancePolicy", _set("spec.approvals.1.role", "ethics-board"), "spec"),
    (
        "unknown_required_card_field_is_refused",
        "GovernancePolicy",
        _set("spec.requiredCardFields.0", "colour"),
        "spec.requiredCardFields.0",
    ),
    (
        "unknown_risk_level_in_policy_is_refused",
        "GovernancePolicy",
        _set("spec.riskLevels", ["severe"]),
        "spec.riskLevels.0",
    ),
    (
        "policy_max_age_must_be_a_duration",
        "GovernancePolicy",
        _set("spec.evaluations.0.maxAge", "a month"),
        "spec.evaluations.0.maxAge",
    ),
    (
        "policy_evaluation_min_above_max_is_refused",
        "GovernancePolicy",
        _set("spec.evaluations.0.max", 0.5),
        "spec.evaluations.0",
    ),
    (
        "unknown_on_revocation_is_refused",
        "GovernancePolicy",
        _set("spec.onRevocation", "ignore"),
        "spec.onRevocation",
    ),
    (
        "unknown_operational_field_is_refused",
        "GovernancePolicy",
        _set("spec.operationalFields", ["image"]),
        "spec.operationalFields.0",
    ),
    (
        "unreadable_quarantine_retention_is_refused",
        "GovernancePolicy",
        _set("spec.quarantineRetention", "forever"),
        "spec.quarantineRetention",
    ),
    (
        "unknown_on_inconclusive_is_refused",
        "GovernancePolicy",
        _set("spec.onInconclusive", "ignore"),
        "spec.onInconclusive",
    ),
    (
        "selector_in_needs_values",
        "GovernancePolicy",
        _set(
            "spec.namespaceSelector.matchExpressions",
            [{"key": "tier", "operator": "In"}],
        ),
        "spec.namespaceSelector.matchExpressions.0",
    ),
    (
        "selector_exists_takes_no_values",
        "GovernancePolicy",
        _set(
            "spec.namespaceSelector.matchExpressions",
            [{"key": "tier", "operator": "Exists", "values": ["a"]}],
        ),
        "spec.namespaceSelector.matchExpressions.0",
    ),
    ("template_query_must_not_be_empty", "MetricTemplate", _set("spec.query", ""), "spec.query"),
    (
        "template_label_must_be_a_prometheus_label",
        "MetricTemplate",
        _set("spec.labels", {"model": "model-name"}),
        "spec.labels.model",
    ),
]


@pytest.mark.parametrize(("kind", "mutate", "where"), [pytest.param(k, m, w, id=i) for i, k, m, w in INVALID])
def test_invalid_values_are_refused_at_the_offending_field(kind: str, mutate: Mutation, where: str) -> None:
    doc = example(kind)
    mutate(doc)
    with pytest.raises(ValidationError) as err:
        parse(doc)
    locations = [".".join(str(part) for part in e["loc"]) for e in err.value.errors()]
    assert any(loc == where or loc.startswith(f"{where}.") for loc in locations), locations


def test_digest_must_be_sha256_with_64_lowercase_hex() -> None:
    doc = example("ModelDeployment")
    doc["spec"]["model"]["digest"] = "sha256:" + "a" * 63
    with pytest.raises(ValidationError) as err:
        parse(doc)
    assert err.value.errors()[0]["loc"] == ("spec", "model", "digest")


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_any_64_lowercase_hex_digits_make_a_valid_digest(hex_digits: str) -> None:
    doc = example("ModelApproval")
    doc["spec"]["model"]["digest"] = f"sha256:{hex_digits}"
    assert parse(doc).spec.model.digest == f"sha256:{hex_digits}"  # type: ignore[union-attr]


def test_min_equal_to_max_is_allowed() -> None:
    check = MetricCheck(name="psi", query="up", min=0.25, max=0.25)
    assert check.min == check.max


def test_min_above_max_message_names_both_values() -> None:
    with pytest.raises(ValidationError, match=r"min must be less than or equal to max \(min=2.0, max=1.0\)"):
        MetricCheck(name="psi", query="up", min=2, max=1)


def test_policy_monitoring_metric_names_are_unique() -> None:
    metric = {"name": "psi", "query": "up", "max": 1}
    with pytest.raises(ValidationError, match="duplicate monitoring metric name 'psi'"):
        GovernancePolicy.model_validate(
            {"kind": "GovernancePolicy", "spec": {"monitoring": [metric, metric]}}
        )


# --- status ----------------------------------------------------------------------------------------


def test_status_serializes_as_metav1_conditions_in_camel_case() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    status = ModelDeploymentStatus(
        observed_generation=3,
        phase=conditions.PHASE_BLOCKED,
        conditions=[
            Condition(
                type=conditions.READY,
                status=conditions.FALSE,
                observed_generation=3,
                last_transition_time=now,
                reason=conditions.APPROVAL_MISSING,
                message="approval by role ethics-board missing",
            )
        ],
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped["observedGeneration"] == 3
    assert dumped["conditions"][0] == {
        "type": "Ready",
        "status": "False",
        "observedGeneration": 3,
        "lastTransitionTime": "2026-11-28T12:00:00Z",
        "reason": "ApprovalMissing",
        "message": "approval by role ethics-board missing",
    }
    assert ModelDeploymentStatus.model_validate(dumped) == status
    assert status.condition("Ready") is not None
    assert status.condition("Drifted") is None


def test_condition_reason_must_be_camel_case() -> None:
    with pytest.raises(ValidationError):
        Condition(
            type="Ready",
            status="True",
            last_transition_time=datetime.now(UTC),
            reason="not camel case",
            message="",
        )


def test_history_is_bounded_to_fifty_entries() -> None:
    entry = {"time": "2026-11-28T12:00:00Z", "action": "Blocked", "reason": "NoPolicy"}
    ModelDeploymentStatus.model_validate({"history": [entry] * conditions.HISTORY_LIMIT})
    with pytest.raises(ValidationError):
        ModelDeploymentStatus.model_validate({"history": [entry] * (conditions.HISTORY_LIMIT + 1)})


def test_every_phase_is_accepted_by_the_status_model() -> None:
    for phase in conditions.PHASES:
        assert ModelDeploymentStatus.model_validate({"phase": phase}).phase == phase


# --- helpers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("30d", timedelta(days=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_parse_duration_reads_go_style_durations_with_days(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "-5m", "1w", "5mm"])
def test_parse_duration_refuses_what_the_schema_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["ms", "s", "m", "h", "d"])), min_size=1))
def test_parse_duration_sums_its_parts(parts: list[tuple[int, str]]) -> None:
    """The sum of the parts, saturated at MAX_DURATION (100 years)."""
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    text = "".join(f"{n}{unit}" for n, unit in parts)
    expected = min(timedelta(seconds=sum(n * scale[unit] for n, unit in parts)), MAX_DURATION)
    assert abs(parse_duration(text) - expected) < timedelta(microseconds=10)


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({"matchLabels": {"env": "prod"}}, {"env": "prod", "team": "x"}, True),
        ({"matchLabels": {"env": "prod"}}, {"env": "dev"}, False),
        (
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "stage"]}]},
            {"env": "stage"},
            True,
        ),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]},
            {"env": "dev"},
            False,
        ),
        ({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, {"env": "x"}, False),
    ],
)
def test_label_selector_follows_kubernetes_semantics(
    selector: dict[str, Any], labels: dict[str, str], matches: bool
) -> None:
    assert LabelSelector.model_validate(selector).matches(labels) is matches


@pytest.mark.parametrize("value", [12345, 1.5, True])
def test_a_date_time_given_as_a_number_is_refused(value: object) -> None:
    """pydantic alone reads a number as seconds since the epoch; the schema wants RFC 3339."""
    record = {
        "apiVersion": API_VERSION,
        "kind": "ModelRecord",
        "metadata": {"name": "fraud-000000000000", "namespace": "ns"},
        "spec": {"model": {"name": "fraud", "digest": DIGEST}, "kept": {"retainUntil": value}},
    }
    with pytest.raises(ValidationError, match="RFC 3339"):
        parse(record)
