"""Periodic entries: what to enqueue, on which schedule, and the TOML schedule file.

A schedule file gives Python users what resque-scheduler's YAML file gives Ruby users::

    [refresh_cache]
    task = "myapp.tasks.refresh"
    cron = "*/5 * * * *"
    tz = "Europe/Paris"
    args = [1, 2]
    kwargs = { full = true }
    queue = "low"
    misfire = "once"
    unique = false
    enabled = true

    [heartbeat]
    task = "myapp.tasks.ping"
    every = 30
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from resq.errors import ConfigError
from resq_scheduler.cron import MISFIRE_POLICIES, CronSpec, Spec, parse_spec

__all__ = ["ENTRY_KEYS", "PeriodicEntry", "load_schedule_file"]

ENTRY_KEYS: tuple[str, ...] = (
    "task",
    "cron",
    "every",
    "tz",
    "args",
    "kwargs",
    "queue",
    "misfire",
    "unique",
    "enabled",
)
"""The keys a schedule-file entry may use."""

_DICT_KEYS = frozenset({"name", "task", "spec", "args", "kwargs", "queue", "misfire", "unique", "enabled"})


@dataclass(frozen=True)
class PeriodicEntry:
    """One periodic job: enqueue ``task(*args, **kwargs)`` on ``queue`` at each tick of ``spec``.

    Args:
        name: the entry's unique name (also the key of its last-fired tick in Redis).
        task: the task's registered name.
        spec: when it fires (see :func:`resq_scheduler.parse_spec`).
        args: positional arguments of each job.
        kwargs: keyword arguments of each job.
        queue: the queue to enqueue on; ``None`` uses the task's own queue.
        misfire: ``"skip"``, ``"once"`` (default) or ``"all"``: what to do about ticks missed in downtime.
        unique: do not enqueue a tick while a job of the previous one is still queued or running.
        enabled: a disabled entry is kept (and listed) but never fires.

    Raises:
        ConfigError: an empty name or task, an unknown misfire policy, or a field of the wrong type.
    """

    name: str
    task: str
    spec: Spec
    # args and kwargs may hold unhashable values: keep them out of the hash.
    args: tuple[Any, ...] = field(default=(), hash=False)
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    queue: str | None = None
    misfire: str = "once"
    unique: bool = False
    enabled: bool = True

    def __post_init__(self) -> None:
        _check_str("name", self.name)
        _check_str("task", self.task)
        if self.queue is not None:
            _check_str("queue", self.queue)
        if self.misfire not in MISFIRE_POLICIES:
            raise ConfigError(
                f"entry {self.name!r}: unknown misfire policy {self.misfire!r} "
                f"(expected one of {', '.join(MISFIRE_POLICIES)})"
            )
        self._check_types()

    def _check_types(self) -> None:
        # Entries come from TOML and from Redis as well as from code: check what mypy cannot.
        if not isinstance(self.spec, Spec):
            raise ConfigError(f"entry {self.name!r}: spec must be a CronSpec or an EverySpec")
        if not isinstance(self.args, tuple):
            raise ConfigError(f"entry {self.name!r}: args must be a tuple, got {type(self.args).__name__}")
        if not isinstance(self.kwargs, dict) or not all(isinstance(k, str) for k in self.kwargs):
            raise ConfigError(f"entry {self.name!r}: kwargs must be a dict with string keys")
        for flag in ("unique", "enabled"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"entry {self.name!r}: {flag} must be true or false")

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, msgpack-able dict of this entry (see :meth:`from_dict`)."""
        return {
            "name": self.name,
            "task": self.task,
            "spec": _spec_to_dict(self.spec),
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "queue": self.queue,
            "misfire": self.misfire,
            "unique": self.unique,
            "enabled": self.enabled,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PeriodicEntry:
        """Rebuild an entry from :meth:`to_dict`'s output.

        Args:
            data: the dict; ``spec`` is ``{"cron": expr, "tz": tz}`` or ``{"every": seconds}``.

        Returns:
            The entry, validated.

        Raises:
            ConfigError: a missing or unknown key, or an invalid value.
        """
        unknown = set(data) - _DICT_KEYS
        if unknown:
            raise ConfigError(f"periodic entry dict has unknown keys: {', '.join(sorted(unknown))}")
        for key in ("name", "task", "spec"):
            if key not in data:
                raise ConfigError(f"periodic entry dict is missing {key!r}")
        spec = data["spec"]
        if not isinstance(spec, Mapping) or not set(spec) <= {"cron", "tz", "every"}:
            raise ConfigError(f"periodic entry {data['name']!r}: bad spec {spec!r}")
        return cls(
            name=data["name"],
            task=data["task"],
            spec=parse_spec(cron=spec.get("cron"), every=spec.get("every"), tz=spec.get("tz")),
            # msgpack gives lists back: args are a tuple in the entry.
            args=tuple(data.get("args") or ()),
            kwargs=dict(data.get("kwargs") or {}),
            queue=data.get("queue"),
            misfire=data.get("misfire", "once"),
            unique=data.get("unique", False),
            enabled=data.get("enabled", True),
        )


def _check_str(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"periodic entry {what} must be a non-empty string, got {value!r}")


def _spec_to_dict(spec: Spec) -> dict[str, Any]:
    if isinstance(spec, CronSpec):
        return {"cron": spec.expr, "tz": spec.tz}
    return {"every": spec.seconds}


def load_schedule_file(
    path: str | os.PathLike[str], known_task: Callable[[str], bool] | None = None
) -> list[PeriodicEntry]:
    """Read the periodic entries of a TOML schedule file.

    Each top-level table is one entry, named by its key (see the module docstring for the format).
    Disabled entries are returned too (with ``enabled=False``) and are validated like the others.

    Args:
        path: the TOML file.
        known_task: returns whether a task name is registered; ``None`` skips that check.

    Returns:
        The entries, in file order.

    Raises:
        ConfigError: a missing or unreadable file, invalid TOML, an unknown key (with a "did you mean"
            hint), a value of the wrong type, an invalid schedule or an unknown task.
    """
    document = _read_toml(path)
    entries: list[PeriodicEntry] = []
    for name, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{os.fspath(path)}: {name!r} must be a table ([{name}]), not a plain value")
        try:
            entries.append(_entry_from_table(name, table, known_task))
        except ConfigError as exc:
            raise ConfigError(f"{os.fspath(path)}: {exc}") from exc
    return entries


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"schedule file not found: {os.fspath(path)}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read schedule file {os.fspath(path)}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)}: invalid TOML: {exc}") from exc


