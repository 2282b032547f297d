"""A rollback or quarantine whose pass was lost between its ModelRecord write and its status write
(the operator killed, or the status write failed) is recovered from the record (decide/recovery.py):
it enters history under its own id and is told of (Event, audit line) once, and what serves is what
would serve had the lost pass completed. Each test builds what such a pass leaves behind: the
record written, the status, Deployment and Service as they were before it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from modelgate.api import conditions as c
from modelgate.decide.records import RecordUpdate, in_force, merge, updates_for, updates_from
from modelgate.decide.recovery import replay
from modelgate.decide.types import Decision, Plan
from tests.unit.factories import (
    DIGEST,
    FAILING,
    MODEL,
    OTHER_DIGEST,
    THIRD_DIGEST,
    UID,
    V2,
    V3,
    Story,
    actions,
    approval,
    model,
    monitoring,
)

WITHDRAWING = (c.ACTION_ROLLED_BACK, c.ACTION_QUARANTINED)


def records_of(p: Plan, uid: str = UID) -> list[dict[str, Any]]:
    """The ModelRecords the plan's interventions are written to, as the API server returns them."""
    return [{"spec": merge(None, u)} for u in updates_from(p.decisions, MODEL, MODEL, uid)]


@dataclass
class Lost:
    """One story run twice from the same moment: in `completed` the intervening pass stored
    everything; in `killed` it stopped after writing `records`."""

    completed: Story
    killed: Story
    decision: Decision
    """The intervention the pass decided."""
    records: list[dict[str, Any]]


def lost_pass(on_drift: str, *, known_good: int, uid: str = UID) -> Lost:
    """`known_good` revisions served and passed (v1, then v2), two failing readings, and the pass
    of the third one, which intervenes."""
    story = Story.of(model(monitoring=monitoring(on_drift=on_drift)))
    story.serve_v1()
    if known_good == 2:
        story.serve_v2()
    story.read(FAILING)
    story.read(FAILING)
    killed = Story(story.template, now=story.now, status=copy.deepcopy(story.status))
    killed.deployment, killed.service = story.deployment, story.service
    p = story.read(FAILING)
    [d] = [d for d in p.decisions if d.action in WITHDRAWING]
    records = records_of(p, uid)
    killed.template = replace(killed.template, records=in_force(records))
    killed.now = story.now  # its next pass comes when the completed story's does
    return Lost(story, killed, d, records)


def then_nothing(story: Story) -> None:
    pass


def then_v3(story: Story) -> None:
    """A new version, with its approval, is applied."""
    mon = story.template.deployment.spec.monitoring
    on_drift = mon.on_drift if mon is not None else "rollback"
    story.change(
        model(V3, THIRD_DIGEST, monitoring=monitoring(on_drift=on_drift)), add=[approval(V3, THIRD_DIGEST)]
    )


def then_v1_revoked(story: Story) -> None:
    """The rollback target loses its approval (the policy says onRevocation: suspend)."""
    story.change(remove=["approve-1.0.0"])


def both(lost: Lost, then: Callable[[Story], None]) -> tuple[Plan, Plan]:
    """`then` in both stories, and the next pass of each (the records kept in force)."""
    for story in (lost.completed, lost.killed):
        then(story)
        story.template = replace(story.template, records=in_force(lost.records))
    return lost.completed.run(), lost.killed.run()


def without_transition_times(status: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in status.items() if k != "history"}
    out["conditions"] = [
        {k: v for k, v in x.items() if k != "lastTransitionTime"} for x in status["conditions"]
    ]
    return out


def spec_of(obj: dict[str, Any] | None) -> Any:
    """What serves: the object's spec (its generation counts the writes, one fewer when recovered)."""
    return (obj or {}).get("spec")


STORIES = [
    pytest.param("rollback", 2, c.ACTION_ROLLED_BACK, id="rollback"),
    pytest.param("quarantine", 1, c.ACTION_QUARANTINED, id="quarantine"),
    pytest.param("rollback", 1, c.ACTION_QUARANTINED, id="rollback-with-nothing-to-go-back-to"),
]


@pytest.mark.parametrize(("on_drift", "known_good", "action"), STORIES)
@pytest.mark.parametrize("then", [then_nothing, then_v3, then_v1_revoked])
def test_a_lost_intervention_is_recovered_with_what_its_pass_would_have_served(
    on_drift: str, known_good: int, action: str, then: Callable[[Story], None]
) -> None:
    lost = lost_pass(on_drift, known_good=known_good)
    assert lost.decision.action == action

    completed, recovered = both(lost, then)

    assert actions(recovered) == [action, *actions(completed)]
    assert without_transition_times(lost.killed.status) == without_transition_times(lost.completed.status)
    assert spec_of(lost.killed.deployment) == spec_of(lost.completed.deployment)
    assert spec_of(lost.killed.service) == spec_of(lost.completed.service)
    assert lost.killed.pods_quarantined == lost.completed.pods_quarantined


