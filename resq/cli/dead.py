"""``resq dead list|show|retry|purge`` and ``resq queue clear``: the operator's repairs, added to the
``resq`` group by :mod:`resq.cli.group`.

Bulk actions work in batched pipelines (1000 ids per round trip) and show a progress bar on stderr.
"""

from __future__ import annotations

import json
import sys

import click

from resq.cli.common import (
    NotFound,
    confirm,
    guard,
    inspector_from,
    json_option,
    ops_options,
    parse_duration,
    table,
    truncate,
    when,
    yes_option,
)
from resq.cli.ops import format_job
from resq.job import JobStatus
from resq.ops import to_json

__all__ = ["dead", "queue"]

DEAD_EPILOG = """\b
Examples:
  resq dead list --limit 20
  resq dead show 018f3a5c2b7e4a1b2c3d
  resq dead retry 018f3a5c2b7e4a1b2c3d
  resq dead retry --all --queue mail
  resq dead retry --all --task myapp.tasks.send_mail --error SMTPError
  resq dead purge --older-than 7d -y
"""


@click.group(epilog=DEAD_EPILOG)
def dead() -> None:
    """Jobs that will not run again: list, show, retry, purge."""


@dead.command("list", short_help="The most recent dead jobs, newest first.")
@ops_options
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="Show at most N jobs.")
@click.option("-q", "--queue", default=None, help="Only this queue.")
@json_option
def dead_list(
    app_ref: str | None, url: str | None, namespace: str | None, limit: int, queue: str | None, as_json: bool
) -> None:
    """The most recent dead jobs, newest first: id, queue, task, time of death, last error."""
    inspector = inspector_from(app_ref, url, namespace)
    found = guard(lambda: inspector.dead(limit, queue))
    if as_json:
        click.echo(to_json([d.as_dict() for d in found]))
        return
    if not found:
        click.echo("no dead jobs")
        return
    total = guard(lambda: inspector.dead_count(queue))
    click.echo(
        table(
            ["ID", "QUEUE", "TASK", "DIED (UTC)", "ERROR"],
            [[d.id, d.queue, d.task, when(d.died_ms), truncate(d.error, 80)] for d in found],
        )
    )
    if total > len(found):
        click.echo(f"({len(found)} of {total} shown; --limit N for more)")


@dead.command("show")
@ops_options
@click.argument("job_id", metavar="ID")
@json_option
def dead_show(app_ref: str | None, url: str | None, namespace: str | None, job_id: str, as_json: bool) -> None:
    """A dead job's record, last error with its traceback, and history."""
    inspector = inspector_from(app_ref, url, namespace)
    info = guard(lambda: inspector.job_info(job_id))
    if as_json:
        click.echo(to_json(info))
        return
    click.echo(format_job(info, show_traceback=True))
    if info["status"] != JobStatus.DEAD:
        click.echo(f"\nnote: job {job_id} is {info['status']}, not dead", err=True)


@dead.command("retry", short_help="Queue dead jobs again: one by ID, or --all.")
@ops_options
@click.argument("job_id", metavar="[ID]", required=False)
@click.option("--all", "everyone", is_flag=True, help="Every dead job (of --queue, --task, --error).")
@click.option("-q", "--queue", default=None, help="With --all: only this queue.")
@click.option("--task", default=None, help="With --all: only the jobs of this task (its registered name).")
@click.option(
    "--error", "error_type", default=None, help="With --all: only jobs whose last error has this type (SMTPError)."
)
@json_option
@click.pass_context
def dead_retry(
    ctx: click.Context,
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    job_id: str | None,
    everyone: bool,
    queue: str | None,
    task: str | None,
    error_type: str | None,
    as_json: bool,
) -> None:
    """Queue dead jobs again for a fresh series of attempts: one by ID, or --all (optionally only those
    of a queue, a task, an error type)."""
    if everyone == bool(job_id):
        raise click.UsageError("give either one job ID or --all", ctx)
    if job_id and (queue or task or error_type):
        raise click.UsageError("--queue, --task and --error go with --all", ctx)
    inspector = inspector_from(app_ref, url, namespace)
    if job_id:
        target = guard(lambda: inspector.retry_dead(job_id))
        click.echo(
            json.dumps({"id": job_id, "queue": target, "status": JobStatus.QUEUED.value})
            if as_json
            else f"requeued {job_id} on {target}"
        )
        return
    total = guard(lambda: inspector.dead_count(queue))
    with click.progressbar(length=total, label="requeueing dead jobs", file=sys.stderr) as bar:
        revived = guard(
            lambda: inspector.retry_all_dead(queue, progress=bar.update, task=task, error=error_type or None)
        )
    click.echo(json.dumps({"requeued": revived}) if as_json else f"requeued {revived} dead jobs")


