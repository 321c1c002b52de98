"""Structured logging with structlog.

Library modules only call :func:`get_logger`; :func:`configure` is called by the CLI alone (a library
that configures logging fights its host application). Inside a job, :func:`job_context` binds
``job_id``, ``task``, ``queue`` and ``attempt`` to every log line, including lines that task code
writes through the standard ``logging`` module once the CLI has configured it.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import structlog

__all__ = ["LOG_FORMATS", "configure", "get_logger", "job_context"]

#: Output formats of :func:`configure`.
LOG_FORMATS = ("console", "json")


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


class Logger:
    """resq's own logger: ``log.info("event", key=value, …)``, like structlog's.

    In a host application it writes through the standard ``logging`` module (structlog's stdlib
    processors), as a library should. Once the resq CLI has called :func:`configure`, plain events go
    straight to the CLI's fast sink instead (one level check, one render, one write: a worker writes a
    line per job, and the generic path costs several times more); events with ``exc_info`` keep the
    full path, for their traceback.
    """

    __slots__ = ("_levels", "_std", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._std = _stdlib_logger(name)
        self._levels = logging.getLogger(name)  # its level check is cached: a line below the level costs ~0.2 us

    def debug(self, event: str, **fields: Any) -> None:
        """Log ``event`` at DEBUG."""
        self.log(logging.DEBUG, event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at INFO."""
        self.log(logging.INFO, event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log ``event`` at WARNING."""
        self.log(logging.WARNING, event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR."""
        self.log(logging.ERROR, event, **fields)

    def log(self, level: int, event: str, **fields: Any) -> None:
        """Log ``event`` at ``level`` (a ``logging`` level number)."""
        sink = _sink
        if sink is not None and not fields.get("exc_info"):
            if level >= sink.level:
                sink.write(level, self.name, event, fields)
            return
        if self._levels.isEnabledFor(level):
            self._std.log(level, event, **fields)


class _Sink:
    """Where the CLI's logs go: rendered by hand (key=value or JSON) and written to stderr, a line each."""

    def __init__(self, fmt: str, level: int, handler: logging.StreamHandler[Any]) -> None:
        self.level = level
        self.json = fmt == "json"
        self._handler = handler  # its stream, and its lock: lines of both paths never interleave

    def write(self, level: int, name: str, event: str, fields: dict[str, Any]) -> None:
        record = {**structlog.contextvars.get_contextvars(), **fields}
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        level_name = _LEVEL_NAMES.get(level, "info")
        if self.json:
            line = json.dumps(
                {"event": event, **record, "level": level_name, "logger": name, "timestamp": stamp}, default=repr
            )
        else:
            pairs = " ".join(f"{key}={_plain(value)}" for key, value in sorted(record.items()))
            line = f"{stamp} [{level_name:<9}] {event:<30} [{name}] {pairs}".rstrip()
        with self._handler.lock or threading.RLock():
            self._handler.stream.write(line + "\n")
            self._handler.stream.flush()


_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
#: The CLI's sink, once :func:`configure` ran (None: a library inside a host application).
_sink: _Sink | None = None


def _plain(value: Any) -> str:
    """A value as the console renderer shows it: strings bare unless they need quotes, others by repr."""
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else repr(value)
    return repr(value)


def get_logger(name: str) -> Logger:
    """resq's logger named ``name`` (see :class:`Logger`).

    Nothing is shown until the host application (or the resq CLI, through :func:`configure`)
    configures logging, as a library should behave; job context is merged into every event.
    """
    return Logger(name)


def _stdlib_logger(name: str) -> Any:
    """A structlog logger over the standard ``logging`` logger ``name`` (the library-mode path)."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        # filter first: an event below the level costs a level check, not a pass through the processors
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


@contextmanager
def job_context(job_id: str, task: str, queue: str, attempt: int) -> Iterator[None]:
    """Bind the job's identity to every log line written inside the block (contextvars)."""
    with structlog.contextvars.bound_contextvars(job_id=job_id, task=task, queue=queue, attempt=attempt):
        yield


def configure(fmt: str = "console", level: str = "INFO") -> None:
    """Send structlog and standard ``logging`` records through one pipeline to stderr.

    Args:
        fmt: ``console`` (readable, coloured on a terminal) or ``json`` (one JSON object per line).
        level: the lowest level shown (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``).
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    shared = _shared_processors()
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer()
    else:
        # Plain tracebacks: rich ones show each frame's local variables, and a job's arguments (redacted
        # or encrypted ones too) are locals of the executor's frames.
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.format_exc_info] if fmt == "json" else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    global _sink
    # the fast path renders plain lines; a terminal keeps structlog's coloured console renderer
    _sink = _Sink(fmt, numeric, handler) if fmt == "json" or not sys.stderr.isatty() else None
