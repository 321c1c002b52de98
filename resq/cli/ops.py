"""The operator's commands, added to the ``resq`` group by :mod:`resq.cli.group`: ``stats``, ``queues``,
``workers`` (and ``workers pause|resume|stop``), ``job``, ``enqueue`` and ``events``; ``dead …`` and
``queue clear`` live in :mod:`resq.cli.dead`.

Each reads ``-A APP``/``RESQ_APP``, or just ``RESQ_REDIS_URL``/``RESQ_NAMESPACE`` (``--url``,
``--namespace``), prints aligned tables in a terminal and JSON with ``--json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click

from resq.broker import COUNTERS
from resq.cli.common import (
    TIME_FORMAT,
    BadInput,
    NotFound,
    ago,
    app_option,
    guard,
    inspector_from,
    json_option,
    load_app,
    ops_options,
    parse_duration,
    since,
    stamp,
    table,
    truncate,
    when,
)
from resq.job import JobStatus
from resq.ops import CONTROL_COMMANDS, Inspector, QueueInfo, to_json

__all__ = [
    "EventColumns",
    "batch",
    "enqueue",
    "events",
    "format_event",
    "format_job",
    "format_progress",
    "job",
    "queues",
    "stats",
    "tasks",
    "workers",
]

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
            _ms(q.wait_p50_ms),
            _ms(q.wait_p99_ms),
            ("paused" if q.paused else "") + ("" if q.served else " ! no worker"),
        ]
        for q in found
    ]
    header = ["QUEUE", "WAITING", "RUNNING", "OLDEST", "SCHEDULED", "DEAD", "WORKERS", "WAIT P50", "WAIT P99", ""]
    return table(header, rows)


def _ms(value: int | None) -> str:
    """A wait in ms as the tables show durations (``-`` when none was measured)."""
    return ago(None if value is None else value / 1000)


@click.command(epilog=STATS_EPILOG, short_help="The overview: queues, workers, jobs processed and failed.")
@ops_options
@click.option(
    "--days",
    default=0,
    show_default=True,
    type=click.IntRange(0, 366),
    help="Also show the counters of each of the last N days.",
)
@click.option(
    "--watch",
    "interval",
    type=click.FloatRange(0.1),
    is_flag=False,
    flag_value=2.0,
    default=None,
    metavar="[SECONDS]",
    help="Refresh every SECONDS (default 2) until Ctrl-C; clears the screen in a terminal.",
)
@json_option
def stats(
    app_ref: str | None, url: str | None, namespace: str | None, days: int, interval: float | None, as_json: bool
) -> None:
    """Queues (waiting, running, oldest, scheduled, dead; a flag when no worker serves one), live and
    paused workers, and jobs processed, failed, retried and dead today and in total."""
    inspector = inspector_from(app_ref, url, namespace)
    if interval is None:
        click.echo(_stats_text(inspector, days, as_json))
        return
    with contextlib.suppress(KeyboardInterrupt):
        _watch(inspector, days, as_json, interval)


def _watch(inspector: Inspector, days: int, as_json: bool, interval: float) -> None:
    """Print the stats every ``interval`` seconds (the screen cleared first in a terminal) until Ctrl-C;
    an error (Redis away for a while) is shown in place of a frame and the watch goes on."""
    terminal = sys.stdout.isatty() and not as_json
    while True:
        try:
            frame = _stats_text(inspector, days, as_json, compact=True)
        except click.ClickException as exc:
            frame = f"Error: {exc.format_message()}"
        if terminal:
            click.clear()
        if not as_json:
            now = datetime.now(UTC).strftime(TIME_FORMAT)
            click.echo(f"resq stats at {now} UTC, every {interval:g} s (Ctrl-C stops)\n")
        click.echo(frame)
        time.sleep(interval)


def _stats_data(inspector: Inspector, days: int) -> tuple[dict[str, Any], list[QueueInfo]]:
    found = guard(inspector.queues)
    counts = guard(lambda: inspector.stats(max(days, 1)))
    live = guard(inspector.workers)
    data: dict[str, Any] = {
        "queues": [q.as_dict() for q in found],
        "workers": len(live),
        "paused": inspector.paused_count(live),
        "today": counts["today"],
        "total": counts["total"],
        "scheduled": sum(q.scheduled for q in found),
        "dead": sum(q.dead for q in found),
        "days": counts["days"] if days else [],
    }
    if not found:
        data["other_namespaces"] = guard(inspector.other_namespaces)
    return data, found


def _stats_text(inspector: Inspector, days: int, as_json: bool, compact: bool = False) -> str:
    data, found = _stats_data(inspector, days)
    if as_json:
        return json.dumps(data, default=str) if compact else to_json(data)
    paused = f" ({data['paused']} paused)" if data["paused"] else ""
    lines = [
        _queue_rows(found) if found else _no_queues(inspector, data.get("other_namespaces", [])),
        "",
        f"workers: {data['workers']} live{paused}   scheduled: {data['scheduled']}   dead: {data['dead']}",
        "",
        table(["JOBS", "TODAY", "TOTAL"], [[n, data["today"][n], data["total"][n]] for n in COUNTERS]),
    ]
    if days:
        lines += [
            "",
            table(
                ["DAY (UTC)", *[n.upper() for n in COUNTERS]],
                [[d["day"], *[d[n] for n in COUNTERS]] for d in data["days"]],
            ),
        ]
    return "\n".join(lines)


def _no_queues(inspector: Inspector, others: list[str]) -> str:
    """``no queues yet``, with the namespaces of this database that do hold resq keys."""
    namespace = inspector.broker.keys.namespace
    if not others:
        return f"no queues yet (namespace {namespace!r})"
    listed = ", ".join(repr(n) for n in others)
    return (
        f"no queues yet in namespace {namespace!r}; namespaces with resq keys here: {listed} "
        f"(--namespace {others[0]} or RESQ_NAMESPACE={others[0]})"
    )


@click.command(short_help="Each queue: waiting, running, oldest, scheduled, dead, workers.")
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


@click.group(invoke_without_command=True, epilog=WORKERS_EPILOG, short_help="Live workers; pause, resume or stop them.")
@ops_options
@json_option
@click.pass_context
def workers(ctx: click.Context, app_ref: str | None, url: str | None, namespace: str | None, as_json: bool) -> None:
    """List live workers (STATE: busy, idle, or PAUSED by `resq workers pause`); pause, resume or stop
    them through Redis (works across machines)."""
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
            w.state.upper() if w.paused else w.state,
            ",".join(w.current) or "-",
        ]
        for w in found
    ]
    click.echo(table(["WORKER", "SUPERVISOR", "PID", "QUEUES", "UP", "HEARTBEAT", "STATE", "CURRENT JOB"], rows))
    paused = sum(w.paused for w in found)
    if paused:
        click.echo(f"({paused} of {len(found)} paused: `resq workers resume --all` or WORKER resumes them)")


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


JOB_EPILOG = """\b
Examples:
  resq job 0196a4c5e8f1a3b2c4d5e6
  resq job 0196a4c5e8f1a3b2c4d5e6 --traceback
  resq job cancel 0196a4c5e8f1a3b2c4d5e6
