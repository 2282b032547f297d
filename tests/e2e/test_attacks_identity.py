"""Attacks on identity, performed as the deployer through the real API server: claiming who set a
digest, getting a seal without the API server, and losing the seal key to reset every seal.

The deployer is alice (`--as alice --as-group deployers`). A pod of hers that POSTs straight to the
operator's webhook port is played by this test process: it has the network reach a pod has and
nothing more (the serving CA is public, in the webhook configuration; no client certificate).
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import webhook_client_ca, webhooks_answer
from tests.support import manifests as m
from tests.support import workers
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess, run_operator

pytestmark = pytest.mark.integration
WEBHOOKS = "modelgate.io"
DEPLOYER = ("--as=alice", "--as-group=deployers")
SEAL_SECRET = ("modelgate-system", "modelgate-signing-keys")


@pytest.fixture
def stamping_away(kubectl: Kubectl) -> Iterator[Callable[[], None]]:
    """Removes the mutating webhook configuration (as an admin may); yields a function that puts it
    back exactly and waits until the API server calls it again. Put back after the test in any case."""
    saved = kubectl.json("get", "mutatingwebhookconfiguration", WEBHOOKS)
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        saved["metadata"].pop(key, None)

    def restore() -> None:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(saved))
        wait_until("the stamping webhooks to answer again", lambda: webhooks_answer(kubectl))

    kubectl("delete", "mutatingwebhookconfiguration", WEBHOOKS)
    yield restore
    restore()


def setter(kubectl: Kubectl, ns: str) -> Any:
    obj = kubectl.get("mdep", "fraud", ns)
    assert obj
    return obj["spec"].get("digestSetBy")


def test_claiming_digest_set_by_is_cleared_or_restamped_however_the_deployer_writes(
    kubectl: Kubectl, namespace: str, operator: OperatorProcess, stamping_away: Callable[[], None]
) -> None:
    # An object with no digestSetBy: written by an admin while the stamping webhook was away.
    kubectl("create", "-f", "-", input=json.dumps(m.model_deployment("fraud", namespace)))
    assert setter(kubectl, namespace) is None
    stamping_away()  # back, for the deployer's attempts

    claim = m.model_deployment("fraud", namespace, digest_set_by="bob")  # "bob set this digest"
    text = json.dumps(claim)
    attempts = {
        "kubectl apply": ("apply", "-f", "-"),
        "server-side apply": ("apply", "--server-side", "--force-conflicts", "-f", "-"),
        "kubectl replace": ("replace", "-f", "-"),
    }
    for how, args in attempts.items():
        res = kubectl(*args, *DEPLOYER, input=text, check=False)
        assert res.returncode == 0, (how, res.stderr)
        assert setter(kubectl, namespace) is None, f"{how}: the claimed digestSetBy was kept"
        assert "spec.digestSetBy is recorded by modelgate" in res.stderr, (how, res.stderr)
    res = kubectl(
        "patch", "mdep", "fraud", "-n", namespace, *DEPLOYER, "--type=merge",
        "-p", json.dumps({"spec": {"digestSetBy": {"username": "bob", "groups": ["deployers"]}}}),
        check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert setter(kubectl, namespace) is None, "merge patch: the claimed digestSetBy was kept"
    assert "the value written was ignored (kept: none)" in res.stderr, res.stderr

    # A new digest is stamped with whoever sets it, whatever the claim says ...
    v2 = m.model_deployment("fraud", namespace, "v2", digest_set_by="bob")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", *DEPLOYER, input=json.dumps(v2))
    assert setter(kubectl, namespace)["username"] == "alice"
    # ... and from then on the stored setter stands against every later claim.
    for how, args in attempts.items():
        res = kubectl(*args, "--as=mallory", "--as-group=deployers", input=json.dumps(v2))
        assert setter(kubectl, namespace)["username"] == "alice", how
        assert "the value written was ignored (kept: alice)" in res.stderr, (how, res.stderr)


def review(ns: str, user: dict[str, Any]) -> dict[str, Any]:
    """An AdmissionReview for creating an approval, with the userInfo the caller makes up."""
    obj = m.approval("forged", ns, "fraud")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "modelgate.io", "version": "v1alpha1", "kind": "ModelApproval"},
            "resource": {"group": "modelgate.io", "version": "v1alpha1", "resource": "modelapprovals"},
            "requestKind": {"group": "modelgate.io", "version": "v1alpha1", "kind": "ModelApproval"},
            "requestResource": {"group": "modelgate.io", "version": "v1alpha1", "resource": "modelapprovals"},
            "name": "forged",
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": user,
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def post_review(kubectl: Kubectl, body: dict[str, Any], cert: tuple[Path, Path] | None) -> dict[str, Any]:
    """POST to the stamping webhook the API server is configured with, trusting its serving CA."""
    hook = next(
        h
        for h in kubectl.json("get", "mutatingwebhookconfiguration", WEBHOOKS)["webhooks"]
        if h["name"].startswith("stamp-approval.")
    )
    ctx = ssl.create_default_context(cadata=base64.b64decode(hook["clientConfig"]["caBundle"]).decode())
    if cert:
        ctx.load_cert_chain(*cert)
    req = urllib.request.Request(
        hook["clientConfig"]["url"],
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return dict(json.loads(r.read()))


def sealed_patch(answer: dict[str, Any]) -> list[dict[str, Any]]:
    ops = json.loads(base64.b64decode(answer["response"].get("patch") or "W10="))
    return [op for op in ops if "seal" in json.dumps(op)]


def test_a_pod_posting_a_made_up_admission_review_gets_no_seal_while_the_api_server_still_stamps(
    cluster: Cluster, kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    if webhook_client_ca(cluster) is None:
        pytest.skip("the cluster's API server presents no webhook client certificate (an external cluster)")
    made_up = {"username": "bob", "groups": ["ethics-board", "system:authenticated"]}
    refused: Exception | None = None
    try:
        answer = post_review(kubectl, review(namespace, made_up), cert=None)
    except (OSError, ssl.SSLError) as e:  # handshake refused, reset, or 401/403 (HTTPError)
        refused = e
    else:
        assert not sealed_patch(answer), f"a caller without a client certificate got a seal: {answer}"
    assert refused is not None, "the webhook answered a caller without a client certificate"
    if isinstance(refused, urllib.error.HTTPError):
        assert refused.code in (401, 403), refused

    # The control: the same request with the API server's client certificate does get a seal, so
    # the certificate, and nothing else about the request, is what is refused above.
    pki = workers.cluster_dir() / "pki"
    answer = post_review(
        kubectl, review(namespace, made_up), cert=(pki / "webhook-client.crt", pki / "webhook-client.key")
    )
    assert sealed_patch(answer), answer

    # And the API server's own calls still work: an approval created through it is stamped and sealed.
    m.approve(kubectl, m.approval("eb", namespace, "fraud"), user="bob")
    stored = kubectl.get("mapr", "eb", namespace)
    assert stored and stored["spec"]["approvedBy"]["username"] == "bob"
    assert stored["spec"]["seal"].startswith("ed25519:")


@contextmanager
def seal_secret_removed(kubectl: Kubectl) -> Iterator[None]:
    """Deletes the signing key Secret (a lost backup, a careless cleanup); restores it afterwards, so
    that the session operator's seals and every later test are unaffected."""
    ns, name = SEAL_SECRET
    saved = kubectl.json("get", "secret", name, "-n", ns)
    for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields"):
        saved["metadata"].pop(key, None)
    kubectl("delete", "secret", name, "-n", ns)
    try:
        yield
    finally:
        kubectl("delete", "secret", name, "-n", ns, "--ignore-not-found")
        kubectl("create", "-f", "-", input=json.dumps(saved))


