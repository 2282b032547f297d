"""A serving object the API server refuses as invalid (422): a spec the ModelDeployment schema admits
but the Deployment's own validation does not (resource requests above limits, an unknown resource
name). The plan reports it in Ready (ServingObjectInvalid, quoting the API server) and tells it once
per refusal; the write is retried, and a fixed spec is written without waiting for anything.

The refusal reaches the pure plan as a fact of the reconcile loop (`Observed.refusals`, kept by
runtime/reconcile.py `Watermarks`); the act layer turns the API server's Status into that fact's
message (act/kube.py `refusal`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from modelgate.act import kube
from modelgate.api import conditions as c
from modelgate.decide.objects import APPLIED_HASH
from modelgate.decide.plan import plan
from modelgate.decide.types import Observed, Plan, Refusal
from modelgate.runtime.reconcile import Watermarks
from modelgate.webhooks.handlers import resource_problems
from tests.unit.factories import NOW, approval, model, observed, policy
from tests.unit.test_reconcile_once import KEY, Cluster, kinds, run
from tests.unit.test_reconcile_once import cluster as cluster  # the fixture

TOO_MUCH = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
FIXED = {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
SAID = (
    'spec.template.spec.containers[0].resources.requests: Invalid value: "2": '
    "must be less than or equal to cpu limit of 1"
)
STATUS_422 = {
    "kind": "Status",
    "apiVersion": "v1",
    "status": "Failure",
    "message": 'Deployment.apps "fraud-detector" is invalid: [' + SAID + "]",
    "reason": "Invalid",
    "details": {
        "name": "fraud-detector",
        "group": "apps",
        "kind": "Deployment",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": 'Invalid value: "2": must be less than or equal to cpu limit of 1',
                "field": "spec.template.spec.containers[0].resources.requests",
            }
        ],
    },
    "code": 422,
}
"""What kube-apiserver v1.37 answers to such a Deployment (captured from the local control plane)."""


def snapshot(resources: Mapping[str, Any], *, generation: int = 1, **kwargs: Any) -> Observed:
    md = model(serving={"resources": dict(resources)}, generation=generation)
    return observed(md, policies=[policy()], approvals=[approval()], **kwargs)


def refusal_of(p: Plan) -> dict[str, Refusal]:
    """The fact the loop keeps when the API server refuses the plan's Deployment."""
    assert p.deployment is not None
    return {"Deployment": Refusal(p.deployment["metadata"]["annotations"][APPLIED_HASH], SAID)}


def ready(p: Plan) -> dict[str, Any]:
    return next(x for x in p.status["conditions"] if x["type"] == c.READY)


def refused_plan() -> tuple[Plan, Plan]:
    """The first plan (its Deployment refused), then the plan that knows of the refusal."""
    first = plan(snapshot(TOO_MUCH), NOW)
    return first, plan(snapshot(TOO_MUCH, status=first.status, refusals=refusal_of(first)), NOW)


def test_a_refused_deployment_makes_ready_false_with_the_api_servers_words_and_is_told_once() -> None:
    first, p = refused_plan()

    cond = ready(p)
    assert (cond["status"], cond["reason"]) == (c.FALSE, c.SERVING_OBJECT_INVALID)
    assert "Deployment fraud-detector" in cond["message"] and SAID in cond["message"]
    assert "does not exist yet" not in cond["message"]
    assert p.status["phase"] == c.PHASE_DEGRADED
    told = [d for d in p.decisions if d.action == c.ACTION_SERVING_OBJECT_INVALID]
    assert len(told) == 1 and told[0].warning and told[0].message == cond["message"]
    assert p.deployment == first.deployment  # the same write is retried (the loop backs off)


def test_the_same_refusal_again_changes_nothing_and_tells_nothing() -> None:
    first, p = refused_plan()

    again = plan(snapshot(TOO_MUCH, status=p.status, refusals=refusal_of(first)), NOW)

    assert again.decisions == ()
    assert again.status == p.status


def test_a_fixed_spec_is_written_at_once_and_no_longer_reported_as_refused() -> None:
    first, p = refused_plan()

    fixed = plan(snapshot(FIXED, generation=2, status=p.status, refusals=refusal_of(first)), NOW)

    assert fixed.deployment is not None and fixed.deployment != first.deployment
    assert ready(fixed)["reason"] == c.ROLLOUT_IN_PROGRESS
    assert not [d for d in fixed.decisions if d.action == c.ACTION_SERVING_OBJECT_INVALID]


@pytest.mark.parametrize(("generation", "kept"), [(1, True), (2, False)])
def test_after_a_restart_the_stored_refusal_stands_until_the_retry_answers_unless_the_spec_changed(
    generation: int, kept: bool
) -> None:
    _, p = refused_plan()

    restarted = plan(snapshot(TOO_MUCH, generation=generation, status=p.status), NOW)

    assert (ready(restarted)["reason"] == c.SERVING_OBJECT_INVALID) is kept
    assert not [d for d in restarted.decisions if d.action == c.ACTION_SERVING_OBJECT_INVALID]
    assert restarted.deployment is not None  # the write is tried, which tells the loop how it goes


def test_the_api_servers_status_becomes_field_and_reason_of_each_cause() -> None:
    e = ApiException(status=422, reason="Unprocessable Entity")
    e.body = json.dumps(STATUS_422)

    assert kube.refusal(e) == SAID


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (json.dumps({"kind": "Status", "message": "admission webhook denied the request"}), "denied"),
        ("not json", "Unprocessable Entity"),
        (None, "Unprocessable Entity"),
    ],
)
def test_a_refusal_without_causes_quotes_the_message_or_the_http_reason(body: str | None, said: str) -> None:
    e = ApiException(status=422, reason="Unprocessable Entity")
    e.body = body

    assert said in kube.refusal(e)


