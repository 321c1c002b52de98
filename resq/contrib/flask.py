"""resq for Flask (``pip install resq[flask]``): an extension configured from ``app.config``.

Example::

    from flask import Flask
    from resq.contrib.flask import Resq as FlaskResq

    app = Flask(__name__)
    app.config["RESQ_URL"] = "redis://localhost:6379/0"
    jobs = FlaskResq(app)

    @jobs.task(retries=3)
    def send_mail(to: str) -> None:
        current_app.logger.info("mail to %s", to)  # jobs run inside the app context

``flask resq worker`` runs a worker of the extension's resq app (``flask resq stats``, ``flask resq
dead list``, …: every ``resq`` command); ``resq worker -A module:attr`` works as well when ``attr`` is
the extension's ``.app`` (a :class:`resq.Resq`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar, overload

import click

import resq
from resq.cli import main as resq_main
from resq.errors import ConfigError
from resq.job import Job
from resq.settings import Settings
from resq.task import Task

try:
    from flask import Flask, current_app, has_app_context
except ImportError as exc:  # pragma: no cover - the flask extra is missing
    raise ConfigError("resq.contrib.flask needs Flask: pip install 'resq[flask]'") from exc

__all__ = ["CLI_APP_REF", "Resq"]

P = ParamSpec("P")
R = TypeVar("R")

#: The ``-A`` reference ``flask resq …`` hands to resq's commands: the resq app of the Flask app whose
#: command line runs (read through this module's ``__getattr__``, inside that app's context).
CLI_APP_REF = f"{__name__}:cli_app"
#: Config keys besides ``RESQ_<SETTING>`` (any field of :class:`resq.settings.Settings`).
_URL_KEYS = ("RESQ_URL", "RESQ_REDIS_URL")
_SETTINGS = frozenset(Settings.__dataclass_fields__) - {"url", "namespace"}


class Resq:
    """The Flask extension: a :class:`resq.Resq` app configured from ``app.config``, whose jobs run
    inside the Flask app's context, and a ``flask resq`` command group.

    Config keys: ``RESQ_URL`` (or ``RESQ_REDIS_URL``), ``RESQ_NAMESPACE``, and ``RESQ_<SETTING>`` for
    any setting of :class:`resq.Resq` (``RESQ_RESULT_TTL``, ``RESQ_EAGER``, ``RESQ_ENCRYPT``, …). Other
    ``RESQ_*`` keys are ignored; what the config leaves out follows the environment (``RESQ_REDIS_URL``,
    ``RESQ_NAMESPACE``), then resq's defaults.

    Tasks may be registered before ``init_app`` (the application-factory pattern): the resq app exists
    from the start and ``init_app`` applies the config to it.

    Args:
        app: the Flask app (or None: call :meth:`init_app` later).
    """

    def __init__(self, app: Flask | None = None) -> None:
        #: the resq app: ``.delay()`` goes through it; ``resq worker -A module:attr`` may point at it
        self.app = resq.Resq()
        self.flask_app: Flask | None = None
        self.app.hooks.add("around_perform", self._app_context)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Configure the resq app from ``app.config``, register ``flask resq`` and ``app.extensions["resq"]``.

        Raises:
            ConfigError: an invalid setting in the config.
        """
        self.app.reconfigure(**settings_from(app.config))
        self.flask_app = app
        app.extensions["resq"] = self
        app.cli.add_command(_command_group(self))

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a task on the resq app, as :meth:`resq.Resq.task` (bare or with options)."""
        if fn is not None:
            return self.app.task(fn, **options)
        return self.app.task(**options)

    @contextlib.contextmanager
    def _app_context(self, job: Job[Any]) -> Iterator[None]:
        """``around_perform``: the task runs inside the Flask app's context (unless it is already active,
        as in eager mode inside a request)."""
        flask_app = self.flask_app
        if flask_app is None or (has_app_context() and current_app._get_current_object() is flask_app):  # type: ignore[attr-defined]
            yield
            return
        with flask_app.app_context():
            yield


def settings_from(config: Any) -> dict[str, Any]:
    """The keywords of :meth:`resq.Resq.reconfigure` a Flask config holds (see :class:`Resq`)."""
    found: dict[str, Any] = {}
    url = next((config[key] for key in _URL_KEYS if config.get(key)), None)
    if url:
        found["url"] = url
    if config.get("RESQ_NAMESPACE"):
        found["namespace"] = config["RESQ_NAMESPACE"]
    for key, value in config.items():
        name = key[len("RESQ_") :].lower() if key.startswith("RESQ_") else ""
        if name in _SETTINGS:
            found[name] = value
    return found


def _extension() -> Resq:
    """The extension of the Flask app whose context is active.

    Raises:
        ConfigError: no app context, or its app has no resq extension.
    """
    if not has_app_context():
        raise ConfigError("no Flask app context: run `flask resq ...` (or push app.app_context())")
    found = current_app.extensions.get("resq")
    if not isinstance(found, Resq):
        raise ConfigError("this Flask app has no resq extension: call resq.contrib.flask.Resq(app)")
    return found


def __getattr__(name: str) -> Any:
    """``cli_app``: the resq app of the active Flask app (what :data:`CLI_APP_REF` names)."""
    if name == "cli_app":
        try:
            return _extension().app
        except ConfigError as exc:
            raise AttributeError(f"{__name__}.cli_app: {exc}") from exc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ResqGroup(click.Group):
    """``flask resq``: resq's own commands (``resq.cli.main``), with ``-A`` defaulting to the extension's app."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return resq_main.list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return resq_main.get_command(ctx, cmd_name)


def _command_group(extension: Resq) -> click.Group:
    @click.group("resq", cls=_ResqGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.pass_context
    def group(ctx: click.Context) -> None:
        """resq: run workers of this Flask app's jobs and inspect its queues (every `resq` command; -A is
        this app's resq app)."""
        flask_app = extension.flask_app
        if flask_app is not None and not (has_app_context() and current_app._get_current_object() is flask_app):  # type: ignore[attr-defined]
            ctx.with_resource(flask_app.app_context())
        ctx.obj = None  # resq's command groups keep their own state there (not Flask's ScriptInfo)
        ctx.default_map = _app_defaults(resq_main, ctx)

    return group


def _app_defaults(group: click.Group, ctx: click.Context) -> dict[str, Any]:
    """A click ``default_map`` giving ``-A`` (parameter ``app_ref``) the value :data:`CLI_APP_REF` in every
    command of ``group`` that takes it, nested groups included."""
    defaults: dict[str, Any] = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None:
            continue
        entry: dict[str, Any] = _app_defaults(command, ctx) if isinstance(command, click.Group) else {}
        if any(param.name == "app_ref" for param in command.params):
            entry["app_ref"] = CLI_APP_REF
        if entry:
            defaults[name] = entry
    return defaults
