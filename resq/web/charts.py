"""The overview's chart: jobs processed and failed per minute over the last hour, as server-made SVG.

Colours come from the stylesheet (classes ``chart-processed``, ``chart-failed``, ``chart-axis``), so the
chart follows the light and dark themes; ``live.js`` moves the two polylines with :func:`chart_points`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["HEIGHT", "WIDTH", "chart_points", "chart_svg"]

#: The viewBox: about a panel's shape at 1280 px, so the SVG fills its panel's width (``width: 100%``).
WIDTH, HEIGHT = 1200, 200
#: Room for the axis labels: left, right, top, bottom.
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 4, 10, 22


def _scale(series: Sequence[Sequence[int]]) -> int:
    """The top of the y axis: the largest value, at least 1."""
    return max([1, *[n for values in series for n in values]])


def _polyline(values: Sequence[int], top: int) -> str:
    """``x,y`` points of ``values`` (oldest first) in the plot area."""
    if not values:
        return ""
    step = (WIDTH - _LEFT - _RIGHT) / max(len(values) - 1, 1)
    span = HEIGHT - _TOP - _BOTTOM
    return " ".join(f"{_LEFT + i * step:.1f},{_TOP + span - span * n / top:.1f}" for i, n in enumerate(values))


def chart_points(per_minute: dict[str, list[int]]) -> dict[str, Any]:
    """What ``live.js`` needs to redraw: each series' points and the y axis' top value."""
    processed, failed = per_minute.get("processed", []), per_minute.get("failed", [])
    top = _scale([processed, failed])
    return {"processed": _polyline(processed, top), "failed": _polyline(failed, top), "max": top}


def chart_svg(per_minute: dict[str, list[int]]) -> str:
    """The chart as an SVG element (every value in it is a number made here: nothing to escape).

    The y labels sit at the left edge, the x labels span the plot's width; "failed" is drawn first so
    that "processed" (every attempt, failed ones included) is on top of it.
    """
    points = chart_points(per_minute)
    minutes = len(per_minute.get("processed", [])) or 60
    bottom, right, middle = HEIGHT - _BOTTOM, WIDTH - _RIGHT, (_TOP + HEIGHT - _BOTTOM) / 2
    labels = [
        (_LEFT, "start", f"-{minutes}m"),
        ((_LEFT + right) / 2, "middle", f"-{minutes // 2}m"),
        (right, "end", "now"),
    ]
    return "".join(
        [
            f'<svg class="chart" id="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="xMinYMid meet" '
            f'role="img" aria-label="jobs processed and failed per minute, last {minutes} minutes">',
            f'<line class="chart-grid" x1="{_LEFT}" y1="{_TOP}" x2="{right}" y2="{_TOP}"/>',
            f'<line class="chart-grid" x1="{_LEFT}" y1="{middle:.0f}" x2="{right}" y2="{middle:.0f}"/>',
            f'<line class="chart-axis" x1="{_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
            f'<text class="chart-label" id="chart-max" x="0" y="{_TOP + 4}">{points["max"]}</text>',
            f'<text class="chart-label" id="chart-mid" x="0" y="{middle + 4:.0f}">{_half(points["max"])}</text>',
            f'<text class="chart-label" x="0" y="{bottom + 4}">0</text>',
            *[
                f'<text class="chart-label" x="{x:.0f}" y="{HEIGHT - 4}" text-anchor="{anchor}">{label}</text>'
                for x, anchor, label in labels
            ],
            f'<polyline class="chart-failed" id="chart-failed" points="{points["failed"]}"/>',
            f'<polyline class="chart-processed" id="chart-processed" points="{points["processed"]}"/>',
            "</svg>",
        ]
    )


def _half(top: int) -> str:
    """The middle gridline's label: half the top value (one decimal when that is not whole)."""
    return f"{top / 2:g}"
