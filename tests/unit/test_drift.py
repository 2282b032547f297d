"""The verdict engine: every input class of `verdict`, the counters of `advance`, and `summarize`."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import MetricCheck, MetricReading
from modelgate.decide import drift
from modelgate.decide.drift import MetricState, Sample, advance, state_after, summarize, verdict

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
PASS, FAIL, INCONCLUSIVE = r.METRIC_PASS, r.METRIC_FAIL, r.METRIC_INCONCLUSIVE


# --- verdict --------------------------------------------------------------------------------------

VERDICTS = [
    # (sample, min, max, status, reason, words in the message)
    (Sample.of(0.1), None, 0.25, PASS, drift.WITHIN_THRESHOLDS, ["0.1", "value <= 0.25"]),
    (Sample.of(0.25), None, 0.25, PASS, drift.WITHIN_THRESHOLDS, ["0.25"]),
    (Sample.of(0.9), 0.9, None, PASS, drift.WITHIN_THRESHOLDS, ["value >= 0.9"]),
    (Sample.of(0.5), 0.1, 0.9, PASS, drift.WITHIN_THRESHOLDS, ["0.1 <= value <= 0.9"]),
    (Sample.of(-3.0), None, None, PASS, drift.WITHIN_THRESHOLDS, ["any value"]),
    (Sample.of(0.31), None, 0.25, FAIL, r.METRIC_ABOVE_MAXIMUM, ["value 0.31", "maximum 0.25"]),
    (Sample.of(0.95), 0.1, 0.9, FAIL, r.METRIC_ABOVE_MAXIMUM, ["value 0.95", "maximum 0.9"]),
    (Sample.of(0.82), 0.9, None, FAIL, r.METRIC_BELOW_MINIMUM, ["value 0.82", "minimum 0.9"]),
    (Sample.of(0.0), 0.1, 0.9, FAIL, r.METRIC_BELOW_MINIMUM, ["value 0", "minimum 0.1"]),
    (Sample.of(math.nan), None, 0.25, INCONCLUSIVE, drift.NOT_A_NUMBER, ["NaN"]),
    (Sample.of(math.inf), None, 0.25, INCONCLUSIVE, drift.INFINITE_VALUE, ["+inf"]),
    (Sample.of(-math.inf), 0.9, None, INCONCLUSIVE, drift.INFINITE_VALUE, ["-inf"]),
    (Sample.failed("empty", "no series"), None, 0.25, INCONCLUSIVE, drift.NO_DATA, ["no data", "no series"]),
    (
        Sample.failed("multiple-series", '2 series: {pod="a"}; {pod="b"}'),
        None,
        0.25,
        INCONCLUSIVE,
        drift.MULTIPLE_SERIES,
        ["more than one series", 'pod="a"'],
    ),
    (
        Sample.failed("query-error", "1:5: parse error: unclosed left parenthesis"),
        None,
        0.25,
        INCONCLUSIVE,
        drift.QUERY_ERROR,
        ["query failed", "parse error"],
    ),
    (
        Sample.failed("query-error", "MetricTemplate psi not found"),
        None,
        0.25,
        INCONCLUSIVE,
        drift.QUERY_ERROR,
        ["MetricTemplate psi not found"],
    ),
    (Sample.failed("timeout", "no answer within 5s"), None, 0.25, INCONCLUSIVE, drift.QUERY_TIMEOUT, ["5s"]),
    (
        Sample.failed("unreachable", "Connection refused"),
        None,
        0.25,
        INCONCLUSIVE,
        drift.PROMETHEUS_UNREACHABLE,
        ["Prometheus is unreachable", "Connection refused"],
    ),
]


@pytest.mark.parametrize(("sample", "lo", "hi", "status", "reason", "words"), VERDICTS)
def test_verdict_classifies_every_input(
    sample: Sample, lo: float | None, hi: float | None, status: str, reason: str, words: list[str]
) -> None:
    v = verdict(sample, lo, hi)
    assert (v.status, v.reason) == (status, reason)
    for word in words:
        assert word in v.message


@given(
    value=st.floats(allow_nan=True, allow_infinity=True) | st.none(),
    error=st.sampled_from(drift.SAMPLE_ERRORS),
    lo=st.floats(allow_nan=False) | st.none(),
    hi=st.floats(allow_nan=False) | st.none(),
)
def test_the_status_alone_is_the_verdicts_status(
    value: float | None, error: drift.SampleError, lo: float | None, hi: float | None
) -> None:
    sample = Sample(value=value) if value is not None else Sample.failed(error, "detail")
    assert drift.status_of(sample, lo, hi) == verdict(sample, lo, hi).status


@pytest.mark.parametrize(("sample", "lo", "hi", "status", "reason", "words"), VERDICTS)
def test_the_status_alone_classifies_every_input(
    sample: Sample, lo: float | None, hi: float | None, status: str, reason: str, words: list[str]
) -> None:
    assert drift.status_of(sample, lo, hi) == status


@pytest.mark.parametrize("kind", drift.SAMPLE_ERRORS)
def test_every_error_kind_is_inconclusive_whatever_the_thresholds(kind: drift.SampleError) -> None:
    for lo, hi in [(None, 0.25), (0.9, None), (0.0, 1.0)]:
        assert verdict(Sample.failed(kind), lo, hi).status == INCONCLUSIVE


def test_a_sample_has_exactly_one_of_value_and_error() -> None:
    with pytest.raises(ValueError):
        Sample()
    with pytest.raises(ValueError):
        Sample(value=1.0, error="empty")


# --- advance --------------------------------------------------------------------------------------


def run(statuses: str, failure_limit: int = 3, inconclusive_limit: int = 3) -> MetricState:
    """Advance through a string of P (pass), F (fail) and I (inconclusive) readings."""
    state: MetricState | None = None
    code = {"P": PASS, "F": FAIL, "I": INCONCLUSIVE}
    for i, c in enumerate(statuses):
        value = {"P": 0.1, "F": 0.4, "I": None}[c]
        state = advance(
            state, code[c], value, NOW + timedelta(minutes=i), failure_limit, inconclusive_limit, name="psi"
        )
    assert state is not None
    return state


COUNTERS = [
    # (readings, consecutiveFailures, consecutiveInconclusive, limit_reached, inconclusive_limit_reached)
    ("P", 0, 0, False, False),
    ("F", 1, 0, False, False),
    ("FF", 2, 0, False, False),
    ("FFF", 3, 0, True, False),
    ("FFFF", 4, 0, True, False),
    ("FFP", 0, 0, False, False),
    ("FFFP", 0, 0, False, False),
    ("I", 0, 1, False, False),
    ("III", 0, 3, False, True),
    ("IIIP", 0, 0, False, False),
    ("IIIF", 1, 0, False, False),
    ("FFI", 2, 1, False, False),
    ("FFIF", 3, 0, True, False),
    ("FFIIIF", 3, 0, True, False),
    ("FFFI", 3, 1, True, False),
    ("FFFIII", 3, 3, True, True),
    ("FIFIF", 3, 0, True, False),
    ("FPFPF", 1, 0, False, False),
]


@pytest.mark.parametrize(("readings", "failures", "inconclusive", "limit", "inconclusive_limit"), COUNTERS)
def test_counters_follow_the_readings(
    readings: str, failures: int, inconclusive: int, limit: bool, inconclusive_limit: bool
) -> None:
    state = run(readings)
    assert (state.consecutive_failures, state.consecutive_inconclusive) == (failures, inconclusive)
    assert (state.limit_reached, state.inconclusive_limit_reached) == (limit, inconclusive_limit)


def test_missing_data_neither_fails_nor_passes_however_long_it_lasts() -> None:
    state = run("F" + "I" * 50)
    assert state.consecutive_failures == 1
    assert not state.limit_reached
    assert state.status == INCONCLUSIVE


def test_limit_of_one_acts_on_the_first_failure() -> None:
    assert run("F", failure_limit=1).limit_reached
    assert run("I", inconclusive_limit=1).inconclusive_limit_reached


def test_inconclusive_state_keeps_no_value_and_records_time_and_change() -> None:
    first = run("P")
    assert first.status_changed and first.value == 0.1 and first.checked_at == NOW
    same = advance(first, PASS, 0.2, NOW + timedelta(minutes=1), 3, 3)
    assert not same.status_changed and same.name == "psi"
    gap = advance(same, INCONCLUSIVE, math.nan, NOW + timedelta(minutes=2), 3, 3)
    assert gap.status_changed and gap.value is None


def test_state_round_trips_through_status_metrics_with_current_limits() -> None:
    state = run("FFI")
    reading = state.to_reading()
    assert isinstance(reading, MetricReading)
    assert reading.model_dump(by_alias=True, exclude_none=True, mode="json")["consecutiveFailures"] == 2
    restored = MetricState.from_reading(reading, failure_limit=2, inconclusive_limit=3)
    assert restored.limit_reached  # the limit was lowered to 2 in the meantime
    after = advance(restored, FAIL, 0.5, NOW + timedelta(hours=1), 2, 3)
    assert after.consecutive_failures == 3 and after.name == "psi"


def test_observe_applies_the_checks_thresholds_and_limits() -> None:
    check = MetricCheck.model_validate(
        {"name": "psi", "templateRef": {"name": "prediction-drift-psi"}, "max": 0.25, "failureLimit": 2}
    )
    s1 = state_after(None, check, Sample.of(0.3), NOW)
    s2 = state_after(s1, check, Sample.of(0.4), NOW + timedelta(minutes=1))
    assert (s2.name, s2.status, s2.reason, s2.limit_reached) == ("psi", FAIL, r.METRIC_ABOVE_MAXIMUM, True)
    assert "value 0.4 is above the maximum 0.25" in s2.message


# --- summarize ------------------------------------------------------------------------------------


def state(name: str, readings: str, failure_limit: int = 3, inconclusive_limit: int = 3) -> MetricState:
    s = run(readings, failure_limit, inconclusive_limit)
    return MetricState(**{**s.__dict__, "name": name})


SUMMARIES = [
    # (states, Drifted status, reason, act, drifted, inconclusive, failing)
    ([], r.FALSE, r.MONITORING_NOT_CONFIGURED, False, (), (), ()),
    ([state("psi", "P"), state("errors", "PP")], r.FALSE, r.METRICS_WITHIN_THRESHOLDS, False, (), (), ()),
    ([state("psi", "FF"), state("errors", "P")], r.FALSE, drift.FAILING_BELOW_LIMIT, False, (), (), ("psi",)),
    ([state("psi", "I"), state("errors", "P")], r.FALSE, drift.INCONCLUSIVE_BELOW_LIMIT, False, (), (), ()),
    ([state("psi", "FFF"), state("errors", "P")], r.TRUE, r.DRIFT_DETECTED, True, ("psi",), (), ()),
    ([state("psi", "III"), state("errors", "P")], r.UNKNOWN, r.METRICS_INCONCLUSIVE, False, (), ("psi",), ()),
    (
        [state("psi", "FFF"), state("errors", "III")],
        r.TRUE,
        r.DRIFT_DETECTED,
        True,
        ("psi",),
        ("errors",),
        (),
    ),
    ([state("psi", "FFFIII")], r.TRUE, r.DRIFT_DETECTED, True, ("psi",), (), ()),
    ([state("psi", "FFIII")], r.UNKNOWN, r.METRICS_INCONCLUSIVE, False, (), ("psi",), ()),
    (
        [state("psi", "FF"), state("errors", "III")],
        r.UNKNOWN,
        r.METRICS_INCONCLUSIVE,
        False,
        (),
        ("errors",),
        ("psi",),
    ),
]


@pytest.mark.parametrize(
    ("states", "status", "reason", "act", "drifted", "inconclusive", "failing"), SUMMARIES
)
def test_summary_gives_drifted_condition_and_whether_to_act(
    states: list[MetricState],
    status: str,
    reason: str,
    act: bool,
    drifted: tuple[str, ...],
    inconclusive: tuple[str, ...],
    failing: tuple[str, ...],
) -> None:
    s = summarize(states)
    assert s.condition.type == r.DRIFTED
    assert (s.condition.status, s.condition.reason, s.act) == (status, reason, act)
    assert (s.drifted, s.inconclusive, s.failing) == (drifted, inconclusive, failing)


def test_drift_message_names_metric_count_limit_value_and_threshold() -> None:
    check = MetricCheck.model_validate({"name": "psi", "query": 'x{model="{{model}}"}', "max": 0.25})
    s: MetricState | None = None
    for v in (0.3, 0.35, 0.41):
        s = state_after(s, check, Sample.of(v), NOW)
    assert s is not None
    message = summarize([s]).condition.message
    assert message == "psi failed 3 checks in a row (limit 3): value 0.41 is above the maximum 0.25"


def test_inconclusive_message_gives_the_cause() -> None:
    check = MetricCheck.model_validate({"name": "psi", "query": "x", "max": 0.25, "inconclusiveLimit": 2})
    s: MetricState | None = None
    for _ in range(2):
        s = state_after(s, check, Sample.failed("unreachable", "Connection refused"), NOW)
    assert s is not None
    summary = summarize([s])
    assert summary.condition.message == (
        "psi inconclusive 2 checks in a row (limit 2): Prometheus is unreachable: Connection refused"
    )
    assert not summary.act


def test_all_pass_message_carries_no_values_so_a_steady_state_writes_nothing() -> None:
    a = summarize([state("psi", "P")]).condition
    b = summarize([MetricState(**{**state("psi", "PP").__dict__, "value": 0.2})]).condition
    assert a == b
