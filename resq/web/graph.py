"""The graph of a workflow, as server-made SVG: a job's parents, the job, its children (the job page), or
a batch's jobs and its callbacks (the batch page). Columns left to right, each node a link to its job's
page, coloured by its status through the stylesheet (``node-<status>``), so it follows the themes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from html import escape
from typing import NamedTuple
from urllib.parse import quote

__all__ = ["Node", "flow_svg"]

#: A node's box, the gaps between columns and rows, in viewBox units.
_W, _H, _GAP_X, _GAP_Y = 280, 40, 90, 12
#: The most characters of a label that fit a box.
_LABEL_MAX = 34


class Node(NamedTuple):
    """One box: the job it links to (None: a note such as "+180 more"), its label, and its status (its
    first word colours the box: ``succeeded · chord``)."""

    job_id: str | None
    label: str
    status: str


def flow_svg(columns: Sequence[Sequence[Node]], base: str) -> str:
    """The columns as an SVG drawing, every node of a column joined to every node of the next one."""
    columns = [column for column in columns if column]
    rows = max((len(column) for column in columns), default=1)
    width = len(columns) * _W + (len(columns) - 1) * _GAP_X
    height = rows * (_H + _GAP_Y) - _GAP_Y
    places = [[_place(c, r, len(column), rows) for r in range(len(column))] for c, column in enumerate(columns)]
    parts = [
        f'<svg class="flow" viewBox="0 0 {width} {height}" width="{width}" role="img" '
        f'aria-label="workflow graph" xmlns="http://www.w3.org/2000/svg">'
    ]
    for left, right in itertools.pairwise(places):
        for x1, y1 in left:
            for x2, y2 in right:
                parts.append(
                    f'<path class="flow-edge" d="M{x1 + _W} {y1 + _H / 2} C{x1 + _W + _GAP_X / 2} {y1 + _H / 2} '
                    f'{x2 - _GAP_X / 2} {y2 + _H / 2} {x2} {y2 + _H / 2}"/>'
                )
    for column, spots in zip(columns, places, strict=True):
        for node, (x, y) in zip(column, spots, strict=True):
            parts.append(_node(node, x, y, base))
    parts.append("</svg>")
    return "".join(parts)


def _place(column: int, row: int, count: int, rows: int) -> tuple[float, float]:
    """Where a node's box goes: its column, centred vertically against the tallest column."""
    offset = (rows - count) * (_H + _GAP_Y) / 2
    return column * (_W + _GAP_X), offset + row * (_H + _GAP_Y)


def _node(node: Node, x: float, y: float, base: str) -> str:
    status = node.status or "unknown"
    kind = escape(status.split(" ", 1)[0])
    label = node.label if len(node.label) <= _LABEL_MAX else node.label[: _LABEL_MAX - 1] + "…"
    box = (
        f'<rect class="flow-node node-{kind}" x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6"/>'
        f'<text class="flow-label" x="{x + 10}" y="{y + 17}">{escape(label)}</text>'
        f'<text class="flow-status" x="{x + 10}" y="{y + 33}">{escape(status)}</text>'
    )
    if node.job_id is None:
        return box
    return f'<a href="{escape(base)}/jobs/{quote(node.job_id, safe="")}"><title>{escape(node.job_id)}</title>{box}</a>'
