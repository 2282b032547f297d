"""The plan over monitoring rounds: known-good revisions, drift with each onDrift action, the renewal
gate after an intervention, inconclusive readings, and readings that do not concern the revision
that serves.
"""

from __future__ import annotations

import copy
import math
from datetime import timedelta
from typing import Any

import pytest

from modelgate.api import conditions as c
from modelgate.decide import serving
from modelgate.decide.drift import Sample
from modelgate.decide.plan import plan
from tests.unit.factories import (
    DIGEST,
    FAILING,
    IMAGE,
    NO_DATA,
    NOW,
    OTHER_DIGEST,
    PASSING,
    THIRD_DIGEST,
    UNREACHABLE,
    V2,
    V3,
    VERSION,
    Story,
    Value,
    actions,
    approval,
    cond,
    condition,
    decision,
    env,
    metric,
    model,
    monitoring,
    policy,
    readings,
    revision_of,
    rfc3339,
    rolled_out,
    story_observed,
)

INTERVENTIONS = (c.ACTION_ROLLED_BACK, c.ACTION_QUARANTINED)
OTHER_IMAGE = "registry.example/srv@sha256:" + "7f" * 32


def served_v2(on_drift: str = "rollback", *metrics: dict[str, Any]) -> Story:
    """v1 then v2 admitted, rolled out and passing: both known good, v2 serves."""
    story = Story.of(model(monitoring=monitoring(*metrics, on_drift=on_drift)))
    story.serve_v1()
    story.serve_v2()
    assert story.serving_digest == OTHER_DIGEST
    return story


def served_v1(on_drift: str = "rollback", *metrics: dict[str, Any]) -> Story:
    story = Story.of(model(monitoring=monitoring(*metrics, on_drift=on_drift)))
    story.serve_v1()
    return story


def digests(status: dict[str, Any], key: str) -> list[str]:
    return [str(r["digest"]) for r in status.get(key) or []]


# --- known good ------------------------------------------------------------------------------------


def test_revision_is_not_known_good_before_any_reading() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.run()
    p = story.run()

    assert p.status["phase"] == c.PHASE_SERVING
    assert "knownGood" not in p.status
    assert "lastKnownGood" not in p.status
    assert cond(p.status, c.DRIFTED) == (c.FALSE, "AwaitingFirstCheck")


def test_revision_becomes_known_good_after_a_passing_reading_of_every_metric() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.run()
    story.run()

    p = story.read(PASSING)

    assert digests(p.status, "knownGood") == [DIGEST]
    assert p.status["lastKnownGood"] == p.status["servingRevision"]
    assert decision(p, "CheckPassed").evidence["checks"][0]["value"] == PASSING


@pytest.mark.parametrize(
    "first_round",
    [
        pytest.param({"psi": FAILING}, id="failing reading"),
        pytest.param({"psi": NO_DATA}, id="inconclusive reading"),
        pytest.param({"psi": PASSING}, id="one of two metrics read"),
        pytest.param({"psi": PASSING, "latency": 0.9}, id="one of two metrics failing"),
    ],
)
def test_revision_is_not_known_good_without_every_metric_passing(first_round: dict[str, Value]) -> None:
    story = Story.of(model(monitoring=monitoring(metric("psi"), metric("latency", max=0.5))))
    story.run()
    story.run()

    p = story.read(samples=first_round)

    assert "knownGood" not in p.status


def test_revision_still_progressing_is_not_known_good_even_when_passing() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.run(roll_out=False)

    p = story.read(PASSING)

    assert p.status["phase"] == c.PHASE_PROGRESSING
    assert "knownGood" not in p.status


def test_revision_that_passed_while_rolling_out_becomes_known_good_once_ready() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.run(roll_out=False)
    story.read(PASSING)
    assert story.deployment is not None
    story.deployment = rolled_out(story.deployment)

    p = story.run()

    assert digests(p.status, "knownGood") == [DIGEST]


def test_known_good_lists_each_revision_once_oldest_first() -> None:
    story = served_v2()
    story.read(0.12)

    assert digests(story.status, "knownGood") == [DIGEST, OTHER_DIGEST]
    assert story.status["lastKnownGood"]["digest"] == OTHER_DIGEST


