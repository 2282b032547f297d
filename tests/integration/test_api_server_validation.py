"""The generated CRDs against a real kube-apiserver: examples apply, bad input is refused and not stored.

Fixtures (tests/integration/conftest.py): `kubectl(*args, input=None, check=True)` runs kubectl
against the test cluster in text mode; `namespace` is a fresh namespace per test, with the CRDs from
crds/ installed cluster-wide. Namespaced objects are applied into that namespace; cluster-scoped
ones (GovernancePolicy, MetricTemplate, Namespace) get a unique name suffix and are deleted after
the test, so tests can run in any order against a shared cluster.

Error texts are matched by fragments that name the field and the rule, not by whole messages, so a
reworded apiserver message fails only when it stops saying what is wrong and where.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from modelgate.api.v1alpha1 import API_VERSION, KINDS, parse

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/*.yaml"))
CLUSTER_SCOPED = {"Namespace"} | {kind for kind, cls in KINDS.items() if not cls.RESOURCE.namespaced}


class Kubectl(Protocol):
    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...


Doc = dict[str, Any]
Mutation = Callable[[Doc], None]


# --- helpers ---------------------------------------------------------------------------------------


def load(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def example(kind: str) -> Doc:
    """A deep copy of the first example of a modelgate kind."""
    for path in EXAMPLE_FILES:
        for doc in load(path):
            if doc["apiVersion"] == API_VERSION and doc["kind"] == kind:
                return copy.deepcopy(doc)
    raise AssertionError(f"no example of kind {kind}")


def localize(docs: list[Doc], namespace: str, suffix: str) -> list[Doc]:
    """Move namespaced objects into the test namespace, give cluster-scoped ones a unique name."""
    out = []
    for doc in copy.deepcopy(docs):
        meta = doc.setdefault("metadata", {})
        if doc["kind"] in CLUSTER_SCOPED:
            meta["name"] = f"{meta['name']}-{suffix}"
            meta.pop("namespace", None)
        else:
            meta["namespace"] = namespace
        out.append(doc)
    return out


def dump(docs: list[Doc]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def resource(kind: str) -> str:
    """The fully qualified resource kubectl should use for a kind."""
    if kind in KINDS:
        return KINDS[kind].RESOURCE.crd_name
    return {
        "Namespace": "namespaces",
        "Role": "roles.rbac.authorization.k8s.io",
        "RoleBinding": "rolebindings.rbac.authorization.k8s.io",
    }[kind]


def get_args(doc: Doc) -> list[str]:
    args = ["get", resource(doc["kind"]), doc["metadata"]["name"]]
    if doc["kind"] not in CLUSTER_SCOPED:
        args += ["-n", doc["metadata"]["namespace"]]
    return args


STAMPED = {"approved_by", "submitted_by", "seal", "digest_set_by"}


def unstamped(spec: Any) -> Any:
    """A spec without the fields the identity webhook writes (present when the operator runs)."""
    return spec.model_copy(update=dict.fromkeys(STAMPED & set(type(spec).model_fields)))


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def cluster_scoped(kubectl: Kubectl) -> Iterator[list[Doc]]:
    """Cluster-scoped objects a test may have created; deleted afterwards."""
    created: list[Doc] = []
    yield created
    if created:
        kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=dump(created), check=False)


def apply(kubectl: Kubectl, docs: list[Doc], *flags: str) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", *flags, "-f", "-", input=dump(docs), check=False)


def assert_not_stored(kubectl: Kubectl, doc: Doc) -> None:
    result = kubectl(*get_args(doc), check=False)
    assert result.returncode != 0, f"{doc['kind']} {doc['metadata']['name']} was stored:\n{result.stdout}"
    assert "NotFound" in result.stderr or "not found" in result.stderr, result.stderr


def stored(kubectl: Kubectl, doc: Doc) -> Doc:
    result = kubectl(*get_args(doc), "-o", "json")
    stored_doc: Doc = json.loads(result.stdout)
    return stored_doc


# --- every example applies ----------------------------------------------------------------------------

APPLY_MODES = [pytest.param((), id="client-side"), pytest.param(("--server-side",), id="server-side")]


@pytest.mark.parametrize("flags", APPLY_MODES)
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_applies_cleanly_and_is_stored_as_the_models_read_it(
    kubectl: Kubectl,
    namespace: str,
    suffix: str,
    cluster_scoped: list[Doc],
    path: Path,
    flags: tuple[str, ...],
) -> None:
    docs = localize(load(path), namespace, suffix)
    cluster_scoped.extend(d for d in docs if d["kind"] in CLUSTER_SCOPED)

    result = apply(kubectl, docs, *flags)
    assert result.returncode == 0, result.stderr
    again = apply(kubectl, docs, *flags)
    assert again.returncode == 0, f"re-applying the same manifest failed:\n{again.stderr}"

    for doc in docs:
        obj = stored(kubectl, doc)
        if doc["apiVersion"] == API_VERSION:
            # The apiserver's defaults and the models' defaults agree: the stored spec parses to the
            # same model as the manifest.
            assert unstamped(parse(obj).spec) == unstamped(parse(doc).spec)


def test_examples_apply_in_order_as_one_scenario(
    kubectl: Kubectl, namespace: str, suffix: str, cluster_scoped: list[Doc]
) -> None:
    for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        docs = localize([d for path in sorted(folder.glob("*.yaml")) for d in load(path)], namespace, suffix)
        cluster_scoped.extend(d for d in docs if d["kind"] in CLUSTER_SCOPED)
        result = apply(kubectl, docs)
        assert result.returncode == 0, f"{folder.name}: {result.stderr}"

    mdep = stored(kubectl, localize([example("ModelDeployment")], namespace, suffix)[0])
    assert mdep["spec"]["model"]["version"] == "v3"  # 07-fairness is the story's last version


# --- bad manifests are refused and nothing is stored ---------------------------------------------------

_DELETE = object()


def _set(path: str, value: Any) -> Mutation:
    """Set (or with _DELETE remove) a dotted path; numeric parts index lists."""

    def mutate(doc: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return mutate


METRIC = "spec.monitoring.metrics.0"  # psi: templateRef, max 0.25

# A fragment of the apiserver's error, or alternatives of which one must appear.
Fragment = str | tuple[str, ...]

# (id, kind, mutation, fragments of the apiserver's error that must all appear)
BAD_MANIFESTS: list[tuple[str, str, Mutation, tuple[Fragment, ...]]] = [
    (
        "digest-too-short",
        "ModelDeployment",
        _set("spec.model.digest", "sha256:abc"),
        ("spec.model.digest", "should match", "^sha256:[0-9a-f]{64}$"),
    ),
    (
        "digest-uppercase-hex",
        "ModelDeployment",
        _set("spec.model.digest", "sha256:" + "AB" * 32),
        ("spec.model.digest", "should match"),
    ),
    (
        "digest-without-algorithm",
        "ModelDeployment",
        _set("spec.model.digest", "ab" * 32),
        ("spec.model.digest", "should match"),
    ),
    (
        "model-name-not-a-label-value",
        "ModelDeployment",
        _set("spec.model.name", "Fraud Detector!"),
        ("spec.model.name", "should match"),
    ),
    (
        "metric-min-above-max",
        "ModelDeployment",
        _set(f"{METRIC}.min", 0.5),
        ("spec.monitoring.metrics[0].min", "min must be less than or equal to max"),
    ),
    (
        "metric-with-template-ref-and-query",
        "ModelDeployment",
        _set(f"{METRIC}.query", "up"),
        ("spec.monitoring.metrics[0]", "exactly one of templateRef or query must be set"),
    ),
    (
        "metric-with-neither-template-ref-nor-query",
        "ModelDeployment",
        _set(f"{METRIC}.templateRef", _DELETE),
        ("spec.monitoring.metrics[0]", "exactly one of templateRef or query must be set"),
    ),
    (
        "metric-without-threshold",
        "ModelDeployment",
        _set(f"{METRIC}.max", _DELETE),
        ("spec.monitoring.metrics[0]", "needs a threshold"),
    ),
    (
        "metric-names-not-unique",
        "ModelDeployment",
        _set("spec.monitoring.metrics.1.name", "psi"),
        # Validation reports "Duplicate value"; some versions' field manager refuses first.
        ("spec.monitoring.metrics", ("Duplicate value", "duplicate entries for key")),
    ),
    (
        "unknown-on-drift",
        "ModelDeployment",
        _set("spec.monitoring.onDrift", "explode"),
        ("spec.monitoring.onDrift", "Unsupported value", '"explode"'),
    ),
    (
        "card-owner-missing",
        "ModelDeployment",
        _set("spec.card.owner", _DELETE),
        ("spec.card.owner", "Required value"),
    ),
    (
        "card-owner-empty",
        "ModelDeployment",
        _set("spec.card.owner", ""),
        ("spec.card.owner", "should be at least 1 chars long"),
    ),
    (
        "replicas-negative",
        "ModelDeployment",
        _set("spec.serving.replicas", -1),
        ("spec.serving.replicas", "should be greater than or equal to 0"),
    ),
    (
        "replicas-a-string",
        "ModelDeployment",
        _set("spec.serving.replicas", "three"),
        ("spec.serving.replicas", "must be of type integer"),
    ),
    (
        "port-zero",
        "ModelDeployment",
        _set("spec.serving.port", 0),
        ("spec.serving.port", "should be greater than or equal to 1"),
    ),
    (
        "port-above-65535",
        "ModelDeployment",
        _set("spec.serving.port", 65536),
        ("spec.serving.port", "should be less than or equal to 65535"),
    ),
    (
        "env-sets-model-uri",
        "ModelDeployment",
        _set("spec.serving.env", [{"name": "MODEL_URI", "value": "s3://elsewhere"}]),
        ("spec.serving.env", "must not set MODEL_URI or MODEL_DIGEST"),
    ),
    (
        "unknown-risk-level",
        "ModelDeployment",
        _set("spec.card.riskLevel", "extreme"),
        ("spec.card.riskLevel", "Unsupported value", '"extreme"'),
    ),
    (
        "interval-not-a-duration",
        "ModelDeployment",
        _set("spec.monitoring.interval", "every minute"),
        ("spec.monitoring.interval", "should match"),
    ),
    (
        "failure-limit-zero",
        "ModelDeployment",
        _set(f"{METRIC}.failureLimit", 0),
        ("spec.monitoring.metrics[0].failureLimit", "should be greater than or equal to 1"),
    ),
    (
        "approval-reference-empty-name",
        "ModelDeployment",
        _set("spec.approvals.0.name", ""),
        ("spec.approvals[0].name", "should be at least 1 chars long"),
    ),
    (
        "unknown-field-in-spec",
        "ModelDeployment",
        _set("spec.bogus", True),
        ('unknown field "spec.bogus"',),
    ),
    (
        "approval-unknown-decision",
        "ModelApproval",
        _set("spec.decision", "maybe"),
        ("spec.decision", "Unsupported value", '"maybe"'),
    ),
    (
        "approval-without-role",
        "ModelApproval",
        _set("spec.role", _DELETE),
        ("spec.role", "Required value"),
    ),
    (
        "approval-expires-at-not-a-time",
        "ModelApproval",
        _set("spec.expiresAt", "next year"),
        ("spec.expiresAt", "date-time"),
    ),
    (
        "evaluation-without-metrics",
        "ModelEvaluation",
        _set("spec.metrics", {}),
        ("spec.metrics", "should have at least 1 properties"),
    ),
    (
        "evaluation-metric-a-string",
        "ModelEvaluation",
        _set("spec.metrics.accuracy", "high"),
        ("spec.metrics.accuracy", "must be of type number"),
    ),
    (
        "evaluation-evaluated-at-not-a-time",
        "ModelEvaluation",
        _set("spec.evaluatedAt", "yesterday"),
        ("spec.evaluatedAt", "date-time"),
    ),
    (
        "evaluation-dataset-digest-not-sha256",
        "ModelEvaluation",
        _set("spec.dataset.digest", "md5:0123"),
        ("spec.dataset.digest", "should match"),
    ),
    (
        "policy-approval-count-zero",
        "GovernancePolicy",
        _set("spec.approvals.0.count", 0),
        ("spec.approvals[0].count", "should be greater than or equal to 1"),
    ),
    (
        "policy-approvers-empty",
        "GovernancePolicy",
        _set("spec.approvals.0.approvers", {}),
        ("spec.approvals[0].approvers", "approvers must name at least one user or group"),
    ),
    (
        "policy-unknown-required-card-field",
        "GovernancePolicy",
        _set("spec.requiredCardFields.0", "colour"),
        ("spec.requiredCardFields[0]", "Unsupported value", '"colour"'),
    ),
    (
        "policy-evaluation-min-above-max",
        "GovernancePolicy",
        _set("spec.evaluations.0.max", 0.5),
        ("spec.evaluations[0].min", "min must be less than or equal to max"),
    ),
    (
        "policy-max-age-not-a-duration",
        "GovernancePolicy",
        _set("spec.evaluations.0.maxAge", "a month"),
        ("spec.evaluations[0].maxAge", "should match"),
    ),
    (
        "policy-selector-in-without-values",
        "GovernancePolicy",
        _set("spec.namespaceSelector.matchExpressions", [{"key": "tier", "operator": "In"}]),
        ("spec.namespaceSelector.matchExpressions[0]", "values must be non-empty for operator In"),
    ),
    (
        "policy-empty-without-allow-all",
        "GovernancePolicy",
        _set("spec", {"onRevocation": "keep"}),
        ("spec", "an empty policy", "allowAll: true"),
    ),
    (
        "policy-unknown-on-revocation",
        "GovernancePolicy",
        _set("spec.onRevocation", "ignore"),
        ("spec.onRevocation", "Unsupported value"),
    ),
    (
        "policy-unknown-operational-field",
        "GovernancePolicy",
        _set("spec.operationalFields", ["image"]),
        ("spec.operationalFields[0]", "Unsupported value"),
    ),
    (
        "policy-unreadable-quarantine-retention",
        "GovernancePolicy",
        _set("spec.quarantineRetention", "forever"),
        ("spec.quarantineRetention", "should match"),
    ),
    (
        "policy-unknown-on-inconclusive",
        "GovernancePolicy",
        _set("spec.onInconclusive", "ignore"),
        ("spec.onInconclusive", "Unsupported value"),
    ),
    (
        "template-empty-query",
        "MetricTemplate",
        _set("spec.query", ""),
        ("spec.query", "should be at least 1 chars long"),
    ),
    (
        "template-label-not-a-prometheus-label",
        "MetricTemplate",
        _set("spec.labels", {"model": "model-name"}),
        ("spec.labels.model", "should match"),
    ),
    (
        "evaluation-slices-duplicate-name",
        "ModelEvaluation",
        _set(
            "spec.slices",
            [
                {"name": "region=EU", "size": 10, "metrics": {"accuracy": 0.9}},
                {"name": "region=EU", "size": 20, "metrics": {"accuracy": 0.8}},
            ],
        ),
        ("spec.slices", "slice names must be unique"),
    ),
    (
        "evaluation-slice-negative-size",
        "ModelEvaluation",
        _set("spec.slices", [{"name": "region=EU", "size": -1, "metrics": {"accuracy": 0.9}}]),
        ("spec.slices[0].size", "should be greater than or equal to 0"),
    ),
    (
        "evaluation-too-many-slices",
        "ModelEvaluation",
        _set("spec.slices", [{"name": f"s{i}", "size": 1, "metrics": {"a": 1.0}} for i in range(257)]),
        ("spec.slices", "must have at most 256 items"),
    ),
    (
        "policy-slice-min-above-max",
        "GovernancePolicy",
        _set("spec.evaluations.0.slices", {"min": 0.9, "max": 0.5}),
        ("spec.evaluations[0].slices.min", "min must be less than or equal to max"),
    ),
    (
        "policy-slice-negative-gap",
        "GovernancePolicy",
        _set("spec.evaluations.0.slices", {"maxGap": -0.1}),
        ("spec.evaluations[0].slices.maxGap", "should be greater than or equal to 0"),
    ),
]


@pytest.mark.parametrize(
    ("kind", "mutate", "fragments"),
    [pytest.param(kind, mutate, fragments, id=case) for case, kind, mutate, fragments in BAD_MANIFESTS],
)
def test_bad_manifest_is_refused_with_a_message_naming_field_and_rule(
    kubectl: Kubectl,
    namespace: str,
    suffix: str,
    cluster_scoped: list[Doc],
    kind: str,
    mutate: Mutation,
    fragments: tuple[Fragment, ...],
) -> None:
    doc = example(kind)
    mutate(doc)
    (doc,) = localize([doc], namespace, suffix)
    if kind in CLUSTER_SCOPED:
        cluster_scoped.append(doc)

    result = apply(kubectl, [doc])

    assert result.returncode != 0, f"accepted:\n{result.stdout}"
    missing = [f for f in fragments if not any(alt in result.stderr for alt in _alternatives(f))]
    assert not missing, f"error lacks {missing}:\n{result.stderr}"
    assert_not_stored(kubectl, doc)


def _alternatives(fragment: Fragment) -> tuple[str, ...]:
    return (fragment,) if isinstance(fragment, str) else fragment


def test_bad_manifest_catalogue_is_large_enough() -> None:
    assert len(BAD_MANIFESTS) >= 25
    assert len({case for case, *_ in BAD_MANIFESTS}) == len(BAD_MANIFESTS)


# --- evidence is immutable ---------------------------------------------------------------------------------

IMMUTABLE_EDITS = [
    pytest.param(
        "ModelApproval",
        _set("spec.decision", "rejected"),
        "{.spec.decision}",
        "approved",
        id="approval-decision",
    ),
    pytest.param(
        "ModelApproval",
        _set("spec.model.digest", "sha256:" + "0" * 64),
        "{.spec.model.digest}",
        example("ModelApproval")["spec"]["model"]["digest"],
        id="approval-digest",
    ),
    pytest.param(
        "ModelEvaluation",
        _set("spec.metrics.accuracy", 0.99),
        "{.spec.metrics.accuracy}",
        str(example("ModelEvaluation")["spec"]["metrics"]["accuracy"]),
        id="evaluation-metrics",
    ),
]


@pytest.mark.parametrize("flags", APPLY_MODES)
@pytest.mark.parametrize(("kind", "mutate", "jsonpath", "kept"), IMMUTABLE_EDITS)
def test_evidence_cannot_be_edited_after_creation(
    kubectl: Kubectl,
    namespace: str,
    suffix: str,
    kind: str,
    mutate: Mutation,
    jsonpath: str,
    kept: str,
    flags: tuple[str, ...],
) -> None:
    (doc,) = localize([example(kind)], namespace, suffix)
    created = apply(kubectl, [doc], *flags)
    assert created.returncode == 0, created.stderr

    mutate(doc)
    result = apply(kubectl, [doc], *flags)

    assert result.returncode != 0, f"edit accepted:\n{result.stdout}"
    assert f"spec is immutable: create a new {kind} instead" in result.stderr, result.stderr
    current = kubectl(*get_args(doc), "-o", f"jsonpath={jsonpath}")
    assert current.stdout.strip() == kept


def test_evidence_metadata_stays_editable(kubectl: Kubectl, namespace: str, suffix: str) -> None:
    (doc,) = localize([example("ModelApproval")], namespace, suffix)
    assert apply(kubectl, [doc]).returncode == 0
    labelled = kubectl(
        "label",
        resource("ModelApproval"),
        doc["metadata"]["name"],
        "-n",
        namespace,
        "audit=done",
        check=False,
    )
    assert labelled.returncode == 0, labelled.stderr


# --- what kubectl shows -------------------------------------------------------------------------------------


def _apply_first_model(kubectl: Kubectl, namespace: str, suffix: str) -> list[Doc]:
    docs = localize(
        [d for p in sorted((EXAMPLES / "03-first-model").glob("*.yaml")) for d in load(p)], namespace, suffix
    )
    result = apply(kubectl, docs)
    assert result.returncode == 0, result.stderr
    return docs


def test_get_model_deployments_shows_the_printer_columns(
    kubectl: Kubectl, namespace: str, suffix: str
) -> None:
    _apply_first_model(kubectl, namespace, suffix)

    lines = kubectl("get", "mdep", "-n", namespace).stdout.splitlines()

    assert lines[0].split() == ["NAME", "MODEL", "VERSION", "PHASE", "APPROVED", "READY", "DRIFTED", "AGE"]
    assert lines[1].split()[:3] == ["fraud-detector", "fraud-detector", "v1"]


def test_get_by_category_lists_every_modelgate_object(kubectl: Kubectl, namespace: str, suffix: str) -> None:
    docs = _apply_first_model(kubectl, namespace, suffix)

    names = set(kubectl("get", "modelgate", "-n", namespace, "-o", "name").stdout.split())

    expected = {f"{d['kind'].lower()}.modelgate.io/{d['metadata']['name']}" for d in docs}
    assert expected <= names


def test_explain_prints_the_field_documentation(kubectl: Kubectl) -> None:
    wanted = "The model artifact: name, version, where to load it from and its digest."
    deadline = time.monotonic() + 60  # the apiserver publishes a new CRD's OpenAPI asynchronously
    while True:
        result = kubectl("explain", "modeldeployment.spec.model", check=False)
        text = " ".join(result.stdout.split())
        if (result.returncode == 0 and wanted in text) or time.monotonic() > deadline:
            break
        time.sleep(2)

    assert result.returncode == 0, result.stderr
    assert wanted in text
    assert "64 lowercase hex digits" in text
    for field in ("name", "version", "uri", "digest"):
        assert field in text
