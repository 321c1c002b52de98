"""The operator's commands, added to the ``resq`` group by :mod:`resq.cli.group`: ``stats``, ``queues``,
``workers`` (and ``workers pause|resume|stop``), ``job``, ``enqueue`` and ``events``; ``dead …`` and
``queue clear`` live in :mod:`resq.cli.dead`.

Each reads ``-A APP``/``RESQ_APP``, or just ``RESQ_REDIS_URL``/``RESQ_NAMESPACE`` (``--url``,
``--namespace``), prints aligned tables in a terminal and JSON with ``--json``.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import click

from resq.broker import COUNTERS
from resq.cli.common import (
    NotFound,
    ago,
    guard,
    inspector_from,
    json_option,
    ops_options,
    parse_duration,
    since,
    table,
    truncate,
    when,
)
from resq.ops import CONTROL_COMMANDS, Inspector, QueueInfo, to_json

__all__ = ["enqueue", "events", "format_event", "format_job", "job", "queues", "stats", "workers"]

STATS_EPILOG = """\b
Examples:
  resq stats                      # RESQ_REDIS_URL, namespace resq
  resq stats -A myapp.tasks --days 7
  resq stats --json | jq .total.processed
"""


# -- stats and queues ---------------------------------------------------------------------------------


def _queue_rows(found: list[QueueInfo]) -> str:
    rows = [
        [
            q.name,
            q.waiting,
            q.running,
            ago(q.oldest_age_s),
            q.scheduled,
            q.dead,
            q.workers,
            "" if q.served else "! no worker",
        ]
        for q in found
    ]
    return table(["QUEUE", "WAITING", "RUNNING", "OLDEST", "SCHEDULED", "DEAD", "WORKERS", ""], rows)


@click.command(epilog=STATS_EPILOG)
@ops_options
@click.option(
    "--days",
    default=0,
    show_default=True,
    type=click.IntRange(0, 366),
    help="Also show the counters of each of the last N days.",
)
@json_option
def stats(app_ref: str | None, url: str | None, namespace: str | None, days: int, as_json: bool) -> None:
    """Queues (waiting, running, oldest, scheduled, dead; a flag when no worker serves one), live
    workers, and jobs processed, failed, retried and dead today and in total."""
    inspector = inspector_from(app_ref, url, namespace)
    found = guard(inspector.queues)
    counts = guard(lambda: inspector.stats(max(days, 1)))
    workers = guard(inspector.live_worker_count)
    data = {
        "queues": [q.as_dict() for q in found],
        "workers": workers,
        "today": counts["today"],
        "total": counts["total"],
        "scheduled": sum(q.scheduled for q in found),
        "dead": sum(q.dead for q in found),
        "days": counts["days"] if days else [],
    }
    if as_json:
        click.echo(to_json(data))
        return
    click.echo(_queue_rows(found) if found else "no queues yet")
    click.echo("")
    click.echo(f"workers: {workers} live   scheduled: {data['scheduled']}   dead: {data['dead']}")
    click.echo("")
    click.echo(table(["JOBS", "TODAY", "TOTAL"], [[n, counts["today"][n], counts["total"][n]] for n in COUNTERS]))
    if days:
        click.echo("")
        click.echo(
            table(
                ["DAY (UTC)", *[n.upper() for n in COUNTERS]],
                [[d["day"], *[d[n] for n in COUNTERS]] for d in counts["days"]],
            )
        )


@click.command()
@ops_options
@json_option
def queues(app_ref: str | None, url: str | None, namespace: str | None, as_json: bool) -> None:
    """Each queue: waiting, running, age of the oldest waiting job, scheduled, dead, workers serving it."""
    found = guard(inspector_from(app_ref, url, namespace).queues)
    if as_json:
        click.echo(to_json([q.as_dict() for q in found]))
    else:
        click.echo(_queue_rows(found) if found else "no queues yet")


# -- workers ------------------------------------------------------------------------------------------

WORKERS_EPILOG = """\b
Examples:
  resq workers
  resq workers pause --all            # every worker stops fetching (running jobs finish)
  resq workers resume --all
  resq workers stop host-1:4242:a1b2c3   # a supervisor (all its children) or one child
