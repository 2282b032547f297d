"""deploy/argocd/health.lua and modelgate's kstatus conditions, judged by the real engines (the
gitops-health hack/build-gitops.sh builds from gopher-lua and sigs.k8s.io/cli-utils) over the live objects
tests/e2e/test_gitops_health.py captured (tests/fixtures/phases/), variations of them no test drives
(every phase, an unknown phase, inconclusive monitoring), and the two forms Argo CD is configured
with, which must carry the script unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelgate.api import conditions as c
from tests.support.gitops import EXPECTED, FIXTURES, HEALTH_LUA, argocd_health, kstatus
from tests.support.kube import Kubectl

KEY = "resource.customizations.health.modelgate.io_ModelDeployment"
ARGOCD = HEALTH_LUA.parent


def fixture(case: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((FIXTURES / f"{case}.json").read_text())
    return obj


def with_phase(obj: dict[str, Any], phase: str, **ready: str) -> dict[str, Any]:
    """A copy of `obj` with another phase, and Ready fields replaced."""
    out = copy.deepcopy(obj)
    out["status"]["phase"] = phase
    for cond in out["status"]["conditions"]:
        if cond["type"] == c.READY:
            cond.update(ready)
    return out


def test_the_captured_objects_cover_every_case_and_map_as_documented() -> None:
    cases = sorted(EXPECTED)
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == cases
    objects = [fixture(k) for k in cases]
    got = {
        k: (a["status"], s["status"])
        for k, a, s in zip(cases, argocd_health(objects), kstatus(objects), strict=True)
    }
    assert got == EXPECTED


PHASE_HEALTH = {
    "Pending": "Progressing",
    "Blocked": "Progressing",
    "Progressing": "Progressing",
    "Serving": "Healthy",
    "Degraded": "Degraded",
    "RolledBack": "Degraded",
    "Quarantined": "Degraded",
    "Retiring": "Progressing",
}
"""Argo CD's health of each phase (Ready True, no Stalled), as docs/gitops.md tells it."""


def test_the_table_names_every_phase_of_the_api() -> None:
    assert set(PHASE_HEALTH) == set(c.PHASES)


@pytest.mark.parametrize(("phase", "health"), sorted(PHASE_HEALTH.items()))
def test_every_phase_has_an_argo_cd_health(phase: str, health: str) -> None:
    (got,) = argocd_health([with_phase(fixture("serving"), phase)])
    assert got["status"] == health and got["message"].startswith(f"{phase}: "), got


def test_serving_without_ready_true_is_not_healthy() -> None:
    (got,) = argocd_health([with_phase(fixture("serving"), "Serving", status="Unknown")])
    assert got["status"] == "Progressing", got


def test_a_phase_the_script_does_not_know_is_unknown_and_named() -> None:
    (got,) = argocd_health([with_phase(fixture("serving"), "Sleeping")])
    assert got["status"] == "Unknown" and got["message"].startswith("Unknown phase Sleeping; "), got


def test_a_status_without_conditions_still_maps_by_phase() -> None:
    obj = fixture("blocked")
    del obj["status"]["conditions"]
    (got,) = argocd_health([obj])
    assert got == {"status": "Progressing", "message": "Blocked"}


def test_inconclusive_monitoring_is_degraded_for_argo_cd_and_in_progress_for_kstatus() -> None:
    """Degraded with Ready Unknown (Prometheus unreachable): no Stalled (nothing for a person to
    do), so kstatus reads Ready and keeps waiting."""
    obj = with_phase(
        fixture("serving"), "Degraded", status="Unknown", reason="MetricsInconclusive", message="no data"
    )
    (argo,), (ks,) = argocd_health([obj]), kstatus([obj])
    assert (argo["status"], argo["message"], ks["status"]) == ("Degraded", "Degraded: no data", "InProgress")


def test_the_runner_gives_scripts_only_argo_cds_libraries(tmp_path: Path) -> None:
    """Argo CD runs custom health scripts without Lua's string library: neither does the runner, so a
    script passing here cannot fail there for that reason."""
    script = tmp_path / "health.lua"
    script.write_text('hs = {}\nhs.status = "Healthy"\nhs.message = string.upper("x")\nreturn hs\n')
    (got,) = argocd_health([fixture("serving")], script)
    assert "string" in got.get("error", ""), got
    script.write_text('hs = {}\nhs.status = "Fine"\nreturn hs\n')
    (got,) = argocd_health([fixture("serving")], script)
    assert got == {"status": "Unknown", "message": "Lua returned an invalid health status"}


@pytest.mark.parametrize(
    ("path", "keys"), [("values.yaml", ("configs", "cm", KEY)), ("argocd-cm-patch.yaml", ("data", KEY))]
)
def test_each_argo_cd_configuration_carries_the_script_unchanged(path: str, keys: tuple[str, ...]) -> None:
    doc: Any = yaml.safe_load((ARGOCD / path).read_text())
    for k in keys:
        doc = doc[k]
    assert doc == HEALTH_LUA.read_text()


@pytest.mark.integration
def test_the_argocd_cm_patch_adds_the_script_and_keeps_the_other_keys(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl("create", "configmap", "argocd-cm", "-n", namespace, "--from-literal=url=https://argocd.example")
    kubectl(
        "patch", "configmap", "argocd-cm", "-n", namespace,
        "--patch-file", str(ARGOCD / "argocd-cm-patch.yaml"),
    )  # fmt: skip
    data = kubectl.json("get", "configmap", "argocd-cm", "-n", namespace)["data"]
    assert data == {"url": "https://argocd.example", KEY: HEALTH_LUA.read_text()}
