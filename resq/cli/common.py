"""What the commands share: options, app loading, error handling, table and time formatting.

No new dependency: tables are plain ``click.echo`` text with aligned columns; ``--json`` prints the same
data for scripts. Exit statuses: 0 ok, 1 not found (or Redis unavailable), 2 usage.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from resq.app import Resq, default_app
from resq.clock import from_ms
from resq.errors import BrokerRefused, BrokerUnavailable, ConfigError, ResqError, UnknownJob
from resq.log import LOG_FORMATS
from resq.ops import Inspector

__all__ = [
    "CONTEXT_SETTINGS",
    "REDIS_HINT",
    "TIME_FORMAT",
    "BadInput",
    "NotFound",
    "ago",
    "app_from",
    "app_option",
    "configure_app",
    "confirm",
    "guard",
    "inspector_from",
    "json_option",
    "load_app",
    "logging_options",
    "ops_options",
    "parse_duration",
    "reach",
    "redis_options",
    "since",
    "stamp",
    "suggest",
    "table",
    "truncate",
    "when",
    "yes_option",
]

T = TypeVar("T")

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def load_app(ref: str | None) -> Resq:
    """Import the app named ``module:attr`` (``attr`` defaults to ``app``); the current directory is
    importable. Without a reference, the app from ``RESQ_REDIS_URL``/``RESQ_NAMESPACE``.

    Raises:
        ConfigError: the reference is a file path, the module cannot be imported (with the file and line
            of a syntax error), or the attribute is missing (with a "did you mean") or not a ``Resq``.
    """
    if not ref:
        return Resq()  # url and namespace from RESQ_REDIS_URL / RESQ_NAMESPACE, as every entry point
    module_name, _, attr = ref.partition(":")
    _check_module_path(module_name, attr)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return _find_app(ref, _import_app_module(module_name), module_name, attr)


def _check_module_path(module_name: str, attr: str) -> None:
    if _MODULE_RE.match(module_name):
        return
    tail = f":{attr}" if attr else ""
    if "/" in module_name or "\\" in module_name or module_name.endswith(".py"):
        dotted = module_name.removesuffix(".py").replace("\\", "/").strip("./").replace("/", ".")
        raise ConfigError(f"-A {module_name}{tail} is a file path: use a dotted module path: -A {dotted}{tail}")
    raise ConfigError(f"-A {module_name}{tail} is not a module path: use module:attr, e.g. -A myapp.tasks:app")


def _import_app_module(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        where = f"{_rel(exc.filename or '?')}, line {exc.lineno}"
        raise ConfigError(f"app module {module_name!r} has a syntax error: {where}: {exc.msg}") from exc
    except ImportError as exc:
        hint = ""
        if getattr(exc, "name", None) == module_name.split(".")[0]:
            hint = " (run resq from the directory that holds it, or add that directory to PYTHONPATH)"
        raise ConfigError(f"cannot import app module {module_name!r}: {exc}{hint}") from exc
    except ResqError:
        raise  # resq's own configuration errors already say what to fix
    except Exception as exc:  # the module's own code failed while it was imported
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" ({_rel(frames[-1].filename)}, line {frames[-1].lineno})" if frames else ""
        raise ConfigError(f"importing app module {module_name!r} failed: {type(exc).__name__}: {exc}{where}") from exc


def _find_app(ref: str, module: ModuleType, module_name: str, attr: str) -> Resq:
    apps = [name for name, value in vars(module).items() if isinstance(value, Resq)]
    if attr and not hasattr(module, attr):
        names = apps or [name for name in vars(module) if not name.startswith("_")]
        hint = suggest(attr, names) or f" (its resq apps: {', '.join(apps) or 'none'})"
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r}{hint}")
    found = getattr(module, attr or "app", None)
    if not attr and found is None:
        found = getattr(module, apps[0]) if apps else default_app()
    if not isinstance(found, Resq):
        hint = f": use {module_name}:{apps[0]}" if apps else ": name a Resq() instance as module:attr"
        raise ConfigError(f"{ref!r} is not a resq app (it is a {type(found).__name__}){hint}")
    return found


def _rel(path: str) -> str:
    """``path`` relative to the current directory when it lies under it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


class NotFound(click.ClickException):
    """Exit status 1: the job, worker or queue named on the command line does not exist."""

    exit_code = 1


class BadInput(click.ClickException):
    """Exit status 2, on one line: bad input (an app that cannot be loaded, an unknown task, a bad value)."""

    exit_code = 2


#: What to check when Redis does not answer.
REDIS_HINT = "check the url (--url or RESQ_REDIS_URL) and that redis-server is running"

#: ``-h`` as well as ``--help``, for the group and (inherited) every command.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


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


def redis_options(fn: Any) -> Any:
    """``--url`` and ``--namespace`` (from ``RESQ_REDIS_URL``, ``RESQ_NAMESPACE``): the shared pair of every
    command that talks to Redis."""
    fn = click.option(
        "--namespace", envvar="RESQ_NAMESPACE", default=None, help="Key namespace (default resq); env RESQ_NAMESPACE."
    )(fn)
    return click.option(
        "--url",
        envvar="RESQ_REDIS_URL",
        default=None,
        help="Redis url (default redis://127.0.0.1:6379/0); env RESQ_REDIS_URL.",
    )(fn)


