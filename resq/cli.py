"""The ``resq`` command line: a click group. Only this module configures logging.

Extra sub-commands (``resq scheduler`` from ``resq_scheduler``) are discovered from the ``resq.commands``
entry-point group.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Any

import click

from resq.app import Resq, default_app
from resq.errors import ConfigError
from resq.log import LOG_FORMATS, configure, get_logger

__all__ = ["load_app", "main"]

#: Exit statuses.
RET_OK = 0
RET_CONFIG = 2

HELP_EPILOG = """\b
Examples:
  resq worker -A myapp.tasks:app -q high,default -c 4
  RESQ_APP=myapp.tasks resq worker --burst
  resq scheduler -A myapp.tasks:app
"""

log = get_logger("resq.cli")


def load_app(ref: str | None) -> Resq:
    """Import the app named ``module:attr`` (``attr`` defaults to ``app``); the current directory is
    importable. Without a reference, the app from ``RESQ_REDIS_URL``/``RESQ_NAMESPACE``.

    Raises:
        ConfigError: the module or attribute cannot be found, or is not a ``Resq``.
    """
    if not ref:
        return Resq(namespace=os.environ.get("RESQ_NAMESPACE") or "resq")
    module_name, _, attr = ref.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import app module {module_name!r}: {exc}") from exc
    if attr:
        found = getattr(module, attr, None)
    else:
        found = getattr(module, "app", None)
        if found is None:
            found = next((v for v in vars(module).values() if isinstance(v, Resq)), None) or default_app()
    if not isinstance(found, Resq):
        raise ConfigError(f"{ref!r} is not a resq app (found {type(found).__name__}): use module:attr")
    return found


def _app_from(ctx: click.Context, ref: str | None) -> Resq:
    try:
        return load_app(ref)
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from exc


class _Group(click.Group):
    """The ``resq`` group, with the commands of installed extensions added on first use."""

    def _load_extensions(self) -> None:
        for ep in entry_points(group="resq.commands"):
            if ep.name not in self.commands:
                try:
                    self.add_command(ep.load(), ep.name)
                except Exception as exc:  # a broken extension must not take the CLI down
                    click.echo(f"resq: cannot load command {ep.name!r}: {exc}", err=True)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_extensions()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands:
            self._load_extensions()
        return super().get_command(ctx, name)


@click.group(cls=_Group, epilog=HELP_EPILOG)
@click.version_option(package_name="resq")
def main() -> None:
    """resq: background jobs on Redis."""


def app_option(fn: Any) -> Any:
    """``-A/--app``, read from ``RESQ_APP`` when absent."""
    return click.option("-A", "--app", "app_ref", envvar="RESQ_APP",
                        help="The app as module:attr (attr defaults to app); env RESQ_APP.")(fn)


def logging_options(fn: Any) -> Any:
    """``--log-format`` and ``--log-level``."""
    fn = click.option("--log-level", default="INFO", show_default=True, envvar="RESQ_LOG_LEVEL",
                      type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))(fn)
    return click.option("--log-format", default="console", show_default=True, envvar="RESQ_LOG_FORMAT",
                        type=click.Choice(LOG_FORMATS))(fn)


@main.command(epilog=HELP_EPILOG)
@app_option
@click.option("-q", "--queues", default="default", show_default=True,
              help="Queues to serve, comma-separated, highest priority first.")
@click.option("-c", "--concurrency", default=1, show_default=True, type=click.IntRange(1),
              help="Worker processes under this supervisor.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="Fetching threads per process (for I/O-bound tasks).")
@click.option("--prefetch", default=None, type=click.IntRange(1, 1000),
              help="Jobs leased per fetch by each thread (default: the app's prefetch setting, 1).")
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit 0.")
@click.option("--heartbeat-interval", type=click.FloatRange(0.1), default=None,
              help="Seconds between heartbeats (default 5); silent for 3 intervals = dead.")
@click.option("--grace-period", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Seconds running jobs get to finish after TERM/INT.")
@click.option("--max-jobs-per-child", type=click.IntRange(1), default=None, help="Replace a child after N jobs.")
@click.option("--max-memory-per-child", type=click.IntRange(1), default=None,
              help="Replace a child whose memory (RSS) reaches this many MB.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve Prometheus metrics on this port (needs resq[metrics]).")
@logging_options
def worker(app_ref: str | None, queues: str, concurrency: int, threads: int, prefetch: int | None, burst: bool,
           heartbeat_interval: float | None, grace_period: float, max_jobs_per_child: int | None,
           max_memory_per_child: int | None, metrics_port: int | None, log_format: str, log_level: str) -> None:
    """Run jobs from QUEUES (TERM/INT: graceful stop; QUIT: graceful, no time limit; USR1: kill the
    running jobs; USR2: pause; CONT: resume)."""
    from resq.keys import validate_name
    from resq.worker import Supervisor, WorkerConfig

    configure(log_format, log_level)
    ctx = click.get_current_context()
    if not app_ref:
        raise click.UsageError("which app? give -A module:attr or set RESQ_APP", ctx)
    app = _app_from(ctx, app_ref)
    if not app.tasks:
        log.warning("no_tasks", app=app_ref, hint="every job will go dead as an unknown task: is -A the module "
                    "that defines the tasks?")
    try:
        names = [validate_name(q.strip(), "queue name") for q in queues.split(",") if q.strip()]
        if heartbeat_interval is not None:
            app.reconfigure(heartbeat_interval=heartbeat_interval)
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from exc
    config = WorkerConfig(queues=names or ["default"], concurrency=concurrency, threads=threads,
                          prefetch=prefetch or app.settings.prefetch, burst=burst, grace_period_s=grace_period,
                          max_jobs_per_child=max_jobs_per_child, max_memory_per_child_mb=max_memory_per_child,
                          metrics_port=metrics_port)
    sys.exit(Supervisor(app, config).run())
from resq import cli_ops as _cli_ops  # noqa: E402,F401  (registers the operator commands)
