"""Small line charts as inline SVG, drawn on the server: no charting script, no CDN.

Only numbers reach the markup (coordinates and formatted axis labels), so nothing needs escaping
beyond what `format_html` does for the labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 480, 150
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 22


@dataclass(frozen=True)
class Series:
    """One line: a value (or None, a gap) per bucket; `css` picks its colour."""

    label: str
    values: Sequence[float | None]
    css: str = "os-line"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _label(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def line_chart(
    series: Sequence[Series], *, x_labels: Sequence[str], title: str, unit: str = ""
) -> SafeString:
    """An SVG line chart of equally spaced buckets with a y axis from 0 to a round maximum."""
    buckets = max((len(s.values) for s in series), default=0)
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top = _nice_max(float(peak))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / max(buckets - 1, 1))

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * (v / top)

    lines = []
    for s in series:
        segments: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                segments.append([])
            else:
                segments[-1].append(f"{x(i):.1f},{y(float(v)):.1f}")
        for points in segments:
            if len(points) == 1:
                cx, cy = points[0].split(",")
                lines.append(
                    format_html('<circle class="{}" cx="{}" cy="{}" r="1.5"></circle>', s.css, cx, cy)
                )
            elif points:
                lines.append(
                    format_html('<polyline class="{}" points="{}"></polyline>', s.css, " ".join(points))
                )
    grid = format_html_join(
        "",
        '<line class="os-axis" x1="{}" x2="{}" y1="{}" y2="{}"></line><text x="{}" y="{}" text-anchor="end">{}</text>',
        (
            (
                LEFT,
                WIDTH - RIGHT,
                f"{y(top * f):.1f}",
                f"{y(top * f):.1f}",
                LEFT - 4,
                f"{y(top * f) + 3:.1f}",
                _label(top * f) + unit,
            )
            for f in (0, 0.5, 1)
        ),
    )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        ((f"{x(i):.1f}", HEIGHT - 6, label) for i, label in enumerate(x_labels) if label and buckets),
    )
    return format_html(
        '<svg viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        title,
        grid,
        ticks,
        SafeString("".join(lines)),
    )
