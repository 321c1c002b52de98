"""Draw ``bench/results/peers.svg`` from ``bench/results/peers.md``: drain rate and CPU per job, per system.

Standard library only. ``run.py`` calls it after writing the report; ``python bench/peers/chart.py [MD [SVG]]``
redraws it from a report by hand. The drain panel marks the performance issue's goals for resq at its
defaults (2.5× huey, 1.5× the plain loop).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

RESULTS = Path(__file__).resolve().parents[1] / "results"
SANS = "DejaVu Sans, Helvetica, Arial, sans-serif"
ROW_H, LABEL_W, PANEL_W, GAP, TOP = 26, 300, 330, 40, 70
#: the report's columns drawn, by heading: (title, unit, more is better)
PANELS = [
    ("drain jobs/s (steady)", "drain, jobs/s (more is better)", True),
    ("worker CPU ms/job", "worker CPU per job, ms (less is better)", False),
    ("Redis CPU ms/job", "Redis CPU per job, ms (less is better)", False),
]


@dataclass(frozen=True)
class Row:
    """One system of the report: its name and the figures of the drawn columns."""

    name: str
    values: dict[str, float]


def parse(markdown: str) -> list[Row]:
    """The systems of the report's main table (not its ratio lines)."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    head = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        name = cells[0].replace("**", "")
        if "÷" in name or name == "system" or len(cells) != len(head):
            continue
        values = {}
        for heading, cell in zip(head[1:], cells[1:], strict=True):
            found = re.match(r"([\d,.]+)", cell.replace("**", ""))
            if found:
                values[heading] = float(found.group(1).replace(",", ""))
        rows.append(Row(name, values))
    return rows


def colour(name: str) -> str:
    """resq orange, the loop grey, BullMQ green, the Python peers blue."""
    if name.startswith("resq"):
        return "#e07b00"
    if name.startswith("hand-written"):
        return "#8a8a8a"
    if name.startswith("BullMQ"):
        return "#3c8d40"
    return "#4a6fa5"


def svg(rows: list[Row], title: str) -> str:
    """The chart: one panel per drawn column, one bar per system."""
    width = LABEL_W + len(PANELS) * (PANEL_W + GAP)
    height = TOP + ROW_H * len(rows) + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="{SANS}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="12" y="24" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    for i, row in enumerate(rows):
        y = TOP + i * ROW_H
        weight = "bold" if row.name.startswith("resq -c 1") else "normal"
        out.append(f'<text x="{LABEL_W - 8}" y="{y + 17}" font-size="12" text-anchor="end" font-weight="{weight}">')
        out.append(f"{escape(row.name)}</text>")
    for p, (heading, caption, _) in enumerate(PANELS):
        out += panel(rows, heading, caption, LABEL_W + p * (PANEL_W + GAP))
    out.append("</svg>")
    return "\n".join(out)


def panel(rows: list[Row], heading: str, caption: str, x0: int) -> list[str]:
    """One column's bars, with the goals marked on the drain panel."""
    top = max((r.values.get(heading, 0.0) for r in rows), default=0.0) or 1.0
    scale = (PANEL_W - 60) / top
    out = [f'<text x="{x0}" y="{TOP - 14}" font-size="13">{escape(caption)}</text>']
    bottom = TOP + ROW_H * len(rows)
    out.append(f'<line x1="{x0}" y1="{TOP - 6}" x2="{x0}" y2="{bottom}" stroke="#333"/>')
    for i, row in enumerate(rows):
        value = row.values.get(heading)
        if value is None:
            continue
        y, w = TOP + i * ROW_H + 4, max(1.0, value * scale)
        out.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{ROW_H - 8}" fill="{colour(row.name)}"/>')
        label = f"{value:,.0f}" if value >= 100 else f"{value:.3f}"
        out.append(f'<text x="{x0 + w + 4:.1f}" y="{y + 13}" font-size="11">{label}</text>')
    if heading == PANELS[0][0]:
        out += goals(rows, heading, x0, scale, bottom)
    return out


def goals(rows: list[Row], heading: str, x0: int, scale: float, bottom: int) -> list[str]:
    """Dashed lines at 2.5× huey and 1.5× the loop: where resq -c 1 should reach."""
    named = {r.name.split(" ")[0]: r.values.get(heading) for r in rows}
    marks = [("2.5× huey", 2.5 * (named.get("huey") or 0)), ("1.5× loop", 1.5 * (named.get("hand-written") or 0))]
    out = []
    for k, (label, value) in enumerate(m for m in marks if m[1]):
        x = x0 + value * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#c62828" stroke-dasharray="4 3"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{bottom + 16 + 14 * k}" font-size="11" fill="#c62828" text-anchor="middle">')
        out.append(f"goal: {label}</text>")
    return out


def draw(markdown_path: Path, svg_path: Path) -> Path:
    """Read a report, write its chart; returns the chart's path."""
    text = markdown_path.read_text()
    day = re.search(r"^- (\d{4}-\d{2}-\d{2}),", text, re.MULTILINE)
    title = "resq beside its peers, one worker process at its defaults" + (f" ({day.group(1)})" if day else "")
    svg_path.write_text(svg(parse(text), title) + "\n")
    return svg_path


if __name__ == "__main__":
    md = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "peers.md"
    print(draw(md, Path(sys.argv[2]) if len(sys.argv) > 2 else md.with_suffix(".svg")))