@pytest.mark.parametrize(("on_drift", "known_good", "action"), STORIES)
def test_a_recovered_decision_keeps_its_id_time_and_words_and_enters_history_once(
    on_drift: str, known_good: int, action: str
) -> None:
    lost = lost_pass(on_drift, known_good=known_good)
    d = lost.decision

    p = lost.killed.run()
    again = [lost.killed.run(), lost.killed.run()]

    got = p.decisions[0]
    assert (got.id, got.time, got.action, got.reason, got.message) == (
        d.id,
        d.time,
        d.action,
        d.reason,
        d.message,
    )
    assert got.warning
    assert got.revision == d.revision
    assert [h.get("decision") for h in lost.killed.status["history"]].count(d.id) == 1
    assert all(action not in actions(a) for a in again)


def test_a_recovered_decision_writes_no_second_record_entry() -> None:
    lost = lost_pass("rollback", known_good=2)

    p = lost.killed.run()

    assert c.ACTION_ROLLED_BACK in actions(p)
    assert updates_from(p.decisions, MODEL, MODEL, UID) == []
    assert updates_for(p.decisions, p.status["rejectedDigests"], MODEL, MODEL, UID, lost.records) == []


def _other_uid(lost: Lost) -> None:
    lost.killed.template = replace(
        lost.killed.template, records=in_force(records_of(lost.completed.last, "other"))
    )


def _no_decision_id(lost: Lost) -> None:
    for r in lost.records:
        for e in r["spec"]["entries"]:
            del e["decision"]
    lost.killed.template = replace(lost.killed.template, records=in_force(lost.records))


def _stored(lost: Lost) -> None:
    """The pass completed: its status holds the decision."""
    lost.killed.status = copy.deepcopy(lost.completed.status)
    lost.killed.deployment, lost.killed.service = lost.completed.deployment, lost.completed.service


def _stored_history_capped(lost: Lost) -> None:
    """The pass completed long ago: its history entry was dropped at the cap, rejectedDigests holds it."""
    _stored(lost)
    history = lost.killed.status["history"]
    lost.killed.status["history"] = [h for h in history if h.get("decision") != lost.decision.id]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(_other_uid, id="recorded-by-another-ModelDeployment-of-the-model"),
        pytest.param(_no_decision_id, id="record-entry-without-a-decision-id"),
        pytest.param(_stored, id="status-holds-it"),
        pytest.param(_stored_history_capped, id="status-holds-it-in-rejectedDigests-only"),
    ],
)
def test_nothing_is_recovered_that_this_status_holds_or_that_is_not_this_objects_decision(
    setup: Callable[[Lost], None],
) -> None:
    lost = lost_pass("rollback", known_good=2)
    setup(lost)

    p = lost.killed.run()

    assert c.ACTION_ROLLED_BACK not in actions(p)
    assert not any(d.id == lost.decision.id for d in p.decisions)


@pytest.mark.parametrize(
    ("entries", "want"),
    [
        (["Quarantined@10", "Released@11", "RolledBack@12"], "RolledBack@12"),
        (["RolledBack@10", "Retired@11"], "RolledBack@10"),
        (["Quarantined@10", "Released@11"], None),
    ],
)
def test_a_record_in_force_carries_its_newest_withdrawing_entry(entries: list[str], want: str | None) -> None:
    def entry(text: str) -> dict[str, Any]:
        action, hour = text.split("@")
        return {
            "time": f"2026-12-01T{hour}:00:00Z",
            "action": action,
            "reason": c.DRIFT_DETECTED,
            "message": "m",
            "modelDeployment": {"name": MODEL, "uid": UID},
            "decision": f"{int(hour):016x}",
        }

    spec = merge(None, RecordUpdate(MODEL, OTHER_DIGEST, tuple(entry(e) for e in entries)))

    got = in_force([{"spec": spec}])

    if want is None:
        assert got == {}
    else:
        assert got[OTHER_DIGEST]["entry"] == entry(want)


def test_the_recovered_rollback_serves_the_newest_known_good_revision_not_withdrawn() -> None:
    lost = lost_pass("rollback", known_good=2)

    p = lost.killed.run()

    assert p.status["servingRevision"]["digest"] == DIGEST
    assert p.status["servingRevision"]["admittedAt"] == lost.decision.time
    assert [r["digest"] for r in p.status["rejectedDigests"]] == [OTHER_DIGEST]
    assert all(g["digest"] != OTHER_DIGEST for g in p.status["knownGood"])
    assert p.status["phase"] == c.PHASE_ROLLED_BACK
    assert p.decisions[0].evidence["to"] == {"version": "1.0.0", "digest": DIGEST}
    assert p.decisions[0].evidence["withdrawn"]["version"] == V2


@pytest.mark.parametrize(("on_drift", "known_good", "action"), STORIES)
def test_a_model_deleted_after_a_lost_pass_is_retired_knowing_its_intervention(
    on_drift: str, known_good: int, action: str
) -> None:
    lost = lost_pass(on_drift, known_good=known_good)
    body = {**lost.killed.template.body, "status": lost.killed.status}

    got = replay(body, in_force(lost.records), MODEL)  # what the retirement reads (runtime/retire.py)

    assert [(d.id, d.action) for d in got.decisions] == [(lost.decision.id, action)]
    quarantined = action == c.ACTION_QUARANTINED
    assert (got.status.get("quarantinedAt") == lost.decision.time) is quarantined  # its pods are kept
    assert got.quarantined is quarantined
