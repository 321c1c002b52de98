"""What each page shows, as JSON-ready dicts built from the :class:`~resq.ops.Inspector`: the same data
feeds a page's template and its ``/api/`` twin. Also the small formatting helpers of the templates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from resq.clock import from_ms, now_ms
from resq.ops import Inspector, QueueInfo
from resq.web.charts import chart_points
from resq.web.graph import Node, flow_svg

__all__ = ["ago", "as_json", "batch_graph", "job_graph", "preview", "queue_row", "stats_data", "wait", "when"]

#: How many jobs of a column the graph draws (the rest are one "+N more" box).
GRAPH_ROWS = 12

#: The one format of times on every page (always UTC), as in the CLI's tables.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: How long an argument preview may be, in characters.
PREVIEW_CHARS = 120
#: What a page shows for a value that is not there (no time, nothing measured).
NONE = "—"


def ago(seconds: float | None) -> str:
    """A short duration: ``850 ms``, ``12 s``, ``3m04s``, ``2h05m``, ``3d04h``; ``—`` for None."""
    if seconds is None:
        return NONE
    if seconds < 1:
        return f"{int(seconds * 1000)} ms"
    whole = int(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // sub_size:02d}{sub}"
    return f"{seconds:.1f} s".replace(".0 s", " s") if seconds < 10 else f"{whole} s"


def when(moment: int | datetime | None) -> str:
    """A time (ms since the epoch, or a datetime) as ``YYYY-MM-DD HH:MM:SS`` UTC; ``—`` for none."""
    if not moment:
        return NONE
    value = from_ms(moment) if isinstance(moment, int) else moment
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def since(ms: int | None) -> str:
    """How long ago a time in ms was; ``—`` for none."""
    return NONE if not ms else ago(max(0.0, (now_ms() - ms) / 1000))


def until(ms: int | None) -> str:
    """How long until a time in ms (``in 3m04s``, or ``3m04s ago`` when past)."""
    if not ms:
        return NONE
    delta = (ms - now_ms()) / 1000
    return f"in {ago(delta)}" if delta >= 0 else f"{ago(-delta)} ago"


def wait(value: int | None) -> str:
    """A wait in ms as a short duration, as :func:`ago` writes them (``—`` when none was measured)."""
    return NONE if value is None else ago(value / 1000)


def as_json(value: Any, indent: int | None = None) -> str:
    """JSON of a value for display or for the API (datetimes as ISO 8601, bytes as text)."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return obj.isoformat()
        if isinstance(obj, bytes):
            return obj.decode("utf-8", "replace")
        return str(obj)

    return json.dumps(value, default=default, indent=indent, ensure_ascii=False)


def preview(args: Any, kwargs: Any) -> str:
    """A job's arguments on one line, cut to :data:`PREVIEW_CHARS` (a sealed payload stays its marker)."""
    if isinstance(args, str):  # "<encrypted with key K>"
        return args
    parts = [as_json(a) for a in args or []] + [f"{k}={as_json(v)}" for k, v in (kwargs or {}).items()]
    line = ", ".join(parts)
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"


def queue_row(q: QueueInfo) -> dict[str, Any]:
    """A queue for the overview and its JSON: the record, and its durations formatted."""
    return {
        **q.as_dict(),
        "shown": {"oldest": ago(q.oldest_age_s), "wait_p50": wait(q.wait_p50_ms), "wait_p99": wait(q.wait_p99_ms)},
    }


def stats_data(inspector: Inspector) -> dict[str, Any]:
    """The overview (``/api/stats``): queues, workers, counters today and in total, scheduled and dead
    counts, processed and failed per minute over the last hour (with the chart's points)."""
    found = inspector.queues()
    counts = inspector.stats(1)
    live = inspector.workers()
    per_minute = inspector.per_minute(60)
    return {
        "namespace": inspector.broker.keys.namespace,
        "at": datetime.now(UTC).isoformat(),
        "queues": [queue_row(q) for q in found],
        "workers": len(live),
        "paused": inspector.paused_count(live),
        "busy": sum(bool(w.current) for w in live),
        "today": counts["today"],
        "total": counts["total"],
        "scheduled": sum(q.scheduled for q in found),
        "dead": sum(q.dead for q in found),
        "waiting": sum(q.waiting for q in found),
        "running": sum(q.running for q in found),
        "per_minute": per_minute,
        "chart": chart_points(per_minute),
    }


def _short(job_id: str) -> str:
    return job_id if len(job_id) <= 14 else job_id[:6] + "…" + job_id[-6:]


def _column(edges: list[tuple[str, str, str]], total: int | None = None) -> list[Node]:
    """``(job id, label, status)`` as graph nodes, the ones past ``GRAPH_ROWS`` as one note."""
    nodes = [Node(job_id, label, status) for job_id, label, status in edges[:GRAPH_ROWS]]
    hidden = (len(edges) if total is None else total) - len(nodes)
    if hidden > 0:
        nodes.append(Node(None, f"+{hidden} more", "more"))
    return nodes


def _edge_cell(edge: dict[str, Any]) -> tuple[str, str, str]:
    """A parent or a child (``Inspector.edges``) as ``(job id, label, status)``: its task, its status and link."""
    return edge["id"], edge.get("task") or _short(edge["id"]), f"{edge['status'] or '?'} · {edge['via']}"


def job_graph(info: dict[str, Any], base: str) -> str:
    """The job page's graph: its parents, the job, its children (empty when it has none)."""
    parents, children = info.get("parents") or [], info.get("children") or []
    if not parents and not children:
        return ""
    left = _column([(e["id"], e.get("task") or _short(e["id"]), f"{e['status'] or '?'} · {e['via']}") for e in parents])
    right = _column(
        [(e["id"], e.get("task") or _short(e["id"]), f"{e['status'] or '?'} · {e['via']}") for e in children]
    )
    middle = [Node(info["id"], info["task"], info["status"])]
    return flow_svg([left, middle, right], base)


def batch_graph(found: dict[str, Any], base: str) -> str:
    """The batch page's graph: its jobs, then its callbacks."""
    jobs = _column([(j, _short(j), s) for j, s in found["jobs"].items()], found["total"])
    callbacks = [
        Node(e["id"], e.get("task") or _short(e["id"]), f"{e['status'] or '?'} · on {role}")
        for role, e in found["callbacks"].items()
    ]
    return flow_svg([jobs, callbacks], base)
