"""`modelgate audit`'s findings from a stored status (decide/findings.py), one case per row, and the
command's answers when it cannot run at all (no cluster needed for those)."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from modelgate.cli.audit import render
from modelgate.cli.main import main
from modelgate.decide.findings import DUE_SOON, LAPSED, NOT_COMPLIANT, QUARANTINED, STALE, findings
from tests.unit.factories import NOW, rfc3339

DAY = timedelta(days=1)


def md(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "fraud-prod", "name": "fraud"},
        "spec": {"model": {"name": "fraud", "version": "v2"}},
        "status": {"phase": "Serving", "servingRevision": {"version": "v1"}, **status},
    }


def schedule(due_in: timedelta, warn: timedelta = 14 * DAY) -> dict[str, Any]:
    return {"dueAt": rfc3339(NOW + due_in), "warnAt": rfc3339(NOW + due_in - warn), "requirements": []}


def cond(type_: str, status: str, message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": "R",
        "message": message,
        "lastTransitionTime": rfc3339(NOW),
    }


STALE_GATE = {
    "requirement": "evaluation accuracy",
    "satisfied": False,
    "reason": "EvaluationStale",
    "message": "old",
}


@pytest.mark.parametrize(
    ("status", "within", "kinds"),
    [
        pytest.param({}, None, [], id="nothing to say"),
        pytest.param({"compliance": "Compliant"}, None, [], id="compliant"),
        pytest.param(
            {"compliance": "NotCompliant", "conditions": [cond("Admitted", "False", "lost")]},
            None,
            [NOT_COMPLIANT],
            id="kept serving after a revocation",
        ),
        pytest.param({"recertification": schedule(30 * DAY)}, None, [], id="due outside the policy's window"),
        pytest.param({"recertification": schedule(10 * DAY)}, None, [DUE_SOON], id="inside warnBefore"),
        pytest.param({"recertification": schedule(20 * DAY)}, 30 * DAY, [DUE_SOON], id="inside --within"),
        pytest.param(
            {"recertification": schedule(10 * DAY)}, 5 * DAY, [], id="--within shorter than warnBefore"
        ),
        pytest.param({"recertification": schedule(-DAY)}, None, [LAPSED], id="lapsed"),
        pytest.param({"recertification": schedule(timedelta(0))}, None, [LAPSED], id="lapses this instant"),
        pytest.param(
            {"compliance": "NotCompliant", "gates": [STALE_GATE]},
            None,
            [NOT_COMPLIANT, STALE],
            id="serving on stale evidence",
        ),
        pytest.param({"gates": [STALE_GATE]}, None, [], id="stale but not serving"),
        pytest.param(
            {"conditions": [cond("Quarantined", "True", "cut")], "quarantinedAt": rfc3339(NOW)},
            None,
            [QUARANTINED],
            id="quarantined",
        ),
    ],
)
def test_findings(status: dict[str, Any], within: timedelta | None, kinds: list[str]) -> None:
    assert [f.kind for f in findings(md(**status), NOW, within)] == kinds


def test_only_due_soon_is_not_overdue() -> None:
    [soon] = findings(md(recertification=schedule(DAY)), NOW, None)
    [lapsed] = findings(md(recertification=schedule(-DAY)), NOW, None)

    assert not soon.overdue and lapsed.overdue
    assert (soon.version, soon.at) == ("v1", rfc3339(NOW + DAY))  # the version that serves


def test_the_recertification_condition_message_explains_the_finding() -> None:
    message = "role ethics-board (policy prod, maxAge 180d) lapsed at ..."
    obj = md(recertification=schedule(-DAY), conditions=[cond("RecertificationDue", "True", message)])

    assert findings(obj, NOW, None)[0].message == message


def test_table_has_a_row_per_finding_and_a_summary() -> None:
    out = io.StringIO()
    found = findings(md(recertification=schedule(-DAY), quarantinedAt=rfc3339(NOW)), NOW, None)

    render(found, 3, out)

    lines = out.getvalue().splitlines()
    assert lines[0].split()[:6] == ["NAMESPACE", "NAME", "MODEL", "VERSION", "PHASE", "FINDING"]
    assert [ln.split()[5] for ln in lines[1:3]] == [LAPSED, QUARANTINED]
    assert lines[-1] == "3 ModelDeployment(s) audited: 2 overdue, 0 due soon"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param({"within": "a month"}, "--within: invalid duration 'a month'", id="bad --within"),
        pytest.param(
            {"kubeconfig": "/nonexistent/kubeconfig"},
            "kubeconfig /nonexistent/kubeconfig (--kubeconfig) does not exist",
            id="no kubeconfig",
        ),
    ],
)
def test_an_audit_that_cannot_run_says_why_in_one_line_and_exits_2(
    args: dict[str, Any], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kubeconfig = args.get("kubeconfig") or str(unreachable(tmp_path))
    within = ["--within", args["within"]] if "within" in args else []

    code = main(["audit", "--kubeconfig", kubeconfig, *within])

    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and says in err, err


def unreachable(tmp_path: Path) -> Path:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\nusers: [{name: x, user: {token: t}}]\n"
    )
    return kubeconfig


def test_an_unreachable_api_server_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", "-o", "json", "--kubeconfig", str(unreachable(tmp_path))])

    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("modelgate: error: audit: cannot reach the API server at https://127.0.0.1:1"), err
    assert err.count("\n") == 1
