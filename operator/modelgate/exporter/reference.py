"""Reference distributions from training: what a model's live inputs and outputs are compared with.

A `ReferenceProfile` holds one `ReferenceHistogram` (bin edges and counts) for the prediction score
and one per input feature. It is computed once, where the training data is (`fit`), shipped with the
model as JSON (`to_dict` / `from_dict` / `load`), and loaded by the model server's exporter.

    {
      "prediction": {"edges": [0.0, 0.1, ..., 1.0], "counts": [812, 1034, ...]},
      "features": {
        "age":    {"edges": [18, 25, 32, ...], "counts": [...]},
        "income": {"edges": [...], "counts": [...]}
      }
    }

`edges` has one more entry than `counts`; see `modelgate.exporter.psi.Bins` for how values fall
into bins (the outer bins are open-ended).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelgate.exporter.psi import Bins


@dataclass(frozen=True)
class ReferenceHistogram:
    """Training counts over bins."""

    bins: Bins
    counts: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.counts) != self.bins.k:
            raise ValueError(
                f"{len(self.bins.edges)} edges need {self.bins.k} counts, got {len(self.counts)}"
            )
        if any(c < 0 or not math.isfinite(c) for c in self.counts):
            raise ValueError(f"reference counts must be finite and non-negative, got {list(self.counts)}")
        if sum(self.counts) <= 0:
            raise ValueError("a reference histogram needs at least one observation")

    @classmethod
    def fit(cls, values: Sequence[float], k: int = 10, bins: Bins | None = None) -> ReferenceHistogram:
        """Counts of `values` over `bins`, by default about-equal-share (quantile) bins."""
        bins = bins or Bins.quantiles(values, k)
        return cls(bins, tuple(float(c) for c in bins.count(values)))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceHistogram:
        try:
            edges, counts = d["edges"], d["counts"]
        except KeyError as e:
            raise ValueError(f"a reference histogram needs {e.args[0]!r}") from None
        return cls(Bins(tuple(float(e) for e in edges)), tuple(float(c) for c in counts))

    def to_dict(self) -> dict[str, list[float]]:
        return {"edges": list(self.bins.edges), "counts": list(self.counts)}


@dataclass(frozen=True)
class ReferenceProfile:
    """The prediction histogram and the feature histograms of one model version's training data."""

    prediction: ReferenceHistogram
    features: Mapping[str, ReferenceHistogram] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, predictions: Sequence[float], features: Mapping[str, Sequence[float]] | None = None, k: int = 10
    ) -> ReferenceProfile:
        """Quantile-binned histograms of training predictions and feature columns."""
        return cls(
            ReferenceHistogram.fit(predictions, k),
            {name: ReferenceHistogram.fit(values, k) for name, values in (features or {}).items()},
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        if "prediction" not in d:
            raise ValueError("a reference profile needs 'prediction'")
        features = d.get("features") or {}
        return cls(
            ReferenceHistogram.from_dict(d["prediction"]),
            {str(name): ReferenceHistogram.from_dict(h) for name, h in features.items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile from a JSON file."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "prediction": self.prediction.to_dict(),
            "features": {name: h.to_dict() for name, h in sorted(self.features.items())},
        }
