"""crds/ and charts/modelgate/crds/ are generated from the models, and what is generated is a schema
the apiserver accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelgate.api import crdgen
from modelgate.api.v1alpha1 import KINDS, ModelApproval, ModelDeployment, ModelEvaluation

ROOT = Path(__file__).resolve().parents[2]
CRD_DIRS = (ROOT / "crds", ROOT / "charts" / "modelgate" / "crds")
GENERATED = {name: yaml.safe_load(text) for name, text in crdgen.render_all().items()}
CRD_IDS = list(GENERATED)


def schema_of(kind: str) -> dict[str, Any]:
    crd = next(c for c in GENERATED.values() if c["spec"]["names"]["kind"] == kind)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, depth first."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("directory", CRD_DIRS, ids=lambda d: str(d.relative_to(ROOT)))
def test_crds_directory_matches_the_models(directory: Path) -> None:
    problems = crdgen.check(directory)
    assert not problems, "\n".join(problems) + "\nregenerate both with: make crds"


def test_check_and_write_take_several_directories(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert crdgen.main([str(a), str(b)]) == 0
    assert crdgen.main(["--check", str(a), "--check", str(b)]) == 0
    (b / "modelgate.io_modelapprovals.yaml").unlink()
    assert crdgen.main(["--check", str(a), "--check", str(b)]) == 1


def test_generation_is_deterministic() -> None:
    assert crdgen.render_all() == crdgen.render_all()


def test_check_exits_non_zero_naming_the_file_that_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.main([str(tmp_path)]) == 0
    assert crdgen.main(["--check", str(tmp_path)]) == 0
    target = tmp_path / "modelgate.io_modelapprovals.yaml"
    target.write_text(target.read_text().replace("mapr", "apr"))

    assert crdgen.main(["--check", str(tmp_path)]) == 1
    assert "modelgate.io_modelapprovals.yaml: differs" in capsys.readouterr().err


def test_writing_removes_crds_of_kinds_that_no_longer_exist(tmp_path: Path) -> None:
    stale = tmp_path / "modelgate.io_modelroutes.yaml"
    stale.write_text("kind: CustomResourceDefinition\n")
    crdgen.main([str(tmp_path)])
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(GENERATED)


@pytest.mark.parametrize("name", CRD_IDS)
def test_schema_is_structural(name: str) -> None:
    crd = GENERATED[name]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in nodes(schema):
        assert not {"$ref", "$defs", "allOf", "oneOf", "not", "title", "const"} & node.keys(), path
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
            assert node.get("anyOf", [{"type": "integer"}, {"type": "string"}]) == [
                {"type": "integer"},
                {"type": "string"},
            ], path
            continue
        assert "anyOf" not in node, path
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, path
        if node["type"] == "object":
            assert not ("properties" in node and "additionalProperties" in node), path
            assert "properties" in node or "additionalProperties" in node or path == ".metadata", path
            assert set(node.get("required", [])) <= set(node.get("properties", {})), path


def _nulls(value: Any, path: str) -> Iterator[str]:
    if value is None:
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _nulls(v, f"{path}.{k}")


@pytest.mark.parametrize("name", CRD_IDS)
def test_defaults_hold_no_null_the_api_server_would_refuse(name: str) -> None:
    """An optional field left unset in a model's default (MetricTemplate labels.slice) is absent
    from the CRD's default, not null: kube-apiserver refuses the whole CRD for a null string."""
    schema = GENERATED[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    nulls = [n for path, node in nodes(schema) if "default" in node for n in _nulls(node["default"], path)]
    assert nulls == []


@pytest.mark.parametrize("name", CRD_IDS)
def test_every_string_list_and_map_is_bounded_for_cel_cost_estimation(name: str) -> None:
    schema = GENERATED[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in nodes(schema):
        if path in {"", ".apiVersion", ".kind", ".metadata"}:
            continue
        if node.get("type") == "string" or node.get("x-kubernetes-int-or-string"):
            assert "maxLength" in node, path
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if isinstance(node.get("additionalProperties"), dict):
            assert "maxProperties" in node, path


@pytest.mark.parametrize("name", CRD_IDS)
def test_every_spec_and_status_field_is_documented(name: str) -> None:
    schema = GENERATED[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema.get("description")
    for top in ("spec", "status"):
        if top not in schema["properties"]:
            continue
        for path, node in nodes(schema["properties"][top], top):
            parent_is_list_or_map = path.endswith(("[]", ".*"))
            if not parent_is_list_or_map:
                assert node.get("description", "").strip(), f"{path} has no description"


def test_model_fields_have_the_descriptions_written_in_the_models() -> None:
    model = schema_of("ModelDeployment")["properties"]["spec"]["properties"]["model"]
    assert "sha256:" in model["properties"]["digest"]["description"]
    assert "MODEL_URI" in model["properties"]["uri"]["description"]
    for field in ("name", "version", "uri", "digest"):
        assert len(model["properties"][field]["description"]) > 30, field
    assert "\n" not in model["properties"]["digest"]["description"], "docstring lines are reflowed"


def test_list_map_keys_are_required_in_their_items() -> None:
    for name, crd in GENERATED.items():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in nodes(schema):
            if node.get("x-kubernetes-list-type") == "map":
                for key in node["x-kubernetes-list-map-keys"]:
                    assert key in node["items"].get("required", []), f"{name}{path}: {key}"


def test_conditions_are_a_list_map_keyed_on_type() -> None:
    conditions = schema_of("ModelDeployment")["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) == {
        "type",
        "status",
        "lastTransitionTime",
        "reason",
        "message",
    }


def test_model_deployment_printer_columns_follow_the_spec() -> None:
    crd = GENERATED["modelgate.io_modeldeployments.yaml"]
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == [
        "Model",
        "Version",
        "Phase",
        "Approved",
        "Ready",
        "Drifted",
        "Age",
    ]
    assert columns[3]["jsonPath"] == '.status.conditions[?(@.type=="Approved")].status'


@pytest.mark.parametrize(
    ("kind", "plural", "short_name", "scope", "has_status"),
    [
        ("ModelDeployment", "modeldeployments", "mdep", "Namespaced", True),
        ("ModelApproval", "modelapprovals", "mapr", "Namespaced", True),
        ("ModelEvaluation", "modelevaluations", "meval", "Namespaced", True),
        ("GovernancePolicy", "governancepolicies", "gpol", "Cluster", True),
        ("MetricTemplate", "metrictemplates", "mtpl", "Cluster", False),
    ],
)
def test_names_scope_categories_and_status_subresource(
    kind: str, plural: str, short_name: str, scope: str, has_status: bool
) -> None:
    crd = GENERATED[f"modelgate.io_{plural}.yaml"]
    assert crd["metadata"]["name"] == f"{plural}.modelgate.io"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (kind, plural, [short_name])
    assert names["categories"] == ["modelgate"]
    assert crd["spec"]["scope"] == scope
    version = crd["spec"]["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert ("subresources" in version) is has_status
    assert KINDS[kind].RESOURCE.plural == plural


@pytest.mark.parametrize("cls", [ModelApproval, ModelEvaluation])
def test_evidence_spec_is_immutable(cls: type[ModelApproval | ModelEvaluation]) -> None:
    spec = schema_of(cls.RESOURCE.kind)["properties"]["spec"]
    assert {
        "rule": "self == oldSelf",
        "message": f"spec is immutable: create a new {cls.RESOURCE.kind} instead",
    } in (spec["x-kubernetes-validations"])


def test_monitoring_metric_rules_are_in_the_schema() -> None:
    spec = schema_of("ModelDeployment")["properties"]["spec"]
    metric = spec["properties"]["monitoring"]["properties"]["metrics"]["items"]
    rules = {r["rule"]: r for r in metric["x-kubernetes-validations"]}
    assert "has(self.templateRef) != has(self.query)" in rules
    assert rules["!has(self.min) || !has(self.max) || self.min <= self.max"]["fieldPath"] == ".min"
    policy = schema_of("GovernancePolicy")["properties"]["spec"]["properties"]
    for requirement in (policy["evaluations"]["items"], policy["monitoring"]["items"]):
        assert any("self.min <= self.max" in r["rule"] for r in requirement["x-kubernetes-validations"])


def test_every_rule_has_a_message() -> None:
    for name, crd in GENERATED.items():
        for path, node in nodes(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]):
            for rule in node.get("x-kubernetes-validations", []):
                assert rule.get("message"), f"{name}{path}: {rule}"


def test_defaults_come_from_the_models() -> None:
    serving = schema_of("ModelDeployment")["properties"]["spec"]["properties"]["serving"]["properties"]
    assert (serving["replicas"]["default"], serving["replicas"]["minimum"]) == (1, 0)
    assert serving["port"]["default"] == 8080
    assert ModelDeployment.model_fields["spec"].annotation is not None


def test_structural_refuses_a_schema_it_cannot_translate() -> None:
    with pytest.raises(crdgen.SchemaError, match="union"):
        crdgen.structural({"anyOf": [{"type": "string"}, {"type": "boolean"}]}, {}, "spec.x")
    with pytest.raises(crdgen.SchemaError, match="maxLength"):
        crdgen.structural({"type": "string"}, {}, "spec.x")
    with pytest.raises(crdgen.SchemaError, match="free-form"):
        crdgen.structural({"type": "object", "additionalProperties": True}, {}, "spec.x")