def ops_options(fn: Any) -> Any:
    """``-A/--app``, ``--url`` and ``--namespace`` (from ``RESQ_APP``, ``RESQ_REDIS_URL``, ``RESQ_NAMESPACE``)."""
    fn = redis_options(fn)
    return click.option(
        "-A", "--app", "app_ref", envvar="RESQ_APP", help="The app as module:attr (optional here); env RESQ_APP."
    )(fn)


def json_option(fn: Any) -> Any:
    """``--json``: print JSON for scripts instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def yes_option(fn: Any) -> Any:
    """``-y/--yes``: do not ask before deleting."""
    return click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")(fn)


def configure_app(app: Resq, app_ref: str | None, url: str | None, namespace: str | None) -> Resq:
    """Apply ``--url``/``--namespace`` to ``app``: with ``-A`` only when given on the command line (their
    environment variables are already the app's defaults), without ``-A`` always.

    Raises:
        ConfigError: an invalid url or namespace.
    """
    ctx = click.get_current_context()
    changes = {
        name: value
        for name, value in (("url", url), ("namespace", namespace))
        if value and (not app_ref or ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE)
    }
    if changes:
        app.reconfigure(**changes)
    return app


def app_from(app_ref: str | None, url: str | None, namespace: str | None, *, connect: bool = True) -> Resq:
    """The app named by ``-A`` (or one on ``--url``/``--namespace`` alone), checked to reach Redis.

    Raises:
        click.ClickException: the app cannot be loaded (exit 2) or Redis does not answer (exit 1).
    """
    app = guard(lambda: configure_app(load_app(app_ref), app_ref, url, namespace))
    if connect:
        guard(lambda: reach(app))
    return app


def inspector_from(app_ref: str | None, url: str | None, namespace: str | None) -> Inspector:
    """An :class:`Inspector` on the app named by ``-A`` (or on ``--url``/``--namespace`` alone).

    With ``-A``, ``--url`` and ``--namespace`` override the app's own settings only when given on the
    command line (their environment variables are already the app's defaults).

    Raises:
        click.ClickException: the app cannot be loaded (exit 2) or Redis does not answer (exit 1).
    """
    return Inspector(app_from(app_ref, url, namespace))


def reach(app: Resq) -> None:
    """Check that Redis answers; when it does not at once, retry for ``broker_retry_s`` (a Redis
    restarting) before giving up. On a terminal, a "connecting to …" line says so meanwhile and is
    erased when the wait ends, so the output is one line either way (scripts see only the error).

    Raises:
        BrokerUnavailable: Redis still did not answer.
    """
    try:
        app.broker.admin.ping()
        return
    except BrokerUnavailable as first:
        budget, url = app.settings.broker_retry_s, app.broker.connection.safe_url()
        progress = sys.stderr.isatty()
        if progress:
            click.echo(f"connecting to {url} … (no answer yet; retrying for up to {budget:g} s)", err=True, nl=False)
        try:
            app.broker.with_retry(app.broker.admin.ping)
        except BrokerUnavailable as exc:
            cause = first.__cause__ or first
            raise BrokerUnavailable(f"cannot reach Redis at {url} (tried for {budget:g} s): {cause}") from exc
        finally:
            if progress:
                click.echo("\r\033[K", err=True, nl=False)


def guard(action: Callable[[], T]) -> T:
    """Run ``action``, turning resq's errors into one-line click exits (2 bad input, 1 not found or
    Redis unavailable, with a hint)."""
    try:
        return action()
    except (ConfigError, BrokerRefused) as exc:  # waiting or retrying will not fix either
        raise BadInput(str(exc)) from exc
    except UnknownJob as exc:
        raise NotFound(str(exc)) from exc
    except BrokerUnavailable as exc:  # "Redis at … is unavailable: …"
        raise click.ClickException(f"{str(exc).rstrip('. ')}; {REDIS_HINT}") from exc
    except ResqError as exc:
        raise click.ClickException(str(exc)) from exc


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` (``"Delete …?"``) unless ``yes``; without a terminal to ask on, refuse.

    Raises:
        click.Abort: the answer was no (exit 1).
        BadInput: stdin is not a terminal and ``-y`` was not given (exit 2).
    """
    if yes:
        return
    if not sys.stdin.isatty():
        what = question.rstrip("?")
        raise BadInput(f"{what[:1].lower()}{what[1:]}: not confirmed (stdin is not a terminal); pass -y/--yes")
    click.confirm(question, abort=True)


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


#: The one format of times in every table (always UTC).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def when(ms: int | None) -> str:
    """A time in ms as ``YYYY-MM-DD HH:MM:SS`` (UTC); ``-`` for none."""
    if not ms:
        return "-"
    return from_ms(ms).strftime(TIME_FORMAT)


def stamp(moment: datetime | None) -> str:
    """A datetime as ``YYYY-MM-DD HH:MM:SS`` in UTC (the format of every table); ``-`` for none."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


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


def suggest(name: str, known: Sequence[str]) -> str:
    """`` — did you mean 'x'?`` for the closest of ``known`` to ``name`` (empty when none is close)."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" — did you mean {close[0]!r}?" if close else ""


def truncate(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
