"""Evidence bundles and their offline check (decide/bundle.py, decide/verify.py, cli/verify.py),
with keys made here: every seal checked against what it must cover, each bad input named."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelgate.cli import verify as cli_verify
from modelgate.decide import bundle, seal, trail
from modelgate.decide.seal import Signer, Trust, TrustedKey

NS = "fraud-prod"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
DIGEST = "sha256:" + "fb76" * 16


def stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def evidence(
    signer: Signer, kind: str, name: str, uid: str, spec: dict[str, Any], bound: bool = True
) -> dict:
    spec = dict(spec)
    spec["seal"] = seal.admission_seal(signer, kind, NS, spec, T0)
    raw: dict[str, Any] = {
        "apiVersion": "modelgate.io/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": uid,
            "creationTimestamp": stamp(T0),
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": spec,
    }
    if bound:
        raw["status"] = {"seal": seal.bind(signer, raw, T0 + dt.timedelta(seconds=1))}
    return raw


def approval(signer: Signer, name: str, uid: str, **kw: Any) -> dict[str, Any]:
    spec = {
        "model": {"name": "fraud-detector", "version": "v2", "digest": DIGEST},
        "role": "ethics-board",
        "decision": "approved",
        "approvedBy": {"username": "bob", "groups": ["ethics-board"]},
    }
    return evidence(signer, "ModelApproval", name, uid, spec, **kw)


def evaluation(signer: Signer) -> dict[str, Any]:
    spec = {
        "model": {"name": "fraud-detector", "version": "v2", "digest": DIGEST},
        "dataset": {"name": "fraud-holdout-2026q3", "uri": "s3://d/h"},
        "metrics": {"accuracy": 0.93},
        "evaluatedAt": stamp(T0),
        "submittedBy": {"username": "erin", "groups": ["evaluators"]},
    }
    return evidence(signer, "ModelEvaluation", "ev", "uid-ev", spec)


def model_deployment(signer: Signer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelgate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud", "namespace": NS, "uid": "uid-md", "managedFields": [{"m": 1}]},
        "spec": {
            "model": {"name": "fraud-detector", "version": "v2", "digest": DIGEST},
            "card": {"owner": "risk", "riskLevel": "high"},
            "approvals": [{"name": "eb"}],
        },
    }
    rolled = {
        "decision": "d-2",
        "time": stamp(T0 + dt.timedelta(hours=2)),
        "action": "RolledBack",
        "reason": "DriftDetected",
        "message": "Rolled back fraud-detector v2 to v1: psi failed 3 checks in a row (limit 3): "
        "value 0.31 is above the maximum 0.25",
        "evidenceDigest": trail.evidence_digest({"checks": [{"metric": "psi", "value": 0.31}]}),
    }
    admitted = {
        **rolled,
        "decision": "d-1",
        "time": stamp(T0),
        "action": "Admitted",
        "message": "Admitted v2",
    }
    covers = trail.covers(body)
    history = [
        seal.seal_record(signer, r, covers, seal.parse_time(r["time"], "t")) for r in (admitted, rolled)
    ]
    body["status"] = {
        "gates": [
            {
                "requirement": "approval role=ethics-board (policy p)",
                "satisfied": True,
                "reason": "ApprovalsGranted",
                "message": "has 1 approval by role ethics-board: bob (ModelApproval eb); not counted: "
                "ModelApproval old is unsealed: it was written past the modelgate admission webhook",
            },
            {
                "requirement": "evaluation accuracy (policy p)",
                "satisfied": True,
                "reason": "EvaluationsPassed",
                "message": "ModelEvaluation ev (dataset fraud-holdout-2026q3, evaluated at x) reports "
                "accuracy 0.93",
            },
        ],
        "history": history,
        "historyDropped": 3,
    }
    return body


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


def trust_of(*signers: Signer, retired: dict[str, dt.datetime] | None = None) -> Trust:
    retired = retired or {}
    return Trust(
        {
            s.key_id: TrustedKey(s.key_id, s.public_key, T0 - dt.timedelta(days=1), retired.get(s.key_id))
            for s in signers
        }
    )


def unsealed(signer: Signer) -> dict[str, Any]:
    old = approval(signer, "old", "uid-old", bound=False)
    del old["spec"]["seal"]
    other = approval(signer, "other-model", "uid-x")
    other["spec"]["model"] = {**other["spec"]["model"], "name": "churn"}
    policy = {"metadata": {"name": "p", "uid": "uid-p", "generation": 2, "resourceVersion": "7"}, "spec": {}}
    record = {
        "metadata": {"name": "fraud-detector-fb76fb76fb76", "uid": "uid-r"},
        "spec": {
            "model": {"name": "fraud-detector", "digest": DIGEST},
            "entries": [
                {"time": "t", "action": "RolledBack", "reason": "DriftDetected", "message": "psi 0.31"}
            ],
        },
    }
    return bundle.build(
        model_deployment(signer),
        [approval(signer, "eb", "uid-eb"), old, other, evaluation(signer)],
        [policy],
        [record],
        T0 + dt.timedelta(hours=3),
        "test",
    )


@pytest.fixture
def sealed(signer: Signer) -> dict[str, Any]:
    return bundle.sign(signer, unsealed(signer), T0 + dt.timedelta(hours=3))


def test_a_bundle_holds_the_models_evidence_judged_by_its_gates_and_nothing_else(signer: Signer) -> None:
    doc = unsealed(signer)
    names = [(e["object"]["kind"], e["object"]["metadata"]["name"]) for e in doc["evidence"]]
    assert names == [("ModelApproval", "eb"), ("ModelApproval", "old"), ("ModelEvaluation", "ev")]
    by_name = {e["object"]["metadata"]["name"]: e for e in doc["evidence"]}
    assert by_name["eb"]["counted"] and by_name["ev"]["counted"]
    assert not by_name["old"]["counted"]
    assert by_name["old"]["notCounted"] == [
        "ModelApproval old is unsealed: it was written past the modelgate admission webhook"
    ]
    assert "managedFields" not in doc["modelDeployment"]["metadata"]
    assert all("managedFields" not in e["object"]["metadata"] for e in doc["evidence"])
    assert doc["policies"] == [
        {"name": "p", "uid": "uid-p", "generation": 2, "resourceVersion": "7", "spec": {}}
    ]
    assert doc["history"]["dropped"] == 3 and len(doc["history"]["records"]) == 2
    assert doc["interventions"][0]["spec"]["entries"][0]["message"] == "psi 0.31"


def test_an_intact_bundle_verifies_and_tells_who_approved_and_what_was_decided(
    signer: Signer, sealed: dict[str, Any]
) -> None:
    ok, lines = cli_verify.run(sealed, trust_of(signer))
    assert ok, lines
    text = "\n".join(lines)
    assert f"fraud-detector v2 {DIGEST}" in lines[0]
    assert "was approved by bob (ethics-board) at 2026-12-01T09:00:00Z [ModelApproval fraud-prod/eb]" in text
    assert "was evaluated on fraud-holdout-2026q3 (accuracy=0.93)" in text
    assert "RolledBack: Rolled back fraud-detector v2 to v1: psi failed 3 checks" in text
    assert "value 0.31 is above the maximum 0.25" in text
    assert "not counted: ModelApproval fraud-prod/old" in text
    assert "3 older ones only in the audit log" in text


def leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from leaves(v, (*path, i))
    else:
        yield path


def changed(value: Any) -> Any:
    """Another value of a leaf: what an editor of the bundle would write instead."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x" if value else "x"
    return "x"  # null


