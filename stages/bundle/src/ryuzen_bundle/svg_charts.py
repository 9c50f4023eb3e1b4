"""Small inline SVG charts for the offline report: no script, no font files, no network.

Each function returns one ``<svg>`` element as text. Every label is escaped, so a model
id can never inject markup into the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 760
HEIGHT = 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 170, 16, 36
# Colour-blind-safe palette (Okabe-Ito), then grey for "other".
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
OTHER_COLOUR = "#999999"


@dataclass(frozen=True)
class Series:
    """One named line or bar stack: a value (or None) per x position."""

    label: str
    values: Sequence[float | None]
    colour: str


def _nice_max(value: float) -> float:
    if value <= 0 or not math.isfinite(value):
        return 1.0
    magnitude = float(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _number(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.3g}%"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.3g}k"
    return f"{value:.4g}"


def _frame(title: str, x_labels: Sequence[str], y_max: float, unit: str) -> list[str]:
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="#fff" stroke="#ccc"/>',
    ]
    for tick in range(5):
        value = y_max * tick / 4
        y = _TOP + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#eee"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11">{escape(_number(value, unit))}</text>'
        )
    count = len(x_labels)
    every = max(1, math.ceil(count / 16))
    for index, label in enumerate(x_labels):
        if index % every:
            continue
        x = _x(index, count)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - _BOTTOM + 16}" text-anchor="middle" '
            f'font-size="11">{escape(label)}</text>'
        )
    return parts


def _x(index: int, count: int) -> float:
    plot_w = WIDTH - _LEFT - _RIGHT
    return _LEFT + plot_w * (index + 0.5) / max(count, 1)


def _y(value: float, y_max: float) -> float:
    plot_h = HEIGHT - _TOP - _BOTTOM
    return _TOP + plot_h - plot_h * min(value, y_max) / y_max


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    for index, item in enumerate(series[:14]):
        y = _TOP + 8 + index * 17
        x = WIDTH - _RIGHT + 12
        label = item.label if len(item.label) <= 22 else item.label[:21] + "…"
        parts.append(
            f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{item.colour}"/>'
            f'<text x="{x + 15}" y="{y + 1}" font-size="11">{escape(label)}</text>'
        )
    return parts


def line_chart(title: str, x_labels: Sequence[str], series: Sequence[Series], unit: str) -> str:
    """Lines (one per series) over the x positions; gaps where a value is None."""
    finite = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    y_max = _nice_max(max(finite, default=0.0))
    parts = _frame(title, x_labels, y_max, unit)
    count = len(x_labels)
    for item in series:
        runs: list[list[str]] = [[]]
        for index, value in enumerate(item.values):
            if value is None or not math.isfinite(value):
                runs.append([])
                continue
            runs[-1].append(f"{_x(index, count):.1f},{_y(value, y_max):.1f}")
        for run in runs:
            if len(run) == 1:
                x, y = run[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{item.colour}"/>')
            elif run:
                parts.append(
                    f'<polyline fill="none" stroke="{item.colour}" stroke-width="1.8" '
                    f'points="{" ".join(run)}"/>'
                )
    parts += _legend(series)
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar_chart(
    title: str, x_labels: Sequence[str], series: Sequence[Series], unit: str = ""
) -> str:
    """Bars stacked per x position, one segment per series."""
    count = len(x_labels)
    totals = [sum((s.values[i] or 0.0) for s in series) for i in range(count)]
    y_max = _nice_max(max(totals, default=0.0))
    parts = _frame(title, x_labels, y_max, unit)
    plot_w = WIDTH - _LEFT - _RIGHT
    bar_w = max(1.0, plot_w / max(count, 1) * 0.7)
    for index in range(count):
        base = 0.0
        for item in series:
            value = item.values[index] or 0.0
            if value <= 0:
                continue
            top = _y(base + value, y_max)
            bottom = _y(base, y_max)
            parts.append(
                f'<rect x="{_x(index, count) - bar_w / 2:.1f}" y="{top:.1f}" '
                f'width="{bar_w:.1f}" height="{max(bottom - top, 0.5):.1f}" '
                f'fill="{item.colour}"/>'
            )
            base += value
    parts += _legend(series)
    parts.append("</svg>")
    return "".join(parts)
