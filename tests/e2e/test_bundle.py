"""Evidence bundles from the real cluster: `modelgate report --bundle` signs one with the operator's
current key, `modelgate verify` checks it with no cluster at all, every edit of it fails, and a
deleted model's final bundle lands in the audit log before the finalizer comes off."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelgate.cli import verify as cli_verify
from modelgate.decide import bundle, seal
from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess
from tests.unit.test_bundle import edited, leaves

pytestmark = pytest.mark.integration
OPERATOR_NS = "modelgate-system"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelgate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def offline(tmp_path: Path) -> dict[str, str]:
    """An environment that reaches no cluster: KUBECONFIG names nothing, no ~/.kube/config."""
    return {"KUBECONFIG": str(tmp_path / "nowhere" / "kubeconfig"), "HOME": str(tmp_path / "home")}


def verify_file(tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    """`modelgate verify` of tmp_path/name against tmp_path/trust.json, with no cluster reachable."""
    trust = str(tmp_path / "trust.json")
    return cli("verify", str(tmp_path / name), "--trust", trust, env=offline(tmp_path))


def phase(kubectl: Kubectl, ns: str) -> str | None:
    return ((kubectl.get("mdep", "fraud", ns) or {}).get("status") or {}).get("phase")


def serving_version(kubectl: Kubectl, ns: str) -> str | None:
    st = (kubectl.get("mdep", "fraud", ns) or {}).get("status") or {}
    return (st.get("servingRevision") or {}).get("version") if st.get("phase") == "Serving" else None


@pytest.fixture
def governed(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    """fraud v1 admitted on a real approval and evaluation, then v2 on its own: two decisions."""
    policy = f"p-{uuid.uuid4().hex[:8]}"
    kubectl.apply(m.policy(policy, namespace, roles=("ethics-board",), min_accuracy=0.9))
    for version in ("v1", "v2"):
        m.approve(kubectl, m.approval(f"{version}-eb", namespace, "fraud", version), user="bob")
        m.submit(kubectl, m.evaluation(f"{version}-ev", namespace, "fraud", version, accuracy=0.93))
        m.deploy(
            kubectl,
            m.model_deployment(
                "fraud", namespace, version, approvals=(f"{version}-eb",), evaluations=(f"{version}-ev",)
            ),
        )
        wait_until(f"{version} to serve", lambda v=version: serving_version(kubectl, namespace) == v)  # type: ignore[misc]
    yield policy
    kubectl("delete", "governancepolicy", policy, "--ignore-not-found", "--wait=false")


def export_trust(cluster: Cluster, path: Path) -> None:
    res = cli("keys", "export-trust", "--kubeconfig", str(cluster.kubeconfig))
    assert res.returncode == 0, res.stderr
    path.write_text(res.stdout)


def make_bundle(cluster: Cluster, ns: str, path: Path) -> dict[str, Any]:
    res = cli("report", "-n", ns, "fraud", "--bundle", str(path), "--kubeconfig", str(cluster.kubeconfig))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"wrote the evidence bundle of ModelDeployment {ns}/fraud to {path}" in res.stdout
    return dict(json.loads(path.read_text()))


def current_signer(kubectl: Kubectl) -> seal.Signer:
    """The operator's current key, as an admin reads it (to forge a well-signed bundle)."""
    import base64

    secret = kubectl.json("get", "secret", "modelgate-signing-keys", "-n", OPERATOR_NS)
    trust = seal.Trust.from_json(
        kubectl.json("get", "configmap", "modelgate-trust", "-n", OPERATOR_NS)["data"]
    )
    held = [seal.Signer.from_pem(base64.b64decode(v)) for v in secret["data"].values()]
    ring = seal.KeyRing(tuple(held), trust)
    assert ring.signer is not None
    return ring.signer


def test_a_real_bundle_verifies_offline_and_every_edit_of_it_fails(
    cluster: Cluster, kubectl: Kubectl, namespace: str, governed: str, tmp_path: Path
) -> None:
    doc = make_bundle(cluster, namespace, tmp_path / "fraud.json")
    export_trust(cluster, tmp_path / "trust.json")
    assert [e["object"]["metadata"]["name"] for e in doc["evidence"]] == ["v1-eb", "v2-eb", "v1-ev", "v2-ev"]
    assert all(e["object"]["status"]["seal"]["covers"]["uid"] for e in doc["evidence"])
    assert [p["name"] for p in doc["policies"]] == [governed]
    actions = [r["action"] for r in doc["history"]["records"]]
    assert actions.count("Admitted") == 2, actions

    ok = verify_file(tmp_path, "fraud.json")
    assert ok.returncode == 0, ok.stderr
    assert f"fraud v2 {m.digest('fraud-v2')}: ModelDeployment {namespace}/fraud" in ok.stdout
    assert "was approved by bob (ethics-board) at" in ok.stdout
    assert f"[ModelApproval {namespace}/v2-eb]" in ok.stdout
    assert "was evaluated on holdout (accuracy=0.93)" in ok.stdout and "submitted by erin" in ok.stdout

    trust = seal.Trust.from_json(json.loads((tmp_path / "trust.json").read_text()))
    paths = list(leaves(doc))
    assert len(paths) > 300, len(paths)
    assert [p for p in paths if cli_verify.run(edited(doc, p), trust)[0]] == []

    # Through the command too: an approver's name changed, a decision's message changed.
    for path, broken in (
        (
            ("evidence", 1, "object", "spec", "approvedBy", "username"),
            f"ModelApproval {namespace}/v2-eb: status seal",
        ),
        (("history", "records", 0, "message"), "history record 1"),
    ):
        (tmp_path / "tampered.json").write_text(json.dumps(edited(doc, path)))
        res = verify_file(tmp_path, "tampered.json")
        assert res.returncode == 1 and res.stdout == "", res.stdout
        assert f"  BROKEN {broken}" in res.stderr and "BROKEN bundle seal" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr


