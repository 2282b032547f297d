"""Recertification (issue 16): approvals lapse under a requirement's maxAge, counted from the API
server's creationTimestamp; the RecertificationDue condition warns from recertification.warnBefore;
a lapse is a revocation (onRevocation); the reconcile loop wakes at the window's start and at the
lapse, never polls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GovernancePolicy, ModelApproval
from modelgate.decide import recertification
from modelgate.decide.gates import GateReport, evaluate
from tests.unit.factories import (
    DIGEST,
    NOW,
    OTHER_DIGEST,
    V2,
    Story,
    actions,
    approval,
    approval_requirement,
    cond,
    decision,
    gate_input,
    make_approval,
    make_deployment,
    make_policy,
    model,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def aged(
    max_age: str | None = "2d", *, count: int = 1, warn_before: str | None = "12h", **kw: Any
) -> GovernancePolicy:
    """The story's policy with maxAge on its ethics-board requirement (and recertification)."""
    req = approval_requirement(count=count)
    if max_age is not None:
        req["maxAge"] = max_age
    extra = {"recertification": {"warnBefore": warn_before}} if warn_before and max_age else {}
    return make_policy(approvals=[req], **extra, **kw)


def run(policy: GovernancePolicy, approvals: list[ModelApproval], now: datetime = NOW) -> GateReport:
    return evaluate(gate_input(make_deployment(), [policy], approvals, now=now))


# --- the gate: maxAge from creationTimestamp -------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "max_age", "counts"),
    [
        pytest.param(NOW - DAY, "2d", True, id="younger than maxAge counts"),
        pytest.param(NOW - 3 * DAY, "2d", False, id="older than maxAge lapsed"),
        pytest.param(NOW - 2 * DAY, "2d", False, id="exactly maxAge old has lapsed"),
        pytest.param(NOW - 2 * DAY + timedelta(seconds=1), "2d", True, id="a second short of maxAge counts"),
        pytest.param(NOW - 400 * DAY, None, True, id="no maxAge: any age counts"),
        pytest.param(NOW - 30 * timedelta(seconds=1), "20s", False, id="seconds work"),
    ],
)
def test_an_approval_counts_only_while_younger_than_max_age(
    created: datetime, max_age: str | None, counts: bool
) -> None:
    report = run(aged(max_age), [make_approval("eb", created_at=created)])

    assert report.admitted is counts
    if not counts:
        [gate] = report.failures
        assert gate.reason == c.APPROVAL_LAPSED


def test_lapse_message_names_creation_max_age_lapse_and_who_must_approve() -> None:
    report = run(aged("180d"), [make_approval("eb", created_at="2026-05-01T00:00:00Z")])

    [gate] = report.failures
    assert (
        "ModelApproval eb by bob was created at 2026-05-01T00:00:00Z, more than maxAge 180d ago "
        "(lapsed at 2026-10-28T00:00:00Z); role ethics-board needs a new approval from group ethics-board"
    ) in gate.message


def test_an_approval_without_a_creation_timestamp_has_no_known_age_and_does_not_count() -> None:
    report = run(aged("2d"), [make_approval("eb", created_at=None)])

    [gate] = report.failures
    assert gate.reason == c.APPROVAL_LAPSED and "no readable creationTimestamp" in gate.message


def test_the_gate_wakes_at_the_lapse_instant() -> None:
    report = run(aged("2d"), [make_approval("eb", created_at=NOW - DAY)])

    assert report.next_change == NOW + DAY


def test_expiry_before_the_lapse_wakes_first() -> None:
    eb = make_approval("eb", created_at=NOW - DAY, expires_at=NOW + HOUR)

    assert run(aged("2d"), [eb]).next_change == NOW + HOUR


def test_of_two_approvals_by_one_person_the_one_lapsing_later_counts() -> None:
    old = make_approval("a-old", created_at=NOW - 40 * HOUR)
    new = make_approval("b-new", created_at=NOW - HOUR)
    report = run(aged("2d"), [old, new])

    assert report.counted_approvals == ("b-new",)
    assert report.next_change == NOW - HOUR + 2 * DAY


def test_a_rejection_still_blocks_whatever_the_age() -> None:
    no = make_approval("no", username="carol", decision="rejected", created_at=NOW - 10 * DAY)
    report = run(aged("2d"), [make_approval("eb", created_at=NOW - HOUR), no])

    assert report.failures[0].reason == c.APPROVAL_REJECTED
    assert report.recertification == ()


# --- the schedule and the condition ----------------------------------------------------------------


