"""What the commands share: options, app loading, error handling, table and time formatting.

No new dependency: tables are plain ``click.echo`` text with aligned columns; ``--json`` prints the same
data for scripts. Exit statuses: 0 ok, 1 not found (or Redis unavailable), 2 usage.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from resq.app import Resq, default_app
from resq.clock import from_ms
from resq.errors import ConfigError, ResqError, UnknownJob
from resq.log import LOG_FORMATS
from resq.ops import Inspector

__all__ = [
    "NotFound",
    "ago",
    "app_option",
    "guard",
    "inspector_from",
    "json_option",
    "load_app",
    "logging_options",
    "ops_options",
    "parse_duration",
    "since",
    "table",
    "truncate",
    "when",
]

T = TypeVar("T")

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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


class NotFound(click.ClickException):
    """Exit status 1: the job, worker or queue named on the command line does not exist."""

    exit_code = 1


def app_option(fn: Any) -> Any:
    """``-A/--app``, read from ``RESQ_APP`` when absent."""
    return click.option(
        "-A", "--app", "app_ref", envvar="RESQ_APP", help="The app as module:attr (attr defaults to app); env RESQ_APP."
    )(fn)


def logging_options(fn: Any) -> Any:
    """``--log-format`` and ``--log-level``."""
    fn = click.option(
        "--log-level",
        default="INFO",
        show_default=True,
        envvar="RESQ_LOG_LEVEL",
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    )(fn)
    return click.option(
        "--log-format", default="console", show_default=True, envvar="RESQ_LOG_FORMAT", type=click.Choice(LOG_FORMATS)
    )(fn)


def ops_options(fn: Any) -> Any:
    """``-A/--app``, ``--url`` and ``--namespace`` (from ``RESQ_APP``, ``RESQ_REDIS_URL``, ``RESQ_NAMESPACE``)."""
    fn = click.option(
        "--namespace", envvar="RESQ_NAMESPACE", default=None, help="Key namespace (default resq); env RESQ_NAMESPACE."
    )(fn)
    fn = click.option(
        "--url",
        envvar="RESQ_REDIS_URL",
        default=None,
        help="Redis url (default redis://127.0.0.1:6379/0); env RESQ_REDIS_URL.",
    )(fn)
    return click.option(
        "-A", "--app", "app_ref", envvar="RESQ_APP", help="The app as module:attr (optional here); env RESQ_APP."
    )(fn)


def json_option(fn: Any) -> Any:
    """``--json``: print JSON for scripts instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def inspector_from(app_ref: str | None, url: str | None, namespace: str | None) -> Inspector:
    """An :class:`Inspector` on the app named by ``-A`` (or on ``--url``/``--namespace`` alone).

    With ``-A``, ``--url`` and ``--namespace`` override the app's own settings only when given on the
    command line (their environment variables are already the app's defaults).

    Raises:
        click.UsageError: the app cannot be loaded or a setting is invalid.
    """
    ctx = click.get_current_context()

    def load() -> Inspector:
        app = load_app(app_ref)
        changes = {
            name: value
            for name, value in (("url", url), ("namespace", namespace))
            if value and (not app_ref or ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE)
        }
        if changes:
            app.reconfigure(**changes)
        return Inspector(app)

    return guard(load)


def guard(action: Callable[[], T]) -> T:
    """Run ``action``, turning resq's errors into click's exits (2 usage, 1 not found or unavailable)."""
    try:
        return action()
    except ConfigError as exc:
        raise click.UsageError(str(exc), click.get_current_context(silent=True)) from exc
    except UnknownJob as exc:
        raise NotFound(str(exc)) from exc
    except ResqError as exc:  # BrokerUnavailable included: "Redis at … is unavailable: …"
        raise click.ClickException(str(exc)) from exc


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as left-aligned columns under ``headers`` (two spaces between columns)."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def ago(seconds: float | None) -> str:
    """A short human duration: ``850ms``, ``12s``, ``3m04s``, ``2h05m``, ``3d04h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    whole = int(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // sub_size:02d}{sub}"
    return f"{whole}s"


def when(ms: int | None) -> str:
    """A time in ms as ``YYYY-MM-DD HH:MM:SS`` (UTC); ``-`` for none."""
    if not ms:
        return "-"
    return from_ms(ms).strftime("%Y-%m-%d %H:%M:%S")


def since(ms: int | None) -> str:
    """How long ago a time in ms was (``ago``); ``-`` for none."""
    if not ms:
        return "-"
    return ago(max(0.0, datetime.now(UTC).timestamp() - ms / 1000))


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``30m``, ``12h``, ``7d`` or ``2w``.

    Raises:
        ConfigError: anything else.
    """
    match = _DURATION_RE.match(text)
    if not match:
        raise ConfigError(
            f"invalid duration {text!r}: use a number with an optional unit s, m, h, d or w (e.g. 90s, 30m, 12h, 7d)"
        )
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def truncate(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