def test_a_seal_replayed_onto_another_approval_fails_even_in_a_well_signed_bundle(
    cluster: Cluster, kubectl: Kubectl, namespace: str, governed: str, tmp_path: Path
) -> None:
    doc = make_bundle(cluster, namespace, tmp_path / "fraud.json")
    export_trust(cluster, tmp_path / "trust.json")
    forged = copy.deepcopy(doc)
    forged.pop("seal")
    v1, v2 = forged["evidence"][0]["object"], forged["evidence"][1]["object"]
    v2["status"]["seal"] = v1["status"]["seal"]
    resealed = bundle.sign(current_signer(kubectl), forged, dt.datetime.now(dt.UTC))
    (tmp_path / "forged.json").write_text(json.dumps(resealed))
    res = verify_file(tmp_path, "forged.json")
    assert res.returncode == 1
    (line,) = [ln for ln in res.stderr.splitlines() if "v2-eb: status seal" in ln]
    assert f"covers ModelApproval {namespace}/v1-eb (uid {v1['metadata']['uid']})" in line
    assert "copied from another object" in line
    assert "bundle seal" not in res.stderr  # the bundle itself is well signed: the evidence is not


def test_a_bundle_needs_the_operators_key_and_says_who_may_make_one(
    cluster: Cluster, kubectl: Kubectl, namespace: str, governed: str, tmp_path: Path
) -> None:
    binding = f"auditor-{namespace}"
    kubectl("create", "serviceaccount", "auditor", "-n", namespace)
    kubectl(
        "create",
        "clusterrolebinding",
        binding,
        "--clusterrole=modelgate-auditor",
        f"--serviceaccount={namespace}:auditor",
    )
    try:
        token = kubectl("create", "token", "auditor", "-n", namespace).stdout.strip()
        config = kubectl.json("config", "view", "--raw", "--minify")
        config["users"] = [{"name": "auditor", "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = "auditor"
        (tmp_path / "auditor").write_text(json.dumps(config))
        res = cli(
            "report",
            "-n",
            namespace,
            "fraud",
            "--bundle",
            str(tmp_path / "b.json"),
            "--kubeconfig",
            str(tmp_path / "auditor"),
        )
    finally:
        kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith(
        f"modelgate: error: report: forbidden to read Secret {OPERATOR_NS}/modelgate-signing-keys"
    )
    assert f"only an admin of namespace {OPERATOR_NS} may read" in res.stderr
    assert not (tmp_path / "b.json").exists()


def test_a_deleted_models_final_bundle_is_in_the_audit_log_with_its_signed_retirement(
    cluster: Cluster,
    kubectl: Kubectl,
    namespace: str,
    governed: str,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    uid = kubectl.get("mdep", "fraud", namespace)["metadata"]["uid"]  # type: ignore[index]
    kubectl("delete", "mdep", "fraud", "-n", namespace)  # returns once the finalizer is off
    assert kubectl.get("mdep", "fraud", namespace) is None
    # Written before the finalizer was removed: already in the log now.
    lines = [a for a in operator.audit_lines() if a["action"] == "FinalBundle" and a["object"]["uid"] == uid]
    assert len(lines) == 1
    line = lines[0]
    export_trust(cluster, tmp_path / "trust.json")
    trust = seal.Trust.from_json(json.loads((tmp_path / "trust.json").read_text()))
    ok, said = cli_verify.run(line["bundle"], trust)
    assert ok, said
    retired = line["bundle"]["history"]["records"][-1]
    assert retired["action"] == "Retired" and retired["seal"]["covers"]["uid"] == uid
    retired_line = [
        a for a in operator.audit_lines() if a["action"] == "Retired" and a["object"]["uid"] == uid
    ]
    assert retired_line and retired_line[-1]["seal"] == retired["seal"]
    assert line["bundle"]["modelDeployment"]["metadata"]["deletionTimestamp"]
    (tmp_path / "final.json").write_text(json.dumps(line["bundle"]))
    res = verify_file(tmp_path, "final.json")
    assert res.returncode == 0 and "Retired: Retired ModelDeployment fraud" in res.stdout, res.stderr
