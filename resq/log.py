"""Structured logging with structlog.

Library modules only call :func:`get_logger`; :func:`configure` is called by the CLI alone (a library
that configures logging fights its host application). Inside a job, :func:`job_context` binds
``job_id``, ``task``, ``queue`` and ``attempt`` to every log line, including lines that task code
writes through the standard ``logging`` module once the CLI has configured it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` that writes through the standard ``logging`` module.

    Nothing is shown until the host application (or the resq CLI, through :func:`configure`)
    configures logging, as a library should behave; job context is merged into every event.
    """
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
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
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
