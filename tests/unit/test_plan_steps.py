"""The plan's steps one by one (decide/plan.py, decide/verdict.py): judge, the renewal gate,
choose, the withdrawn digests and the quarantine in force. The whole plan is tested in
test_plan*.py; these pin down each step's own contract."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from modelgate.api import conditions as c
from modelgate.decide.plan import _quarantine_in_force, choose, requested_revision, withdrawn_digests
from modelgate.decide.verdict import judge, with_renewal
from tests.unit.factories import DIGEST, NOW, OTHER_DIGEST, approval, model, observed, policy, rfc3339

WITHDRAWN = {"digest": DIGEST, "reason": c.QUARANTINED_REASON, "time": rfc3339(NOW - timedelta(hours=1))}


def obs(*approvals: Any, status: dict[str, Any] | None = None, records: Any = None) -> Any:
    kwargs = {"records": records} if records is not None else {}
    return observed(model(), policies=[policy()], approvals=approvals, status=status, **kwargs)


@pytest.mark.parametrize(
    ("approvals", "admitted", "reason"),
    [
        ((approval(),), True, None),
        ((), False, c.APPROVAL_NOT_FOUND),
        ((approval(decision="rejected"),), False, c.APPROVAL_REJECTED),
        ((approval(revision=None),), False, c.REVISION_MISSING),
    ],
    ids=["approved", "referenced-approval-missing", "rejected", "no-revision"],
)
def test_judge_names_the_first_failure_in_the_blocked_message(
    approvals: tuple[Any, ...], admitted: bool, reason: str | None
) -> None:
    o = obs(*approvals)
    v = judge(o, NOW, requested_revision(o.deployment, o.policies), None)

    assert v.admitted is admitted
    assert (v.blocked_message == "") is admitted
    first = next((g for g in v.gates if not g.satisfied), None)
    assert (first.reason if first else None) == reason


@pytest.mark.parametrize(
    ("created", "satisfied"),
    [(NOW - timedelta(hours=2), False), (NOW - timedelta(minutes=30), True)],
    ids=["approval-before-the-quarantine", "approval-after-it"],
)
def test_the_renewal_gate_counts_only_approvals_created_after_the_withdrawal(
    created: Any, satisfied: bool
) -> None:
    o = obs(approval(created_at=created))
    rev = requested_revision(o.deployment, o.policies)

    v = judge(o, NOW, rev, WITHDRAWN)

    [renewal] = [g for g in v.gates if g.kind == "renewal"]
    assert renewal.satisfied is satisfied
    assert v.admitted is satisfied


def test_with_renewal_adds_one_gate_and_keeps_the_report() -> None:
    o = obs(approval())
    rev = requested_revision(o.deployment, o.policies)
    v = judge(o, NOW, rev, None)

    renewed = with_renewal(v, o, rev, WITHDRAWN)

    assert renewed.report is v.report
    assert len(renewed.gates) == len(v.gates) + 1
    assert renewed.gates[-1].requirement == "new approval after quarantine"


def test_withdrawn_digests_unite_the_status_and_the_records() -> None:
    later = {"digest": OTHER_DIGEST, "reason": c.DRIFT_DETECTED, "time": rfc3339(NOW)}
    o = obs(status={"rejectedDigests": [later]}, records={DIGEST: WITHDRAWN})

    assert withdrawn_digests(o) == {DIGEST: WITHDRAWN, OTHER_DIGEST: later}


@pytest.mark.parametrize(
    ("rejected_reason", "expected"),
    [
        (c.QUARANTINED_REASON, ("2026-12-01T11:00:00Z", None)),
        (c.DRIFT_DETECTED, (None, False)),
        (None, (None, False)),
    ],
    ids=["still-quarantined", "withdrawn-otherwise", "released"],
)
def test_a_quarantine_stays_in_force_only_while_its_digest_serves(
    rejected_reason: str | None, expected: tuple[str | None, bool | None]
) -> None:
    o = obs(approval())
    rev = requested_revision(o.deployment, o.policies)
    rejected = {DIGEST: {**WITHDRAWN, "reason": rejected_reason}} if rejected_reason else {}
    v = judge(o, NOW, rev, rejected.get(DIGEST))
    choice = choose(o.deployment, v, rev, rev, None, {}, rejected, rfc3339(NOW), {})

    assert _quarantine_in_force("2026-12-01T11:00:00Z", choice) == expected
    assert _quarantine_in_force(None, choice) == (None, None)


def test_choose_admits_the_requested_revision_with_one_admitted_decision() -> None:
    o = obs(approval())
    rev = requested_revision(o.deployment, o.policies)
    choice = choose(o.deployment, judge(o, NOW, rev, None), rev, None, None, {}, {}, rfc3339(NOW), {})

    assert choice.target == rev
    assert choice.serving_raw is not None and choice.serving_raw["revision"] == rev.id
    assert [d.action for d in choice.decisions] == [c.ACTION_ADMITTED]


def test_choose_keeps_nothing_serving_when_nothing_is_admitted() -> None:
    o = obs()
    rev = requested_revision(o.deployment, o.policies)
    choice = choose(o.deployment, judge(o, NOW, rev, None), rev, None, None, {}, {}, rfc3339(NOW), {})

    assert choice.target is None
    assert [d.action for d in choice.decisions] == [c.ACTION_BLOCKED]
    assert choice.blocked_message.startswith("fraud-detector 1.0.0")


@pytest.mark.parametrize(
    "fresh",
    [
        approval(created_at=NOW - timedelta(minutes=30), username="mallory", groups=("contractors",)),
        approval(created_at=NOW - timedelta(minutes=30), revision="f" * 32),
        approval(created_at=NOW - timedelta(minutes=30), expires_at=NOW - timedelta(minutes=1)),
    ],
    ids=["approver-not-allowed-for-the-role", "for-another-revision", "expired"],
)
def test_the_renewal_gate_counts_only_an_approval_that_counts_for_a_requirement(fresh: Any) -> None:
    o = obs(fresh)

    v = judge(o, NOW, requested_revision(o.deployment, o.policies), WITHDRAWN)

    [renewal] = [g for g in v.gates if g.kind == "renewal"]
    assert not renewal.satisfied
    assert not v.admitted
