"""Population Stability Index over binned distributions, and the binning itself. Pure, no I/O.

PSI compares a live distribution with a reference (training) one over the same k bins:

    e_i = (r_i + eps) / (R + k*eps)      reference share of bin i (R = sum of r_i)
    a_i = (c_i + eps) / (C + k*eps)      live share of bin i      (C = sum of c_i)
    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

`eps` is a pseudo-count added to every bin so that an empty bin on either side gives a large but
finite PSI instead of a division by zero. It is small (1e-4) so that it does not move the index for
realistic counts: reference [100, 200, 400, 200, 100] against live [50, 150, 350, 300, 150] gives
0.1165. Every term is >= 0, so PSI >= 0, and PSI == 0 exactly when the shares are equal. The common
reading is < 0.1 stable, 0.1 to 0.25 moderate shift, > 0.25 major shift.

`Bins` are k+1 increasing edges. Bin i holds edges[i] <= x < edges[i+1]; the last bin also holds its
upper edge. The outer bins are open-ended: a value below edges[0] falls into the first bin and one
above edges[-1] into the last, so every finite value lands in exactly one bin (a live distribution
that moves out of the training range piles up in an outer bin, which PSI sees). NaN has no bin.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

DEFAULT_EPS: Final = 1e-4

STABLE: Final = 0.1
"""Below this PSI the distribution is commonly read as stable."""
MAJOR_SHIFT: Final = 0.25
"""Above this PSI the distribution is commonly read as having shifted a lot."""


def shares(counts: Sequence[float], eps: float = DEFAULT_EPS) -> list[float]:
    """The smoothed share of each bin: (c_i + eps) / (C + k*eps)."""
    if not counts:
        raise ValueError("PSI needs at least one bin")
    if any(c < 0 or not math.isfinite(c) for c in counts):
        raise ValueError(f"bin counts must be finite and non-negative, got {list(counts)}")
    if eps < 0 or (eps == 0 and 0 in counts):
        raise ValueError("eps must be > 0 when a bin is empty (and never negative)")
    total = sum(counts) + len(counts) * eps
    if total <= 0:
        raise ValueError("PSI needs at least one observation or eps > 0")
    return [(c + eps) / total for c in counts]


def psi_from_shares(expected: Sequence[float], actual: Sequence[float]) -> float:
    """sum (a_i - e_i) * ln(a_i / e_i) over shares that are all > 0."""
    if len(expected) != len(actual):
        raise ValueError(f"reference has {len(expected)} bins, live has {len(actual)}")
    return math.fsum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True))


def psi(reference: Sequence[float], live: Sequence[float], eps: float = DEFAULT_EPS) -> float:
    """PSI of live bin counts against reference bin counts (same bins, same order)."""
    if len(reference) != len(live):
        raise ValueError(f"reference has {len(reference)} bins, live has {len(live)}")
    return psi_from_shares(shares(reference, eps), shares(live, eps))


@dataclass(frozen=True)
class Bins:
    """k bins given by k+1 strictly increasing finite edges; the outer bins are open-ended."""

    edges: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.edges) < 2:
            raise ValueError("bins need at least two edges")
        if not all(math.isfinite(e) for e in self.edges):
            raise ValueError(f"bin edges must be finite, got {list(self.edges)}")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError(f"bin edges must be strictly increasing, got {list(self.edges)}")

    @property
    def k(self) -> int:
        return len(self.edges) - 1

    def index(self, x: float) -> int | None:
        """The bin of x (clamped into the outer bins), or None for NaN."""
        if math.isnan(x):
            return None
        return min(max(bisect.bisect_right(self.edges, x) - 1, 0), self.k - 1)

    def count(self, values: Sequence[float]) -> list[int]:
        """Counts per bin of `values` (NaN ignored)."""
        counts = [0] * self.k
        for x in values:
            i = self.index(x)
            if i is not None:
                counts[i] += 1
        return counts

    @classmethod
    def quantiles(cls, values: Sequence[float], k: int = 10) -> Bins:
        """Up to k bins holding about equal shares of `values` (ties merge bins), spanning their range."""
        finite = sorted(x for x in values if math.isfinite(x))
        if len(finite) < 2 or finite[0] == finite[-1]:
            raise ValueError("quantile bins need at least two distinct finite values")
        if k < 1:
            raise ValueError("k must be >= 1")
        cuts = [finite[(len(finite) * i) // k] for i in range(1, k)]
        edges = sorted({finite[0], *cuts, finite[-1]})
        return cls(tuple(edges))

    @classmethod
    def uniform(cls, low: float, high: float, k: int = 10) -> Bins:
        """k bins of equal width between low and high."""
        if not high > low or k < 1:
            raise ValueError("uniform bins need high > low and k >= 1")
        step = (high - low) / k
        return cls(tuple([low + i * step for i in range(k)] + [high]))
