"""``resq outbox relay``: move the SQLAlchemy outbox's rows (``resq.contrib.sqlalchemy``) to Redis.

SQLAlchemy is imported when the command runs, so ``resq`` works without the ``sqlalchemy`` extra.
"""

from __future__ import annotations

import time
from typing import Any

import click

from resq.cli.common import BadInput, app_from, guard, ops_options
from resq.errors import ConfigError

__all__ = ["outbox"]

OUTBOX_EPILOG = """\b
Examples:
  resq outbox relay -A myapp.tasks:app --db postgresql+psycopg://app@db/app
  resq outbox relay -A myapp.tasks:app --db sqlite:///app.db --once
"""


@click.group(epilog=OUTBOX_EPILOG, short_help="The transactional outbox: relay its jobs to Redis.")
def outbox() -> None:
    """The transactional outbox (resq.contrib.sqlalchemy): relay its jobs to Redis."""


@outbox.command("relay", short_help="Send the outbox's rows to Redis, each under its row id.")
@ops_options
@click.option(
    "--db", "db_url", envvar="RESQ_OUTBOX_DB", required=True, help="SQLAlchemy database url; env RESQ_OUTBOX_DB."
)
@click.option("--once", is_flag=True, help="Relay what waits now and exit (else poll until Ctrl-C).")
@click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.01), help="Seconds between polls."
)
@click.option("--batch", default=100, show_default=True, type=click.IntRange(1), help="Rows per database transaction.")
def relay_command(
    app_ref: str | None, url: str | None, namespace: str | None, db_url: str, once: bool, interval: float, batch: int
) -> None:
    """Enqueue the outbox's rows, oldest first, with each row's id as the job's id, and delete them."""
    contrib = _contrib()
    from sqlalchemy.exc import OperationalError

    app = app_from(app_ref, url, namespace)
    engine = guard(lambda: _engine(db_url))
    total = 0
    try:
        while True:
            try:
                done = guard(lambda: contrib.relay(app, engine, batch))
            except OperationalError as exc:  # the database is down or locked: the rows wait
                if once:
                    raise click.ClickException(f"outbox relay: {exc.orig or exc}") from exc
                click.echo(f"resq outbox relay: {exc.orig or exc}; retrying in {interval:g} s", err=True)
                done = 0
            total += done
            if done == batch:
                continue  # more may wait
            if once:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()
    click.echo(f"relayed {total} job{'' if total == 1 else 's'}")


def _contrib() -> Any:
    """``resq.contrib.sqlalchemy``, imported when the command runs (a missing extra: exit 2). The command
    line sits below ``contrib`` in resq's layers; this one import is allowed by name in pyproject.toml."""
    try:
        from resq.contrib import sqlalchemy
    except ImportError as exc:
        raise BadInput(f"resq outbox needs SQLAlchemy: pip install 'resq[sqlalchemy]' ({exc})") from exc
    return sqlalchemy


def _engine(db_url: str) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        return create_engine(db_url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"--db {db_url!r}: {exc}") from exc
