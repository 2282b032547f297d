"""Recertification on a real control plane with the session operator: an approval with a short
maxAge warns (RecertificationDue, one Warning Event), then lapses, and the policy's onRevocation
applies (suspend: scaled to zero; keep: serving, NotCompliant). `modelgate audit` runs as a process
under the auditor's own ServiceAccount token, as the chart's CronJob would.

Timing: maxAge 40s and warnBefore 25s (the window opens 15 s after the approval is created). The
operator wakes at those instants; the test only waits for what it should see, with generous
timeouts.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, condition, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration

MAX_AGE, WARN_BEFORE = "40s", "25s"


def recert_policy(name: str, ns: str, on_revocation: str) -> dict[str, Any]:
    policy = m.policy(name, ns, min_accuracy=None, on_revocation=on_revocation)
    policy["spec"]["approvals"][0]["maxAge"] = MAX_AGE
    policy["spec"]["recertification"] = {"warnBefore": WARN_BEFORE}
    return policy


def serve(kubectl: Kubectl, ns: str, policy_name: str, on_revocation: str) -> dict[str, Any]:
    kubectl.apply(recert_policy(policy_name, ns, on_revocation))
    m.approve(kubectl, m.approval("v1-ethics", ns, "fraud"))
    m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("v1-ethics",)))
    return wait_for(kubectl, ns, "Serving", lambda obj: True)


def wait_for(kubectl: Kubectl, ns: str, what: str, test: Any, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kubectl.get("mdep", "fraud", ns)
        st = (obj or {}).get("status") or {}
        current = obj is not None and st.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if current and (what in (st.get("phase"), "") and test(obj)) else None

    return wait_until(f"ModelDeployment {ns}/fraud: {what}", probe, timeout=timeout)


def due(obj: dict[str, Any], reason: str) -> bool:
    cond = condition(obj, "RecertificationDue") or {}
    return cond.get("status") == "True" and cond.get("reason") == reason


def auditor_kubeconfig(kubectl: Kubectl, ns: str, tmp_path: Path, *, bound: bool = True) -> Path:
    """A kubeconfig holding a token of a ServiceAccount bound (or not) to modelgate-auditor."""
    sa = "auditor" if bound else "nobody"
    kubectl("create", "serviceaccount", sa, "-n", ns)
    if bound:
        kubectl(
            "create",
            "rolebinding",
            "auditor",
            "--clusterrole=modelgate-auditor",
            f"--serviceaccount={ns}:{sa}",
            "-n",
            ns,
        )
    token = kubectl("create", "token", sa, "-n", ns).stdout.strip()
    admin = yaml.safe_load(Path(kubectl.kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "auditor",
        "clusters": [{"name": "c", "cluster": cluster}],
        "contexts": [{"name": "auditor", "context": {"cluster": "c", "user": sa}}],
        "users": [{"name": sa, "user": {"token": token}}],
    }
    if "certificate-authority" in cluster:  # keep the CA readable from the new file's place
        cluster["certificate-authority-data"] = base64.b64encode(
            (Path(kubectl.kubeconfig).parent / cluster.pop("certificate-authority")).read_bytes()
        ).decode()
    path = tmp_path / f"{sa}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def modelgate_audit(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelgate", "audit", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_approval_past_max_age_warns_then_lapses_and_suspends(
    kubectl: Kubectl,
    namespace: str,
    policy_name: str,
    operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    serve(kubectl, namespace, policy_name, "suspend")
    auditor = auditor_kubeconfig(kubectl, namespace, tmp_path)

    obj = wait_for(kubectl, namespace, "Serving", lambda o: due(o, "RecertificationDue"))
    message = condition(obj, "RecertificationDue")["message"]  # type: ignore[index]
    assert "role ethics-board" in message and "from group ethics-board" in message, message
    assert "ModelApproval v1-ethics by bob lapses at" in message, message
    schedule = obj["status"]["recertification"]
    assert schedule["requirements"][0]["approvals"][0]["name"] == "v1-ethics"
    warned = wait_until(
        "one RecertificationDue Warning Event",
        lambda: [e for e in events(kubectl, namespace, "RecertificationDue") if e["type"] == "Warning"],
    )
    assert len(warned) == 1

    soon = modelgate_audit(auditor, "-n", namespace, "-o", "json")
    assert soon.returncode == 0, soon.stderr
    report = json.loads(soon.stdout)
    assert [(f["name"], f["finding"], f["overdue"]) for f in report["findings"]] == [
        ("fraud", "DueSoon", False)
    ]
    assert report["findings"][0]["at"] == schedule["dueAt"]

    obj = wait_for(kubectl, namespace, "Blocked", lambda o: due(o, "ApprovalLapsed"))
    admitted = condition(obj, "Admitted")
    assert admitted and admitted["reason"] == "ApprovalLapsed"
    assert f"more than maxAge {MAX_AGE} ago (lapsed at {schedule['dueAt']})" in admitted["message"]
    wait_until(
        "the Deployment scaled to zero",
        lambda: (kubectl.get("deployment", "fraud", namespace) or {}).get("spec", {}).get("replicas") == 0,
    )
    assert len([e for e in events(kubectl, namespace, "RecertificationDue") if e["type"] == "Warning"]) == 1

    lapsed = modelgate_audit(auditor, "-n", namespace)
    assert lapsed.returncode == 1, lapsed.stdout + lapsed.stderr
    row = next(ln for ln in lapsed.stdout.splitlines() if ln.startswith(namespace))
    assert row.split()[1:6] == ["fraud", "fraud", "v1", "Blocked", "Lapsed"], lapsed.stdout

    m.approve(kubectl, m.approval("v1-ethics-again", namespace, "fraud"))
    obj = wait_for(kubectl, namespace, "Serving", lambda o: not due(o, "ApprovalLapsed"))
    assert condition(obj, "RecertificationDue")["status"] == "False"  # type: ignore[index]


def test_approval_past_max_age_with_keep_serves_not_compliant(
    kubectl: Kubectl, namespace: str, policy_name: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    serve(kubectl, namespace, policy_name, "keep")
    auditor = auditor_kubeconfig(kubectl, namespace, tmp_path)

    obj = wait_for(kubectl, namespace, "Degraded", lambda o: o["status"].get("compliance") == "NotCompliant")

    assert condition(obj, "Ready")["status"] == "True"  # type: ignore[index]
    assert condition(obj, "Admitted")["reason"] == "ApprovalLapsed"  # type: ignore[index]
    assert kubectl.get("deployment", "fraud", namespace)["spec"]["replicas"] == 2  # type: ignore[index]
    res = modelgate_audit(auditor, "-n", namespace, "-o", "json")
    assert res.returncode == 1, res.stderr
    kinds = {f["finding"] for f in json.loads(res.stdout)["findings"]}
    assert {"NotCompliant", "Lapsed"} <= kinds


def test_audit_without_the_auditor_role_says_so_in_one_line(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    nobody = auditor_kubeconfig(kubectl, namespace, tmp_path, bound=False)

    res = modelgate_audit(nobody)

    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "access denied listing ModelDeployments cluster-wide (403" in res.stderr, res.stderr


def events(kubectl: Kubectl, ns: str, reason: str) -> list[dict[str, Any]]:
    items = kubectl.json("get", "events", "-n", ns, "--field-selector", f"reason={reason}")["items"]
    return [e for e in items if e["involvedObject"]["kind"] == "ModelDeployment"]
