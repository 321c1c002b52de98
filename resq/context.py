"""The job running in this thread or task, for ``resq.current_job()``."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resq.job import Job

__all__ = ["current_job"]

_current: ContextVar[Job[Any] | None] = ContextVar("resq_current_job", default=None)


def current_job() -> Job[Any] | None:
    """The job being performed here (inside a task or one of its hooks), else None.

    Example::

        @app.task(retries=3)
        def send(to):
            job = resq.current_job()
            log.info("sending", attempt=job.attempt)
    """
    return _current.get()