def test_new_revision_starts_with_fresh_metric_counters() -> None:
    story = served_v1()
    story.read(FAILING)
    story.read(FAILING)
    story.change(model(V2, OTHER_DIGEST, monitoring=monitoring()))

    p = story.run()

    assert "metrics" not in p.status
    assert cond(p.status, c.DRIFTED) == (c.FALSE, "AwaitingFirstCheck")


# --- drift with onDrift: rollback ------------------------------------------------------------------


def test_failures_below_the_limit_only_record_a_failed_check() -> None:
    story = served_v2()

    first = story.read(FAILING)
    second = story.read(FAILING)

    assert actions(first) == ["CheckFailed"]
    assert actions(second) == []
    for p in (first, second):
        assert (p.deployment, p.service, p.label_pods) == (None, None, None)
        assert p.status["servingRevision"]["digest"] == OTHER_DIGEST
        assert p.status["phase"] == c.PHASE_DEGRADED
        assert cond(p.status, c.DRIFTED) == (c.FALSE, "FailingBelowLimit")
        assert cond(p.status, c.READY) == (c.TRUE, c.SERVING_READY)
    assert second.status["metrics"][0]["consecutiveFailures"] == 2
    failed = decision(first, "CheckFailed")
    assert failed.warning
    assert failed.reason == c.METRIC_ABOVE_MAXIMUM
    assert failed.evidence["query"] == "psi{...}"


def test_drift_at_the_failure_limit_rolls_back_to_the_last_known_good_revision() -> None:
    story = served_v2()
    story.read(FAILING)
    story.read(FAILING)

    p = story.read(0.31)

    when = rfc3339(story.now)
    d = decision(p, c.ACTION_ROLLED_BACK)
    assert d.reason == c.DRIFT_DETECTED
    assert d.warning
    assert d.revision == {"version": VERSION, "digest": DIGEST}
    assert d.evidence["revision"] == {"version": V2, "digest": OTHER_DIGEST}
    assert d.evidence["to"] == {"version": VERSION, "digest": DIGEST}
    [check] = d.evidence["checks"]
    assert (check["metric"], check["value"], check["max"], check["consecutiveFailures"]) == (
        "psi",
        0.31,
        0.25,
        3,
    )
    assert "Rolled back" in d.message
    assert p.deployment is not None
    assert env(p.deployment)["MODEL_DIGEST"] == DIGEST
    assert env(p.deployment)["MODEL_VERSION"] == VERSION
    assert p.deployment["metadata"]["labels"][serving.LABEL_VERSION] == VERSION
    assert p.status["servingRevision"]["digest"] == DIGEST
    assert p.status["rejectedDigests"] == [{"digest": OTHER_DIGEST, "reason": c.DRIFT_DETECTED, "time": when}]
    assert p.status["phase"] == c.PHASE_ROLLED_BACK
    assert cond(p.status, c.DRIFTED) == (c.TRUE, c.ROLLED_BACK)
    assert cond(p.status, c.READY) == (c.FALSE, c.ROLLED_BACK)
    assert p.status["history"][-1]["action"] == c.ACTION_ROLLED_BACK
    # Already in the rollback's own status write, Admitted says why v2 no longer counts.
    admitted = next(x for x in p.status["conditions"] if x["type"] == c.ADMITTED)
    assert admitted["reason"] == c.APPROVAL_PREDATES_QUARANTINE
    assert f"was withdrawn by a rollback at {when}" in admitted["message"], admitted


def test_revision_rolled_back_for_drift_is_no_longer_known_good() -> None:
    story = served_v2()
    for _ in range(3):
        p = story.read(FAILING)

    assert p.status["lastKnownGood"]["digest"] == DIGEST
    assert digests(p.status, "knownGood") == [DIGEST]
    assert digests(p.status, "rejectedDigests") == [OTHER_DIGEST]
    steady = story.read(PASSING)  # v1 serves and passes: v2 does not come back as known good
    assert steady.status["lastKnownGood"]["digest"] == DIGEST
    assert digests(steady.status, "knownGood") == [DIGEST]
    assert digests(steady.status, "rejectedDigests") == [OTHER_DIGEST]