"""


class _JobGroup(click.Group):
    """``resq job ID`` shows a job; ``resq job cancel ID`` cancels one (a first word that is no
    sub-command is a job id)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS] ID | cancel ID")


def _parent_options(ctx: click.Context, app_ref: str | None, url: str | None, namespace: str | None) -> Inspector:
    """An inspector from a sub-command's options, or from the ones given before it (``resq job --url U ID``)."""
    parent = (ctx.parent.obj if ctx.parent is not None else None) or {}
    return inspector_from(
        app_ref or parent.get("app_ref"), url or parent.get("url"), namespace or parent.get("namespace")
    )


@click.group(cls=_JobGroup, epilog=JOB_EPILOG, short_help="One job: its record, result, history; cancel it.")
@ops_options
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the last error's traceback.")
@json_option
@click.pass_context
def job(
    ctx: click.Context, app_ref: str | None, url: str | None, namespace: str | None, show_traceback: bool, as_json: bool
) -> None:
    """A job's record (task, queue, status, attempts, times, arguments, result or last error) and its
    history: `resq job ID`; `resq job cancel ID` cancels it."""
    ctx.obj = {
        "app_ref": app_ref,
        "url": url,
        "namespace": namespace,
        "show_traceback": show_traceback,
        "as_json": as_json,
    }


