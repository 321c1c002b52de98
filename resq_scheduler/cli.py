"""The scheduler's commands, added to ``resq`` through the ``resq.commands`` entry points.

- ``resq scheduler [-A APP] [--schedule FILE]`` runs a scheduler (run as many as you like);
- ``resq scheduled list|remove|run-now`` inspects and handles delayed jobs and retries;
- ``resq cron list|run|pause|resume`` inspects and handles periodic entries.

Tables are for people; ``--json`` prints the same data for scripts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from resq import producer
from resq.cli.common import app_from, guard, logging_options, ops_options, reach, stamp, when
from resq.clock import from_ms
from resq.job import JobStatus
from resq.log import configure
from resq.resque import DEFAULT_NAMESPACE
from resq_scheduler.cron import CronSpec, next_fires
from resq_scheduler.schedule import PeriodicEntry
from resq_scheduler.scheduler import Scheduler
from resq_scheduler.store import ScheduledJob, Store

__all__ = ["cron", "scheduled", "scheduler"]

T = TypeVar("T")

SCHEDULER_EPILOG = """\b
Examples:
  resq scheduler -A myapp.tasks:app
  resq scheduler -A myapp.tasks:app --schedule schedule.toml --log-format json
"""


def _guard(ctx: click.Context, action: Callable[[], T]) -> T:
    """Run ``action``; resq's errors become one-line exits (2 bad input, 1 not found or Redis unavailable)."""
    return guard(action)


def _scheduler(
    ctx: click.Context,
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    schedule_file: str | None = None,
    *,
    connect: bool = True,
    resque: str | None = None,
) -> Scheduler:
    app = app_from(app_ref, url, namespace, connect=False)
    instance = _guard(ctx, lambda: Scheduler(app, schedule_file=schedule_file, resque=resque))
    if connect:
        _guard(ctx, lambda: reach(app))
    return instance


def _store(app_ref: str | None, url: str | None, namespace: str | None) -> Store:
    return Store(app_from(app_ref, url, namespace))


@click.command(epilog=SCHEDULER_EPILOG, short_help="Run a scheduler: delayed jobs and periodic entries.")
@ops_options
@click.option(
    "--schedule",
    "schedule_file",
    type=click.Path(dir_okay=False),
    help="A TOML file of periodic entries (see docs/scheduling.md).",
)
@click.option(
    "--resque",
    is_flag=True,
    help="Also move resque-scheduler's due delayed jobs into their Resque queues (see docs/resque.md).",
)
@click.option("--resque-namespace", default=None, help="The Resque namespace of --resque (default: resque).")
@logging_options
def scheduler(
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    schedule_file: str | None,
    resque: bool,
    resque_namespace: str | None,
    log_format: str,
    log_level: str,
) -> None:
    """Move due delayed jobs into their queues and fire periodic entries (TERM/INT: stop).

    Any number of schedulers may run at once, on any hosts: every tick is fired exactly once.
    """
    configure(log_format, log_level)
    # a scheduler waits for Redis itself (it may start before Redis does)
    ctx = click.get_current_context()
    if resque_namespace is not None and not resque:
        raise click.UsageError("--resque-namespace goes with --resque", ctx)
    ns = (resque_namespace or DEFAULT_NAMESPACE) if resque else None
    instance = _scheduler(ctx, app_ref, url, namespace, schedule_file, connect=False, resque=ns)
    sys.exit(instance.run())


# -- resq scheduled ---------------------------------------------------------------------------------


@click.group()
def scheduled() -> None:
    """Delayed jobs and retries waiting for their due time."""


