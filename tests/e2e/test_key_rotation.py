"""Key rotation with the running session operator: `modelgate keys rotate` reaches it without a
restart (new seals name the new key, live evidence is re-sealed with it), `keys retire` refuses
while live objects depend on the old key and names them, then retires it; bundles sealed before
the retirement keep verifying with a fresh trust file, one sealed after it fails.

The session operator is shared by the worker's other tests: it is left with the new key current.
To see `retire` refuse before the operator has re-sealed anything, the operator is paused (SIGSTOP)
between the rotation and the first retire, and resumed right after (SIGCONT; the same process).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelgate.decide import bundle, seal
from tests.e2e.test_bundle import OPERATOR_NS, cli, export_trust, make_bundle, serving_version, verify_file
from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, create_test_namespace, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def early_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A test namespace whose objects come first in cluster-wide lists ("t-0..."), so that `retire`
    names them among the first it lists."""
    name = f"t-0rotation-{uuid.uuid4().hex[:5]}"
    create_test_namespace(kubectl, name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def keys_cli(cluster: Cluster, *args: str) -> Any:
    return cli("keys", *args, "--kubeconfig", str(cluster.kubeconfig))


def seal_key(kubectl: Kubectl, kind: str, name: str, ns: str) -> str | None:
    obj = kubectl.get(kind, name, ns) or {}
    return ((obj.get("status") or {}).get("seal") or {}).get("keyId")


def private_key(kubectl: Kubectl, key_id: str) -> seal.Signer:
    secret = kubectl.json("get", "secret", "modelgate-signing-keys", "-n", OPERATOR_NS)
    return seal.Signer.from_pem(base64.b64decode(secret["data"][key_id]))


def test_rotation_reaches_the_running_operator_and_retirement_waits_for_the_re_seal(
    cluster: Cluster, kubectl: Kubectl, early_namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    ns, policy = early_namespace, f"p-{uuid.uuid4().hex[:8]}"
    kubectl.apply(m.policy(policy, ns, roles=("ethics-board",), min_accuracy=0.9))
    try:
        m.approve(kubectl, m.approval("v1-eb", ns, "fraud"), user="bob")
        m.submit(kubectl, m.evaluation("v1-ev", ns, "fraud", accuracy=0.93))
        m.deploy(kubectl, m.model_deployment("fraud", ns, approvals=("v1-eb",), evaluations=("v1-ev",)))
        wait_until("v1 to serve", lambda: serving_version(kubectl, ns) == "v1")
        old = wait_until("the approval's status seal", lambda: seal_key(kubectl, "mapr", "v1-eb", ns))
        old_signer = private_key(kubectl, old)
        before = make_bundle(cluster, ns, tmp_path / "before.json")
        assert before["seal"]["keyId"] == old

        os.kill(operator.proc.pid, signal.SIGSTOP)
        try:
            rotated = keys_cli(cluster, "rotate")
            refused = keys_cli(cluster, "retire", old)
        finally:
            os.kill(operator.proc.pid, signal.SIGCONT)
        assert rotated.returncode == 0, rotated.stderr
        new = re.match(r"key ([0-9a-f]{16}) made", rotated.stdout).group(1)  # type: ignore[union-attr]
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert refused.stderr.startswith(f"modelgate: error: keys retire: key {old} still seals "), (
            refused.stderr
        )
        assert (
            f"ModelApproval {ns}/v1-eb" in refused.stderr and f"ModelEvaluation {ns}/v1-ev" in refused.stderr
        )

        # The running operator reads the new key, and re-seals the live evidence with it.
        for kind, name in (("mapr", "v1-eb"), ("meval", "v1-ev")):
            wait_until(
                f"{name} re-sealed with {new}", lambda k=kind, n=name: seal_key(kubectl, k, n, ns) == new
            )  # type: ignore[misc]
        m.approve(kubectl, m.approval("v1-eb2", ns, "fraud"), user="bob")
        wait_until(
            "the new approval sealed with the new key", lambda: seal_key(kubectl, "mapr", "v1-eb2", ns) == new
        )
        stored = kubectl.get("mapr", "v1-eb2", ns)
        assert stored["spec"]["seal"].startswith(f"ed25519:{new}:")  # type: ignore[index]

        def retired() -> Any:
            res = keys_cli(cluster, "retire", old)
            return res if res.returncode == 0 else None

        done = wait_until(f"key {old} to retire once nothing depends on it", retired, timeout=120)
        assert done.stdout.startswith(f"key {old} retired at ")
        listed = keys_cli(cluster, "list").stdout
        assert re.search(rf"^{old} .* retired$", listed, re.M) and re.search(
            rf"^{new} .* signs$", listed, re.M
        )

        export_trust(cluster, tmp_path / "trust.json")
        trust = json.loads((tmp_path / "trust.json").read_text())
        assert trust["keys"][old]["retiredAt"] and "retiredAt" not in trust["keys"][new]
        res = verify_file(tmp_path, "before.json")
        assert res.returncode == 0, res.stderr  # sealed before the retirement: still holds

        unsealed = {k: v for k, v in before.items() if k != "seal"}
        late = bundle.sign(old_signer, unsealed, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
        (tmp_path / "late.json").write_text(json.dumps(late))
        res = verify_file(tmp_path, "late.json")
        assert res.returncode == 1
        assert f"BROKEN bundle seal: sealed with key {old} at " in res.stderr
        assert f"that key was retired at {trust['keys'][old]['retiredAt']}" in res.stderr

        after = make_bundle(cluster, ns, tmp_path / "after.json")
        assert after["seal"]["keyId"] == new
        res = verify_file(tmp_path, "after.json")
        assert res.returncode == 0, res.stderr
    finally:
        kubectl("delete", "governancepolicy", policy, "--ignore-not-found", "--wait=false")
