"""Properties of the plan over random sequences of monitoring readings.

The story: v1 and v2 are both known good, v2 serves with onDrift=rollback. Each drawn reading is
taken for whatever revision serves at that moment. An independent model of the contract tracks,
per digest, the failing readings since the last pass (inconclusive readings neither add nor reset),
and checks that the plan intervenes exactly when that count first reaches failureLimit, never on
missing data, at most once per digest, and stops monitoring a quarantined revision.
"""

from __future__ import annotations

import copy
import math

from hypothesis import event, given, settings
from hypothesis import strategies as st

from modelgate.api import conditions as c
from modelgate.decide.drift import SAMPLE_ERRORS, Sample
from tests.unit.factories import DIGEST, OTHER_DIGEST, Story, actions, metric, model, monitoring

MAX = 0.25
INTERVENTIONS = (c.ACTION_ROLLED_BACK, c.ACTION_QUARANTINED)

passing = st.floats(min_value=-1.0, max_value=MAX, allow_nan=False).map(Sample.of)
failing = st.floats(min_value=MAX, max_value=1e6, allow_nan=False, exclude_min=True).map(Sample.of)
inconclusive = st.one_of(
    st.sampled_from(SAMPLE_ERRORS).map(lambda e: Sample.failed(e, "drawn")),
    st.sampled_from([math.nan, math.inf, -math.inf]).map(Sample.of),
)
reading = st.one_of(
    passing.map(lambda s: ("Pass", s)),
    failing.map(lambda s: ("Fail", s)),
    inconclusive.map(lambda s: ("Inconclusive", s)),
)


def serving_v2(failure_limit: int, inconclusive_limit: int) -> Story:
    check = metric(max=MAX, failure_limit=failure_limit, inconclusive_limit=inconclusive_limit)
    story = Story.of(model(monitoring=monitoring(check, on_drift="rollback")))
    story.serve_v1()
    story.serve_v2()
    assert [g["digest"] for g in story.status["knownGood"]] == [DIGEST, OTHER_DIGEST]
    return story


@settings(max_examples=150, deadline=None)
@given(
    failure_limit=st.integers(min_value=1, max_value=4),
    inconclusive_limit=st.integers(min_value=1, max_value=3),
    sequence=st.lists(reading, max_size=24),
)
def test_intervention_happens_exactly_when_failures_in_a_row_reach_the_limit(
    failure_limit: int, inconclusive_limit: int, sequence: list[tuple[str, Sample]]
) -> None:
    story = serving_v2(failure_limit, inconclusive_limit)
    failures = {OTHER_DIGEST: 0}
    withdrawn: set[str] = set()
    quarantined = False
    for verdict, sample in sequence:
        digest = story.serving_digest
        assert digest is not None

        p = story.read(sample)

        if quarantined:
            assert p.verdicts == ()
            assert actions(p) == [] or actions(p) == [c.ACTION_BLOCKED]
            continue
        assert p.verdicts == (verdict,)
        if verdict == "Pass":
            failures[digest] = 0
        elif verdict == "Fail":
            failures[digest] += 1
        due = failures[digest] >= failure_limit and digest not in withdrawn
        done = [d for d in p.decisions if d.action in INTERVENTIONS]
        assert len(done) == int(due), (verdict, failures, actions(p))
        if not done:
            assert story.serving_digest == digest
            continue
        d = done[0]
        event(d.action)
        assert d.evidence["revision"]["digest"] == digest
        assert d.evidence["checks"][0]["consecutiveFailures"] == failures[digest]
        withdrawn.add(digest)
        if d.action == c.ACTION_ROLLED_BACK:
            back = d.evidence["to"]["digest"]
            assert back not in withdrawn
            assert story.serving_digest == back
            failures[back] = 0  # the revision rolled back to is judged afresh
        else:
            assert story.serving_digest == digest  # quarantine keeps the pods
            assert p.label_pods is True
            quarantined = True
    if all(verdict == "Inconclusive" for verdict, _ in sequence):
        assert story.serving_digest == OTHER_DIGEST
        assert "rejectedDigests" not in story.status
    history = [h for h in story.status["history"] if h["action"] in INTERVENTIONS]
    assert len(history) == len(withdrawn)
    assert {r["digest"] for r in story.status.get("rejectedDigests") or []} == withdrawn


HISTORY = {"failure_limit": st.integers(min_value=1, max_value=3), "sequence": st.lists(reading, max_size=16)}
"""A failure limit and a history of readings for v2, which serves."""


@settings(max_examples=100, deadline=None)
@given(**HISTORY)
def test_any_history_of_readings_settles_into_a_state_that_writes_nothing(
    failure_limit: int, sequence: list[tuple[str, Sample]]
) -> None:
    story = serving_v2(failure_limit, 2)
    for _, sample in sequence:
        story.read(sample)
    story.run()  # the level-based follow-up of the last decision
    settled = copy.deepcopy(story.status)
    again = story.run()

    assert actions(again) == []
    assert again.status == settled
    assert (again.deployment, again.service, again.label_pods) == (None, None, None)


def without_kstatus_conditions(status: dict[str, object]) -> dict[str, object]:
    out = copy.deepcopy(status)
    conditions = out.get("conditions")
    assert isinstance(conditions, list)
    out["conditions"] = [x for x in conditions if x["type"] not in (c.RECONCILING, c.STALLED)]
    return out


@settings(max_examples=100, deadline=None)
@given(**HISTORY)
def test_kstatus_conditions_never_cost_a_status_write_of_their_own(
    failure_limit: int, sequence: list[tuple[str, Sample]]
) -> None:
    """Reconciling and Stalled follow Ready and the phase: whenever a plan's status differs from the
    one stored before it, it differs without them too, so they add no write to any history."""
    story = serving_v2(failure_limit, 2)
    for _, sample in sequence:
        before = copy.deepcopy(story.status)
        after = story.read(sample).status
        if after != before:
            assert without_kstatus_conditions(after) != without_kstatus_conditions(before)