def test_quarantined_revision_is_no_longer_known_good() -> None:
    story = served_v1(on_drift="quarantine")
    for _ in range(3):
        p = story.read(FAILING)

    assert "lastKnownGood" not in p.status
    assert "knownGood" not in p.status
    assert digests(p.status, "rejectedDigests") == [DIGEST]


def test_renewed_revision_is_known_good_again_once_it_passes_its_checks() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    renewed = approval(
        V2, OTHER_DIGEST, name="approve-2.0.0-again", created_at=story.now + timedelta(seconds=5)
    )
    story.change(
        model(V2, OTHER_DIGEST, approvals=["approve-2.0.0", renewed.name], monitoring=monitoring()),
        add=[renewed],
    )
    story.run()
    story.run()

    p = story.read(PASSING)

    assert digests(p.status, "knownGood") == [DIGEST, OTHER_DIGEST]
    assert p.status["lastKnownGood"]["digest"] == OTHER_DIGEST


def test_rollback_serves_the_known_good_image_even_if_the_spec_image_changed() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.serve_v1()
    v2 = model(V2, OTHER_DIGEST, monitoring=monitoring(), serving={"image": OTHER_IMAGE})
    story.change(v2, add=[approval(V2, OTHER_DIGEST, revision=revision_of(v2))])
    story.run()
    story.run()
    for _ in range(3):
        p = story.read(FAILING)

    assert p.deployment is not None
    container = p.deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE


def test_after_a_rollback_the_old_approval_does_not_bring_the_drifted_revision_back() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)

    p = story.run()  # same spec (v2), same approval

    assert p.deployment is None
    assert p.status["servingRevision"]["digest"] == DIGEST
    assert p.status["phase"] == c.PHASE_ROLLED_BACK
    renewal = [g for g in p.status["gates"] if g["requirement"] == "new approval after rollback"]
    assert renewal == [
        {
            "requirement": "new approval after rollback",
            "satisfied": False,
            "reason": c.APPROVAL_PREDATES_QUARANTINE,
            "message": renewal[0]["message"],
        }
    ]
    assert "created after" in renewal[0]["message"]
    assert cond(p.status, c.ADMITTED)[0] == c.FALSE
    assert cond(p.status, c.APPROVED) == (c.FALSE, c.APPROVAL_PREDATES_QUARANTINE)
    assert actions(p) == [c.ACTION_BLOCKED]  # v2 is now refused, v1 keeps serving
    assert decision(p, c.ACTION_BLOCKED).reason == c.APPROVAL_PREDATES_QUARANTINE
    later = story.run()
    assert actions(later) == []
    assert later.status == p.status


def test_readings_of_the_rolled_back_revision_are_ignored() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    story.run()
    before = copy.deepcopy(story.status)

    p = story.read(FAILING, digest=OTHER_DIGEST)  # a round taken before the rollback arrives late

    assert p.verdicts == ()
    assert actions(p) == []
    assert p.status == before


def test_new_approval_after_the_rollback_re_admits_the_drifted_revision() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    story.run()
    renewed = approval(
        V2, OTHER_DIGEST, name="approve-2.0.0-again", created_at=story.now + timedelta(seconds=5)
    )
    story.change(
        model(V2, OTHER_DIGEST, approvals=["approve-2.0.0", renewed.name], monitoring=monitoring()),
        add=[renewed],
    )

    p = story.run()

    assert actions(p) == [c.ACTION_RELEASED, c.ACTION_ADMITTED]
    released = decision(p, c.ACTION_RELEASED)
    assert "rollback" in released.message
    assert released.revision == {"version": V2, "digest": OTHER_DIGEST}
    assert p.deployment is not None
    assert env(p.deployment)["MODEL_DIGEST"] == OTHER_DIGEST
    assert p.status["servingRevision"]["digest"] == OTHER_DIGEST
    assert "rejectedDigests" not in p.status
    assert "metrics" not in p.status  # the re-admitted revision is judged afresh
    assert cond(p.status, c.ADMITTED) == (c.TRUE, c.ADMITTED_REASON)
    assert [g["satisfied"] for g in p.status["gates"]] == [True, True]
    assert p.watch is not None
    assert p.watch.digest == OTHER_DIGEST