@scheduled.command("list")
@ops_options
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="Show at most N jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def scheduled_list(app_ref: str | None, url: str | None, namespace: str | None, limit: int, as_json: bool) -> None:
    """List scheduled jobs, soonest first."""
    ctx = click.get_current_context()
    store = _store(app_ref, url, namespace)
    jobs = _guard(ctx, lambda: store.scheduled_jobs(limit))
    if as_json:
        click.echo(json.dumps([_scheduled_dict(job) for job in jobs], indent=2))
        return
    if not jobs:
        click.echo("no scheduled jobs")
        return
    now = datetime.now(UTC)
    rows = [
        [
            job.job_id,
            job.queue,
            job.task,
            job.status,
            str(job.attempt),
            when(job.due_ms),
            _relative(from_ms(job.due_ms), now),
        ]
        for job in jobs
    ]
    click.echo(_table(["ID", "QUEUE", "TASK", "STATUS", "ATTEMPT", "DUE (UTC)", "IN"], rows))


def _scheduled_dict(job: ScheduledJob) -> dict[str, Any]:
    return {
        "id": job.job_id,
        "queue": job.queue,
        "task": job.task,
        "status": job.status,
        "attempt": job.attempt,
        "due_ms": job.due_ms,
        "due": from_ms(job.due_ms).isoformat(),
    }


def _find(ctx: click.Context, store: Store, job_id: str) -> str:
    queue = _guard(ctx, lambda: store.broker.jobs.find_queue(job_id))
    if queue is None:
        raise click.ClickException(f"no job {job_id!r}")
    return queue


@scheduled.command("remove")
@ops_options
@click.argument("job_id", metavar="ID")
def scheduled_remove(app_ref: str | None, url: str | None, namespace: str | None, job_id: str) -> None:
    """Remove a scheduled job (it is recorded as cancelled)."""
    ctx = click.get_current_context()
    store = _store(app_ref, url, namespace)
    queue = _find(ctx, store, job_id)
    status = _guard(ctx, lambda: store.broker.jobs.status(queue, job_id))
    if status not in (JobStatus.SCHEDULED, JobStatus.RETRYING):
        raise click.ClickException(f"job {job_id} is {status or 'gone'}, not scheduled: nothing removed")
    click.echo(f"{job_id}: {_guard(ctx, lambda: store.broker.jobs.cancel(queue, job_id))}")


@scheduled.command("run-now")
@ops_options
@click.argument("job_id", metavar="ID")
def scheduled_run_now(app_ref: str | None, url: str | None, namespace: str | None, job_id: str) -> None:
    """Move a scheduled job into its queue now."""
    ctx = click.get_current_context()
    store = _store(app_ref, url, namespace)
    queue = _find(ctx, store, job_id)
    moved, status = _guard(ctx, lambda: producer.run_now(store.app, queue, job_id))
    if not moved:
        raise click.ClickException(f"job {job_id} is {status or 'gone'}, not scheduled: nothing moved")
    click.echo(f"{job_id}: queued on {queue}")


# -- resq cron --------------------------------------------------------------------------------------


def _schedule_option(fn: Any) -> Any:
    return click.option(
        "--schedule",
        "schedule_file",
        type=click.Path(dir_okay=False),
        help="Also read the entries of this TOML schedule file.",
    )(fn)


@click.group()
def cron() -> None:
    """Periodic entries: list, run now, pause, resume."""


