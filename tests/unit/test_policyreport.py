"""PolicyReports from ModelDeployment statuses (decide/policyreport.py): which policy and rule each
gate is reported under, pass/fail/warn/error, summaries, stable timestamps, shards, and that an
unchanged namespace writes nothing. The gates come from the real gate engine, so the requirement
formats tested are the ones status.gates holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from modelgate.api.v1alpha1 import GovernancePolicy
from modelgate.decide import policyreport as pr
from modelgate.decide.gates import evaluate
from modelgate.runtime.policyreports import served
from tests.unit.factories import (
    NAMESPACE,
    NOW,
    approval_requirement,
    body_of,
    evaluation_requirement,
    gate_input,
    make_deployment,
    make_policy,
)

ALPHA = make_policy(
    "alpha",
    required_card_fields=["owner"],
    approvals=[approval_requirement()],
    evaluations=[evaluation_requirement(min=0.9)],
    separation_of_duties=True,
)
BETA = make_policy("beta", required_card_fields=["owner", "limitations"])


def model(
    name: str = "fraud",
    policies: Sequence[GovernancePolicy] = (ALPHA, BETA),
    *,
    approvals: Sequence[str] = (),
    risk_level: str = "high",
    status: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> pr.Model:
    """A ModelDeployment whose status.gates are what the gate engine says under `policies`."""
    md = make_deployment(name=name, approvals=approvals, risk_level=risk_level, uid=f"uid-{name}")
    report = evaluate(gate_input(md, policies, **kwargs))
    gates = [
        {"requirement": g.requirement, "satisfied": g.satisfied, "reason": g.reason, "message": g.message}
        for g in report.gates
    ]
    return pr.Model(body_of(md, {"gates": gates, **(status or {})}), list(policies))


def results(m: pr.Model) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["policy"], r["rule"]): r for r in pr.model_results(m, NOW)}


def test_each_gate_is_reported_under_the_policy_that_asks_for_it_and_a_short_rule() -> None:
    got = results(model(approvals=["eb"]))
    assert set(got) == {
        ("alpha", "card.owner"),
        ("beta", "card.owner"),  # both require it: one result each
        ("beta", "card.limitations"),
        (pr.BUILTIN, "reference ModelApproval/eb"),  # the spec's own reference: no policy's
        ("alpha", "approval role=ethics-board"),
        ("alpha", "separation of duties"),
        ("alpha", "evaluation accuracy"),
    }
    assert got[("alpha", "card.owner")]["result"] == "pass"
    assert got[("alpha", "approval role=ethics-board")]["result"] == "fail"
    assert got[("alpha", "approval role=ethics-board")]["category"] == "Approval"
    assert got[("alpha", "evaluation accuracy")]["category"] == "Evaluation"
    assert got[("beta", "card.limitations")]["category"] == "Model card"


def test_a_result_carries_the_gate_message_the_model_reference_and_modelgate_as_source() -> None:
    m = model()
    gate = next(g for g in m.body["status"]["gates"] if g["requirement"].startswith("approval"))
    r = results(m)[("alpha", "approval role=ethics-board")]
    assert r["message"] == gate["message"] and r["source"] == "modelgate"
    assert r["properties"] == {"reason": gate["reason"], "version": "1.0.0"}
    assert r["resources"] == [
        {
            "apiVersion": "modelgate.io/v1alpha1",
            "kind": "ModelDeployment",
            "name": "fraud",
            "namespace": NAMESPACE,
            "uid": "uid-fraud",
        }
    ]
    assert r["scored"] is True


def test_severity_follows_the_model_cards_risk_level() -> None:
    for level, severity in (("high", "high"), ("limited", "medium"), ("minimal", "low")):
        assert {r["severity"] for r in results(model(risk_level=level)).values()} == {severity}


def test_a_policy_that_cannot_be_read_is_an_error_under_its_own_name() -> None:
    broken = GovernancePolicy.stand_in("broken", "spec.approvals: bad", None, [])
    got = results(model(policies=[ALPHA, broken]))
    assert got[("broken", "policy readable")]["result"] == "error"
    assert "broken" in got[("broken", "policy readable")]["message"]


def test_no_policy_fails_as_modelgates_own_rule_and_warns_when_the_flag_admits_it() -> None:
    assert results(model(policies=[]))[(pr.BUILTIN, "policy")]["result"] == "fail"
    relaxed = results(model(policies=[], allow_no_policy=True))[(pr.BUILTIN, "policy")]
    assert relaxed["result"] == "warn" and relaxed["scored"] is False


def _recertification(warn_at: str) -> dict[str, Any]:
    return {
        "recertification": {
            "dueAt": "2026-12-10T00:00:00Z",
            "warnAt": warn_at,
            "requirements": [
                {
                    "policy": "alpha",
                    "role": "ethics-board",
                    "dueAt": "2026-12-10T00:00:00Z",
                    "warnAt": warn_at,
                }
            ],
        }
    }


def test_a_satisfied_approval_in_its_recertification_window_warns_with_the_due_date() -> None:
    policies = [make_policy("alpha", approvals=[approval_requirement()])]
    satisfied = {"requirement": "approval role=ethics-board (policy alpha)", "satisfied": True, "reason": "A"}
    md = make_deployment(uid="u")
    body = body_of(md, {"gates": [dict(satisfied, message="ok")], **_recertification("2026-11-30T00:00:00Z")})
    (r,) = pr.model_results(pr.Model(body, policies), NOW)
    assert r["result"] == "warn" and r["message"] == "ok; due for recertification by 2026-12-10T00:00:00Z"
    body["status"].update(_recertification("2026-12-05T00:00:00Z"))  # window not open yet
    assert pr.model_results(pr.Model(body, policies), NOW)[0]["result"] == "pass"
    body["status"]["gates"][0]["satisfied"] = False  # lapsed: a failure, not a warning
    assert pr.model_results(pr.Model(body, policies), NOW)[0]["result"] == "fail"


def test_undecided_and_deleted_models_have_no_results() -> None:
    undecided = pr.Model(body_of(make_deployment(uid="u")), [ALPHA])
    assert pr.model_results(undecided, NOW) == []
    going = model()
    going.body["metadata"]["deletionTimestamp"] = "2026-12-01T11:00:00Z"
    assert pr.model_results(going, NOW) == []


def test_the_report_counts_its_results_in_the_summary() -> None:
    (report,) = pr.reports(NAMESPACE, [model("a"), model("b", approvals=["eb"])], {}, NOW).values()
    assert report["metadata"] == {"name": "modelgate", "namespace": NAMESPACE, "labels": pr.LABELS}
    assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and report["kind"] == "PolicyReport"
    counted = {k: sum(1 for r in report["results"] if r["result"] == k) for k in pr.RESULTS}
    assert report["summary"] == counted and sum(counted.values()) == len(report["results"])
    assert counted["pass"] > 0 and counted["fail"] > 0
    assert [r["resources"][0]["name"] for r in report["results"]] == sorted(
        r["resources"][0]["name"] for r in report["results"]
    )


def test_an_unchanged_namespace_writes_nothing_later() -> None:
    models = [model("a"), model("b")]
    stored = pr.reports(NAMESPACE, models, {}, NOW)
    again = pr.reports(NAMESPACE, models, stored, NOW + timedelta(hours=1))
    assert again == stored  # timestamps kept
    assert pr.writes(stored, again) == pr.Writes((), ())


def test_a_change_of_one_model_changes_only_its_results_and_stamps_them_anew() -> None:
    stored = pr.reports(NAMESPACE, [model("a"), model("b")], {}, NOW)
    later = NOW + timedelta(minutes=5)
    changed = pr.reports(NAMESPACE, [model("a"), model("b", approvals=["eb"])], stored, later)
    plan = pr.writes(stored, changed)
    assert [w["metadata"]["name"] for w in plan.apply] == ["modelgate"] and plan.delete == ()
    before = {pr._key(r): r for r in stored["modelgate"]["results"]}
    for r in changed["modelgate"]["results"]:
        old = before.get(pr._key(r))
        if r["resources"][0]["name"] == "a":
            assert r == old
        elif old is None or old["message"] != r["message"]:
            assert r["timestamp"] == {"seconds": int(later.timestamp()), "nanos": 0}
    assert any(r["rule"] == "reference ModelApproval/eb" for r in changed["modelgate"]["results"])


def test_removed_models_results_disappear_and_an_empty_namespace_loses_its_report() -> None:
    stored = pr.reports(NAMESPACE, [model("a"), model("b")], {}, NOW)
    fewer = pr.reports(NAMESPACE, [model("a")], stored, NOW)
    assert {r["resources"][0]["name"] for r in fewer["modelgate"]["results"]} == {"a"}
    assert pr.reports(NAMESPACE, [], stored, NOW) == {}
    assert pr.writes(stored, {}) == pr.Writes((), ("modelgate",))


def test_a_report_edited_by_someone_else_is_written_again() -> None:
    stored = pr.reports(NAMESPACE, [model("a")], {}, NOW)
    edited = {"modelgate": {**stored["modelgate"], "summary": {"pass": 99}}}
    assert len(pr.writes(edited, stored).apply) == 1
    unlabelled = {"modelgate": {**stored["modelgate"], "metadata": {"name": "modelgate"}}}
    assert len(pr.writes(unlabelled, stored).apply) == 1


def test_results_too_large_for_one_object_are_split_into_shards_one_model_in_one_shard() -> None:
    models = [model(f"m{i}") for i in range(40)]
    one = len(str(pr.model_results(models[0], NOW)))
    wanted = pr.reports(NAMESPACE, models, {}, NOW, budget=one * 12)
    assert len(wanted) in (4, 8) and "modelgate" in wanted
    owners = [r["resources"][0]["name"] for w in wanted.values() for r in w["results"]]
    assert sorted(set(owners)) == sorted(f"m{i}" for i in range(40))
    for w in wanted.values():  # every model's results in one shard only
        names = {r["resources"][0]["name"] for r in w["results"]}
        assert all(
            n not in names
            for other in wanted.values()
            if other is not w
            for n in {r["resources"][0]["name"] for r in other["results"]}
        )
    flipped = [model("m7", approvals=["eb"]) if m.body["metadata"]["name"] == "m7" else m for m in models]
    plan = pr.writes(wanted, pr.reports(NAMESPACE, flipped, wanted, NOW, budget=one * 12))
    assert len(plan.apply) == 1 and plan.delete == ()
    assert any(r["resources"][0]["name"] == "m7" for r in plan.apply[0]["results"])


def test_shards_shrink_only_when_the_fewer_fit_in_half_the_budget() -> None:
    sizes = {f"m{i}": 100 for i in range(10)}
    assert pr.shard_count(sizes, stored=1, budget=2000) == 1
    assert pr.shard_count(sizes, stored=4, budget=2000) == 1  # fits in half: shrink
    assert pr.shard_count(sizes, stored=4, budget=1100) >= 2  # would fit, but not in half: keep
    assert pr.shard_count(sizes, stored=1, budget=300) >= 4


names = st.lists(st.sampled_from([f"m{i}" for i in range(12)]), unique=True, max_size=12)
kinds = st.sampled_from(["blocked", "referenced", "no-policy"])


@settings(max_examples=40, deadline=None)
@given(names=names, kinds=st.lists(kinds, min_size=12, max_size=12), budget=st.integers(1500, 60000))
def test_building_the_reports_again_from_what_was_written_writes_nothing(
    names: list[str], kinds: list[str], budget: int
) -> None:
    def build(name: str, kind: str) -> pr.Model:
        if kind == "no-policy":
            return model(name, policies=[])
        return model(name, approvals=["eb"] if kind == "referenced" else [])

    models = [build(n, k) for n, k in zip(names, kinds, strict=False)]
    wanted = pr.reports(NAMESPACE, models, {}, NOW, budget=budget)
    assert pr.writes(wanted, pr.reports(NAMESPACE, models, wanted, NOW, budget=budget)) == pr.Writes((), ())
    every = [r for w in wanted.values() for r in w["results"]]
    assert len(every) == sum(len(pr.model_results(m, NOW)) for m in models)
    assert all(sum(w["summary"].values()) == len(w["results"]) for w in wanted.values())


def crd(*, served: bool = True, established: str = "True", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": pr.CRD_NAME}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T12:00:00Z"
    return {
        "metadata": meta,
        "spec": {"versions": [{"name": "v1alpha2", "served": served}]},
        "status": {"conditions": [{"type": "Established", "status": established}]},
    }


def test_reports_are_written_only_while_the_crd_serves_v1alpha2_established_and_not_deleting() -> None:
    assert served(crd())
    assert not served(crd(served=False))
    assert not served(crd(established="False"))
    assert not served(crd(deleting=True))
    assert not served(
        {"metadata": {"name": pr.CRD_NAME}, "spec": {"versions": [{"name": "v1beta1", "served": True}]}}
    )