def test_recreated_approval_after_the_rollback_re_admits_without_a_spec_change() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    story.run()
    story.change(add=[approval(V2, OTHER_DIGEST, created_at=story.now + timedelta(seconds=5))])

    p = story.run()

    assert c.ACTION_RELEASED in actions(p)
    assert p.status["servingRevision"]["digest"] == OTHER_DIGEST


def test_approval_created_before_the_rollback_does_not_re_admit() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    rollback_time = story.now
    early = approval(V2, OTHER_DIGEST, name="early", created_at=rollback_time - timedelta(seconds=1))
    story.change(
        model(V2, OTHER_DIGEST, approvals=["approve-2.0.0", "early"], monitoring=monitoring()), add=[early]
    )

    p = story.run()

    assert p.status["servingRevision"]["digest"] == DIGEST
    assert c.ACTION_RELEASED not in actions(p)


def test_gates_agree_on_an_approval_created_in_the_second_of_the_rollback() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    same_second = approval(V2, OTHER_DIGEST, name="same-second", created_at=story.now)
    story.change(
        model(V2, OTHER_DIGEST, approvals=["approve-2.0.0", "same-second"], monitoring=monitoring()),
        add=[same_second],
    )

    p = story.run()

    assert len({g["satisfied"] for g in p.status["gates"]}) == 1


def test_new_digest_after_a_rollback_is_admitted_without_renewal() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    story.change(model(V3, THIRD_DIGEST, monitoring=monitoring()), add=[approval(V3, THIRD_DIGEST)])

    p = story.run()

    assert actions(p) == [c.ACTION_ADMITTED]
    assert p.status["servingRevision"]["digest"] == THIRD_DIGEST
    assert digests(p.status, "rejectedDigests") == [OTHER_DIGEST]
    assert p.status["phase"] == c.PHASE_PROGRESSING


def test_plan_that_rolls_back_watches_the_revision_it_rolled_back_to() -> None:
    story = served_v2()
    story.read(FAILING)
    story.read(FAILING)

    p = story.read(FAILING)

    assert c.ACTION_ROLLED_BACK in actions(p)
    assert p.watch is not None
    assert p.watch.digest == p.status["servingRevision"]["digest"] == DIGEST


def test_next_plan_after_a_rollback_watches_the_known_good_revision() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)

    p = story.run()

    assert p.watch is not None
    assert (p.watch.version, p.watch.digest) == (VERSION, DIGEST)


def test_rolled_back_revision_is_monitored_and_quarantined_when_it_drifts_too() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    story.run()
    story.read(FAILING)
    story.read(FAILING)

    p = story.read(FAILING)  # v1 drifts too; v2 is rejected: nothing good is left

    d = decision(p, c.ACTION_QUARANTINED)
    assert d.revision == {"version": VERSION, "digest": DIGEST}
    assert "no last known good" in d.message
    assert sorted(digests(p.status, "rejectedDigests")) == sorted([DIGEST, OTHER_DIGEST])
    assert p.status["phase"] == c.PHASE_QUARANTINED
    assert p.label_pods is True


def test_rollback_without_another_known_good_revision_quarantines_instead() -> None:
    story = served_v1()  # v1 is the only known good revision

    for _ in range(3):
        p = story.read(FAILING)

    assert c.ACTION_ROLLED_BACK not in actions(p)
    d = decision(p, c.ACTION_QUARANTINED)
    assert "no last known good revision to roll back to" in d.message
    assert d.reason == c.DRIFT_DETECTED
    assert p.status["phase"] == c.PHASE_QUARANTINED
    assert p.label_pods is True
    assert p.deployment is None
    assert p.service is not None
    assert p.service["spec"]["selector"][serving.LABEL_QUARANTINED] == "false"


