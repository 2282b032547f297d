"""ModelRecords (issue 10, point 4): interventions outlive the ModelDeployment. Entry merging is
idempotent, the state follows the newest intervention or release, and a plan that sees a record
in force applies the renewal gate to a re-created ModelDeployment."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import ModelRecord
from modelgate.decide.conditions import rfc3339
from modelgate.decide.records import (
    RecordUpdate,
    expire,
    in_force,
    keep,
    merge,
    record_name,
    retention_due,
    updates_for,
    updates_from,
)
from tests.unit.factories import (
    DIGEST,
    FAILING,
    OTHER_DIGEST,
    V2,
    VERSION,
    Story,
    actions,
    approval,
    cond,
    metric,
    model,
    monitoring,
    policy,
)

T0 = "2026-12-01T10:00:00Z"
T1 = "2026-12-01T11:00:00Z"
T2 = "2026-12-01T12:00:00Z"


def entry(time: str, action: str, reason: str = c.DRIFT_DETECTED) -> dict[str, Any]:
    return {
        "time": time,
        "action": action,
        "reason": reason,
        "message": "m",
        "modelDeployment": {"name": "fd"},
    }


def update(*entries: dict[str, Any], retention: str | None = None) -> RecordUpdate:
    return RecordUpdate("fraud-detector", DIGEST, tuple(entries), retention)


@dataclass(frozen=True)
class D:
    """A plan Decision, as far as records read one."""

    action: str
    reason: str
    message: str
    time: str
    evidence: dict[str, Any] = field(default_factory=dict)
    revision: dict[str, str] | None = None


def test_record_name_is_model_and_first_12_hex_of_the_digest() -> None:
    assert record_name("Fraud_Detector", "sha256:" + "ab" * 32) == "fraud-detector-abababababab"


@pytest.mark.parametrize(
    ("stored", "new", "want_actions", "want_state"),
    [
        pytest.param([], [entry(T0, "RolledBack")], ["RolledBack"], "Withdrawn", id="first intervention"),
        pytest.param(
            [entry(T0, "RolledBack")], [entry(T0, "RolledBack")], ["RolledBack"], "Withdrawn", id="same twice"
        ),
        pytest.param(
            [entry(T0, "Quarantined", "Quarantined")],
            [entry(T1, "Released", "ApprovalsGranted")],
            ["Quarantined", "Released"],
            "Released",
            id="release after quarantine",
        ),
        pytest.param(
            [entry(T0, "Quarantined"), entry(T1, "Released")],
            [entry(T2, "RolledBack")],
            ["Quarantined", "Released", "RolledBack"],
            "Withdrawn",
            id="withdrawn again after a release",
        ),
        pytest.param(
            [entry(T2, "Released")],
            [entry(T0, "RolledBack")],
            ["RolledBack", "Released"],
            "Released",
            id="a late write of an older entry keeps time order",
        ),
        pytest.param(
            [entry(T0, "Quarantined")],
            [entry(T0, "Retired", "Quarantined")],
            ["Quarantined", "Retired"],
            "Withdrawn",
            id="retirement does not lift the intervention",
        ),
    ],
)
def test_entries_merge_by_time_and_action(
    stored: list[dict[str, Any]], new: list[dict[str, Any]], want_actions: list[str], want_state: str
) -> None:
    spec = merge({"entries": stored} if stored else None, update(*new))

    assert [e["action"] for e in spec["entries"]] == want_actions
    assert spec["state"] == want_state
    assert merge(spec, update(*new)) == spec  # idempotent: a restart writes nothing new
    ModelRecord.model_validate({"metadata": {"name": "r"}, "spec": spec})


def test_withdrawn_reason_of_a_quarantine_is_quarantined_and_of_a_rollback_its_cause() -> None:
    q = merge(None, update(entry(T0, "Quarantined", c.METRICS_INCONCLUSIVE)))
    r = merge(None, update(entry(T0, "RolledBack", c.METRICS_INCONCLUSIVE)))

    assert (q["withdrawnReason"], r["withdrawnReason"]) == (c.QUARANTINED_REASON, c.METRICS_INCONCLUSIVE)
    assert in_force([{"spec": q}])[DIGEST] == {
        "reason": c.QUARANTINED_REASON,
        "time": T0,
        "entry": entry(T0, "Quarantined", c.METRICS_INCONCLUSIVE),
    }


def test_released_records_are_not_in_force() -> None:
    spec = merge(None, update(entry(T0, "RolledBack"), entry(T1, "Released")))
    assert in_force([{"spec": spec}]) == {}


def test_plan_decisions_become_entries_for_the_withdrawn_digest() -> None:
    decisions = [
        D(
            c.ACTION_ROLLED_BACK,
            c.DRIFT_DETECTED,
            "Rolled back",
            T0,
            {"withdrawn": {"model": "fd", "version": V2, "digest": OTHER_DIGEST, "revisionId": "a" * 32}},
            {"version": VERSION, "digest": DIGEST},  # the revision rolled back TO
        ),
        D(c.ACTION_ADMITTED, c.ADMITTED_REASON, "Admitted", T0, {}, {"version": VERSION, "digest": DIGEST}),
        D(
            c.ACTION_RELEASED,
            c.APPROVALS_GRANTED,
            "Re-admitted",
            T1,
            {},
            {"version": VERSION, "digest": DIGEST},
        ),
        D(
            c.ACTION_QUARANTINED,
            c.DRIFT_DETECTED,
            "Q",
            T2,
            {"withdrawn": {"digest": DIGEST}, "retention": "1h"},
        ),
    ]

    [rolled, released] = updates_from(decisions, "fd", "fraud-detector", "uid-1")

    assert rolled.digest == OTHER_DIGEST
    assert rolled.entries[0] | {"message": "m"} == {
        "time": T0,
        "action": "RolledBack",
        "reason": c.DRIFT_DETECTED,
        "message": "m",
        "version": V2,
        "revisionId": "a" * 32,
        "modelDeployment": {"name": "fraud-detector", "uid": "uid-1"},
    }
    assert released.digest == DIGEST
    assert [e["action"] for e in released.entries] == ["Released", "Quarantined"]
    assert released.retention == "1h"


@pytest.mark.parametrize(
    ("known", "want"),
    [
        pytest.param([], [OTHER_DIGEST], id="no record yet: written from status"),
        pytest.param(
            [{"spec": {"model": {"digest": OTHER_DIGEST}, "state": "Withdrawn"}}], [], id="recorded"
        ),
        pytest.param(
            [{"spec": {"model": {"digest": OTHER_DIGEST}, "state": "Released"}}], [], id="released elsewhere"
        ),
    ],
)
def test_a_rejected_digest_without_a_record_gets_one(known: list[dict[str, Any]], want: list[str]) -> None:
    rejected = [{"digest": OTHER_DIGEST, "reason": c.QUARANTINED_REASON, "time": T0}]

    updates = updates_for([], rejected, "fd", "fraud-detector", "u", known)

    assert [u.digest for u in updates] == want
    if updates:
        spec = merge(None, updates[0])
        assert (spec["state"], spec["withdrawnReason"], spec["entries"][0]["action"]) == (
            "Withdrawn",
            c.QUARANTINED_REASON,
            c.ACTION_QUARANTINED,
        )


def test_kept_pods_expire_at_the_end_of_the_retention() -> None:
    spec = merge(None, update(entry(T0, "Quarantined", "Quarantined"), retention="2h"))
    now = dt.datetime(2026, 12, 1, 13, tzinfo=dt.UTC)
    kept = keep(spec, ["fd-abc"], ["fd-abc-1", "fd-abc-2"], now, "168h", "fraud-detector", "u")

    assert kept["kept"]["retainUntil"] == rfc3339(now + dt.timedelta(hours=2))  # the recorded retention
    assert kept["entries"][-1]["action"] == "Retired" and "fd-abc-1" in kept["entries"][-1]["message"]
    assert kept["state"] == "Withdrawn"
    assert not retention_due(kept, now + dt.timedelta(hours=1))
    assert retention_due(kept, now + dt.timedelta(hours=2))
    done = expire(kept, ["fd-abc"], now + dt.timedelta(hours=3))
    assert not retention_due(done, now + dt.timedelta(days=30))
    assert done["entries"][-1]["action"] == c.ACTION_RETENTION_EXPIRED
    ModelRecord.model_validate({"metadata": {"name": "r"}, "spec": done})


# --- the plan reads records: delete and re-create lifts nothing ----------------------------------------


def recreated(story: Story, records: dict[str, dict[str, str]]) -> Story:
    """The same ModelDeployment deleted and applied again: empty status, no owned objects, the
    records the operator kept."""
    fresh = Story(replace(story.template, records=records), now=story.now)
    fresh.approvals.update(story.approvals)
    return fresh


def quarantined_story() -> tuple[Story, dict[str, dict[str, str]]]:
    story = Story.of(model(monitoring=monitoring(on_drift="quarantine")))
    story.serve_v1()
    for _ in range(3):
        p = story.read(FAILING)
    assert c.ACTION_QUARANTINED in actions(p)
    [u] = updates_from(p.decisions, "fraud-detector", "fraud-detector", "uid")
    return story, in_force([{"spec": merge(None, u)}])


def test_recreated_model_deployment_meets_the_renewal_gate_of_its_record() -> None:
    story, records = quarantined_story()
    fresh = recreated(story, records)

    p = fresh.run()

    assert p.deployment is None and "servingRevision" not in p.status
    assert cond(p.status, c.ADMITTED)[0] == c.FALSE
    assert any(g["reason"] == c.APPROVAL_PREDATES_QUARANTINE for g in p.status["gates"])
    assert p.status["rejectedDigests"][0]["digest"] == DIGEST


def test_recreated_model_deployment_is_re_admitted_by_an_approval_after_the_intervention() -> None:
    story, records = quarantined_story()
    fresh = recreated(story, records)
    fresh.change(add=[approval(name="approve-1.0.0", created_at=fresh.now + dt.timedelta(seconds=1))])
    fresh.template = replace(fresh.template, records=records)  # `change` rebuilds the snapshot
    fresh.now += dt.timedelta(seconds=5)

    p = fresh.run()

    assert c.ACTION_RELEASED in actions(p)
    assert p.status["servingRevision"]["digest"] == DIGEST


def test_without_records_the_recreated_model_would_be_admitted_again() -> None:
    story, _ = quarantined_story()
    p = recreated(story, {}).run()  # what the hole was: status gone, approvals from before admit it

    assert p.status["servingRevision"]["digest"] == DIGEST


def test_policy_metric_is_kept_when_the_model_defines_its_own_of_the_same_name() -> None:
    pol = policy(monitoring=[metric("psi", max=0.25, template="psi")])
    story = Story.of(model(monitoring=monitoring(metric("psi", max=1e9))), policies=[pol])
    story.serve_v1()
    assert story.last.watch is not None
    assert [ch.max for ch in story.last.watch.checks] == [0.25]
