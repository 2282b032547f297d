"""`kubectl modelgate wait` on a terminal (tmux, Debian's): one progress line kept up to date while the
model moves, then the result and the exit status, as a person at a shell sees them."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.test_plugin import BOB, blocked_model, kubectl_modelgate, plugin_env
from tests.support.kube import Cluster, wait_until

pytestmark = pytest.mark.integration
__all__ = ["blocked_model"]  # the fixture, shared with test_plugin.py


class Terminal:
    """A tmux server of its own (its own socket), one 200x50 window running bash."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"modelgate-plugin-{uuid.uuid4().hex[:8]}"
        self.tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "50", "bash --norc --noprofile", env=env)

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        res = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return res.stdout

    def start(self, command: str) -> str:
        """Type `command` and have the shell print its exit status after it; the line typed."""
        line = f"{command}; echo EXIT=$?"
        self.tmux("send-keys", "-t", "t", line, "Enter")
        return line

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def shows(self, text: str, typed: str = "") -> str | None:
        """The screen, once `text` is on it other than in the command line `typed`."""
        screen = self.screen()
        return screen if text in screen.replace(typed, "") else None

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


def after_command(screen: str, typed: str) -> list[str]:
    """The screen's non-empty lines after the command line (tmux wraps none at 200 columns)."""
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    start = max(i for i, line in enumerate(lines) if line.endswith(typed))  # echoed early, then run
    return lines[start + 1 :]


@pytest.fixture
def terminal(cluster: Cluster) -> Iterator[Terminal]:
    if not shutil.which("tmux"):
        pytest.fail("tmux is not installed: run `bash hack/deps.sh` (apt-get install tmux)")
    term = Terminal(plugin_env(cluster, TERM="xterm-256color"))
    yield term
    term.close()


def test_wait_keeps_one_progress_line_up_to_date_until_ready(
    cluster: Cluster, namespace: str, blocked_model: str, terminal: Terminal
) -> None:
    wait = terminal.start(
        f"kubectl modelgate wait fraud -n {shlex.quote(namespace)} --for ready --timeout 120s"
    )
    blocked = "fraud: Blocked, gates 3/4, approval role=ethics-board"
    screen = wait_until("the progress line to show the blocked model", lambda: terminal.shows(blocked, wait))
    assert "EXIT=" not in screen.replace(wait, "")

    approved = kubectl_modelgate(cluster, "approve", "fraud", "-n", namespace, "--role", "ethics-board", *BOB)
    assert approved.returncode == 0, approved.stderr

    done = wait_until("wait to finish", lambda: terminal.shows("EXIT=", wait))
    lines = after_command(done, wait)
    assert lines[:2] == [f"ModelDeployment {namespace}/fraud is ready (phase Serving)", "EXIT=0"], done
    # the progress line was rewritten in place: no trace of the blocked state is left on screen
    assert "fraud: Blocked" not in done, done


def test_wait_on_a_terminal_exits_1_on_timeout_naming_what_blocks(
    cluster: Cluster, namespace: str, blocked_model: str, terminal: Terminal
) -> None:
    wait = terminal.start(
        f"kubectl modelgate wait fraud -n {shlex.quote(namespace)} --for serving --timeout 3s"
    )
    done = wait_until("wait to time out", lambda: terminal.shows("EXIT=", wait))
    lines = after_command(done, wait)
    assert lines[-2] == "EXIT=1", done  # the last line is the shell's next prompt
    assert lines[0].startswith("fraud: Blocked, gates 3/4, approval role=ethics-board"), done
    error = "".join(lines[1:-2])  # the terminal wraps the long line
    assert error.startswith(
        f"timed out after 3s waiting for ModelDeployment {namespace}/fraud to be serving: "
    ), done
    assert "approval role=ethics-board" in error, done
