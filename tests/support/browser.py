"""A real browser for tests of the HTML report: Debian's chromium, headless, one page per run.

`render(page)` opens a local file the way a person opening an attachment would, and returns what a
test needs to judge it: the screenshot (PNG), the DOM after loading, every message the page wrote to
the console (an error, an uncaught exception), and every network request the page made (from
chromium's net log: requests the page initiated, not the browser's own background traffic, which
carries no initiator). hack/deps.sh installs chromium; a machine without it fails the test with
that advice rather than skipping it.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

WINDOW = (1100, 4600)
"""The screenshot's size: tall enough for the whole page of the test's model."""
QUIET = (
    "--headless",
    "--disable-gpu",
    "--no-sandbox",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


@dataclass(frozen=True)
class Rendered:
    png: bytes
    dom: str
    console: list[str]
    """Lines chromium logged for the page's console (console.* calls, uncaught errors)."""
    requests: list[str]
    """URLs the page itself asked for."""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "chromium is not installed: run bash hack/deps.sh (as root it installs Debian's chromium)"
        )
    return found


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[bytes]:
    cmd = [chromium(), *QUIET, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=120, check=True)


def _page_requests(netlog: Path) -> list[str]:
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        str(e["params"]["url"])
        for e in log["events"]
        if e["type"] == start and e.get("params", {}).get("initiator", "not an origin") != "not an origin"
    ]


def _console(stderr: bytes) -> list[str]:
    return [
        line
        for line in stderr.decode(errors="replace").splitlines()
        if ":CONSOLE" in line or "Uncaught" in line
    ]


def render(page: Path) -> Rendered:
    """Load `page` twice: once for the screenshot, the console and the net log, once for the DOM."""
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="modelgate-chromium-") as tmp:
        work = Path(tmp)
        shot, netlog = work / "page.png", work / "net.json"
        first = _run(
            [
                f"--screenshot={shot}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                f"--log-net-log={netlog}",
                url,
            ],
            work / "profile-1",
        )
        second = _run(["--dump-dom", url], work / "profile-2")
        return Rendered(
            shot.read_bytes(),
            second.stdout.decode(),
            _console(first.stderr) + _console(second.stderr),
            _page_requests(netlog),
        )


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


class Dom(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's parser sees them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def words(self) -> str:
        """The text with runs of white space made one space."""
        return " ".join(" ".join(self.text).split())
