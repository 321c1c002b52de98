"""The ``resq`` command line: a click group. Only this command line configures logging.

The group adds its command families explicitly (``worker``, the operator's commands, ``dead …`` and
``queue …``); extra sub-commands (``resq scheduler`` from ``resq_scheduler``) are discovered from the
``resq.commands`` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from resq.cli.acl import acl
from resq.cli.common import CONTEXT_SETTINGS, app_option, load_app, logging_options
from resq.cli.dashboard import dashboard
from resq.cli.dead import dead, queue
from resq.cli.ops import batch, enqueue, events, job, queues, stats, tasks, workers
from resq.cli.outbox import outbox
from resq.cli.worker import HELP_EPILOG, worker

__all__ = ["app_option", "load_app", "logging_options", "main"]

#: Exit statuses.
RET_OK = 0
RET_CONFIG = 2


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


@click.group(cls=_Group, epilog=HELP_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="resq")
def main() -> None:
    """resq: background jobs on Redis."""


for _command in (
    worker,
    stats,
    queues,
    workers,
    job,
    batch,
    enqueue,
    tasks,
    events,
    dead,
    queue,
    acl,
    dashboard,
    outbox,
):
    main.add_command(_command)
