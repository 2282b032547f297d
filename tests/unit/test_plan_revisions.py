"""The revision that serves is justified at every moment (issue 10, point 3), whatever the spec asks
for next: revocation, rejection and expiry apply to it even while a newer revision is requested, a
rollback goes only to a revision that passes its gates now, and a newer spec never changes the covered
fields of the revision that keeps serving."""

from __future__ import annotations

from modelgate.api import conditions as c
from tests.unit.factories import (
    DIGEST,
    FAILING,
    OTHER_DIGEST,
    V2,
    Story,
    actions,
    approval,
    approval_requirement,
    condition,
    decision,
    env,
    make_approval,
    make_policy,
    model,
    monitoring,
    revision_of,
)


def v1_serves_v2_waits(on_revocation: str = "suspend") -> Story:
    """v1 serves with its approval; the deployer asks for v2, which has none."""
    pol = make_policy(approvals=[approval_requirement()], on_revocation=on_revocation)
    story = Story.of(model(), approvals=[approval()], policies=[pol])
    story.serve_v1()
    story.change(model(V2, OTHER_DIGEST, approvals=[]))
    p = story.run()
    assert p.status["phase"] == c.PHASE_BLOCKED and story.serving_digest == DIGEST
    assert story.deployment is not None and story.deployment["spec"]["replicas"] == 1
    return story


def test_revoking_the_serving_revision_suspends_it_while_a_newer_one_is_requested() -> None:
    story = v1_serves_v2_waits()

    story.change(remove=["approve-1.0.0"])
    p = story.run()

    assert p.deployment is not None and p.deployment["spec"]["replicas"] == 0
    assert decision(p, c.ACTION_SUSPENDED).warning
    admitted = condition(p.status, c.ADMITTED)
    assert "which serves, no longer satisfies its gates" in admitted["message"]
    assert "it is suspended" in admitted["message"]
    ready = condition(p.status, c.READY)
    assert (ready["status"], ready["reason"]) == (c.FALSE, c.APPROVAL_REVOKED)
    assert p.watch is None  # nothing serves traffic: nothing to monitor
    assert p.status["servingRevision"]["digest"] == DIGEST


def test_the_suspension_is_decided_once_and_then_writes_nothing_new() -> None:
    story = v1_serves_v2_waits()
    story.change(remove=["approve-1.0.0"])
    story.run()

    again = story.run()

    assert actions(again) == []
    assert again.deployment is None


def test_an_unreferenced_rejection_of_the_serving_revision_suspends_it() -> None:
    story = v1_serves_v2_waits()

    rejection = make_approval("dave-says-no", username="dave", decision="rejected", revision=None)
    story.change(add=[rejection])
    p = story.run()

    assert p.deployment is not None and p.deployment["spec"]["replicas"] == 0
    assert "rejected" in condition(p.status, c.ADMITTED)["message"]


def test_with_keep_the_serving_revision_keeps_serving_and_the_status_says_why() -> None:
    story = v1_serves_v2_waits(on_revocation="keep")

    story.change(remove=["approve-1.0.0"])
    p = story.run()

    assert p.deployment is None  # untouched: one replica, as before
    assert story.deployment is not None and story.deployment["spec"]["replicas"] == 1
    message = condition(p.status, c.ADMITTED)["message"]
    assert "it keeps serving (onRevocation: keep)" in message
    assert decision(p, c.ACTION_BLOCKED).message == message


def test_the_serving_revision_comes_back_when_its_evidence_does() -> None:
    story = v1_serves_v2_waits()
    story.change(remove=["approve-1.0.0"])
    story.run()

    story.change(add=[approval()])
    p = story.run()

    assert p.deployment is not None and p.deployment["spec"]["replicas"] == 1
    assert "no longer satisfies" not in condition(p.status, c.ADMITTED)["message"]


def test_a_new_env_under_the_approved_digest_does_not_reach_the_serving_pods() -> None:
    v1 = model(serving={"env": [{"name": "MODE", "value": "safe"}]})
    story = Story.of(v1, approvals=[approval(revision=revision_of(v1))])
    story.serve_v1()
    assert story.deployment is not None and env(story.deployment)["MODE"] == "safe"

    story.change(model(serving={"env": [{"name": "MODE", "value": "exfiltrate"}]}))
    p = story.run()

    assert p.status["phase"] == c.PHASE_BLOCKED
    assert condition(p.status, c.ADMITTED)["reason"] in (c.REVISION_MISMATCH, c.APPROVAL_MISSING)
    assert p.deployment is None  # the serving pods keep the approved environment
    assert story.deployment is not None and env(story.deployment)["MODE"] == "safe"


def test_a_rollback_goes_only_to_a_revision_that_passes_its_gates_now() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.serve_v1()
    story.serve_v2()  # v1 and v2 are both known good; v2 serves
    story.change(remove=["approve-1.0.0"])  # v1's approval is revoked since
    story.run()

    for _ in range(3):
        p = story.read(FAILING)

    assert c.ACTION_ROLLED_BACK not in actions(p)
    quarantined = decision(p, c.ACTION_QUARANTINED)
    assert "no known-good revision passes its gates now" in quarantined.message
    assert story.serving_digest == OTHER_DIGEST


def test_a_rollback_target_that_still_passes_is_used() -> None:
    story = Story.of(model(monitoring=monitoring()))
    story.serve_v1()
    story.serve_v2()

    for _ in range(3):
        p = story.read(FAILING)

    assert decision(p, c.ACTION_ROLLED_BACK).evidence["to"]["digest"] == DIGEST
    assert p.status["servingRevision"]["revision"] == revision_of(model(monitoring=monitoring()))
