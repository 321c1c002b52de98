"""Declaring periodic entries: ``@app.periodic(...)`` and ``app.add_periodic(...)``.

Both validate everything at once (schedule, time zone, misfire policy, task) and raise ``ConfigError``
at decoration or call time, never later in the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from resq.app import Resq
from resq.codec import pack
from resq.errors import ConfigError, EncodeError
from resq.settings import validate_name
from resq.task import Task
from resq_scheduler.cron import parse_spec
from resq_scheduler.schedule import PeriodicEntry

__all__ = ["add_periodic", "make_entry", "periodic", "register_entry"]


def make_entry(
    name: str,
    task: str,
    *,
    cron: str | None = None,
    every: float | timedelta | None = None,
    tz: str | None = None,
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    misfire: str = "once",
    unique: bool = False,
    enabled: bool = True,
) -> PeriodicEntry:
    """Build and validate a periodic entry.

    Raises:
        ConfigError: an invalid schedule, time zone, queue, misfire policy or argument type.
    """
    if not isinstance(args, tuple | list):
        raise ConfigError(f"periodic entry {name!r}: args must be a tuple or a list, got {args!r}")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ConfigError(f"periodic entry {name!r}: kwargs must be a dict, got {kwargs!r}")
    try:
        spec = parse_spec(cron=cron, every=every, tz=tz)
    except ConfigError as exc:
        raise ConfigError(f"periodic entry {name!r}: {exc}") from exc
    try:
        pack([list(args), dict(kwargs or {})])
    except EncodeError as exc:
        raise ConfigError(f"periodic entry {name!r}: {exc}") from exc
    return PeriodicEntry(
        name=name,
        task=task,
        spec=spec,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        queue=None if queue is None else validate_name(queue, "queue name"),
        misfire=misfire,
        unique=unique,
        enabled=enabled,
    )


def register_entry(app: Resq, entry: PeriodicEntry) -> PeriodicEntry:
    """Add ``entry`` to ``app.periodic_entries``.

    Raises:
        ConfigError: a different entry already has this name, or the task is not registered.
    """
    if entry.task not in app.tasks:
        raise ConfigError(f"periodic entry {entry.name!r}: unknown task {entry.task!r} (is its module imported?)")
    existing = app.periodic_entries.get(entry.name)
    if existing is not None and existing.to_dict() != entry.to_dict():
        raise ConfigError(f"two periodic entries are named {entry.name!r}: give one of them name=...")
    app.periodic_entries[entry.name] = entry
    return entry


def periodic(
    app: Resq,
    fn: Callable[..., Any] | None = None,
    /,
    *,
    cron: str | None = None,
    every: float | timedelta | None = None,
    tz: str | None = None,
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    name: str | None = None,
    misfire: str = "once",
    unique: bool = False,
    **task_options: Any,
) -> Any:
    """Register a function as a task and as a periodic entry (the body of ``@app.periodic``).

    Args:
        app: the app.
        fn: the function, when used bare (then a schedule must still be given, so this only errors).
        cron: a cron expression (5 fields, or 6 with seconds first) read in ``tz``.
        every: a period in seconds or a ``timedelta``; ticks are aligned on the Unix epoch.
        tz: the IANA time zone of ``cron`` (default UTC).
        args: positional arguments of each job.
        kwargs: keyword arguments of each job.
        queue: the queue of the task and its jobs.
        name: the name of the task and of the entry (default: the task's ``module.qualname``).
        misfire: ``skip``, ``once`` (default) or ``all``: what to do about ticks missed in downtime.
        unique: skip a tick while the previous run of the entry is still queued or running.
        **task_options: other options of ``@app.task`` (``retries``, ``timeout``, …).

    Returns:
        A decorator returning the :class:`~resq.Task` (or the task itself when ``fn`` is given).

    Raises:
        ConfigError: an invalid schedule, time zone, misfire policy or task option, at decoration time.
    """
    options: dict[str, Any] = {
        "cron": cron,
        "every": every,
        "tz": tz,
        "args": args,
        "kwargs": kwargs,
        "queue": queue,
        "misfire": misfire,
        "unique": unique,
    }
    make_entry(str(name or getattr(fn, "__qualname__", "<periodic>")), "<probe>", **options)  # fail at the call

    def decorate(func: Callable[..., Any]) -> Task[Any, Any]:
        task = func if isinstance(func, Task) else app.task(name=name, queue=queue, **task_options)(func)
        register_entry(app, make_entry(name or task.name, task.name, **options))
        return task

    return decorate(fn) if fn is not None else decorate


def add_periodic(
    app: Resq,
    task_or_name: Task[Any, Any] | str,
    *,
    cron: str | None = None,
    every: float | timedelta | None = None,
    tz: str | None = None,
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    name: str | None = None,
    misfire: str = "once",
    unique: bool = False,
    enabled: bool = True,
) -> PeriodicEntry:
    """Add a periodic entry for a registered task and persist it in Redis (it survives restarts).

    Args:
        app: the app.
        task_or_name: the task, or its registered name.
        cron, every, tz, args, kwargs, queue, misfire, unique: as for :func:`periodic`.
        name: the entry's name (default: the task's name).
        enabled: a disabled entry is kept and listed but never fires.

    Returns:
        The entry.

    Raises:
        ConfigError: an unknown task or an invalid option.
        BrokerUnavailable: Redis could not be reached to persist the entry.
    """
    from resq_scheduler.store import Store

    task_name = task_or_name.name if isinstance(task_or_name, Task) else task_or_name
    if not isinstance(task_name, str) or task_name not in app.tasks:
        raise ConfigError(f"add_periodic: unknown task {task_name!r} (register it with @app.task first)")
    entry = make_entry(
        name or task_name,
        task_name,
        cron=cron,
        every=every,
        tz=tz,
        args=args,
        kwargs=kwargs,
        queue=queue,
        misfire=misfire,
        unique=unique,
        enabled=enabled,
    )
    app.periodic_entries.pop(entry.name, None)  # run-time entries replace an older definition
    register_entry(app, entry)
    Store(app).save_entry(entry)
    return entry