def test_rollback_goes_to_the_newest_known_good_revision_not_yet_withdrawn() -> None:
    story = served_v2()
    story.change(model(V3, THIRD_DIGEST, monitoring=monitoring()), add=[approval(V3, THIRD_DIGEST)])
    story.run()
    story.run()
    story.read(PASSING)
    assert digests(story.status, "knownGood") == [DIGEST, OTHER_DIGEST, THIRD_DIGEST]

    for _ in range(3):
        first = story.read(FAILING)
    story.run()
    for _ in range(3):
        second = story.read(FAILING)

    assert decision(first, c.ACTION_ROLLED_BACK).evidence["to"]["digest"] == OTHER_DIGEST
    assert decision(second, c.ACTION_ROLLED_BACK).evidence["to"]["digest"] == DIGEST
    assert story.serving_digest == DIGEST
    assert sorted(digests(story.status, "rejectedDigests")) == sorted([OTHER_DIGEST, THIRD_DIGEST])
    assert story.status["phase"] == c.PHASE_ROLLED_BACK


def test_serving_revision_drifting_while_a_newer_one_is_blocked_is_rolled_back() -> None:
    story = served_v2()
    story.change(model(V3, THIRD_DIGEST, approvals=[], monitoring=monitoring()))  # v3: no approval
    story.run()

    for _ in range(3):
        p = story.read(FAILING)  # v2, still serving, drifts

    d = decision(p, c.ACTION_ROLLED_BACK)
    assert d.evidence["revision"]["digest"] == OTHER_DIGEST
    assert story.serving_digest == DIGEST
    assert digests(p.status, "rejectedDigests") == [OTHER_DIGEST]
    assert cond(p.status, c.ADMITTED)[0] == c.FALSE  # v3 is still waiting for its approval
    assert p.status["phase"] == c.PHASE_ROLLED_BACK
    drifted = condition(p.status, c.DRIFTED)
    assert (drifted["status"], drifted["reason"]) == (c.TRUE, c.ROLLED_BACK)
    assert "serves instead while" in drifted["message"]
    later = story.run()  # and it stays so, without new decisions
    assert later.status["phase"] == c.PHASE_ROLLED_BACK and actions(later) == []


def test_known_good_list_keeps_the_newest_ten() -> None:
    story = Story.of(model(monitoring=monitoring()))
    old = [
        {
            "version": f"0.{i}.0",
            "uri": f"s3://models/old/{i}",
            "digest": "sha256:" + f"{i:x}" * 64,
            "image": "registry.example/sklearn-server:1.0",
            "admittedAt": "2026-01-01T00:00:00Z",
        }
        for i in range(10)
    ]
    story.status = {"knownGood": old, "lastKnownGood": old[-1]}

    p = story.serve_v1()

    assert len(p.status["knownGood"]) == 10
    assert p.status["knownGood"][0] == old[1]
    assert p.status["lastKnownGood"]["digest"] == DIGEST


def test_drifting_revision_is_never_its_own_rollback_target() -> None:
    # v2 is known good and newest; when it drifts, the rollback target is v1, not v2 itself
    story = served_v2()
    for _ in range(3):
        p = story.read(FAILING)

    assert decision(p, c.ACTION_ROLLED_BACK).evidence["to"]["digest"] == DIGEST


def test_only_the_metric_at_its_limit_is_named_as_evidence() -> None:
    story = served_v2("rollback", metric("psi"), metric("latency", max=0.5, failure_limit=5))
    for _ in range(3):
        p = story.read(psi=FAILING, latency=0.9)

    d = decision(p, c.ACTION_ROLLED_BACK)
    assert [ch["metric"] for ch in d.evidence["checks"]] == ["psi"]


def test_a_pass_between_failures_resets_the_count() -> None:
    story = served_v2()
    for v in (FAILING, FAILING, PASSING, FAILING, FAILING):
        p = story.read(v)
        assert not set(actions(p)) & set(INTERVENTIONS)

    assert story.status["metrics"][0]["consecutiveFailures"] == 2
    assert story.serving_digest == OTHER_DIGEST


def test_rollback_is_decided_again_after_an_operator_restart_from_stored_counters() -> None:
    # a restarted operator has only status: two failures stored, one more reading reaches the limit
    story = served_v2()
    story.read(FAILING)
    story.read(FAILING)
    restarted = Story(story.template, now=story.now, status=copy.deepcopy(story.status))
    restarted.deployment, restarted.service = story.deployment, story.service

    p = restarted.read(FAILING)

    assert c.ACTION_ROLLED_BACK in actions(p)


# --- onDrift: quarantine ---------------------------------------------------------------------------


