"""`kubectl modelgate`: the plugin driven through kubectl itself, against the real API server and the
session operator, as the people who use it (impersonated with the plugin's --as/--as-group, which
kubectl passes on: it stops looking for a plugin at the first flag, so flags follow the name).

The plugin is the `kubectl-modelgate` console script in the virtualenv's bin folder, put on PATH
with the kubectl built for the tests; kubectl finds it there as it would after `pip install`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import manifests as m
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration

VENV_BIN = Path(sys.executable).parent
BOB = ("--as", "bob", "--as-group", "ethics-board")


def plugin_env(cluster: Cluster, **extra: str) -> dict[str, str]:
    """PATH with the plugin and the test kubectl; KUBECONFIG the session cluster's."""
    if not (VENV_BIN / "kubectl-modelgate").is_file():
        pytest.fail(
            f"{VENV_BIN}/kubectl-modelgate is missing: run `bash hack/deps.sh` to reinstall the package"
        )
    kubectl_dir = str(Path(cluster.kubectl.binary).parent)
    path = os.pathsep.join([str(VENV_BIN), kubectl_dir, os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "KUBECONFIG": str(cluster.kubeconfig), **extra}


def kubectl_modelgate(
    cluster: Cluster, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cluster.kubectl.binary, "modelgate", *args],
        env=env or plugin_env(cluster),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    """The failure's stderr, asserted to be one line and no traceback."""
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.fixture
def blocked_model(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    """fraud v1 in `namespace`, evaluated by erin, waiting for an ethics-board approval."""
    policy = f"p-{uuid.uuid4().hex[:8]}"
    kubectl.apply(m.policy(policy, namespace, roles=("ethics-board",), min_accuracy=0.9))
    m.submit(kubectl, m.evaluation("ev", namespace, "fraud", accuracy=0.93))
    m.deploy(kubectl, m.model_deployment("fraud", namespace, evaluations=("ev",)))
    wait_until("the model to be blocked", lambda: _phase(kubectl, namespace) == "Blocked")
    yield policy
    kubectl("delete", "governancepolicy", policy, "--ignore-not-found", "--wait=false")


def _phase(kubectl: Kubectl, namespace: str) -> str | None:
    return str(((kubectl.get("mdep", "fraud", namespace) or {}).get("status") or {}).get("phase"))


def test_explain_names_the_approval_its_command_and_the_policys_group(
    cluster: Cluster, namespace: str, blocked_model: str
) -> None:
    res = kubectl_modelgate(cluster, "explain", "fraud", "-n", namespace, *BOB)

    assert res.returncode == 0, res.stderr
    summary, *steps = res.stdout.strip().splitlines()
    assert "is not serving (phase Blocked): 1 thing missing" in summary
    assert len(steps) == 1
    assert f"run: kubectl modelgate approve fraud -n {namespace} --role ethics-board" in steps[0]
    assert f"who may: role ethics-board of policy {blocked_model}: group ethics-board" in steps[0]


def test_approve_as_a_reviewer_is_stamped_with_the_reviewer_and_admits_the_model(
    cluster: Cluster, kubectl: Kubectl, namespace: str, blocked_model: str
) -> None:
    res = kubectl_modelgate(
        cluster, "approve", "fraud", "-n", namespace, "--role", "ethics-board", "--comment", "fine",
        "--expires", "30d", *BOB,
    )  # fmt: skip

    assert res.returncode == 0, res.stderr
    assert f"{m.digest('fraud-v1')} as role ethics-board, by bob" in res.stdout
    (approval,) = kubectl.json("get", "modelapprovals", "-n", namespace)["items"]
    spec = approval["spec"]
    assert spec["approvedBy"]["username"] == "bob" and "ethics-board" in spec["approvedBy"]["groups"]
    assert spec["model"] == {
        "name": "fraud",
        "version": "v1",
        "digest": m.digest("fraud-v1"),
        "revision": m.default_revision("fraud"),  # filled in by the webhook, not the plugin
    }
    assert (spec["role"], spec["decision"], spec["comment"]) == ("ethics-board", "approved", "fine")
    assert spec["expiresAt"] > m.now_rfc3339(dt.timedelta(days=29))

    waited = kubectl_modelgate(
        cluster, "wait", "fraud", "-n", namespace, "--for", "ready", "--timeout", "90s"
    )
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert (
        waited.stdout.strip().splitlines()[-1]
        == f"ModelDeployment {namespace}/fraud is ready (phase Serving)"
    )
    assert "\r" not in waited.stdout  # not a terminal: plain lines

    explained = kubectl_modelgate(cluster, "explain", "fraud", "-n", namespace)
    assert explained.stdout.strip().endswith("is Serving: nothing is missing."), explained.stdout
    history = json.loads(kubectl_modelgate(cluster, "history", "fraud", "-n", namespace, "-o", "json").stdout)
    assert "Admitted" in [h["action"] for h in history]


def test_a_rejection_blocks_and_explain_names_who_can_withdraw_it(
    cluster: Cluster, kubectl: Kubectl, namespace: str, blocked_model: str
) -> None:
    no_comment = kubectl_modelgate(
        cluster, "reject", "fraud", "-n", namespace, "--role", "ethics-board", *BOB
    )
    assert no_comment.returncode == 2 and "--comment" in no_comment.stderr

    res = kubectl_modelgate(
        cluster, "reject", "fraud", "-n", namespace, "--role", "ethics-board", "--comment", "bias", *BOB
    )
    assert res.returncode == 0, res.stderr
    name = res.stdout.split()[0].removeprefix("modelapproval.modelgate.io/")

    def rejection_named() -> str | None:
        out = kubectl_modelgate(cluster, "explain", "fraud", "-n", namespace).stdout
        return out if f"kubectl delete modelapproval {name} -n {namespace}" in out else None

    assert "who may: bob, who rejected it" in wait_until("explain to name the rejection", rejection_named)
    blocked = kubectl_modelgate(
        cluster, "wait", "fraud", "-n", namespace, "--for", "blocked", "--timeout", "30s"
    )
    assert blocked.returncode == 0, blocked.stderr


def test_wait_times_out_with_the_blocking_reason(
    cluster: Cluster, namespace: str, blocked_model: str
) -> None:
    res = kubectl_modelgate(cluster, "wait", "fraud", "-n", namespace, "--for", "ready", "--timeout", "2s")

    line = one_error_line(res)
    assert line.startswith(f"timed out after 2s waiting for ModelDeployment {namespace}/fraud to be ready: ")
    assert "approval role=ethics-board" in line


def test_status_report_and_history_answer_like_kubectl(
    cluster: Cluster, kubectl: Kubectl, namespace: str, blocked_model: str, tmp_path: Path
) -> None:
    # the namespace comes from the kubeconfig's context when -n is not given
    own = tmp_path / "kubeconfig"
    own.write_text(cluster.kubeconfig.read_text())
    kubectl("config", "set-context", "--current", f"--namespace={namespace}", "--kubeconfig", str(own))
    table = kubectl_modelgate(cluster, "status", "-o", "wide", env=plugin_env(cluster, KUBECONFIG=str(own)))
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[-2:] == ["DIGEST", "REASON"]
    assert row.split()[:5] == [namespace, "fraud", "fraud", "v1", "Blocked"]
    assert "ApprovalMissing: approval role=ethics-board" in row

    everywhere = json.loads(kubectl_modelgate(cluster, "status", "-A", "-o", "json").stdout)
    assert everywhere["kind"] == "List"
    assert (namespace, "fraud") in [
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in everywhere["items"]
    ]

    # `report` is `modelgate report`'s own code: the same document either way
    plugin_report = kubectl_modelgate(cluster, "report", "fraud", "-n", namespace, "-o", "json")
    cli_report = subprocess.run(
        [str(VENV_BIN / "modelgate"), "report", "fraud", "-n", namespace, "-o", "json"],
        env=plugin_env(cluster),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plugin_report.returncode == cli_report.returncode == 0, plugin_report.stderr + cli_report.stderr
    assert json.loads(plugin_report.stdout)[0]["uid"] == json.loads(cli_report.stdout)[0]["uid"]
    assert json.loads(plugin_report.stdout)[0]["gates"] == json.loads(cli_report.stdout)[0]["gates"]
    history = kubectl_modelgate(cluster, "history", "fraud", "-n", namespace)
    assert history.stdout.splitlines()[0].split()[:3] == ["TIME", "ACTION", "REASON"]
    assert "Blocked" in history.stdout


# --- errors: one line on stderr, the next step, no traceback -------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("status", "nope"),
        ("explain", "nope"),
        ("history", "nope"),
        ("report", "nope"),
        ("approve", "nope", "--role", "ethics-board"),
        ("wait", "nope", "--for", "ready", "--timeout", "5s"),
    ],
)
def test_an_unknown_model_is_one_line_naming_it(
    cluster: Cluster, namespace: str, command: tuple[str, ...]
) -> None:
    line = one_error_line(kubectl_modelgate(cluster, *command, "-n", namespace))

    assert f"ModelDeployment {namespace}/nope not found" in line
    assert f"kubectl get modeldeployments -n {namespace}" in line


def test_forbidden_is_one_line_naming_the_role_to_ask_for(
    cluster: Cluster, namespace: str, blocked_model: str
) -> None:
    line = one_error_line(kubectl_modelgate(cluster, "status", "fraud", "-n", namespace, "--as", "nobody"))
    assert line.startswith("kubectl modelgate: error: forbidden (403): ")
    assert 'User "nobody" cannot get resource "modeldeployments"' in line and "modelgate-auditor" in line

    # a deployer may read the model but not approve it
    deployer = ("--as", "alice", "--as-group", "deployers")
    line = one_error_line(
        kubectl_modelgate(cluster, "approve", "fraud", "-n", namespace, "--role", "ethics-board", *deployer)
    )
    assert "forbidden (403)" in line and "modelapprovals" in line


def test_a_missing_kubeconfig_or_an_unreachable_server_is_one_line(cluster: Cluster, tmp_path: Path) -> None:
    flag = one_error_line(
        kubectl_modelgate(cluster, "status", "y", "-n", "x", "--kubeconfig", "/nonexistent")
    )
    assert "kubeconfig /nonexistent (--kubeconfig) does not exist" in flag

    missing_env = plugin_env(cluster, KUBECONFIG="/nonexistent")
    env_line = one_error_line(kubectl_modelgate(cluster, "status", "y", "-n", "x", env=missing_env))
    assert "kubeconfig /nonexistent (KUBECONFIG) does not exist: point KUBECONFIG at a kubeconfig" in env_line

    # the issue's own command, through the `modelgate` CLI
    cli = subprocess.run(
        [str(VENV_BIN / "modelgate"), "status", "-n", "x", "y", "--kubeconfig", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "does not exist" in one_error_line(cli)

    unreadable = tmp_path / "unreadable"
    unreadable.write_text("clusters: [")
    assert "could not be read" in one_error_line(
        kubectl_modelgate(cluster, "status", "--kubeconfig", str(unreadable))
    )

    dead = tmp_path / "dead"
    dead.write_text(cluster.kubeconfig.read_text())
    Kubectl(cluster.kubectl.binary, dead)(
        "config", "set-cluster", _cluster_name(dead), "--server=https://127.0.0.1:1"
    )
    line = one_error_line(kubectl_modelgate(cluster, "status", "-n", "x", "--kubeconfig", str(dead)))
    assert "cannot reach the API server at https://127.0.0.1:1 (connection refused)" in line
    assert "kubectl cluster-info" in line


def _cluster_name(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["name"])


def test_bad_usage_exits_2(cluster: Cluster) -> None:
    res = kubectl_modelgate(cluster, "wait", "fraud", "--for", "gone")
    assert res.returncode == 2 and "invalid choice: 'gone'" in res.stderr
    res = kubectl_modelgate(cluster, "run")  # the operator is not part of the plugin
    assert res.returncode == 2 and "invalid choice: 'run'" in res.stderr