@job.command("show", hidden=True)
@ops_options
@click.argument("job_id", metavar="ID")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the last error's traceback.")
@json_option
@click.pass_context
def job_show(
    ctx: click.Context,
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    job_id: str,
    show_traceback: bool,
    as_json: bool,
) -> None:
    """A job's record and history."""
    parent = ctx.parent.obj if ctx.parent is not None and ctx.parent.obj else {}
    inspector = _parent_options(ctx, app_ref, url, namespace)
    info = guard(lambda: inspector.job_info(job_id))
    if as_json or parent.get("as_json"):
        click.echo(to_json(info))
        return
    click.echo(format_job(info, show_traceback or bool(parent.get("show_traceback"))))


@job.command("cancel", short_help="Cancel a queued, scheduled or running job.")
@ops_options
@click.argument("job_id", metavar="ID")
@json_option
@click.pass_context
def job_cancel(
    ctx: click.Context, app_ref: str | None, url: str | None, namespace: str | None, job_id: str, as_json: bool
) -> None:
    """Cancel job ID: a queued or scheduled job is removed, a running one is asked to stop (exit 1
    when it had already finished)."""
    parent = ctx.parent.obj if ctx.parent is not None and ctx.parent.obj else {}
    inspector = _parent_options(ctx, app_ref, url, namespace)
    status = guard(lambda: inspector.cancel(job_id))
    if as_json or parent.get("as_json"):
        click.echo(json.dumps({"id": job_id, "status": str(status)}))
    elif status == JobStatus.CANCELLED:
        click.echo(f"cancelled {job_id}")
    elif status == JobStatus.RUNNING:
        click.echo(f"cancel requested for {job_id}: it is running, its worker stops it")
    if status not in (JobStatus.CANCELLED, JobStatus.RUNNING):
        raise click.ClickException(f"job {job_id} already {status}: nothing to cancel")


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
        *[(name, stamp(info.get(f"{name}_at"))) for name in ("enqueued", "due", "started", "finished")],
        ("duration", "-" if info.get("duration_ms") is None else f"{info['duration_ms']} ms"),
        ("args", json.dumps(info.get("args"), default=str)),
        ("kwargs", json.dumps(info.get("kwargs"), default=str)),
    ]
    if info.get("progress"):
        fields.insert(5, ("progress", format_progress(info["progress"])))
    if info.get("priority"):
        fields.insert(4, ("priority", info["priority"]))
    fields[4:4] = [(name, text) for name, text in format_limits(info.get("limits"))]
    if info.get("status") == JobStatus.SUCCEEDED:
        fields.append(("result", truncate(json.dumps(info.get("result"), default=str), 200)))
    if error:
        fields.append(("last error", f"{error.get('type', '?')}: {error.get('message', '')}"))
    fields += _edge_rows(info)
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
                [[stamp(e.get("at")), e.get("event", "?"), e.get("attempt", ""), _details(e)] for e in history],
            ).splitlines()
        ]
    return "\n".join(lines)


def _edge_rows(info: dict[str, Any]) -> list[tuple[str, str]]:
    """A job's place in a workflow (``Inspector.edges``) as rows: its join, parents and children."""
    rows: list[tuple[str, str]] = []
    if info.get("join"):
        rows.append(("callback of", f"{info['join']}  (resq batch {info['join']})"))
    for name in ("parents", "children"):
        for i, edge in enumerate(info.get(name) or []):
            rows.append((name if i == 0 else "", f"{edge['id']}  {edge['status'] or '?'}  ({edge['via']})"))
    return rows


