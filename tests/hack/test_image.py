"""The operator image, short of `docker build` (no Docker engine on our machines): the Dockerfile's
stages as written, the wheel its first stage builds from exactly what it copies, and that wheel
installed into a fresh virtualenv running the image's ENTRYPOINT + CMD (`modelgate run`) with
--help. Needs PyPI or a warm pip cache for the build backend and the dependencies."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 600


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        found = [arg for kw, arg in self.instructions if kw == keyword]
        return found[-1] if found else None

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: FROM (with ARG defaults substituted), then (KEYWORD, argument) pairs;
    line continuations joined, comments dropped."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    logical = re.sub(
        r"\\\n\s*", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    )
    for line in logical.splitlines():
        if not line.strip():
            continue
        keyword, _sep, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            name, _eq, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            base, _as, name = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest).partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


STAGES = parse_dockerfile((ROOT / "Dockerfile").read_text())


def test_the_final_stage_runs_modelgate_run_as_user_65532_on_a_slim_python() -> None:
    final = STAGES[-1]
    assert len(STAGES) >= 2, "not multi-stage"
    assert final.last("USER") == "65532:65532"
    assert json.loads(final.last("ENTRYPOINT") or "null") == ["modelgate"]
    assert json.loads(final.last("CMD") or "null") == ["run"]
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim", final.base)
    assert match, final.base
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(x) for x in requires.removeprefix(">=").split("."))
    assert (int(match.group(1)), int(match.group(2))) >= minimum


def test_the_final_stage_installs_only_the_wheel_of_the_first() -> None:
    builder, final = STAGES[0], STAGES[-1]
    assert any("pip wheel" in run and "--no-deps" in run for run in builder.all("RUN"))
    assert not final.all("COPY"), "the final stage copies files besides the wheel"
    (install,) = final.all("RUN")
    assert f"from={builder.name}" in install and re.search(
        r"pip install --no-cache-dir /wheels/\*\.whl$", install
    )


def _copied(stage: Stage) -> list[str]:
    """The sources of the stage's COPY instructions (every word but the destination)."""
    return [src for arg in stage.all("COPY") for src in arg.split()[:-1]]


def test_the_build_context_holds_what_the_first_stage_copies_and_no_local_state() -> None:
    patterns = [
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and ln[0] != "#"
    ]

    def included(path: str) -> bool:
        keep = True
        for p in patterns:
            negated = p.startswith("!")
            p = p.removeprefix("!").rstrip("/")
            if any(fnmatch.fnmatch(path, q) for q in (p, p + "/*", p.replace("**/", "*/"))):
                keep = negated
        return keep

    for path in _copied(STAGES[0]):
        assert included(path.rstrip("/")), f"{path} is copied but .dockerignore excludes it"
    for path in (
        ".venv/bin/python",
        ".cache/cluster/kubeconfig",
        "tests/conftest.py",
        "hack/cluster.py",
        ".git/HEAD",
    ):
        assert not included(path), f".dockerignore lets {path} into the build context"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built as the first stage builds it: from a copy of exactly what it COPYs."""
    src = tmp_path_factory.mktemp("context")
    for path in _copied(STAGES[0]):
        source = ROOT / path.rstrip("/")
        if source.is_dir():
            shutil.copytree(
                source, src / path.rstrip("/"), ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy(source, src / path)
    out = tmp_path_factory.mktemp("wheels")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (built,) = out.glob("modelgate-*.whl")
    return built


def test_the_wheel_holds_the_package_and_no_tests_or_tools(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"modelgate"}, tops
    assert "modelgate/py.typed" in names and "modelgate/cli/main.py" in names
    assert not [n for n in names if n.startswith(("tests/", "hack/", "bench/")) or "/tests/" in n]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "modelgate = modelgate.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_wheel_installs_into_a_fresh_virtualenv_and_runs_the_images_command(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    final = STAGES[-1]
    entrypoint, cmd = json.loads(final.last("ENTRYPOINT") or "[]"), json.loads(final.last("CMD") or "[]")
    argv = [str(venv / "bin" / entrypoint[0]), *entrypoint[1:], *cmd, "--help"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "--webhook-cert-secret" in res.stdout and "--webhook-service" in res.stdout
    # From the virtualenv, not from this checkout.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import modelgate; print(modelgate.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert where.stdout.startswith(str(venv)), where.stdout
