"""DriftExporter: the metrics a model server exports so that modelgate can watch it for drift.

A model server imports this module, builds one `DriftExporter` per served model from the reference
profile shipped with the model, and calls it on every prediction:

    exporter = DriftExporter("fraud-prod", "fraud-detector", "1.2.0", ReferenceProfile.load(path))
    exporter.observe_features({"amount": 120.5, "age": 41})
    exporter.observe_prediction(0.87)          # or exporter.observe_error() when it failed
    prometheus_client.start_http_server(9100)  # the default registry now serves the metrics

Design. The exporter is a prometheus_client custom Collector: it keeps plain counters and a sliding
window per distribution, and computes PSI only when Prometheus scrapes, so a prediction costs one
bisect and a few integer updates under a lock. The live distribution is the last `window`
observations (a count-based window: it reacts to drift within `window` predictions whatever the
traffic rate, and is deterministic in tests). PSI is exported only once the window holds
`min_samples` observations: a PSI over a handful of predictions is noise, and an absent series is
exactly what modelgate reads as "no data", never as a pass or a failure.

Exported series, each labelled namespace, model and version (the labels MetricTemplates fan out on):

    modelgate_prediction_psi                       PSI of the live prediction scores vs the reference
    modelgate_feature_psi{feature}                 PSI of each input feature named in the reference
    modelgate_prediction_bin_ratio{source,bin}     smoothed share of each score bin, source=live|reference
                                                   (lets PromQL compute PSI itself; see examples/02)
    modelgate_prediction_window_count              observations in the live window
    modelgate_predictions_total                    predictions requested, including failed ones
    modelgate_prediction_errors_total              predictions that failed
    modelgate_prediction_score_bucket{le}          live score histogram since start, on the reference edges
    modelgate_prediction_duration_seconds_bucket   prediction latency, when observe_latency is used

Several models in one process share one registry through a `DriftExporterSet`, which merges the
exporters' series into one family per metric name (a registry refuses two collectors that export the
same names, and scrapers reject a metric family split in two).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from prometheus_client.core import (
    REGISTRY,
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from modelgate.exporter.psi import DEFAULT_EPS, Bins, psi_from_shares, shares
from modelgate.exporter.reference import ReferenceHistogram, ReferenceProfile

MODEL_LABELS: Final = ("namespace", "model", "version")
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LiveWindow:
    """Bin counts of the last `size` values, kept up to date as values arrive (not thread-safe)."""

    def __init__(self, bins: Bins, size: int) -> None:
        if size < 1:
            raise ValueError("the live window needs size >= 1")
        self.bins = bins
        self.counts = [0] * bins.k
        self._recent: deque[int] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._recent)

    def add(self, x: float) -> None:
        i = self.bins.index(x)
        if i is None:
            return
        if len(self._recent) == self._recent.maxlen:
            self.counts[self._recent[0]] -= 1
        self._recent.append(i)
        self.counts[i] += 1


class _Families:
    """The metric families of one scrape; several exporters add their samples to the same ones."""

    def __init__(self) -> None:
        labels = list(MODEL_LABELS)
        self.prediction_psi = GaugeMetricFamily(
            "modelgate_prediction_psi",
            "Population stability index of live prediction scores against the training reference",
            labels=labels,
        )
        self.feature_psi = GaugeMetricFamily(
            "modelgate_feature_psi",
            "Population stability index of a live input feature against the training reference",
            labels=[*labels, "feature"],
        )
        self.bin_ratio = GaugeMetricFamily(
            "modelgate_prediction_bin_ratio",
            "Smoothed share of prediction scores in each reference bin (source: live window or reference)",
            labels=[*labels, "source", "bin"],
        )
        self.window = GaugeMetricFamily(
            "modelgate_prediction_window_count",
            "Predictions in the live window that PSI is computed over",
            labels=labels,
        )
        self.predictions = CounterMetricFamily(
            "modelgate_predictions", "Predictions requested, including failed ones", labels=labels
        )
        self.errors = CounterMetricFamily(
            "modelgate_prediction_errors", "Predictions that failed", labels=labels
        )
        self.score = HistogramMetricFamily(
            "modelgate_prediction_score",
            "Live prediction scores since start, bucketed on the reference bin edges",
            labels=labels,
        )
        self.latency = HistogramMetricFamily(
            "modelgate_prediction_duration_seconds", "Prediction latency in seconds", labels=labels
        )

    def all(self) -> list[Metric]:
        return [
            self.prediction_psi,
            self.feature_psi,
            self.bin_ratio,
            self.window,
            self.predictions,
            self.errors,
            self.score,
            self.latency,
        ]


class _Cumulative:
    """A classic Prometheus histogram: counts per upper bound, cumulative when exported."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last slot is +Inf
        self.sum = 0.0

    def observe(self, x: float) -> None:
        i = next((j for j, b in enumerate(self.bounds) if x <= b), len(self.bounds))
        self.counts[i] += 1
        self.sum += x

    def buckets(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, n in zip([*map(_le, self.bounds), "+Inf"], self.counts, strict=True):
            total += n
            out.append((bound, float(total)))
        return out


def _le(bound: float) -> str:
    return repr(float(bound))


class DriftExporter(Collector):
    """Drift metrics of one model version: record features and predictions, export PSI and counts."""

    def __init__(
        self,
        namespace: str,
        model: str,
        version: str,
        reference: ReferenceProfile | Mapping[str, Any],
        *,
        window: int = 1000,
        min_samples: int = 100,
        eps: float = DEFAULT_EPS,
        latency_buckets: Sequence[float] = LATENCY_BUCKETS,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        if not 1 <= min_samples <= window:
            raise ValueError("min_samples must be between 1 and window")
        self.labels = (namespace, model, version)
        self.reference = (
            reference if isinstance(reference, ReferenceProfile) else ReferenceProfile.from_dict(reference)
        )
        self.min_samples = min_samples
        self.eps = eps
        self._lock = threading.Lock()
        self._prediction = LiveWindow(self.reference.prediction.bins, window)
        self._features = {name: LiveWindow(h.bins, window) for name, h in self.reference.features.items()}
        self._score = _Cumulative(self.reference.prediction.bins.edges[1:])
        self._latency = _Cumulative(latency_buckets)
        self._predictions = 0
        self._errors = 0
        if registry is not None:
            registry.register(self)

    # --- recording (called by the model server, any thread) ----------------------------------------

    def observe_prediction(self, score: float) -> None:
        """One prediction was made. A NaN or infinite score counts as a failed prediction."""
        if not math.isfinite(score):
            self.observe_error()
            return
        with self._lock:
            self._predictions += 1
            self._prediction.add(score)
            self._score.observe(score)

    def observe_error(self) -> None:
        """One prediction was requested and failed."""
        with self._lock:
            self._predictions += 1
            self._errors += 1

    def observe_features(self, features: Mapping[str, float | None]) -> None:
        """The input features of one prediction. Features absent from the reference, None and NaN are
        ignored: they have no reference to be compared with."""
        with self._lock:
            for name, value in features.items():
                live = self._features.get(name)
                if live is not None and value is not None:
                    live.add(float(value))

    def observe_latency(self, seconds: float) -> None:
        """How long one prediction took."""
        with self._lock:
            self._latency.observe(seconds)

    # --- reading ------------------------------------------------------------------------------------

    def _psi(self, reference: ReferenceHistogram, live: LiveWindow) -> float | None:
        if len(live) < self.min_samples:
            return None
        return psi_from_shares(shares(reference.counts, self.eps), shares(live.counts, self.eps))

    def prediction_psi(self) -> float | None:
        """PSI of the live prediction window, or None while it holds fewer than min_samples."""
        with self._lock:
            return self._psi(self.reference.prediction, self._prediction)

    def feature_psi(self) -> dict[str, float]:
        """PSI of each feature whose live window holds at least min_samples."""
        with self._lock:
            out = {n: self._psi(self.reference.features[n], w) for n, w in self._features.items()}
        return {n: v for n, v in out.items() if v is not None}

    def add_to(self, f: _Families) -> None:
        """Add this model's samples to the families of one scrape."""
        labels = list(self.labels)
        with self._lock:
            ref = self.reference.prediction
            prediction_psi = self._psi(ref, self._prediction)
            if prediction_psi is not None:
                f.prediction_psi.add_metric(labels, prediction_psi)
                live_shares = shares(self._prediction.counts, self.eps)
                for i, share in enumerate(live_shares):
                    f.bin_ratio.add_metric([*labels, "live", str(i)], share)
            for i, share in enumerate(shares(ref.counts, self.eps)):
                f.bin_ratio.add_metric([*labels, "reference", str(i)], share)
            for name, live in sorted(self._features.items()):
                value = self._psi(self.reference.features[name], live)
                if value is not None:
                    f.feature_psi.add_metric([*labels, name], value)
            f.window.add_metric(labels, float(len(self._prediction)))
            f.predictions.add_metric(labels, float(self._predictions))
            f.errors.add_metric(labels, float(self._errors))
            f.score.add_metric(labels, self._score.buckets(), self._score.sum)
            f.latency.add_metric(labels, self._latency.buckets(), self._latency.sum)

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        self.add_to(families)
        yield from families.all()


class DriftExporterSet(Collector):
    """Several DriftExporters (one per model) served from one registry, one family per metric name."""

    def __init__(
        self, exporters: Iterable[DriftExporter] = (), *, registry: CollectorRegistry | None = REGISTRY
    ) -> None:
        self._lock = threading.Lock()
        self._exporters: dict[tuple[str, str, str], DriftExporter] = {}
        for e in exporters:
            self.add(e)
        if registry is not None:
            registry.register(self)

    def add(self, exporter: DriftExporter) -> DriftExporter:
        """Serve `exporter` too; build it with registry=None. Replaces one with the same labels."""
        with self._lock:
            self._exporters[exporter.labels] = exporter
        return exporter

    def remove(self, namespace: str, model: str, version: str) -> None:
        with self._lock:
            self._exporters.pop((namespace, model, version), None)

    def __iter__(self) -> Iterator[DriftExporter]:
        with self._lock:
            return iter(list(self._exporters.values()))

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        for exporter in self:
            exporter.add_to(families)
        yield from families.all()
