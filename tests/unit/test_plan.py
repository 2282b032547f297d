"""The plan without monitoring events: admission, the serving objects it builds, blocked and revoked
revisions, tampering, the monitoring target and the steady state that writes nothing.

Every story runs through `Story` (tests/unit/factories.py), which feeds each plan's status
back into the next snapshot and checks every status against the CRD's own schema.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from modelgate.api import conditions as c
from modelgate.decide import serving
from modelgate.decide.objects import APPLIED_HASH, rollout
from modelgate.decide.plan import plan
from modelgate.decide.revision import requested_revision_id
from tests.unit.factories import (
    DIGEST,
    IMAGE,
    MODEL,
    NAMESPACE,
    NOW,
    OTHER_DIGEST,
    PASSING,
    UID,
    V2,
    VERSION,
    Story,
    actions,
    approval,
    cond,
    condition,
    decision,
    env,
    evaluation_requirement,
    make_evaluation,
    metric,
    model,
    monitoring,
    observed,
    policy,
    revision_of,
    rolled_out,
    step,
    stored,
    story_observed,
)

# --- admission -------------------------------------------------------------------------------------


def test_admitted_revision_gets_a_deployment_built_for_it() -> None:
    p = plan(story_observed(model()), NOW)

    dep = p.deployment
    assert dep is not None
    assert (dep["kind"], dep["metadata"]["name"], dep["metadata"]["namespace"]) == (
        "Deployment",
        MODEL,
        NAMESPACE,
    )
    want_labels = {
        serving.LABEL_MODEL: MODEL,
        serving.LABEL_VERSION: VERSION,
        serving.LABEL_DEPLOYMENT: MODEL,
    }
    assert want_labels.items() <= dep["metadata"]["labels"].items()
    revision = {serving.LABEL_REVISION: requested_revision_id(model(), [policy()])}
    assert dep["spec"]["template"]["metadata"]["labels"] == want_labels | revision
    assert dep["spec"]["selector"] == {"matchLabels": {serving.LABEL_DEPLOYMENT: MODEL}}
    assert dep["spec"]["replicas"] == 1
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert env(dep)["MODEL_URI"] == f"s3://models/{MODEL}/{VERSION}"
    assert env(dep)["MODEL_DIGEST"] == DIGEST
    assert dep["metadata"]["annotations"][serving.ANNOTATION_DIGEST] == DIGEST


def test_admitted_revision_gets_a_service_selecting_its_pods() -> None:
    p = plan(story_observed(model()), NOW)

    svc = p.service
    assert svc is not None
    assert svc["kind"] == "Service"
    assert svc["spec"]["selector"] == {
        serving.LABEL_DEPLOYMENT: MODEL,
        serving.LABEL_REVISION: requested_revision_id(model(), [policy()]),
    }
    assert svc["spec"]["ports"][0]["port"] == 8080
    assert svc["metadata"]["labels"][serving.LABEL_VERSION] == VERSION


@pytest.mark.parametrize("kind", ["deployment", "service"])
def test_serving_objects_are_owned_by_the_model_deployment(kind: str) -> None:
    p = plan(story_observed(model()), NOW)

    obj = getattr(p, kind)
    assert obj["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "modelgate.io/v1alpha1",
            "kind": "ModelDeployment",
            "name": MODEL,
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert APPLIED_HASH in obj["metadata"]["annotations"]


def test_serving_spec_reaches_the_container() -> None:
    md = model(
        serving={
            "replicas": 3,
            "port": 9000,
            "env": [{"name": "LOG_LEVEL", "value": "debug"}],
            "resources": {"requests": {"cpu": "500m"}},
        }
    )
    dep = plan(story_observed(md, approvals=[approval(revision=revision_of(md))]), NOW).deployment
    assert dep is not None

    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["spec"]["replicas"] == 3
    assert container["ports"][0]["containerPort"] == 9000
    assert container["resources"] == {"requests": {"cpu": "500m"}}
    assert env(dep)["LOG_LEVEL"] == "debug"
    assert env(dep)["MODEL_DIGEST"] == DIGEST


def test_admission_records_the_revision_and_an_admitted_decision_with_its_evidence() -> None:
    md = model(evaluations=["holdout"])
    pol = policy(evaluations=[evaluation_requirement(min=0.9)])
    evaluation = make_evaluation(uid="uid-holdout")
    p = plan(story_observed(md, policies=[pol], evaluations=[evaluation]), NOW)

    assert p.status["servingRevision"] == {
        "version": VERSION,
        "uri": f"s3://models/{MODEL}/{VERSION}",
        "digest": DIGEST,
        "image": IMAGE,
        "revision": requested_revision_id(md, [pol]),
        "port": 8080,
        "env": [],
        "admittedAt": "2026-12-01T12:00:00Z",
    }
    d = decision(p, c.ACTION_ADMITTED)
    assert d.reason == c.ADMITTED_REASON
    assert d.revision == {"version": VERSION, "digest": DIGEST}
    assert d.evidence["model"] == {"name": MODEL, "version": VERSION, "digest": DIGEST}
    [counted] = d.evidence["approvals"]
    assert (counted["name"], counted["uid"], counted["approver"], counted["role"]) == (
        "approve-1.0.0",
        "uid-approve-1.0.0",
        "bob",
        "ethics-board",
    )
    assert d.evidence["evaluations"] == [
        {
            "name": "holdout",
            "uid": "uid-holdout",
            "digest": DIGEST,
            "revision": revision_of(md),
            "dataset": "fraud-holdout",
            "metrics": {"accuracy": 0.94},
        }
    ]
    assert d.evidence["policies"] == [{"name": "prod-governance", "uid": None}]
    assert d.evidence["failedGates"] == []
    assert p.status["history"][-1]["action"] == c.ACTION_ADMITTED


def test_admitted_revision_progresses_until_every_replica_is_ready_then_serves() -> None:
    story = Story.of(model())

    first = story.run(roll_out=False)
    assert first.status["phase"] == c.PHASE_PROGRESSING
    assert cond(first.status, c.READY) == (c.FALSE, c.ROLLOUT_IN_PROGRESS)
    assert first.deployment is not None  # created by this pass: none of its replicas is ready
    assert "0/1 replicas ready" in condition(first.status, c.READY)["message"]
    assert cond(first.status, c.ADMITTED) == (c.TRUE, c.ADMITTED_REASON)

    applied = story.run(roll_out=False)  # the Deployment exists, no replica is ready yet
    assert applied.deployment is None
    # Nothing new to say until the replicas are ready: no second status write for the rollout.
    assert applied.status == first.status

    story.deployment = rolled_out(story.deployment or {})
    ready = story.run()
    assert ready.status["phase"] == c.PHASE_SERVING
    assert cond(ready.status, c.READY) == (c.TRUE, c.SERVING_READY)
    assert actions(ready) == []


@pytest.mark.parametrize(
    ("deployment_status", "done", "summary"),
    [
        (None, False, "the serving Deployment does not exist yet"),
        ({}, False, "0/2 replicas ready"),
        (
            {
                "observedGeneration": 2,
                "readyReplicas": 2,
                "updatedReplicas": 2,
                "availableReplicas": 2,
            },
            True,
            "2/2 replicas ready",
        ),
        (  # the controller has not seen the latest spec yet: old pods are ready, not ours
            {
                "observedGeneration": 1,
                "readyReplicas": 2,
                "updatedReplicas": 2,
                "availableReplicas": 2,
            },
            False,
            "2/2 replicas ready",
        ),
        (
            {
                "observedGeneration": 2,
                "readyReplicas": 2,
                "updatedReplicas": 1,
                "availableReplicas": 2,
            },
            False,
            "2/2 replicas ready",
        ),
        (
            {
                "observedGeneration": 2,
                "readyReplicas": 1,
                "updatedReplicas": 2,
                "availableReplicas": 1,
            },
            False,
            "1/2 replicas ready",
        ),
        (
            {
                "observedGeneration": 2,
                "readyReplicas": None,
                "updatedReplicas": 2,
                "availableReplicas": 2,
            },
            False,
            "0/2 replicas ready",
        ),
    ],
)
def test_rollout_is_done_only_when_the_current_generation_is_fully_ready(
    deployment_status: dict[str, Any] | None, done: bool, summary: str
) -> None:
    dep = None
    if deployment_status is not None:
        dep = {
            "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": deployment_status,
        }
    assert rollout(dep) == (done, summary)


def test_model_without_monitoring_is_known_good_once_ready() -> None:
    story = Story.of(model())

    progressing = story.run(roll_out=False)
    assert "knownGood" not in progressing.status
    story.deployment = rolled_out(story.deployment or {})
    ready = story.run()

    assert ready.status["lastKnownGood"] == ready.status["servingRevision"]
    assert ready.status["knownGood"] == [ready.status["servingRevision"]]
    assert cond(ready.status, c.DRIFTED) == (c.FALSE, c.MONITORING_NOT_CONFIGURED)


# --- not admitted ----------------------------------------------------------------------------------


def test_no_policy_blocks_and_builds_no_serving_objects() -> None:
    p = plan(story_observed(model(), policies=[]), NOW)

    assert (p.deployment, p.service) == (None, None)
    assert p.status["phase"] == c.PHASE_BLOCKED
    assert cond(p.status, c.ADMITTED) == (c.FALSE, c.NO_POLICY)
    assert cond(p.status, c.READY) == (c.FALSE, c.NOT_ADMITTED)
    assert p.status["gates"][0]["reason"] == c.NO_POLICY
    assert "servingRevision" not in p.status
    d = decision(p, c.ACTION_BLOCKED)
    assert d.reason == c.NO_POLICY
    assert d.warning
    assert p.watch is None


def test_before_any_evidence_each_condition_names_only_what_it_is_about() -> None:
    # The first step of the example story: the spec references an approval and an evaluation that
    # do not exist yet, and the policy requires both kinds of evidence.
    md = model(evaluations=["holdout"])
    pol = policy(evaluations=[evaluation_requirement(min=0.9)])
    p = plan(observed(md, policies=[pol]), NOW)

    approved, evaluated = condition(p.status, c.APPROVED), condition(p.status, c.EVALUATED)
    assert (approved["status"], approved["reason"]) == (c.FALSE, c.APPROVAL_NOT_FOUND)
    assert (evaluated["status"], evaluated["reason"]) == (c.FALSE, c.EVALUATION_NOT_FOUND)
    assert "ModelApproval approve-1.0.0 not found" in approved["message"]
    assert "valuation" not in approved["message"]
    assert "ModelEvaluation holdout not found" in evaluated["message"]
    assert "pproval" not in evaluated["message"]
    for type_ in (c.READY, c.ADMITTED):
        message = condition(p.status, type_)["message"]
        assert "\n" not in message and message.count("not found") == 1, message


def test_operator_flag_admits_without_policy() -> None:
    p = plan(story_observed(model(), policies=[], allow_no_policy=True), NOW)

    assert p.deployment is not None
    assert cond(p.status, c.ADMITTED) == (c.TRUE, c.ADMITTED_REASON)


def test_blocked_decision_is_recorded_once_while_the_missing_evidence_stays_the_same() -> None:
    story = Story.of(model(), approvals=[])

    assert actions(story.run()) == [c.ACTION_BLOCKED]
    again = story.run()
    assert actions(again) == []
    assert again.status == story.plans[0].status


def test_requeue_at_is_when_a_counted_approval_expires() -> None:
    expires = NOW + timedelta(hours=6)
    p = plan(story_observed(model(), approvals=[approval(expires_at=expires)]), NOW)

    assert p.requeue_at == expires
    assert plan(story_observed(model()), NOW).requeue_at is None


@pytest.mark.parametrize(
    ("seal_valid", "admitted"),
    [
        ({("ModelApproval", "approve-1.0.0"): True}, True),
        ({("ModelApproval", "approve-1.0.0"): False}, False),
        ({}, False),
        (None, True),
    ],
    ids=["sealed", "seal broken", "seal unknown", "sealing not enforced"],
)
def test_only_sealed_approvals_count_when_sealing_is_enforced(
    seal_valid: dict[tuple[str, str], bool] | None, admitted: bool
) -> None:
    p = plan(story_observed(model(), seal_valid=seal_valid), NOW)

    assert (p.deployment is not None) == admitted
    assert (cond(p.status, c.ADMITTED)[0] == c.TRUE) == admitted


def test_blocked_new_revision_leaves_the_serving_one_untouched() -> None:
    story = Story.of(model(), approvals=[approval()])
    story.serve_v1()
    v1_status = story.status["servingRevision"]
    story.change(model(V2, OTHER_DIGEST, approvals=[]))  # v2 asked for without any approval

    p = story.run()

    assert (p.deployment, p.service) == (None, None)
    assert p.status["servingRevision"] == v1_status
    assert p.status["phase"] == c.PHASE_BLOCKED
    ready = condition(p.status, c.READY)
    assert (ready["status"], ready["reason"]) == (c.FALSE, c.NOT_ADMITTED)
    assert f"{MODEL} 1.0.0" in ready["message"]
    assert "keeps serving" in ready["message"]
    assert cond(p.status, c.ADMITTED) == (c.FALSE, c.APPROVAL_MISSING)
    assert decision(p, c.ACTION_BLOCKED).revision == {"version": V2, "digest": OTHER_DIGEST}
    assert p.status["observedGeneration"] == 2


def test_blocked_new_revision_keeps_the_old_one_monitored() -> None:
    story = Story.of(model(monitoring=monitoring()), approvals=[approval()])
    story.serve_v1()
    story.change(model(V2, OTHER_DIGEST, approvals=[], monitoring=monitoring()))

    p = story.run()

    assert p.watch is not None
    assert (p.watch.version, p.watch.digest) == (VERSION, DIGEST)


@pytest.mark.parametrize(
    "revoke",
    [
        pytest.param({"remove": ["approve-1.0.0"]}, id="approval deleted"),
        pytest.param(
            {"add": [approval(decision="rejected", name="approve-1.0.0")]},
            id="approval replaced by a rejection",
        ),
        pytest.param(
            {"add": [approval(expires_at=NOW + timedelta(seconds=45))]},
            id="approval expired",
        ),
    ],
)
def test_revoked_evidence_with_suspend_scales_the_serving_revision_to_zero(revoke: dict[str, Any]) -> None:
    story = Story.of(model())
    story.serve_v1()
    story.change(**revoke)

    p = story.run()

    assert p.deployment is not None
    assert p.deployment["spec"]["replicas"] == 0
    assert env(p.deployment)["MODEL_DIGEST"] == DIGEST
    d = decision(p, c.ACTION_SUSPENDED)
    assert d.warning
    assert p.status["phase"] == c.PHASE_BLOCKED
    assert cond(p.status, c.READY) == (c.FALSE, c.APPROVAL_REVOKED)
    assert "suspended" in condition(p.status, c.READY)["message"]
    assert p.status["servingRevision"]["digest"] == DIGEST
    assert p.watch is None


def test_revoked_evidence_with_keep_keeps_serving_degraded() -> None:
    story = Story.of(model(), policies=[policy(on_revocation="keep")])
    story.serve_v1()
    story.change(remove=["approve-1.0.0"])

    p = story.run()

    assert p.deployment is None
    assert p.status["phase"] == c.PHASE_DEGRADED
    assert cond(p.status, c.READY) == (c.TRUE, c.APPROVAL_REVOKED)
    assert cond(p.status, c.APPROVED)[0] == c.FALSE
    assert actions(p) == [c.ACTION_BLOCKED]


def test_one_suspending_policy_among_keeping_ones_suspends() -> None:
    keep = policy(on_revocation="keep")
    suspend = policy(on_revocation="suspend").model_copy(update={"metadata": {"name": "strict"}})
    story = Story.of(model(), policies=[keep, suspend])
    story.serve_v1()
    story.change(remove=["approve-1.0.0"])

    p = story.run()

    assert p.deployment is not None
    assert p.deployment["spec"]["replicas"] == 0


def test_restored_evidence_re_admits_a_suspended_revision_at_spec_replicas() -> None:
    story = Story.of(model())
    story.serve_v1()
    story.change(remove=["approve-1.0.0"])
    story.run()
    story.change(add=[approval(name="approve-1.0.0", created_at=NOW)])

    p = story.run()

    assert p.deployment is not None
    assert p.deployment["spec"]["replicas"] == 1
    d = decision(p, c.ACTION_ADMITTED)
    assert "again" in d.message
    assert cond(p.status, c.ADMITTED) == (c.TRUE, c.ADMITTED_REASON)


# --- owned objects ---------------------------------------------------------------------------------


def _serving_story() -> Story:
    story = Story.of(model())
    story.serve_v1()
    return story


TAMPERING = [
    ("deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="evil:latest")),
    ("deployment", lambda d: d["spec"].update(replicas=5)),
    (
        "deployment",
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "MODEL_URI", "value": "s3://elsewhere"}
        ),
    ),
    ("deployment", lambda d: d["metadata"]["labels"].update({serving.LABEL_VERSION: "9.9.9"})),
    ("service", lambda s: s["spec"].update(selector={"app": "other"})),
    ("service", lambda s: s["spec"]["ports"][0].update(port=80)),
    ("service", lambda s: s["spec"].update(type="NodePort")),
    (
        "deployment",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(command=["sh", "-c", "x"]),
    ),
    ("deployment", lambda d: d["spec"]["template"]["spec"].update(serviceAccountName="powerful")),
    ("deployment", lambda d: d["spec"].update(paused=True)),
]
"""Edits someone might make with kubectl to an owned object (our applied-hash annotation kept)."""


@pytest.mark.parametrize(("kind", "edit"), TAMPERING)
def test_edit_to_an_owned_object_is_reverted_as_tampering(kind: str, edit: Any) -> None:
    story = _serving_story()
    desired = copy.deepcopy(getattr(story, kind))
    edit(getattr(story, kind))  # kubectl edit: our applied-hash annotation stays as it was

    p = story.run()

    reverted = getattr(p, kind)
    assert reverted is not None
    assert serving.normalised(reverted) == serving.normalised(desired)
    d = decision(p, "TamperReverted")
    assert d.warning
    assert d.evidence["object"] == {"kind": kind.title(), "name": MODEL}
    assert d.evidence["fields"] and all(f in d.message for f in d.evidence["fields"])
    other = "service" if kind == "deployment" else "deployment"
    assert getattr(p, other) is None


def test_tampered_deployment_is_not_ready_until_reverted() -> None:
    story = _serving_story()
    assert story.deployment is not None
    story.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"

    p = story.run()

    assert p.status["phase"] == c.PHASE_PROGRESSING
    assert cond(p.status, c.READY) == (c.FALSE, c.ROLLOUT_IN_PROGRESS)


def test_edit_that_also_rewrites_the_hash_is_reverted_without_a_tamper_decision() -> None:
    story = _serving_story()
    assert story.deployment is not None
    story.deployment["spec"]["replicas"] = 5
    story.deployment["metadata"]["annotations"][APPLIED_HASH] = "0000000000000000"

    p = story.run()

    assert p.deployment is not None
    assert p.deployment["spec"]["replicas"] == 1
    assert "TamperReverted" not in actions(p)


def test_our_own_change_of_the_wanted_objects_is_not_tampering() -> None:
    story = _serving_story()
    story.change(model(serving={"replicas": 4}))

    p = story.run()

    assert p.deployment is not None
    assert p.deployment["spec"]["replicas"] == 4
    assert actions(p) == []


@pytest.mark.parametrize(("kind", "edit"), [(None, None), *TAMPERING])
def test_owned_objects_reduced_to_their_essentials_plan_the_same(kind: str | None, edit: Any) -> None:
    story = _serving_story()
    if kind is not None:
        edit(getattr(story, kind))
    assert story.deployment is not None
    assert story.service is not None
    template = story_observed(model(), status=story.status)
    full = step(template, story.status, story.deployment, story.service, None, NOW)

    reduced = step(
        template,
        story.status,
        serving.essentials(story.deployment),
        serving.essentials(story.service),
        None,
        NOW,
    )

    assert reduced == full


def test_essentials_keep_what_a_write_carries_over() -> None:
    story = _serving_story()
    assert story.service is not None
    assert story.deployment is not None

    svc, dep = serving.essentials(story.service), serving.essentials(story.deployment)

    assert svc["metadata"]["resourceVersion"] == story.service["metadata"]["resourceVersion"]
    assert dep["metadata"]["resourceVersion"] == story.deployment["metadata"]["resourceVersion"]
    assert svc["spec"]["clusterIP"] == story.service["spec"]["clusterIP"]
    assert "managedFields" not in dep["metadata"]
    assert rollout(dep) == rollout(story.deployment)


def test_essentials_without_version_tell_a_real_change_from_a_mere_new_version() -> None:
    story = _serving_story()
    assert story.deployment is not None
    before = serving.essentials(story.deployment)
    rewritten = copy.deepcopy(story.deployment)
    rewritten["metadata"]["resourceVersion"] = "999"
    rewritten["status"]["conditions"] = [{"type": "Progressing", "status": "True"}]
    scaled = copy.deepcopy(rewritten)
    scaled["status"]["readyReplicas"] = 0

    assert serving.without_version(serving.essentials(rewritten)) == serving.without_version(before)
    assert serving.without_version(serving.essentials(scaled)) != serving.without_version(before)
    assert serving.essentials(rewritten)["metadata"]["resourceVersion"] == "999"


def test_server_defaults_on_owned_objects_do_not_count_as_a_difference() -> None:
    first = plan(story_observed(model()), NOW)
    assert first.deployment is not None
    assert first.service is not None
    obs = story_observed(
        model(),
        status=first.status,
        owned_deployment=rolled_out(first.deployment),
        owned_service=stored(first.service),
    )

    p = plan(obs, NOW + timedelta(seconds=30))

    assert (p.deployment, p.service) == (None, None)
    assert "TamperReverted" not in actions(p)


@pytest.mark.parametrize(
    ("a", "b"),
    [("500m", "0.5"), ("1Gi", "1073741824"), ("1k", "1000"), ("100Mi", "104857600")],
)
def test_equal_resource_quantities_in_other_notation_are_no_difference(a: str, b: str) -> None:
    md = model(serving={"resources": {"limits": {"memory": a}}})
    first = plan(story_observed(md), NOW)
    assert first.deployment is not None
    have = rolled_out(first.deployment)
    have["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": b}}

    p = plan(story_observed(md, status=first.status, owned_deployment=have), NOW)

    assert p.deployment is None


# --- monitoring target -----------------------------------------------------------------------------


def test_watch_carries_interval_version_digest_and_checks_of_the_serving_revision() -> None:
    md = model(monitoring=monitoring(metric("psi"), metric("latency", max=0.5), interval="45s"))

    p = plan(story_observed(md), NOW)

    assert p.watch is not None
    assert (p.watch.namespace, p.watch.deployment, p.watch.model) == (NAMESPACE, MODEL, MODEL)
    assert (p.watch.version, p.watch.digest) == (VERSION, DIGEST)
    assert p.watch.interval == timedelta(seconds=45)
    assert [ch.name for ch in p.watch.checks] == ["psi", "latency"]


@pytest.mark.parametrize(
    ("md", "kwargs"),
    [
        pytest.param(model(), {}, id="no metrics configured"),
        pytest.param(model(monitoring=monitoring()), {"policies": []}, id="not admitted, nothing serves"),
        pytest.param(
            model(monitoring=monitoring(), serving={"replicas": 0}), {}, id="admitted at zero replicas"
        ),
    ],
)
def test_nothing_is_watched_without_checks_or_serving_pods(md: Any, kwargs: dict[str, Any]) -> None:
    assert plan(story_observed(md, **kwargs), NOW).watch is None


def test_suspended_revision_is_not_watched() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.serve_v1()
    story.change(remove=["approve-1.0.0"])

    assert story.run().watch is None


def test_policy_required_metrics_are_added_to_the_watch() -> None:
    required = metric("error-rate", max=0.02, template="error-rate")
    md = model()  # no monitoring of its own

    p = plan(story_observed(md, policies=[policy(monitoring=[required])]), NOW)

    assert p.watch is not None
    assert [ch.name for ch in p.watch.checks] == ["error-rate"]
    assert p.watch.checks[0].template_ref is not None
    assert p.watch.interval == timedelta(minutes=1)
    assert cond(p.status, c.DRIFTED) == (c.FALSE, "AwaitingFirstCheck")


# --- steady state ----------------------------------------------------------------------------------


def _steady(story: Story, *reads: float) -> None:
    """Two more reconciles (or one per reading) change nothing and decide nothing."""
    before = copy.deepcopy(story.status)
    for p in [story.read(v) for v in reads] or [story.run(), story.run()]:
        assert actions(p) == []
        assert p.status == before
        assert (p.deployment, p.service, p.label_pods) == (None, None, None)


def test_serving_model_without_monitoring_is_a_steady_state() -> None:
    story = _serving_story()
    _steady(story)


def test_serving_model_with_passing_readings_is_a_steady_state() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.serve_v1()
    _steady(story, 0.11, 0.09, 0.2, 0.25)


def test_blocked_model_is_a_steady_state() -> None:
    story = Story.of(model(), approvals=[])
    story.run()
    _steady(story)


def test_suspended_model_is_a_steady_state() -> None:
    story = _serving_story()
    story.change(remove=["approve-1.0.0"])
    story.run()
    _steady(story)


def test_blocked_v2_while_v1_serves_is_a_steady_state() -> None:
    story = Story.of(model(monitoring=monitoring()), approvals=[approval()])
    story.serve_v1()
    story.change(model(V2, OTHER_DIGEST, approvals=[], monitoring=monitoring()))
    story.run()
    _steady(story, PASSING, 0.12)


def test_model_blocked_by_a_future_dated_evaluation_is_a_steady_state() -> None:
    md = model(evaluations=["holdout"])
    pol = policy(evaluations=[evaluation_requirement(min=0.9)])
    future = make_evaluation(evaluated_at=NOW + timedelta(days=2))
    story = Story.of(md, policies=[pol], evaluations=[future])
    story.run()
    _steady(story)


def test_replanning_from_the_same_snapshot_gives_the_same_plan() -> None:
    story = _serving_story()
    a = step(story.template, story.status, story.deployment, story.service, None, story.now)
    b = step(story.template, story.status, story.deployment, story.service, None, story.now)
    assert a == b


def test_conditions_keep_their_transition_time_until_their_status_flips() -> None:
    story = Story.of(model())
    story.run(roll_out=False)
    admitted_at = condition(story.status, c.ADMITTED)["lastTransitionTime"]
    not_ready_at = condition(story.status, c.READY)["lastTransitionTime"]
    story.run(roll_out=False)
    assert condition(story.status, c.READY)["lastTransitionTime"] == not_ready_at
    story.deployment = rolled_out(story.deployment or {})

    story.run()

    assert condition(story.status, c.ADMITTED)["lastTransitionTime"] == admitted_at
    assert condition(story.status, c.READY)["lastTransitionTime"] == "2026-12-01T12:01:30Z"


def test_history_keeps_the_newest_entries_only() -> None:
    story = Story.of(model())
    story.status = {
        "history": [
            {
                "time": "2026-11-01T00:00:00Z",
                "action": "Blocked",
                "reason": "ApprovalMissing",
                "message": str(i),
            }
            for i in range(c.HISTORY_LIMIT)
        ]
    }

    p = story.run()

    assert len(p.status["history"]) == c.HISTORY_LIMIT
    assert p.status["history"][0]["message"] == "1"
    assert p.status["history"][-1]["action"] == c.ACTION_ADMITTED
    assert p.status["historyDropped"] == 1  # each dropped entry stays in the audit log

    story.status = {**p.status}
    story.change(model(serving={"replicas": 2}))
    again = story.run()
    assert again.status["historyDropped"] == 1 + len(again.decisions)


def test_spec_change_is_acknowledged_in_observed_generation() -> None:
    story = _serving_story()
    story.change(model(serving={"replicas": 2}))

    p = story.run()

    assert p.status["observedGeneration"] == 2
    assert {x["observedGeneration"] for x in p.status["conditions"]} == {2}


def test_observed_snapshot_without_owned_objects_recreates_them() -> None:
    story = _serving_story()
    p = plan(
        observed(
            story.template.deployment,
            policies=story.template.policies,
            approvals=[approval()],
            status=story.status,
        ),
        story.now,
    )

    assert p.deployment is not None
    assert p.service is not None
    assert actions(p) == []
    assert p.status["phase"] == c.PHASE_PROGRESSING