def format_limits(limits: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A job's flow control (``info()["limits"]``) as rows: ``concurrency  1 at once per flow.sync:ada``."""
    if not limits:
        return []
    rows = [("group", limits["group"])] if "group" in limits else []
    if "concurrency" in limits:
        c = limits["concurrency"]
        rows.append(("concurrency", f"{c['limit']} at once per {c['key']}"))
    if "rate" in limits:
        r = limits["rate"]
        rows.append(("rate limit", f"{r['starts']} per {r['window_s']:g} s per {r['key']}"))
    if "expires_at" in limits:
        rows.append(("expires", stamp(limits["expires_at"])))
    return rows


def format_progress(progress: dict[str, Any]) -> str:
    """A job's last progress report (``info()["progress"]``) as ``42%  page 3 of 7  (2s ago)``."""
    percent = math.floor(float(progress.get("fraction") or 0.0) * 100 + 1e-9)
    at = progress.get("at")
    age = "-" if not isinstance(at, datetime) else ago(max(0.0, (datetime.now(UTC) - at).total_seconds()))
    note = truncate(progress["note"], 100) if progress.get("note") else ""
    return "  ".join(part for part in (f"{percent}%", note, f"({age} ago)") if part)


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
  resq enqueue -A myapp.tasks myapp.tasks.send_mail --args '["a@b.c", "hi"]'
  resq enqueue myapp.tasks.send_mail --args '["a@b.c", "hi"]'   # no -A: the worker decides
  resq enqueue report --kwargs '{"month": 5}' --queue reports --in 10m
  resq enqueue cleanup --at 2030-01-01T03:00:00+01:00 --json
"""


BATCH_EPILOG = """\b
Examples:
  resq batch 0196a4c5e8f1a3b2c4d5e6          # a batch, a chord or a depends_on, by its id
  resq batch 0196a4c5e8f1a3b2c4d5e6 --json
"""


@click.command(epilog=BATCH_EPILOG, short_help="A batch, chord or depends_on: its counts, callbacks and jobs.")
@ops_options
@click.argument("batch_id", metavar="ID")
@json_option
def batch(app_ref: str | None, url: str | None, namespace: str | None, batch_id: str, as_json: bool) -> None:
    """A batch (``app.batch()``), a chord or a job's depends_on by its id (a chord's and a dependent job's
    are their callback's): how many of its jobs succeeded, failed or are pending, its callbacks, its jobs."""
    inspector = inspector_from(app_ref, url, namespace)
    found = guard(lambda: inspector.batch(batch_id))
    if as_json:
        click.echo(to_json(found))
        return
    click.echo(format_batch(found))


def format_batch(found: dict[str, Any]) -> str:
    """``Inspector.batch`` as readable text."""
    state = "open" if found["open"] else ("complete" if found["complete"] else "running")
    rows = [
        ("id", found["id"]),
        ("kind", found["kind"]),
        ("state", state),
        (
            "jobs",
            f"{found['total']}: {found['succeeded']} succeeded, {found['failed']} failed, {found['pending']} pending",
        ),
        ("created", stamp(found.get("created_at"))),
    ]
    if found.get("description"):
        rows.insert(1, ("description", found["description"]))
    for role, edge in found["callbacks"].items():
        rows.append((f"on {role}", f"{edge['id']}  {edge['status'] or '?'}"))
    lines = [table(["", ""], rows).split("\n", 1)[1]]
    jobs = found["jobs"]
    if jobs:
        shown = len(jobs)
        lines += ["", f"jobs ({shown} of {found['total']}):" if shown < found["total"] else "jobs:"]
        lines += ["  " + line for line in table(["ID", "STATUS"], [[j, s] for j, s in jobs.items()]).splitlines()]
    return "\n".join(lines)


@click.command(epilog=ENQUEUE_EPILOG, short_help="Enqueue a job by task name.")
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
    """Enqueue a job of TASK by name.

    With an app (-A or RESQ_APP), TASK must be one it registers (an unknown name is refused with the
    closest one, exit 2) and goes to the task's own queue. Without, no code is imported and the name is
    sent as is: the worker that fetches it decides (a name no worker knows ends dead as an unknown task).
    """
    ctx = click.get_current_context()
    args, kwargs = _json_arg(ctx, args_json, list, "--args"), _json_arg(ctx, kwargs_json, dict, "--kwargs")
    seconds = guard(lambda: parse_duration(delay)) if delay is not None else None
    when_at = _iso_time(ctx, at) if at is not None else None
    inspector = inspector_from(app_ref, url, namespace)
    new_id, target, status = guard(
        lambda: inspector.enqueue(
            task, args, kwargs, queue=queue, delay=seconds, at=when_at, job_id=job_id, registered_only=bool(app_ref)
        )
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


# -- tasks --------------------------------------------------------------------------------------------

TASKS_EPILOG = """\b
Examples:
  resq tasks -A myapp.tasks
  resq tasks -A myapp.tasks:app --json | jq '.[].name'
"""


@click.command(epilog=TASKS_EPILOG, short_help="The tasks an app registers, with their options.")
@app_option
@json_option
def tasks(app_ref: str | None, as_json: bool) -> None:
    """The tasks the app registers (-A or RESQ_APP), with their options: queue, retries, backoff,
    timeout, soft timeout, result TTL, and the periodic entries that run them. Reads no Redis."""
    if not app_ref:
        raise BadInput("which app? give -A module:attr or set RESQ_APP")
    app = guard(lambda: load_app(app_ref))
    found = Inspector(app).tasks()
    if as_json:
        click.echo(to_json([t.as_dict() for t in found]))
        return
    if not found:
        click.echo(f"{app_ref} registers no tasks (is it the module that defines them?)")
        return
    rows = [
        [
            t.name,
            t.queue,
            t.retries,
            t.backoff if t.retries else "-",
            _seconds(t.timeout),
            _seconds(t.soft_timeout),
            _seconds(t.result_ttl, "app default"),
            ",".join(t.periodic) or "-",
        ]
        for t in found
    ]
    click.echo(
        table(["TASK", "QUEUE", "RETRIES", "BACKOFF", "TIMEOUT", "SOFT TIMEOUT", "RESULT TTL", "PERIODIC"], rows)
    )


def _seconds(value: float | None, none: str = "-") -> str:
    return none if value is None else f"{value:g}s"


# -- live events --------------------------------------------------------------------------------------

EVENTS_EPILOG = """\b
Examples:
  resq events
  resq events --queue mail --status failed,dead
  resq events --json --count 100 > events.jsonl
"""


@click.command(epilog=EVENTS_EPILOG, short_help="Follow job events live, across all workers.")
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
        guard(lambda: _follow(inspector, wanted, count, as_json))


def _follow(inspector: Inspector, wanted: dict[str, set[str] | None], count: int | None, as_json: bool) -> None:
    seen = 0
    columns = EventColumns()
    listening = False
    for event in inspector.events():
        if not listening:  # the first item comes once subscribed
            listening = True
            where = f"{inspector.broker.connection.safe_url()} namespace {inspector.broker.keys.namespace!r}"
            click.echo(f"listening for events on {where} (Ctrl-C stops)", err=True)
            if not as_json:  # on stderr too: stdout stays one event a line, for scripts
                click.echo(columns.header(), err=True)
        if event is None or not all(
            values is None or str(event.get(name)) in values for name, values in wanted.items()
        ):
            continue
        click.echo(json.dumps(event, default=str) if as_json else format_event(event, columns))
        seen += 1
        if count is not None and seen >= count:
            return


def _set(text: str | None) -> set[str] | None:
    if not text:
        return None
    return {part.strip() for part in text.split(",") if part.strip()}


class EventColumns:
    """The widths of the columns of ``resq events``: a minimum each, grown to the widest value seen, so
    that lines stay aligned as they stream."""

    NAMES = ("TIME (UTC)", "EVENT", "JOB", "TASK", "QUEUE", "ATTEMPT")

    def __init__(self) -> None:
        self.widths = [len("YYYY-MM-DD HH:MM:SS"), 16, 22, 20, 8, 7]

    def header(self) -> str:
        """The column names, aligned with the lines that follow."""
        return self.line([*self.NAMES, "DETAILS"])

    def line(self, cells: list[str]) -> str:
        """``cells`` padded to the widths (which grow to fit); the last cell is not padded."""
        for i, cell in enumerate(cells[: len(self.widths)]):
            self.widths[i] = max(self.widths[i], len(cell))
        padded = [cell.ljust(width) for cell, width in zip(cells, self.widths, strict=False)]
        return "  ".join([*padded, *cells[len(self.widths) :]]).rstrip()


def format_event(event: dict[str, Any], columns: EventColumns | None = None) -> str:
    """One event as a line: time (UTC), event, job id, task, queue, attempt, details, aligned on
    ``columns`` (a fresh set of minimum widths when none is given)."""
    return (columns or EventColumns()).line(
        [
            when(int(event.get("at_ms", 0))),
            str(event.get("event", "?")),
            str(event.get("job_id", "")),
            str(event.get("task", "")),
            str(event.get("queue", "")),
            str(event.get("attempt", 0)),
            _details(event),
        ]
    )