@cron.command("list", short_help="Periodic entries, their last and next fires.")
@ops_options
@_schedule_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def cron_list(
    app_ref: str | None, url: str | None, namespace: str | None, schedule_file: str | None, as_json: bool
) -> None:
    """List periodic entries with their last fire and next three fire times (UTC in the table, in the
    entry's time zone in the JSON)."""
    ctx = click.get_current_context()
    instance = _scheduler(ctx, app_ref, url, namespace, schedule_file)
    state = _guard(ctx, instance.store.state)
    entries = instance.all_entries(state)
    now = datetime.now(UTC)
    rows = [
        _entry_dict(e, state.last.get(e.name), e.name in state.paused, e.name in instance.entries, now)
        for e in sorted(entries.values(), key=lambda e: e.name)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no periodic entries (pass the app with -A to see the ones declared in code)")
        return
    click.echo(
        _table(
            ["NAME", "SCHEDULE", "TASK", "QUEUE", "STATE", "LAST FIRE (UTC)", "NEXT FIRES (UTC)"],
            [
                [
                    r["name"],
                    r["schedule"],
                    r["task"],
                    r["queue"] or "-",
                    r["state"],
                    _short(r["last_fire"]) if r["last_fire"] else "never",
                    ", ".join(_short(t) for t in r["next_fires"]),
                ]
                for r in rows
            ],
        )
    )


def _entry_dict(entry: PeriodicEntry, last_ms: int | None, paused: bool, local: bool, now: datetime) -> dict[str, Any]:
    zone = ZoneInfo(entry.spec.tz) if isinstance(entry.spec, CronSpec) else UTC
    state = "disabled" if not entry.enabled else "paused" if paused else "active"
    return {
        "name": entry.name,
        "task": entry.task,
        "queue": entry.queue,
        "schedule": _describe(entry),
        "spec": entry.to_dict()["spec"],
        "misfire": entry.misfire,
        "unique": entry.unique,
        "enabled": entry.enabled,
        "paused": paused,
        "state": state,
        "source": "app" if local else "redis",
        "last_fire": None if last_ms is None else from_ms(last_ms).astimezone(zone).isoformat(),
        "next_fires": [t.astimezone(zone).isoformat() for t in next_fires(entry.spec, now, 3)],
    }


def _describe(entry: PeriodicEntry) -> str:
    spec = entry.spec
    if isinstance(spec, CronSpec):
        return f"{spec.expr} ({spec.tz})"
    return f"every {spec.seconds:g}s"


def _entry(ctx: click.Context, instance: Scheduler, name: str) -> PeriodicEntry:
    entries = _guard(ctx, instance.all_entries)
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise click.ClickException(f"no periodic entry {name!r} (known: {known}; pass the app with -A)")
    return entries[name]


@cron.command("run")
@ops_options
@_schedule_option
@click.argument("name")
def cron_run(app_ref: str | None, url: str | None, namespace: str | None, schedule_file: str | None, name: str) -> None:
    """Enqueue one run of entry NAME now (its schedule is not changed)."""
    ctx = click.get_current_context()
    instance = _scheduler(ctx, app_ref, url, namespace, schedule_file)
    entry = _entry(ctx, instance, name)
    click.echo(f"{name}: enqueued job {_guard(ctx, lambda: instance.fire_now(entry))}")


def _set_paused(
    app_ref: str | None, url: str | None, namespace: str | None, schedule_file: str | None, name: str, paused: bool
) -> None:
    ctx = click.get_current_context()
    instance = _scheduler(ctx, app_ref, url, namespace, schedule_file)
    _entry(ctx, instance, name)
    changed = _guard(ctx, lambda: instance.store.set_paused(name, paused))
    word = "paused" if paused else "resumed"
    click.echo(f"{name}: {word}" if changed else f"{name}: already {word}")


@cron.command("pause")
@ops_options
@_schedule_option
@click.argument("name")
def cron_pause(
    app_ref: str | None, url: str | None, namespace: str | None, schedule_file: str | None, name: str
) -> None:
    """Pause entry NAME: its ticks are skipped (not caught up on resume)."""
    _set_paused(app_ref, url, namespace, schedule_file, name, True)


@cron.command("resume")
@ops_options
@_schedule_option
@click.argument("name")
def cron_resume(
    app_ref: str | None, url: str | None, namespace: str | None, schedule_file: str | None, name: str
) -> None:
    """Resume a paused entry NAME from its next tick."""
    _set_paused(app_ref, url, namespace, schedule_file, name, False)


# -- output -----------------------------------------------------------------------------------------


def _short(iso: str) -> str:
    """``2026-11-24T19:00:00+01:00`` → ``2026-11-24 18:00:00``: the one format of every table (UTC)."""
    return stamp(datetime.fromisoformat(iso))


def _relative(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.1f}s"
    if seconds < 3600:
        return f"{sign}{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{sign}{seconds / 3600:.1f}h"
    return f"{sign}{seconds / 86400:.1f}d"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)