@dead.command("purge", short_help="Delete dead jobs and their records (asks first).")
@ops_options
@click.option("--older-than", default=None, help="Only jobs dead for longer than this: 90s, 30m, 12h, 7d.")
@click.option("-q", "--queue", default=None, help="Only this queue.")
@yes_option
@json_option
def dead_purge(
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    older_than: str | None,
    queue: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete dead jobs (all, or those dead for longer than --older-than) and their records; asks
    first unless -y."""
    seconds = guard(lambda: parse_duration(older_than)) if older_than else None
    inspector = inspector_from(app_ref, url, namespace)
    total = guard(lambda: inspector.dead_count(queue))
    if total == 0:
        click.echo(json.dumps({"purged": 0}) if as_json else "no dead jobs: nothing purged")
        return
    which = f" dead for longer than {older_than}" if older_than else ""
    of = f" of queue {queue!r}" if queue else ""
    confirm(f"Delete the dead jobs{of}{which} ({total} dead in all) and their records?", yes)
    with click.progressbar(length=total, label="purging dead jobs", file=sys.stderr) as bar:
        deleted = guard(lambda: inspector.purge_dead(seconds, queue, progress=bar.update))
    click.echo(json.dumps({"purged": deleted}) if as_json else f"purged {deleted} dead jobs")


@click.group()
def queue() -> None:
    """Act on one queue (see `resq queues` to list them)."""


#: ``resq queue pause|resume --group G``: one group of the queue (fair queuing, docs/flow-control.md).
group_option = click.option("--group", "group", default=None, help="Only this group of the queue's jobs.")


@queue.command("pause", short_help="Pause a queue (or one of its groups) for every worker (its jobs wait).")
@ops_options
@click.argument("name")
@group_option
@json_option
def queue_pause(
    app_ref: str | None, url: str | None, namespace: str | None, name: str, group: str | None, as_json: bool
) -> None:
    """Pause queue NAME for every worker: its jobs stay queued and no worker starts one (a job already
    running finishes) until `resq queue resume NAME`. Producers go on enqueueing. With --group G, only
    the jobs of group G wait; the queue's other groups go on."""
    _set_paused(app_ref, url, namespace, name, group, as_json, paused=True)


@queue.command("resume", short_help="Resume a paused queue (or one of its groups).")
@ops_options
@click.argument("name")
@group_option
@json_option
def queue_resume(
    app_ref: str | None, url: str | None, namespace: str | None, name: str, group: str | None, as_json: bool
) -> None:
    """Let workers start the jobs of queue NAME (or of its group G) again (within a second)."""
    _set_paused(app_ref, url, namespace, name, group, as_json, paused=False)


def _set_paused(
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    name: str,
    group: str | None,
    as_json: bool,
    paused: bool,
) -> None:
    inspector = inspector_from(app_ref, url, namespace)
    if name not in guard(inspector.queue_names):
        raise NotFound(f"no queue named {name!r} (see `resq queues`)")
    word = "paused" if paused else "resumed"
    if group is not None:
        app = inspector.app
        guard(lambda: app.pause_group(group, queue=name) if paused else app.resume_group(group, queue=name))
        shown = {"queue": name, "group": group, "paused": paused}
        click.echo(json.dumps(shown) if as_json else f"{word} group {group} of {name}")
        return
    guard(lambda: inspector.pause_queue(name) if paused else inspector.resume_queue(name))
    click.echo(json.dumps({"queue": name, "paused": paused}) if as_json else f"{word} {name}")


@queue.command("clear", short_help="Delete every job of a queue (asks first).")
@ops_options
@click.argument("name")
@yes_option
@json_option
def queue_clear(
    app_ref: str | None, url: str | None, namespace: str | None, name: str, yes: bool, as_json: bool
) -> None:
    """Delete every waiting, running and scheduled job of queue NAME (dead jobs are kept); asks first
    unless -y."""
    inspector = inspector_from(app_ref, url, namespace)
    found = {q.name: q for q in guard(inspector.queues)}
    if name not in found:
        raise NotFound(f"no queue named {name!r} (see `resq queues`)")
    q = found[name]
    confirm(
        f"Delete the {q.waiting + q.running + q.scheduled} jobs of queue {name!r} "
        f"({q.waiting} waiting, {q.running} running, {q.scheduled} scheduled)?",
        yes,
    )
    removed = guard(lambda: inspector.clear_queue(name))
    click.echo(json.dumps({"queue": name, "removed": removed}) if as_json else f"cleared {name}: {removed} jobs")
