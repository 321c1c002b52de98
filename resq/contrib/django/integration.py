"""The app built from Django's settings, the ``task`` decorator, on-commit and the worker's connections."""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar, overload

from django.conf import settings
from django.db import close_old_connections, connections, transaction

from resq.app import Resq
from resq.errors import ConfigError
from resq.job import Job
from resq.log import get_logger
from resq.task import Task, use_on_commit

__all__ = ["APP_REF", "SETTING", "get_app", "reset", "setup_django", "task"]

P = ParamSpec("P")
R = TypeVar("R")

#: The ``-A`` reference of the app built here (what ``manage.py resq`` passes to resq's command line).
APP_REF = "resq.contrib.django:app"
#: The Django setting read.
SETTING = "RESQ"

log = get_logger(__name__)

_lock = threading.Lock()
_app: Resq | None = None
#: True in a worker's processes (set by its ``worker_start`` hook, inherited by its forked children): only
#: there are connections closed around jobs (never around an eager or drained job inside a test's transaction).
_in_worker = False


def setup_django() -> None:
    """``django.setup()`` unless Django is set up or being set up (a ``tasks.py`` imported by it)."""
    from django.apps import apps

    if apps.ready or apps.loading:
        return
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigError(
            f"{APP_REF} needs Django's settings: set DJANGO_SETTINGS_MODULE (or run it as manage.py resq ...)"
        )
    import django

    django.setup()


def get_app() -> Resq:
    """The project's app: ``settings.RESQ`` (a dict of ``url``, ``namespace`` and any other ``Resq``
    setting, or ``{"app": "module:attr"}``), built once, with ``on_commit`` and the worker's connection
    hooks installed.

    Raises:
        ConfigError: ``RESQ`` is not a dict, names an unknown setting, or its ``app`` cannot be imported.
    """
    global _app
    with _lock:
        if _app is None:
            _app = _build(getattr(settings, SETTING, None))
        return _app


def reset() -> None:
    """Forget the app (the next :func:`get_app` builds it again from the settings); for tests."""
    global _app
    with _lock:
        _app = None


def _build(config: Any) -> Resq:
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise ConfigError(f"settings.{SETTING} must be a dict (url, namespace, ...), got {config!r}")
    options = dict(config)
    ref = options.pop("app", None)
    if ref is not None:
        if options:
            raise ConfigError(f"settings.{SETTING}: give either 'app' or settings ({', '.join(options)}), not both")
        app = _import_app(ref)
    else:
        app = Resq(options.pop("url", None), namespace=options.pop("namespace", None), **options)
    app.on_commit = _on_commit
    use_on_commit(_on_commit)  # apps of the project's own (``Resq(...)``) get delay_on_commit too
    app.hooks.add("worker_start", _worker_started)
    app.hooks.add("around_perform", _job_connections)
    return app


def _import_app(ref: Any) -> Resq:
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigError(f"settings.{SETTING}['app'] must be 'module:attr', got {ref!r}")
    module_name, _, attr = ref.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"settings.{SETTING}['app'] = {ref!r}: {exc}") from exc
    if not isinstance(found, Resq):
        raise ConfigError(f"settings.{SETTING}['app'] = {ref!r} is {found!r}, not a Resq app")
    return found


def _on_commit(fn: Callable[[], None]) -> None:
    transaction.on_commit(fn)


def _worker_started(worker: Any) -> None:
    """In the supervisor, before it forks: close every connection (a child must not share one)."""
    global _in_worker
    _in_worker = True
    connections.close_all()


@contextlib.contextmanager
def _job_connections(job: Job[Any]) -> Iterator[None]:
    """Close connections that are unusable or past ``CONN_MAX_AGE`` before and after the job, on the
    thread that performs it (async tasks included: the hook runs on that thread, never in the loop)."""
    if not _in_worker:
        yield
        return
    close_old_connections()
    try:
        yield
    finally:
        try:
            close_old_connections()
        except Exception as exc:  # a connection that fails to close must not fail the job that succeeded
            log.error("close_old_connections_failed", job_id=job.id, error=f"{type(exc).__name__}: {exc}")


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """``@task`` or ``@task(retries=3, ...)``: register on the project's app (the options of ``@app.task``)."""
    if fn is not None:
        return get_app().task(fn)
    return get_app().task(**options)