def edited(doc: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = changed(node[path[-1]])
    return out


def test_every_single_edit_of_a_bundle_fails_verification(signer: Signer, sealed: dict[str, Any]) -> None:
    trust = trust_of(signer)
    paths = list(leaves(sealed))
    assert len(paths) > 80
    passed = [p for p in paths if cli_verify.run(edited(sealed, p), trust)[0]]
    assert passed == []


def test_an_edit_is_named_where_it_was_made(signer: Signer, sealed: dict[str, Any]) -> None:
    doc = copy.deepcopy(sealed)
    doc["evidence"][0]["object"]["spec"]["approvedBy"]["username"] = "mallory"
    ok, lines = cli_verify.run(doc, trust_of(signer))
    assert not ok
    assert any(
        line.startswith("BROKEN ModelApproval fraud-prod/eb: status seal: the signature") for line in lines
    )
    assert any(line.startswith("BROKEN bundle seal: the signature") and "altered" in line for line in lines)


def test_a_seal_replayed_onto_another_object_fails_naming_both(signer: Signer) -> None:
    doc = unsealed(signer)
    eb = doc["evidence"][0]["object"]
    forged = approval(signer, "eb2", "uid-eb2")
    forged["status"]["seal"] = copy.deepcopy(eb["status"]["seal"])  # eb's seal on another approval
    doc["evidence"].append({"object": bundle.stored(forged), "counted": True, "countedFor": ["x"]})
    ok, lines = cli_verify.run(bundle.sign(signer, doc, T0), trust_of(signer))
    assert not ok
    (line,) = [ln for ln in lines if "eb2: status seal" in ln]
    assert (
        "covers ModelApproval fraud-prod/eb (uid uid-eb), not ModelApproval fraud-prod/eb2 (uid uid-eb2)"
        in line
    )
    assert "copied from another object" in line


def test_a_decision_record_of_another_model_fails(signer: Signer) -> None:
    doc = unsealed(signer)
    other = {**doc["modelDeployment"], "metadata": {**doc["modelDeployment"]["metadata"], "uid": "uid-other"}}
    record = {"time": stamp(T0), "action": "Admitted", "reason": "r", "message": "m"}
    doc["history"]["records"].append(seal.seal_record(signer, record, trail.covers(other), T0))
    ok, lines = cli_verify.run(bundle.sign(signer, doc, T0), trust_of(signer))
    assert not ok
    assert any(ln.startswith("BROKEN history record 3 (2026-12-01T09:00:00Z Admitted)") for ln in lines), (
        lines
    )


def test_an_unknown_key_id_is_named(signer: Signer, sealed: dict[str, Any]) -> None:
    ok, lines = cli_verify.run(sealed, trust_of(Signer.generate()))
    assert not ok
    assert f"BROKEN bundle seal: sealed with key {signer.key_id}, which the trust file does not list" in lines


def test_a_retired_key_holds_for_seals_made_before_its_retirement_only(
    signer: Signer, sealed: dict[str, Any]
) -> None:
    later = trust_of(signer, retired={signer.key_id: T0 + dt.timedelta(days=1)})
    assert cli_verify.run(sealed, later)[0]
    earlier = trust_of(signer, retired={signer.key_id: T0 + dt.timedelta(hours=2, minutes=30)})
    ok, lines = cli_verify.run(sealed, earlier)
    assert not ok
    assert (
        f"BROKEN bundle seal: sealed with key {signer.key_id} at 2026-12-01T12:00:00Z; that key was "
        "retired at 2026-12-01T11:30:00Z"
    ) in lines


def test_counted_evidence_without_a_seal_that_holds_is_broken(signer: Signer) -> None:
    doc = unsealed(signer)
    doc["evidence"][1]["counted"] = True  # "old", unsealed
    ok, lines = cli_verify.run(bundle.sign(signer, doc, T0), trust_of(signer))
    assert not ok
    assert "BROKEN ModelApproval fraud-prod/old: the bundle says it counted, but no seal of it holds" in lines


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "the document is missing or not a JSON object"),
        ({"kind": "ModelDeployment"}, "the document's kind is 'ModelDeployment', not EvidenceBundle"),
        ({"kind": "EvidenceBundle"}, "modelDeployment is missing or not a JSON object"),
    ],
)
def test_what_is_not_a_bundle_is_said_so(doc: Any, message: str, signer: Signer) -> None:
    assert cli_verify.run(doc, trust_of(signer)) == (False, [f"not an evidence bundle: {message}"])


