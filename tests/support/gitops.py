"""Argo CD's and kstatus' view of objects, computed by the real engines: gitops-health, which
hack/build-gitops.sh builds from their Go modules (gopher-lua running deploy/argocd/health.lua as
Argo CD does, and sigs.k8s.io/cli-utils' kstatus as Flux's healthChecks do)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HEALTH_LUA = ROOT / "deploy" / "argocd" / "health.lua"
FIXTURES = ROOT / "tests" / "fixtures" / "phases"
"""Live objects captured by tests/e2e/test_gitops_health.py, one per case of EXPECTED."""

EXPECTED = {
    # case: (Argo CD health, kstatus status); docs/gitops.md tells the same table
    "no-status": ("Progressing", "Current"),  # kstatus' documented blind spot: it cannot know yet
    "stale-generation": ("Progressing", "InProgress"),
    "terminating": ("Progressing", "Terminating"),
    "blocked": ("Progressing", "InProgress"),
    "progressing": ("Progressing", "InProgress"),
    "serving": ("Healthy", "Current"),
    "degraded-kept": ("Degraded", "Current"),
    "suspended": ("Degraded", "Failed"),
    "refused": ("Degraded", "Failed"),
    "rolled-back": ("Degraded", "Failed"),
    "quarantined": ("Degraded", "Failed"),
}


@cache
def runner() -> Path:
    """hack/build-gitops.sh's gitops-health (a no-op when the build is cached)."""
    out = subprocess.run(["bash", str(ROOT / "hack" / "build-gitops.sh")], stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise AssertionError("hack/build-gitops.sh failed: gitops-health could not be built")
    return Path(out.stdout.strip().splitlines()[-1])


def _run(args: Sequence[str], objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    res = subprocess.run(
        [str(runner()), *args], input=json.dumps(list(objects)), capture_output=True, text=True, timeout=60
    )
    if res.returncode not in (0, 1) or not res.stdout.strip():
        raise AssertionError(f"gitops-health {args[0]} failed ({res.returncode}): {res.stderr.strip()}")
    out: list[dict[str, Any]] = json.loads(res.stdout)
    assert len(out) == len(objects), out
    return out


def argocd_health(objects: Sequence[dict[str, Any]], script: Path = HEALTH_LUA) -> list[dict[str, Any]]:
    """Argo CD's {status, message} (or {error}) for each object, from the health script."""
    return _run(["argocd", str(script)], objects)


def kstatus(objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """kstatus' {status, message, conditions} (or {error}) for each object."""
    return _run(["kstatus"], objects)
