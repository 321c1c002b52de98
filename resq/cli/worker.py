"""``resq worker``: run jobs in a supervisor and its worker processes."""

from __future__ import annotations

import sys

import click

from resq.app import Resq
from resq.cli.common import app_option, configure_app, guard, load_app, logging_options, redis_options
from resq.errors import ConfigError
from resq.log import configure, get_logger

__all__ = ["HELP_EPILOG", "worker"]

HELP_EPILOG = """\b
Examples:
  resq worker -A myapp.tasks:app -q high,default -c 4
  resq worker -A myapp.tasks:app --scheduler
  RESQ_APP=myapp.tasks resq worker --burst
  resq scheduler -A myapp.tasks:app
"""

log = get_logger("resq.cli")


def _app_from(ctx: click.Context, ref: str | None, url: str | None = None, namespace: str | None = None) -> Resq:
    try:
        return configure_app(load_app(ref), ref, url, namespace)
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from exc


@click.command(epilog=HELP_EPILOG, short_help="Run jobs (a supervisor and its worker processes).")
@app_option
@redis_options
@click.option(
    "-q",
    "--queues",
    default="default",
    show_default=True,
    help="Queues to serve, comma-separated, highest priority first.",
)
@click.option(
    "-c",
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Worker processes under this supervisor.",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Fetching threads per process (for I/O-bound tasks).",
)
@click.option(
    "--prefetch",
    default=None,
    type=click.IntRange(1, 1000),
    help="Jobs leased per fetch by each thread (default: adaptive, 1 to 100 by how long jobs take).",
)
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit 0.")
@click.option(
    "--heartbeat-interval",
    type=click.FloatRange(0.1),
    default=None,
    help="Seconds between heartbeats (default 3); silent for 3 intervals = dead.",
)
@click.option(
    "--grace-period",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds running jobs get to finish after TERM/INT.",
)
@click.option("--max-jobs-per-child", type=click.IntRange(1), default=None, help="Replace a child after N jobs.")
@click.option(
    "--max-memory-per-child",
    type=click.IntRange(1),
    default=None,
    help="Replace a child whose memory (RSS) reaches this many MB.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve Prometheus metrics on this port (needs resq[metrics]).",
)
@click.option("--scheduler", is_flag=True, help="Also run a scheduler in this worker (like celery -B).")
@click.option(
    "--resque-queues",
    default="",
    help="Also take the jobs of these Resque-family queues (resque:queue:<name>), comma-separated "
    "(without -q: only these).",
)
@click.option(
    "--resque-namespace",
    default=None,
    help="The Resque namespace of --resque-queues (default: resque).",
)
@click.option("--no-banner", is_flag=True, help="Do not print the start-up banner.")
@logging_options
def worker(
    app_ref: str | None,
    url: str | None,
    namespace: str | None,
    queues: str,
    concurrency: int,
    threads: int,
    prefetch: int | None,
    burst: bool,
    heartbeat_interval: float | None,
    grace_period: float,
    max_jobs_per_child: int | None,
    max_memory_per_child: int | None,
    metrics_port: int | None,
    scheduler: bool,
    resque_queues: str,
    resque_namespace: str | None,
    no_banner: bool,
    log_format: str,
    log_level: str,
) -> None:
    """Run jobs from QUEUES (TERM/INT: graceful stop; QUIT: graceful, no time limit; USR1: kill the
    running jobs; USR2: pause; CONT: resume)."""
    from resq.settings import validate_name
    from resq.worker import Supervisor, WorkerConfig
    from resq.worker.banner import banner

    configure(log_format, log_level)
    ctx = click.get_current_context()
    if not app_ref:
        raise click.UsageError("which app? give -A module:attr or set RESQ_APP", ctx)
    app = _app_from(ctx, app_ref, url, namespace)
    if not app.tasks:
        log.warning(
            "no_tasks",
            app=app_ref,
            hint="every job will go dead as an unknown task: is -A the module that defines the tasks?",
        )
    try:
        names = [validate_name(q.strip(), "queue name") for q in queues.split(",") if q.strip()]
        resque = [validate_name(q.strip(), "Resque queue name") for q in resque_queues.split(",") if q.strip()]
        if resque:
            given = ctx.get_parameter_source("queues") is not click.core.ParameterSource.DEFAULT
            names = list(dict.fromkeys([*(names if given else []), *resque]))  # resq's queues of those names
        if heartbeat_interval is not None:
            app.reconfigure(heartbeat_interval=heartbeat_interval)
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from exc
    config = WorkerConfig(
        queues=app.served(names or ["default"]),
        concurrency=concurrency,
        threads=threads,
        prefetch=prefetch or app.settings.prefetch,
        burst=burst,
        grace_period_s=grace_period,
        max_jobs_per_child=max_jobs_per_child,
        max_memory_per_child_mb=max_memory_per_child,
        metrics_port=metrics_port,
        scheduler=scheduler,
        resque_queues=resque,
        resque_namespace=resque_namespace,
    )
    try:
        supervisor = Supervisor(app, config)
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from exc
    if not no_banner:
        click.echo(banner(app, config) + "\n", err=True)
    sys.exit(guard(supervisor.run))  # a refusal (credentials, ACL, TLS) ends it with one line