def quarantined_v1() -> Story:
    story = served_v1("quarantine")
    for _ in range(3):
        story.read(FAILING)
    return story


def test_quarantine_cuts_the_service_off_and_keeps_the_pods() -> None:
    story = served_v1("quarantine")
    story.read(FAILING)
    story.read(FAILING)

    p = story.read(FAILING)

    when = rfc3339(story.now)
    d = decision(p, c.ACTION_QUARANTINED)
    assert d.revision == {"version": VERSION, "digest": DIGEST}
    assert "no last known good" not in d.message
    assert "pods kept" in d.message
    assert p.deployment is None  # the Deployment and its pods stay as they are
    assert p.service is not None
    assert p.service["spec"]["selector"] == {
        serving.LABEL_DEPLOYMENT: "fraud-detector",
        serving.LABEL_REVISION: story.status["servingRevision"]["revision"],
        serving.LABEL_QUARANTINED: "false",
    }
    assert p.label_pods is True
    assert p.status["phase"] == c.PHASE_QUARANTINED
    assert cond(p.status, c.QUARANTINED) == (c.TRUE, c.QUARANTINED_REASON)
    assert cond(p.status, c.DRIFTED) == (c.TRUE, c.DRIFT_DETECTED)
    assert cond(p.status, c.READY) == (c.FALSE, c.QUARANTINED_REASON)
    assert p.status["quarantinedAt"] == when
    assert p.status["rejectedDigests"] == [{"digest": DIGEST, "reason": c.QUARANTINED_REASON, "time": when}]
    assert p.status["servingRevision"]["digest"] == DIGEST


def test_quarantine_stays_with_the_same_evidence() -> None:
    story = quarantined_v1()
    quarantined_status = copy.deepcopy(story.status)

    blocked = story.run()
    steady = [story.run(), story.read(PASSING), story.read(FAILING)]

    assert actions(blocked) == [c.ACTION_BLOCKED]  # the old approval no longer counts
    assert blocked.status["phase"] == c.PHASE_QUARANTINED
    assert blocked.status["quarantinedAt"] == quarantined_status["quarantinedAt"]
    renewal = [g for g in blocked.status["gates"] if g["requirement"] == "new approval after quarantine"]
    assert [g["satisfied"] for g in renewal] == [False]
    for p in steady:
        assert actions(p) == []
        assert p.status == blocked.status
        assert (p.deployment, p.service, p.label_pods, p.watch) == (None, None, None, None)
        assert p.verdicts == ()


def test_plan_that_quarantines_watches_nothing() -> None:
    story = served_v1("quarantine")
    story.read(FAILING)
    story.read(FAILING)

    p = story.read(FAILING)

    assert p.status["phase"] == c.PHASE_QUARANTINED
    assert p.watch is None


def test_new_approval_after_the_quarantine_releases_it() -> None:
    story = quarantined_v1()
    story.run()
    fresh = approval(name="approve-1.0.0", created_at=story.now + timedelta(seconds=1))
    story.change(add=[fresh])  # deleted and created again: same name, new creation time

    p = story.run()

    assert actions(p) == [c.ACTION_RELEASED]
    released = decision(p, c.ACTION_RELEASED)
    assert "quarantine" in released.message
    assert p.label_pods is False
    assert p.service is not None
    assert p.service["spec"]["selector"] == {
        serving.LABEL_DEPLOYMENT: "fraud-detector",
        serving.LABEL_REVISION: story.status["servingRevision"]["revision"],
    }
    assert p.deployment is None
    assert "quarantinedAt" not in p.status
    assert "rejectedDigests" not in p.status
    assert cond(p.status, c.QUARANTINED) == (c.FALSE, c.NOT_QUARANTINED)
    assert p.status["phase"] == c.PHASE_SERVING
    assert p.watch is not None
    assert p.watch.digest == DIGEST
    assert not story.pods_quarantined


def test_released_revision_starts_counting_failures_afresh() -> None:
    story = quarantined_v1()
    story.run()
    story.change(add=[approval(name="approve-1.0.0", created_at=story.now + timedelta(seconds=1))])
    story.run()

    first = story.read(FAILING)

    assert actions(first) == ["CheckFailed"]
    assert first.status["metrics"][0]["consecutiveFailures"] == 1


