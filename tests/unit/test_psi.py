"""PSI against hand-computed values, its basic properties, and the binning rules."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.exporter.psi import Bins, psi, shares


def test_worked_example_from_the_field_notes() -> None:
    assert round(psi([100, 200, 400, 200, 100], [50, 150, 350, 300, 150]), 4) == 0.1165


def test_identical_distributions_give_zero() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == 0.0
    assert psi([10, 20, 30], [100, 200, 300]) == pytest.approx(0.0, abs=1e-9)  # same shares, eps aside


def test_two_bins_hand_computed() -> None:
    # e = (0.5, 0.5), a = (0.8, 0.2): 0.3*ln(1.6) + (-0.3)*ln(0.4) = 0.3*ln(4) = 0.415888...
    assert psi([50, 50], [80, 20], eps=0) == pytest.approx(0.3 * math.log(4), rel=1e-12)


def test_four_bins_hand_computed() -> None:
    # e = 0.25 each, a = (0.1, 0.2, 0.3, 0.4)
    expected = sum((a - 0.25) * math.log(a / 0.25) for a in (0.1, 0.2, 0.3, 0.4))
    assert expected == pytest.approx(0.228_217, abs=1e-6)
    assert psi([25, 25, 25, 25], [10, 20, 30, 40], eps=0) == pytest.approx(expected, rel=1e-12)


def test_smoothing_keeps_an_empty_live_bin_finite_and_large() -> None:
    value = psi([50, 50], [100, 0])
    assert math.isfinite(value) and value > 4


def test_smoothing_shares_match_the_formula() -> None:
    # (c_i + eps) / (C + k*eps) with eps = 0.5: (1.5/4, 2.5/4)
    assert shares([1, 2], eps=0.5) == [0.375, 0.625]


@pytest.mark.parametrize(
    ("reference", "live", "message"),
    [
        ([1, 2], [1, 2, 3], "bins"),
        ([], [], "at least one bin"),
        ([1, -1], [1, 1], "non-negative"),
        ([1, 0], [1, 1], "eps"),
    ],
)
def test_invalid_inputs_are_refused(reference: list[float], live: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        psi(reference, live, eps=0 if message == "eps" else 1e-4)


counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=20)


@given(counts, st.data())
def test_psi_is_non_negative_and_symmetric(reference: list[int], data: st.DataObject) -> None:
    live = data.draw(st.lists(st.integers(0, 10_000), min_size=len(reference), max_size=len(reference)))
    value = psi(reference, live)
    assert value >= 0
    assert value == pytest.approx(psi(live, reference), rel=1e-9, abs=1e-12)


# --- bins -----------------------------------------------------------------------------------------


def test_values_fall_into_half_open_bins_and_outer_bins_are_open_ended() -> None:
    bins = Bins((0.0, 1.0, 2.0, 3.0))
    assert [bins.index(x) for x in (-5, 0, 0.5, 1.0, 2.999, 3.0, 99)] == [0, 0, 0, 1, 2, 2, 2]
    assert bins.index(math.nan) is None
    assert bins.count([0.5, 1.5, 1.7, math.nan, 10]) == [1, 2, 1]


def test_quantile_bins_hold_about_equal_shares() -> None:
    values = [i / 1000 for i in range(1000)]
    bins = Bins.quantiles(values, k=4)
    assert bins.k == 4
    assert bins.count(values) == [250, 250, 250, 250]


def test_quantile_bins_merge_ties() -> None:
    assert Bins.quantiles([1, 1, 1, 1, 2, 3], k=4).edges == (1, 2, 3)


def test_uniform_bins() -> None:
    assert Bins.uniform(0, 1, 4).edges == (0, 0.25, 0.5, 0.75, 1)


@pytest.mark.parametrize("edges", [(1.0,), (0.0, 0.0), (1.0, 0.0), (0.0, math.inf)])
def test_bad_edges_are_refused(edges: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        Bins(edges)