"""


@click.group(invoke_without_command=True, epilog=WORKERS_EPILOG)
@ops_options
@json_option
@click.pass_context
def workers(ctx: click.Context, app_ref: str | None, url: str | None, namespace: str | None, as_json: bool) -> None:
    """List live workers; pause, resume or stop them through Redis (works across machines)."""
    ctx.obj = (app_ref, url, namespace)
    if ctx.invoked_subcommand is not None:
        return
    found = guard(inspector_from(app_ref, url, namespace).workers)
    if as_json:
        click.echo(to_json([w.as_dict() for w in found]))
        return
    if not found:
        click.echo("no live workers")
        return
    rows = [
        [
            w.id,
            w.supervisor,
            w.pid,
            ",".join(w.queues),
            since(w.started_ms),
            since(w.heartbeat_ms),
            ",".join(w.current) or "-",
        ]
        for w in found
    ]
    click.echo(table(["WORKER", "SUPERVISOR", "PID", "QUEUES", "UP", "HEARTBEAT", "CURRENT JOB"], rows))


def _control_command(cmd: str) -> click.Command:
    @click.command(cmd, help=f"{cmd.capitalize()} every worker (--all), or one supervisor or worker by id.")
    @ops_options
    @click.option("--all", "everyone", is_flag=True, help="Every worker in the namespace.")
    @click.argument("target", metavar="[WORKER]", required=False)
    @json_option
    @click.pass_context
    def command(
        ctx: click.Context,
        app_ref: str | None,
        url: str | None,
        namespace: str | None,
        everyone: bool,
        target: str | None,
        as_json: bool,
    ) -> None:
        parent = ctx.obj or (None, None, None)
        inspector = inspector_from(app_ref or parent[0], url or parent[1], namespace or parent[2])
        if everyone == bool(target):
            raise click.UsageError("give either --all or one WORKER id", ctx)
        if target and target not in guard(inspector.control_targets):
            raise NotFound(f"no live worker or supervisor {target!r} (see `resq workers`)")
        receivers = guard(lambda: inspector.control(cmd, target or "*"))
        if as_json:
            click.echo(json.dumps({"cmd": cmd, "target": target or "*", "receivers": receivers}))
        else:
            click.echo(f"{cmd} sent to {'all workers' if everyone else target} ({receivers} supervisors listening)")

    return command


for _cmd in CONTROL_COMMANDS:
    workers.add_command(_control_command(_cmd))


# -- jobs ---------------------------------------------------------------------------------------------


@click.command()
@ops_options
@click.argument("job_id", metavar="ID")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the last error's traceback.")
@json_option
def job(
    app_ref: str | None, url: str | None, namespace: str | None, job_id: str, show_traceback: bool, as_json: bool
) -> None:
    """A job's record (task, queue, status, attempts, times, arguments, last error) and its history."""
    inspector = inspector_from(app_ref, url, namespace)
    info = guard(lambda: inspector.job_info(job_id))
    if as_json:
        click.echo(to_json(info))
        return
    click.echo(format_job(info, show_traceback))


def format_job(info: dict[str, Any], show_traceback: bool = False) -> str:
    """A job's info (from ``Job.info()``) as readable text: fields, then its history."""
    error = info.get("error") or {}
    fields = [
        ("id", info["id"]),
        ("task", info["task"]),
        ("queue", info["queue"]),
        ("status", info["status"]),
        ("attempts", info["attempts"]),
        ("worker", info.get("worker") or "-"),
        *[(name, _dt(info.get(f"{name}_at"))) for name in ("enqueued", "due", "started", "finished")],
        ("duration", "-" if info.get("duration_ms") is None else f"{info['duration_ms']} ms"),
        ("args", json.dumps(info.get("args"), default=str)),
        ("kwargs", json.dumps(info.get("kwargs"), default=str)),
    ]
    if error:
        fields.append(("error", f"{error.get('type', '?')}: {error.get('message', '')}"))
    lines = [table(["", ""], fields).split("\n", 1)[1]]
    if show_traceback and error.get("traceback"):
        lines += ["", error["traceback"].rstrip()]
    history = info.get("history") or []
    if history:
        lines += ["", "history (UTC):"]
        lines += [
            "  " + line
            for line in table(
                ["TIME", "EVENT", "ATTEMPT", "DETAILS"],
                [[_dt(e.get("at"), ms=True), e.get("event", "?"), e.get("attempt", ""), _details(e)] for e in history],
            ).splitlines()
        ]
    return "\n".join(lines)


def _dt(value: datetime | None, ms: bool = False) -> str:
    if value is None:
        return "-"
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f" if ms else "%Y-%m-%d %H:%M:%S")
    return text[:-3] if ms else text


def _details(event: dict[str, Any]) -> str:
    parts = []
    if event.get("worker"):
        parts.append(f"worker {event['worker']}")
    if event.get("duration_ms") is not None:
        parts.append(f"{event['duration_ms']} ms")
    if event.get("due_ms"):
        parts.append(f"due {when(int(event['due_ms']))}")
    for name in ("from", "reason", "error"):
        if event.get(name):
            parts.append(f"{name}: {event[name]}" if name != "error" else str(event[name]))
    return truncate(", ".join(parts), 100)


