"""What :class:`resq.ops.Inspector` returns: plain records, free of Redis, ready for JSON.

The remote-control message format lives here too (:func:`control_message`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from resq.clock import from_ms, now_ms
from resq.codec import unpack
from resq.errors import ConfigError, DecodeError

__all__ = [
    "CONTROL_COMMANDS",
    "DeadJob",
    "QueueInfo",
    "QueuedJob",
    "ScheduledInfo",
    "TaskInfo",
    "WorkerInfo",
    "control_message",
    "describe_backoff",
    "read_command",
    "to_json",
]

#: Commands the workers obey (``resq workers pause|resume|stop``).
CONTROL_COMMANDS = ("pause", "resume", "stop")


@dataclass(frozen=True)
class QueueInfo:
    """One queue at a glance."""

    name: str
    #: jobs ready to run and not yet fetched
    waiting: int
    #: jobs leased by a worker (the group's pending entries)
    running: int
    #: seconds the oldest waiting job has waited, None when none waits
    oldest_age_s: float | None
    scheduled: int
    dead: int
    #: live workers that serve this queue
    workers: int
    #: paused (``resq queue pause``): no worker starts its jobs
    paused: bool = False
    #: how long jobs that started in the last minutes had waited in this queue, in ms (None: none started)
    wait_p50_ms: int | None = None
    wait_p99_ms: int | None = None
    #: jobs of this queue started per second over the last minutes (``WAIT_WINDOW_MIN``)
    drain_per_s: float = 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds to drain the waiting jobs at :attr:`drain_per_s` (0 when none waits; None when jobs
        wait and none started lately: at this rate, never). An autoscaler's signal, with the oldest age."""
        if self.waiting == 0:
            return 0.0
        return None if self.drain_per_s <= 0 else round(self.waiting / self.drain_per_s, 1)

    @property
    def served(self) -> bool:
        """Whether at least one live worker reads this queue."""
        return self.workers > 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``served`` and ``eta_s``)."""
        return {**asdict(self), "served": self.served, "eta_s": self.eta_s}


@dataclass(frozen=True)
class WorkerInfo:
    """One live worker process, as it registered itself."""

    id: str
    host: str
    pid: int
    supervisor: str
    queues: list[str]
    started_ms: int
    heartbeat_ms: int
    #: the job ids it is running (empty when idle)
    current: list[str] = field(default_factory=list)
    #: the last remote command its supervisor obeys is ``pause`` (Sidekiq's "quiet": running jobs finish,
    #: no new job is fetched); a pause by signal (USR2) is not recorded in Redis and does not show here
    paused: bool = False

    @property
    def state(self) -> str:
        """``paused``, ``busy`` (running a job) or ``idle``."""
        if self.paused:
            return "paused"
        return "busy" if self.current else "idle"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC, with ``state``)."""
        data = asdict(self)
        data["state"] = self.state
        data["started"] = _iso(self.started_ms)
        data["heartbeat"] = _iso(self.heartbeat_ms)
        return data


@dataclass(frozen=True)
class DeadJob:
    """One entry of a dead set."""

    id: str
    queue: str
    task: str
    died_ms: int
    #: ``"Type: message"`` of the last error
    error: str
    #: attempts made (0 when unknown)
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``died`` as ISO 8601 UTC)."""
        return {**asdict(self), "died": _iso(self.died_ms)}

    @property
    def error_type(self) -> str:
        """The type of the last error (``ValueError``), as in ``error``."""
        return self.error.split(":", 1)[0] if ":" in self.error else ""


@dataclass(frozen=True)
class QueuedJob:
    """One job in a queue's streams (waiting, or leased by a worker), for the dashboard's queue page."""

    id: str
    queue: str
    #: the stream entry's id (``<ms>-<seq>``: when it was added)
    entry: str
    #: the given-back stream (``front``, served first) or the queue's own one
    front: bool
    task: str
    status: str
    attempts: int
    #: the arguments as shown to operators: redacted values hidden, a sealed payload as ``<encrypted …>``
    args: Any
    kwargs: Any

    @property
    def added_ms(self) -> int:
        """When the entry was added to its stream (ms since the epoch)."""
        return int(self.entry.split("-", 1)[0])

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``added`` as ISO 8601 UTC)."""
        return {**asdict(self), "added": _iso(self.added_ms)}


@dataclass(frozen=True)
class ScheduledInfo:
    """One job waiting in a scheduled set (a delayed job or a retry)."""

    id: str
    queue: str
    due_ms: int
    task: str
    status: str
    attempts: int
    #: the arguments as operators see them (redacted; ``<encrypted with key K>`` for sealed ones)
    args: Any = None
    kwargs: Any = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``due`` as ISO 8601 UTC)."""
        return {**asdict(self), "due": _iso(self.due_ms)}


@dataclass(frozen=True)
class TaskInfo:
    """One registered task and its options, for ``resq tasks``."""

    name: str
    queue: str
    retries: int
    #: the backoff policy, described (``exponential 1s (cap 3600s)``, ``fixed 30s``, a function's name)
    backoff: str
    timeout: float | None
    soft_timeout: float | None
    #: seconds the result is kept (None: the app's ``result_ttl``)
    result_ttl: float | None
    #: names of the periodic entries that run this task (declared in code)
    periodic: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def control_message(cmd: str, target: str = "*", at_ms: int | None = None) -> dict[str, Any]:
    """The remote-control command published on ``Keys.control`` (msgpack-encoded).

    Raises:
        ConfigError: an unknown command.
    """
    if cmd not in CONTROL_COMMANDS:
        raise ConfigError(f"unknown worker command {cmd!r}; use one of {', '.join(CONTROL_COMMANDS)}")
    return {"cmd": cmd, "target": target, "at_ms": now_ms() if at_ms is None else at_ms}


def read_command(raw: bytes | None) -> tuple[int, str, str] | None:
    """``(at_ms, cmd, target)`` of an encoded command (a message, or a recorded state whose target is
    ``*``); None when unreadable."""
    if raw is None:
        return None
    try:
        value = unpack(raw)
    except DecodeError:
        return None
    if not isinstance(value, dict) or value.get("cmd") not in CONTROL_COMMANDS:
        return None
    at_ms = value.get("at_ms", 0)
    if isinstance(at_ms, bool) or not isinstance(at_ms, int):  # a command of another making: not ours
        return None
    return at_ms, str(value["cmd"]), str(value.get("target", "*"))


def describe_backoff(policy: Callable[[int], float]) -> str:
    """A backoff policy in words: ``fixed 30s``, ``linear 1s``, ``exponential 1s (cap 3600s)``, or the
    qualified name of a function of the app's own."""
    qualname = getattr(policy, "__qualname__", type(policy).__name__)
    kind = qualname.split(".", 1)[0]
    if getattr(policy, "__module__", None) == "resq.retry" and kind in ("fixed", "linear", "exponential"):
        free = inspect.getclosurevars(policy).nonlocals
        text = f"{kind} {free.get('base_s', '?'):g}s" if "base_s" in free else kind
        return f"{text} (cap {free['cap_s']:g}s)" if "cap_s" in free else text
    return f"{getattr(policy, '__module__', '?')}.{qualname}"


def _iso(ms: int) -> str | None:
    return from_ms(ms).isoformat() if ms else None


def to_json(value: Any) -> str:
    """JSON for ``--json`` output: datetimes and dates as ISO 8601, bytes as text."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime | date):
            return obj.isoformat()
        if isinstance(obj, bytes):
            return obj.decode("utf-8", "replace")
        return str(obj)

    return json.dumps(value, default=default, indent=2)
