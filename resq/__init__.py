"""resq: background jobs on Redis, with at-least-once execution, retries, delayed jobs and cron.

Example::

    from resq import Resq

    app = Resq("redis://localhost:6379/0")

    @app.task(retries=3, queue="mail")
    def send_mail(to: str, subject: str) -> str: ...

    job = send_mail.delay("a@b.c", "hi")
    job.result(timeout=10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

from resq.app import Resq, default_app
from resq.canvas import Batch, BatchStatus, Signature, chain, chord, group
from resq.context import current_job
from resq.errors import (
    ArgumentsError,
    BrokerError,
    BrokerRefused,
    BrokerUnavailable,
    ConfigError,
    CycleError,
    DecodeError,
    DecryptError,
    EncodeError,
    JobCancelled,
    JobFailed,
    PayloadTooLarge,
    RateLimited,
    ResqError,
    ResultTimeout,
    Retry,
    SkipJob,
    Snooze,
    SoftTimeout,
    UnknownJob,
    Veto,
)
from resq.hooks import HOOK_NAMES, Plugin
from resq.job import ACTIVE_STATUSES, TERMINAL_STATUSES, Job, JobStatus, Progress
from resq.sealing import generate_key
from resq.task import Task

__version__ = "0.1.0"

__all__ = [
    "ACTIVE_STATUSES",
    "HOOK_NAMES",
    "TERMINAL_STATUSES",
    "ArgumentsError",
    "Batch",
    "BatchStatus",
    "BrokerError",
    "BrokerRefused",
    "BrokerUnavailable",
    "ConfigError",
    "CycleError",
    "DecodeError",
    "DecryptError",
    "EncodeError",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobStatus",
    "PayloadTooLarge",
    "Plugin",
    "Progress",
    "RateLimited",
    "Resq",
    "ResqError",
    "ResultTimeout",
    "Retry",
    "Signature",
    "SkipJob",
    "Snooze",
    "SoftTimeout",
    "Task",
    "UnknownJob",
    "Veto",
    "__version__",
    "chain",
    "chord",
    "current_job",
    "default_app",
    "generate_key",
    "group",
    "task",
]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Register a task with the default app (configured from ``RESQ_REDIS_URL`` and ``RESQ_NAMESPACE``).

    Takes the options of :meth:`Resq.task`. A worker started with ``-A yourmodule`` finds these tasks.

    Example::

        from resq import task

        @task(retries=3)
        def refresh(user_id: int) -> None: ...
    """
    if fn is not None:
        return default_app().task(fn)
    return default_app().task(**options)
