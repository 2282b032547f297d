"""`modelgate run` refuses bad flags up front, naming each, and starts nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelgate.config import OperatorConfig, problems


def test_a_valid_configuration_has_no_problems(tmp_path: Path) -> None:
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text("x")
    cfg = OperatorConfig(
        prometheus_url="https://prom.monitoring:9090/prometheus",
        webhook_service="modelgate-system/modelgate",
        webhook_cert_dir=str(tmp_path),
        webhook_port=0,
    )
    assert problems(cfg) == []


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (OperatorConfig(metrics_port=70000), "--metrics-port 70000: a port is 0 (off) or 1-65535"),
        (OperatorConfig(liveness_port=-1), "--liveness-port -1"),
        (
            OperatorConfig(prometheus_url="prometheus:9090"),
            "--prometheus-url 'prometheus:9090': expected http(s)://",
        ),
        (OperatorConfig(prometheus_url="ftp://x"), "--prometheus-url 'ftp://x'"),
        (
            OperatorConfig(webhook_service="modelgate"),
            "--webhook-service 'modelgate': expected namespace/name",
        ),
        (
            OperatorConfig(webhook_cert_dir="/nonexistent"),
            "--webhook-cert-dir /nonexistent: missing tls.crt, tls.key, ca.crt",
        ),
        (
            OperatorConfig(webhook_client_ca="/nonexistent/ca.crt"),
            "--webhook-client-ca /nonexistent/ca.crt: no such file",
        ),
        (OperatorConfig(operator_namespace="Not_A_Namespace"), "--operator-namespace 'Not_A_Namespace'"),
        (
            OperatorConfig(webhook_cert_secret="Webhook_Cert"),
            "--webhook-cert-secret 'Webhook_Cert': not a valid Secret name",
        ),
        (
            OperatorConfig(webhook_cert_check_interval=0),
            "--webhook-cert-check-interval 0: expected seconds > 0",
        ),
        (
            OperatorConfig(kubeconfig="/nonexistent/kubeconfig"),
            "--kubeconfig /nonexistent/kubeconfig: no such file",
        ),
    ],
)
def test_each_bad_flag_is_named(cfg: OperatorConfig, expected: str) -> None:
    found = problems(cfg)
    assert len(found) == 1 and expected in found[0], found


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "modelgate", "run", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_the_command_lists_every_problem_and_exits_2() -> None:
    res = run("--prometheus-url", "nope", "--webhook-service", "x", "--kubeconfig", "/nonexistent")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert [ln.split(":")[1].split()[0] for ln in lines] == [
        "--prometheus-url",
        "--webhook-service",
        "--kubeconfig",
    ]
    assert all(ln.startswith("modelgate run: ") for ln in lines)


def test_a_bad_port_in_the_environment_is_named() -> None:
    res = run(env={"MODELGATE_WEBHOOK_PORT": "abc"})
    assert res.returncode == 2
    assert res.stderr.strip() == "modelgate run: MODELGATE_WEBHOOK_PORT='abc': expected a port number"


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        (
            OperatorConfig(lease_duration=10, renew_deadline=10),
            "--leader-election-renew-deadline 10 must be less than --leader-election-lease-duration 10",
        ),
        (
            OperatorConfig(renew_deadline=2, retry_period=2),
            "--leader-election-retry-period 2 must be less than --leader-election-renew-deadline 2",
        ),
        (
            OperatorConfig(leader_election_id="Not_A_Lease"),
            "--leader-election-id 'Not_A_Lease': not a valid Lease name",
        ),
    ],
)
def test_each_bad_leader_election_flag_is_named(cfg: OperatorConfig, expected: str) -> None:
    found = problems(cfg)
    assert len(found) == 1 and expected in found[0], found


def test_a_non_positive_retry_period_is_named() -> None:
    found = problems(OperatorConfig(retry_period=0))
    assert found == ["--leader-election-retry-period 0: expected a number of seconds greater than 0"]


def test_the_leader_election_defaults_are_controller_runtimes() -> None:
    cfg = OperatorConfig()
    assert (cfg.leader_elect, cfg.leader_election_id) == (False, "modelgate-leader")
    assert (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == (15.0, 10.0, 2.0)
    assert problems(cfg) == []


def test_the_command_refuses_a_renew_deadline_not_below_the_lease_duration() -> None:
    res = run(
        "--leader-elect", "--leader-election-lease-duration", "5", "--leader-election-renew-deadline", "8"
    )
    assert res.returncode == 2
    assert (
        "--leader-election-renew-deadline 8 must be less than --leader-election-lease-duration 5"
        in res.stderr
    )


def test_a_bad_duration_in_the_environment_is_named() -> None:
    res = run(env={"MODELGATE_LEADER_ELECTION_RETRY_PERIOD": "2s"})
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "modelgate run: MODELGATE_LEADER_ELECTION_RETRY_PERIOD='2s': expected a number of seconds"
    )


def test_the_identity_is_the_pod_name_else_hostname_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    from modelgate.config import default_identity

    monkeypatch.setenv("POD_NAME", "modelgate-7d9f-abcde")
    assert default_identity() == "modelgate-7d9f-abcde"
    monkeypatch.delenv("POD_NAME")
    assert default_identity() == f"{socket.gethostname()}_{os.getpid()}"
