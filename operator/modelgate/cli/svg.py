"""Inline SVG line charts of a metric over time against its thresholds, for the HTML report. Pure.

A chart is drawn from numbers only: no script, no fonts or images fetched, every text escaped, so
the page it sits in can be attached to a ticket and printed. The y axis always takes in the
thresholds, so a reader sees how far the values stayed from them; the region past a threshold is
shaded. A series is broken where samples are missing (more than two steps apart), so a scrape or
Prometheus outage shows as a gap, not as a straight line across it. One point is drawn as a dot;
no point at all is not a chart: the caller shows why there is no data instead.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

WIDTH: Final = 720
HEIGHT: Final = 220
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 12, 30
COLOURS: Final = ("#1f5fbf", "#2e8b57", "#8e44ad", "#b35c00", "#555555")
THRESHOLD: Final = "#b03a2e"
SECONDS_UNDER: Final = 3600.0
"""Time ticks show seconds on charts shorter than this (a young model), minutes otherwise."""
DOTS_UP_TO: Final = 40
"""Series with at most this many points also get a dot per point."""


@dataclass(frozen=True)
class Line:
    label: str
    points: tuple[tuple[float, float], ...]
    """(unix time, value), in time order, finite values only."""


@dataclass(frozen=True)
class Chart:
    title: str
    lines: tuple[Line, ...]
    start: float
    end: float
    step: float
    """Seconds between samples asked for; points further than two steps apart are not joined."""
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Scale:
    """Maps (time, value) to SVG coordinates inside the plot area."""

    t0: float
    t1: float
    v0: float
    v1: float

    def x(self, t: float) -> float:
        return LEFT + (t - self.t0) / (self.t1 - self.t0) * (WIDTH - LEFT - RIGHT)

    def y(self, v: float) -> float:
        return TOP + (self.v1 - v) / (self.v1 - self.v0) * (HEIGHT - TOP - BOTTOM)


def value_range(values: Sequence[float]) -> tuple[float, float]:
    """A range holding every value with some room, never empty (one value, or all equal)."""
    lo, hi = min(values), max(values)
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def scale(chart: Chart) -> Scale:
    values = [v for line in chart.lines for _, v in line.points]
    values += [t for t in (chart.min, chart.max) if t is not None]
    v0, v1 = value_range(values or [0.0])
    t0, t1 = chart.start, chart.end
    if t1 <= t0:
        t1 = t0 + 1.0
    return Scale(t0, t1, v0, v1)


def segments(points: Sequence[tuple[float, float]], step: float) -> list[list[tuple[float, float]]]:
    """The points split where consecutive samples are more than two steps apart."""
    out: list[list[tuple[float, float]]] = []
    for p in points:
        if out and p[0] - out[-1][-1][0] <= 2 * step:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values between lo and hi for the y axis (1, 2 or 5 times a power of ten apart)."""
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


def number(v: float) -> str:
    return f"{v:.4g}"


def clock(t: float, with_date: bool = False, seconds: bool = False) -> str:
    when = dt.datetime.fromtimestamp(t, dt.UTC)
    return when.strftime(("%Y-%m-%d " if with_date else "") + ("%H:%M:%S" if seconds else "%H:%M"))


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "tick") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">{escape(text)}</text>'


def _axes(s: Scale) -> list[str]:
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{width}" height="{height}" class="plot"/>']
    for v in nice_ticks(s.v0, s.v1):
        y = s.y(v)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(_text(LEFT - 6, y + 4, number(v), "end"))
    short = s.t1 - s.t0 < SECONDS_UNDER
    for i in range(5):
        t = s.t0 + (s.t1 - s.t0) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(_text(s.x(t), HEIGHT - 10, clock(t, with_date=i == 0, seconds=short), anchor))
    return out


def _thresholds(chart: Chart, s: Scale) -> list[str]:
    out = []
    right, top, bottom = WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    if chart.max is not None:
        y = s.y(chart.max)
        out.append(
            f'<rect x="{LEFT}" y="{top}" width="{right - LEFT}" height="{y - top:.1f}" class="breach"/>'
        )
        out.append(f'<line x1="{LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="threshold"/>')
        out.append(_text(right - 4, y - 4, f"max {number(chart.max)}", "end", "threshold-label"))
    if chart.min is not None:
        y = s.y(chart.min)
        out.append(
            f'<rect x="{LEFT}" y="{y:.1f}" width="{right - LEFT}" height="{bottom - y:.1f}" class="breach"/>'
        )
        out.append(f'<line x1="{LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="threshold"/>')
        out.append(_text(right - 4, y + 12, f"min {number(chart.min)}", "end", "threshold-label"))
    return out


def _series(line: Line, colour: str, chart: Chart, s: Scale) -> list[str]:
    out = []
    for seg in segments(line.points, chart.step):
        coords = " ".join(f"{s.x(t):.1f},{s.y(v):.1f}" for t, v in seg)
        if len(seg) > 1:
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" class="series"/>')
    if len(line.points) <= DOTS_UP_TO:
        out += [
            f'<circle cx="{s.x(t):.1f}" cy="{s.y(v):.1f}" r="3" fill="{colour}"/>' for t, v in line.points
        ]
    return out


def colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def render(chart: Chart) -> str:
    """The chart as an inline <svg> element that scales to its container's width."""
    s = scale(chart)
    parts = _axes(s) + _thresholds(chart, s)
    for i, line in enumerate(chart.lines):
        parts += _series(line, colour(i), chart, s)
    label = f"{chart.title} from {clock(s.t0, True)} to {clock(s.t1, True)} UTC"
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" class="chart">'
        f"<title>{escape(label)}</title>{''.join(parts)}</svg>"
    )