def test_approval_created_before_the_quarantine_does_not_release_it() -> None:
    story = quarantined_v1()
    story.run()
    story.change(add=[approval(name="approve-1.0.0", created_at=NOW + timedelta(seconds=1))])

    p = story.run()

    assert p.status["phase"] == c.PHASE_QUARANTINED
    assert p.label_pods is None


def test_new_digest_while_quarantined_releases_the_pods_and_serves_it() -> None:
    story = quarantined_v1()
    story.run()
    story.change(model(V2, OTHER_DIGEST, monitoring=monitoring(on_drift="quarantine")))

    p = story.run()

    assert p.label_pods is False
    assert p.deployment is not None
    assert env(p.deployment)["MODEL_DIGEST"] == OTHER_DIGEST
    assert serving.LABEL_QUARANTINED not in (p.service or {})["spec"]["selector"]
    assert cond(p.status, c.QUARANTINED)[0] == c.FALSE


# --- onDrift: alert --------------------------------------------------------------------------------


def test_alert_reports_drift_once_and_changes_nothing_served() -> None:
    story = served_v1("alert")
    story.read(FAILING)
    story.read(FAILING)

    detected = story.read(FAILING)
    again = story.read(FAILING)

    d = decision(detected, c.ACTION_DRIFT_DETECTED)
    assert d.reason == c.DRIFT_DETECTED
    assert "onDrift: alert" in d.message
    assert d.evidence["checks"][0]["consecutiveFailures"] == 3
    assert actions(again) == []
    for p in (detected, again):
        assert (p.deployment, p.service, p.label_pods) == (None, None, None)
        assert cond(p.status, c.DRIFTED) == (c.TRUE, c.DRIFT_DETECTED)
        assert cond(p.status, c.READY) == (c.TRUE, c.SERVING_READY)
        assert p.status["phase"] == c.PHASE_DEGRADED
        assert "rejectedDigests" not in p.status
        assert p.watch is not None
    assert again.status["metrics"][0]["consecutiveFailures"] == 4


def test_alert_reports_a_new_drift_after_recovery() -> None:
    story = served_v1("alert")
    for v in (FAILING, FAILING, FAILING, PASSING, FAILING, FAILING):
        story.read(v)

    p = story.read(FAILING)

    assert c.ACTION_DRIFT_DETECTED in actions(p)
    assert [h["action"] for h in p.status["history"]].count(c.ACTION_DRIFT_DETECTED) == 2


# --- inconclusive ----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [NO_DATA, UNREACHABLE, Sample.of(math.nan), Sample.of(math.inf)])
def test_inconclusive_readings_up_to_the_limit_make_drifted_and_ready_unknown(missing: Sample) -> None:
    story = served_v1()  # inconclusiveLimit 2

    first = story.read(missing)
    second = story.read(missing)
    third = story.read(missing)

    assert actions(first) == ["CheckInconclusive"]
    assert cond(first.status, c.DRIFTED) == (c.FALSE, "InconclusiveBelowLimit")
    assert cond(first.status, c.READY) == (c.TRUE, c.SERVING_READY)
    assert actions(second) == ["MetricsInconclusive"]
    assert decision(second, "MetricsInconclusive").warning
    assert actions(third) == []
    for p in (second, third):
        assert cond(p.status, c.DRIFTED) == (c.UNKNOWN, c.METRICS_INCONCLUSIVE)
        assert cond(p.status, c.READY) == (c.UNKNOWN, c.METRICS_INCONCLUSIVE)
        assert p.status["phase"] == c.PHASE_DEGRADED
        assert (p.deployment, p.service, p.label_pods) == (None, None, None)
        assert "value" not in p.status["metrics"][0]


def test_inconclusive_readings_never_intervene_and_leave_the_failure_count_alone() -> None:
    story = served_v2()
    story.read(FAILING)
    story.read(FAILING)

    gap = [story.read(UNREACHABLE) for _ in range(6)]

    for p in gap:
        assert not set(actions(p)) & {*INTERVENTIONS, c.ACTION_DRIFT_DETECTED}
        assert p.status["metrics"][0]["consecutiveFailures"] == 2
        assert p.status["servingRevision"]["digest"] == OTHER_DIGEST
    assert sum(actions(p).count("MetricsInconclusive") for p in gap) == 1
    # the outage neither hid nor forgave the drift: one more failure reaches the limit
    assert c.ACTION_ROLLED_BACK in actions(story.read(FAILING))