# --- admission: what can be named is refused before it is stored -----------------------------------


@pytest.mark.parametrize(
    ("resources", "named"),
    [
        (TOO_MUCH, ["cpu"]),
        ({"requests": {"memory": "1Gi"}, "limits": {"memory": "1000Mi"}}, ["memory"]),
        ({"requests": {"cpu": 2, "memory": "2Gi"}, "limits": {"cpu": "1500m", "memory": "3Gi"}}, ["cpu"]),
        (FIXED, []),
        ({"requests": {"cpu": "500m"}, "limits": {"cpu": "0.5"}}, []),
        ({"requests": {"cpu": "2"}}, []),  # no limit: nothing to exceed
        ({"requests": {"cpu": "2"}, "limits": {"memory": "1Gi"}}, []),
        ({"requests": {"cpu": "two"}, "limits": {"cpu": "1"}}, []),  # not a quantity: the schema says so
        ({"requests": ["cpu"], "limits": {"cpu": "1"}}, []),
        ({"requests": {"cpu": True}, "limits": {"cpu": 0}}, []),
        ("much", []),
    ],
)
def test_admission_names_each_resource_requested_above_its_limit(resources: Any, named: list[str]) -> None:
    problems = resource_problems({"serving": {"image": "x", "resources": resources}})

    fields = [p.split(":")[0] for p in problems.split("; ")] if problems else []
    assert fields == [f"spec.serving.resources.requests.{n}" for n in named]


def test_admission_says_both_values() -> None:
    assert resource_problems({"serving": {"resources": TOO_MUCH}}) == (
        "spec.serving.resources.requests.cpu: 2 must be less than or equal to its limit 1"
    )


# --- the loop: the refusal kept between passes, told once, forgotten when the write succeeds --------


def test_the_loop_reports_a_refusal_once_retries_it_and_recovers_when_the_spec_is_fixed(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_owned = kube.write_owned

    async def refusing(obj: dict[str, Any], existing: Mapping[str, Any] | None) -> str:
        container = obj["spec"]["template"]["spec"]["containers"][0] if obj["kind"] == "Deployment" else {}
        if container.get("resources") == TOO_MUCH:
            cluster.writes.append(("refused", obj["kind"]))
            raise kube.Refused("Deployment", SAID)
        return await write_owned(obj, existing)

    monkeypatch.setattr(kube, "write_owned", refusing)
    serving = cluster.body["spec"]["serving"]
    serving["resources"] = TOO_MUCH
    loop = Watermarks()
    with pytest.raises(kube.Refused):
        run(cluster, loop)
    assert set(loop.refusals) == {"Deployment"}

    for attempt in range(3):
        cluster.deliver("status", "Service")
        cluster.writes.clear()
        with pytest.raises(kube.Refused):
            run(cluster, loop)
        told = [w for w in cluster.writes if w == ("Event", c.ACTION_SERVING_OBJECT_INVALID)]
        assert len(told) == (1 if attempt == 0 else 0), cluster.writes
        assert ("refused", "Deployment") in cluster.writes  # retried every time (run_loop backs off)
    stored = cluster.written["status"][0]
    assert [x["reason"] for x in stored["conditions"] if x["type"] == c.READY] == [c.SERVING_OBJECT_INVALID]

    serving["resources"] = FIXED
    cluster.body["metadata"]["generation"] = 2
    cluster.indexes["modeldeployments"][KEY] = [cluster.body]
    cluster.deliver("status")
    cluster.writes.clear()
    run(cluster, loop)
    assert "Deployment" in kinds(cluster) and loop.refusals == {}
    cluster.deliver()
    run(cluster, loop)
    assert cluster.written["status"][0]["phase"] == c.PHASE_SERVING


def test_a_lasting_refusal_holds_up_neither_the_quarantine_network_policy_nor_the_rest_of_the_pass(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refusing(obj: dict[str, Any], existing: Mapping[str, Any] | None) -> str:
        raise kube.Refused(obj["kind"], SAID)

    run(cluster, Watermarks())  # admitted and served
    cluster.deliver()
    digest = cluster.body["spec"]["model"]["digest"]
    quarantine = {"digest": digest, "reason": c.QUARANTINED_REASON, "time": "2026-12-01T11:00:00Z"}
    cluster.body["status"] = {
        **cluster.body["status"],
        "quarantinedAt": quarantine["time"],
        "rejectedDigests": [quarantine],
    }
    cluster.indexes["modeldeployments"][KEY] = [cluster.body]
    monkeypatch.setattr(kube, "write_owned", refusing)
    cluster.writes.clear()

    with pytest.raises(kube.Refused):
        run(cluster, Watermarks())

    assert ("NetworkPolicy", True) in cluster.writes, cluster.writes


@pytest.mark.parametrize(
    ("status", "body", "terminating"),
    [
        (403, '{"details": {"causes": [{"reason": "NamespaceTerminating"}]}}', True),
        (403, '{"reason": "Forbidden", "message": "alice may not"}', False),
        (422, '{"details": {"causes": [{"reason": "NamespaceTerminating"}]}}', False),
        (403, None, False),
    ],
)
def test_a_write_into_a_namespace_being_deleted_is_told_apart(
    status: int, body: str | None, terminating: bool
) -> None:
    e = ApiException(status=status, reason="x")
    e.body = body
    assert kube.namespace_terminating(e) is terminating
    assert not kube.namespace_terminating(ValueError("NamespaceTerminating"))