def run_until_exit(cluster: Cluster, log: Path, *args: str) -> int | None:
    """Start an operator that is expected to stop by itself; its exit code (None: it kept running)."""
    try:
        with run_operator(cluster.kubeconfig, log, *args) as op:
            try:
                return op.proc.wait(30)
            except subprocess.TimeoutExpired:
                return None
    except RuntimeError as e:  # it exited before its liveness endpoint answered
        found = re.search(r"the operator exited with (-?\d+)", str(e))
        if not found:
            raise
        return int(found.group(1))


def test_with_the_seal_key_lost_and_sealed_approvals_around_the_operator_refuses_to_start(
    cluster: Cluster, kubectl: Kubectl, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    m.approve(kubectl, m.approval("eb", namespace, "fraud"), user="bob")
    assert kubectl.get("mapr", "eb", namespace)["spec"]["seal"]  # type: ignore[index]
    ns, name = SEAL_SECRET
    log = tmp_path / "operator.log"
    with seal_secret_removed(kubectl):
        # A second operator (its webhooks off, so the session's stay registered) starting now.
        code = run_until_exit(cluster, log, "--namespace", "t-*", "--webhook-port", "0")
        assert kubectl.get("secret", name, ns) is None, "a new seal key was made"
    text = log.read_text()
    assert code is not None, "the operator started without its seal key: " + text[-2000:]
    assert code == 1, text[-3000:]
    lines = [ln for ln in text.splitlines() if ln.startswith("modelgate run:")]
    assert len(lines) == 1, text[-3000:]
    assert f"signing key Secret {ns}/{name} is missing while" in lines[0], lines[0]
    assert "modelapprovals" in lines[0] and "Restore the Secret from backup" in lines[0], lines[0]
    assert "Traceback" not in text, text[-3000:]
    assert kubectl.get("secret", name, ns), "the Secret was not restored for the other tests"