def test_prometheus_recovery_clears_the_unknown() -> None:
    story = served_v1()
    story.read(UNREACHABLE)
    story.read(UNREACHABLE)

    p = story.read(PASSING)

    assert actions(p) == ["CheckPassed"]
    assert cond(p.status, c.DRIFTED) == (c.FALSE, c.METRICS_WITHIN_THRESHOLDS)
    assert cond(p.status, c.READY) == (c.TRUE, c.SERVING_READY)
    assert p.status["phase"] == c.PHASE_SERVING


def test_round_without_a_sample_for_a_metric_changes_nothing() -> None:
    story = served_v1()
    before = copy.deepcopy(story.status)

    p = story.read()  # a round for this digest, but no sample for psi

    assert actions(p) == []
    assert p.status == before
    assert p.verdicts == ()


def test_outage_while_rolled_back_is_reported_once() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    story.run()

    gap = [story.read(UNREACHABLE) for _ in range(5)]

    assert sum(actions(p).count("MetricsInconclusive") for p in gap) == 1


def test_reconcile_without_readings_while_rolled_back_and_inconclusive_decides_nothing() -> None:
    story = served_v2()
    for _ in range(3):
        story.read(FAILING)
    story.run()
    story.read(UNREACHABLE)
    story.read(UNREACHABLE)
    story.run()
    settled = copy.deepcopy(story.status)

    p = story.run()

    assert actions(p) == []
    assert p.status == settled


# --- readings that do not concern the serving revision ---------------------------------------------


def test_readings_for_another_digest_are_ignored() -> None:
    story = served_v1()
    before = copy.deepcopy(story.status)

    p = story.read(FAILING, digest=OTHER_DIGEST)

    assert p.verdicts == ()
    assert actions(p) == []
    assert p.status == before


def test_readings_are_ignored_when_nothing_serves() -> None:
    obs = story_observed(
        model(monitoring=monitoring()), policies=[], readings=readings(DIGEST, NOW, psi=FAILING)
    )

    p = plan(obs, NOW)

    assert p.verdicts == ()
    assert "metrics" not in p.status


def test_verdicts_report_every_check_taken_into_account() -> None:
    story = served_v1("rollback", metric("psi"), metric("latency", max=0.5))

    p = story.read(psi=FAILING, latency=NO_DATA)

    assert sorted(p.verdicts) == ["Fail", "Inconclusive"]


# --- policy-required metrics -----------------------------------------------------------------------


def test_policy_required_metrics_are_checked_and_can_trigger_the_action() -> None:
    required = metric("error-rate", max=0.02, template="error-rate", failure_limit=2)
    story = Story.of(model(monitoring=monitoring()), policies=[policy(monitoring=[required])])
    story.run()
    story.run()
    assert story.last.watch is not None
    assert [ch.name for ch in story.last.watch.checks] == ["psi", "error-rate"]

    only_psi = story.read(PASSING)
    assert "knownGood" not in only_psi.status  # error-rate has not been read yet
    both = story.read(PASSING, samples={"error-rate": 0.01})
    assert "knownGood" in both.status

    story.read(PASSING, samples={"error-rate": 0.5})
    p = story.read(PASSING, samples={"error-rate": 0.5})
    d = decision(p, c.ACTION_QUARANTINED)  # v1 is the only known good revision
    assert [ch["metric"] for ch in d.evidence["checks"]] == ["error-rate"]


def test_models_own_metric_may_tighten_the_policys_but_never_replaces_its_query() -> None:
    lax = metric("psi", max=0.9, template="psi")
    story = Story.of(
        model(monitoring=monitoring(metric("psi", max=0.25))), policies=[policy(monitoring=[lax])]
    )
    story.run()
    p = story.run()

    assert p.watch is not None
    [check] = p.watch.checks
    assert (check.max, check.query, check.template_ref and check.template_ref.name) == (0.25, None, "psi")
