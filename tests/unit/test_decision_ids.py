"""Each decision is recorded once: a pass retried after a failed or interrupted status write decides
again at a later time, and its decisions keep their ids, so the Event, the audit line and the
ModelRecord entry of a decision are not repeated (decide/ids.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from datetime import timedelta

from modelgate.act import audit
from modelgate.api import conditions as c
from modelgate.decide.ids import decision_id, identify
from modelgate.decide.plan import plan
from modelgate.decide.records import RecordUpdate, keep, merge, retained_until, updates_from
from modelgate.decide.types import Decision
from tests.unit.factories import DIGEST, MODEL, NOW, UID, actions, model, story_observed


def test_a_plan_retried_later_from_the_same_stored_status_keeps_its_decision_ids() -> None:
    obs = story_observed(model())
    first = plan(obs, NOW)
    retried = plan(obs, NOW + timedelta(seconds=7))

    assert actions(first) == [c.ACTION_ADMITTED]
    assert [d.time for d in first.decisions] != [d.time for d in retried.decisions]
    assert [d.id for d in first.decisions] == [d.id for d in retried.decisions]
    assert all(len(d.id) == 16 for d in first.decisions)


def test_history_entries_carry_the_decision_id() -> None:
    p = plan(story_observed(model()), NOW)

    assert [h["decision"] for h in p.status["history"]] == [d.id for d in p.decisions]


def test_the_same_action_after_a_recorded_decision_is_a_new_decision() -> None:
    d = Decision(c.ACTION_BLOCKED, "ApprovalNotFound", "m", "t", revision={"version": "v1", "digest": DIGEST})
    before = identify([d], UID, [])
    after = identify([d], UID, [{"time": "t", "action": c.ACTION_ADMITTED, "decision": "0123456789abcdef"}])

    assert before[0].id != after[0].id
    assert identify([d, d], UID, [])[0].id != identify([d, d], UID, [])[1].id  # two of one plan differ


def test_another_object_of_the_same_name_gets_other_ids() -> None:
    d = Decision(c.ACTION_ADMITTED, c.ADMITTED_REASON, "m", "t")

    assert identify([d], "uid-a", [])[0].id != identify([d], "uid-b", [])[0].id


def rollback(time: str) -> Decision:
    return Decision(
        c.ACTION_ROLLED_BACK,
        "DriftDetected",
        f"psi 0.4 > 0.25 at {time}",
        time,
        {"withdrawn": {"digest": DIGEST, "version": "v2"}},
        id=decision_id("uid", "anchor", 0, c.ACTION_ROLLED_BACK, DIGEST),
    )


def test_a_record_entry_decided_again_at_a_later_time_is_merged_once() -> None:
    (first,) = updates_from([rollback("2026-12-05T10:00:00Z")], MODEL, "fraud", "uid")
    (again,) = updates_from([rollback("2026-12-05T10:00:09Z")], MODEL, "fraud", "uid")

    spec = merge(merge(None, first), again)

    assert len(spec["entries"]) == 1
    assert spec["entries"][0]["decision"] == first.entries[0]["decision"]
    assert spec["state"] == "Withdrawn"


def test_entries_without_an_id_still_merge_by_time_and_action() -> None:
    entry = {"time": "2026-12-05T10:00:00Z", "action": c.ACTION_QUARANTINED, "reason": "Quarantined"}
    update = RecordUpdate(MODEL, DIGEST, ({**entry, "modelDeployment": {"name": "fraud"}},))

    assert len(merge(merge(None, update), update)["entries"]) == 1


def test_a_retirement_retried_after_a_crash_adds_no_second_entry_and_keeps_its_retention() -> None:
    spec = {"model": {"name": MODEL, "digest": DIGEST}, "state": "Withdrawn", "entries": []}
    now = dt.datetime(2026, 12, 5, 10, tzinfo=dt.UTC)
    once = keep(spec, ["rs"], ["p"], now, "1h", "fraud", "uid", "00000000000000aa")
    twice = keep(once, ["rs"], ["p"], now + timedelta(minutes=5), "1h", "fraud", "uid", "00000000000000aa")

    assert twice == once
    assert [e["action"] for e in once["entries"]] == [c.ACTION_RETIRED]
    assert retained_until(once, "00000000000000aa") == "2026-12-05T11:00:00Z"
    assert retained_until(once, "00000000000000bb") is None


def test_an_event_is_named_after_its_decision_so_that_it_is_posted_once() -> None:
    body = {"metadata": {"namespace": "ns", "name": "fraud", "uid": "u"}}
    d = replace(rollback("t"), id="0123456789abcdef")

    assert audit.event(body, d, NOW)["metadata"] == {"namespace": "ns", "name": "fraud.0123456789abcdef"}
    long = {"metadata": {"namespace": "ns", "name": "m" * 253}}
    assert len(audit.event(long, d, NOW)["metadata"]["name"]) == 253


def test_a_process_records_each_decision_id_once() -> None:
    fresh = decision_id("test_a_process_records_each_decision_id_once")

    assert audit.first_time(fresh)
    assert not audit.first_time(fresh)
    assert audit.first_time("") and audit.first_time("")  # decisions without an id are never held back
