"""DriftExporter: what a scrape shows after recording features and predictions."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelgate.exporter import (
    DriftExporter,
    DriftExporterSet,
    ReferenceHistogram,
    ReferenceProfile,
    psi,
)

LABELS = {"namespace": "fraud-prod", "model": "fraud-detector", "version": "1.0.0"}
# Reference: 5 score bins on [0, 1] with the field notes' counts, one feature "amount" with 2 bins.
REFERENCE = {
    "prediction": {"edges": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "counts": [100, 200, 400, 200, 100]},
    "features": {"amount": {"edges": [0, 100, 1000], "counts": [50, 50]}},
}
MIDPOINTS = [0.1, 0.3, 0.5, 0.7, 0.9]


def scrape(registry: CollectorRegistry) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> sorted label items -> value, from the text exposition a scraper sees."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def one(samples: dict[tuple[tuple[str, str], ...], float], **extra: str) -> float:
    return samples[tuple(sorted({**LABELS, **extra}.items()))]


def exporter(**kwargs: int) -> tuple[DriftExporter, CollectorRegistry]:
    registry = CollectorRegistry()
    e = DriftExporter(
        *LABELS.values(), REFERENCE, registry=registry, **{"window": 1000, "min_samples": 10, **kwargs}
    )
    return e, registry


def feed(e: DriftExporter, counts: list[int]) -> None:
    for score, n in zip(MIDPOINTS, counts, strict=True):
        for _ in range(n):
            e.observe_prediction(score)


def test_prediction_psi_matches_the_worked_example() -> None:
    e, registry = exporter()
    feed(e, [50, 150, 350, 300, 150])
    value = one(scrape(registry)["modelgate_prediction_psi"])
    assert round(value, 4) == 0.1165
    assert value == pytest.approx(psi([100, 200, 400, 200, 100], [50, 150, 350, 300, 150]))


def test_live_like_reference_gives_zero_psi() -> None:
    e, registry = exporter()
    feed(e, [1, 2, 4, 2, 1])
    assert one(scrape(registry)["modelgate_prediction_psi"]) == pytest.approx(0.0, abs=1e-9)


def test_no_psi_series_until_min_samples_so_the_operator_sees_no_data() -> None:
    e, registry = exporter(min_samples=10)
    feed(e, [1, 2, 3, 2, 1])  # 9 predictions
    metrics = scrape(registry)
    assert "modelgate_prediction_psi" not in metrics
    assert one(metrics["modelgate_prediction_window_count"]) == 9
    e.observe_prediction(0.5)
    assert "modelgate_prediction_psi" in scrape(registry)
    assert e.prediction_psi() is not None


def test_window_keeps_only_the_latest_predictions() -> None:
    e, registry = exporter(window=100, min_samples=10)
    feed(e, [0, 0, 0, 0, 100])  # everything in the top bin: huge PSI
    assert e.prediction_psi() is not None and e.prediction_psi() > 1  # type: ignore[operator]
    feed(e, [10, 20, 40, 20, 10])  # the window now holds only reference-like traffic
    assert one(scrape(registry)["modelgate_prediction_psi"]) == pytest.approx(0.0, abs=1e-9)
    assert one(scrape(registry)["modelgate_prediction_window_count"]) == 100


def test_counts_predictions_and_errors_including_non_finite_scores() -> None:
    e, registry = exporter()
    feed(e, [1, 1, 1, 1, 1])
    e.observe_error()
    e.observe_prediction(math.nan)
    metrics = scrape(registry)
    assert one(metrics["modelgate_predictions_total"]) == 7
    assert one(metrics["modelgate_prediction_errors_total"]) == 2
    assert one(metrics["modelgate_prediction_window_count"]) == 5


def test_feature_psi_per_reference_feature_and_unknown_features_ignored() -> None:
    e, registry = exporter()
    for i in range(100):
        e.observe_features({"amount": 50 if i < 80 else 500, "unknown": 1.0, "missing": None})
    # reference 50/50, live 80/20 over the two bins
    value = one(scrape(registry)["modelgate_feature_psi"], feature="amount")
    assert value == pytest.approx(psi([50, 50], [80, 20]))
    assert set(e.feature_psi()) == {"amount"}


def test_live_score_histogram_is_cumulative_on_the_reference_edges() -> None:
    e, registry = exporter()
    feed(e, [1, 2, 3, 0, 0])
    e.observe_prediction(1.5)  # above the last edge: only +Inf
    buckets = scrape(registry)["modelgate_prediction_score_bucket"]
    assert [one(buckets, le=le) for le in ("0.2", "0.4", "0.6", "0.8", "1.0", "+Inf")] == [1, 3, 6, 6, 6, 7]
    assert one(scrape(registry)["modelgate_prediction_score_count"]) == 7


def test_latency_histogram() -> None:
    e, registry = exporter()
    e.observe_latency(0.02)
    e.observe_latency(0.3)
    metrics = scrape(registry)
    assert one(metrics["modelgate_prediction_duration_seconds_bucket"], le="0.025") == 1
    assert one(metrics["modelgate_prediction_duration_seconds_count"]) == 2


def test_bin_ratios_let_promql_compute_the_same_psi() -> None:
    e, registry = exporter()
    feed(e, [50, 150, 350, 300, 150])
    ratios = scrape(registry)["modelgate_prediction_bin_ratio"]
    live = [one(ratios, source="live", bin=str(i)) for i in range(5)]
    ref = [one(ratios, source="reference", bin=str(i)) for i in range(5)]
    promql_psi = sum((a - r) * math.log(a / r) for a, r in zip(live, ref, strict=True))
    assert promql_psi == pytest.approx(one(scrape(registry)["modelgate_prediction_psi"]), rel=1e-9)


def test_two_exporters_cannot_share_a_registry_but_a_set_merges_them() -> None:
    registry = CollectorRegistry(auto_describe=True)
    DriftExporter("a", "m", "1", REFERENCE, registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        DriftExporter("b", "m", "1", REFERENCE, registry=registry)

    registry = CollectorRegistry(auto_describe=True)
    models = DriftExporterSet(registry=registry)
    for ns in ("a", "b"):
        feed(
            models.add(DriftExporter(ns, "m", "1", REFERENCE, registry=None, min_samples=10)), [2, 2, 2, 2, 2]
        )
    text = generate_latest(registry).decode()
    assert text.count("# TYPE modelgate_prediction_psi gauge") == 1
    psis = scrape(registry)["modelgate_prediction_psi"]
    assert {dict(k)["namespace"] for k in psis} == {"a", "b"}


def test_reference_round_trips_through_json(tmp_path: Path) -> None:
    profile = ReferenceProfile.from_dict(REFERENCE)
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(profile.to_dict()))
    assert ReferenceProfile.load(path) == profile


def test_reference_fit_bins_training_data_by_quantiles() -> None:
    profile = ReferenceProfile.fit([i / 100 for i in range(100)], {"x": list(range(100))}, k=4)
    assert profile.prediction.counts == (25.0, 25.0, 25.0, 25.0)
    assert profile.features["x"].bins.k == 4


@pytest.mark.parametrize(
    ("histogram", "message"),
    [
        ({"edges": [0, 1, 2]}, "'counts'"),
        ({"edges": [0, 1, 2], "counts": [1]}, "need 2 counts"),
        ({"edges": [0, 1], "counts": [0]}, "at least one observation"),
        ({"edges": [1, 0], "counts": [1]}, "increasing"),
    ],
)
def test_invalid_reference_histograms_are_refused(histogram: dict[str, list[float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReferenceHistogram.from_dict(histogram)


def test_reference_needs_a_prediction_histogram() -> None:
    with pytest.raises(ValueError, match="prediction"):
        ReferenceProfile.from_dict({"features": {}})
