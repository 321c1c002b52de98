"""Draw docs/img/resque.svg: the path of a Resque-family job through a resq worker (docs/resque.md).

Standard library only. Run ``python docs/img/make_resque.py`` after changing the path (``resq/worker/resque.py``,
``resq/broker/lua/resque_take.lua`` and ``resque_promote.lua``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from make_lifecycle import COLOURS as LIFECYCLE_COLOURS
from make_lifecycle import INK, MONO, NOTE, SANS

WIDTH, HEIGHT = 1320, 580
BOX_W, BOX_H = 220, 64
#: the lifecycle picture's colours, and one for the Resque family's keys
COLOURS = {**LIFECYCLE_COLOURS, "resque": ("#fdf1e4", "#b0601a"), "resq": LIFECYCLE_COLOURS["waiting"]}


@dataclass(frozen=True)
class Box:
    """A place a job can be, drawn as a rounded box centred on (x, y): a title and a line of detail."""

    title: str
    detail: str
    x: float
    y: float
    kind: str


TOP, MIDDLE, BOTTOM = 110, 300, 460
PRODUCERS = Box("producers", "Ruby, PHP (CakeResque), node", 130, TOP, "resque")
LIST = Box("resque:queue:mail", "Resque's list (RPUSH)", 480, TOP, "resque")
IN_FLIGHT = Box("in-flight hash", "of the worker host:pid:mail", 830, TOP, "resq")
STREAM = Box("resq queue mail", "job resque:<n>, a lease", 1180, TOP, "resq")
RUNNING = Box("running in a child", "retries, time limits", 1180, MIDDLE, "running")
DONE = Box("succeeded", "stat:processed (+ php status)", 1180, BOTTOM, "succeeded")
FAILED = Box("resque:failed", "Resque's failure record", 830, MIDDLE, "dead")
DELAYED = Box("delayed jobs", "delayed:<ts>, _schdlr_:<ts>", 130, MIDDLE, "resque")


def box(b: Box) -> str:
    fill, stroke = COLOURS[b.kind]
    x, y = b.x - BOX_W / 2, b.y - BOX_H / 2
    return (
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="10" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="2"/>'
        f'<text x="{b.x}" y="{b.y - 6}" text-anchor="middle" font-family="{MONO}" font-size="15" '
        f'fill="{INK}">{escape(b.title)}</text>'
        f'<text x="{b.x}" y="{b.y + 16}" text-anchor="middle" font-family="{SANS}" font-size="12" '
        f'fill="{NOTE}">{escape(b.detail)}</text>'
    )


def edge(x1: float, y1: float, x2: float, y2: float, label: str, lx: float, ly: float, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="6 5"' if dashed else ""
    lines = label.split("\n")
    text = "".join(
        f'<text x="{lx}" y="{ly + 15 * i}" text-anchor="middle" font-family="{SANS}" font-size="12.5" '
        f'fill="{INK}">{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{INK}" stroke-width="1.6"{dash} '
        f'marker-end="url(#arrow)"/>{text}'
    )


def draw() -> str:
    half_w, half_h = BOX_W / 2, BOX_H / 2
    gap = lambda a, b: (a.x + half_w + b.x - half_w) / 2  # noqa: E731  # the middle between two boxes
    edges = [
        edge(PRODUCERS.x + half_w, TOP, LIST.x - half_w - 4, TOP, "push", gap(PRODUCERS, LIST), TOP - 10),
        edge(LIST.x + half_w, TOP, IN_FLIGHT.x - half_w - 4, TOP, "resque_take.lua", gap(LIST, IN_FLIGHT), TOP - 10),
        edge(IN_FLIGHT.x + half_w, TOP, STREAM.x - half_w - 4, TOP, "enqueue, once", gap(IN_FLIGHT, STREAM), TOP - 10),
        edge(STREAM.x, TOP + half_h, RUNNING.x, MIDDLE - half_h - 4, "fetched", STREAM.x + 40, (TOP + MIDDLE) / 2),
        edge(RUNNING.x, MIDDLE + half_h, DONE.x, BOTTOM - half_h - 4, "returned", DONE.x + 45, (MIDDLE + BOTTOM) / 2),
        edge(RUNNING.x - half_w, MIDDLE, FAILED.x + half_w + 4, MIDDLE, "dead", gap(FAILED, RUNNING), MIDDLE - 10),
        edge(
            IN_FLIGHT.x,
            TOP + half_h,
            FAILED.x,
            MIDDLE - half_h - 4,
            "unknown class,\nbad payload",
            IN_FLIGHT.x + 60,
            (TOP + MIDDLE) / 2 - 5,
        ),
        edge(
            FAILED.x - half_w,
            MIDDLE - 10,
            LIST.x + 40,
            TOP + half_h + 4,
            "retried by resque-web,\nnode-resque",
            LIST.x + 235,
            (TOP + MIDDLE) / 2,
        ),
        edge(
            DELAYED.x + 40,
            MIDDLE - half_h,
            LIST.x - 60,
            TOP + half_h + 4,
            "resq scheduler --resque\n(resque_promote.lua)",
            DELAYED.x + 10,
            (TOP + MIDDLE) / 2,
        ),
    ]
    top = TOP - half_h
    recovery = (
        f'<path d="M {IN_FLIGHT.x + 40} {top} C {IN_FLIGHT.x + 80} {top - 60}, {STREAM.x - 80} {top - 60}, '
        f'{STREAM.x - 40} {top - 4}" fill="none" stroke="{INK}" stroke-width="1.4" '
        f'stroke-dasharray="6 5" marker-end="url(#arrow)"/>'
        f'<text x="{(IN_FLIGHT.x + STREAM.x) / 2}" y="{top - 52}" text-anchor="middle" font-family="{SANS}" '
        f'font-size="12.5" fill="{INK}">its worker died: another worker makes the jobs (same ids)</text>'
    )
    notes = (
        "Orange: the Resque family's keys, where its tools see them. Blue: resq's own.",
        "A job is always in one of them: Lua scripts move it, it becomes a resq job once (created only if",
        "absent), and the jobs a dead worker held in flight are made by another worker's upkeep.",
    )
    legend = "".join(
        f'<text x="30" y="{HEIGHT - 70 + 18 * i}" font-family="{SANS}" font-size="13" fill="{NOTE}">'
        f"{escape(line)}</text>"
        for i, line in enumerate(notes)
    )
    marker = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{INK}"/></marker></defs>'
    )
    boxes = "".join(box(b) for b in (PRODUCERS, LIST, IN_FLIGHT, STREAM, RUNNING, DONE, FAILED, DELAYED))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="The path of a Resque job through a resq worker">'
        f'<rect width="100%" height="100%" fill="#ffffff"/>{marker}{"".join(edges)}{recovery}{boxes}{legend}</svg>\n'
    )


if __name__ == "__main__":
    Path(__file__).with_name("resque.svg").write_text(draw())
