"""`modelgate revision -f`: the id a manifest asks for, and clear errors (exit 2) on bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from modelgate.cli.main import main
from modelgate.cli.revision import revision
from tests.unit.factories import MODEL, default_revision, make_deployment, make_policy, revision_of

OTHER_IMAGE = "registry.example/other@sha256:" + "3" * 64


def write(tmp_path: Path, name: str, *docs: object) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def run(files: list[str], policies: list[str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = revision(files, policies or [], out, err)
    return code, out.getvalue(), err.getvalue()


def test_prints_the_revision_id_of_the_manifest(tmp_path: Path) -> None:
    md = make_deployment().model_dump(by_alias=True, exclude_none=True, mode="json")

    assert run([write(tmp_path, "md.yaml", md)]) == (0, default_revision() + "\n", "")


def test_policies_given_decide_the_operational_fields(tmp_path: Path) -> None:
    deployment = make_deployment(serving={"replicas": 3})
    strict = make_policy(operationalFields=[])
    md = write(tmp_path, "md.yaml", deployment.model_dump(by_alias=True, exclude_none=True, mode="json"))
    pol = write(tmp_path, "p.yaml", strict.model_dump(by_alias=True, exclude_none=True, mode="json"))

    assert run([md], [pol])[1].strip() == revision_of(deployment, [strict])


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read"),
        ("a: [", "is not valid YAML"),
        ("- 1\n", "must be a Kubernetes object"),
        ("kind: ConfigMap\n", "holds no ModelDeployment"),
        (
            "kind: ModelDeployment\nmetadata: {name: x}\nspec: {}\n",
            "ModelDeployment x is invalid: spec.model",
        ),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_2(tmp_path: Path, content: str | None, says: str) -> None:
    path = tmp_path / "in.yaml"
    if content is not None:
        path.write_text(content)

    code, out, err = run([str(path)])

    assert (code, out) == (2, "")
    assert err.startswith("modelgate revision: ") and says in err and "Traceback" not in err


def test_the_command_is_wired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    md = make_deployment().model_dump(by_alias=True, exclude_none=True, mode="json")

    assert main(["revision", "-f", write(tmp_path, "md.yaml", md)]) == 0
    assert capsys.readouterr().out.strip() == default_revision()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read"),
        ("kind: ConfigMap\n", "holds no GovernancePolicy"),
        (
            "kind: GovernancePolicy\nmetadata: {name: bad}\n"
            "spec: {allowAll: true, operationalFields: [image]}\n",
            "GovernancePolicy bad is invalid: spec.operationalFields.0",
        ),
    ],
)
def test_a_bad_policy_file_is_a_clear_error_with_exit_2(
    tmp_path: Path, content: str | None, says: str
) -> None:
    md = write(
        tmp_path, "md.yaml", make_deployment().model_dump(by_alias=True, exclude_none=True, mode="json")
    )
    pol = tmp_path / "pol.yaml"
    if content is not None:
        pol.write_text(content)

    code, out, err = run([md], [str(pol)])

    assert (code, out) == (2, "")
    assert err.startswith("modelgate revision: ") and says in err and "Traceback" not in err


def test_several_model_deployments_print_one_name_and_id_a_line(tmp_path: Path) -> None:
    one = make_deployment().model_dump(by_alias=True, exclude_none=True, mode="json")
    two = make_deployment(name="fraud-canary", serving={"image": OTHER_IMAGE}).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump_all([one, two]))

    code, out, _ = run([str(path)])

    assert code == 0
    assert out.splitlines() == [
        f"{MODEL}\t{revision_of(make_deployment())}",
        f"fraud-canary\t{revision_of(make_deployment(name='fraud-canary', serving={'image': OTHER_IMAGE}))}",
    ]
