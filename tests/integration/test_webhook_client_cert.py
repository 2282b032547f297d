"""The local control plane calls admission webhooks with a client certificate of its own, and the
operator started with `--webhook-client-ca` accepts exactly that caller: the API server's calls
still stamp and seal, a user's certificate from the cluster's CA does not get through."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, webhook_client_ca
from tests.support import manifests as m
from tests.support import workers
from tests.support.kube import Cluster, Kubectl
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration
STATE = workers.cluster_dir()


@pytest.fixture
def local(cluster: Cluster) -> Path:
    ca = webhook_client_ca(cluster)
    if ca is None:
        pytest.skip("not the local control plane: its admission configuration is not ours to check")
    return ca


def test_the_api_server_is_configured_with_a_webhook_client_certificate(local: Path) -> None:
    status = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "cluster.py"), "status"], capture_output=True, text=True
    )
    assert status.returncode == 0 and f"webhook client CA {local}" in status.stderr, status.stderr
    config = json.loads((STATE / "admission-config.json").read_text())
    assert config["kind"] == "AdmissionConfiguration"
    plugins = {p["name"]: p["configuration"] for p in config["plugins"]}
    assert set(plugins) == {"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"}
    for plugin in plugins.values():
        users = json.loads(Path(plugin["kubeConfigFile"]).read_text())["users"]
        assert [u["name"] for u in users] == ["*"] and "client-certificate-data" in users[0]["user"]
    pid = json.loads((STATE / "pids.json").read_text())["kube-apiserver"]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert f"--admission-control-config-file={STATE / 'admission-config.json'}".encode() in cmdline


def test_the_operator_requiring_the_client_ca_still_stamps_what_comes_through_the_api_server(
    local: Path, kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    args = operator.proc.args
    assert isinstance(args, list) and args[args.index("--webhook-client-ca") + 1] == str(local)
    m.approve(kubectl, m.approval("eb", namespace, "fraud"), user="bob")
    stored = kubectl.get("mapr", "eb", namespace)
    assert stored and stored["spec"]["approvedBy"]["username"] == "bob"
    assert stored["spec"]["seal"].startswith("ed25519:")
    assert "without --webhook-client-ca" not in operator.log.read_text()


def test_a_certificate_from_the_clusters_user_ca_is_refused(
    local: Path, kubectl: Kubectl, operator: OperatorProcess
) -> None:
    """The cluster admin's own client certificate: valid for the API server, not for the webhook."""
    hook = kubectl.json("get", "mutatingwebhookconfiguration", "modelgate.io")["webhooks"][0]
    ctx = ssl.create_default_context(cadata=base64.b64decode(hook["clientConfig"]["caBundle"]).decode())
    ctx.load_cert_chain(STATE / "pki" / "admin.crt", STATE / "pki" / "admin.key")
    req = urllib.request.Request(hook["clientConfig"]["url"], data=b"{}", method="POST")
    answered: int | None
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            answered = r.status
    except urllib.error.HTTPError as e:  # an HTTP answer (400 for this empty review): got through TLS
        answered = e.code
    except OSError:  # ssl.SSLError included: refused in the handshake
        answered = None
    assert answered is None, f"the webhook server answered HTTP {answered} to the admin's certificate"