def test_requirement_lapses_when_fewer_than_count_remain() -> None:
    """count 2 of three approvers: it lapses at the second-latest lapse, not the first."""
    policy = aged("10d", count=2, warn_before="1d")
    pool = [
        make_approval("a", username="ann", created_at=NOW - 9 * DAY),
        make_approval("b", username="bob", created_at=NOW - 5 * DAY),
        make_approval("c", username="cat", created_at=NOW - 2 * DAY),
    ]
    [due] = run(policy, pool).recertification

    assert due.due_at == NOW + 5 * DAY  # b lapses; then only c remains
    assert due.warn_at == NOW + 4 * DAY
    assert [x.approval for x in due.lapses] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("now", "status", "reason", "says"),
    [
        pytest.param(
            NOW, c.FALSE, c.RECERTIFICATION_SCHEDULED, "is due by 2026-12-02T12:00:00Z", id="before"
        ),
        pytest.param(
            NOW + 12 * HOUR, c.TRUE, c.RECERTIFICATION_DUE_REASON, "warning from", id="window opens"
        ),
        pytest.param(NOW + DAY, c.TRUE, c.APPROVAL_LAPSED, "lapsed at 2026-12-02T12:00:00Z", id="lapsed"),
    ],
)
def test_recertification_due_condition_over_time(now: datetime, status: str, reason: str, says: str) -> None:
    report = run(aged("2d"), [make_approval("eb", created_at=NOW - DAY)], now=now)

    cnd = recertification.condition(report.recertification, now)

    assert (cnd.status, cnd.reason) == (status, reason)
    assert says in cnd.message
    assert "ModelApproval eb by bob" in cnd.message and "from group ethics-board" in cnd.message


def test_nothing_to_recertify_while_no_bounded_approval_counts() -> None:
    report = run(aged("2d"), [])

    cnd = recertification.condition(report.recertification, NOW)
    assert (cnd.status, cnd.reason) == (c.FALSE, c.NOTHING_TO_RECERTIFY)


@pytest.mark.parametrize(
    ("now", "wake"),
    [
        pytest.param(NOW, NOW + 12 * HOUR, id="the window's start"),
        pytest.param(NOW + 12 * HOUR, NOW + DAY, id="then the lapse"),
        pytest.param(NOW + DAY, None, id="then nothing"),
    ],
)
def test_wakes_at_the_window_start_then_the_lapse(now: datetime, wake: datetime | None) -> None:
    report = run(aged("2d"), [make_approval("eb", created_at=NOW - DAY)], now=now)

    assert recertification.wake_at(report.recertification, now) == wake


def test_without_warn_before_the_window_opens_at_the_lapse() -> None:
    [due] = run(aged("2d", warn_before=None), [make_approval("eb", created_at=NOW - DAY)]).recertification

    assert due.warn_at == due.due_at == NOW + DAY


# --- the plan: condition, Event, status, onRevocation, wake-ups -----------------------------------


def recert_story(on_revocation: str = "suspend") -> Story:
    """v1 approved a day before NOW (v2 not at all); maxAge 2d, warnBefore 12h: window at NOW+12h,
    lapse at NOW+1d."""
    story = Story.of(model(), approvals=[approval()], policies=[aged("2d", on_revocation=on_revocation)])
    story.serve_v1()
    return story


def at(story: Story, when: datetime) -> Any:
    story.now = when - story.tick
    return story.run()


def test_serving_model_reports_its_schedule_and_sleeps_until_the_window() -> None:
    story = recert_story()
    p = story.last

    assert cond(p.status, c.RECERTIFICATION_DUE) == (c.FALSE, c.RECERTIFICATION_SCHEDULED)
    schedule = p.status["recertification"]
    assert (schedule["dueAt"], schedule["warnAt"]) == ("2026-12-02T12:00:00Z", "2026-12-02T00:00:00Z")
    [req] = schedule["requirements"]
    assert req["approvals"] == [
        {
            "name": "approve-1.0.0",
            "approvedBy": "bob",
            "createdAt": "2026-11-30T12:00:00Z",
            "lapsesAt": "2026-12-02T12:00:00Z",
        }
    ]
    assert p.status["compliance"] == c.COMPLIANT
    assert p.requeue_at == NOW + 12 * HOUR


def test_window_start_posts_one_warning_event_and_keeps_serving() -> None:
    story = recert_story()

    p = at(story, NOW + 12 * HOUR)

    d = decision(p, c.ACTION_RECERTIFICATION_DUE)
    assert d.warning and "is due by 2026-12-02T12:00:00Z" in d.message
    assert cond(p.status, c.RECERTIFICATION_DUE) == (c.TRUE, c.RECERTIFICATION_DUE_REASON)
    assert p.status["phase"] == c.PHASE_SERVING
    assert p.requeue_at == NOW + DAY
    assert actions(story.run()) == []  # told once