def _entry_from_table(name: str, table: dict[str, Any], known_task: Callable[[str], bool] | None) -> PeriodicEntry:
    _check_keys(name, table)
    task = _typed(name, table, "task", str, "a string", required=True)
    if known_task is not None and not known_task(task):
        raise ConfigError(f"entry {name!r}: unknown task {task!r} (is its module imported?)")
    try:
        spec = parse_spec(
            cron=_typed(name, table, "cron", str, "a string"),
            every=_typed(name, table, "every", (int, float), "a number of seconds"),
            tz=_typed(name, table, "tz", str, "a string"),
        )
        return PeriodicEntry(
            name=name,
            task=task,
            spec=spec,
            args=tuple(_typed(name, table, "args", list, "an array") or ()),
            kwargs=_typed(name, table, "kwargs", dict, "a table") or {},
            queue=_typed(name, table, "queue", str, "a string"),
            misfire=_typed(name, table, "misfire", str, "a string") or "once",
            unique=bool(_typed(name, table, "unique", bool, "true or false")),
            enabled=_typed(name, table, "enabled", bool, "true or false") is not False,
        )
    except ConfigError as exc:
        if str(exc).startswith(f"entry {name!r}"):
            raise
        raise ConfigError(f"entry {name!r}: {exc}") from exc


def _check_keys(name: str, table: Mapping[str, Any]) -> None:
    for key in table:
        if key not in ENTRY_KEYS:
            close = difflib.get_close_matches(key, ENTRY_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(ENTRY_KEYS)}"
            raise ConfigError(f"entry {name!r}: unknown key {key!r}{hint}")


def _typed(
    name: str,
    table: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    what: str,
    required: bool = False,
) -> Any:
    """Return ``table[key]`` checked against ``kind``, or ``None`` when absent and not required."""
    if key not in table:
        if required:
            raise ConfigError(f"entry {name!r}: missing required key {key!r}")
        return None
    value = table[key]
    # bool is an int subclass: true is not a number of seconds.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"entry {name!r}: {key} must be {what}, got {value!r}")
    return value
