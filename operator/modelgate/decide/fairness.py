"""Fairness: an evaluated metric must hold on every slice of the dataset, not only on the whole.

A policy's evaluation requirement may add `slices` (api/v1alpha1/policy.py SliceRequirement); the
evaluation that decides the requirement (the newest on its dataset, decide/evaluations.py) is then
also judged by the slices it reports (ModelEvaluation spec.slices), in this order:

1. every `required` slice is reported, with the metric, and with at least `minSize` examples;
2. slices with fewer than `minSize` examples are set aside, and the message says which;
3. every remaining slice is within `min` and `max` (the worst one is named);
4. the best minus the worst is at most `maxGap` (both are named, with their values).

A requirement with bounds but no slice to apply them to blocks: a policy that asks for slices is
not met by an evaluation that reports none. Every check that ran is listed in the message, so
`modelgate status` shows each one. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import EvaluationSlice, SliceRequirement

TOLERANCE: Final = 1e-12
"""Rounding slack of a difference of two floats (0.95 - 0.90 is 0.04999999999999993)."""


def _num(value: float) -> str:
    value = round(value, 10)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def describe_slices(req: SliceRequirement) -> str:
    """ "per slice: >= 0.85, gap <= 0.05, slices a, b required, slices under 100 ignored"."""
    parts = []
    if req.min is not None:
        parts.append(f">= {_num(req.min)}")
    if req.max is not None:
        parts.append(f"<= {_num(req.max)}")
    if req.max_gap is not None:
        parts.append(f"gap <= {_num(req.max_gap)}")
    if req.required:
        parts.append(f"slices {', '.join(req.required)} required")
    if req.min_size is not None:
        parts.append(f"slices under {req.min_size} examples ignored")
    return "per slice: " + (", ".join(parts) or "reported")


def _value(s: EvaluationSlice, metric: str) -> float | None:
    value = s.metrics.get(metric)
    return None if value is None or math.isnan(value) else value


def check_slices(
    evaluation: str, slices: Sequence[EvaluationSlice], metric: str, req: SliceRequirement
) -> tuple[str, str]:
    """(reason, message) of the slice checks on one evaluation: EVALUATIONS_PASSED when all hold,
    else the reason of the first that fails; the message lists every check."""
    by_name = {s.name: s for s in slices}
    small = [s for s in slices if req.min_size is not None and s.size < req.min_size]
    set_aside = {s.name for s in small}
    missing = [_missing(n, by_name.get(n), metric, req) for n in req.required]
    missing = [m for m in missing if m]
    considered = [
        (s.name, v) for s in slices if s.name not in set_aside and (v := _value(s, metric)) is not None
    ]
    notes = []
    if small:
        names = ", ".join(f"{s.name} ({s.size})" for s in small)
        notes.append(f"ignored {len(small)} slice(s) smaller than minSize {req.min_size}: {names}")
    silent = [s.name for s in slices if s.name not in set_aside and _value(s, metric) is None]
    if silent:
        notes.append(f"ignored {len(silent)} slice(s) not reporting {metric}: {', '.join(silent)}")
    prefix = f"slices of ModelEvaluation {evaluation}: "
    if missing:
        return r.SLICE_MISSING, prefix + "; ".join(missing + notes)
    checks, failed = _bounds(considered, metric, req)
    if not considered and (req.min is not None or req.max is not None or req.max_gap is not None):
        return r.SLICE_MISSING, prefix + "; ".join([f"no slice reports {metric}", *notes])
    if req.required:
        checks.insert(0, f"required {', '.join(req.required)} reported")
    reason = failed[0] if failed else r.EVALUATIONS_PASSED
    return reason, prefix + "; ".join(checks + notes)


def _missing(name: str, found: EvaluationSlice | None, metric: str, req: SliceRequirement) -> str:
    if found is None:
        return f"required slice {name} is missing"
    if _value(found, metric) is None:
        return f"required slice {name} does not report {metric}"
    if req.min_size is not None and found.size < req.min_size:
        return f"required slice {name} has {found.size} examples, fewer than minSize {req.min_size}"
    return ""


def _bounds(
    considered: list[tuple[str, float]], metric: str, req: SliceRequirement
) -> tuple[list[str], list[str]]:
    """The min, max and maxGap checks over the slices considered: (check texts, failed reasons)."""
    if not considered:
        return [], []
    worst = min(considered, key=lambda nv: (nv[1], nv[0]))
    best = max(considered, key=lambda nv: (nv[1], nv[0]))
    checks: list[str] = []
    failed: list[str] = []
    if req.min is not None:
        if worst[1] < req.min:
            checks.append(
                f"{metric} {_num(worst[1])} on slice {worst[0]} is below the minimum {_num(req.min)}"
            )
            failed.append(r.SLICE_BELOW_MINIMUM)
        else:
            checks.append(
                f"{metric} >= {_num(req.min)} on all {len(considered)} (lowest {worst[0]} {_num(worst[1])})"
            )
    if req.max is not None:
        if best[1] > req.max:
            checks.append(f"{metric} {_num(best[1])} on slice {best[0]} is above the maximum {_num(req.max)}")
            failed.append(r.SLICE_ABOVE_MAXIMUM)
        else:
            checks.append(
                f"{metric} <= {_num(req.max)} on all {len(considered)} (highest {best[0]} {_num(best[1])})"
            )
    if req.max_gap is not None:
        gap = best[1] - worst[1]
        between = f"between {best[0]} ({_num(best[1])}) and {worst[0]} ({_num(worst[1])})"
        if gap > req.max_gap + TOLERANCE:
            checks.append(f"{metric} gap {_num(gap)} {between} exceeds maxGap {_num(req.max_gap)}")
            failed.append(r.SLICE_GAP_EXCEEDED)
        else:
            checks.append(f"{metric} gap {_num(gap)} {between} within maxGap {_num(req.max_gap)}")
    return checks, failed
