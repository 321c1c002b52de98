"""Draw docs/img/lifecycle.svg: a job's statuses and the Lua script that makes each transition.

Standard library only. Run ``python docs/img/make_lifecycle.py`` after changing a transition (the scripts
are ``resq/broker/lua/*.lua``; each one's header says which statuses it moves a job between).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 1100, 770
BOX_W, BOX_H = 140, 50
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
SANS = "DejaVu Sans, Helvetica, Arial, sans-serif"
INK = "#333333"
NOTE = "#555555"

# kind -> (fill, stroke)
COLOURS = {
    "waiting": ("#e8f0fe", "#4a6fa5"),
    "running": ("#fff4d6", "#b07d00"),
    "succeeded": ("#e6f4ea", "#2e7d32"),
    "dead": ("#fdecea", "#c62828"),
    "cancelled": ("#f1f1f1", "#666666"),
}


@dataclass(frozen=True)
class Box:
    """A status, drawn as a rounded box centred on (x, y)."""

    name: str
    x: float
    y: float
    kind: str

    @property
    def left(self) -> float:
        return self.x - BOX_W / 2

    @property
    def right(self) -> float:
        return self.x + BOX_W / 2

    @property
    def top(self) -> float:
        return self.y - BOX_H / 2

    @property
    def bottom(self) -> float:
        return self.y + BOX_H / 2


SCHEDULED = Box("scheduled", 240, 140, "waiting")
QUEUED = Box("queued", 420, 310, "waiting")
RETRYING = Box("retrying", 240, 480, "waiting")
RUNNING = Box("running", 680, 310, "running")
SUCCEEDED = Box("succeeded", 960, 140, "succeeded")
DEAD = Box("dead", 960, 310, "dead")
CANCELLED = Box("cancelled", 960, 480, "cancelled")
DEFERRED = Box("deferred", 240, 620, "waiting")
BOXES = [SCHEDULED, QUEUED, RETRYING, RUNNING, SUCCEEDED, DEAD, CANCELLED, DEFERRED]
START = (50.0, 310.0)
GROUP = (150.0, 82.0, 510.0, 670.0)  # the waiting statuses: x0, y0, x1, y1


def box(b: Box) -> str:
    fill, stroke = COLOURS[b.kind]
    final = b.kind in ("succeeded", "dead", "cancelled")
    inner = (
        f'<rect x="{b.left + 4}" y="{b.top + 4}" width="{BOX_W - 8}" height="{BOX_H - 8}" rx="7" '
        f'fill="none" stroke="{stroke}" stroke-width="1"/>'
        if final
        else ""
    )
    return (
        f'<rect x="{b.left}" y="{b.top}" width="{BOX_W}" height="{BOX_H}" rx="10" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="2"/>{inner}'
        f'<text x="{b.x}" y="{b.y + 6}" text-anchor="middle" font-family="{SANS}" font-size="17" '
        f'font-weight="bold" fill="{stroke}">{b.name}</text>'
    )


def arrow(points: list[tuple[float, float]], dashed: bool = False) -> str:
    """A polyline with an arrow head at its last point."""
    coords = " ".join(f"{x},{y}" for x, y in points)
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return f'<polyline points="{coords}" fill="none" stroke="{INK}" stroke-width="1.7"{dash} marker-end="url(#head)"/>'


def label(x: float, y: float, script: str, why: str = "", anchor: str = "middle") -> str:
    """A script name (monospace) with an optional reason under it, on a white halo."""
    parts = [_text(x, y, script, MONO, 13, INK, anchor, bold=True)]
    if why:
        parts.append(_text(x, y + 15, why, SANS, 11.5, NOTE, anchor))
    return "".join(parts)


def _text(x: float, y: float, s: str, family: str, size: float, fill: str, anchor: str, bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    common = f'x="{x}" y="{y}" text-anchor="{anchor}" font-family="{family}" font-size="{size}"{weight}'
    halo = f'<text {common} fill="white" stroke="white" stroke-width="5" stroke-linejoin="round">{escape(s)}</text>'
    return halo + f'<text {common} fill="{fill}">{escape(s)}</text>'


def transitions() -> list[str]:
    """Every arrow of the diagram with its label."""
    sx, sy = START
    _, _, gx1, gy1 = GROUP
    return [
        # new jobs
        arrow([(sx + 9, sy - 7), (SCHEDULED.left, SCHEDULED.bottom - 8)]),
        label(104, 222, "enqueue.lua", "enqueue_in/_at", anchor="end"),
        arrow([(sx + 10, sy), (QUEUED.left, sy)]),
        label(250, sy - 8, "enqueue.lua"),
        _text(250, sy + 18, ".delay(), a cron tick", SANS, 11.5, NOTE, "middle"),
        # waiting -> queued
        arrow([(SCHEDULED.right - 20, SCHEDULED.bottom), (QUEUED.left + 30, QUEUED.top)]),
        label(312, 222, "promote.lua", "due; or run_now.lua", anchor="end"),
        arrow([(RETRYING.right - 20, RETRYING.top), (QUEUED.left + 30, QUEUED.bottom)]),
        label(334, 412, "promote.lua", "due; or run_now.lua", anchor="start"),
        # queued <-> running
        arrow([(QUEUED.right, QUEUED.y - 10), (RUNNING.left, RUNNING.y - 10)]),
        label(550, QUEUED.y - 40, "start.lua", "a worker took it", anchor="middle"),
        arrow([(RUNNING.left, RUNNING.y + 12), (QUEUED.right, QUEUED.y + 12)]),
        label(550, QUEUED.y + 40, "release.lua", "worker stopping, or lost"),
        # running -> outcomes
        arrow([(RUNNING.right - 10, RUNNING.top), (SUCCEEDED.left, SUCCEEDED.bottom - 10)]),
        label(808, 205, "succeed.lua", "returned", anchor="end"),
        arrow([(RUNNING.right, RUNNING.y), (DEAD.left, DEAD.y)]),
        label(820, RUNNING.y - 10, "dead.lua"),
        _text(820, RUNNING.y + 22, "failed, not retried;", SANS, 11.5, NOTE, "middle"),
        _text(820, RUNNING.y + 37, "release.lua: lost 3×", SANS, 11.5, NOTE, "middle"),
        arrow([(RUNNING.right - 10, RUNNING.bottom), (CANCELLED.left, CANCELLED.top + 10)]),
        label(845, 398, "cancelled.lua", "worker stopped or skipped it", anchor="start"),
        arrow([(RUNNING.x, RUNNING.bottom), (RUNNING.x, RETRYING.y), (RETRYING.right, RETRYING.y)]),
        label(520, RETRYING.y - 10, "retry.lua", anchor="start"),
        _text(520, RETRYING.y + 20, "failed, retries left", SANS, 11.5, NOTE, "start"),
        # dead -> queued, over the top
        arrow([(DEAD.right, DEAD.y), (1070, DEAD.y), (1070, 48), (470, 48), (470, QUEUED.top)]),
        label(760, 42, "revive.lua", anchor="middle"),
        _text(760, 66, "resq dead retry", SANS, 11.5, NOTE, "middle"),
        # new -> deferred -> queued (workflows)
        arrow([(sx + 4, sy + 9), (sx + 4, DEFERRED.y), (DEFERRED.left, DEFERRED.y)]),
        label(sx + 12, DEFERRED.y - 78, "join.lua", "depends_on, a chord's", anchor="start"),
        _text(sx + 12, DEFERRED.y - 48, "or batch's callback", SANS, 11.5, NOTE, "start"),
        arrow([(DEFERRED.right, DEFERRED.y), (450, DEFERRED.y), (450, QUEUED.bottom)]),
        label(458, 575, "_workflow.lua", "its parents ended (or dead,", anchor="start"),
        _text(458, 605, "cancelled by its policy)", SANS, 11.5, NOTE, "start"),
        # waiting -> cancelled
        arrow([(gx1 - 20, gy1), (gx1 - 20, 700), (CANCELLED.x, 700), (CANCELLED.x, CANCELLED.bottom)], dashed=True),
        label(740, 692, "cancel.lua"),
        _text(740, 720, "job.cancel() while waiting", SANS, 11.5, NOTE, "middle"),
    ]


def render() -> str:
    """The whole SVG document."""
    sx, sy = START
    gx0, gy0, gx1, gy1 = GROUP
    body = [
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<rect x="{gx0}" y="{gy0}" width="{gx1 - gx0}" height="{gy1 - gy0}" rx="16" fill="#f7f9fc" '
        f'stroke="#9fb3d1" stroke-width="1.2" stroke-dasharray="5 4"/>',
        _text(gx0 + 12, gy0 + 20, "waiting", SANS, 12, "#4a6fa5", "start", bold=True),
        f'<circle cx="{sx}" cy="{sy}" r="9" fill="{INK}"/>',
        _text(sx, sy + 30, "new job", SANS, 12, NOTE, "middle"),
        *transitions(),
        *(box(b) for b in BOXES),
        _text(
            20,
            HEIGHT - 22,
            "Scripts in resq/broker/lua/. Double border: final. Final records expire after result_ttl; "
            "purge.lua (resq dead purge) deletes dead jobs.",
            SANS,
            12,
            NOTE,
            "start",
        ),
    ]
    head = (
        '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker></defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="The statuses of a resq job">'
        f"<title>The statuses of a resq job and the Lua script of each transition</title>"
        + head
        + "\n".join(body)
        + "</svg>\n"
    )


def main() -> None:
    out = Path(__file__).with_name("lifecycle.svg")
    out.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