def test_lapse_with_suspend_scales_to_zero() -> None:
    story = recert_story()
    at(story, NOW + 12 * HOUR)

    p = at(story, NOW + DAY)

    assert p.deployment is not None and p.deployment["spec"]["replicas"] == 0
    assert actions(p) == [c.ACTION_SUSPENDED]
    assert cond(p.status, c.ADMITTED) == (c.FALSE, c.APPROVAL_LAPSED)
    assert cond(p.status, c.RECERTIFICATION_DUE) == (c.TRUE, c.APPROVAL_LAPSED)
    assert "compliance" not in p.status


def test_lapse_with_keep_keeps_serving_not_compliant() -> None:
    story = recert_story("keep")

    p = at(story, NOW + DAY)

    assert p.deployment is None
    assert p.status["phase"] == c.PHASE_DEGRADED
    assert p.status["compliance"] == c.NOT_COMPLIANT
    assert actions(p) == [c.ACTION_BLOCKED, c.ACTION_RECERTIFICATION_DUE]  # no window seen: told at the lapse


def test_a_new_approval_recertifies() -> None:
    story = recert_story()
    at(story, NOW + DAY)

    story.change(add=[approval(name="approve-again", created_at=NOW + DAY)])
    story.run()  # scaled up again
    p = story.run()  # rolled out

    assert p.status["phase"] == c.PHASE_SERVING
    assert cond(p.status, c.RECERTIFICATION_DUE) == (c.FALSE, c.RECERTIFICATION_SCHEDULED)
    assert p.status["recertification"]["dueAt"] == "2026-12-04T12:00:00Z"


def test_without_max_age_there_is_no_condition_nor_schedule() -> None:
    story = Story.of(model(), policies=[aged(None)])
    p = story.serve_v1()

    assert c.RECERTIFICATION_DUE not in [x["type"] for x in p.status["conditions"]]
    assert "recertification" not in p.status


def test_older_revision_serving_while_the_new_one_waits_wakes_at_its_own_expiry() -> None:
    """Bug fixed with recertification: the loop slept until the *requested* revision's evidence
    changed, so v1 kept serving up to the 300 s resync past its approval's expiry."""
    v1 = approval(expires_at=NOW + DAY)
    story = Story.of(model(), approvals=[v1], policies=[make_policy(approvals=[approval_requirement()])])
    story.serve_v1()
    story.change(model(V2, OTHER_DIGEST))  # v2 has no approval: it waits, v1 keeps serving

    p = story.run()

    assert p.status["servingRevision"]["digest"] == DIGEST
    assert p.requeue_at == NOW + DAY


def test_older_revision_serving_reports_its_own_schedule() -> None:
    story = recert_story()
    story.change(model(V2, OTHER_DIGEST))

    p = story.run()

    assert p.status["servingRevision"]["digest"] == DIGEST
    assert p.status["recertification"]["requirements"][0]["approvals"][0]["name"] == "approve-1.0.0"
    assert p.requeue_at == NOW + 12 * HOUR


# --- the API --------------------------------------------------------------------------------------


def test_recertification_without_any_max_age_is_refused() -> None:
    with pytest.raises(ValidationError, match="set maxAge on at least one approvals"):
        make_policy(approvals=[approval_requirement()], recertification={"warnBefore": "14d"})


@pytest.mark.parametrize("bad", ["180 days", "-1d", "d", ""])
def test_max_age_must_be_a_duration(bad: str) -> None:
    with pytest.raises(ValidationError, match="maxAge"):
        make_policy(approvals=[{**approval_requirement(), "maxAge": bad}])


# --- properties ------------------------------------------------------------------------------------

AGES = st.integers(min_value=1, max_value=400 * 24)
"""maxAge in hours."""


@settings(max_examples=60, deadline=None)
@given(created_hours_ago=st.lists(st.integers(0, 500 * 24), min_size=1, max_size=4), low=AGES, extra=AGES)
def test_raising_max_age_never_stops_an_approval_counting(
    created_hours_ago: list[int], low: int, extra: int
) -> None:
    pool = [
        make_approval(f"a{i}", username=f"u{i}", created_at=NOW - h * HOUR)
        for i, h in enumerate(created_hours_ago)
    ]
    before = run(aged(f"{low}h"), pool)
    after = run(aged(f"{low + extra}h"), pool)

    assert set(before.counted_approvals) <= set(after.counted_approvals)
    assert after.admitted or not before.admitted


@settings(max_examples=60, deadline=None)
@given(hours_ago=st.integers(0, 100 * 24), max_age=AGES)
def test_the_wake_up_instant_is_the_lapse_instant(hours_ago: int, max_age: int) -> None:
    created = NOW - hours_ago * HOUR
    lapse = created + max_age * HOUR
    report = run(aged(f"{max_age}h", warn_before=None), [make_approval("eb", created_at=created)])

    if lapse > NOW:
        assert report.admitted and report.next_change == lapse
        assert recertification.wake_at(report.recertification, NOW) == lapse
    else:
        assert not report.admitted and report.next_change is None
