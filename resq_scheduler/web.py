"""The dashboard's Cron page (entry point ``resq.dashboard: cron``): periodic entries, their next fire
times in their own time zone, their last fire and misfire policy; run now, pause, resume.

Loaded by :mod:`resq.web` only when the dashboard runs (resq never imports resq_scheduler).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from resq.app import Resq
from resq.clock import from_ms
from resq.errors import ConfigError
from resq.web.pages import ExtraPage, ExtraRow
from resq_scheduler.cron import CronSpec, next_fires
from resq_scheduler.schedule import PeriodicEntry
from resq_scheduler.scheduler import Scheduler

__all__ = ["cron_page"]

COLUMNS = ("entry", "schedule", "task", "queue", "state", "misfire", "last fire", "next fires")
TIME_FORMAT = "%Y-%m-%d %H:%M %Z"


def _zone(entry: PeriodicEntry) -> tzinfo:
    return ZoneInfo(entry.spec.tz) if isinstance(entry.spec, CronSpec) else UTC


def _schedule(entry: PeriodicEntry) -> str:
    spec = entry.spec
    return f"{spec.expr} ({spec.tz})" if isinstance(spec, CronSpec) else f"every {spec.seconds:g}s"


def _row(entry: PeriodicEntry, last_ms: int | None, paused: bool, now: datetime) -> ExtraRow:
    zone = _zone(entry)
    state = "disabled" if not entry.enabled else "paused" if paused else "active"
    last = "never" if last_ms is None else from_ms(last_ms).astimezone(zone).strftime(TIME_FORMAT)
    nexts = ", ".join(t.astimezone(zone).strftime(TIME_FORMAT) for t in next_fires(entry.spec, now, 3))
    cells = {
        "entry": entry.name,
        "schedule": _schedule(entry),
        "task": entry.task,
        "queue": entry.queue or "(the task's)",
        "state": state,
        "misfire": entry.misfire + (", unique" if entry.unique else ""),
        "last fire": last,
        "next fires": nexts if entry.enabled else "-",
    }
    return ExtraRow(entry.name, cells, ("run", "resume" if paused else "pause"))


def cron_page(app: Resq) -> ExtraPage:
    """The Cron page of ``app``'s dashboard: the entries declared in its code and those added at run time."""
    scheduler = Scheduler(app)

    def rows() -> list[ExtraRow]:
        state = scheduler.store.state()
        now = datetime.now(UTC)
        entries = sorted(scheduler.all_entries(state).values(), key=lambda e: e.name)
        return [_row(e, state.last.get(e.name), e.name in state.paused, now) for e in entries]

    def entry(name: str) -> PeriodicEntry:
        found = scheduler.all_entries()
        if name not in found:
            raise ConfigError(f"no periodic entry {name!r} (known: {', '.join(sorted(found)) or 'none'})")
        return found[name]

    def run(name: str) -> str:
        return f"{name}: enqueued job {scheduler.fire_now(entry(name))}"

    def pause(name: str) -> str:
        entry(name)
        return f"{name}: {'paused' if scheduler.store.set_paused(name, True) else 'already paused'}"

    def resume(name: str) -> str:
        entry(name)
        return f"{name}: {'resumed' if scheduler.store.set_paused(name, False) else 'already active'}"

    return ExtraPage(
        slug="cron",
        title="Cron",
        columns=COLUMNS,
        rows=rows,
        actions={"run": run, "pause": pause, "resume": resume},
        labels={"run": "Run now", "pause": "Pause", "resume": "Resume"},
        note="Periodic entries (resq_scheduler): times in each entry's own time zone. "
        "A paused entry skips its ticks (they are not caught up on resume).",
    )
