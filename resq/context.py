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


class BatchScope:
    """The batch that jobs enqueued here join (``with app.batch(...)``, or a running job of a batch).

    Inside a running job of a batch, the jobs it enqueues get ids made from its own (``<id>.1``,
    ``<id>.2``, ...) and are created only if no record of that id exists: a job run again after its worker
    died does not add its nested jobs twice.
    """

    def __init__(self, batch_id: str, parent_id: str | None = None) -> None:
        self.batch_id = batch_id
        self.parent_id = parent_id
        self._made = 0
        #: in eager mode, the jobs that ran in the batch (its callbacks are called with their counts)
        self.eager_jobs: list[Job[Any]] = []

    def nested_id(self) -> str | None:
        """The id of the next job enqueued by the running job (None: not inside a running job)."""
        if self.parent_id is None:
            return None
        self._made += 1
        return f"{self.parent_id}.{self._made}"


_batch: ContextVar[BatchScope | None] = ContextVar("resq_batch", default=None)