ENQUEUE_EPILOG = """\b
Examples:
  resq enqueue myapp.tasks.send_mail --args '["a@b.c", "hi"]'
  resq enqueue report --kwargs '{"month": 5}' --queue reports --in 10m
  resq enqueue cleanup --at 2030-01-01T03:00:00+01:00 --json
"""


@click.command(epilog=ENQUEUE_EPILOG)
@ops_options
@click.argument("task")
@click.option("--args", "args_json", default="[]", show_default=True, help="Positional arguments, a JSON list.")
@click.option("--kwargs", "kwargs_json", default="{}", show_default=True, help="Keyword arguments, a JSON object.")
@click.option("-q", "--queue", default=None, help="The queue (default: the task's, else 'default').")
@click.option("--in", "delay", default=None, help="Run after this delay: 90, 90s, 30m, 12h, 7d.")
@click.option("--at", "at", default=None, help="Run at this ISO 8601 time (UTC when it has no offset).")
@click.option("--id", "job_id", default=None, help="The job id (an idempotency key).")
@json_option
def enqueue(
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    task: str,
    args_json: str,
    kwargs_json: str,
    queue: str | None,
    delay: str | None,
    at: str | None,
    job_id: str | None,
    as_json: bool,
) -> None:
    """Enqueue TASK by name, without importing it (the worker that runs it decides whether it exists)."""
    ctx = click.get_current_context()
    args, kwargs = _json_arg(ctx, args_json, list, "--args"), _json_arg(ctx, kwargs_json, dict, "--kwargs")
    seconds = guard(lambda: parse_duration(delay)) if delay is not None else None
    when_at = _iso_time(ctx, at) if at is not None else None
    inspector = inspector_from(app_ref, url, namespace)
    new_id, target, status = guard(
        lambda: inspector.enqueue(task, args, kwargs, queue=queue, delay=seconds, at=when_at, job_id=job_id)
    )
    if as_json:
        click.echo(json.dumps({"id": new_id, "task": task, "queue": target, "status": status}))
    else:
        click.echo(f"enqueued {new_id} ({task}) on {target}: {status}")


def _json_arg(ctx: click.Context, text: str, kind: type, option: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.UsageError(f"{option} is not valid JSON: {exc}", ctx) from exc
    if not isinstance(value, kind):
        raise click.UsageError(f"{option} must be a JSON {'list' if kind is list else 'object'}", ctx)
    return value


def _iso_time(ctx: click.Context, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.UsageError(f"--at is not an ISO 8601 time: {text!r}", ctx) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- live events --------------------------------------------------------------------------------------

EVENTS_EPILOG = """\b
Examples:
  resq events
  resq events --queue mail --status failed,dead
  resq events --json --count 100 > events.jsonl
"""


@click.command(epilog=EVENTS_EPILOG)
@ops_options
@click.option("--task", "tasks", default=None, help="Only these tasks (comma-separated names).")
@click.option("--queue", "queue_names", default=None, help="Only these queues (comma-separated).")
@click.option(
    "--status",
    "statuses",
    default=None,
    help="Only these events: enqueued, scheduled, started, succeeded, failed, retrying, dead, "
    "cancelled, cancel_requested (comma-separated).",
)
@click.option("--count", default=None, type=click.IntRange(1), help="Exit after N matching events.")
@json_option
def events(
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    tasks: str | None,
    queue_names: str | None,
    statuses: str | None,
    count: int | None,
    as_json: bool,
) -> None:
    """Follow every job's lifecycle events live, across all workers (Ctrl-C stops)."""
    inspector = inspector_from(app_ref, url, namespace)
    wanted = {"task": _set(tasks), "queue": _set(queue_names), "event": _set(statuses)}
    with contextlib.suppress(KeyboardInterrupt):
        _follow(inspector, wanted, count, as_json)


def _follow(inspector: Inspector, wanted: dict[str, set[str] | None], count: int | None, as_json: bool) -> None:
    seen = 0
    for event in inspector.events():
        if event is None or not all(
            values is None or str(event.get(name)) in values for name, values in wanted.items()
        ):
            continue
        click.echo(json.dumps(event, default=str) if as_json else format_event(event))
        seen += 1
        if count is not None and seen >= count:
            return


def _set(text: str | None) -> set[str] | None:
    if not text:
        return None
    return {part.strip() for part in text.split(",") if part.strip()}


def format_event(event: dict[str, Any]) -> str:
    """One event as a line: time (UTC), event, job id, task, queue, attempt, details."""
    at = datetime.fromtimestamp(int(event.get("at_ms", 0)) / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
    return "  ".join(
        [
            at,
            f"{event.get('event', '?'):<16}",
            str(event.get("job_id", "")),
            str(event.get("task", "")),
            str(event.get("queue", "")),
            f"attempt {event.get('attempt', 0)}",
            _details(event),
        ]
    ).rstrip()
