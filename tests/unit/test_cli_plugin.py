"""The CLI's own decisions, no cluster: one parser for `modelgate` and `kubectl modelgate`, the
approval it writes, --expires and --timeout, and the namespace taken from the kubeconfig's context."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from modelgate.cli.approve import approval_manifest, expiry
from modelgate.cli.kube import CliError, connect
from modelgate.cli.main import build_parser
from modelgate.cli.wait import timeout_seconds

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
MD = {
    "metadata": {"name": "fraud-detector", "namespace": "fraud-prod"},
    "spec": {"model": {"name": "fraud", "version": "v2", "digest": "sha256:" + "ab" * 32, "uri": "s3://m"}},
}


def _subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _options(p: argparse.ArgumentParser) -> list[tuple[tuple[str, ...], object]]:
    """Each option's flags and choices; a nested subcommand by its name and its own options."""
    return [
        (
            tuple(a.option_strings),
            {n: _options(sp) for n, sp in a.choices.items()} if isinstance(a.choices, dict) else a.choices,
        )
        for a in p._actions
    ]


def test_the_plugin_is_the_modelgate_parser_without_run() -> None:
    cli = _subcommands(build_parser("modelgate", plugin=False))
    plugin = _subcommands(build_parser("kubectl modelgate", plugin=True))

    assert set(cli) - set(plugin) == {"run"}
    for name, parser in plugin.items():
        assert _options(parser) == _options(cli[name]), name


@pytest.mark.parametrize("command", ["status", "explain", "approve", "reject", "history", "report", "wait"])
def test_every_cluster_command_takes_kubectls_connection_flags(command: str) -> None:
    flags = {f for opts, _ in _options(_subcommands(build_parser("m", plugin=True))[command]) for f in opts}

    assert {"-n", "--namespace", "--kubeconfig", "--context", "--as", "--as-group"} <= flags


def test_the_approval_names_what_the_deployment_requests_and_never_who_approved() -> None:
    manifest = approval_manifest(
        MD, "ethics-board", "approved", comment="ok", expires_at="2027-01-04T12:00:00Z"
    )

    assert manifest["spec"] == {
        "model": {"name": "fraud", "version": "v2", "digest": "sha256:" + "ab" * 32},
        "role": "ethics-board",
        "decision": "approved",
        "comment": "ok",
        "expiresAt": "2027-01-04T12:00:00Z",
    }
    assert manifest["metadata"] == {
        "generateName": "fraud-detector-v2-ethics-board-",
        "namespace": "fraud-prod",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", "2027-01-04T12:00:00Z"),
        ("12h", "2026-12-06T00:00:00Z"),
        ("2027-02-01T00:00:00Z", "2027-02-01T00:00:00Z"),
    ],
)
def test_expires_takes_a_duration_or_a_time(text: str, expected: str) -> None:
    assert expiry(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("soon", "want a duration"),
        ("2025-01-01T00:00:00Z", "not in the future"),
        ("2027-01-01T00:00", "time zone"),
    ],
)
def test_a_bad_expiry_is_a_usage_error(text: str, why: str) -> None:
    with pytest.raises(CliError, match=why) as err:
        expiry(text, NOW)
    assert err.value.code == 2


def test_timeout_takes_durations_and_seconds() -> None:
    assert [timeout_seconds(t) for t in ("5m", "90s", "1h30m", "12")] == [300, 90, 5400, 12]
    with pytest.raises(CliError, match="--timeout later"):
        timeout_seconds("later")


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts:
  - {name: prod, context: {cluster: c, user: u, namespace: fraud-prod}}
  - {name: bare, context: {cluster: c, user: u}}
current-context: prod
"""


@pytest.fixture(autouse=True)
def _no_default_client() -> Iterator[None]:
    """connect() installs its client as the process's default: take it out again."""
    yield
    kubernetes.client.ApiClient.set_default(None)


def _args(path: Path, *extra: str) -> argparse.Namespace:
    return build_parser("kubectl modelgate", plugin=True).parse_args(
        ["status", "--kubeconfig", str(path), *extra]
    )


def test_the_namespace_is_the_contexts_unless_given(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)

    assert connect(_args(path)).namespace == "fraud-prod"
    assert connect(_args(path, "-n", "other")).namespace == "other"
    assert connect(_args(path, "--context", "bare")).namespace == "default"
    with pytest.raises(CliError, match=r"context nope is not in kubeconfig .* \(its contexts: prod, bare\)"):
        connect(_args(path, "--context", "nope"))


def test_groups_without_a_user_to_impersonate_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)

    with pytest.raises(CliError, match="--as-group needs --as") as err:
        connect(_args(path, "--as-group", "ethics-board"))
    assert err.value.code == 2
