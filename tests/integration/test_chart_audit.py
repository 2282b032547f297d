"""The chart's `modelgate audit` CronJob, rendered with the Helm binary hack/build-helm.sh builds
(no cluster): off by default, read-only when on (its own ServiceAccount bound to modelgate-auditor),
its values checked by values.schema.json."""

from __future__ import annotations

import pytest

from tests.support.helm import CHART, NS, of_kind, run_helm, template

pytestmark = pytest.mark.integration

ON = ("--set", "audit.cronJob.enabled=true")


def test_the_audit_cronjob_is_off_by_default() -> None:
    docs = template()
    assert not of_kind(docs, "CronJob")
    assert "modelgate-audit" not in {d["metadata"]["name"] for d in docs}


def test_the_audit_cronjob_runs_modelgate_audit_as_the_auditor() -> None:
    docs = template(*ON, "--set", "audit.cronJob.schedule=30 5 * * 1,audit.cronJob.within=30d")

    [job] = of_kind(docs, "CronJob")
    assert job["metadata"]["namespace"] == NS and job["spec"]["schedule"] == "30 5 * * 1"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["modelgate"]
    assert container["args"] == ["audit", "--output=text", "--within=30d"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    [sa] = [d for d in of_kind(docs, "ServiceAccount") if d["metadata"]["name"] == "modelgate-audit"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    [binding] = [d for d in of_kind(docs, "ClusterRoleBinding") if d["metadata"]["name"] == "modelgate-audit"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "modelgate-auditor",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "modelgate-audit", "namespace": NS}]


def test_without_within_the_policies_warn_before_decides() -> None:
    [job] = of_kind(template(*ON, "--set", "audit.cronJob.output=json"), "CronJob")
    args = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["audit", "--output=json"]


@pytest.mark.parametrize(
    ("values", "error"),
    [
        pytest.param(("--set", "audit.cronJob.within=a month"), "within", id="within not a duration"),
        pytest.param(("--set", "audit.cronJob.output=yaml"), "output", id="unknown output"),
        pytest.param(("--set", "audit.cronJob.every=1h"), "every", id="unknown key"),
        pytest.param(
            ("--set", "audit.cronJob.enabled=true,userRoles.enabled=false"),
            "audit.cronJob.enabled needs userRoles.enabled",
            id="no auditor role to bind",
        ),
    ],
)
def test_bad_audit_values_are_refused(values: tuple[str, ...], error: str) -> None:
    res = run_helm("template", "modelgate", str(CHART), *values, check=False)
    assert res.returncode != 0 and error in res.stderr, res.stderr