def files(tmp_path: Path, signer: Signer, sealed: dict[str, Any]) -> tuple[Path, Path]:
    b, t = tmp_path / "bundle.json", tmp_path / "trust.json"
    b.write_text(json.dumps(sealed))
    t.write_text(json.dumps(trust_of(signer).to_json()))
    return b, t


def run_cli(bundle_path: Path | str, trust_path: Path | str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli_verify.verify(str(bundle_path), str(trust_path), out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_command_prints_the_statement_and_what_it_does_not_prove(
    tmp_path: Path, signer: Signer, sealed: dict[str, Any]
) -> None:
    b, t = files(tmp_path, signer, sealed)
    code, out, err = run_cli(b, t)
    assert (code, err) == (0, "")
    assert out.startswith(f"VERIFIED {b}: every seal holds against {t}\n")
    assert "Not proven:" in out and "was approved by bob" in out


@pytest.mark.parametrize(
    ("which", "content", "message"),
    [
        (
            "trust",
            None,
            "trust file {t} does not exist: get it with `modelgate keys export-trust > trust.json`",
        ),
        ("trust", "{not json", "trust file {t} is not JSON (line 1 column 2: Expecting property name"),
        (
            "trust",
            '{"keys": {"abc": {"publicKey": "!!"}}}',
            "trust file {t}: trusted key abc: publicKey is not base64",
        ),
        ("trust", '{"keys": {}}', "trust file {t} lists no key"),
        ("trust", "[1]", "trust file {t}: the trust document is not a JSON object"),
        ("bundle", None, "bundle {b} does not exist"),
        ("bundle", "", "bundle {b} is not JSON (line 1 column 1: Expecting value)"),
    ],
)
def test_unusable_files_get_one_line_and_exit_2(
    tmp_path: Path, signer: Signer, sealed: dict[str, Any], which: str, content: str | None, message: str
) -> None:
    b, t = files(tmp_path, signer, sealed)
    target = t if which == "trust" else b
    if content is None:
        target.unlink()
    else:
        target.write_text(content)
    code, out, err = run_cli(b, t)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("modelgate verify: " + message.format(t=t, b=b)), err


def test_an_unreadable_trust_file_is_named(tmp_path: Path, signer: Signer, sealed: dict[str, Any]) -> None:
    b, _ = files(tmp_path, signer, sealed)
    code, _, err = run_cli(b, tmp_path)  # a directory
    assert code == 2 and err.startswith(f"modelgate verify: cannot read trust file {tmp_path}: "), err


def test_a_tampered_bundle_exits_1_naming_each_broken_item(
    tmp_path: Path, signer: Signer, sealed: dict[str, Any]
) -> None:
    sealed["history"]["records"][1]["message"] = "nothing happened"
    b, t = files(tmp_path, signer, sealed)
    code, out, err = run_cli(b, t)
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"modelgate verify: {b} does not verify against {t}:"
    assert lines[1].startswith("  BROKEN history record 2 (2026-12-01T11:00:00Z RolledBack): the signature")
    assert lines[2].startswith("  BROKEN bundle seal:")
